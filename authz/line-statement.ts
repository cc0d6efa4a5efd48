import { idFromHex, idToHex, paymentIdOf } from '../ledger/ids.js';
import { AccountFilterFlags, accountFilter, TransferFlags } from '../ledger/model.js';
import type { Ledger } from '../ledger/port.js';
import { billingPeriodOf, linePeriodIds } from './enrollment.js';
import { invalidArgument, notFound } from './errors.js';
import type { BillableLine, Caller } from './model.js';
import type { Directory } from './ports.js';
import type { PaymentStore } from './store/port.js';
import { checkHexId } from './validation.js';

/** Entries per statement page, at most. */
export const statementEntriesMax = 1000;

export interface LineStatementEntry {
  transferId: string;
  paymentId: string;
  merchantId: string;
  amount: bigint;
  description: string;
  postedAtMs: number;
}

export interface LineStatement {
  line: BillableLine;
  periodStartMs: number;
  periodEndMs: number;
  creditLimit: bigint;
  chargedTotal: bigint;
  reservedTotal: bigint;
  available: bigint;
  entries: LineStatementEntry[];
  /** Ledger timestamp (ns) of the last transfer read, for the next page; undefined at the end. */
  nextAfterNs: bigint | undefined;
}

const nsPerMs = 1_000_000n;

/**
 * M3c: a billable line's statement for one billing period. The totals come from the period's
 * control account (credits = the period's credit, debits posted = charged, debits pending =
 * reserved); the entries are the posted charges on the line's own account in the period.
 * The line's owner or an operator may read it; anyone else gets NOT_FOUND.
 */
export async function lineStatement(
  deps: { ledger: Ledger; directory: Directory; payments: Pick<PaymentStore, 'get'> },
  caller: Caller,
  request: { lineId: string; atMs: number; limit: number; afterNs?: bigint },
): Promise<LineStatement> {
  checkHexId(request.lineId, 'line_id');
  if (request.limit < 1 || request.limit > statementEntriesMax) throw invalidArgument('page_size', `must be 1 to ${statementEntriesMax}`);
  const line = await visibleLine(deps, caller, request.lineId);
  const period = billingPeriodOf(line.billingPeriod, request.atMs);
  const [control] = await deps.ledger.lookupAccounts([linePeriodIds(line.id, period.startMs).control]);
  const creditLimit = control === undefined ? line.creditLimit : control.credits_posted;
  const chargedTotal = control?.debits_posted ?? 0n;
  const reservedTotal = control?.debits_pending ?? 0n;
  const filter = accountFilter({
    account_id: idFromHex(line.accountId),
    timestamp_min: request.afterNs === undefined ? BigInt(period.startMs) * nsPerMs : request.afterNs + 1n,
    timestamp_max: BigInt(period.endMs) * nsPerMs - 1n,
    limit: request.limit,
    flags: AccountFilterFlags.debits,
  });
  const transfers = await deps.ledger.getAccountTransfers(filter);
  const posted = transfers.filter((t) => (t.flags & TransferFlags.post_pending_transfer) !== 0);
  const payments = (await deps.payments.get(posted.map((t) => idToHex(paymentIdOf(t.id)?.paymentId ?? 0n)))).map((r) => r?.payment);
  const entries = posted.map((t, i) => ({
    transferId: idToHex(t.id),
    paymentId: idToHex(paymentIdOf(t.id)?.paymentId ?? 0n),
    merchantId: payments[i]?.merchantId ?? '',
    amount: t.amount,
    description: payments[i]?.description ?? '',
    postedAtMs: Number(t.timestamp / nsPerMs),
  }));
  const available = creditLimit - chargedTotal - reservedTotal;
  return {
    line,
    periodStartMs: period.startMs,
    periodEndMs: period.endMs,
    creditLimit,
    chargedTotal,
    reservedTotal,
    available: available > 0n ? available : 0n,
    entries,
    nextAfterNs: transfers.length < request.limit ? undefined : transfers[transfers.length - 1]!.timestamp,
  };
}

/** The line, found through its ledger account (whose user_data_128 is the payer id). */
async function visibleLine(deps: { ledger: Ledger; directory: Directory }, caller: Caller, lineId: string): Promise<BillableLine> {
  const [account] = await deps.ledger.lookupAccounts([idFromHex(lineId)]);
  const payerId = account === undefined || account.user_data_128 === 0n ? undefined : idToHex(account.user_data_128);
  const allowed = payerId !== undefined && (caller.kind === 'admin' || (caller.kind === 'payer' && caller.payerId === payerId));
  const payer = allowed ? await deps.directory.getPayer(payerId) : undefined;
  const line = payer?.billableLines?.find((l) => l.id === lineId);
  if (line === undefined) throw notFound(`billable line ${lineId} not found`);
  return line;
}
