import type { ExecutionContext } from 'ava';
import { AccountFlags, amountMax, TransferFlags } from '../../../ledger/model.js';
import type { Ledger } from '../../../ledger/port.js';
import { apply, assertBalances, bal, type Case, funded, mkAccounts, plainPair, stored, xfer } from './helpers.js';

const { pending, balancing_debit, balancing_credit } = TransferFlags;

async function exceedsCredits(t: ExecutionContext, l: Ledger): Promise<void> {
  const { src, a, b } = await funded(l, 100n);
  t.deepEqual(await l.createTransfers([xfer({ debit_account_id: a, credit_account_id: b, amount: 101n })]), ['exceeds_credits']);
  await assertBalances(t, l, [src, a, b], [bal({ dpo: 100n }), bal({ cpo: 100n }), bal()]);
  t.deepEqual(await l.createTransfers([xfer({ debit_account_id: a, credit_account_id: b, amount: 100n })]), ['ok']);
  await assertBalances(t, l, [a, b], [bal({ dpo: 100n, cpo: 100n }), bal({ cpo: 100n })]);
  t.deepEqual(await l.createTransfers([xfer({ debit_account_id: a, credit_account_id: b, amount: 1n })]), ['exceeds_credits']);
  await assertBalances(t, l, [a, b], [bal({ dpo: 100n, cpo: 100n }), bal({ cpo: 100n })]);
}

async function exceedsCreditsWithPending(t: ExecutionContext, l: Ledger): Promise<void> {
  const { a, b } = await funded(l, 100n);
  const hold = xfer({ debit_account_id: a, credit_account_id: b, amount: 60n, flags: pending });
  const tooMuch = xfer({ debit_account_id: a, credit_account_id: b, amount: 41n });
  const rest = xfer({ debit_account_id: a, credit_account_id: b, amount: 40n });
  t.deepEqual(await l.createTransfers([hold, tooMuch, rest]), ['ok', 'exceeds_credits', 'ok']);
  await assertBalances(t, l, [a, b], [bal({ dp: 60n, dpo: 40n, cpo: 100n }), bal({ cp: 60n, cpo: 40n })]);
  const pendingToo = xfer({ debit_account_id: a, credit_account_id: b, amount: 1n, flags: pending });
  t.deepEqual(await l.createTransfers([pendingToo]), ['exceeds_credits']);
  await assertBalances(t, l, [a, b], [bal({ dp: 60n, dpo: 40n, cpo: 100n }), bal({ cp: 60n, cpo: 40n })]);
}

/** Pending credits are not spendable: debits_pending + debits_posted + amount > credits_posted. */
async function pendingCreditsNotSpendable(t: ExecutionContext, l: Ledger): Promise<void> {
  const { src, a, b } = await funded(l, 0n);
  const incoming = xfer({ debit_account_id: src, credit_account_id: a, amount: 100n, flags: pending });
  const spend = xfer({ debit_account_id: a, credit_account_id: b, amount: 1n });
  t.deepEqual(await l.createTransfers([incoming, spend]), ['ok', 'exceeds_credits']);
  await assertBalances(t, l, [src, a, b], [bal({ dp: 100n }), bal({ cp: 100n }), bal()]);
}

async function exceedsDebits(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, c] = await mkAccounts(l, [0, AccountFlags.credits_must_not_exceed_debits]);
  const into = (amount: bigint, flags = 0) => xfer({ debit_account_id: x!, credit_account_id: c!, amount, flags });
  t.deepEqual(await l.createTransfers([into(1n)]), ['exceeds_debits']);
  await assertBalances(t, l, [x!, c!], [bal(), bal()]);

  const out = xfer({ debit_account_id: c!, credit_account_id: x!, amount: 10n });
  t.deepEqual(await l.createTransfers([out, into(11n), into(6n, pending), into(5n), into(4n)]), ['ok', 'exceeds_debits', 'ok', 'exceeds_debits', 'ok']);
  await assertBalances(t, l, [x!, c!], [bal({ dp: 6n, dpo: 4n, cpo: 10n }), bal({ dpo: 10n, cp: 6n, cpo: 4n })]);
}

async function balancingDebit(t: ExecutionContext, l: Ledger): Promise<void> {
  const { a, b } = await funded(l, 100n);
  await apply(l, [xfer({ debit_account_id: a, credit_account_id: b, amount: 30n })]);
  const sweep = xfer({ debit_account_id: a, credit_account_id: b, amount: 1000n, flags: balancing_debit });
  t.deepEqual(await l.createTransfers([sweep]), ['ok']);
  t.is((await stored(l, sweep.id)).amount, 70n, 'amount clamped to the available balance');
  await assertBalances(t, l, [a, b], [bal({ dpo: 100n, cpo: 100n }), bal({ cpo: 100n })]);
  // Retried balancing transfers compare `amount` as an upper limit: t.amount < e.amount differs.
  const retries = [sweep, { ...sweep, amount: 70n }, { ...sweep, amount: 69n }];
  t.deepEqual(await l.createTransfers(retries), ['exists', 'exists', 'exists_with_different_amount']);
  await assertBalances(t, l, [a, b], [bal({ dpo: 100n, cpo: 100n }), bal({ cpo: 100n })]);
}

async function balancingCredit(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, c] = await mkAccounts(l, [0, AccountFlags.credits_must_not_exceed_debits]);
  await apply(l, [xfer({ debit_account_id: c!, credit_account_id: x!, amount: 80n })]);
  const settle = xfer({ debit_account_id: x!, credit_account_id: c!, amount: amountMax, flags: balancing_credit });
  t.deepEqual(await l.createTransfers([settle]), ['ok']);
  t.is((await stored(l, settle.id)).amount, 80n, 'amount clamped to the credit account’s debits');
  await assertBalances(t, l, [x!, c!], [bal({ dpo: 80n, cpo: 80n }), bal({ dpo: 80n, cpo: 80n })]);
}

async function balancingNothingLeft(t: ExecutionContext, l: Ledger): Promise<void> {
  const { a, b } = await funded(l, 0n);
  const sweep = xfer({ debit_account_id: a, credit_account_id: b, amount: 10n, flags: balancing_debit });
  const hold = xfer({ debit_account_id: a, credit_account_id: b, amount: 10n, flags: balancing_debit | pending });
  t.deepEqual(await l.createTransfers([sweep, hold]), ['ok', 'ok']);
  t.deepEqual([(await stored(l, sweep.id)).amount, (await stored(l, hold.id)).amount], [0n, 0n]);
  await assertBalances(t, l, [a, b], [bal(), bal()]);
}

async function balancingCountsPending(t: ExecutionContext, l: Ledger): Promise<void> {
  const { a, b } = await funded(l, 100n);
  const hold = xfer({ debit_account_id: a, credit_account_id: b, amount: 25n, flags: pending });
  const sweep = xfer({ debit_account_id: a, credit_account_id: b, amount: amountMax, flags: balancing_debit });
  t.deepEqual(await l.createTransfers([hold, sweep]), ['ok', 'ok']);
  t.is((await stored(l, sweep.id)).amount, 75n);
  await assertBalances(t, l, [a, b], [bal({ dp: 25n, dpo: 75n, cpo: 100n }), bal({ cp: 25n, cpo: 75n })]);
}

async function overflowsPosted(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y, z] = await mkAccounts(l, [0, 0, 0]);
  t.deepEqual(await l.createTransfers([xfer({ debit_account_id: x!, credit_account_id: y!, amount: amountMax })]), ['ok']);
  const more = [xfer({ debit_account_id: x!, credit_account_id: z!, amount: 1n }), xfer({ debit_account_id: z!, credit_account_id: y!, amount: 1n })];
  t.deepEqual(await l.createTransfers(more), ['overflows_debits_posted', 'overflows_credits_posted']);
  await assertBalances(t, l, [x!, y!, z!], [bal({ dpo: amountMax }), bal({ cpo: amountMax }), bal()]);
}

async function overflowsPending(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y, z] = await mkAccounts(l, [0, 0, 0]);
  const hold = (d: bigint, c: bigint, amount: bigint) => xfer({ debit_account_id: d, credit_account_id: c, amount, flags: pending });
  t.deepEqual(await l.createTransfers([hold(x!, y!, amountMax)]), ['ok']);
  t.deepEqual(await l.createTransfers([hold(x!, z!, 1n), hold(z!, y!, 1n)]), ['overflows_debits_pending', 'overflows_credits_pending']);
  await assertBalances(t, l, [x!, y!, z!], [bal({ dp: amountMax }), bal({ cp: amountMax }), bal()]);
}

/** Pending + posted may not overflow either: overflows_debits / overflows_credits. */
async function overflowsSum(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y, z, w] = await mkAccounts(l, [0, 0, 0, 0]);
  const half = 1n << 127n;
  await apply(l, [xfer({ debit_account_id: x!, credit_account_id: y!, amount: half, flags: TransferFlags.pending })]);
  const more = [xfer({ debit_account_id: x!, credit_account_id: z!, amount: half }), xfer({ debit_account_id: w!, credit_account_id: y!, amount: half })];
  t.deepEqual(await l.createTransfers(more), ['overflows_debits', 'overflows_credits']);
  await assertBalances(t, l, [x!, y!, z!, w!], [bal({ dp: half }), bal({ cp: half }), bal(), bal()]);
  const fits = [xfer({ debit_account_id: x!, credit_account_id: z!, amount: half - 1n })];
  t.deepEqual(await l.createTransfers(fits), ['ok']);
  await assertBalances(t, l, [x!, z!], [bal({ dp: half, dpo: half - 1n }), bal({ cpo: half - 1n })]);
}

async function overflowNotRemembered(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  await apply(l, [xfer({ debit_account_id: x, credit_account_id: y, amount: amountMax - 5n })]);
  const tr = xfer({ debit_account_id: y, credit_account_id: x, amount: 10n });
  const tooBig = { ...tr, debit_account_id: x, credit_account_id: y };
  t.deepEqual(await l.createTransfers([tooBig, tr]), ['overflows_debits_posted', 'ok']);
  await assertBalances(t, l, [x, y], [bal({ dpo: amountMax - 5n, cpo: 10n }), bal({ dpo: 10n, cpo: amountMax - 5n })]);
}

export function limitCases(c: Case): void {
  c('limits: debits_must_not_exceed_credits → exceeds_credits', exceedsCredits);
  c('limits: pending debits count toward exceeds_credits', exceedsCreditsWithPending);
  c('limits: pending credits are not spendable → exceeds_credits', pendingCreditsNotSpendable);
  c('limits: credits_must_not_exceed_debits → exceeds_debits (pending counted)', exceedsDebits);
  c('limits: balancing_debit clamps the amount; retry compares it as an upper bound', balancingDebit);
  c('limits: balancing_credit clamps the amount', balancingCredit);
  c('limits: balancing with nothing available moves 0', balancingNothingLeft);
  c('limits: balancing_debit counts pending debits', balancingCountsPending);
  c('limits: overflows_debits_posted / overflows_credits_posted', overflowsPosted);
  c('limits: overflows_debits_pending / overflows_credits_pending', overflowsPending);
  c('limits: overflows_debits / overflows_credits (pending + posted)', overflowsSum);
  c('limits: an overflow is not remembered; the same id succeeds when valid', overflowNotRemembered);
}
