import type { ExecutionContext } from 'ava';
import { newId } from '../../../ledger/ids.js';
import { AccountFlags, idMax, type Transfer, TransferFlags } from '../../../ledger/model.js';
import type { Ledger } from '../../../ledger/port.js';
import type { CreateTransferResult } from '../../../ledger/results.js';
import { acct, again, assertBalances, bal, type Case, codeMain, ledgerOther, mkAccounts, plainPair, stored, xfer } from './helpers.js';

const { pending, post_pending_transfer: post, void_pending_transfer: voidFlag } = TransferFlags;

/** An existing transfer created again with one change: TigerBeetle's `create_transfer_exists`. */
const existsRows: { title: string; change: Partial<Transfer>; result: CreateTransferResult }[] = [
  { title: 'same transfer', change: {}, result: 'exists' },
  { title: 'other flags', change: { flags: pending }, result: 'exists_with_different_flags' },
  { title: 'other pending_id', change: { pending_id: 77n }, result: 'exists_with_different_pending_id' },
  { title: 'other timeout', change: { timeout: 5 }, result: 'exists_with_different_timeout' },
  { title: 'other debit account', change: { debit_account_id: 77n }, result: 'exists_with_different_debit_account_id' },
  { title: 'other credit account', change: { credit_account_id: 77n }, result: 'exists_with_different_credit_account_id' },
  { title: 'other amount', change: { amount: 101n }, result: 'exists_with_different_amount' },
  { title: 'other user_data_128', change: { user_data_128: 9n }, result: 'exists_with_different_user_data_128' },
  { title: 'other user_data_64', change: { user_data_64: 9n }, result: 'exists_with_different_user_data_64' },
  { title: 'other user_data_32', change: { user_data_32: 9 }, result: 'exists_with_different_user_data_32' },
  { title: 'other ledger', change: { ledger: ledgerOther }, result: 'exists_with_different_ledger' },
  { title: 'other code', change: { code: codeMain + 1 }, result: 'exists_with_different_code' },
  // Flags are compared first, then pending_id, then timeout, then the rest in field order.
  { title: 'other amount and code', change: { amount: 1n, code: 1 }, result: 'exists_with_different_amount' },
  { title: 'other timeout and debit', change: { timeout: 1, debit_account_id: 77n }, result: 'exists_with_different_timeout' },
];

interface Accounts {
  x: bigint;
  y: bigint;
  /** An account on `ledgerOther`. */
  z: bigint;
}

/** A transfer x → y of 5 with one invalid field (or more, for precedence): `create_transfer`. */
const invalidRows: { title: string; make: (a: Accounts) => Partial<Transfer>; result: CreateTransferResult }[] = [
  { title: 'timestamp set', make: () => ({ timestamp: 1n }), result: 'timestamp_must_be_zero' },
  { title: 'flag bit 9', make: () => ({ flags: 1 << 9 }), result: 'reserved_flag' },
  { title: 'id 0', make: () => ({ id: 0n }), result: 'id_must_not_be_zero' },
  { title: 'id int max', make: () => ({ id: idMax }), result: 'id_must_not_be_int_max' },
  { title: 'post+void', make: () => ({ flags: post | voidFlag, pending_id: newId() }), result: 'flags_are_mutually_exclusive' },
  { title: 'post+balancing_debit', make: () => ({ flags: post | TransferFlags.balancing_debit, pending_id: newId() }), result: 'flags_are_mutually_exclusive' },
  {
    title: 'void+balancing_credit',
    make: () => ({ flags: voidFlag | TransferFlags.balancing_credit, pending_id: newId() }),
    result: 'flags_are_mutually_exclusive',
  },
  { title: 'post+pending', make: () => ({ flags: post | pending, pending_id: newId() }), result: 'flags_are_mutually_exclusive' },
  { title: 'void+closing_debit', make: () => ({ flags: voidFlag | TransferFlags.closing_debit, pending_id: newId() }), result: 'flags_are_mutually_exclusive' },
  { title: 'debit account 0', make: () => ({ debit_account_id: 0n }), result: 'debit_account_id_must_not_be_zero' },
  { title: 'debit account int max', make: () => ({ debit_account_id: idMax }), result: 'debit_account_id_must_not_be_int_max' },
  { title: 'credit account 0', make: () => ({ credit_account_id: 0n }), result: 'credit_account_id_must_not_be_zero' },
  { title: 'credit account int max', make: () => ({ credit_account_id: idMax }), result: 'credit_account_id_must_not_be_int_max' },
  { title: 'same accounts', make: (a) => ({ credit_account_id: a.x }), result: 'accounts_must_be_different' },
  { title: 'pending_id on a regular transfer', make: () => ({ pending_id: newId() }), result: 'pending_id_must_be_zero' },
  { title: 'timeout on a regular transfer', make: () => ({ timeout: 1 }), result: 'timeout_reserved_for_pending_transfer' },
  { title: 'closing_debit not pending', make: () => ({ flags: TransferFlags.closing_debit }), result: 'closing_transfer_must_be_pending' },
  { title: 'closing_credit not pending', make: () => ({ flags: TransferFlags.closing_credit }), result: 'closing_transfer_must_be_pending' },
  { title: 'ledger 0', make: () => ({ ledger: 0 }), result: 'ledger_must_not_be_zero' },
  { title: 'code 0', make: () => ({ code: 0 }), result: 'code_must_not_be_zero' },
  { title: 'unknown debit account', make: () => ({ debit_account_id: newId() }), result: 'debit_account_not_found' },
  { title: 'unknown credit account', make: () => ({ credit_account_id: newId() }), result: 'credit_account_not_found' },
  { title: 'accounts on two ledgers', make: (a) => ({ credit_account_id: a.z }), result: 'accounts_must_have_the_same_ledger' },
  { title: 'transfer ledger differs', make: () => ({ ledger: ledgerOther }), result: 'transfer_must_have_the_same_ledger_as_accounts' },
  { title: 'post with pending_id 0', make: () => ({ flags: post, pending_id: 0n }), result: 'pending_id_must_not_be_zero' },
  { title: 'void with pending_id int max', make: () => ({ flags: voidFlag, pending_id: idMax }), result: 'pending_id_must_not_be_int_max' },
  {
    title: 'post of itself',
    make: () => {
      const id = newId();
      return { id, flags: post, pending_id: id };
    },
    result: 'pending_id_must_be_different',
  },
  { title: 'timeout on a post', make: () => ({ flags: post, pending_id: newId(), timeout: 1 }), result: 'timeout_reserved_for_pending_transfer' },
  // Precedence.
  { title: 'timestamp and reserved flag', make: () => ({ timestamp: 1n, flags: 1 << 9 }), result: 'timestamp_must_be_zero' },
  { title: 'reserved flag and id 0', make: () => ({ id: 0n, flags: 1 << 10 }), result: 'reserved_flag' },
  { title: 'same accounts and ledger 0', make: (a) => ({ credit_account_id: a.x, ledger: 0 }), result: 'accounts_must_be_different' },
  { title: 'unknown debit and credit', make: () => ({ debit_account_id: newId(), credit_account_id: newId() }), result: 'debit_account_not_found' },
  { title: 'ledger 0 and code 0', make: () => ({ ledger: 0, code: 0 }), result: 'ledger_must_not_be_zero' },
];

async function singleOk(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const tr = xfer({ debit_account_id: x, credit_account_id: y, amount: 100n, user_data_128: 1n, user_data_64: 2n, user_data_32: 3 });
  t.deepEqual(await l.createTransfers([tr]), ['ok']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 100n }), bal({ cpo: 100n })]);
  const s = await stored(l, tr.id);
  t.deepEqual({ ...s, timestamp: 0n }, tr);
  t.true(s.timestamp > 0n);
}

async function amountZero(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const tr = xfer({ debit_account_id: x, credit_account_id: y, amount: 0n });
  t.deepEqual(await l.createTransfers([tr]), ['ok']);
  await assertBalances(t, l, [x, y], [bal(), bal()]);
  t.is((await stored(l, tr.id)).amount, 0n);
}

async function existsCase(t: ExecutionContext, l: Ledger, row: (typeof existsRows)[number]): Promise<void> {
  const [x, y] = await plainPair(l);
  const tr = xfer({ debit_account_id: x, credit_account_id: y, amount: 100n, user_data_128: 1n, user_data_64: 2n, user_data_32: 3 });
  t.deepEqual(await l.createTransfers([tr]), ['ok']);
  const first = await stored(l, tr.id);
  t.deepEqual(await l.createTransfers([{ ...tr, ...row.change }]), [row.result]);
  t.deepEqual(await stored(l, tr.id), first, 'the stored transfer is unchanged');
  await assertBalances(t, l, [x, y], [bal({ dpo: 100n }), bal({ cpo: 100n })]);
}

async function invalidCase(t: ExecutionContext, l: Ledger, row: (typeof invalidRows)[number]): Promise<void> {
  const [x, y] = await plainPair(l);
  const [z] = await mkAccounts(l, [0], ledgerOther);
  const tr = xfer({ debit_account_id: x, credit_account_id: y, amount: 5n, ...row.make({ x, y, z: z! }) });
  const ok = xfer({ debit_account_id: y, credit_account_id: x, amount: 1n });
  t.deepEqual(await l.createTransfers([tr, ok]), [row.result, 'ok']);
  await assertBalances(t, l, [x, y, z!], [bal({ cpo: 1n }), bal({ dpo: 1n }), bal()]);
  t.deepEqual(await l.lookupTransfers([tr.id]), [], 'nothing stored under the failed id');
}

async function idAlreadyFailed(t: ExecutionContext, l: Ledger): Promise<void> {
  const [src, a, b] = await mkAccounts(l, [0, AccountFlags.debits_must_not_exceed_credits, 0]);
  const pay = xfer({ debit_account_id: a!, credit_account_id: b!, amount: 10n });
  t.deepEqual(await l.createTransfers([pay]), ['exceeds_credits']);
  await assertBalances(t, l, [a!, b!], [bal(), bal()]);

  const fund = xfer({ debit_account_id: src!, credit_account_id: a!, amount: 10n });
  t.deepEqual(await l.createTransfers([fund, pay]), ['ok', 'id_already_failed']);
  await assertBalances(t, l, [src!, a!, b!], [bal({ dpo: 10n }), bal({ cpo: 10n }), bal()]);

  t.deepEqual(await l.createTransfers([again(pay)]), ['ok']);
  await assertBalances(t, l, [src!, a!, b!], [bal({ dpo: 10n }), bal({ dpo: 10n, cpo: 10n }), bal({ cpo: 10n })]);
}

async function notFoundRemembered(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x] = await mkAccounts(l, [0]);
  const later = newId();
  const tr = xfer({ debit_account_id: x!, credit_account_id: later, amount: 3n });
  t.deepEqual(await l.createTransfers([tr]), ['credit_account_not_found']);
  t.deepEqual(await l.createAccounts([acct({ id: later })]), ['ok']);
  t.deepEqual(await l.createTransfers([tr]), ['id_already_failed']);
  await assertBalances(t, l, [x!, later], [bal(), bal()]);
  t.deepEqual(await l.lookupTransfers([tr.id]), []);
}

async function validationNotRemembered(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const tr = xfer({ debit_account_id: x, credit_account_id: y, amount: 3n, code: 0 });
  t.deepEqual(await l.createTransfers([tr]), ['code_must_not_be_zero']);
  t.deepEqual(await l.createTransfers([{ ...tr, code: codeMain }]), ['ok']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 3n }), bal({ cpo: 3n })]);
}

async function emptyBatches(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  t.deepEqual(await l.createAccounts([]), []);
  t.deepEqual(await l.createTransfers([]), []);
  t.deepEqual(await l.lookupTransfers([]), []);
  await assertBalances(t, l, [x, y], [bal(), bal()]);
}

export function transferCases(c: Case): void {
  c('transfers: empty batches answer []', emptyBatches);
  c('transfers: single-phase ok, stored as given', singleOk);
  c('transfers: amount 0 is ok and moves nothing', amountZero);
  for (const row of existsRows) c(`transfers: create again with ${row.title} → ${row.result}`, (t, l) => existsCase(t, l, row));
  for (const row of invalidRows) c(`transfers: ${row.title} → ${row.result}`, (t, l) => invalidCase(t, l, row));
  c('transfers: id_already_failed after exceeds_credits; a new id succeeds after funding', idAlreadyFailed);
  c('transfers: credit_account_not_found is remembered → id_already_failed', notFoundRemembered);
  c('transfers: a validation failure is not remembered; same id succeeds when fixed', validationNotRemembered);
}
