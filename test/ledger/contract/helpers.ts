import type { ExecutionContext } from 'ava';
import { newId } from '../../../ledger/ids.js';
import { type Account, type AccountFilter, AccountFlags, account, accountFilter, type Transfer, transfer } from '../../../ledger/model.js';
import type { Ledger } from '../../../ledger/port.js';

/** One contract case: gets the engine's shared ledger, always works on fresh ids. */
export type Body = (t: ExecutionContext, l: Ledger) => Promise<void>;
/** Registers one case (the engine name is prefixed by the caller). */
export type Case = (title: string, body: Body) => void;

/** The ledger and code every contract account and transfer uses unless a case says otherwise. */
export const ledgerMain = 700;
export const ledgerOther = 701;
export const codeMain = 10;

/** A new account on `ledgerMain` with a fresh id. */
export function acct(fields: Partial<Account> = {}): Account {
  return account({ id: newId(), ledger: ledgerMain, code: codeMain, ...fields });
}

/** A new transfer on `ledgerMain` with a fresh id. */
export function xfer(fields: Partial<Transfer> = {}): Transfer {
  return transfer({ id: newId(), ledger: ledgerMain, code: codeMain, ...fields });
}

/** Same event, new id: a different transfer with the same effect. */
export function again(t: Transfer): Transfer {
  return { ...t, id: newId() };
}

/** The four balances of an account, as a plain object. */
export interface Bal {
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
}

/** Expected balances; fields left out are zero (dp/dpo/cp/cpo = debits/credits pending/posted). */
export function bal(p: { dp?: bigint; dpo?: bigint; cp?: bigint; cpo?: bigint } = {}): Bal {
  return {
    debits_pending: p.dp ?? 0n,
    debits_posted: p.dpo ?? 0n,
    credits_pending: p.cp ?? 0n,
    credits_posted: p.cpo ?? 0n,
  };
}

/** The balances of `ids` in order; `undefined` for an id that is not an account. */
export async function balances(l: Ledger, ids: readonly bigint[]): Promise<(Bal | undefined)[]> {
  const found = await l.lookupAccounts(ids);
  const byId = new Map(found.map((a) => [a.id, a]));
  return ids.map((id) => {
    const a = byId.get(id);
    if (a === undefined) return undefined;
    return bal({ dp: a.debits_pending, dpo: a.debits_posted, cp: a.credits_pending, cpo: a.credits_posted });
  });
}

/** Asserts the balances of `ids` (the accounts a step affected). */
export async function assertBalances(t: ExecutionContext, l: Ledger, ids: readonly bigint[], expected: readonly (Bal | undefined)[]): Promise<void> {
  t.deepEqual(await balances(l, ids), expected);
}

/** Setup step: creates one account per flags value and fails the case unless all are `ok`. */
export async function mkAccounts(l: Ledger, flags: readonly number[], ledger = ledgerMain): Promise<bigint[]> {
  const accounts = flags.map((f) => acct({ flags: f, ledger }));
  const results = await l.createAccounts(accounts);
  if (results.some((r) => r !== 'ok')) throw new Error(`setup accounts failed: ${results.join(',')}`);
  return accounts.map((a) => a.id);
}

/** Setup step: creates transfers and fails the case unless all are `ok`. */
export async function apply(l: Ledger, transfers: readonly Transfer[]): Promise<void> {
  const results = await l.createTransfers(transfers);
  if (results.some((r) => r !== 'ok')) throw new Error(`setup transfers failed: ${results.join(',')}`);
}

export interface Funded {
  /** Unrestricted source of funds (ends with debits_posted = amount). */
  src: bigint;
  /** `debits_must_not_exceed_credits` account holding `amount` in credits_posted. */
  a: bigint;
  /** Unrestricted destination. */
  b: bigint;
}

/** src → a of `amount` (a may not go negative), plus an empty destination b. */
export async function funded(l: Ledger, amount: bigint): Promise<Funded> {
  const [src, a, b] = await mkAccounts(l, [0, AccountFlags.debits_must_not_exceed_credits, 0]);
  if (amount > 0n) await apply(l, [xfer({ debit_account_id: src!, credit_account_id: a!, amount })]);
  return { src: src!, a: a!, b: b! };
}

/** Two unrestricted accounts. */
export async function plainPair(l: Ledger): Promise<[bigint, bigint]> {
  const [x, y] = await mkAccounts(l, [0, 0]);
  return [x!, y!];
}

/** The stored transfer with `id` (fails the case when missing). */
export async function stored(l: Ledger, id: bigint): Promise<Transfer> {
  const [found] = await l.lookupTransfers([id]);
  if (found === undefined) throw new Error(`transfer ${id} not found`);
  return found;
}

/** The stored account with `id` (fails the case when missing). */
export async function storedAccount(l: Ledger, id: bigint): Promise<Account> {
  const [found] = await l.lookupAccounts([id]);
  if (found === undefined) throw new Error(`account ${id} not found`);
  return found;
}

/** Filter over an account's transfers; both sides, oldest first, limit 100 unless given. */
export function filterOf(accountId: bigint, fields: Partial<AccountFilter> = {}): AccountFilter {
  return accountFilter({ account_id: accountId, limit: 100, ...fields });
}

/** Ids of transfers, to compare query results by identity and order. */
export function idsOf(items: readonly { id: bigint }[]): bigint[] {
  return items.map((x) => x.id);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * How a case lets the ledger's own time pass (pending transfers expire on it). An engine that
 * takes a clock gets one the case advances explicitly, so no outcome depends on how fast the
 * machine is; TigerBeetle keeps real time, so there the case waits for it.
 */
export interface LedgerTime {
  /**
   * Lets at least `ms` of ledger time pass and resolves with whether `settled()` then holds.
   * Injected clock: advances it by `ms` and looks once. Real time: looks at once and then every
   * `realTimePollIntervalMs` until `settled()` holds, at most (`ms` + `realTimeSlackMs`) /
   * `realTimePollIntervalMs` + 1 times.
   */
  pass(ms: number, settled: () => Promise<boolean>): Promise<boolean>;
}

/** Real time: looks 100 ms apart, for up to 4 s more than the time asked for. */
const realTimePollIntervalMs = 100;
const realTimeSlackMs = 4_000;

export const realTime: LedgerTime = {
  async pass(ms, settled) {
    for (let waitedMs = 0; waitedMs <= ms + realTimeSlackMs; waitedMs += realTimePollIntervalMs) {
      if (await settled()) return true;
      await sleep(realTimePollIntervalMs);
    }
    return false;
  },
};

/** A clock in ns since the epoch that moves only when advanced (the embedded engine's `clockNs`). */
export interface ManualClock {
  now: () => bigint;
  advanceMs(ms: number): void;
}

/** The time of an engine opened with `clock` as its `clockNs`. */
export function injectedTime(clock: ManualClock): LedgerTime {
  return {
    async pass(ms, settled) {
      clock.advanceMs(ms);
      return settled();
    },
  };
}

/**
 * The time of each ledger whose factory registered one (`withTime`); any other ledger keeps
 * real time. The contract's cases share one ledger per engine and run concurrently, so an
 * advance is seen by all of them: only the expiry case creates transfers with a timeout, and
 * moving time forward changes nothing else a case asserts (timestamps still increase).
 */
const times = new WeakMap<Ledger, LedgerTime>();

/** Registers `time` as the way to let `ledger`'s time pass; returns the ledger. */
export function withTime<L extends Ledger>(ledger: L, time: LedgerTime): L {
  times.set(ledger, time);
  return ledger;
}

export function timeOf(l: Ledger): LedgerTime {
  return times.get(l) ?? realTime;
}
