import { formatMoney } from '../ledger/chart.js';

/**
 * The delivery port for first transaction codes. A notifier is a channel to the payer (console,
 * SMS, voice), not a log: it is the only place a plaintext first code leaves the service.
 */
export interface CodeDelivery {
  paymentId: string;
  payerId: string;
  /** E.164 destination. */
  phone: string;
  firstCode: string;
  amount: bigint;
  currency: string;
  payeeName: string;
  expiresAtMs: number;
  /**
   * Names this code for the channel's own de-duplication (a keyed digest, never the code): a
   * resumed create that had to mint a new code sends it, the same code is never sent twice.
   */
  deliveryKey: string;
}

/** A call to the payer's phone that announces the payment and collects the password as DTMF. */
export interface PasswordCall {
  paymentId: string;
  payerId: string;
  phone: string;
  amount: bigint;
  currency: string;
  payeeName: string;
  description: string;
}

export interface Notifier {
  readonly channel: 'CONSOLE' | 'SMS' | 'VOICE';
  deliverFirstCode(delivery: CodeDelivery): Promise<void>;
  /** Places the call; the keyed password comes back through PayerService.ConfirmPayment. */
  callForPassword(call: PasswordCall): Promise<void>;
}

/** The embedded default: prints the message a payer would receive, on its own stream. */
export class ConsoleNotifier implements Notifier {
  readonly channel = 'CONSOLE';

  constructor(private readonly write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)) {}

  async deliverFirstCode(d: CodeDelivery): Promise<void> {
    const seconds = Math.max(0, Math.round((d.expiresAtMs - Date.now()) / 1000));
    this.write(
      `[console → ${d.phone}] countersign: your code for ${formatMoney(d.amount, d.currency)} to ${d.payeeName} is ${d.firstCode} (payment ${d.paymentId}, valid ${seconds} s)`,
    );
  }

  async callForPassword(c: PasswordCall): Promise<void> {
    this.write(
      `[console call → ${c.phone}] countersign: a payment of ${formatMoney(c.amount, c.currency)} to ${c.payeeName} waits for your password (payment ${c.paymentId}); key it on your terminal`,
    );
  }
}

/** Keeps deliveries in memory: for tests and the in-process demo, which act as the payer's handset. */
export class InboxNotifier implements Notifier {
  readonly channel = 'CONSOLE';
  /** Most recent delivery per payment. At most `inboxMax` kept. */
  private readonly inbox = new Map<string, CodeDelivery>();
  static readonly inboxMax = 100_000;

  async deliverFirstCode(delivery: CodeDelivery): Promise<void> {
    if (this.inbox.size >= InboxNotifier.inboxMax) this.inbox.delete(this.inbox.keys().next().value!);
    this.inbox.set(delivery.paymentId, delivery);
  }

  firstCodeFor(paymentId: string): string | undefined {
    return this.inbox.get(paymentId)?.firstCode;
  }

  /** Calls placed, in order (at most `inboxMax` kept). */
  readonly calls: PasswordCall[] = [];

  async callForPassword(call: PasswordCall): Promise<void> {
    if (this.calls.length >= InboxNotifier.inboxMax) this.calls.shift();
    this.calls.push(call);
  }
}
