import type { Logger } from 'pino';
import type { Accepted, SmsChannel, SmsChannelListener, SmsSubmission } from './channels.js';
import { esmClassDeliveryReceipt, esmClassTypeMask, parseDeliveryReceipt, smscIdVariants } from './delivery-receipt.js';
import { decodeGsm7 } from './gsm7.js';
import { type SmppPdu, type SmppSession, sendRequest, smpp, smppStatusName } from './smpp-lib.js';
import { type SmsPart, smsParts } from './sms-encoding.js';

/**
 * SMS over SMPP 3.4 as an ESME bound in transceiver mode: submit_sm with delivery receipts
 * requested, a send window and a rate, a bounded queue, enquire_link keep-alive, and reconnect
 * with exponential back-off. deliver_sm carries receipts (esm_class 0x04) and the payer's
 * replies (esm_class 0). Message text never reaches the logger.
 */

export interface SmppLimits {
  /** smsQueueMax: parts waiting for the window, the rate or the connection, at most; beyond is RESOURCE_EXHAUSTED. */
  queueMax: number;
  /** A queued part not submitted within this fails its message (SmsFailed QUEUE_TIMEOUT). */
  queueWaitMsMax: number;
  /** A submit_sm unanswered for this long fails its message (SUBMIT_TIMEOUT) and frees its window slot. */
  submitResponseTimeoutMs: number;
  /** enquire_link period while bound. */
  enquireLinkIntervalMs: number;
  /** An enquire_link unanswered this long drops the connection (then reconnect). */
  enquireLinkTimeoutMs: number;
  /** From TCP connect to bind_transceiver_resp, at most. */
  bindTimeoutMs: number;
  /** First reconnect delay; doubles per failed attempt up to `reconnectDelayMsMax`. */
  reconnectDelayMsMin: number;
  reconnectDelayMsMax: number;
  /** Messages waiting for their delivery receipts, at most (the oldest is forgotten). */
  receiptsTrackedMax: number;
  /** A message whose receipt has not come after this long is forgotten (no more events). */
  receiptWaitMsMax: number;
  /** Period of the sweep for queue deadlines, submit timeouts and receipt waits. */
  housekeepingIntervalMs: number;
  /** On close, wait this long at most for unbind_resp. */
  unbindTimeoutMs: number;
}

export const smppLimitsDefault: SmppLimits = {
  queueMax: 10_000,
  queueWaitMsMax: 30_000,
  submitResponseTimeoutMs: 10_000,
  enquireLinkIntervalMs: 30_000,
  enquireLinkTimeoutMs: 10_000,
  bindTimeoutMs: 10_000,
  reconnectDelayMsMin: 250,
  reconnectDelayMsMax: 30_000,
  receiptsTrackedMax: 100_000,
  receiptWaitMsMax: 48 * 3600_000,
  housekeepingIntervalMs: 250,
  unbindTimeoutMs: 2_000,
};

export interface SmppChannelOptions extends Partial<SmppLimits> {
  host: string;
  port: number;
  systemId: string;
  password: string;
  /** source_addr of every submit_sm: E.164, a short code, or an alphanumeric sender. */
  sourceAddr: string;
  /** smppWindowMax: submit_sm sent and not yet answered, at most. */
  windowMax: number;
  /** smsPerSecondMax: submit_sm per second, at most (token bucket with one second of burst). */
  ratePerSecondMax: number;
}

interface QueuedPart {
  messageId: string;
  to: string;
  part: SmsPart;
  enqueuedAtMs: number;
}

interface MessageState {
  messageId: string;
  partsTotal: number;
  acked: number;
  delivered: number;
  smscIds: string[];
  ackedAtMs: number;
}

/** Counters for tests and metrics. */
export interface SmppStats {
  binds: number;
  bindFailures: number;
  disconnects: number;
  enquireLinksSent: number;
  enquireLinksAnswered: number;
  submitsSent: number;
  /** Times the send pump waited for the rate (no token left): each a timer, then a look again. */
  rateWaits: number;
}

/** Receipt waits are checked this often (a full scan of the tracked messages). */
const receiptSweepIntervalMs = 60_000;

type State = 'down' | 'connecting' | 'bound' | 'closed';

/** TON/NPI of an address: international E.164, alphanumeric, or national/short. */
function addressOf(address: string): { ton: number; npi: number; addr: string } {
  if (/^\+?[1-9][0-9]{6,14}$/.test(address)) return { ton: 1, npi: 1, addr: address.replace(/^\+/, '') };
  if (/^[0-9]+$/.test(address)) return { ton: 3, npi: 0, addr: address };
  return { ton: 5, npi: 0, addr: address };
}

/** The text of a deliver_sm (short_message or message_payload), as node-smpp decoded it. */
export function deliverSmText(pdu: SmppPdu): string {
  const value = (pdu.message_payload ?? pdu.short_message) as unknown;
  const message = typeof value === 'object' && value !== null && 'message' in value ? (value as { message: unknown }).message : value;
  if (typeof message === 'string') return message;
  if (!(message instanceof Uint8Array)) return '';
  const coding = Number(pdu.data_coding ?? 0) & 0x0f;
  if (coding === 8) return Buffer.from(message).swap16().toString('utf16le');
  if (coding === 0) return decodeGsm7(message);
  return Buffer.from(message).toString('latin1');
}

export class SmppChannel implements SmsChannel {
  private readonly limits: SmppLimits;
  private state: State = 'down';
  private session: SmppSession | undefined;
  private reconnectDelayMs: number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private enquireTimer: NodeJS.Timeout | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  private readonly housekeeping: NodeJS.Timeout;
  private readonly queue: QueuedPart[] = [];
  /** sequence_number → the part in flight on the current session. */
  private readonly inflight = new Map<number, { messageId: string; sentAtMs: number }>();
  private readonly messages = new Map<string, MessageState>();
  /** SMSC message id → the bridge's message id, oldest first. */
  private readonly receipts = new Map<string, string>();
  private tokens: number;
  private tokensAtMs: number;
  private concatReference = 0;
  private boundWaiters: (() => void)[] = [];
  private receiptSweepAtMs = 0;
  readonly stats: SmppStats = { binds: 0, bindFailures: 0, disconnects: 0, enquireLinksSent: 0, enquireLinksAnswered: 0, submitsSent: 0, rateWaits: 0 };

  constructor(
    private readonly options: SmppChannelOptions,
    private readonly listener: SmsChannelListener,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...smppLimitsDefault, ...stripUndefined(options) };
    if (!(options.windowMax >= 1) || !(options.ratePerSecondMax > 0)) throw new Error('assertion failed: windowMax ≥ 1 and ratePerSecondMax > 0');
    this.reconnectDelayMs = this.limits.reconnectDelayMsMin;
    this.tokens = options.ratePerSecondMax;
    this.tokensAtMs = now();
    this.housekeeping = setInterval(() => this.sweep(), this.limits.housekeepingIntervalMs);
    this.housekeeping.unref();
    this.connect();
  }

  get bound(): boolean {
    return this.state === 'bound';
  }

  /** Resolves true once bound, false after `timeoutMs`. */
  whenBound(timeoutMs: number): Promise<boolean> {
    if (this.bound) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.boundWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  submit(sms: SmsSubmission): Accepted {
    if (this.state !== 'bound') return { ok: false, code: 'UNAVAILABLE', message: 'the SMSC is not connected; retry later' };
    const parts = smsParts(sms.text, sms.alphabet, this.concatReference++ & 0xff);
    if (this.queue.length + parts.length > this.limits.queueMax) {
      return { ok: false, code: 'RESOURCE_EXHAUSTED', message: `the SMS queue is full (${this.limits.queueMax} parts)` };
    }
    const nowMs = this.now();
    this.messages.set(sms.messageId, { messageId: sms.messageId, partsTotal: parts.length, acked: 0, delivered: 0, smscIds: [], ackedAtMs: 0 });
    for (const part of parts) this.queue.push({ messageId: sms.messageId, to: sms.to, part, enqueuedAtMs: nowMs });
    this.pump();
    return { ok: true };
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.housekeeping);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.stopEnquireLink();
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    for (const item of this.queue.splice(0)) this.fail(item.messageId, 'BRIDGE_CLOSING');
    const session = this.session;
    if (session === undefined) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => session.destroy(), this.limits.unbindTimeoutMs);
      session.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      const sent = sendRequest(session, 'unbind', {}, () => session.close());
      if (!sent) session.destroy();
    });
  }

  // ------------------------------------------------------------------------- connection

  private connect(): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    const session = smpp.connect({ host: this.options.host, port: this.options.port });
    this.session = session;
    const bindTimer = this.timer(() => {
      this.logger.warn({ timeoutMs: this.limits.bindTimeoutMs }, 'smpp bind timed out');
      session.destroy();
    }, this.limits.bindTimeoutMs);
    session.on('connect', () => {
      const sent = sendRequest(
        session,
        'bind_transceiver',
        { system_id: this.options.systemId, password: this.options.password, interface_version: 0x34 },
        (pdu) => {
          this.clearTimer(bindTimer);
          if (pdu.command_status !== 0) {
            this.stats.bindFailures++;
            this.logger.error({ status: smppStatusName(pdu.command_status) }, 'smpp bind refused');
            session.destroy();
            return;
          }
          this.onBound(session);
        },
      );
      if (!sent) session.destroy();
    });
    session.on('error', (error: Error) => {
      this.logger.warn({ err: { message: error.message, code: (error as NodeJS.ErrnoException).code } }, 'smpp connection error');
      session.destroy();
    });
    session.on('close', () => {
      this.clearTimer(bindTimer);
      this.onClosed(session);
    });
    session.on('deliver_sm', (pdu: SmppPdu) => this.onDeliverSm(session, pdu));
    session.on('enquire_link', (pdu: SmppPdu) => session.send(pdu.response()));
    session.on('unbind', (pdu: SmppPdu) => {
      this.logger.warn('smpp unbound by the SMSC');
      session.send(pdu.response());
      session.close();
    });
  }

  private onBound(session: SmppSession): void {
    if (session !== this.session || this.state === 'closed') return;
    this.state = 'bound';
    this.stats.binds++;
    this.reconnectDelayMs = this.limits.reconnectDelayMsMin;
    this.logger.info({ host: this.options.host, port: this.options.port }, 'smpp bound (transceiver)');
    this.scheduleEnquireLink(session);
    for (const waiter of this.boundWaiters.splice(0)) waiter();
    this.pump();
  }

  private onClosed(session: SmppSession): void {
    if (session !== this.session) return;
    this.session = undefined;
    this.stopEnquireLink();
    const wasBound = this.state === 'bound';
    // Unanswered submits may or may not have reached the SMSC: never resubmitted (no duplicate SMS).
    for (const entry of this.inflight.values()) this.fail(entry.messageId, 'SMPP_CONNECTION_LOST');
    this.inflight.clear();
    if (this.state === 'closed') return;
    this.state = 'down';
    if (wasBound) this.stats.disconnects++;
    const delayMs = Math.round(this.reconnectDelayMs / 2 + (Math.random() * this.reconnectDelayMs) / 2);
    this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, this.limits.reconnectDelayMsMax);
    this.logger.warn({ delayMs, queued: this.queue.length }, 'smpp connection closed; reconnecting');
    this.timer(() => this.connect(), delayMs);
  }

  private scheduleEnquireLink(session: SmppSession): void {
    this.enquireTimer = setTimeout(() => {
      if (session !== this.session || this.state !== 'bound') return;
      this.stats.enquireLinksSent++;
      const deadline = this.timer(() => {
        this.logger.warn({ timeoutMs: this.limits.enquireLinkTimeoutMs }, 'smpp enquire_link unanswered; dropping the connection');
        session.destroy();
      }, this.limits.enquireLinkTimeoutMs);
      const sent = sendRequest(session, 'enquire_link', {}, () => {
        this.clearTimer(deadline);
        this.stats.enquireLinksAnswered++;
        this.scheduleEnquireLink(session);
      });
      if (!sent) session.destroy();
    }, this.limits.enquireLinkIntervalMs);
  }

  private stopEnquireLink(): void {
    if (this.enquireTimer) clearTimeout(this.enquireTimer);
    this.enquireTimer = undefined;
  }

  // ------------------------------------------------------------------------- sending

  private refillTokens(): void {
    const nowMs = this.now();
    const rate = this.options.ratePerSecondMax;
    this.tokens = Math.min(rate, this.tokens + ((nowMs - this.tokensAtMs) * rate) / 1000);
    this.tokensAtMs = nowMs;
  }

  /** Submits queued parts while the window and the rate allow. */
  private pump(): void {
    const session = this.session;
    if (this.state !== 'bound' || session === undefined || this.pumpTimer !== undefined) return;
    this.refillTokens();
    while (this.queue.length > 0 && this.inflight.size < this.options.windowMax) {
      if (this.tokens < 1) {
        const waitMs = Math.ceil(((1 - this.tokens) * 1000) / this.options.ratePerSecondMax);
        this.stats.rateWaits++;
        this.pumpTimer = setTimeout(() => {
          this.pumpTimer = undefined;
          this.pump();
        }, waitMs);
        return;
      }
      const item = this.queue.shift()!;
      if (!this.messages.has(item.messageId)) continue; // its message already failed
      if (!this.submitPart(session, item)) {
        this.queue.unshift(item);
        return;
      }
      this.tokens -= 1;
    }
  }

  private submitPart(session: SmppSession, item: QueuedPart): boolean {
    const source = addressOf(this.options.sourceAddr);
    const destination = addressOf(item.to);
    const pdu = new smpp.PDU('submit_sm', {
      source_addr_ton: source.ton,
      source_addr_npi: source.npi,
      source_addr: source.addr,
      dest_addr_ton: destination.ton,
      dest_addr_npi: destination.npi,
      destination_addr: destination.addr,
      esm_class: item.part.esmClass,
      registered_delivery: 1,
      data_coding: item.part.dataCoding,
      short_message: item.part.bytes,
    });
    const sent = session.send(pdu, (response) => this.onSubmitResponse(pdu.sequence_number, response));
    if (!sent) return false;
    this.stats.submitsSent++;
    this.inflight.set(pdu.sequence_number, { messageId: item.messageId, sentAtMs: this.now() });
    return true;
  }

  private onSubmitResponse(sequence: number, response: SmppPdu): void {
    const entry = this.inflight.get(sequence);
    if (entry === undefined) return; // timed out or connection lost before
    this.inflight.delete(sequence);
    if (response.command !== 'submit_sm_resp' || response.command_status !== 0) {
      this.fail(entry.messageId, smppStatusName(response.command_status));
    } else {
      this.acknowledged(entry.messageId, String(response.message_id ?? ''));
    }
    this.pump();
  }

  private acknowledged(messageId: string, smscId: string): void {
    const message = this.messages.get(messageId);
    if (message === undefined) return;
    message.acked++;
    if (smscId !== '') {
      message.smscIds.push(smscId);
      this.receipts.set(smscId, messageId);
      if (this.receipts.size > this.limits.receiptsTrackedMax) this.forget(this.receipts.values().next().value!);
    }
    if (message.acked === message.partsTotal) {
      message.ackedAtMs = this.now();
      this.listener.sent(messageId);
    }
  }

  /** Reports the message failed, once, and stops tracking it. */
  private fail(messageId: string, reason: string): void {
    if (!this.messages.has(messageId)) return;
    this.forget(messageId);
    this.listener.failed(messageId, reason);
  }

  private forget(messageId: string): void {
    const message = this.messages.get(messageId);
    if (message === undefined) return;
    this.messages.delete(messageId);
    for (const smscId of message.smscIds) this.receipts.delete(smscId);
  }

  // ------------------------------------------------------------------------- receiving

  private onDeliverSm(session: SmppSession, pdu: SmppPdu): void {
    session.send(pdu.response());
    const type = Number(pdu.esm_class ?? 0) & esmClassTypeMask;
    const text = deliverSmText(pdu);
    if (type === esmClassDeliveryReceipt) {
      this.onReceipt(text, pdu);
    } else if (type === 0) {
      const from = addressOf(String(pdu.source_addr ?? ''));
      this.listener.replied({ from: from.ton === 1 ? `+${from.addr}` : from.addr, text });
    } else {
      this.logger.info({ esmClass: pdu.esm_class }, 'smpp deliver_sm of another type ignored');
    }
  }

  private onReceipt(text: string, pdu: SmppPdu): void {
    const receipt = parseDeliveryReceipt(text, { receiptedMessageId: pdu.receipted_message_id, messageState: pdu.message_state });
    if (receipt === undefined) {
      this.logger.warn('smpp delivery receipt without a message id ignored');
      return;
    }
    const smscId = smscIdVariants(receipt.smscMessageId).find((id) => this.receipts.has(id));
    const messageId = smscId === undefined ? undefined : this.receipts.get(smscId);
    if (smscId === undefined || messageId === undefined) {
      this.logger.info({ stat: receipt.stat }, 'smpp delivery receipt for an unknown message ignored');
      return;
    }
    if (receipt.fate === 'pending') return;
    if (receipt.fate === 'failed') {
      this.fail(messageId, receipt.err === '' ? receipt.stat : `${receipt.stat} err:${receipt.err}`);
      return;
    }
    this.receipts.delete(smscId);
    const message = this.messages.get(messageId)!;
    message.delivered++;
    if (message.delivered < message.partsTotal) return;
    this.forget(messageId);
    this.listener.delivered(messageId);
  }

  // ------------------------------------------------------------------------- housekeeping

  private sweep(): void {
    const nowMs = this.now();
    for (let i = 0; i < this.queue.length; ) {
      const item = this.queue[i]!;
      if (nowMs - item.enqueuedAtMs <= this.limits.queueWaitMsMax) i++;
      else {
        this.queue.splice(i, 1);
        this.fail(item.messageId, 'QUEUE_TIMEOUT');
      }
    }
    for (const [sequence, entry] of this.inflight) {
      if (nowMs - entry.sentAtMs <= this.limits.submitResponseTimeoutMs) continue;
      this.inflight.delete(sequence);
      this.fail(entry.messageId, 'SUBMIT_TIMEOUT');
    }
    if (nowMs - this.receiptSweepAtMs >= receiptSweepIntervalMs) {
      this.receiptSweepAtMs = nowMs;
      for (const message of this.messages.values()) {
        if (message.acked === message.partsTotal && nowMs - message.ackedAtMs > this.limits.receiptWaitMsMax) this.forget(message.messageId);
      }
    }
    this.pump();
  }

  private timer(fn: () => void, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  private clearTimer(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.timers.delete(timer);
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
