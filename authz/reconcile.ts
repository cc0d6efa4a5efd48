import { idFromHex, paymentTransferIds } from '../ledger/ids.js';
import type { Transfer } from '../ledger/model.js';
import type { Ledger } from '../ledger/port.js';
import type { Payment, PaymentState } from './model.js';
import type { PaymentsService } from './payments.js';
import type { PaymentRepository } from './ports.js';

/** Payments examined per page (4 transfer lookups each: one ledger call of at most 4 × 500 ids). */
export const reconcilePageMax = 500;

export interface ReconcileReport {
  examined: number;
  /** "FROM→TO" → count. */
  changed: Record<string, number>;
  /** Payments whose ledger record contradicts itself (e.g. posted without its fee): ids, at most 100. */
  anomalies: string[];
}

interface LedgerFacts {
  pending?: Transfer;
  posted: boolean;
  voided: boolean;
  fee: boolean;
}

/**
 * Rebuilds payment states from the ledger, the source of truth: a payment is SUCCEEDED iff its
 * post transfer exists; a voided one is final (DECLINED unless already CANCELLED/EXPIRED); a
 * reservation past its timeout is EXPIRED; an APPROVED payment whose post is missing is posted
 * now; a payment with no reservation at all never moved money.
 */
export async function reconcile(deps: { ledger: Ledger; payments: PaymentRepository; service: PaymentsService; now: () => number }): Promise<ReconcileReport> {
  const report: ReconcileReport = { examined: 0, changed: {}, anomalies: [] };
  let afterId: string | undefined;
  for (;;) {
    const page = await deps.payments.list({ limit: reconcilePageMax, ...(afterId === undefined ? {} : { afterId }) });
    if (page.length === 0) return report;
    const facts = await ledgerFacts(deps.ledger, page);
    for (const [i, payment] of page.entries()) {
      // One payment that cannot be repaired (e.g. a fee missing) is reported, not fatal: the rest go on.
      const fixed = await reconcileOne(deps, payment, facts[i]!, report).catch(() => {
        if (report.anomalies.length < 100) report.anomalies.push(payment.id);
        return payment;
      });
      if (fixed.state !== payment.state) {
        const key = `${payment.state}→${fixed.state}`;
        report.changed[key] = (report.changed[key] ?? 0) + 1;
      }
    }
    report.examined += page.length;
    afterId = page[page.length - 1]!.id;
  }
}

async function ledgerFacts(ledger: Ledger, page: Payment[]): Promise<LedgerFacts[]> {
  const ids = page.map((p) => paymentTransferIds(idFromHex(p.id)));
  const found = await ledger.lookupTransfers(ids.flatMap((x) => [x.pending, x.post, x.void, x.fee]));
  const byId = new Map(found.map((t) => [t.id, t]));
  return ids.map((x) => ({
    ...(byId.has(x.pending) ? { pending: byId.get(x.pending)! } : {}),
    posted: byId.has(x.post),
    voided: byId.has(x.void),
    fee: byId.has(x.fee),
  }));
}

function truth(payment: Payment, facts: LedgerFacts, nowMs: number): PaymentState | 'settle' {
  if (facts.posted) return 'SUCCEEDED';
  if (facts.voided) return payment.state === 'CANCELLED' || payment.state === 'EXPIRED' ? payment.state : 'DECLINED';
  if (facts.pending === undefined) return payment.state === 'CANCELLED' || payment.state === 'EXPIRED' ? payment.state : 'DECLINED';
  const expiresAtNs = facts.pending.timestamp + BigInt(facts.pending.timeout) * 1_000_000_000n;
  if (facts.pending.timeout > 0 && BigInt(nowMs) * 1_000_000n >= expiresAtNs) return 'EXPIRED';
  // Approved (or recorded as succeeded) but not posted: every factor was satisfied, so post it now.
  if (payment.state === 'APPROVED' || payment.state === 'SUCCEEDED') return 'settle';
  // Still challenged, or final without its void yet: the reservation releases itself at its timeout.
  return payment.state;
}

async function reconcileOne(
  deps: { service: PaymentsService; now: () => number },
  payment: Payment,
  facts: LedgerFacts,
  report: ReconcileReport,
): Promise<Payment> {
  if (facts.posted && payment.feeAmount > 0n && !facts.fee && report.anomalies.length < 100) report.anomalies.push(payment.id);
  // Decide on a fresh read under the payment's lock: a transition that raced the page read wins.
  return deps.service.revise(payment.id, async (fresh) => {
    const state = truth(fresh, facts, deps.now());
    if (state === 'settle') return deps.service.settle(fresh);
    if (state === fresh.state) return undefined;
    return {
      ...fresh,
      state,
      ...(state === 'DECLINED' && fresh.declineReason === undefined ? { declineDetail: 'no money moved (reconciled from the ledger)' } : {}),
      sealedFirstCode: undefined,
      updatedAtMs: deps.now(),
    };
  });
}
