import type { AddressInfo } from 'node:net';
import { fitsGsm7 } from '../gsm7.js';
import { type SmppPdu, type SmppSession, sendRequest, smpp } from '../smpp-lib.js';

/**
 * An SMSC for tests and the demo, built on node-smpp's server: it binds ESMEs (checking
 * system_id and password), answers submit_sm with message ids, captures every message per
 * destination (decoded from GSM-7 or UCS-2, concatenated parts joined), sends delivery receipts
 * as the handset's fate dictates, sends mobile-originated messages (the handset replies), and
 * can drop every connection (to exercise reconnects).
 */

export type ReceiptPolicy =
  /** submit_sm OK, then a receipt stat:DELIVRD. */
  | 'deliver'
  /** submit_sm OK, then a receipt stat:UNDELIV. */
  | 'fail'
  /** submit_sm OK, no receipt ever. */
  | 'withhold'
  /** submit_sm refused with ESME_RINVDSTADR. */
  | 'reject'
  /** submit_sm never answered (a stalled SMSC), nothing captured. */
  | 'stall';

export interface CapturedSms {
  /** E.164 destination. */
  to: string;
  from: string;
  text: string;
  /** data_coding 0 → gsm7, 8 → ucs2. */
  encoding: 'gsm7' | 'ucs2' | 'other';
  dataCoding: number;
  registeredDelivery: number;
  /** The ids answered in submit_sm_resp, one per part. */
  smscMessageIds: string[];
  parts: number;
}

export interface SmscStats {
  binds: number;
  bindFailures: number;
  enquireLinks: number;
  submits: number;
  receiptsSent: number;
  /** The most submit_sm received and not yet answered at any moment (the ESME's window in use). */
  unansweredMax: number;
}

export interface SmscOptions {
  systemId: string;
  password: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** What happens to messages to numbers without their own policy (default 'deliver'). */
  defaultReceipt?: ReceiptPolicy;
  /** Also put receipted_message_id and message_state TLVs in receipts (default: text only). */
  receiptTlvs?: boolean;
  /** Answer each submit_sm after this delay, ms (default 0), to observe the ESME's send window. */
  submitResponseDelayMs?: number;
  /** Leave enquire_link unanswered (a half-dead link), default false. */
  ignoreEnquireLinks?: boolean;
}

export interface Smsc {
  port: number;
  readonly stats: SmscStats;
  /** Every message captured, in arrival order. */
  readonly messages: readonly CapturedSms[];
  messagesTo(to: string): CapturedSms[];
  /** Resolves with the `index`-th message to `to` (0 = first), rejects after `timeoutMs`. */
  waitForMessage(to: string, timeoutMs: number, index?: number): Promise<CapturedSms>;
  setReceiptPolicy(to: string, policy: ReceiptPolicy): void;
  /** The handset `from` sends `text` (mobile originated deliver_sm); resolves on deliver_sm_resp. */
  sendMo(from: string, text: string, timeoutMs?: number): Promise<void>;
  /** Destroys every ESME connection (the listener stays). */
  dropConnections(): void;
  /** Sessions currently bound. */
  boundSessions(): number;
  /** Resolves once `count` binds have succeeded since start, rejects after `timeoutMs`. */
  waitForBinds(count: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Messages captured, kept at most (a test SMSC, not a store). */
const capturedMax = 10_000;
/** Concatenated messages being joined, at most. */
const partialMax = 1_000;
const moWaitMsDefault = 5_000;
/** How often waiters re-check (they also wake on every change). */
const pollMs = 20;

function e164(address: string): string {
  return address.startsWith('+') ? address : `+${address}`;
}

function yymmddhhmm(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(date.getUTCFullYear() % 100)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}`;
}

/** Text and concatenation header of a submit_sm, as node-smpp decoded it. */
function partOf(pdu: SmppPdu): { text: string; concat?: { ref: number; total: number; seq: number } } {
  const sm = pdu.short_message as { message?: unknown; udh?: Buffer[] } | Buffer | undefined;
  if (sm === undefined || Buffer.isBuffer(sm)) return { text: '' };
  const text = typeof sm.message === 'string' ? sm.message : '';
  const header = (sm.udh ?? []).find((ie) => ie[0] === 0x00 && ie[1] === 3);
  return header === undefined ? { text } : { text, concat: { ref: header[2]!, total: header[3]!, seq: header[4]! } };
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const endAt = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > endAt) throw new Error(`smsc: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

export async function startSmsc(options: SmscOptions): Promise<Smsc> {
  const captured: CapturedSms[] = [];
  const partial = new Map<string, { parts: Map<number, string>; ids: string[]; first: SmppPdu }>();
  const policies = new Map<string, ReceiptPolicy>();
  const bound = new Set<SmppSession>();
  const stats: SmscStats = { binds: 0, bindFailures: 0, enquireLinks: 0, submits: 0, receiptsSent: 0, unansweredMax: 0 };
  let unanswered = 0;
  let nextId = 0x5a0000;

  const capture = (sms: CapturedSms) => {
    captured.push(sms);
    if (captured.length > capturedMax) captured.shift();
  };

  const sendReceipt = (session: SmppSession, pdu: SmppPdu, smscId: string, policy: ReceiptPolicy, text: string) => {
    if (policy !== 'deliver' && policy !== 'fail') return;
    const now = new Date();
    const delivered = policy === 'deliver';
    const body = `id:${smscId} sub:001 dlvrd:${delivered ? '001' : '000'} submit date:${yymmddhhmm(now)} done date:${yymmddhhmm(now)} stat:${delivered ? 'DELIVRD' : 'UNDELIV'} err:${delivered ? '000' : '001'} text:${text.slice(0, 20)}`;
    const tlvs = options.receiptTlvs ? { receipted_message_id: smscId, message_state: delivered ? 2 : 5 } : {};
    stats.receiptsSent++;
    sendRequest(session, 'deliver_sm', {
      source_addr_ton: pdu.dest_addr_ton,
      source_addr_npi: pdu.dest_addr_npi,
      source_addr: pdu.destination_addr,
      dest_addr_ton: pdu.source_addr_ton,
      dest_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.source_addr,
      esm_class: 0x04,
      data_coding: 0,
      short_message: body.replace(/[^\x20-\x7e]/g, '?'),
      ...tlvs,
    });
  };

  const onSubmit = (session: SmppSession, pdu: SmppPdu) => {
    stats.submits++;
    unanswered++;
    stats.unansweredMax = Math.max(stats.unansweredMax, unanswered);
    setTimeout(() => {
      unanswered--;
      answerSubmit(session, pdu);
    }, options.submitResponseDelayMs ?? 0);
  };

  const answerSubmit = (session: SmppSession, pdu: SmppPdu) => {
    const to = e164(String(pdu.destination_addr));
    const policy = policies.get(to) ?? options.defaultReceipt ?? 'deliver';
    if (policy === 'stall') return;
    if (policy === 'reject') {
      session.send(pdu.response({ command_status: smpp.errors.ESME_RINVDSTADR }));
      return;
    }
    const smscId = (nextId++).toString(16);
    session.send(pdu.response({ message_id: smscId }));
    const dataCoding = Number(pdu.data_coding ?? 0);
    const part = partOf(pdu);
    const base = {
      to,
      from: String(pdu.source_addr),
      dataCoding,
      encoding: dataCoding === 0 ? 'gsm7' : dataCoding === 8 ? 'ucs2' : 'other',
      registeredDelivery: Number(pdu.registered_delivery ?? 0),
    } as const;
    if (part.concat === undefined) {
      capture({ ...base, text: part.text, smscMessageIds: [smscId], parts: 1 });
    } else {
      const key = `${to}|${part.concat.ref}`;
      const entry = partial.get(key) ?? { parts: new Map<number, string>(), ids: [], first: pdu };
      entry.parts.set(part.concat.seq, part.text);
      entry.ids.push(smscId);
      partial.set(key, entry);
      if (partial.size > partialMax) partial.delete(partial.keys().next().value!);
      if (entry.parts.size === part.concat.total) {
        partial.delete(key);
        const text = [...entry.parts.entries()]
          .sort(([a], [b]) => a - b)
          .map(([, t]) => t)
          .join('');
        capture({ ...base, text, smscMessageIds: entry.ids, parts: part.concat.total });
      }
    }
    if (Number(pdu.registered_delivery ?? 0) & 0x01) setImmediate(() => sendReceipt(session, pdu, smscId, policy, part.text));
  };

  const onBind = (session: SmppSession, pdu: SmppPdu) => {
    if (pdu.system_id !== options.systemId || pdu.password !== options.password) {
      stats.bindFailures++;
      session.send(pdu.response({ command_status: smpp.errors.ESME_RBINDFAIL }));
      session.close();
      return;
    }
    stats.binds++;
    bound.add(session);
    session.send(pdu.response({ system_id: 'countersign-smsc' }));
  };

  const server = smpp.createServer((session) => {
    session.on('error', () => session.destroy());
    session.on('close', () => bound.delete(session));
    for (const command of ['bind_transceiver', 'bind_transmitter', 'bind_receiver']) session.on(command, (pdu: SmppPdu) => onBind(session, pdu));
    session.on('submit_sm', (pdu: SmppPdu) =>
      bound.has(session) ? onSubmit(session, pdu) : session.send(pdu.response({ command_status: smpp.errors.ESME_RINVBNDSTS })),
    );
    session.on('enquire_link', (pdu: SmppPdu) => {
      stats.enquireLinks++;
      if (!options.ignoreEnquireLinks) session.send(pdu.response());
    });
    session.on('unbind', (pdu: SmppPdu) => {
      bound.delete(session);
      session.send(pdu.response());
      session.close();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });

  return {
    port: (server.address() as AddressInfo).port,
    stats,
    messages: captured,
    messagesTo: (to) => captured.filter((m) => m.to === to),
    waitForMessage: async (to, timeoutMs, index = 0) => {
      await until(() => captured.filter((m) => m.to === to).length > index, timeoutMs, `message #${index} to ${to}`);
      return captured.filter((m) => m.to === to)[index]!;
    },
    setReceiptPolicy: (to, policy) => void policies.set(to, policy),
    sendMo: async (from, text, timeoutMs = moWaitMsDefault) => {
      const session = [...bound].at(-1);
      if (session === undefined) throw new Error('smsc: no ESME bound to deliver to');
      const ucs2 = !fitsGsm7(text);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('smsc: no deliver_sm_resp')), timeoutMs);
        sendRequest(
          session,
          'deliver_sm',
          {
            source_addr_ton: 1,
            source_addr_npi: 1,
            source_addr: from.replace(/^\+/, ''),
            destination_addr: 'countersign',
            esm_class: 0,
            data_coding: ucs2 ? 8 : 0,
            short_message: text,
          },
          () => {
            clearTimeout(timer);
            resolve();
          },
        );
      });
    },
    dropConnections: () => {
      for (const session of [...server.sessions]) session.destroy();
    },
    boundSessions: () => bound.size,
    waitForBinds: (count, timeoutMs) => until(() => stats.binds >= count, timeoutMs, `${count} binds`),
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of [...server.sessions]) session.destroy();
        server.close(() => resolve());
      }),
  };
}
