import type { CapturedSms, ReceiptPolicy, Smsc } from './smsc.js';
import type { SimulatedCall, VoiceProvider } from './voice-provider.js';

/**
 * A payer's phone on the simulated networks: its SMS inbox and replies (through the SMSC), and
 * what it does when called (through the voice provider). Tests and the demo script a payer
 * with it: `await phone.waitForSms(…)`, `phone.answerCallsWith('4321#')`, `await phone.reply(code)`.
 */
export class Handset {
  constructor(
    /** E.164. */
    readonly number: string,
    private readonly smsc: Smsc | undefined,
    private readonly voice: VoiceProvider | undefined,
  ) {}

  private needSmsc(): Smsc {
    if (this.smsc === undefined) throw new Error(`handset ${this.number}: no SMSC`);
    return this.smsc;
  }

  private needVoice(): VoiceProvider {
    if (this.voice === undefined) throw new Error(`handset ${this.number}: no voice provider`);
    return this.voice;
  }

  /** SMS received so far. */
  inbox(): CapturedSms[] {
    return this.needSmsc().messagesTo(this.number);
  }

  /** The `index`-th SMS (0 = first), waiting at most `timeoutMs`. */
  waitForSms(timeoutMs: number, index = 0): Promise<CapturedSms> {
    return this.needSmsc().waitForMessage(this.number, timeoutMs, index);
  }

  /** What the network reports for SMS to this phone: delivered, failed, no receipt, or refused. */
  receipts(policy: ReceiptPolicy): void {
    this.needSmsc().setReceiptPolicy(this.number, policy);
  }

  /** The payer replies by SMS. */
  reply(text: string): Promise<void> {
    return this.needSmsc().sendMo(this.number, text);
  }

  /** Answers the next calls and keys these entries, one per prompt ('' stays silent; a trailing '#' is the finish key). */
  answerCallsWith(...keyed: string[]): void {
    this.needVoice().handset(this.number, keyed);
  }

  /** The next calls ring out, meet a busy line, or fail. */
  refuseCalls(how: 'no-answer' | 'busy' | 'failed'): void {
    this.needVoice().handset(this.number, how);
  }

  /** The `index`-th call to this phone once it is over (what it heard: `.says`). */
  waitForCallEnd(timeoutMs: number, index = 0): Promise<SimulatedCall> {
    return this.needVoice().waitForCallEnd(this.number, timeoutMs, index);
  }
}
