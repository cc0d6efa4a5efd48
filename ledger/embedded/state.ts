import { assert } from '../assert.js';
import {
  type Account,
  type AccountBalance,
  type AccountFilter,
  AccountFlags,
  accountFlagsKnown,
  amountMax,
  idMax,
  type Transfer,
  TransferFlags,
  transferFlagsKnown,
} from '../model.js';
import { type CreateAccountResult, type CreateTransferResult, transientTransferResults } from '../results.js';
import { accountBalances, accountTransfers, validFilter } from './account-scan.js';
import { type AccountEntry, AccountKeys, accountEntry } from './account-table.js';
import { type Expiry, ExpiryQueue } from './expiry-queue.js';
import { FailedIds } from './failed-ids.js';
import { type IdKey, idKey, newIdKey } from './id-index.js';
import {
  accountExists,
  balancedAmount,
  checkLimits,
  nsPerSecond,
  pendingMismatch,
  publicAccount,
  resolvePending,
  storedResolution,
  storedTransfer,
  timestampMax,
  transferExists,
  validatePostOrVoid,
  validateTransfer,
} from './rules.js';
import { PendingStatus, TransferStore } from './transfer-store.js';

/**
 * The embedded engine's state machine: TigerBeetle 0.16's create_accounts / create_transfers /
 * lookups / account queries and pending-transfer expiry, synchronous and deterministic.
 *
 * Determinism is what makes the journal and checkpoints work: given the same requests with the
 * same batch timestamps, replay reaches the same state and the same results. Time enters only
 * through the `timestamp` arguments.
 *
 * Accounts are JS objects (bounded by the engine's `accountsMax`); transfers, their per-account
 * lists, pending statuses, balance history and failed ids live off the heap (transfer-store.ts).
 */

const TF = TransferFlags;
const AF = AccountFlags;

/** One applied event, so a broken linked chain can be undone in LIFO order. */
type Undo =
  | { kind: 'account'; account: AccountEntry; lastAccountTimestampBefore: bigint }
  | {
      kind: 'transfer';
      id: bigint;
      dr: AccountEntry;
      cr: AccountEntry;
      drBefore: AccountEntry;
      crBefore: AccountEntry;
      /** The pending transfer a post or void resolved, and its status before; -1 for others. */
      pendingSlot: number;
      pendingBefore: PendingStatus;
      lastTransferTimestampBefore: bigint;
    };

export class LedgerState {
  /** Accounts in creation order (checkpoints keep the order). */
  readonly accounts = new Map<bigint, AccountEntry>();
  /** Id words and timestamps by account index. */
  readonly accountKeys = new AccountKeys();
  readonly transfers = new TransferStore(this.accountKeys);
  /** Accounts changed since the last checkpoint image (may hold some that changed back: check `dirty`). */
  dirtyAccounts: AccountEntry[] = [];
  /** Ids whose first attempt failed with a transient result: `id_already_failed` forever. */
  readonly failed = new FailedIds();
  readonly expiries = new ExpiryQueue((e) => this.transfers.expiryOf(e.slot) === e.expiresAt);
  lastTransferTimestamp = 0n;
  lastAccountTimestamp = 0n;
  /** The largest timestamp assigned so far (the cluster's commit timestamp). */
  commitTimestamp = 0n;
  /**
   * Everything due at or before this timestamp has expired. New batches are timestamped after it,
   * so replaying the journal expires the same transfers before the same batches.
   */
  expiredThrough = 0n;
  /** Scratch keys: the event's id, and the pending id of a post or void. */
  private readonly key = newIdKey();
  private readonly pendingKey = newIdKey();

  // ---------------------------------------------------------------- batches

  createAccounts(events: readonly Account[], batchTimestamp: bigint): CreateAccountResult[] {
    this.assertBatchTimestamp(events.length, batchTimestamp);
    return this.execute(events, batchTimestamp, (a, ts) => this.createAccount(a, ts));
  }

  createTransfers(events: readonly Transfer[], batchTimestamp: bigint): CreateTransferResult[] {
    this.assertBatchTimestamp(events.length, batchTimestamp);
    this.expireDue(batchTimestamp - BigInt(events.length));
    return this.execute(events, batchTimestamp, (t, ts) => {
      const result = this.createTransfer(t, ts);
      if (result !== 'ok' && transientTransferResults.has(result)) this.failed.add(idKey(t.id, this.key));
      return result;
    });
  }

  /**
   * Time only moves forward: a batch's events (timestamped `batchTimestamp - n + 1 …`) come after
   * everything committed and everything expired (the engine's floor; replay meets the same).
   */
  private assertBatchTimestamp(n: number, batchTimestamp: bigint): void {
    const before = batchTimestamp - BigInt(n);
    assert(before >= this.commitTimestamp, 'a batch is timestamped after the commit timestamp');
    assert(before >= this.expiredThrough, 'a batch is timestamped after the expired-through timestamp');
  }

  /**
   * TigerBeetle's batch loop: events get timestamps `batchTimestamp - n + i + 1`; a linked chain
   * is all-or-nothing; `linked` on the last event is `linked_event_chain_open`; the first event
   * decides whether the batch is imported.
   */
  private execute<E extends Account | Transfer, R extends string>(
    events: readonly E[],
    batchTimestamp: bigint,
    apply: (event: E, timestamp: bigint) => R | 'ok',
  ): (R | 'ok' | 'linked_event_failed' | 'linked_event_chain_open')[] {
    type Res = R | 'ok' | 'linked_event_failed' | 'linked_event_chain_open';
    const results: Res[] = new Array<Res>(events.length);
    // Event i is timestamped batchTimestamp - n + i + 1: advance one counter instead of recomputing.
    let timestamp = batchTimestamp - BigInt(events.length);
    let chainStart = -1;
    let chainBroken = false;
    let undo: Undo[] = [];
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      const linked = (event.flags & 1) !== 0;
      if (linked && chainStart < 0) {
        chainStart = i;
        undo = [];
      }
      let result: Res;
      timestamp += 1n;
      if (linked && i === events.length - 1) result = 'linked_event_chain_open';
      else if (chainBroken) result = 'linked_event_failed';
      else {
        this.recordUndo = chainStart >= 0;
        result = (this.admit(events[0]!, event, batchTimestamp) ?? apply(event, timestamp)) as Res;
        if (result === 'ok' && this.recordUndo) {
          assert(this.lastUndo !== undefined, 'an event applied inside a linked chain recorded its undo');
          undo.push(this.lastUndo);
        }
      }
      this.lastUndo = undefined;
      this.recordUndo = false;
      if (result !== 'ok' && chainStart >= 0 && !chainBroken) {
        chainBroken = true;
        this.rollback(undo);
        for (let j = chainStart; j < i; j++) results[j] = 'linked_event_failed';
      }
      results[i] = result;
      if (chainStart >= 0 && (!linked || result === 'linked_event_chain_open')) {
        chainStart = -1;
        chainBroken = false;
      }
    }
    return results;
  }

  /** Set while applying an event inside a linked chain: only then is an undo record needed. */
  private recordUndo = false;
  private lastUndo: Undo | undefined;

  /** Batch-level checks that precede the event's own: imported consistency and timestamps. */
  private admit(
    first: Account | Transfer,
    event: Account | Transfer,
    batchTimestamp: bigint,
  ):
    | 'imported_event_expected'
    | 'imported_event_not_expected'
    | 'timestamp_must_be_zero'
    | 'imported_event_timestamp_out_of_range'
    | 'imported_event_timestamp_must_not_advance'
    | undefined {
    const importedBit = 'debit_account_id' in event ? TF.imported : AF.imported;
    const imported = (event.flags & importedBit) !== 0;
    if (((first.flags & importedBit) !== 0) !== imported) {
      return imported ? 'imported_event_not_expected' : 'imported_event_expected';
    }
    if (imported) {
      if (event.timestamp < 1n || event.timestamp > timestampMax) return 'imported_event_timestamp_out_of_range';
      if (event.timestamp >= batchTimestamp) return 'imported_event_timestamp_must_not_advance';
      return undefined;
    }
    if (event.timestamp !== 0n) return 'timestamp_must_be_zero';
    return undefined;
  }

  private rollback(undo: Undo[]): void {
    for (let k = undo.length - 1; k >= 0; k--) {
      const u = undo[k]!;
      if (u.kind === 'account') {
        this.accounts.delete(u.account.id);
        this.accountKeys.pop(u.account.index);
        this.lastAccountTimestamp = u.lastAccountTimestampBefore;
        continue;
      }
      Object.assign(u.dr, u.drBefore);
      Object.assign(u.cr, u.crBefore);
      this.transfers.removeLast(idKey(u.id, this.key));
      if (u.pendingSlot >= 0) this.transfers.setStatus(u.pendingSlot, u.pendingBefore);
      this.lastTransferTimestamp = u.lastTransferTimestampBefore;
    }
    // Expiry heap entries of rolled-back pending transfers are skipped when popped (see expireDue).
  }

  // ---------------------------------------------------------------- accounts

  private createAccount(input: Account, inputTimestamp: bigint): CreateAccountResult {
    const a = input;
    if (a.reserved !== 0) return 'reserved_field';
    if ((a.flags & ~accountFlagsKnown) !== 0) return 'reserved_flag';
    if (a.id === 0n) return 'id_must_not_be_zero';
    if (a.id === idMax) return 'id_must_not_be_int_max';
    const e = this.accounts.get(a.id);
    if (e !== undefined) return accountExists(a, e);
    if ((a.flags & AF.debits_must_not_exceed_credits) !== 0 && (a.flags & AF.credits_must_not_exceed_debits) !== 0) {
      return 'flags_are_mutually_exclusive';
    }
    if (a.debits_pending !== 0n) return 'debits_pending_must_be_zero';
    if (a.debits_posted !== 0n) return 'debits_posted_must_be_zero';
    if (a.credits_pending !== 0n) return 'credits_pending_must_be_zero';
    if (a.credits_posted !== 0n) return 'credits_posted_must_be_zero';
    if (a.ledger === 0) return 'ledger_must_not_be_zero';
    if (a.code === 0) return 'code_must_not_be_zero';
    const imported = (a.flags & AF.imported) !== 0;
    const timestamp = imported ? a.timestamp : inputTimestamp;
    if (imported && (timestamp <= this.lastAccountTimestamp || timestamp <= this.lastTransferTimestamp)) {
      return 'imported_event_timestamp_must_not_regress';
    }
    assert(timestamp > this.lastAccountTimestamp, 'account timestamps only increase');
    const created = accountEntry(a, timestamp, this.accountKeys.count, undefined);
    if (this.recordUndo) {
      this.lastUndo = { kind: 'account', account: created, lastAccountTimestampBefore: this.lastAccountTimestamp };
    }
    this.addAccount(created);
    return 'ok';
  }

  /** Adds an account that is new (created, or restored from a checkpoint in index order). */
  addAccount(a: AccountEntry): void {
    assert(a.index === this.accountKeys.count, 'accounts are added in index order');
    this.accounts.set(a.id, a);
    this.accountKeys.push(a.id, a.timestamp);
    if (a.dirty) this.dirtyAccounts.push(a);
    if (a.timestamp > this.lastAccountTimestamp) this.lastAccountTimestamp = a.timestamp;
    if (a.timestamp > this.commitTimestamp) this.commitTimestamp = a.timestamp;
  }

  /** Records that `a` changed since the last checkpoint image. */
  private markDirty(a: AccountEntry): void {
    if (a.dirty) return;
    a.dirty = true;
    this.dirtyAccounts.push(a);
  }

  // ---------------------------------------------------------------- transfers

  private createTransfer(t: Transfer, inputTimestamp: bigint): CreateTransferResult {
    if ((t.flags & ~transferFlagsKnown) !== 0) return 'reserved_flag';
    if (t.id === 0n) return 'id_must_not_be_zero';
    if (t.id === idMax) return 'id_must_not_be_int_max';
    const key = idKey(t.id, this.key);
    const existing = this.transfers.find(key);
    if (existing >= 0) return transferExists(t, this.transfers.get(existing), () => this.transfers.get(this.slotOf(t.pending_id)));
    if (this.failed.has(key)) return 'id_already_failed';
    const timestamp = (t.flags & TF.imported) !== 0 ? t.timestamp : inputTimestamp;
    if ((t.flags & (TF.post_pending_transfer | TF.void_pending_transfer)) !== 0) {
      return this.postOrVoid(t, timestamp);
    }
    const invalid = validateTransfer(t);
    if (invalid !== undefined) return invalid;
    const dr = this.accounts.get(t.debit_account_id);
    if (dr === undefined) return 'debit_account_not_found';
    const cr = this.accounts.get(t.credit_account_id);
    if (cr === undefined) return 'credit_account_not_found';
    if (dr.ledger !== cr.ledger) return 'accounts_must_have_the_same_ledger';
    if (t.ledger !== dr.ledger) return 'transfer_must_have_the_same_ledger_as_accounts';
    if ((t.flags & TF.imported) !== 0) {
      const imported = this.checkImportedTransfer(t, dr, cr);
      if (imported !== undefined) return imported;
    }
    if ((dr.flags & AF.closed) !== 0) return 'debit_account_already_closed';
    if ((cr.flags & AF.closed) !== 0) return 'credit_account_already_closed';
    const amount = balancedAmount(t, dr, cr);
    const limits = checkLimits(t, amount, dr, cr, timestamp);
    if (limits !== undefined) return limits;
    const slot = this.insertTransfer(storedTransfer(t, amount, timestamp), key, dr, cr, (d, c) => {
      if ((t.flags & TF.pending) !== 0) {
        d.debits_pending += amount;
        c.credits_pending += amount;
      } else {
        d.debits_posted += amount;
        c.credits_posted += amount;
      }
      if ((t.flags & TF.closing_debit) !== 0) d.flags |= AF.closed;
      if ((t.flags & TF.closing_credit) !== 0) c.flags |= AF.closed;
    });
    if ((t.flags & TF.pending) !== 0) {
      this.transfers.setStatus(slot, PendingStatus.pending);
      if (t.timeout > 0) this.expiries.push({ expiresAt: timestamp + BigInt(t.timeout) * nsPerSecond, slot });
    }
    return 'ok';
  }

  /** A stored pending transfer's account: it exists (accounts are never removed) and has that id. */
  private pendingAccount(id: bigint): AccountEntry {
    const a = this.accounts.get(id);
    assert(a !== undefined, "a pending transfer's account exists");
    assert(a.id === id, 'an account is stored under its own id');
    return a;
  }

  private slotOf(id: bigint): number {
    return this.transfers.find(idKey(id, this.pendingKey));
  }

  private checkImportedTransfer(t: Transfer, dr: Account, cr: Account): CreateTransferResult | undefined {
    if (t.timestamp <= this.lastTransferTimestamp || this.accountKeys.hasTimestamp(t.timestamp)) {
      return 'imported_event_timestamp_must_not_regress';
    }
    if (t.timestamp <= dr.timestamp) return 'imported_event_timestamp_must_postdate_debit_account';
    if (t.timestamp <= cr.timestamp) return 'imported_event_timestamp_must_postdate_credit_account';
    if (t.timeout !== 0) return 'imported_event_timeout_must_be_zero';
    return undefined;
  }

  private postOrVoid(t: Transfer, timestamp: bigint): CreateTransferResult {
    const invalid = validatePostOrVoid(t);
    if (invalid !== undefined) return invalid;
    const pendingSlot = this.slotOf(t.pending_id);
    if (pendingSlot < 0) return 'pending_transfer_not_found';
    const p = this.transfers.get(pendingSlot);
    if ((p.flags & TF.pending) === 0) return 'pending_transfer_not_pending';
    const dr = this.pendingAccount(p.debit_account_id);
    const cr = this.pendingAccount(p.credit_account_id);
    const mismatch = pendingMismatch(t, p);
    if (mismatch !== undefined) return mismatch;
    const isVoid = (t.flags & TF.void_pending_transfer) !== 0;
    const amount = isVoid ? (t.amount > 0n ? t.amount : p.amount) : t.amount === amountMax ? p.amount : t.amount;
    if (amount > p.amount) return 'exceeds_pending_transfer_amount';
    if (isVoid && amount < p.amount) return 'pending_transfer_has_different_amount';
    const status = this.transfers.statusOf(pendingSlot);
    if (status === PendingStatus.posted) return 'pending_transfer_already_posted';
    if (status === PendingStatus.voided) return 'pending_transfer_already_voided';
    if (status === PendingStatus.expired) return 'pending_transfer_expired';
    if (p.timeout > 0 && p.timestamp + BigInt(p.timeout) * nsPerSecond <= timestamp) return 'pending_transfer_expired';
    if ((t.flags & TF.imported) !== 0) {
      if (timestamp <= this.lastTransferTimestamp || this.accountKeys.hasTimestamp(timestamp)) {
        return 'imported_event_timestamp_must_not_regress';
      }
    }
    if ((dr.flags & AF.closed) !== 0 && !isVoid) return 'debit_account_already_closed';
    if ((cr.flags & AF.closed) !== 0 && !isVoid) return 'credit_account_already_closed';
    assert(p.timestamp < timestamp, 'a post or void comes after its pending transfer');
    const stored = storedResolution(t, p, amount, timestamp);
    this.insertTransfer(stored, this.key, dr, cr, (d, c) => resolvePending(p, amount, isVoid, d, c), pendingSlot);
    this.transfers.setStatus(pendingSlot, isVoid ? PendingStatus.voided : PendingStatus.posted);
    return 'ok';
  }

  /** Stores a transfer, applies its balance change, records history, and records how to undo it. */
  private insertTransfer(t: Transfer, key: IdKey, dr: AccountEntry, cr: AccountEntry, change: (dr: Account, cr: Account) => void, pendingSlot = -1): number {
    if (this.recordUndo) {
      this.lastUndo = {
        kind: 'transfer',
        id: t.id,
        dr,
        cr,
        drBefore: { ...dr },
        crBefore: { ...cr },
        pendingSlot,
        pendingBefore: pendingSlot < 0 ? PendingStatus.none : this.transfers.statusOf(pendingSlot),
        lastTransferTimestampBefore: this.lastTransferTimestamp,
      };
    }
    assert(dr.id === t.debit_account_id && cr.id === t.credit_account_id, "a transfer's accounts are the ones it names");
    assert(t.timestamp > this.lastTransferTimestamp, 'transfer timestamps only increase');
    assert(t.timestamp > dr.timestamp && t.timestamp > cr.timestamp, 'a transfer comes after its accounts');
    change(dr, cr);
    assert(nonNegative(dr) && nonNegative(cr), 'balances are never negative');
    this.markDirty(dr);
    this.markDirty(cr);
    const slot = this.transfers.append(t, key, dr, cr);
    if ((dr.flags & AF.history) !== 0) this.transfers.appendHistory(dr);
    if ((cr.flags & AF.history) !== 0) this.transfers.appendHistory(cr);
    this.lastTransferTimestamp = t.timestamp;
    if (t.timestamp > this.commitTimestamp) this.commitTimestamp = t.timestamp;
    return slot;
  }

  // ---------------------------------------------------------------- expiry

  /** Expires every pending transfer whose timeout has passed at `timestamp`, oldest first. */
  expireDue(timestamp: bigint): number {
    if (timestamp > this.expiredThrough) this.expiredThrough = timestamp;
    this.expiries.compactIfDoubled(); // always between batches
    let expired = 0;
    for (;;) {
      const next = this.expiries.peek();
      if (next === undefined || next.expiresAt > timestamp) return expired;
      this.expiries.pop();
      // Skip entries of transfers already resolved, or rolled back (and maybe re-created since).
      const p = this.pendingAt(next);
      if (p === undefined) continue;
      const dr = this.pendingAccount(p.debit_account_id);
      const cr = this.pendingAccount(p.credit_account_id);
      assert(dr.debits_pending >= p.amount && cr.credits_pending >= p.amount, 'an expiring transfer is still held in pending balances');
      dr.debits_pending -= p.amount;
      cr.credits_pending -= p.amount;
      if ((p.flags & TF.closing_debit) !== 0) dr.flags &= ~AF.closed;
      if ((p.flags & TF.closing_credit) !== 0) cr.flags &= ~AF.closed;
      this.markDirty(dr);
      this.markDirty(cr);
      this.transfers.setStatus(next.slot, PendingStatus.expired);
      expired += 1;
    }
  }

  /** The pending transfer an expiry entry stands for, if it is still pending and still that transfer. */
  private pendingAt(e: Expiry): Transfer | undefined {
    return this.transfers.expiryOf(e.slot) === e.expiresAt ? this.transfers.get(e.slot) : undefined;
  }

  /** When the next pending transfer expires (ns timestamp), if any is pending with a timeout. */
  nextExpiry(): bigint | undefined {
    return this.expiries.peek()?.expiresAt;
  }

  // ---------------------------------------------------------------- reads

  lookupAccounts(ids: readonly bigint[]): Account[] {
    const found: Account[] = [];
    for (const id of ids) {
      const a = this.accounts.get(id);
      if (a !== undefined) found.push(publicAccount(a));
    }
    return found;
  }

  lookupTransfers(ids: readonly bigint[]): Transfer[] {
    const found: Transfer[] = [];
    for (const id of ids) {
      const slot = this.slotOf(id);
      if (slot >= 0) found.push(this.transfers.get(slot));
    }
    return found;
  }

  getAccountTransfers(filter: AccountFilter): Transfer[] {
    if (!validFilter(filter)) return [];
    const a = this.accounts.get(filter.account_id);
    return a === undefined ? [] : accountTransfers(this.transfers, a, filter);
  }

  getAccountBalances(filter: AccountFilter): AccountBalance[] {
    if (!validFilter(filter)) return [];
    const a = this.accounts.get(filter.account_id);
    if (a === undefined || (a.flags & AF.history) === 0) return [];
    return accountBalances(this.transfers, a, filter);
  }

  /** Sums over all accounts, per ledger: the double-entry invariant is debits == credits. */
  totals(): Map<number, { debitsPosted: bigint; creditsPosted: bigint; debitsPending: bigint; creditsPending: bigint }> {
    const sums = new Map<number, { debitsPosted: bigint; creditsPosted: bigint; debitsPending: bigint; creditsPending: bigint }>();
    for (const a of this.accounts.values()) {
      const s = sums.get(a.ledger) ?? { debitsPosted: 0n, creditsPosted: 0n, debitsPending: 0n, creditsPending: 0n };
      s.debitsPosted += a.debits_posted;
      s.creditsPosted += a.credits_posted;
      s.debitsPending += a.debits_pending;
      s.creditsPending += a.credits_pending;
      sums.set(a.ledger, s);
    }
    return sums;
  }
}

/** No balance column goes below zero: every debit or credit removed was added before. */
function nonNegative(a: Account): boolean {
  return a.debits_pending >= 0n && a.debits_posted >= 0n && a.credits_pending >= 0n && a.credits_posted >= 0n;
}
