import type { ExecutionContext } from 'ava';
import { newId } from '../../../ledger/ids.js';
import { type AccountFilter, AccountFilterFlags, AccountFlags, amountMax, idMax, type Transfer, TransferFlags } from '../../../ledger/model.js';
import type { Ledger } from '../../../ledger/port.js';
import { assertBalances, bal, type Case, filterOf, idsOf, mkAccounts, xfer } from './helpers.js';

const { debits, credits, reversed } = AccountFilterFlags;

interface Scene {
  a: bigint;
  b: bigint;
  c: bigint;
  /** a→b 1 (code 11, ud128 5), b→a 2 (code 12, ud64 6), a→c 3 (code 11, ud32 7), as stored. */
  t1: Transfer;
  t2: Transfer;
  t3: Transfer;
}

/** Three transfers touching `a` (which keeps history), each in its own request, as stored. */
async function scene(t: ExecutionContext, l: Ledger): Promise<Scene> {
  const [a, b, c] = (await mkAccounts(l, [AccountFlags.history, 0, 0])) as [bigint, bigint, bigint];
  const made = [
    xfer({ debit_account_id: a, credit_account_id: b, amount: 1n, code: 11, user_data_128: 5n }),
    xfer({ debit_account_id: b, credit_account_id: a, amount: 2n, code: 12, user_data_64: 6n }),
    xfer({ debit_account_id: a, credit_account_id: c, amount: 3n, code: 11, user_data_32: 7 }),
  ];
  for (const tr of made) t.deepEqual(await l.createTransfers([tr]), ['ok']);
  const [t1, t2, t3] = (await l.lookupTransfers(made.map((m) => m.id))) as [Transfer, Transfer, Transfer];
  t.true(t1.timestamp < t2.timestamp && t2.timestamp < t3.timestamp, 'timestamps increase');
  await assertBalances(t, l, [a, b, c], [bal({ dpo: 4n, cpo: 2n }), bal({ dpo: 2n, cpo: 1n }), bal({ cpo: 3n })]);
  return { a, b, c, t1, t2, t3 };
}

async function lookups(t: ExecutionContext, l: Ledger): Promise<void> {
  const s = await scene(t, l);
  t.deepEqual(idsOf(await l.lookupAccounts([s.c, newId(), s.a, 0n, s.b])), [s.c, s.a, s.b]);
  t.deepEqual(await l.lookupTransfers([s.t3.id, newId(), s.t1.id, idMax, s.t2.id]), [s.t3, s.t1, s.t2]);
  t.deepEqual(await l.lookupAccounts([]), []);
  t.deepEqual(await l.lookupTransfers([newId()]), []);
  await assertBalances(t, l, [s.a], [bal({ dpo: 4n, cpo: 2n })]);
}

async function ordering(t: ExecutionContext, l: Ledger): Promise<void> {
  const s = await scene(t, l);
  t.deepEqual(await l.getAccountTransfers(filterOf(s.a)), [s.t1, s.t2, s.t3], 'oldest first, whole transfers');
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(s.a, { flags: debits | credits | reversed }))), idsOf([s.t3, s.t2, s.t1]));
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(s.b))), idsOf([s.t1, s.t2]));
  await assertBalances(t, l, [s.a], [bal({ dpo: 4n, cpo: 2n })]);
}

async function sides(t: ExecutionContext, l: Ledger): Promise<void> {
  const s = await scene(t, l);
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(s.a, { flags: debits }))), idsOf([s.t1, s.t3]));
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(s.a, { flags: credits }))), idsOf([s.t2]));
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(s.a, { flags: debits | reversed }))), idsOf([s.t3, s.t1]));
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(s.c, { flags: debits }))), []);
  await assertBalances(t, l, [s.a, s.c], [bal({ dpo: 4n, cpo: 2n }), bal({ cpo: 3n })]);
}

async function limits(t: ExecutionContext, l: Ledger): Promise<void> {
  const s = await scene(t, l);
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(s.a, { limit: 2 }))), idsOf([s.t1, s.t2]));
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(s.a, { limit: 1, flags: debits | credits | reversed }))), idsOf([s.t3]));
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(s.a, { limit: 1_000_000 }))), idsOf([s.t1, s.t2, s.t3]));
  await assertBalances(t, l, [s.a], [bal({ dpo: 4n, cpo: 2n })]);
}

async function timestamps(t: ExecutionContext, l: Ledger): Promise<void> {
  const s = await scene(t, l);
  const get = async (f: Partial<AccountFilter>) => idsOf(await l.getAccountTransfers(filterOf(s.a, f)));
  const [ts1, ts2, ts3] = [s.t1.timestamp, s.t2.timestamp, s.t3.timestamp];
  t.deepEqual(await get({ timestamp_min: ts2, timestamp_max: ts2 }), [s.t2.id], 'both bounds inclusive');
  t.deepEqual(await get({ timestamp_min: ts2 }), [s.t2.id, s.t3.id]);
  t.deepEqual(await get({ timestamp_max: ts2 }), [s.t1.id, s.t2.id]);
  t.deepEqual(await get({ timestamp_min: ts1 + 1n, timestamp_max: ts3 - 1n }), [s.t2.id]);
  t.deepEqual(await get({ timestamp_min: ts3 + 1n }), []);
  t.deepEqual(await get({ timestamp_min: ts1, timestamp_max: ts3, flags: debits | credits | reversed, limit: 2 }), [s.t3.id, s.t2.id]);
  await assertBalances(t, l, [s.a], [bal({ dpo: 4n, cpo: 2n })]);
}

async function fieldFilters(t: ExecutionContext, l: Ledger): Promise<void> {
  const s = await scene(t, l);
  const get = async (f: Partial<AccountFilter>) => idsOf(await l.getAccountTransfers(filterOf(s.a, f)));
  t.deepEqual(await get({ code: 11 }), [s.t1.id, s.t3.id]);
  t.deepEqual(await get({ code: 12 }), [s.t2.id]);
  t.deepEqual(await get({ user_data_128: 5n }), [s.t1.id]);
  t.deepEqual(await get({ user_data_64: 6n }), [s.t2.id]);
  t.deepEqual(await get({ user_data_32: 7 }), [s.t3.id]);
  t.deepEqual(await get({ code: 11, user_data_32: 7 }), [s.t3.id]);
  t.deepEqual(await get({ code: 12, user_data_128: 5n }), []);
  t.deepEqual(await get({ code: 11, flags: credits }), []);
  await assertBalances(t, l, [s.a], [bal({ dpo: 4n, cpo: 2n })]);
}

async function invalidFilters(t: ExecutionContext, l: Ledger): Promise<void> {
  const s = await scene(t, l);
  const invalid: Partial<AccountFilter>[] = [
    { account_id: 0n },
    { account_id: idMax },
    { limit: 0 },
    { flags: 0 },
    { flags: reversed },
    { timestamp_min: s.t3.timestamp, timestamp_max: s.t1.timestamp },
    { account_id: newId() }, // valid, but no such account: empty as well
  ];
  t.is((await l.getAccountTransfers(filterOf(s.a))).length, 3, 'control: the valid filter finds all three');
  t.is((await l.getAccountBalances(filterOf(s.a))).length, 3, 'control: the valid filter finds all three');
  for (const f of invalid) {
    t.deepEqual(await l.getAccountTransfers(filterOf(s.a, f)), [], `getAccountTransfers ${String(Object.keys(f))}`);
    t.deepEqual(await l.getAccountBalances(filterOf(s.a, f)), [], `getAccountBalances ${String(Object.keys(f))}`);
  }
  await assertBalances(t, l, [s.a], [bal({ dpo: 4n, cpo: 2n })]);
}

/** h (history) receives 100, pays 30, holds 20 and posts it. */
async function history(t: ExecutionContext, l: Ledger): Promise<void> {
  const [src, h, o] = (await mkAccounts(l, [0, AccountFlags.history, 0])) as [bigint, bigint, bigint];
  const hold = xfer({ debit_account_id: h, credit_account_id: o, amount: 20n, flags: TransferFlags.pending });
  const made = [
    xfer({ debit_account_id: src, credit_account_id: h, amount: 100n }),
    xfer({ debit_account_id: h, credit_account_id: o, amount: 30n }),
    hold,
    xfer({ pending_id: hold.id, amount: amountMax, flags: TransferFlags.post_pending_transfer, ledger: 0, code: 0 }),
  ];
  for (const tr of made) t.deepEqual(await l.createTransfers([tr]), ['ok']);
  const ts = (await l.lookupTransfers(made.map((m) => m.id))).map((s) => s.timestamp);
  const snapshots = [
    { ...bal({ cpo: 100n }), timestamp: ts[0]! },
    { ...bal({ dpo: 30n, cpo: 100n }), timestamp: ts[1]! },
    { ...bal({ dp: 20n, dpo: 30n, cpo: 100n }), timestamp: ts[2]! },
    { ...bal({ dpo: 50n, cpo: 100n }), timestamp: ts[3]! },
  ];
  t.deepEqual(await l.getAccountBalances(filterOf(h)), snapshots);
  t.deepEqual(await l.getAccountBalances(filterOf(h, { flags: debits | credits | reversed, limit: 2 })), [snapshots[3], snapshots[2]]);
  t.deepEqual(await l.getAccountBalances(filterOf(h, { flags: credits })), [snapshots[0]]);
  t.deepEqual(await l.getAccountBalances(filterOf(h, { timestamp_min: ts[1]!, timestamp_max: ts[2]! })), [snapshots[1], snapshots[2]]);
  t.deepEqual(await l.getAccountBalances(filterOf(o)), [], 'no history flag: no balances');
  t.deepEqual(idsOf(await l.getAccountTransfers(filterOf(o))), idsOf(made.slice(1)), 'its transfers are still listed');
  await assertBalances(t, l, [src, h, o], [bal({ dpo: 100n }), bal({ dpo: 50n, cpo: 100n }), bal({ cpo: 50n })]);
}

export function queryCases(c: Case): void {
  c('queries: lookups return existing ids only, in request order', lookups);
  c('queries: getAccountTransfers oldest first, reversed newest first', ordering);
  c('queries: getAccountTransfers debits-only / credits-only', sides);
  c('queries: getAccountTransfers limit', limits);
  c('queries: getAccountTransfers timestamp_min/max are inclusive bounds', timestamps);
  c('queries: getAccountTransfers code and user_data filters', fieldFilters);
  c('queries: invalid filters → []', invalidFilters);
  c('queries: getAccountBalances with history: one snapshot per transfer; none without', history);
}
