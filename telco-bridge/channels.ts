import type { SmsAlphabet } from './sms-encoding.js';

/**
 * The ports between the bridge's gRPC service and its channels (SMPP, TwiML voice, console).
 * Operating failures are values, not exceptions.
 */

/** A gRPC status name a channel may answer with; the service maps it to the status. */
export type ChannelErrorCode = 'INVALID_ARGUMENT' | 'RESOURCE_EXHAUSTED' | 'UNAVAILABLE' | 'INTERNAL';

export type Accepted = { ok: true } | { ok: false; code: ChannelErrorCode; message: string };

export interface SmsSubmission {
  /** The bridge's id for the message. */
  messageId: string;
  /** E.164. */
  to: string;
  /** SECRET (may hold a code): never logged. */
  text: string;
  alphabet: SmsAlphabet;
}

/** What an SMS channel reports; the bridge turns each into an event. */
export interface SmsChannelListener {
  sent(messageId: string): void;
  delivered(messageId: string): void;
  failed(messageId: string, reason: string): void;
  /** A mobile-originated message. `text` is SECRET (may be a code): never logged or stored. */
  replied(reply: { from: string; text: string; smscMessageId?: string }): void;
}

export interface SmsChannel {
  /** Takes the message for sending (queued); its fate arrives through the listener. */
  submit(sms: SmsSubmission): Accepted;
  close(): Promise<void>;
}

/** A normalized announcement: what the call says. */
export interface Announcement {
  payeeName: string;
  amount: bigint;
  currency: string;
  description: string;
  /** BCP 47, never empty after normalization. */
  language: string;
  /** SECRET: when not empty the call reads it out instead of asking for a password. */
  spokenCode: string;
}

/** Normalized gather settings (proto defaults applied). */
export interface GatherSpec {
  digitsMax: number;
  timeoutSeconds: number;
  /** '' when disabled. */
  finishKey: string;
  /** Prompts again after silence at most this many times. */
  attemptsMax: number;
}

export interface CallPlacement {
  /** The bridge's id for the call. */
  callId: string;
  to: string;
  reference: string;
  announcement: Announcement;
  gather: GatherSpec;
}

/** What a voice channel reports; the bridge turns each into an event. */
export interface VoiceChannelListener {
  answered(callId: string): void;
  /** Digits were keyed for one gather (the digits themselves are never reported). */
  digits(callId: string): void;
  noAnswer(callId: string): void;
  busy(callId: string): void;
  failed(callId: string, reason: string): void;
}

export interface VoiceChannel {
  /** Places the call (bounded); progress arrives through the listener. */
  place(call: CallPlacement): Promise<Accepted>;
  close(): Promise<void>;
}
