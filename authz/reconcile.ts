import { idFromHex, paymentTransferIds } from '../ledger/ids.js';
import type { Transfer } from '../ledger/model.js';
import type { Payment, PaymentState } from './model.js';
import { publish, type StepDeps } from './steps/context.js';
import { drive } from './steps/drive.js';
import type { PaymentRecord } from './store/port.js';

/** Payments examined per page (4 transfer lookups each: one ledger call of at most 4 × 500 ids). */
export const reconcilePageMax = 500;
/** Payment ids listed in a report's anomalies, at most. */
export const reconcileAnomaliesMax = 100;

export interface ReconcileReport {
  examined: number;
  /** "FROM→TO" → count. */
  changed: Record<string, number>;
  /** Payments whose ledger record contradicts itself (e.g. posted without its fee) or that could not be repaired: ids, at most 100. */
  anomalies: string[];
}

interface LedgerFacts {
  pending?: Transfer;
  posted: boolean;
  voided: boolean;
  fee: boolean;
}

/**
 * Rebuilds payment states from the ledger, the source of truth, over every payment in the store
 * (`countersign reconcile`): a payment is SUCCEEDED iff its post transfer exists; a voided one is
 * final (DECLINED unless already CANCELLED or EXPIRED); a reservation past its timeout is
 * EXPIRED; a challenge past its expiry whose reservation has no ledger timeout is expired and
 * voided; an APPROVED payment whose post is missing is posted now; a final payment whose void
 * is still due is voided. A CHALLENGED payment without a reservation is left to its create (a
 * retry finishes it) or to the sweeper at its expiry. Each change is a compare-and-set on the
 * record: a transition that raced the read wins.
 */
export async function reconcile(deps: StepDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { examined: 0, changed: {}, anomalies: [] };
  let cursor = '';
  do {
    const page = await deps.store.scan(cursor, reconcilePageMax);
    cursor = page.cursor;
    if (page.records.length === 0) break;
    const facts = await ledgerFacts(
      deps,
      page.records.map((r) => r.payment),
    );
    await reconcilePage(deps, page.records, facts, report);
    report.examined += page.records.length;
  } while (cursor !== '');
  return report;
}

async function ledgerFacts(deps: StepDeps, page: Payment[]): Promise<LedgerFacts[]> {
  const ids = page.map((p) => paymentTransferIds(idFromHex(p.id)));
  const found = await deps.ledger.ledger.lookupTransfers(ids.flatMap((x) => [x.pending, x.post, x.void, x.fee]));
  const byId = new Map(found.map((t) => [t.id, t]));
  return ids.map((x) => ({
    ...(byId.has(x.pending) ? { pending: byId.get(x.pending)! } : {}),
    posted: byId.has(x.post),
    voided: byId.has(x.void),
    fee: byId.has(x.fee),
  }));
}

/** The state the ledger says, 'drive' when the payment must be posted or voided now, undefined when it is right as it is. */
function truth(record: PaymentRecord, facts: LedgerFacts, nowMs: number): PaymentState | 'drive' | undefined {
  const p = record.payment;
  if (facts.posted) return p.state === 'SUCCEEDED' ? undefined : 'SUCCEEDED';
  if (p.state === 'APPROVED' || p.state === 'SUCCEEDED') return 'drive';
  if (facts.voided) return p.state === 'CANCELLED' || p.state === 'EXPIRED' || p.state === 'DECLINED' ? undefined : 'DECLINED';
  if (facts.pending === undefined) return undefined;
  const expiresAtNs = facts.pending.timestamp + BigInt(facts.pending.timeout) * 1_000_000_000n;
  if (p.state === 'CHALLENGED' && facts.pending.timeout > 0 && BigInt(nowMs) * 1_000_000n >= expiresAtNs) return 'EXPIRED';
  // A hold without a ledger timeout (COUNTERSIGN_LEDGER_HOLD_TIMEOUT=off) is released by us: expire and void it.
  if (p.state === 'CHALLENGED' && facts.pending.timeout === 0 && nowMs >= p.expiresAtMs) return 'drive';
  return record.dueAtMs !== undefined && p.state !== 'CHALLENGED' ? 'drive' : undefined;
}

async function reconcilePage(deps: StepDeps, records: PaymentRecord[], facts: LedgerFacts[], report: ReconcileReport): Promise<void> {
  const now = deps.now();
  const driving: PaymentRecord[] = [];
  const fixing: { record: PaymentRecord; state: PaymentState }[] = [];
  records.forEach((record, i) => {
    const f = facts[i]!;
    if (f.posted && record.payment.feeAmount > 0n && !f.fee) anomaly(report, record.payment.id);
    const state = truth(record, f, now);
    if (state === 'drive') driving.push(record);
    else if (state !== undefined) fixing.push({ record, state });
  });
  if (fixing.length > 0) {
    const answers = await deps.store.commit(
      fixing.map(({ record, state }) => ({
        paymentId: record.payment.id,
        expectVersion: record.version,
        payment: fixed(record.payment, state, now),
        digests: {},
        dueAtMs: null,
        nowMs: now,
      })),
    );
    answers.forEach((answer, i) => {
      const { record, state } = fixing[i]!;
      if (answer.outcome !== 'committed') return anomaly(report, record.payment.id);
      publish(deps, [answer.record]);
      count(report, record.payment.state, state);
    });
  }
  if (driving.length === 0) return;
  const driven = await drive(deps, driving).catch(() => driving.map((r) => (anomaly(report, r.payment.id), r)));
  driven.forEach((after, i) => count(report, driving[i]!.payment.state, after.payment.state));
}

function fixed(p: Payment, state: PaymentState, now: number): Payment {
  const next: Payment = {
    ...p,
    state,
    updatedAtMs: now,
    ...(state === 'DECLINED' && p.declineReason === undefined ? { declineDetail: 'no money moved (reconciled from the ledger)' } : {}),
  };
  delete next.sealedFirstCode;
  return next;
}

function count(report: ReconcileReport, from: PaymentState, to: PaymentState): void {
  if (from === to) return;
  const key = `${from}→${to}`;
  report.changed[key] = (report.changed[key] ?? 0) + 1;
}

function anomaly(report: ReconcileReport, id: string): void {
  if (report.anomalies.length < reconcileAnomaliesMax && !report.anomalies.includes(id)) report.anomalies.push(id);
}
