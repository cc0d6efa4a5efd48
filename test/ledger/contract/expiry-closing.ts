import type { ExecutionContext } from 'ava';
import { AccountFlags, amountMax, type Transfer, TransferFlags } from '../../../ledger/model.js';
import type { Ledger } from '../../../ledger/port.js';
import { again, assertBalances, bal, type Case, plainPair, storedAccount, timeOf, xfer } from './helpers.js';

const { pending, post_pending_transfer: post, void_pending_transfer: voidFlag, closing_debit, closing_credit } = TransferFlags;

/** The holds' timeout, seconds, and the ledger time the case lets pass before it looks: twice that. */
const holdTimeoutS = 1;
const expiryAfterMs = 2 * holdTimeoutS * 1000;

function resolve(p: Transfer, flags: number, amount: bigint): Transfer {
  return xfer({ flags, pending_id: p.id, amount, ledger: 0, code: 0 });
}

/**
 * Expiry is on the ledger's own time: an injected clock on the embedded engine (advanced here,
 * then one look), real time on TigerBeetle (polled within a bound; see `LedgerTime`).
 */
async function debitsPendingAfter(l: Ledger, ms: number, id: bigint, target: bigint): Promise<boolean> {
  return timeOf(l).pass(ms, async () => (await storedAccount(l, id)).debits_pending === target);
}

async function expiry(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const expiring = xfer({ debit_account_id: x, credit_account_id: y, amount: 50n, flags: pending, timeout: holdTimeoutS });
  const forever = xfer({ debit_account_id: x, credit_account_id: y, amount: 7n, flags: pending, timeout: 0 });
  const postedInTime = xfer({ debit_account_id: x, credit_account_id: y, amount: 3n, flags: pending, timeout: holdTimeoutS });
  const batch = [expiring, forever, postedInTime, resolve(postedInTime, post, amountMax)];
  t.deepEqual(await l.createTransfers(batch), ['ok', 'ok', 'ok', 'ok']);
  await assertBalances(t, l, [x, y], [bal({ dp: 57n, dpo: 3n }), bal({ cp: 57n, cpo: 3n })]);

  t.true(await debitsPendingAfter(l, expiryAfterMs, x, 7n), `the ${holdTimeoutS} s hold expired once ${expiryAfterMs} ms of ledger time passed`);
  await assertBalances(t, l, [x, y], [bal({ dp: 7n, dpo: 3n }), bal({ cp: 7n, cpo: 3n })]);

  const late = [resolve(expiring, post, amountMax), resolve(expiring, voidFlag, 0n), resolve(forever, post, amountMax)];
  t.deepEqual(await l.createTransfers(late), ['pending_transfer_expired', 'pending_transfer_expired', 'ok']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 10n }), bal({ cpo: 10n })]);
}

function isClosed(flags: number): boolean {
  return (flags & AccountFlags.closed) !== 0;
}

async function closingDebit(t: ExecutionContext, l: Ledger): Promise<void> {
  const [a, b] = await plainPair(l);
  const close = xfer({ debit_account_id: a, credit_account_id: b, amount: 0n, flags: pending | closing_debit });
  t.deepEqual(await l.createTransfers([close]), ['ok']);
  t.deepEqual([isClosed((await storedAccount(l, a)).flags), isClosed((await storedAccount(l, b)).flags)], [true, false]);

  const out = xfer({ debit_account_id: a, credit_account_id: b, amount: 1n });
  const into = xfer({ debit_account_id: b, credit_account_id: a, amount: 1n });
  const hold = xfer({ debit_account_id: a, credit_account_id: b, amount: 0n, flags: pending });
  const postClose = resolve(close, post, amountMax);
  t.deepEqual(await l.createTransfers([out, into, hold, postClose]), [
    'debit_account_already_closed',
    'credit_account_already_closed',
    'debit_account_already_closed',
    'debit_account_already_closed',
  ]);
  await assertBalances(t, l, [a, b], [bal(), bal()]);

  t.deepEqual(await l.createTransfers([resolve(close, voidFlag, 0n)]), ['ok']);
  t.false(isClosed((await storedAccount(l, a)).flags), 'voiding the closing transfer reopens the account');
  // The first attempt failed for a transient reason, so that id stays failed; a new one works.
  t.deepEqual(await l.createTransfers([out, again(out)]), ['id_already_failed', 'ok']);
  await assertBalances(t, l, [a, b], [bal({ dpo: 1n }), bal({ cpo: 1n })]);
}

async function closingCredit(t: ExecutionContext, l: Ledger): Promise<void> {
  const [a, b] = await plainPair(l);
  const close = xfer({ debit_account_id: a, credit_account_id: b, amount: 5n, flags: pending | closing_credit });
  t.deepEqual(await l.createTransfers([close]), ['ok']);
  t.deepEqual([isClosed((await storedAccount(l, a)).flags), isClosed((await storedAccount(l, b)).flags)], [false, true]);
  await assertBalances(t, l, [a, b], [bal({ dp: 5n }), bal({ cp: 5n })]);

  const fromB = xfer({ debit_account_id: b, credit_account_id: a, amount: 1n });
  t.deepEqual(await l.createTransfers([fromB, resolve(close, post, 5n)]), ['debit_account_already_closed', 'credit_account_already_closed']);
  await assertBalances(t, l, [a, b], [bal({ dp: 5n }), bal({ cp: 5n })]);

  // Voiding is the only movement allowed on a closed account.
  t.deepEqual(await l.createTransfers([resolve(close, voidFlag, 5n)]), ['ok']);
  t.false(isClosed((await storedAccount(l, b)).flags));
  t.deepEqual(await l.createTransfers([again(fromB)]), ['ok']);
  await assertBalances(t, l, [a, b], [bal({ cpo: 1n }), bal({ dpo: 1n })]);
}

export function expiryClosingCases(c: Case): void {
  c('two-phase: a pending transfer with timeout expires by itself; post/void → pending_transfer_expired', expiry);
  c('closing: closing_debit closes the debit account until the closing transfer is voided', closingDebit);
  c('closing: closing_credit closes the credit account; post refused, void reopens', closingCredit);
}
