import { createInterface } from 'node:readline';
import type { Accepted, CallPlacement, SmsChannel, SmsChannelListener, SmsSubmission, VoiceChannel, VoiceChannelListener } from './channels.js';
import { type ConfirmPassword, type IvrLimits, IvrSession, type IvrStep } from './ivr-dialogue.js';

/**
 * The embedded default channel: SMS and call announcements are printed to `output` (codes
 * included: this IS the delivery channel, not a log), and a call's password is read as a line
 * of keyed digits from `input` when one is given. Calls run one at a time.
 */

export interface ConsoleChannelOptions {
  output: NodeJS.WritableStream;
  input?: NodeJS.ReadableStream;
  /** A console gather waits this long for a line before it counts as silence. */
  inputTimeoutMs: number;
}

/** Lines typed ahead of a gather, kept at most. */
const pendingLinesMax = 32;
/** Steps one console call may take (gathers, says, re-prompts), at most. */
const callStepsMax = 200;

export class ConsoleChannel implements SmsChannel, VoiceChannel {
  private readonly lines: string[] = [];
  private waiter: ((line: string | undefined) => void) | undefined;
  private calls: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly readline;

  constructor(
    private readonly options: ConsoleChannelOptions,
    private readonly sms: SmsChannelListener,
    private readonly voice: VoiceChannelListener,
    private readonly confirm: ConfirmPassword,
    private readonly ivrLimits: IvrLimits,
  ) {
    this.readline = options.input === undefined ? undefined : createInterface({ input: options.input, terminal: false });
    this.readline?.on('line', (line) => {
      if (this.waiter !== undefined) this.waiter(line);
      else if (this.lines.length < pendingLinesMax) this.lines.push(line);
    });
  }

  private print(line: string): void {
    this.options.output.write(`${line}\n`);
  }

  submit(sms: SmsSubmission): Accepted {
    if (this.closed) return { ok: false, code: 'UNAVAILABLE', message: 'the console channel is closed' };
    this.print(`[sms → ${sms.to}] ${sms.text}`);
    queueMicrotask(() => {
      this.sms.sent(sms.messageId);
      this.sms.delivered(sms.messageId);
    });
    return { ok: true };
  }

  async place(call: CallPlacement): Promise<Accepted> {
    if (this.closed) return { ok: false, code: 'UNAVAILABLE', message: 'the console channel is closed' };
    this.calls = this.calls.then(() => this.run(call)).catch(() => this.voice.failed(call.callId, 'console error'));
    return { ok: true };
  }

  private async run(call: CallPlacement): Promise<void> {
    if (this.closed) return this.voice.failed(call.callId, 'console closed');
    const session = new IvrSession(call, this.confirm, this.ivrLimits, () => this.voice.digits(call.callId));
    this.print(`[call → ${call.to}] payment ${call.reference}`);
    if (this.readline === undefined && call.announcement.spokenCode === '') {
      this.print('[call] no console input: nobody can key a password');
      return this.voice.noAnswer(call.callId);
    }
    this.voice.answered(call.callId);
    let steps = session.open();
    for (let taken = 0; taken < callStepsMax && steps.length > 0; taken++) {
      const next = await this.play(session, steps);
      if (next === undefined) return;
      steps = next;
    }
  }

  /** Plays steps until the call hangs up (undefined) or the dialogue continues with new steps. */
  private async play(session: IvrSession, steps: IvrStep[]): Promise<IvrStep[] | undefined> {
    for (const step of steps) {
      if (step.kind === 'say') this.print(`[call] ${step.text}`);
      else if (step.kind === 'hangup') return undefined;
      else if (step.kind === 'redirect') return session.silence(step.afterRound);
      else {
        for (const text of step.say) this.print(`[call] ${text}`);
        const line = await this.nextLine();
        const keys = (line ?? '').trim();
        const digits = (step.spec.finishKey === '' ? keys : keys.split(step.spec.finishKey)[0]!).replace(/[^0-9*#]/g, '').slice(0, step.spec.digitsMax);
        if (digits !== '') return session.digits(step.round, digits, session.call.callId);
      }
    }
    return undefined;
  }

  private nextLine(): Promise<string | undefined> {
    const typed = this.lines.shift();
    if (typed !== undefined) return Promise.resolve(typed);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), this.options.inputTimeoutMs);
      const done = (line: string | undefined) => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve(line);
      };
      this.waiter = done;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiter?.(undefined);
    this.readline?.close();
  }
}
