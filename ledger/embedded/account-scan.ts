import { type AccountBalance, type AccountFilter, AccountFilterFlags, eventBatchMax, idMax, type Transfer, u64Max } from '../model.js';
import type { AccountEntry } from './account-table.js';
import { type IdKey, idKey, newIdKey } from './id-index.js';
import type { TransferStore } from './transfer-store.js';

/**
 * `get_account_transfers` and `get_account_balances` over the transfer store: walks the
 * account's linked list of transfers (oldest first, or newest first with `reversed`) and tests
 * the filter on the stored words, decoding only the transfers that match.
 */

/** u32 word offsets in a transfer record (codec.ts). */
const userData128Word = 20;
const userData64Word = 24;
const userData32Word = 26;
const codeWord = 29;
const timestampWord = 30;

/** TigerBeetle's AccountFilter validity rules; an invalid filter yields no results. */
export function validFilter(f: AccountFilter): boolean {
  const sides = AccountFilterFlags.debits | AccountFilterFlags.credits;
  const known = sides | AccountFilterFlags.reversed;
  if (f.account_id === 0n || f.account_id === idMax) return false;
  if (f.timestamp_min === u64Max || f.timestamp_max === u64Max) return false;
  if (f.timestamp_max !== 0n && f.timestamp_min > f.timestamp_max) return false;
  if (f.limit === 0) return false;
  if ((f.flags & sides) === 0 || (f.flags & ~known) !== 0) return false;
  return true;
}

export function accountTransfers(store: TransferStore, a: AccountEntry, f: AccountFilter): Transfer[] {
  return matchingSlots(store, a, f).map((m) => store.get(m.slot));
}

export function accountBalances(store: TransferStore, a: AccountEntry, f: AccountFilter): AccountBalance[] {
  return matchingSlots(store, a, f).map((m) => ({ ...store.balanceAt(m.slot, m.debit), timestamp: timestampAt(store, m.slot) }));
}

function timestampAt(store: TransferStore, slot: number): bigint {
  return store.records.chunk(slot).readBigUInt64LE(store.records.offset(slot) + timestampWord * 4);
}

/** The filter as u32 words, compared against records without decoding them. */
interface RawFilter {
  account: number;
  wantDebits: boolean;
  wantCredits: boolean;
  /** Timestamp bounds as [high word, low word]; undefined when unbounded. */
  min: [number, number] | undefined;
  max: [number, number] | undefined;
  userData128: IdKey | undefined;
  userData64: IdKey | undefined;
  userData32: number;
  code: number;
}

function rawFilter(a: AccountEntry, f: AccountFilter): RawFilter {
  const split = (ts: bigint): [number, number] => [Number(ts >> 32n), Number(ts & 0xffff_ffffn)];
  return {
    account: a.index,
    wantDebits: (f.flags & AccountFilterFlags.debits) !== 0,
    wantCredits: (f.flags & AccountFilterFlags.credits) !== 0,
    min: f.timestamp_min === 0n ? undefined : split(f.timestamp_min),
    max: f.timestamp_max === 0n ? undefined : split(f.timestamp_max),
    userData128: f.user_data_128 === 0n ? undefined : idKey(f.user_data_128, newIdKey()),
    userData64: f.user_data_64 === 0n ? undefined : idKey(f.user_data_64, newIdKey()),
    userData32: f.user_data_32,
    code: f.code,
  };
}

/** -1, 0 or 1 as the record's timestamp is below, at or above `bound`. */
function compareTimestamp(store: TransferStore, slot: number, bound: [number, number]): number {
  const hi = store.records.word(slot, timestampWord + 1);
  const lo = store.records.word(slot, timestampWord);
  if (hi !== bound[0]) return hi < bound[0] ? -1 : 1;
  return lo === bound[1] ? 0 : lo < bound[1] ? -1 : 1;
}

function wordsEqual(store: TransferStore, slot: number, at: number, key: IdKey, words: number): boolean {
  const r = store.records;
  if (r.word(slot, at) !== key.w0 || r.word(slot, at + 1) !== key.w1) return false;
  return words === 2 || (r.word(slot, at + 2) === key.w2 && r.word(slot, at + 3) === key.w3);
}

/** Whether the record passes the filter's non-timestamp conditions. */
function matches(store: TransferStore, slot: number, debit: boolean, r: RawFilter): boolean {
  if (!((r.wantDebits && debit) || (r.wantCredits && !debit))) return false;
  if (r.userData128 !== undefined && !wordsEqual(store, slot, userData128Word, r.userData128, 4)) return false;
  if (r.userData64 !== undefined && !wordsEqual(store, slot, userData64Word, r.userData64, 2)) return false;
  if (r.userData32 !== 0 && store.records.word(slot, userData32Word) !== r.userData32) return false;
  if (r.code !== 0 && (store.records.word(slot, codeWord) & 0xffff) !== r.code) return false;
  return true;
}

/**
 * The account's transfers that pass the filter, at most `min(limit, eventBatchMax)`. An account's
 * list is in timestamp order, so the walk stops at the first transfer past the far bound.
 */
function matchingSlots(store: TransferStore, a: AccountEntry, f: AccountFilter): { slot: number; debit: boolean }[] {
  const limit = Math.min(f.limit, eventBatchMax);
  const reversed = (f.flags & AccountFilterFlags.reversed) !== 0;
  const r = rawFilter(a, f);
  const [near, far] = reversed ? [r.max, r.min] : [r.min, r.max];
  if (!reversed && !a.forwardLinked) store.linkForward(a);
  const out: { slot: number; debit: boolean }[] = [];
  let slot = (reversed ? a.lastTransfer : a.firstTransfer) - 1;
  while (slot >= 0 && out.length < limit) {
    const debit = store.isDebit(slot, r.account);
    const beyond = reversed ? -1 : 1;
    if (far !== undefined && compareTimestamp(store, slot, far) === beyond) break;
    const inRange = near === undefined || compareTimestamp(store, slot, near) !== -beyond;
    if (inRange && matches(store, slot, debit, r)) out.push({ slot, debit });
    slot = store.step(slot, debit, reversed);
  }
  return out;
}
