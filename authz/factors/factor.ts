import type { Caller, Factor, Payer, Payment } from '../model.js';
import type { BankGateway } from '../ports.js';
import type { ConfirmAnswer, PaymentRecord } from '../store/port.js';
import type { Proof, ProofKind } from './proof.js';

/**
 * A proof method, one module each (factors/*.ts), registered in factors/index.ts. Everything the
 * steps need to know about a factor is here, so a new method is one module plus its proto field.
 */
export interface FactorModule<K extends ProofKind = ProofKind> {
  readonly factor: Factor;
  /** The proof that answers it (ConfirmPayment's `proof` case). */
  readonly proofKind: K;
  /** How a wrong answer is named in messages ("wrong second code"). */
  readonly noun: string;
  /** The store keeps the keyed digest of its expected answer (the bank's factor is decided outside). */
  readonly challenged: boolean;
  /** Its answer carries the first code, so that code must reach the payer (SMS or voice, unless the payer's own terminal shows it). */
  readonly usesFirstCode: boolean;
  /** When also required, these are satisfied first (M2: the SMS code before the call's password). */
  readonly after: readonly Factor[];
  /** Who may give the proof. */
  readonly provers: ReadonlySet<Caller['kind']>;
  /** What `answer` needs first: the payment read (to check it against the proof), and its payer. */
  readonly needs: { record: boolean; payer: boolean };
  /** Whether this deployment can collect it. */
  available(deployment: { bank: boolean }): boolean;
  /** What the payer must have set up for it; checked at create, before anything is reserved. */
  missingAtCreate?(payer: Payer): string | undefined;
  /** The answer a challenged factor expects, before it is digested. */
  expected?(codes: { firstCode: string; secondCode: () => string }): string;
  /**
   * The proof as the store's answer: format checks (INVALID_ARGUMENT, thrown), argon2 checks, a
   * decision from outside. A module that needs no I/O answers in place (no promise): the confirm
   * step then answers a whole batch in one loop.
   */
  answer(proof: Extract<Proof, { kind: K }>, context: ProofContext): ConfirmAnswer | Promise<ConfirmAnswer>;
}

export interface ProofContext {
  caller: Caller;
  paymentId: string;
  /** The payment as read before the step (`needs.record`). */
  record: PaymentRecord | undefined;
  /** Its payer (`needs.payer`). */
  payer: Payer | undefined;
  digest(response: string): string;
  verifySecret(phc: string, candidate: string): Promise<boolean>;
  bank: BankGateway | undefined;
}

/** The store's key for a factor's challenge digest context: the payment and the factor. */
export function challengeIdOf(paymentId: string, factor: Factor): string {
  return `${paymentId}:${factor}`;
}

/** The answer a proof compared by its digest gives. */
export function digestAnswer(context: ProofContext, response: string): ConfirmAnswer {
  return { kind: 'digest', digest: context.digest(response) };
}

/** Pending factors of a payment, in required order. */
export function pendingFactors(payment: Payment): Factor[] {
  return payment.requiredFactors.filter((f) => !payment.satisfiedFactors.includes(f));
}
