import type { ExecutionContext } from 'ava';
import { type Account, AccountFlags, idMax } from '../../../ledger/model.js';
import type { Ledger } from '../../../ledger/port.js';
import type { CreateAccountResult } from '../../../ledger/results.js';
import { acct, assertBalances, bal, type Case, codeMain, ledgerOther, storedAccount } from './helpers.js';

const { linked, history, debits_must_not_exceed_credits, credits_must_not_exceed_debits } = AccountFlags;
const exclusive = debits_must_not_exceed_credits | credits_must_not_exceed_debits;

/** An existing account created again with one change: TigerBeetle's `create_account_exists`. */
const existsRows: { title: string; change: Partial<Account>; result: CreateAccountResult }[] = [
  { title: 'same account', change: {}, result: 'exists' },
  { title: 'other flags', change: { flags: history }, result: 'exists_with_different_flags' },
  { title: 'other user_data_128', change: { user_data_128: 9n }, result: 'exists_with_different_user_data_128' },
  { title: 'other user_data_64', change: { user_data_64: 9n }, result: 'exists_with_different_user_data_64' },
  { title: 'other user_data_32', change: { user_data_32: 9 }, result: 'exists_with_different_user_data_32' },
  { title: 'other ledger', change: { ledger: ledgerOther }, result: 'exists_with_different_ledger' },
  { title: 'other code', change: { code: codeMain + 1 }, result: 'exists_with_different_code' },
  // `exists` is checked before the other validations:
  { title: 'ledger 0 (exists first)', change: { ledger: 0 }, result: 'exists_with_different_ledger' },
  { title: 'exclusive flags (exists first)', change: { flags: exclusive }, result: 'exists_with_different_flags' },
  { title: 'nonzero credits_posted (exists first)', change: { credits_posted: 5n }, result: 'exists' },
];

/** A new account with one invalid field: TigerBeetle's `create_account` validation. */
const invalidRows: { change: Partial<Account>; result: CreateAccountResult }[] = [
  { change: { timestamp: 1n }, result: 'timestamp_must_be_zero' },
  { change: { reserved: 1 }, result: 'reserved_field' },
  { change: { flags: 1 << 6 }, result: 'reserved_flag' },
  { change: { flags: 1 << 15 }, result: 'reserved_flag' },
  { change: { id: 0n }, result: 'id_must_not_be_zero' },
  { change: { id: idMax }, result: 'id_must_not_be_int_max' },
  { change: { flags: exclusive }, result: 'flags_are_mutually_exclusive' },
  { change: { debits_pending: 1n }, result: 'debits_pending_must_be_zero' },
  { change: { debits_posted: 1n }, result: 'debits_posted_must_be_zero' },
  { change: { credits_pending: 1n }, result: 'credits_pending_must_be_zero' },
  { change: { credits_posted: 1n }, result: 'credits_posted_must_be_zero' },
  { change: { ledger: 0 }, result: 'ledger_must_not_be_zero' },
  { change: { code: 0 }, result: 'code_must_not_be_zero' },
  // Precedence: the first failing check wins.
  { change: { timestamp: 1n, id: 0n }, result: 'timestamp_must_be_zero' },
  { change: { reserved: 1, flags: 1 << 6 }, result: 'reserved_field' },
  { change: { flags: exclusive, ledger: 0, debits_posted: 1n }, result: 'flags_are_mutually_exclusive' },
  { change: { debits_posted: 1n, ledger: 0 }, result: 'debits_posted_must_be_zero' },
];

async function createOk(t: ExecutionContext, l: Ledger): Promise<void> {
  const a1 = acct({ user_data_128: 1n, user_data_64: 2n, user_data_32: 3, flags: history | debits_must_not_exceed_credits });
  const a2 = acct({ code: codeMain + 5 });
  t.deepEqual(await l.createAccounts([a1, a2]), ['ok', 'ok']);
  await assertBalances(t, l, [a1.id, a2.id], [bal(), bal()]);
  const [s1, s2] = [await storedAccount(l, a1.id), await storedAccount(l, a2.id)];
  t.deepEqual({ ...s1, timestamp: 0n }, a1);
  t.deepEqual({ ...s2, timestamp: 0n }, a2);
  t.true(s1.timestamp > 0n && s2.timestamp > s1.timestamp, 'timestamps assigned in order');
}

async function existsCase(t: ExecutionContext, l: Ledger, row: (typeof existsRows)[number]): Promise<void> {
  const base = acct({ user_data_128: 1n, user_data_64: 2n, user_data_32: 3 });
  t.deepEqual(await l.createAccounts([base]), ['ok']);
  const first = await storedAccount(l, base.id);
  t.deepEqual(await l.createAccounts([{ ...base, ...row.change }]), [row.result]);
  t.deepEqual(await storedAccount(l, base.id), first, 'the stored account is unchanged');
  await assertBalances(t, l, [base.id], [bal()]);
}

async function invalidCase(t: ExecutionContext, l: Ledger, row: (typeof invalidRows)[number]): Promise<void> {
  const a = acct(row.change);
  const ok = acct();
  t.deepEqual(await l.createAccounts([a, ok]), [row.result, 'ok']);
  await assertBalances(t, l, [a.id, ok.id], [undefined, bal()]);
}

async function linkedAccounts(t: ExecutionContext, l: Ledger): Promise<void> {
  const [a1, a2, a3] = [acct({ flags: linked }), acct({ flags: linked }), acct()];
  t.deepEqual(await l.createAccounts([a1, a2, a3]), ['ok', 'ok', 'ok']);
  await assertBalances(t, l, [a1.id, a2.id, a3.id], [bal(), bal(), bal()]);
  t.is((await storedAccount(l, a1.id)).flags, linked, 'linked is stored as given');

  const [b1, b2, b3, b4] = [acct({ flags: linked }), acct({ flags: linked, code: 0 }), acct(), acct()];
  t.deepEqual(await l.createAccounts([b1, b2, b3, b4]), ['linked_event_failed', 'code_must_not_be_zero', 'linked_event_failed', 'ok']);
  await assertBalances(t, l, [b1.id, b2.id, b3.id, b4.id], [undefined, undefined, undefined, bal()]);
}

async function accountChainOpen(t: ExecutionContext, l: Ledger): Promise<void> {
  const [a1, a2, a3] = [acct(), acct({ flags: linked }), acct({ flags: linked })];
  t.deepEqual(await l.createAccounts([a1, a2, a3]), ['ok', 'linked_event_failed', 'linked_event_chain_open']);
  await assertBalances(t, l, [a1.id, a2.id, a3.id], [bal(), undefined, undefined]);
}

async function accountChainRetry(t: ExecutionContext, l: Ledger): Promise<void> {
  const chain = [acct({ flags: linked }), acct()];
  t.deepEqual(await l.createAccounts(chain), ['ok', 'ok']);
  // `exists` is not `ok`, so it breaks the chain like any other result.
  t.deepEqual(await l.createAccounts(chain), ['exists', 'linked_event_failed']);
  await assertBalances(
    t,
    l,
    chain.map((a) => a.id),
    [bal(), bal()],
  );
}

export function accountCases(c: Case): void {
  c('accounts: create ok, stored as given, timestamps assigned', createOk);
  for (const row of existsRows) c(`accounts: create again with ${row.title} → ${row.result}`, (t, l) => existsCase(t, l, row));
  for (const row of invalidRows) {
    c(`accounts: ${JSON.stringify(row.change, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))} → ${row.result}`, (t, l) => invalidCase(t, l, row));
  }
  c('accounts: linked chain ok; failure rolls the chain back', linkedAccounts);
  c('accounts: chain open at end of batch → linked_event_chain_open', accountChainOpen);
  c('accounts: retried chain → exists then linked_event_failed', accountChainRetry);
}
