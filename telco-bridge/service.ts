import { createHmac, randomBytes } from 'node:crypto';
import { create, type DescMessage, type MessageShape, toBinary } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import {
  type SendSmsRequest,
  SendSmsRequestSchema,
  SmsEncoding,
  type StartCallRequest,
  StartCallRequestSchema,
  type StreamEventsRequest,
  type StreamEventsResponse,
  type TelcoBridgeService,
} from '../gen/countersign/v1/telco_pb.js';
import type { AuthzClient } from './authz-client.js';
import { boundedMap, DestinationLimiter, IdempotencyRecord, ReplyMatcher } from './bounded-state.js';
import type { Accepted, CallPlacement, ChannelErrorCode, SmsChannel, SmsChannelListener, VoiceChannel, VoiceChannelListener } from './channels.js';
import { invalidArgument as invalid, TelcoError, type TelcoErrorKind } from './errors.js';
import { type EventLog, isEventId } from './events.js';
import type { ConfirmPassword } from './ivr-dialogue.js';
import { currencyExponent } from './money-words.js';
import { chooseAlphabet } from './sms-encoding.js';

/**
 * The TelcoBridgeService handlers (a protobuf-es `ServiceImpl`, so the compiler proves every
 * method exists) and what the bridge does with the channels' reports: events, and the proofs
 * it relays to authz (a keyed password, an SMS reply). Validation lives here; refusals are
 * TelcoErrors, which the RPC runtime in services/ maps to status codes.
 */

export interface ServiceLimits {
  /** Streamed events waiting for a slow consumer, at most; beyond, the stream ends RESOURCE_EXHAUSTED (resume with after_event_id). */
  streamPendingMax: number;
  /** A StreamEvents call ends (OK) after this long; clients reconnect with after_event_id. */
  streamDurationMsMax: number;
  /** Idempotency keys remembered, at most, each for `idempotencyTtlMs`. */
  idempotencyKeysMax: number;
  idempotencyTtlMs: number;
  /** SMS-pumping defense: at most `smsPerDestinationMax` SMS per destination per `smsPerDestinationWindowMs`. */
  smsPerDestinationMax: number;
  smsPerDestinationWindowMs: number;
  /** The same for calls. */
  callsPerDestinationMax: number;
  callsPerDestinationWindowMs: number;
  /** Destinations tracked by the limiters and the reply matcher, at most. */
  destinationsTrackedMax: number;
  /** replyWindowMs: an SMS reply belongs to the latest SendSms to that number sent at most this long before. */
  replyWindowMs: number;
  /** A reply longer than this is not a code: reported, not relayed to authz. */
  replyCodeCharsMax: number;
  /** Messages and calls whose reference is remembered for their events, at most. */
  referencesTrackedMax: number;
}

export const serviceLimitsDefault: ServiceLimits = {
  streamPendingMax: 10_000,
  streamDurationMsMax: 3600_000,
  idempotencyKeysMax: 100_000,
  idempotencyTtlMs: 24 * 3600_000,
  smsPerDestinationMax: 10,
  smsPerDestinationWindowMs: 10 * 60_000,
  callsPerDestinationMax: 5,
  callsPerDestinationWindowMs: 10 * 60_000,
  destinationsTrackedMax: 100_000,
  replyWindowMs: 5 * 60_000,
  replyCodeCharsMax: 32,
  referencesTrackedMax: 200_000,
};

/** Field bounds of the wire contract (telco.proto). */
export const smsTextCharsMax = 1000;
export const referenceCharsMax = 64;
export const payeeNameCharsMax = 100;
export const descriptionCharsMax = 200;
export const digitsMaxLimit = 32;
export const gatherTimeoutSecondsMax = 60;
export const gatherAttemptsMaxLimit = 5;

const e164 = /^\+[1-9][0-9]{6,14}$/;
const printableKey = /^[\x20-\x7e]{1,128}$/;

/** "+1415*****23": enough to tell numbers apart in logs. */
export function maskPhone(phone: string): string {
  return phone.length <= 7 ? '*'.repeat(phone.length) : `${phone.slice(0, 5)}${'*'.repeat(phone.length - 7)}${phone.slice(-2)}`;
}

const kindOfChannelCode: Readonly<Record<ChannelErrorCode, TelcoErrorKind | undefined>> = {
  INVALID_ARGUMENT: 'invalid_argument',
  RESOURCE_EXHAUSTED: 'resource_exhausted',
  UNAVAILABLE: 'unavailable',
  INTERNAL: undefined,
};

/** A channel's refusal as the error to throw; INTERNAL (a misconfiguration) stays unmapped: generic to the caller, logged whole. */
function refusalError(refused: Extract<Accepted, { ok: false }>): Error {
  const kind = kindOfChannelCode[refused.code];
  return kind === undefined ? new Error(`channel failed: ${refused.message}`) : new TelcoError(kind, refused.message);
}

export class TelcoBridgeCore {
  private sms: SmsChannel | undefined;
  private voice: VoiceChannel | undefined;
  /** Keys the request fingerprints and reply keys: hashes of texts that may hold codes are never plain. */
  private readonly hmacKey = randomBytes(32);
  private readonly smsIdempotency: IdempotencyRecord<string>;
  private readonly callIdempotency: IdempotencyRecord<string>;
  private readonly smsRate: DestinationLimiter;
  private readonly callRate: DestinationLimiter;
  private readonly replies: ReplyMatcher;
  /** Message or call id → the caller's reference. */
  private readonly references: ReturnType<typeof boundedMap<string, string>>;

  constructor(
    private readonly events: EventLog,
    private readonly authz: AuthzClient,
    private readonly limits: ServiceLimits,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.smsIdempotency = new IdempotencyRecord(limits.idempotencyKeysMax, limits.idempotencyTtlMs, now);
    this.callIdempotency = new IdempotencyRecord(limits.idempotencyKeysMax, limits.idempotencyTtlMs, now);
    this.smsRate = new DestinationLimiter(limits.smsPerDestinationMax, limits.smsPerDestinationWindowMs, limits.destinationsTrackedMax, now);
    this.callRate = new DestinationLimiter(limits.callsPerDestinationMax, limits.callsPerDestinationWindowMs, limits.destinationsTrackedMax, now);
    this.replies = new ReplyMatcher(limits.replyWindowMs, limits.destinationsTrackedMax, now);
    this.references = boundedMap(limits.referencesTrackedMax);
  }

  attach(sms: SmsChannel, voice: VoiceChannel): void {
    this.sms = sms;
    this.voice = voice;
  }

  private ref(id: string): string {
    return this.references.peek(id) ?? '';
  }

  private fingerprint<D extends DescMessage>(schema: D, request: MessageShape<D>): string {
    const bytes = toBinary(schema, create(schema, { ...(request as object), idempotencyKey: '' } as never));
    return createHmac('sha256', this.hmacKey).update(bytes).digest('hex');
  }

  // ------------------------------------------------------------------------- channel reports

  readonly smsListener: SmsChannelListener = {
    sent: (messageId) => this.events.append(this.ref(messageId), { case: 'smsSent', value: { $typeName: 'countersign.v1.SmsSent', messageId } }),
    delivered: (messageId) => this.events.append(this.ref(messageId), { case: 'smsDelivered', value: { $typeName: 'countersign.v1.SmsDelivered', messageId } }),
    failed: (messageId, reason) => {
      this.logger.info({ messageId, reference: this.ref(messageId), reason }, 'sms failed');
      this.events.append(this.ref(messageId), { case: 'smsFailed', value: { $typeName: 'countersign.v1.SmsFailed', messageId, reason } });
    },
    replied: (reply) => this.relayReply(reply.from, reply.text),
  };

  readonly voiceListener: VoiceChannelListener = {
    answered: (callId) => this.events.append(this.ref(callId), { case: 'callAnswered', value: { $typeName: 'countersign.v1.CallAnswered', callId } }),
    // The digits are a password: relayed to authz by the dialogue, never put in an event.
    digits: (callId) => this.events.append(this.ref(callId), { case: 'callDigits', value: { $typeName: 'countersign.v1.CallDigits', callId, digits: '' } }),
    noAnswer: (callId) => this.events.append(this.ref(callId), { case: 'callNoAnswer', value: { $typeName: 'countersign.v1.CallNoAnswer', callId } }),
    busy: (callId) => this.events.append(this.ref(callId), { case: 'callBusy', value: { $typeName: 'countersign.v1.CallBusy', callId } }),
    failed: (callId, reason) => this.events.append(this.ref(callId), { case: 'callFailed', value: { $typeName: 'countersign.v1.CallFailed', callId, reason } }),
  };

  /** Relays a keyed password to authz (ConfirmPayment, PASSWORD_KIND_IVR). */
  readonly confirmPassword: ConfirmPassword = async ({ reference, idempotencyKey, password }) => {
    const outcome = await this.authz.confirmPayment({ paymentId: reference, idempotencyKey, proof: { kind: 'ivr-password', password } });
    this.logger.info({ reference, authz: outcome.code, outcome: outcome.kind }, 'ivr password relayed to authz');
    return outcome;
  };

  /** An SMS reply: reported (without its text) and, when it answers a recent message, relayed to authz as the SMS OTP. */
  private relayReply(from: string, text: string): void {
    const match = this.replies.match(from);
    this.events.append(match?.reference ?? '', {
      case: 'smsReplied',
      value: { $typeName: 'countersign.v1.SmsReplied', messageId: match?.messageId ?? '', from, text: '' },
    });
    const code = text.trim();
    if (match === undefined || code === '' || code.length > this.limits.replyCodeCharsMax) {
      this.logger.info({ from: maskPhone(from), matched: match !== undefined }, 'sms reply not relayed');
      return;
    }
    const receivedAtMs = this.now();
    const key = `sms-reply-${createHmac('sha256', this.hmacKey).update(`${from}\n${text}\n${receivedAtMs}`).digest('hex').slice(0, 32)}`;
    void this.authz
      .confirmPayment({ paymentId: match.reference, idempotencyKey: key, proof: { kind: 'sms-otp', code } })
      .then((outcome) =>
        this.logger.info({ reference: match.reference, messageId: match.messageId, authz: outcome.code, outcome: outcome.kind }, 'sms reply relayed to authz'),
      );
  }

  // ------------------------------------------------------------------------- RPCs

  async sendSms(request: SendSmsRequest): Promise<{ messageId: string }> {
    if (!printableKey.test(request.idempotencyKey)) throw invalid('idempotency_key must be 1..128 printable ASCII characters');
    if (!e164.test(request.to)) throw invalid('to must be an E.164 number such as +14155550123');
    if (request.text === '' || request.text.length > smsTextCharsMax) throw invalid(`text must be 1..${smsTextCharsMax} characters`);
    if (request.reference.length > referenceCharsMax) throw invalid(`reference must be at most ${referenceCharsMax} characters`);
    if (SmsEncoding[request.encoding] === undefined) throw invalid('unknown encoding');
    const choice = chooseAlphabet(request.text, request.encoding);
    if (!choice.ok) throw invalid(choice.message);
    const sms = this.sms!;
    const messageId = await this.idempotent(this.smsIdempotency, request.idempotencyKey, this.fingerprint(SendSmsRequestSchema, request), async () => {
      if (!this.smsRate.take(request.to)) throw new TelcoError('resource_exhausted', 'too many SMS to this number; try later');
      const id = `sms_${randomBytes(12).toString('hex')}`;
      this.references.set(id, request.reference);
      const accepted = sms.submit({ messageId: id, to: request.to, text: request.text, alphabet: choice.alphabet });
      if (!accepted.ok) {
        this.smsRate.refund(request.to);
        this.references.delete(id);
        throw refusalError(accepted);
      }
      if (request.reference !== '') this.replies.sent(request.to, request.reference, id);
      this.logger.info({ messageId: id, reference: request.reference, to: maskPhone(request.to), alphabet: choice.alphabet }, 'sms accepted');
      return id;
    });
    return { messageId };
  }

  async startCall(request: StartCallRequest): Promise<{ callId: string }> {
    const placement = this.placementOf(request);
    const voice = this.voice!;
    const callId = await this.idempotent(this.callIdempotency, request.idempotencyKey, this.fingerprint(StartCallRequestSchema, request), async () => {
      if (!this.callRate.take(request.to)) throw new TelcoError('resource_exhausted', 'too many calls to this number; try later');
      this.references.set(placement.callId, request.reference);
      const accepted = await voice.place(placement);
      if (!accepted.ok) {
        this.callRate.refund(request.to);
        this.references.delete(placement.callId);
        throw refusalError(accepted);
      }
      this.logger.info(
        { callId: placement.callId, reference: request.reference, to: maskPhone(request.to), spokenCode: placement.announcement.spokenCode !== '' },
        'call started',
      );
      return placement.callId;
    });
    return { callId };
  }

  /** Validates a StartCallRequest and applies the proto defaults. */
  private placementOf(request: StartCallRequest): CallPlacement {
    if (!printableKey.test(request.idempotencyKey)) throw invalid('idempotency_key must be 1..128 printable ASCII characters');
    if (!e164.test(request.to)) throw invalid('to must be an E.164 number such as +14155550123');
    const a = request.announcement;
    if (a === undefined) throw invalid('announcement is required');
    const spokenCode = a.spokenCode;
    if (request.reference.length > referenceCharsMax || (request.reference === '' && spokenCode === ''))
      throw invalid(`reference must be 1..${referenceCharsMax} characters`);
    if (a.payeeName.trim() === '' || a.payeeName.length > payeeNameCharsMax)
      throw invalid(`announcement.payee_name must be 1..${payeeNameCharsMax} characters`);
    if (a.amount === 0n) throw invalid('announcement.amount must be positive');
    if (currencyExponent(a.currency) === undefined) throw invalid('announcement.currency must be an ISO 4217 code such as USD');
    if (a.description.length > descriptionCharsMax) throw invalid(`announcement.description must be at most ${descriptionCharsMax} characters`);
    if (a.language !== '' && !/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$/.test(a.language))
      throw invalid('announcement.language must be a BCP 47 tag such as en-US');
    if (spokenCode !== '' && !/^[0-9A-Za-z]{1,32}$/.test(spokenCode)) throw invalid('announcement.spoken_code must be 1..32 letters or digits');
    const g = request.gather;
    const digitsMax = g?.digitsMax || 12;
    const timeoutSeconds = g?.timeoutSeconds || 5;
    const attemptsMax = g?.attemptsMax || 2;
    const finishKey = g?.finishKey || '#';
    if (digitsMax > digitsMaxLimit) throw invalid(`gather.digits_max must be at most ${digitsMaxLimit}`);
    if (timeoutSeconds > gatherTimeoutSecondsMax) throw invalid(`gather.timeout_seconds must be at most ${gatherTimeoutSecondsMax}`);
    if (attemptsMax > gatherAttemptsMaxLimit) throw invalid(`gather.attempts_max must be at most ${gatherAttemptsMaxLimit}`);
    if (!/^[0-9*#]$/.test(finishKey)) throw invalid('gather.finish_key must be one of 0-9, * or #');
    return {
      callId: `call_${randomBytes(12).toString('hex')}`,
      to: request.to,
      reference: request.reference,
      announcement: {
        payeeName: a.payeeName.trim(),
        amount: a.amount,
        currency: a.currency,
        description: a.description.trim(),
        language: a.language || 'en-US',
        spokenCode,
      },
      gather: { digitsMax, timeoutSeconds, finishKey, attemptsMax },
    };
  }

  private async idempotent(record: IdempotencyRecord<string>, key: string, fingerprint: string, run: () => Promise<string>): Promise<string> {
    const known = record.lookup(key, fingerprint);
    if (known.kind === 'conflict') throw new TelcoError('already_exists', 'idempotency_key was used with another request');
    if (known.kind === 'replay') return known.result;
    const result = run();
    record.record(key, fingerprint, result);
    return result;
  }

  async *streamEvents(request: StreamEventsRequest, context: HandlerContext): AsyncGenerator<StreamEventsResponse> {
    if (request.afterEventId !== '' && !isEventId(request.afterEventId)) throw invalid('after_event_id is not an event id of this bridge');
    if (request.reference.length > referenceCharsMax) throw invalid(`reference must be at most ${referenceCharsMax} characters`);
    const pending: StreamEventsResponse[] = [];
    let overflow = false;
    let wake: (() => void) | undefined;
    const unsubscribe = this.events.subscribe((event) => {
      if (request.reference !== '' && event.reference !== request.reference) return;
      if (pending.length >= this.limits.streamPendingMax) overflow = true;
      else pending.push(event);
      wake?.();
    });
    const onAbort = () => wake?.();
    context.signal.addEventListener('abort', onAbort);
    const endAtMs = this.now() + this.limits.streamDurationMsMax;
    try {
      // Subscribed before the snapshot, in the same tick: nothing falls between backlog and live events.
      let last = request.afterEventId;
      for (const event of this.events.after(request.afterEventId, request.reference)) {
        yield event;
        last = event.eventId;
      }
      while (!context.signal.aborted) {
        if (overflow) throw new TelcoError('resource_exhausted', 'the stream fell too far behind; resume with after_event_id');
        const next = pending.shift();
        if (next !== undefined) {
          if (next.eventId > last) {
            yield next;
            last = next.eventId;
          }
          continue;
        }
        const remainingMs = endAtMs - this.now();
        if (remainingMs <= 0) return;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remainingMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      unsubscribe();
      context.signal.removeEventListener('abort', onAbort);
    }
  }

  /** The service handlers, for the RPC runtime in services/ (grpc-js host or connect router). */
  serviceImpl(): ServiceImpl<typeof TelcoBridgeService> {
    return {
      sendSms: (request) => this.sendSms(request),
      startCall: (request) => this.startCall(request),
      streamEvents: (request, context) => this.streamEvents(request, context),
    };
  }
}
