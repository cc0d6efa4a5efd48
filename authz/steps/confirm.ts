import { DomainError, notFound, precondition } from '../errors.js';
import { bankUnreachableDetail } from '../factors/bank-card.js';
import type { ProofContext } from '../factors/factor.js';
import { challengeIdOf, checkProver, type FactorModule, type Proof } from '../factors/index.js';
import { ivrPassword } from '../factors/ivr-password.js';
import { confirmFields, legacyConfirmFingerprint } from '../fingerprint.js';
import { type Caller, type Factor, type Payer, type Payment, terminalStates } from '../model.js';
import type { BankGateway } from '../ports.js';
import type { ConfirmAnswer, ConfirmItem, ConfirmOutcome, PaymentRecord, StepCaller } from '../store/port.js';
import { checkHexId, checkIdempotencyKey } from '../validation.js';
import type { ChallengeOwner, ChallengeOwners } from './challenge-owners.js';
import { type CodeKit, fulfilled, type ItemOutcome, publish, rejected, type StepDeps } from './context.js';
import { callDue, deliverOrDecline, sendChallenge } from './deliver.js';
import { drive } from './drive.js';
import { operationRefusal } from './refusals.js';

export interface ConfirmRequest {
  paymentId: string;
  idempotencyKey: string;
  proof: Proof;
}

/** Idempotency keys of payment operations are scoped to the caller (and, in the store, to the payment). */
export function scopeOf(caller: Caller): string {
  if (caller.kind === 'merchant') return caller.merchantId;
  if (caller.kind === 'payer') return caller.payerId;
  return caller.kind;
}

/** The caller as the store checks visibility: a merchant sees its own payments, a payer theirs. */
export function stepCaller(caller: Caller): StepCaller {
  if (caller.kind === 'merchant') return { scope: caller.merchantId, merchantId: caller.merchantId };
  if (caller.kind === 'payer') return { scope: caller.payerId, payerId: caller.payerId };
  return { scope: caller.kind };
}

export function visibleTo(caller: Caller, payment: Payment | undefined): payment is Payment {
  if (payment === undefined) return false;
  if (caller.kind === 'merchant') return payment.merchantId === caller.merchantId;
  if (caller.kind === 'payer') return payment.payerId === caller.payerId;
  return true;
}

interface Work {
  index: number;
  request: ConfirmRequest;
  module: FactorModule;
  record?: PaymentRecord;
  payer?: Payer;
  item?: ConfirmItem;
  /** A second code whose payment may have been challenged under an earlier secret: its record is read to compare. */
  checksSecret?: boolean;
  /** Its payment was challenged under an earlier secret version than the payer's: declined instead of compared. */
  rotated?: boolean;
  /** The payment's owners and secret version, when this process challenged it (`checkOwners`: then read only if challenged under an older secret). */
  owner?: ChallengeOwner;
}

/**
 * The confirm step, for one proof or a batch (BatchConfirmPayments; unary calls coalesce in the
 * store decorator): the factor module turns each proof into the store's answer (format checks,
 * argon2, the bank), then ONE store step verifies every answer and records its outcome with the
 * idempotency result — a right answer is consumed in the same atomic operation that records the
 * approval — and then the approved payments are posted and the declined ones voided together.
 */
export class ConfirmStep {
  constructor(
    private readonly deps: StepDeps,
    private readonly owners: ChallengeOwners,
  ) {}

  async run(caller: Caller, requests: readonly ConfirmRequest[]): Promise<ItemOutcome[]> {
    const outcomes = new Array<ItemOutcome>(requests.length);
    const work: Work[] = [];
    requests.forEach((request, index) => {
      try {
        checkIdempotencyKey(request.idempotencyKey);
        const module = checkProver(caller, request.proof);
        checkHexId(request.paymentId, 'payment_id');
        work.push({ index, request, module });
      } catch (error) {
        outcomes[index] = rejected(error);
      }
    });
    const answered = await this.answers(caller, work, outcomes);
    if (answered.length === 0) return outcomes;
    let results: ConfirmOutcome[];
    try {
      results = await this.deps.store.confirm(answered.map((w) => w.item!));
    } catch (error) {
      for (const w of answered) outcomes[w.index] = rejected(error);
      return outcomes;
    }
    await this.askLegacyConflicts(answered, results, outcomes);
    await this.finish(answered, results, outcomes);
    return outcomes;
  }

  /**
   * Items answered `conflict` asked once more with the fingerprint an earlier version stored for
   * the same request (fingerprint.ts): its key then answers as it would have (`replayed`), another
   * request's as before (`conflict`). A conflict changes nothing in the store, so asking again
   * counts no attempt. `results` takes the second answers; if the store fails, only these items
   * are answered with its error (the others' outcomes are recorded already).
   */
  private async askLegacyConflicts(work: Work[], results: ConfirmOutcome[], outcomes: ItemOutcome[]): Promise<void> {
    const again: number[] = [];
    results.forEach((r, k) => r.outcome === 'conflict' && again.push(k));
    if (again.length === 0) return;
    const items = again.map((k) => {
      const { paymentId, proof } = work[k]!.request;
      return { ...work[k]!.item!, fingerprint: legacyConfirmFingerprint(this.deps.codes, paymentId, proof) };
    });
    try {
      const answers = await this.deps.store.confirm(items);
      again.forEach((k, i) => (results[k] = answers[i]!));
    } catch (error) {
      for (const k of again) outcomes[work[k]!.index] = rejected(error);
    }
  }

  /**
   * Reads what the modules need (one store read, payers from the directory), then each proof's
   * answer. A second code is compared only if its payment was challenged under the payer's
   * current secret (RotateSecret): its record is read too, except for a payer's own call while
   * the payer has never rotated (version 1: no payment of theirs can be older; no extra read), and
   * for a payment this process challenged under the payer's current secret (`checkOwners`).
   */
  private async answers(caller: Caller, work: Work[], outcomes: ItemOutcome[]): Promise<Work[]> {
    await this.markSecretChecks(caller, work, outcomes);
    await this.checkOwners(caller, work, outcomes);
    const reading = work.filter((w) => outcomes[w.index] === undefined && (w.module.needs.record || w.module.needs.payer || w.checksSecret === true));
    if (reading.length > 0) {
      try {
        const records = await this.deps.store.get(reading.map((w) => w.request.paymentId));
        reading.forEach((w, i) => (w.record = records[i]));
      } catch (error) {
        for (const w of reading) outcomes[w.index] = rejected(error);
      }
    }
    // One loop over the batch: an item whose answer needs no directory read and no I/O (a second
    // code, an SMS code, a paired device's first code) is answered in place; only the others
    // (argon2, the bank, a payer to read) wait, together.
    const ready: Work[] = [];
    const waiting: Promise<void>[] = [];
    for (const w of work) {
      if (outcomes[w.index] !== undefined) continue;
      try {
        if ((w.module.needs.record || w.module.needs.payer) && !visibleTo(caller, w.record?.payment))
          throw notFound(`payment ${w.request.paymentId} not found`);
        if (w.module.needs.payer || (w.checksSecret === true && visibleTo(caller, w.record?.payment))) {
          waiting.push(this.answerLater(caller, w, this.answerAfterPayer(caller, w), outcomes, ready));
          continue;
        }
        const answer = this.answerOf(caller, w);
        if (answer instanceof Promise) waiting.push(this.answerLater(caller, w, answer, outcomes, ready));
        else {
          w.item = this.itemOf(caller, w, answer);
          ready.push(w);
        }
      } catch (error) {
        outcomes[w.index] = rejected(error);
      }
    }
    if (waiting.length > 0) await Promise.all(waiting);
    return ready.sort((a, b) => a.index - b.index); // one payer's answers count toward its lockout in request order
  }

  /** The answer of an item whose module needs the payer, or whose payment's secret version is compared with the payer's. */
  private async answerAfterPayer(caller: Caller, w: Work): Promise<ConfirmAnswer> {
    if (w.module.needs.payer) w.payer = await this.deps.directory.getPayer(w.record!.payment.payerId);
    if (w.checksSecret === true && visibleTo(caller, w.record?.payment)) {
      const payer = w.payer ?? (await this.deps.directory.getPayer(w.record.payment.payerId));
      w.rotated = payer !== undefined && challengedUnderOlderSecret(w.record.payment, payer.secretVersion);
    }
    return this.answerOf(caller, w);
  }

  /** The item of an answer that comes later (a payer to read, argon2, the bank), or its failure as the item's outcome. */
  private async answerLater(caller: Caller, w: Work, answer: Promise<ConfirmAnswer>, outcomes: ItemOutcome[], ready: Work[]): Promise<void> {
    try {
      w.item = this.itemOf(caller, w, await answer);
      ready.push(w);
    } catch (error) {
      outcomes[w.index] = rejected(error);
    }
  }

  /**
   * Second codes on payments this process challenged: their owners and secret version are known
   * (challenge-owners.ts). One not the caller's, or challenged under the payer's current secret,
   * needs no check (a read would find the same: not visible, or not older); one challenged under
   * an older secret is read as before, so that its state decides exactly as
   * `challengedUnderOlderSecret` does (a payment no longer waiting for the code is answered as any).
   */
  private async checkOwners(caller: Caller, work: Work[], outcomes: ItemOutcome[]): Promise<void> {
    // Each payer's secret version read once for the batch (a payer's payments are often many).
    const versions = new Map<string, Promise<number | undefined>>();
    const asked: Work[] = [];
    for (const w of work) {
      if (w.checksSecret !== true || outcomes[w.index] !== undefined) continue;
      const owner = this.owners.get(w.request.paymentId);
      if (owner === undefined) continue;
      w.owner = owner;
      if (!ownerIs(caller, owner)) {
        w.checksSecret = false; // not the caller's: answered NOT_FOUND by the store, as a read would find
        continue;
      }
      if (!versions.has(owner.payerId)) versions.set(owner.payerId, this.secretVersionOf(owner.payerId));
      asked.push(w);
    }
    if (asked.length === 0) return;
    const payerIds = [...versions.keys()];
    const settled = await Promise.allSettled(versions.values());
    const read = new Map(payerIds.map((id, i) => [id, settled[i]!]));
    for (const w of asked) {
      const version = read.get(w.owner!.payerId)!;
      if (version.status === 'rejected') outcomes[w.index] = rejected(version.reason);
      else if (version.value === undefined || (w.owner!.secretVersion ?? 1) >= version.value) w.checksSecret = false;
    }
  }

  private async secretVersionOf(payerId: string): Promise<number | undefined> {
    return (await this.deps.directory.getPayer(payerId))?.secretVersion;
  }

  /** Which second codes need their payment's secret version compared (see `answers`). */
  private async markSecretChecks(caller: Caller, work: Work[], outcomes: ItemOutcome[]): Promise<void> {
    const codes = work.filter((w) => w.module.factor === 'SECOND_CODE');
    if (codes.length === 0) return;
    let rotatedBefore = true;
    if (caller.kind === 'payer') {
      try {
        rotatedBefore = ((await this.deps.directory.getPayer(caller.payerId))?.secretVersion ?? 1) > 1;
      } catch (error) {
        for (const w of codes) outcomes[w.index] = rejected(error);
        return;
      }
    }
    for (const w of codes) w.checksSecret = rotatedBefore;
  }

  /** The store's answer for the proof: what its module makes of it (in place, or a promise when it needs argon2 or the bank). */
  private answerOf(caller: Caller, w: Work): ConfirmAnswer | Promise<ConfirmAnswer> {
    if (w.rotated === true) return secretRotatedAnswer;
    return w.module.answer(w.request.proof as never, new ItemProofContext(caller, w, this.deps));
  }

  private itemOf(caller: Caller, w: Work, answer: ConfirmAnswer): ConfirmItem {
    const { codes, limits } = this.deps;
    const { paymentId, proof, idempotencyKey } = w.request;
    return {
      paymentId,
      caller: stepCaller(caller),
      key: idempotencyKey,
      // Keyed: a request carries codes, PINs or passwords, and an unkeyed hash of them could be reversed.
      fingerprint: codes.fingerprint(confirmFields(paymentId, proof)),
      factor: w.module.factor,
      after: w.module.after,
      answer,
      attemptsMax: limits.attemptsMax,
      keyTtlMs: limits.idempotencyTtlMs,
      nowMs: this.deps.now(),
    };
  }

  /** Each outcome to its answer; the ledger effects of all of them at once. */
  private async finish(work: Work[], results: ConfirmOutcome[], outcomes: ItemOutcome[]): Promise<void> {
    const driving: Driving[] = [];
    for (let k = 0; k < results.length; k++) {
      const w = work[k]!;
      const result = results[k]!;
      if (outcomes[w.index] !== undefined) continue; // the store failed on its second ask (askLegacyConflicts)
      const factor = w.module.factor;
      if (w.owner !== undefined && result.outcome !== 'mismatch') this.owners.forget(w.request.paymentId);
      switch (result.outcome) {
        case 'not_found':
          outcomes[w.index] = rejected(notFound(`payment ${w.request.paymentId} not found`));
          break;
        case 'conflict':
          outcomes[w.index] = rejected(
            new DomainError('already_exists', 'this idempotency key was used for a different request', { idempotency_key: w.request.idempotencyKey }),
          );
          break;
        case 'replayed': {
          const error = operationRefusal(result.result, factor);
          if (error !== undefined || result.record === undefined) outcomes[w.index] = rejected(error ?? notFound(`payment ${w.request.paymentId} not found`));
          else driving.push({ w, record: result.record, reply: 'replayed' });
          break;
        }
        case 'refused':
          // A payment RotateSecret closed says why, whatever is confirmed on it.
          outcomes[w.index] = rejected(
            result.record.payment.declineReason === 'SECRET_ROTATED' ? secretRotated(result.record.payment) : operationRefusal(result.refusal, factor),
          );
          break;
        case 'mismatch':
          outcomes[w.index] = rejected(operationRefusal(`mismatch:${result.attemptsLeft}`, factor));
          break;
        case 'expired':
        case 'exhausted':
        case 'locked': {
          publish(this.deps, [result.record]);
          const token = result.outcome === 'locked' ? `locked:${result.retryAfterMs}` : result.outcome;
          driving.push({ w, record: result.record, reply: { refusal: operationRefusal(token, factor) } });
          break;
        }
        case 'declined':
          publish(this.deps, [result.record]);
          driving.push({ w, record: result.record, reply: 'declined' });
          break;
        case 'approved':
          driving.push({ w, record: result.record, reply: 'payment' });
          break;
        case 'satisfied':
          publish(this.deps, [result.record]);
          driving.push({ w, record: result.record, reply: 'satisfied' });
          break;
      }
    }
    await this.driveAll(driving, outcomes);
  }

  /** Posts the approved (or declines them for funds), closes the declined and expired in the ledger, then each item's answer. */
  private async driveAll(driving: Driving[], outcomes: ItemOutcome[]): Promise<void> {
    if (driving.length === 0) return;
    const needs = driving.filter((d) => needsDrive(d.record));
    let driven: PaymentRecord[] = [];
    try {
      driven = await drive(
        this.deps,
        needs.map((d) => d.record),
      );
    } catch (error) {
      for (const d of needs) outcomes[d.w.index] = rejected(error);
    }
    needs.forEach((d, i) => (d.record = driven[i] ?? d.record));
    const calls: Promise<void>[] = [];
    for (const d of driving) {
      if (outcomes[d.w.index] !== undefined) continue;
      if (d.reply === 'satisfied') calls.push(this.afterSatisfied(d.w, d.record, outcomes));
      else outcomes[d.w.index] = replyOutcome(d.reply, d.record.payment);
    }
    if (calls.length > 0) await Promise.all(calls);
  }

  /** M2: the SMS code was right and the password is next: the call goes out now. */
  private async afterSatisfied(w: Work, record: PaymentRecord, outcomes: ItemOutcome[]): Promise<void> {
    const p = record.payment;
    try {
      if (p.state === 'CHALLENGED' && ivrPassword.after.includes(w.module.factor) && callDue(p)) {
        await deliverOrDecline(this.deps, record, () => sendChallenge(this.deps, p, { code: undefined, call: true }));
      }
      outcomes[w.index] = fulfilled(p);
    } catch (error) {
      outcomes[w.index] = rejected(error);
    }
  }
}

/**
 * What an item answers once the ledger is done with its payment: the payment ('payment'), the
 * payment unless RotateSecret declined it ('replayed'), a declined answer ('declined': see
 * `declined`), the payment after M2's call ('satisfied'), or a refusal.
 */
type Reply = 'payment' | 'replayed' | 'declined' | 'satisfied' | { refusal: DomainError | undefined };

interface Driving {
  w: Work;
  record: PaymentRecord;
  reply: Reply;
}

function replyOutcome(reply: Exclude<Reply, 'satisfied'>, payment: Payment): ItemOutcome {
  if (typeof reply === 'object') return rejected(reply.refusal);
  try {
    return fulfilled(reply === 'replayed' ? unlessRotated(payment) : reply === 'declined' ? declined(payment) : payment);
  } catch (error) {
    return rejected(error);
  }
}

/** What a factor module is given to answer one proof (a class: no closure per item). */
class ItemProofContext implements ProofContext {
  readonly paymentId: string;
  readonly record: PaymentRecord | undefined;
  readonly payer: Payer | undefined;
  readonly bank: BankGateway | undefined;
  private readonly codes: CodeKit;
  private readonly factor: Factor;

  constructor(
    readonly caller: Caller,
    w: Work,
    deps: StepDeps,
  ) {
    this.paymentId = w.request.paymentId;
    this.record = w.record;
    this.payer = w.payer;
    this.bank = deps.bank;
    this.codes = deps.codes;
    this.factor = w.module.factor;
  }

  digest(response: string): string {
    return this.codes.digest(challengeIdOf(this.paymentId, this.factor), response);
  }

  verifySecret(phc: string, candidate: string): Promise<boolean> {
    return this.codes.verifyPin(phc, candidate);
  }
}

/** `visibleTo` for a payment known by its owners only. */
function ownerIs(caller: Caller, owner: ChallengeOwner): boolean {
  if (caller.kind === 'merchant') return owner.merchantId === caller.merchantId;
  if (caller.kind === 'payer') return owner.payerId === caller.payerId;
  return true;
}

function needsDrive(record: PaymentRecord): boolean {
  const p = record.payment;
  return p.state === 'APPROVED' || (terminalStates.has(p.state) && record.dueAtMs !== undefined);
}

/** The answer a second code gets when its payment was challenged under an earlier secret. */
const secretRotatedAnswer = {
  kind: 'decline',
  reason: 'SECRET_ROTATED',
  detail: 'the payer’s verification secret was rotated after this payment was challenged',
} as const;

/**
 * Whether a CHALLENGED payment still waiting for its second code was challenged under a secret
 * version below the payer's current one (a record without one counts as version 1). Below, not
 * different: a process whose cached payer is older than the payment never declines a good one.
 */
export function challengedUnderOlderSecret(payment: Payment, currentVersion: number): boolean {
  const waiting = payment.state === 'CHALLENGED' && payment.requiredFactors.includes('SECOND_CODE') && !payment.satisfiedFactors.includes('SECOND_CODE');
  return waiting && (payment.secretVersion ?? 1) < currentVersion;
}

function secretRotated(payment: Payment): DomainError {
  return precondition('the payer’s verification secret was rotated after this payment was challenged: it is declined; create the payment again', {
    reason: 'SECRET_ROTATED',
    payment_id: payment.id,
  });
}

/** The payment, unless RotateSecret declined it: then the refusal that says so (first answer and replays alike). */
function unlessRotated(payment: Payment): Payment {
  if (payment.declineReason === 'SECRET_ROTATED') throw secretRotated(payment);
  return payment;
}

/** A declined answer is the payment, except the bank's silence and a rotated secret, which are refusals that say so. */
function declined(payment: Payment): Payment {
  unlessRotated(payment);
  if (payment.declineReason === 'AUTHORIZER_UNAVAILABLE' && payment.declineDetail === bankUnreachableDetail) {
    throw new DomainError('unavailable', 'the bank front-end could not be reached; the payment is declined and nothing stays reserved', {
      reason: 'AUTHORIZER_UNAVAILABLE',
      payment_id: payment.id,
    });
  }
  return payment;
}
