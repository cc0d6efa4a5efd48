import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Server as NetServer } from 'node:net';

/**
 * The part of the `smpp` package (node-smpp 0.5, CommonJS, untyped) that the bridge and the
 * SMSC simulator use, typed here so the rest of the code stays strict.
 */

/** A decoded PDU: header fields, the command's parameters and TLVs by name. */
export interface SmppPdu {
  command: string;
  command_id: number;
  command_status: number;
  sequence_number: number;
  isResponse(): boolean;
  response(options?: Record<string, unknown>): SmppPdu;
  [field: string]: unknown;
}

export type SmppCallback = (pdu: SmppPdu) => void;

export interface SmppSession extends EventEmitter {
  readonly socket: { remoteAddress?: string; writable: boolean };
  send(pdu: SmppPdu, onResponse?: SmppCallback, onSent?: SmppCallback): boolean;
  close(callback?: () => void): void;
  destroy(callback?: () => void): void;
  pause(): void;
  resume(): void;
  /** Shortcut: builds the PDU `command` from `options` and sends it; false when the socket is not writable. */
  [command: string]: unknown;
}

export interface SmppServer extends NetServer {
  readonly sessions: SmppSession[];
}

interface SmppModule {
  connect(options: { host: string; port: number }): SmppSession;
  createServer(listener: (session: SmppSession) => void): SmppServer;
  PDU: new (command: string, options?: Record<string, unknown>) => SmppPdu;
  errors: Record<string, number>;
}

export const smpp = createRequire(import.meta.url)('smpp') as SmppModule;

/** Sends request `command` built from `options`; `onResponse` gets the response (or generic_nack). */
export function sendRequest(session: SmppSession, command: string, options: Record<string, unknown>, onResponse?: SmppCallback): boolean {
  return session.send(new smpp.PDU(command, options), onResponse);
}

/** The name of an SMPP command_status (ESME_RTHROTTLED…), or its hex value. */
export function smppStatusName(status: number): string {
  for (const [name, value] of Object.entries(smpp.errors)) if (value === status) return name;
  return `0x${status.toString(16).padStart(8, '0')}`;
}
