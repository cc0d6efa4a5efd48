import { DomainError, notFound } from './errors.js';
import { type Proof, pendingFactors } from './factors/index.js';
import type { Caller, Factor, Merchant, Payment } from './model.js';
import type { BankKey } from './ports.js';
import { ChallengeOwners } from './steps/challenge-owners.js';
import { type ConfirmRequest, ConfirmStep, visibleTo } from './steps/confirm.js';
import type { ItemOutcome, StepDeps } from './steps/context.js';
import { CreateStep } from './steps/create.js';
import { type CreatePaymentInput, isTerminalChannel } from './steps/create-prepare.js';
import { drive } from './steps/drive.js';
import { RefuseStep } from './steps/refuse.js';
import { sweep } from './steps/sweep.js';
import { type PaymentQuery, type PaymentRecord, pageMax } from './store/port.js';
import { checkHexId } from './validation.js';

export type { Proof } from './factors/index.js';
export type { ConfirmRequest as ConfirmItem } from './steps/confirm.js';
export { type CodeKit, defaultPaymentLimits, type ItemOutcome, type PaymentLimits, type StepDeps as PaymentsDeps } from './steps/context.js';
export type { CreatePaymentInput } from './steps/create-prepare.js';

/**
 * Payments: the state machine of DESIGN.md §3 as four batch steps — create, confirm, refuse and
 * the sweeper's drive — over the payment store (one atomic store operation per step and batch)
 * and the ledger (one request per step and batch). A unary call is a batch of one; concurrent
 * unary calls meet in the store's and the ledger's coalescing decorators. This class only routes.
 *
 * CREATED → (policy) → CHALLENGED, or APPROVED at once when no factor is needed; a right answer
 * for every required factor → APPROVED → reserve and post (linked with the fee) → SUCCEEDED, or
 * DECLINED for funds: no money is held before the payer consents. Decline, cancel, exhausted
 * attempts, lockout and expiry move no money (a reservation an earlier version made at create is
 * voided). Every ledger step uses ids
 * derived from the payment id, so any process may redo it: a payment is SUCCEEDED iff its post
 * is in the ledger (see reconcile.ts).
 */
export class PaymentsService {
  private readonly creates: CreateStep;
  private readonly confirms: ConfirmStep;
  private readonly refusals: RefuseStep;

  constructor(readonly deps: StepDeps) {
    // The payments this process challenged, by id: a merchant's second code then needs no read (challenge-owners.ts).
    const owners = new ChallengeOwners();
    this.creates = new CreateStep(deps, owners);
    this.confirms = new ConfirmStep(deps, owners);
    this.refusals = new RefuseStep(deps);
  }

  /** `merchant` may still be being read (the handler's directory lookup): the payer is read meanwhile. */
  async create(merchant: Merchant | Promise<Merchant>, input: CreatePaymentInput): Promise<Payment> {
    return one(await this.creates.run(merchant, [input]));
  }

  /** BatchCreatePayments: each item's outcome as `create` gives it. */
  createMany(merchant: Merchant, inputs: CreatePaymentInput[]): Promise<ItemOutcome[]> {
    return this.creates.run(merchant, inputs);
  }

  /** Proof for one factor of a CHALLENGED payment, by its payer, (M1c) its merchant, or the telco bridge relaying the payer. */
  async confirm(caller: Caller, paymentId: string, idempotencyKey: string, proof: Proof): Promise<Payment> {
    return one(await this.confirms.run(caller, [{ paymentId, idempotencyKey, proof }]));
  }

  /** BatchConfirmPayments: each item's outcome as `confirm` gives it. */
  confirmMany(caller: Caller, items: ConfirmRequest[]): Promise<ItemOutcome[]> {
    return this.confirms.run(caller, items);
  }

  /** A merchant cancels its own payment, or a payer declines one of theirs. */
  async refuse(caller: Caller, paymentId: string, idempotencyKey: string, reason: string): Promise<Payment> {
    return one(await this.refusals.run(caller, [{ paymentId, idempotencyKey, reason }]));
  }

  /**
   * RotateSecret: declines (SECRET_ROTATED, through the refuse step, as an operator) the payer's
   * payments still CHALLENGED under a secret version below `secretVersion`, so their merchants see
   * them closed at once; returns how many. At most `rotationClosePagesMax` pages of `pageMax`: any
   * beyond (or created meanwhile from a stale directory read) are refused at their confirm.
   */
  async closeChallenges(payerId: string, secretVersion: number): Promise<number> {
    const admin: Caller = { kind: 'admin' };
    let closed = 0;
    let afterId: string | undefined;
    for (let page = 0; page < rotationClosePagesMax; page++) {
      const open = await this.deps.store.list({ payerId, states: ['CHALLENGED'], limit: pageMax, ...(afterId === undefined ? {} : { afterId }) });
      const stale = open.filter((p) => (p.secretVersion ?? 1) < secretVersion);
      if (stale.length > 0) {
        const requests = stale.map((p) => ({
          paymentId: p.id,
          idempotencyKey: `secret-rotated-v${secretVersion}`,
          reason: 'the payer’s verification secret was rotated',
          decline: 'SECRET_ROTATED' as const,
        }));
        const outcomes = await this.refusals.run(admin, requests);
        // A payment answered or cancelled meanwhile is refused here (FAILED_PRECONDITION): it is closed either way.
        closed += outcomes.filter((o) => o.status === 'fulfilled').length;
      }
      if (open.length < pageMax) break;
      afterId = open[open.length - 1]!.id;
    }
    return closed;
  }

  /** The payment if the caller may see it (NOT_FOUND otherwise: no existence leak), driven on if a step left it half done. */
  async get(caller: Caller, paymentId: string): Promise<Payment> {
    const record = await this.visible(caller, paymentId);
    const p = record.payment;
    const unfinished = p.state === 'APPROVED' || (p.state === 'CHALLENGED' && this.deps.now() >= p.expiresAtMs);
    return unfinished ? (await drive(this.deps, [record]))[0]!.payment : p;
  }

  /** The record as stored (for reconcile and tests). */
  async record(paymentId: string): Promise<PaymentRecord | undefined> {
    return (await this.deps.store.get([paymentId]))[0];
  }

  list(query: PaymentQuery): Promise<Payment[]> {
    return this.deps.store.list(query);
  }

  /**
   * The first code for the payer's own terminal (channel APP/WEB), while the payment is CHALLENGED
   * (the payer service shows it only where no factor needs the SMS: `terminalShowsFirstCode`).
   */
  async firstCodeForTerminal(caller: Caller, payment: Payment): Promise<string | undefined> {
    if (caller.kind !== 'payer' || caller.payerId !== payment.payerId || !isTerminalChannel(payment.channel)) return undefined;
    if (payment.state !== 'CHALLENGED' || payment.sealedFirstCode === undefined) return undefined;
    return this.deps.codes.openFirstCode(payment.id, payment.sealedFirstCode);
  }

  /** Attempts left on the payment's current challenge (0 when nothing is challenged). */
  attemptsLeft(payment: Payment): number {
    return payment.state === 'CHALLENGED' ? payment.attemptsLeft : 0;
  }

  /** The factors still to prove. */
  pending(payment: Payment): Factor[] {
    return pendingFactors(payment);
  }

  /** M5: the bank key terminals seal for, while the payment waits for FACTOR_BANK_CARD_PIN. */
  async bankKeyFor(payment: Payment): Promise<BankKey | undefined> {
    const waiting = payment.state === 'CHALLENGED' && payment.requiredFactors.includes('BANK_CARD_PIN') && !payment.satisfiedFactors.includes('BANK_CARD_PIN');
    if (!waiting || this.deps.bank === undefined) return undefined;
    try {
      return await this.deps.bank.publicKey();
    } catch (cause) {
      throw new DomainError('unavailable', 'the bank front-end could not be reached for its key; retry shortly', { reason: 'BANK_UNAVAILABLE' }, { cause });
    }
  }

  /** The sweeper: drives up to `limit` payments whose due time has come; returns how many. */
  sweep(limit: number): Promise<number> {
    return sweep(this.deps, limit);
  }

  private async visible(caller: Caller, paymentId: string): Promise<PaymentRecord> {
    checkHexId(paymentId, 'payment_id');
    const [record] = await this.deps.store.get([paymentId]);
    if (!visibleTo(caller, record?.payment)) throw notFound(`payment ${paymentId} not found`);
    return record!;
  }
}

/** Pages of open challenges `closeChallenges` declines at most (`pageMax` payments each). */
export const rotationClosePagesMax = 100;

function one(outcomes: ItemOutcome[]): Payment {
  const [outcome] = outcomes;
  if (outcome!.status === 'rejected') throw outcome!.reason;
  return outcome!.value;
}
