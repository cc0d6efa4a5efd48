import type { CallPlacement, GatherSpec } from './channels.js';
import { amountWords } from './money-words.js';

/**
 * What a payment call says and asks, independent of how it is played (TwiML webhooks, the
 * console): the announcement, the DTMF gather with re-prompts on silence, and the answer to
 * each keyed password after authz has checked it. Digits and codes never leave this module
 * except towards authz (`confirm`) and the caller's ear.
 */

export type IvrStep =
  | { kind: 'say'; text: string }
  /** Collects digits; its result belongs to `round` (the attempt number towards authz). */
  | { kind: 'gather'; round: number; spec: GatherSpec; say: string[] }
  /** After a silent gather: ask the dialogue again (re-prompt). */
  | { kind: 'redirect'; afterRound: number }
  | { kind: 'hangup' };

/** What authz answered to a keyed password, as the call needs it. */
export type ConfirmOutcome =
  /** OK, payment SUCCEEDED or APPROVED. */
  | { kind: 'approved' }
  /** OK, payment still CHALLENGED (other factors pending). */
  | { kind: 'accepted-more-needed' }
  /** OK with a final non-approved state, RESOURCE_EXHAUSTED or FAILED_PRECONDITION. */
  | { kind: 'declined' }
  /** PERMISSION_DENIED: a wrong password; `attemptsLeft` from ErrorInfo when given. */
  | { kind: 'wrong'; attemptsLeft: number | undefined }
  /** UNAVAILABLE or DEADLINE_EXCEEDED: authz could not be asked. */
  | { kind: 'unavailable' }
  /** Anything else (NOT_FOUND, INVALID_ARGUMENT, INTERNAL…). */
  | { kind: 'error' };

/** Asks authz to verify a password keyed for the payment `reference`. `password` is SECRET. */
export type ConfirmPassword = (input: { reference: string; idempotencyKey: string; password: string }) => Promise<ConfirmOutcome>;

export interface IvrLimits {
  /** passwordRepromptsMax: after a wrong password, ask again at most this many times per call. */
  passwordRepromptsMax: number;
}

/** Four re-prompts: five tries per call, as many as authz allows per challenge (attemptsMax 5), so a call can end in the decline. */
export const ivrLimitsDefault: IvrLimits = { passwordRepromptsMax: 4 };

export const sayNoInput = 'We did not receive any input.';
export const sayNoInputGoodbye = 'We did not receive any input. Goodbye.';
export const sayApproved = 'Payment approved. Goodbye.';
export const sayAcceptedMoreNeeded = 'Your password was accepted. The payment needs one more confirmation. Goodbye.';
export const sayWrongPassword = 'That password is not correct.';
export const sayWrongPasswordGoodbye = 'That password is not correct. Goodbye.';
export const sayDeclined = 'The payment was declined. Goodbye.';
export const sayUnavailable = 'Sorry, we cannot check your password right now. Please try again later. Goodbye.';
export const sayError = 'Sorry, we cannot complete this payment. Goodbye.';

const keyNames: Record<string, string> = { '#': 'hash', '*': 'star' };

/** "Payment of forty-two dollars to Corner Bakery." */
export function announcementText(call: CallPlacement): string {
  const a = call.announcement;
  const what = a.description === '' ? '' : `, for ${a.description}`;
  return `Payment of ${amountWords(a.amount, a.currency)} to ${a.payeeName}${what}.`;
}

/** "Enter your password followed by the hash key." */
export function instructionText(gather: GatherSpec): string {
  if (gather.finishKey === '') return 'Enter your password.';
  return `Enter your password followed by the ${keyNames[gather.finishKey] ?? gather.finishKey} key.`;
}

/** "5, 8, 2, 0" — one character at a time, so speech engines do not read it as a number. */
export function spelledOut(code: string): string {
  return code.split('').join(', ');
}

/** One call's dialogue state. Rounds number the gathers; results are kept per round so a retried webhook gets the same answer. */
export class IvrSession {
  private round = 0;
  private silences = 0;
  private wrongPasswords = 0;
  private ended = false;
  private readonly results = new Map<number, Promise<IvrStep[]>>();

  constructor(
    readonly call: CallPlacement,
    private readonly confirm: ConfirmPassword,
    private readonly limits: IvrLimits,
    /** Told once per gather that produced digits (never the digits). */
    private readonly onDigits: () => void,
  ) {}

  get finished(): boolean {
    return this.ended;
  }

  /** The call was answered: the announcement and the first gather, or the spoken code. */
  open(): IvrStep[] {
    if (this.ended) return [{ kind: 'hangup' }];
    const code = this.call.announcement.spokenCode;
    if (code !== '') {
      this.ended = true;
      const spoken = spelledOut(code);
      return [
        { kind: 'say', text: `${announcementText(this.call)} Your code is: ${spoken}.` },
        { kind: 'say', text: `Again, your code is: ${spoken}.` },
        { kind: 'say', text: 'Goodbye.' },
        { kind: 'hangup' },
      ];
    }
    if (this.round === 0) this.round = 1;
    return this.gatherSteps([announcementText(this.call), instructionText(this.call.gather)]);
  }

  /** The gather of `afterRound` ended without digits. */
  silence(afterRound: number): IvrStep[] {
    if (this.ended) return [{ kind: 'hangup' }];
    if (afterRound !== this.round) return this.gatherSteps([instructionText(this.call.gather)]); // a retried request
    if (this.silences >= this.call.gather.attemptsMax) return this.end(sayNoInputGoodbye);
    this.silences++;
    this.round++;
    return this.gatherSteps([announcementText(this.call), instructionText(this.call.gather)]);
  }

  /** Digits keyed for the gather of `round` (SECRET). `providerCallId` names the call in idempotency keys. */
  digits(round: number, digits: string, providerCallId: string): Promise<IvrStep[]> {
    const known = this.results.get(round);
    if (known !== undefined) return known;
    if (this.ended || round !== this.round) return Promise.resolve([{ kind: 'hangup' }]);
    if (digits === '') return Promise.resolve(this.silence(round));
    const result = this.check(round, digits, providerCallId);
    this.results.set(round, result);
    return result;
  }

  private async check(round: number, password: string, providerCallId: string): Promise<IvrStep[]> {
    this.onDigits();
    const outcome = await this.confirm({ reference: this.call.reference, idempotencyKey: `ivr-${providerCallId}-${round}`, password });
    switch (outcome.kind) {
      case 'approved':
        return this.end(sayApproved);
      case 'accepted-more-needed':
        return this.end(sayAcceptedMoreNeeded);
      case 'declined':
        return this.end(sayDeclined);
      case 'unavailable':
        return this.end(sayUnavailable);
      case 'error':
        return this.end(sayError);
      case 'wrong':
        return this.wrong(outcome.attemptsLeft);
    }
  }

  private wrong(attemptsLeft: number | undefined): IvrStep[] {
    this.wrongPasswords++;
    if (this.wrongPasswords > this.limits.passwordRepromptsMax || attemptsLeft === 0) return this.end(sayWrongPasswordGoodbye);
    this.round++;
    const left = attemptsLeft === undefined ? [] : [`You have ${attemptsLeft === 1 ? 'one attempt' : `${attemptsLeft} attempts`} left.`];
    return [{ kind: 'say', text: sayWrongPassword }, ...this.gatherSteps([...left, instructionText(this.call.gather)])];
  }

  /** The gather of the current round, then what happens on silence: re-prompt or goodbye. */
  private gatherSteps(say: string[]): IvrStep[] {
    const gather: IvrStep = { kind: 'gather', round: this.round, spec: this.call.gather, say };
    if (this.silences >= this.call.gather.attemptsMax) return [gather, { kind: 'say', text: sayNoInputGoodbye }, { kind: 'hangup' }];
    return [gather, { kind: 'say', text: sayNoInput }, { kind: 'redirect', afterRound: this.round }];
  }

  private end(text: string): IvrStep[] {
    this.ended = true;
    return [{ kind: 'say', text }, { kind: 'hangup' }];
  }
}
