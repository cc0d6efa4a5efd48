import { terminalStates, type Payment } from '../model.js';
import type { PostOutcome } from '../payment-ledger.js';
import type { CommitItem, PaymentRecord } from '../store/port.js';
import { accountsOf, casRetriesMax, publish, reservationSeconds, type StepDeps } from './context.js';

/**
 * Drives payments to where the ledger says they are: what a step decided in the store and the
 * ledger has not been told yet, done now. Every effect is idempotent (transfer ids derive from
 * the payment id), so the caller that made the decision, a retry, a read and the sweeper may all
 * drive the same payment; the store's compare-and-set on the record's version settles who records
 * the outcome.
 *
 * - APPROVED: post (with the fee) → SUCCEEDED; a reservation that expired or was voided meanwhile
 *   → EXPIRED or DECLINED; no reservation at all (its create still on the way, or crashed before
 *   reserving) → reserve and post in one linked request.
 * - CHALLENGED past its expiry → EXPIRED, then as below.
 * - DECLINED, EXPIRED, CANCELLED still in the due index → void the reservation, leave the index.
 */
export async function drive(deps: StepDeps, records: readonly PaymentRecord[], options: DriveOptions = {}): Promise<PaymentRecord[]> {
  const out = [...records];
  let work = records.map((record, i) => ({ i, record }));
  for (let round = 0; round <= casRetriesMax && work.length > 0; round++) {
    const next: { i: number; record: PaymentRecord }[] = [];
    await driveOnce(deps, work, options.reserved ?? new Set(), (i, record, again) => {
      out[i] = record;
      if (again) next.push({ i, record });
    });
    work = next;
  }
  return out;
}

export interface DriveOptions {
  /**
   * Payments whose reservation is known to exist (a confirm whose payer answered with the code,
   * which only goes out once the reservation is made). For the others the reservation is looked
   * up first: posting or voiding one that does not exist would burn that transfer id for good.
   */
  reserved?: ReadonlySet<string>;
}

type Report = (i: number, record: PaymentRecord, again: boolean) => void;

/** One pass: each record's next effect, the ledger calls together, one commit call. */
async function driveOnce(deps: StepDeps, work: { i: number; record: PaymentRecord }[], known: ReadonlySet<string>, report: Report): Promise<void> {
  const now = deps.now();
  const commits: { i: number; item: CommitItem; again: boolean }[] = [];
  const effects: Promise<void>[] = [];
  const reserved = await reservedOf(deps, work.map((w) => w.record), known);
  for (const { i, record } of work) {
    const p = record.payment;
    if (p.state === 'CHALLENGED' && now >= p.expiresAtMs) {
      // Decided in the store first (a right answer racing the expiry wins or loses there), voided next round.
      commits.push({ i, item: expiring(deps, record, now), again: true });
    } else if (p.state === 'APPROVED') {
      effects.push(settleOne(deps, record, reserved.has(record.payment.id), now).then((item) => void commits.push({ i, item, again: false })));
    } else if (terminalStates.has(p.state) && record.dueAtMs !== undefined) {
      effects.push(releaseOne(deps, record, reserved.has(record.payment.id), now).then((item) => void commits.push({ i, item, again: false })));
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
      throw new Error(`assertion failed: a drive commit without a claim answered ${answer.outcome}`);
    }
  });
}

function expiring(deps: StepDeps, record: PaymentRecord, now: number): CommitItem {
  const expired: Payment = { ...record.payment, state: 'EXPIRED', updatedAtMs: now };
  delete expired.sealedFirstCode;
  return { paymentId: expired.id, expectVersion: record.version, payment: expired, digests: {}, dueAtMs: now + deps.limits.driveLeaseMs, nowMs: now };
}

/** Which of the records about to be posted or voided have their reservation: the known ones, and one lookup for the rest. */
async function reservedOf(deps: StepDeps, records: readonly PaymentRecord[], known: ReadonlySet<string>): Promise<ReadonlySet<string>> {
  const unsure = records.filter((r) => !known.has(r.payment.id) && (r.payment.state === 'APPROVED' || (terminalStates.has(r.payment.state) && r.dueAtMs !== undefined)));
  if (unsure.length === 0) return known;
  const found = await deps.ledger.reservedAmong(unsure.map((r) => r.payment));
  return new Set([...known, ...found]);
}

/**
 * The post of an APPROVED payment, and the record it leaves. Without a reservation (its create
 * stopped before making it) the reservation and the post go together, linked.
 */
async function settleOne(deps: StepDeps, record: PaymentRecord, reserved: boolean, now: number): Promise<CommitItem> {
  const p = record.payment;
  const accounts = accountsOf(deps, p);
  let outcome: PostOutcome | 'insufficient_funds' | 'credit_limit_exceeded';
  if (reserved) {
    outcome = await deps.ledger.post(p, accounts);
    if (outcome === 'not_reserved') throw new Error(`assertion failed: payment ${p.id} was known to be reserved, but its post found no reservation`);
  } else {
    const made = await deps.ledger.reserveAndPost(p, accounts, reservationSeconds(deps, p));
    outcome = made === 'reserved' ? 'posted' : made;
  }
  // A post in the ledger is the truth: the settle is written without a compare (port.ts `settle`).
  return { paymentId: p.id, expectVersion: record.version, payment: afterPost(p, outcome, now), dueAtMs: null, nowMs: now, ...(outcome === 'posted' ? { settle: true as const } : {}) };
}

function afterPost(p: Payment, outcome: PostOutcome | 'insufficient_funds' | 'credit_limit_exceeded', now: number): Payment {
  switch (outcome) {
    case 'posted':
      return { ...p, state: 'SUCCEEDED', updatedAtMs: now };
    case 'expired':
      return { ...p, state: 'EXPIRED', updatedAtMs: now };
    case 'insufficient_funds':
      return { ...p, state: 'DECLINED', declineReason: 'INSUFFICIENT_FUNDS', updatedAtMs: now };
    case 'credit_limit_exceeded':
      return { ...p, state: 'DECLINED', declineReason: 'CREDIT_LIMIT_EXCEEDED', declineDetail: "the charge would exceed the line's credit limit for the billing period", updatedAtMs: now };
    default:
      return { ...p, state: 'DECLINED', declineReason: p.declineReason ?? 'PAYER_DECLINED', updatedAtMs: now };
  }
}

/** The void of a final payment's reservation; the record leaves the due index (or, if the ledger posted it after all, is SUCCEEDED). */
async function releaseOne(deps: StepDeps, record: PaymentRecord, reserved: boolean, now: number): Promise<CommitItem> {
  const p = record.payment;
  // Never reserved (its create stopped before): nothing to void, and no void id burned.
  if (!reserved) return { paymentId: p.id, expectVersion: record.version, dueAtMs: null, nowMs: now };
  const outcome = await deps.ledger.void(p);
  if (outcome !== 'already_posted' || p.state === 'SUCCEEDED') return { paymentId: p.id, expectVersion: record.version, dueAtMs: null, nowMs: now };
  // The ledger is the source of truth: a posted reservation is a SUCCEEDED payment.
  deps.log.warn({ paymentId: p.id, state: p.state }, 'payment recorded as final but its reservation was posted: recorded as SUCCEEDED');
  return { paymentId: p.id, expectVersion: record.version, payment: { ...p, state: 'SUCCEEDED', updatedAtMs: now }, dueAtMs: null, nowMs: now };
}
