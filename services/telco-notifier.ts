import { type Client, Code, ConnectError } from '@connectrpc/connect';
import type { Logger } from 'pino';
import type { CodeDelivery, Notifier, PasswordCall } from '../authz/notifier.js';
import type { StreamEventsResponse, TelcoBridgeService } from '../gen/countersign/v1/telco_pb.js';
import { formatMoney } from '../ledger/chart.js';

export interface TelcoNotifierOptions {
  /** An SMS not confirmed delivered within this many milliseconds is read out on a call instead. */
  smsDeliveryWaitMs: number;
  /** Codes awaiting their delivery receipt, at most (older ones are forgotten: no fallback for them). */
  trackedMax: number;
  /** Longest pause between reconnects of the event stream, milliseconds. */
  streamRetryDelayMsMax: number;
  /** Deadline of one SendSms / StartCall to the bridge, milliseconds: a hung bridge fails the delivery instead of hanging the payment. */
  bridgeCallDeadlineMs: number;
  logger: Pick<Logger, 'info' | 'warn'>;
}

export const telcoNotifierDefaults = { smsDeliveryWaitMs: 30_000, trackedMax: 100_000, streamRetryDelayMsMax: 5_000, bridgeCallDeadlineMs: 3_000 } as const;

interface Tracked {
  delivery: CodeDelivery;
  timer: NodeJS.Timeout;
}

/**
 * Delivery through the telco bridge (its gRPC client only): first codes by SMS, password calls
 * by voice. Delivery you can rely on: each SMS is tracked until its receipt; a failed or
 * undelivered SMS is followed by a call that reads the same code (the live code stays valid).
 * The code is held in this process's memory only while it waits for its receipt.
 */
export class TelcoNotifier implements Notifier {
  readonly channel = 'SMS';
  private readonly tracked = new Map<string, Tracked>();
  private readonly stop = new AbortController();
  private streaming: Promise<void> | undefined;

  constructor(
    private readonly bridge: Client<typeof TelcoBridgeService>,
    private readonly options: TelcoNotifierOptions,
  ) {}

  /** Follows the bridge's events (receipts) until close(), reconnecting with back-off. */
  start(): void {
    this.streaming ??= this.follow();
  }

  async deliverFirstCode(d: CodeDelivery): Promise<void> {
    const text = `countersign: code ${d.firstCode} for ${formatMoney(d.amount, d.currency)} to ${d.payeeName}. Reply with this code to approve, or enter it on your terminal.`;
    const sent = await this.bridge.sendSms(
      { idempotencyKey: `code-${d.paymentId}-${d.deliveryKey}`, to: d.phone, text, reference: d.paymentId },
      { timeoutMs: this.options.bridgeCallDeadlineMs },
    );
    this.track(sent.messageId, d);
  }

  async callForPassword(c: PasswordCall): Promise<void> {
    await this.bridge.startCall(
      {
        idempotencyKey: `password-${c.paymentId}`,
        to: c.phone,
        reference: c.paymentId,
        announcement: { payeeName: c.payeeName, amount: c.amount, currency: c.currency, description: c.description },
        gather: { digitsMax: 12, timeoutSeconds: 5, finishKey: '#', attemptsMax: 2 },
      },
      { timeoutMs: this.options.bridgeCallDeadlineMs },
    );
  }

  private track(messageId: string, delivery: CodeDelivery): void {
    if (this.tracked.size >= this.options.trackedMax) this.forget(this.tracked.keys().next().value!);
    const timer = setTimeout(() => void this.fallback(messageId, 'no delivery receipt in time'), this.options.smsDeliveryWaitMs);
    timer.unref();
    this.tracked.set(messageId, { delivery, timer });
  }

  private forget(messageId: string): Tracked | undefined {
    const t = this.tracked.get(messageId);
    if (t !== undefined) {
      clearTimeout(t.timer);
      this.tracked.delete(messageId);
    }
    return t;
  }

  /** The SMS did not arrive: call and read the same code out. */
  private async fallback(messageId: string, why: string): Promise<void> {
    const t = this.forget(messageId);
    if (t === undefined || Date.now() >= t.delivery.expiresAtMs) return;
    const d = t.delivery;
    this.options.logger.info({ paymentId: d.paymentId, messageId, why }, 'SMS code not delivered: reading it out on a call');
    try {
      await this.bridge.startCall(
        {
          idempotencyKey: `fallback-${d.paymentId}-${d.deliveryKey}`,
          to: d.phone,
          reference: d.paymentId,
          announcement: { payeeName: d.payeeName, amount: d.amount, currency: d.currency, spokenCode: d.firstCode },
        },
        { timeoutMs: this.options.bridgeCallDeadlineMs },
      );
    } catch (error) {
      this.options.logger.warn({ paymentId: d.paymentId, code: ConnectError.from(error).code }, 'fallback call failed');
    }
  }

  private onEvent(e: StreamEventsResponse): void {
    if (e.event.case === 'smsDelivered') this.forget(e.event.value.messageId);
    else if (e.event.case === 'smsFailed') void this.fallback(e.event.value.messageId, `SMS failed: ${e.event.value.reason}`);
  }

  private async follow(): Promise<void> {
    let after = '';
    let delayMs = 100;
    while (!this.stop.signal.aborted) {
      try {
        for await (const e of this.bridge.streamEvents({ afterEventId: after }, { signal: this.stop.signal })) {
          after = e.eventId;
          delayMs = 100;
          this.onEvent(e);
        }
      } catch (error) {
        if (this.stop.signal.aborted) return;
        const code = ConnectError.from(error).code;
        if (code !== Code.Unavailable && code !== Code.Canceled) this.options.logger.warn({ code: Code[code] }, 'telco event stream ended');
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
      delayMs = Math.min(delayMs * 2, this.options.streamRetryDelayMsMax);
    }
  }

  async close(): Promise<void> {
    this.stop.abort();
    for (const id of [...this.tracked.keys()]) this.forget(id);
    await this.streaming;
  }
}
