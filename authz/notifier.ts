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
}

export interface Notifier {
  readonly channel: 'CONSOLE' | 'SMS' | 'VOICE';
  deliverFirstCode(delivery: CodeDelivery): Promise<void>;
}

/** The embedded default: prints the message a payer would receive, on its own stream. */
export class ConsoleNotifier implements Notifier {
  readonly channel = 'CONSOLE';

  constructor(
    private readonly write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
    private readonly format: (amount: bigint, currency: string) => string = (a, c) => `${c} ${a} (minor units)`,
  ) {}

  async deliverFirstCode(d: CodeDelivery): Promise<void> {
    const seconds = Math.max(0, Math.round((d.expiresAtMs - Date.now()) / 1000));
    this.write(`[console → ${d.phone}] countersign: your code for ${this.format(d.amount, d.currency)} to ${d.payeeName} is ${d.firstCode} (payment ${d.paymentId}, valid ${seconds} s)`);
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
}
