import { unreachable } from '../../ledger/assert.js';
import { type Payment, terminalStates } from '../model.js';
import type { SettleOutcome } from '../payment-ledger.js';
import type { CommitItem, PaymentRecord } from '../store/port.js';
import { accountsOf, casRetriesMax, closingAccountsOf, publish, reservationSeconds, type StepDeps } from './context.js';

/**
 * Drives payments to where the ledger says they are: what a step decided in the store and the
 * ledger has not been told yet, done now. Every effect is idempotent (transfer ids derive from
 * the payment id), so the caller that made the decision, a retry, a read and the sweeper may all
 * drive the same payment; the store's compare-and-set on the record's version settles who records
 * the outcome.
 *
 * - APPROVED: reserve and post (with the fee) in one linked request → SUCCEEDED, or DECLINED for
 *   funds (no money is held before the payer consents); a reservation an earlier version made at
 *   create is posted instead (or, expired or voided meanwhile → EXPIRED or DECLINED).
 * - CHALLENGED past its expiry → EXPIRED, then as below.
 * - DECLINED, EXPIRED, CANCELLED still in the due index → closed in the ledger (a voided marker
 *   of 0, or the void of an earlier version's reservation), leave the index.
 */
export async function drive(deps: StepDeps, records: readonly PaymentRecord[]): Promise<PaymentRecord[]> {
  const out = [...records];
  let work = records.map((record, i) => ({ i, record }));
  for (let round = 0; round <= casRetriesMax && work.length > 0; round++) {
    const next: { i: number; record: PaymentRecord }[] = [];
    await driveOnce(deps, work, (i, record, again) => {
      out[i] = record;
      if (again) next.push({ i, record });
    });
    work = next;
  }
  return out;
}

type Report = (i: number, record: PaymentRecord, again: boolean) => void;

/** One pass: each record's next effect, the ledger calls together, one commit call. */
async function driveOnce(deps: StepDeps, work: { i: number; record: PaymentRecord }[], report: Report): Promise<void> {
  const now = deps.now();
  const commits: { i: number; item: CommitItem; again: boolean }[] = [];
  const effects: Promise<void>[] = [];
  for (const { i, record } of work) {
    const p = record.payment;
    if (p.state === 'CHALLENGED' && now >= p.expiresAtMs) {
      // Decided in the store first (a right answer racing the expiry wins or loses there), voided next round.
      commits.push({ i, item: expiring(deps, record, now), again: true });
    } else if (p.state === 'APPROVED') {
      effects.push(settleOne(deps, record, now).then((item) => void commits.push({ i, item, again: false })));
    } else if (terminalStates.has(p.state) && record.dueAtMs !== undefined) {
      effects.push(releaseOne(deps, record, now).then((item) => void commits.push({ i, item, again: false })));
    } else if (p.state === 'CHALLENGED' && record.dueAtMs !== undefined && record.dueAtMs < p.expiresAtMs) {
      commits.push({ i, item: { paymentId: p.id, expectVersion: record.version, dueAtMs: p.expiresAtMs, nowMs: now }, again: false });
    } else {
      report(i, record, false);
    }
  }
  await Promise.all(effects);
  if (commits.length === 0) return;
  const answers = await deps.store.commit(commits.map((c) => c.item));
  answers.forEach((answer, k) => {
    const { i, again } = commits[k]!;
    if (answer.outcome === 'committed') {
      publish(deps, [answer.record]);
      report(i, answer.record, again);
    } else if (answer.outcome === 'stale' && answer.record !== undefined) {
      report(i, answer.record, true); // changed meanwhile: decide again on the fresh record
    } else {
      unreachable(`a drive commit without a claim answered ${answer.outcome}`);
    }
  });
}

function expiring(deps: StepDeps, record: PaymentRecord, now: number): CommitItem {
  const expired: Payment = { ...record.payment, state: 'EXPIRED', updatedAtMs: now };
  delete expired.sealedFirstCode;
  return { paymentId: expired.id, expectVersion: record.version, payment: expired, digests: {}, dueAtMs: now + deps.limits.driveLeaseMs, nowMs: now };
}

/** The reserve-and-post of an APPROVED payment, and the record it leaves. */
async function settleOne(deps: StepDeps, record: PaymentRecord, now: number): Promise<CommitItem> {
  const p = record.payment;
  const outcome = await deps.ledger.reserveAndPost(p, accountsOf(deps, p), reservationSeconds(deps, p));
  // A post in the ledger is the truth: the settle is written without a compare (port.ts `settle`).
  return {
    paymentId: p.id,
    expectVersion: record.version,
    payment: afterPost(p, outcome, now),
    dueAtMs: null,
    nowMs: now,
    ...(outcome === 'posted' ? { settle: true as const } : {}),
  };
}

function afterPost(p: Payment, outcome: SettleOutcome, now: number): Payment {
  switch (outcome) {
    case 'posted':
      return { ...p, state: 'SUCCEEDED', updatedAtMs: now };
    case 'expired':
      return { ...p, state: 'EXPIRED', updatedAtMs: now };
    case 'insufficient_funds':
      return { ...p, state: 'DECLINED', declineReason: 'INSUFFICIENT_FUNDS', updatedAtMs: now };
    case 'credit_limit_exceeded':
      return {
        ...p,
        state: 'DECLINED',
        declineReason: 'CREDIT_LIMIT_EXCEEDED',
        declineDetail: "the charge would exceed the line's credit limit for the billing period",
        updatedAtMs: now,
      };
    default:
      return { ...p, state: 'DECLINED', declineReason: p.declineReason ?? 'PAYER_DECLINED', updatedAtMs: now };
  }
}

/**
 * A final payment closed in the ledger too (`PaymentLedger.close`: a voided marker between platform
 * accounts, or the void of a reservation an earlier version made; a phantom's alike); the record
 * leaves the due index (or, if the ledger posted it after all, is SUCCEEDED).
 */
async function releaseOne(deps: StepDeps, record: PaymentRecord, now: number): Promise<CommitItem> {
  const p = record.payment;
  const outcome = await deps.ledger.close(p, closingAccountsOf(deps, p));
  if (outcome !== 'already_posted' || p.state === 'SUCCEEDED') return { paymentId: p.id, expectVersion: record.version, dueAtMs: null, nowMs: now };
  // The ledger is the source of truth: a posted reservation is a SUCCEEDED payment.
  deps.log.warn({ paymentId: p.id, state: p.state }, 'payment recorded as final but its reservation was posted: recorded as SUCCEEDED');
  return { paymentId: p.id, expectVersion: record.version, payment: { ...p, state: 'SUCCEEDED', updatedAtMs: now }, dueAtMs: null, nowMs: now };
}
