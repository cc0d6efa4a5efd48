import { DomainError, invalidArgument, notFound } from '../errors.js';
import { canonicalJson } from '../fingerprint.js';
import { type Caller, type DeclineReason, type Payment, terminalStates } from '../model.js';
import type { CommitItem, CommitOutcome, PaymentRecord } from '../store/port.js';
import { checkHexId, checkIdempotencyKey } from '../validation.js';
import { scopeOf, visibleTo } from './confirm.js';
import { casRetriesMax, fulfilled, type ItemOutcome, publish, rejected, type StepDeps } from './context.js';
import { drive } from './drive.js';
import { operationRefusal } from './refusals.js';

export interface RefuseRequest {
  paymentId: string;
  idempotencyKey: string;
  reason: string;
  /**
   * The platform declines the payment with this reason (an operator's caller only: RotateSecret
   * closing the payer's challenges); without it a payer declines (PAYER_DECLINED) and anyone else cancels.
   */
  decline?: DeclineReason;
}

/** Characters a cancel or decline reason may have. */
export const refuseReasonCharsMax = 500;

/**
 * A merchant cancels its own payment, or a payer declines one of theirs: the decision is a
 * compare-and-set on the record together with the idempotency key (one store step for the
 * batch), the void of the reservation follows. Refusing twice is idempotent; refusing a payment
 * that is already final, or approved and being posted, is FAILED_PRECONDITION.
 */
export class RefuseStep {
  constructor(private readonly deps: StepDeps) {}

  async run(caller: Caller, requests: readonly RefuseRequest[]): Promise<ItemOutcome[]> {
    const outcomes = new Array<ItemOutcome>(requests.length);
    let work: { index: number; request: RefuseRequest }[] = [];
    requests.forEach((request, index) => {
      try {
        checkIdempotencyKey(request.idempotencyKey);
        if (request.reason.length > refuseReasonCharsMax) throw invalidArgument('reason', `must be at most ${refuseReasonCharsMax} characters`);
        checkHexId(request.paymentId, 'payment_id');
        work.push({ index, request });
      } catch (error) {
        outcomes[index] = rejected(error);
      }
    });
    for (let round = 0; round <= casRetriesMax && work.length > 0; round++) {
      work = await this.round(caller, work, outcomes);
    }
    for (const w of work) outcomes[w.index] = rejected(new DomainError('unavailable', 'the payment kept changing; retry shortly'));
    return outcomes;
  }

  /** Reads, decides, commits; returns the items whose record changed meanwhile (to decide again). */
  private async round(caller: Caller, work: { index: number; request: RefuseRequest }[], outcomes: ItemOutcome[]) {
    let records: (PaymentRecord | undefined)[];
    try {
      records = await this.deps.store.get(work.map((w) => w.request.paymentId));
    } catch (error) {
      for (const w of work) outcomes[w.index] = rejected(error);
      return [];
    }
    const deciding: { index: number; request: RefuseRequest; record: PaymentRecord; item: CommitItem }[] = [];
    work.forEach((w, i) => {
      const record = records[i];
      if (!visibleTo(caller, record?.payment)) return void (outcomes[w.index] = rejected(notFound(`payment ${w.request.paymentId} not found`)));
      deciding.push({ ...w, record: record!, item: this.decide(caller, record!, w.request) });
    });
    if (deciding.length === 0) return [];
    let answers: CommitOutcome[];
    try {
      answers = await this.deps.store.commit(deciding.map((d) => d.item));
    } catch (error) {
      for (const d of deciding) outcomes[d.index] = rejected(error);
      return [];
    }
    const again: { index: number; request: RefuseRequest }[] = [];
    const voiding: { index: number; record: PaymentRecord }[] = [];
    answers.forEach((answer, k) => {
      const d = deciding[k]!;
      if (answer.outcome === 'stale') again.push(d);
      else if (answer.outcome === 'conflict')
        outcomes[d.index] = rejected(
          new DomainError('already_exists', 'this idempotency key was used for a different request', { idempotency_key: d.request.idempotencyKey }),
        );
      else if (answer.outcome === 'replayed') this.replayed(d, answer.result, outcomes, voiding);
      else {
        const refusal = operationRefusal(d.item.claim!.result, undefined);
        if (refusal !== undefined) outcomes[d.index] = rejected(refusal);
        else voiding.push({ index: d.index, record: answer.record });
        if (d.item.payment !== undefined) publish(this.deps, [answer.record]);
      }
    });
    await this.release(voiding, outcomes);
    return again;
  }

  /** The commit for one request, from the record as read. */
  private decide(caller: Caller, record: PaymentRecord, request: RefuseRequest): CommitItem {
    const { limits, codes } = this.deps;
    const now = this.deps.now();
    const p = record.payment;
    const claim = (result: string) => ({
      scope: scopeOf(caller),
      key: request.idempotencyKey,
      fingerprint: codes.digest(
        'idempotency',
        canonicalJson({
          op: 'refuse',
          paymentId: request.paymentId,
          reason: request.reason,
          ...(request.decline === undefined ? {} : { decline: request.decline }),
        }),
      ),
      result,
      keyTtlMs: limits.idempotencyTtlMs,
    });
    const base = { paymentId: p.id, expectVersion: record.version, nowMs: now };
    if (p.state === 'CANCELLED' || (p.state === 'DECLINED' && p.declineReason === 'PAYER_DECLINED')) return { ...base, claim: claim('p') };
    if (terminalStates.has(p.state) || p.state === 'APPROVED') return { ...base, claim: claim(`final:${p.state}`) };
    const declineReason = request.decline !== undefined && caller.kind === 'admin' ? request.decline : caller.kind === 'payer' ? 'PAYER_DECLINED' : undefined;
    const refused: Payment =
      declineReason !== undefined
        ? { ...p, state: 'DECLINED', declineReason, declineDetail: request.reason }
        : { ...p, state: 'CANCELLED', declineDetail: request.reason };
    refused.updatedAtMs = now;
    delete refused.sealedFirstCode;
    return { ...base, payment: refused, digests: {}, dueAtMs: now + limits.driveLeaseMs, claim: claim('p') };
  }

  private replayed(
    d: { index: number; request: RefuseRequest; record: PaymentRecord },
    result: string,
    outcomes: ItemOutcome[],
    voiding: { index: number; record: PaymentRecord }[],
  ): void {
    const refusal = operationRefusal(result, undefined);
    if (refusal !== undefined) outcomes[d.index] = rejected(refusal);
    else voiding.push({ index: d.index, record: d.record });
  }

  /** Voids the refused payments' reservations (one ledger request); each answer is its payment as it then is. */
  private async release(voiding: { index: number; record: PaymentRecord }[], outcomes: ItemOutcome[]): Promise<void> {
    if (voiding.length === 0) return;
    try {
      const driven = await drive(
        this.deps,
        voiding.map((v) => v.record),
      );
      voiding.forEach((v, i) => (outcomes[v.index] = fulfilled(driven[i]!.payment)));
    } catch (error) {
      for (const v of voiding) outcomes[v.index] = rejected(error);
    }
  }
}
