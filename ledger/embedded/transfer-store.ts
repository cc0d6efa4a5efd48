import { readSync } from 'node:fs';
import { assert } from '../assert.js';
import type { Account, AccountBalance, Transfer } from '../model.js';
import type { AccountEntry, AccountKeys } from './account-table.js';
import { decodeTransferWords, encodeTransferBody, eventSize, eventWords, getU64, getU128, setU128 } from './codec.js';
import { Column, chunkMask, chunkRecords, chunkShift } from './column.js';
import { hashWords, IdIndex, type IdKey, type IdSource, newIdKey } from './id-index.js';
import { nsPerSecond } from './rules.js';

/**
 * The embedded engine's transfers, off the JS heap: what used to be one object, one Map entry,
 * two array entries and (for history accounts) two balance objects per transfer.
 *
 * Per transfer slot (slots are assigned in timestamp order):
 * - `records`: the transfer in TigerBeetle's 128-byte layout (codec.ts);
 * - `links`: u32 × 3 — slot+1 of the previous transfer of its debit account and of its credit
 *   account (0: none), and the index of its first history entry. Written once, never changed.
 * - `next`: u32 × 2 — slot+1 of the next transfer of its debit / credit account. Changes when the
 *   account gets a newer transfer; derived from `links`, so never persisted: after loading, an
 *   account's are filled in the first time it is walked oldest first (`linkForward`).
 * - `status`: u8, `PendingStatus` of a pending transfer (0 for others). Changes on post, void and
 *   expiry.
 * - `history`: for each side whose account has `flags.history`, that account's balances right
 *   after the transfer (4 × u128 = 64 bytes), debit side first. Written once; journaled, only the
 *   entries since the last checkpoint stay in memory (the rest is read back from its file).
 * - `index`: id → slot (id-index.ts).
 *
 * That is 128 + 12 + 8 + 1 + ~10 bytes per transfer in memory (~160), plus 0..128 bytes of
 * history: in memory for the in-memory engine, on disk (page cache) for the journaled one.
 * An account's transfers form a doubly linked list through `links` / `next`, from
 * `AccountEntry.firstTransfer` to `lastTransfer`.
 */

export const PendingStatus = { none: 0, pending: 1, posted: 2, voided: 3, expired: 4 } as const;
export type PendingStatus = (typeof PendingStatus)[keyof typeof PendingStatus];

/** u32 word offsets in a transfer record: debit account id at byte 16, credit at 32. */
const debitWord = 4;
const creditWord = 8;
const timeoutWord = 27;
const timestampWord = 30;
const historyWidth = 64;
const historyWords = historyWidth / 4;

export class TransferStore implements IdSource {
  readonly records = new Column(eventSize);
  readonly links = new Column(12);
  readonly status = new Column(1);
  readonly history = new Column(historyWidth);
  private readonly next = new Column(8);
  readonly index = new IdIndex(this);
  /**
   * The journaled engine's history file (fd open for reading): history chunks written by a
   * checkpoint are evicted from memory and read back from it (persistence.ts).
   */
  historyFile: number | undefined;
  private readonly historyScratch = Buffer.alloc(historyWidth);
  private readonly historyScratchWords = new Uint32Array(this.historyScratch.buffer, this.historyScratch.byteOffset, historyWords);

  /** `accountKeys`: the accounts' id words, written into transfers and compared against them. */
  constructor(private readonly accountKeys: AccountKeys) {}

  get count(): number {
    return this.records.count;
  }

  idWord(slot: number, k: number): number {
    return this.records.word(slot, k);
  }

  find(key: IdKey): number {
    return this.index.find(key);
  }

  get(slot: number): Transfer {
    return decodeTransferWords(this.records.words[slot >>> chunkShift]!, (slot & chunkMask) * eventWords);
  }

  statusOf(slot: number): PendingStatus {
    return this.status.chunk(slot)[this.status.offset(slot)] as PendingStatus;
  }

  /** When the transfer at `slot` expires by itself, if it is still pending and has a timeout. */
  expiryOf(slot: number): bigint | undefined {
    if (slot >= this.count || this.statusOf(slot) !== PendingStatus.pending) return undefined;
    const w = this.records.words[slot >>> chunkShift]!;
    const b = (slot & chunkMask) * eventWords;
    const timeout = w[b + timeoutWord]!;
    return timeout === 0 ? undefined : getU64(w, b + timestampWord) + BigInt(timeout) * nsPerSecond;
  }

  setStatus(slot: number, status: PendingStatus): void {
    this.status.chunk(slot)[this.status.offset(slot)] = status;
  }

  /**
   * Stores `t` (already complete: amount and timestamp final; `key` its id, `dr` and `cr` its
   * accounts) at the next slot and links it into its accounts' lists. The caller then adds history
   * entries, debit side first.
   */
  append(t: Transfer, key: IdKey, dr: AccountEntry, cr: AccountEntry): number {
    const slot = this.records.push();
    this.links.push();
    this.next.push();
    this.status.push();
    const w = this.records.words[slot >>> chunkShift]!;
    const b = (slot & chunkMask) * eventWords;
    setKey(w, b, key);
    this.setAccountId(w, b + debitWord, dr.index);
    this.setAccountId(w, b + creditWord, cr.index);
    encodeTransferBody(w, b, t);
    this.links.setWord(slot, 0, dr.lastTransfer);
    this.links.setWord(slot, 1, cr.lastTransfer);
    this.links.setWord(slot, 2, this.history.count);
    this.next.setWord(slot, 0, 0);
    this.next.setWord(slot, 1, 0);
    this.setStatus(slot, PendingStatus.none);
    this.linkAfter(dr, slot, debitWord);
    this.linkAfter(cr, slot, creditWord);
    this.index.insert(key, slot);
    return slot;
  }

  /** Records `a`'s balances as they are right after the transfer just appended. */
  appendHistory(a: Account): void {
    const entry = this.history.push();
    const w = this.history.words[entry >>> chunkShift]!;
    const b = (entry & chunkMask) * historyWords;
    setU128(w, b, a.debits_pending);
    setU128(w, b + 4, a.debits_posted);
    setU128(w, b + 8, a.credits_pending);
    setU128(w, b + 12, a.credits_posted);
  }

  /**
   * Undoes `append` of the newest transfer (a broken linked chain, newest first). Its accounts'
   * `firstTransfer` / `lastTransfer` are restored by the caller with the rest of the account.
   */
  removeLast(key: IdKey): void {
    const slot = this.count - 1;
    assert(slot >= 0 && this.index.find(key) === slot, 'removeLast: not the newest transfer');
    this.setPrevNext(slot, debitWord, 0);
    this.setPrevNext(slot, creditWord, 0);
    this.history.truncate(this.links.word(slot, 2));
    this.index.remove(key);
    for (const column of [this.records, this.links, this.next, this.status]) column.truncate(slot);
  }

  /** The account's transfer slot after (or, `reversed`, before) `slot`; -1 at the end. */
  step(slot: number, debit: boolean, reversed: boolean): number {
    return (reversed ? this.links.word(slot, debit ? 0 : 1) : this.next.word(slot, debit ? 0 : 1)) - 1;
  }

  /** True when the account with index `account` is the debit side of the transfer at `slot`. */
  isDebit(slot: number, account: number): boolean {
    const r = this.records;
    const k = this.accountKeys;
    for (let i = 0; i < 4; i++) if (r.word(slot, debitWord + i) !== k.idWord(account, i)) return false;
    return true;
  }

  private setAccountId(w: Uint32Array, b: number, account: number): void {
    for (let i = 0; i < 4; i++) w[b + i] = this.accountKeys.idWord(account, i);
  }

  /** The balances of the debit (or credit) account right after the transfer at `slot`. */
  balanceAt(slot: number, debit: boolean): Omit<AccountBalance, 'timestamp'> {
    const end = slot + 1 < this.count ? this.links.word(slot + 1, 2) : this.history.count;
    const entry = debit ? this.links.word(slot, 2) : end - 1;
    const [w, b] = this.historyEntry(entry);
    return {
      debits_pending: getU128(w, b),
      debits_posted: getU128(w, b + 4),
      credits_pending: getU128(w, b + 8),
      credits_posted: getU128(w, b + 12),
    };
  }

  /** The words holding history entry `entry`: in memory, or read back from the history file. */
  private historyEntry(entry: number): [Uint32Array, number] {
    if (this.history.isResident(entry)) return [this.history.words[entry >>> chunkShift]!, (entry & chunkMask) * historyWords];
    assert(this.historyFile !== undefined, 'history evicted without a file to read it from');
    const n = readSync(this.historyFile, this.historyScratch, 0, historyWidth, entry * historyWidth);
    assert(n === historyWidth, `history file ended before entry ${entry}`);
    return [this.historyScratchWords, 0];
  }

  /**
   * Rebuilds the id index after loading. The `next` links are not rebuilt here (that would touch
   * every transfer's predecessors at random): each account's are filled in by `linkForward` the
   * first time it is walked oldest first.
   */
  rebuildIndex(): void {
    this.next.resize(this.count); // zero-filled
    this.index.reserve(this.count);
    const key = newIdKey();
    for (let chunk = 0; chunk * chunkRecords < this.count; chunk++) {
      const w = this.records.words[chunk]!;
      const records = Math.min(chunkRecords, this.count - chunk * chunkRecords);
      for (let i = 0, b = 0; i < records; i++, b += eventWords) {
        key.w0 = w[b]!;
        key.w1 = w[b + 1]!;
        key.w2 = w[b + 2]!;
        key.w3 = w[b + 3]!;
        key.hash = hashWords(key.w0, key.w1, key.w2, key.w3);
        this.index.insert(key, chunk * chunkRecords + i);
      }
    }
  }

  /** Fills in the `next` links of `a`'s transfers, newest to oldest through the `links`. */
  linkForward(a: AccountEntry): void {
    for (let slot = a.lastTransfer - 1; slot >= 0; ) {
      const debit = this.isDebit(slot, a.index);
      const prev = this.links.word(slot, debit ? 0 : 1) - 1;
      if (prev >= 0) this.next.setWord(prev, this.isDebit(prev, a.index) ? 0 : 1, slot + 1);
      slot = prev;
    }
    a.forwardLinked = true;
  }

  /** Sets the `next` link that points from the account's previous transfer to `slot` (at `side`). */
  private setPrevNext(slot: number, side: number, value: number): void {
    const prev = this.links.word(slot, side === debitWord ? 0 : 1);
    if (prev !== 0) this.next.setWord(prev - 1, this.sideAt(prev - 1, slot, side), value);
  }

  /** Which `next` word (0 debit, 1 credit) of `prev` belongs to the account at word `side` of `slot`. */
  private sideAt(prev: number, slot: number, side: number): 0 | 1 {
    const r = this.records;
    for (let k = 0; k < 4; k++) if (r.word(prev, debitWord + k) !== r.word(slot, side + k)) return 1;
    return 0;
  }

  private linkAfter(a: AccountEntry, slot: number, side: number): void {
    if (a.lastTransfer === 0) a.firstTransfer = slot + 1;
    else this.next.setWord(a.lastTransfer - 1, this.sideAt(a.lastTransfer - 1, slot, side), slot + 1);
    a.lastTransfer = slot + 1;
  }
}

function setKey(w: Uint32Array, b: number, key: IdKey): void {
  w[b] = key.w0;
  w[b + 1] = key.w1;
  w[b + 2] = key.w2;
  w[b + 3] = key.w3;
}
