import { DomainError, notFound, precondition } from '../errors.js';
import { bankUnreachableDetail } from '../factors/bank-card.js';
import { challengeIdOf, checkProver, type FactorModule, type Proof } from '../factors/index.js';
import { ivrPassword } from '../factors/ivr-password.js';
import { confirmFields, legacyConfirmFingerprint } from '../fingerprint.js';
import { type Caller, type Payer, type Payment, terminalStates } from '../model.js';
import type { ConfirmItem, ConfirmOutcome, PaymentRecord, StepCaller } from '../store/port.js';
import { checkHexId, checkIdempotencyKey } from '../validation.js';
import type { ChallengeOwner, ChallengeOwners } from './challenge-owners.js';
import { fulfilled, type ItemOutcome, publish, rejected, type StepDeps } from './context.js';
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
    const ready: Work[] = [];
    await Promise.all(
      work.map(async (w) => {
        if (outcomes[w.index] !== undefined) return;
        try {
          if ((w.module.needs.record || w.module.needs.payer) && !visibleTo(caller, w.record?.payment))
            throw notFound(`payment ${w.request.paymentId} not found`);
          if (w.module.needs.payer) w.payer = await this.deps.directory.getPayer(w.record!.payment.payerId);
          if (w.checksSecret === true && visibleTo(caller, w.record?.payment)) {
            const payer = w.payer ?? (await this.deps.directory.getPayer(w.record.payment.payerId));
            w.rotated = payer !== undefined && challengedUnderOlderSecret(w.record.payment, payer.secretVersion);
          }
          w.item = await this.item(caller, w);
          ready.push(w);
        } catch (error) {
          outcomes[w.index] = rejected(error);
        }
      }),
    );
    return ready.sort((a, b) => a.index - b.index); // one payer's answers count toward its lockout in request order
  }

  /**
   * Second codes on payments this process challenged: their owners and secret version are known
   * (challenge-owners.ts). One not the caller's, or challenged under the payer's current secret,
   * needs no check (a read would find the same: not visible, or not older); one challenged under
   * an older secret is read as before, so that its state decides exactly as
   * `challengedUnderOlderSecret` does (a payment no longer waiting for the code is answered as any).
   */
  private async checkOwners(caller: Caller, work: Work[], outcomes: ItemOutcome[]): Promise<void> {
    await Promise.all(
      work.map(async (w) => {
        if (w.checksSecret !== true || outcomes[w.index] !== undefined) return;
        const owner = this.owners.get(w.request.paymentId);
        if (owner === undefined) return;
        w.owner = owner;
        try {
          const current = ownerIs(caller, owner) ? (await this.deps.directory.getPayer(owner.payerId))?.secretVersion : undefined;
          if (current === undefined || (owner.secretVersion ?? 1) >= current) w.checksSecret = false;
        } catch (error) {
          outcomes[w.index] = rejected(error);
        }
      }),
    );
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

  private async item(caller: Caller, w: Work): Promise<ConfirmItem> {
    const { codes, limits } = this.deps;
    const { paymentId, proof, idempotencyKey } = w.request;
    const factor = w.module.factor;
    const answer =
      w.rotated === true
        ? secretRotatedAnswer
        : await w.module.answer(proof as never, {
            caller,
            paymentId,
            record: w.record,
            payer: w.payer,
            digest: (response) => codes.digest(challengeIdOf(paymentId, factor), response),
            verifySecret: codes.verifyPin,
            bank: this.deps.bank,
          });
    return {
      paymentId,
      caller: stepCaller(caller),
      key: idempotencyKey,
      // Keyed: a request carries codes, PINs or passwords, and an unkeyed hash of them could be reversed.
      fingerprint: codes.fingerprint(confirmFields(paymentId, proof)),
      factor,
      after: w.module.after,
      answer,
      attemptsMax: limits.attemptsMax,
      keyTtlMs: limits.idempotencyTtlMs,
      nowMs: this.deps.now(),
    };
  }

  /** Each outcome to its answer; the ledger effects of all of them at once. */
  private async finish(work: Work[], results: ConfirmOutcome[], outcomes: ItemOutcome[]): Promise<void> {
    const driving: { w: Work; record: PaymentRecord; answer: (record: PaymentRecord) => Promise<Payment> | Payment }[] = [];
    results.forEach((result, k) => {
      const w = work[k]!;
      if (outcomes[w.index] !== undefined) return; // the store failed on its second ask (askLegacyConflicts)
      const factor = w.module.factor;
      if (w.owner !== undefined && result.outcome !== 'mismatch') this.owners.forget(w.request.paymentId);
      const fail = (error: unknown) => void (outcomes[w.index] = rejected(error));
      const refusal = (token: string) => operationRefusal(token, factor);
      switch (result.outcome) {
        case 'not_found':
          return fail(notFound(`payment ${w.request.paymentId} not found`));
        case 'conflict':
          return fail(
            new DomainError('already_exists', 'this idempotency key was used for a different request', { idempotency_key: w.request.idempotencyKey }),
          );
        case 'replayed': {
          const error = operationRefusal(result.result, factor);
          if (error !== undefined || result.record === undefined) return fail(error ?? notFound(`payment ${w.request.paymentId} not found`));
          return void driving.push({ w, record: result.record, answer: (r) => unlessRotated(r.payment) });
        }
        case 'refused':
          // A payment RotateSecret closed says why, whatever is confirmed on it.
          if (result.record.payment.declineReason === 'SECRET_ROTATED') return fail(secretRotated(result.record.payment));
          return fail(refusal(result.refusal));
        case 'mismatch':
          return fail(refusal(`mismatch:${result.attemptsLeft}`));
        case 'expired':
        case 'exhausted':
        case 'locked': {
          publish(this.deps, [result.record]);
          const token = result.outcome === 'locked' ? `locked:${result.retryAfterMs}` : result.outcome;
          return void driving.push({ w, record: result.record, answer: () => Promise.reject(refusal(token)) });
        }
        case 'declined':
          publish(this.deps, [result.record]);
          return void driving.push({ w, record: result.record, answer: (r) => declined(r.payment) });
        case 'approved':
          return void driving.push({ w, record: result.record, answer: (r) => r.payment });
        case 'satisfied':
          publish(this.deps, [result.record]);
          return void driving.push({ w, record: result.record, answer: (r) => this.afterSatisfied(w, r) });
      }
    });
    await this.driveAll(driving, outcomes);
  }

  /** Posts the approved (or declines them for funds), closes the declined and expired in the ledger, then each item's answer. */
  private async driveAll(
    driving: { w: Work; record: PaymentRecord; answer: (record: PaymentRecord) => Promise<Payment> | Payment }[],
    outcomes: ItemOutcome[],
  ): Promise<void> {
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
    await Promise.all(
      driving.map(async (d) => {
        if (outcomes[d.w.index] !== undefined) return;
        try {
          outcomes[d.w.index] = fulfilled(await d.answer(d.record));
        } catch (error) {
          outcomes[d.w.index] = rejected(error);
        }
      }),
    );
  }

  /** M2: the SMS code was right and the password is next: the call goes out now. */
  private async afterSatisfied(w: Work, record: PaymentRecord): Promise<Payment> {
    const p = record.payment;
    if (p.state === 'CHALLENGED' && ivrPassword.after.includes(w.module.factor) && callDue(p)) {
      await deliverOrDecline(this.deps, record, () => sendChallenge(this.deps, p, { code: undefined, call: true }));
    }
    return p;
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
