import { MinHeap } from '../heap.js';
import {
  AccountFilterFlags,
  AccountFlags,
  TransferFlags,
  accountFlagsKnown,
  amountMax,
  eventBatchMax,
  idMax,
  transferFlagsKnown,
  u64Max,
  type Account,
  type AccountBalance,
  type AccountFilter,
  type Transfer,
} from '../model.js';
import {
  transientTransferResults,
  type CreateAccountResult,
  type CreateTransferResult,
} from '../results.js';

/**
 * The embedded engine's state machine: TigerBeetle 0.16's create_accounts / create_transfers /
 * lookups / account queries and pending-transfer expiry, synchronous and deterministic.
 *
 * Determinism is what makes the journal work: given the same requests with the same batch
 * timestamps, replay reaches the same state and the same results. Time enters only through the
 * `timestamp` arguments.
 */

type PendingStatus = 'pending' | 'posted' | 'voided' | 'expired';

const nsPerSecond = 1_000_000_000n;
/** TigerBeetle timestamps are u63 (the top bit of a u64 is a tombstone). */
const timestampMax = (1n << 63n) - 1n;

const TF = TransferFlags;
const AF = AccountFlags;

interface BalanceEntry {
  transfer: Transfer;
  balance: AccountBalance;
}

/** One applied event, so a broken linked chain can be undone in LIFO order. */
type Undo =
  | { kind: 'account'; account: Account; lastAccountTimestampBefore: bigint }
  | {
      kind: 'transfer';
      transfer: Transfer;
      dr: Account;
      cr: Account;
      drBefore: Account;
      crBefore: Account;
      pendingBefore: PendingStatus | undefined;
      lastTransferTimestampBefore: bigint;
    };

export class LedgerState {
  private readonly accounts = new Map<bigint, Account>();
  private readonly transfers = new Map<bigint, Transfer>();
  /** Ids whose first attempt failed with a transient result: `id_already_failed` forever. */
  private readonly orphaned = new Set<bigint>();
  private readonly pendingStatus = new Map<bigint, PendingStatus>();
  /** Every transfer touching an account, in timestamp order. */
  private readonly byAccount = new Map<bigint, Transfer[]>();
  /** Balances after each transfer, for accounts with `flags.history`. */
  private readonly history = new Map<bigint, BalanceEntry[]>();
  private readonly expiries = new MinHeap<Expiry>((e) => e.expiresAt);
  private lastTransferTimestamp = 0n;
  /** The largest timestamp assigned so far (the cluster's commit timestamp). */
  commitTimestamp = 0n;
  /**
   * Everything due at or before this timestamp has expired. New batches are timestamped after it,
   * so replaying the journal expires the same transfers before the same batches.
   */
  expiredThrough = 0n;

  // ---------------------------------------------------------------- batches

  createAccounts(events: readonly Account[], batchTimestamp: bigint): CreateAccountResult[] {
    return this.execute(events, batchTimestamp, (a, ts) => this.createAccount(a, ts));
  }

  createTransfers(events: readonly Transfer[], batchTimestamp: bigint): CreateTransferResult[] {
    this.expireDue(batchTimestamp - BigInt(events.length));
    return this.execute(events, batchTimestamp, (t, ts) => {
      const result = this.createTransfer(t, ts);
      if (result !== 'ok' && transientTransferResults.has(result)) this.orphaned.add(t.id);
      return result;
    });
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
        if (result === 'ok' && this.recordUndo) undo.push(this.lastUndo!);
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
  ): 'imported_event_expected' | 'imported_event_not_expected' | 'timestamp_must_be_zero'
    | 'imported_event_timestamp_out_of_range' | 'imported_event_timestamp_must_not_advance' | undefined {
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
        this.accountTimestamps.delete(u.account.timestamp);
        this.lastAccountTimestamp = u.lastAccountTimestampBefore;
        continue;
      }
      Object.assign(u.dr, u.drBefore);
      Object.assign(u.cr, u.crBefore);
      this.transfers.delete(u.transfer.id);
      this.byAccount.get(u.transfer.debit_account_id)!.pop();
      this.byAccount.get(u.transfer.credit_account_id)!.pop();
      if ((u.dr.flags & AF.history) !== 0) this.history.get(u.dr.id)!.pop();
      if ((u.cr.flags & AF.history) !== 0) this.history.get(u.cr.id)!.pop();
      const t = u.transfer;
      if ((t.flags & TF.pending) !== 0) this.pendingStatus.delete(t.id);
      if (u.pendingBefore !== undefined) this.pendingStatus.set(t.pending_id, u.pendingBefore);
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
    if (imported && (timestamp <= this.lastAccountTimestamp || this.isTransferTimestamp(timestamp))) {
      return 'imported_event_timestamp_must_not_regress';
    }
    const created = { ...a, timestamp };
    if (this.recordUndo) {
      this.lastUndo = { kind: 'account', account: created, lastAccountTimestampBefore: this.lastAccountTimestamp };
    }
    this.accounts.set(a.id, created);
    this.accountTimestamps.add(timestamp);
    if (timestamp > this.lastAccountTimestamp) this.lastAccountTimestamp = timestamp;
    if (timestamp > this.commitTimestamp) this.commitTimestamp = timestamp;
    return 'ok';
  }

  private lastAccountTimestamp = 0n;
  private readonly accountTimestamps = new Set<bigint>();

  private isTransferTimestamp(timestamp: bigint): boolean {
    return timestamp <= this.lastTransferTimestamp;
  }

  // ---------------------------------------------------------------- transfers

  private createTransfer(t: Transfer, inputTimestamp: bigint): CreateTransferResult {
    if ((t.flags & ~transferFlagsKnown) !== 0) return 'reserved_flag';
    if (t.id === 0n) return 'id_must_not_be_zero';
    if (t.id === idMax) return 'id_must_not_be_int_max';
    const e = this.transfers.get(t.id);
    if (e !== undefined) return this.transferExists(t, e);
    if (this.orphaned.has(t.id)) return 'id_already_failed';
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
    this.insertTransfer(storedTransfer(t, amount, timestamp), dr, cr, (d, c) => {
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
      this.pendingStatus.set(t.id, 'pending');
      if (t.timeout > 0) this.expiries.push({ expiresAt: timestamp + BigInt(t.timeout) * nsPerSecond, id: t.id, createdAt: timestamp });
    }
    return 'ok';
  }

  private checkImportedTransfer(t: Transfer, dr: Account, cr: Account): CreateTransferResult | undefined {
    if (t.timestamp <= this.lastTransferTimestamp || this.accountTimestamps.has(t.timestamp)) {
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
    const p = this.transfers.get(t.pending_id);
    if (p === undefined) return 'pending_transfer_not_found';
    if ((p.flags & TF.pending) === 0) return 'pending_transfer_not_pending';
    const dr = this.accounts.get(p.debit_account_id)!;
    const cr = this.accounts.get(p.credit_account_id)!;
    const mismatch = pendingMismatch(t, p);
    if (mismatch !== undefined) return mismatch;
    const isVoid = (t.flags & TF.void_pending_transfer) !== 0;
    const amount = isVoid ? (t.amount > 0n ? t.amount : p.amount) : t.amount === amountMax ? p.amount : t.amount;
    if (amount > p.amount) return 'exceeds_pending_transfer_amount';
    if (isVoid && amount < p.amount) return 'pending_transfer_has_different_amount';
    const status = this.pendingStatus.get(p.id)!;
    if (status === 'posted') return 'pending_transfer_already_posted';
    if (status === 'voided') return 'pending_transfer_already_voided';
    if (status === 'expired') return 'pending_transfer_expired';
    if (p.timeout > 0 && p.timestamp + BigInt(p.timeout) * nsPerSecond <= timestamp) return 'pending_transfer_expired';
    if ((t.flags & TF.imported) !== 0) {
      if (timestamp <= this.lastTransferTimestamp || this.accountTimestamps.has(timestamp)) {
        return 'imported_event_timestamp_must_not_regress';
      }
    }
    if ((dr.flags & AF.closed) !== 0 && !isVoid) return 'debit_account_already_closed';
    if ((cr.flags & AF.closed) !== 0 && !isVoid) return 'credit_account_already_closed';
    const stored: Transfer = {
      id: t.id,
      debit_account_id: p.debit_account_id,
      credit_account_id: p.credit_account_id,
      amount,
      pending_id: t.pending_id,
      user_data_128: t.user_data_128 > 0n ? t.user_data_128 : p.user_data_128,
      user_data_64: t.user_data_64 > 0n ? t.user_data_64 : p.user_data_64,
      user_data_32: t.user_data_32 > 0 ? t.user_data_32 : p.user_data_32,
      timeout: 0,
      ledger: p.ledger,
      code: p.code,
      flags: t.flags,
      timestamp,
    };
    this.insertTransfer(stored, dr, cr, (d, c) => resolvePending(p, amount, isVoid, d, c), p.id);
    this.pendingStatus.set(p.id, isVoid ? 'voided' : 'posted');
    return 'ok';
  }

  /** Stores a transfer, applies its balance change, indexes it, and records how to undo it. */
  private insertTransfer(
    t: Transfer,
    dr: Account,
    cr: Account,
    change: (dr: Account, cr: Account) => void,
    pendingId?: bigint,
  ): void {
    if (this.recordUndo) {
      this.lastUndo = {
        kind: 'transfer',
        transfer: t,
        dr,
        cr,
        drBefore: { ...dr },
        crBefore: { ...cr },
        pendingBefore: pendingId === undefined ? undefined : this.pendingStatus.get(pendingId),
        lastTransferTimestampBefore: this.lastTransferTimestamp,
      };
    }
    change(dr, cr);
    this.transfers.set(t.id, t);
    this.index(this.byAccount, dr.id, t);
    this.index(this.byAccount, cr.id, t);
    if ((dr.flags & AF.history) !== 0) this.index(this.history, dr.id, { transfer: t, balance: balanceOf(dr, t) });
    if ((cr.flags & AF.history) !== 0) this.index(this.history, cr.id, { transfer: t, balance: balanceOf(cr, t) });
    if (t.timestamp > this.lastTransferTimestamp) this.lastTransferTimestamp = t.timestamp;
    if (t.timestamp > this.commitTimestamp) this.commitTimestamp = t.timestamp;
  }

  private index<T>(map: Map<bigint, T[]>, id: bigint, entry: T): void {
    const list = map.get(id);
    if (list === undefined) map.set(id, [entry]);
    else list.push(entry);
  }

  private transferExists(t: Transfer, e: Transfer): CreateTransferResult {
    if (t.flags !== e.flags) return 'exists_with_different_flags';
    if (t.pending_id !== e.pending_id) return 'exists_with_different_pending_id';
    if (t.timeout !== e.timeout) return 'exists_with_different_timeout';
    if ((t.flags & (TF.post_pending_transfer | TF.void_pending_transfer)) !== 0) {
      return postOrVoidExists(t, e, this.transfers.get(t.pending_id)!);
    }
    if (t.debit_account_id !== e.debit_account_id) return 'exists_with_different_debit_account_id';
    if (t.credit_account_id !== e.credit_account_id) return 'exists_with_different_credit_account_id';
    if ((t.flags & (TF.balancing_debit | TF.balancing_credit)) !== 0) {
      if (t.amount < e.amount) return 'exists_with_different_amount';
    } else if (t.amount !== e.amount) return 'exists_with_different_amount';
    if (t.user_data_128 !== e.user_data_128) return 'exists_with_different_user_data_128';
    if (t.user_data_64 !== e.user_data_64) return 'exists_with_different_user_data_64';
    if (t.user_data_32 !== e.user_data_32) return 'exists_with_different_user_data_32';
    if (t.ledger !== e.ledger) return 'exists_with_different_ledger';
    if (t.code !== e.code) return 'exists_with_different_code';
    return 'exists';
  }

  // ---------------------------------------------------------------- expiry

  /** Expires every pending transfer whose timeout has passed at `timestamp`, oldest first. */
  expireDue(timestamp: bigint): number {
    if (timestamp > this.expiredThrough) this.expiredThrough = timestamp;
    let expired = 0;
    for (;;) {
      const next = this.expiries.peek();
      if (next === undefined || next.expiresAt > timestamp) return expired;
      this.expiries.pop();
      // Skip entries of transfers already resolved, or rolled back (and maybe re-created since).
      const p = this.transfers.get(next.id);
      if (p === undefined || p.timestamp !== next.createdAt || this.pendingStatus.get(p.id) !== 'pending') continue;
      const dr = this.accounts.get(p.debit_account_id)!;
      const cr = this.accounts.get(p.credit_account_id)!;
      dr.debits_pending -= p.amount;
      cr.credits_pending -= p.amount;
      if ((p.flags & TF.closing_debit) !== 0) dr.flags &= ~AF.closed;
      if ((p.flags & TF.closing_credit) !== 0) cr.flags &= ~AF.closed;
      this.pendingStatus.set(p.id, 'expired');
      expired += 1;
    }
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
      if (a !== undefined) found.push({ ...a });
    }
    return found;
  }

  lookupTransfers(ids: readonly bigint[]): Transfer[] {
    const found: Transfer[] = [];
    for (const id of ids) {
      const t = this.transfers.get(id);
      if (t !== undefined) found.push({ ...t });
    }
    return found;
  }

  getAccountTransfers(filter: AccountFilter): Transfer[] {
    if (!validFilter(filter)) return [];
    const list = this.byAccount.get(filter.account_id) ?? [];
    return scan(list, filter, (t) => t).map((t) => ({ ...t }));
  }

  getAccountBalances(filter: AccountFilter): AccountBalance[] {
    if (!validFilter(filter)) return [];
    const a = this.accounts.get(filter.account_id);
    if (a === undefined || (a.flags & AF.history) === 0) return [];
    const list = this.history.get(filter.account_id) ?? [];
    return scan(list, filter, (e) => e.transfer).map((e) => ({ ...e.balance }));
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

// ------------------------------------------------------------------ pure helpers

function accountExists(a: Account, e: Account): CreateAccountResult {
  if (a.flags !== e.flags) return 'exists_with_different_flags';
  if (a.user_data_128 !== e.user_data_128) return 'exists_with_different_user_data_128';
  if (a.user_data_64 !== e.user_data_64) return 'exists_with_different_user_data_64';
  if (a.user_data_32 !== e.user_data_32) return 'exists_with_different_user_data_32';
  if (a.ledger !== e.ledger) return 'exists_with_different_ledger';
  if (a.code !== e.code) return 'exists_with_different_code';
  return 'exists';
}

/** Checks of a single-phase or pending transfer that need no state, in TigerBeetle's order. */
function validateTransfer(t: Transfer): CreateTransferResult | undefined {
  if (t.debit_account_id === 0n) return 'debit_account_id_must_not_be_zero';
  if (t.debit_account_id === idMax) return 'debit_account_id_must_not_be_int_max';
  if (t.credit_account_id === 0n) return 'credit_account_id_must_not_be_zero';
  if (t.credit_account_id === idMax) return 'credit_account_id_must_not_be_int_max';
  if (t.credit_account_id === t.debit_account_id) return 'accounts_must_be_different';
  if (t.pending_id !== 0n) return 'pending_id_must_be_zero';
  if ((t.flags & TF.pending) === 0) {
    if (t.timeout !== 0) return 'timeout_reserved_for_pending_transfer';
    if ((t.flags & (TF.closing_debit | TF.closing_credit)) !== 0) return 'closing_transfer_must_be_pending';
  }
  if (t.ledger === 0) return 'ledger_must_not_be_zero';
  if (t.code === 0) return 'code_must_not_be_zero';
  return undefined;
}

function validatePostOrVoid(t: Transfer): CreateTransferResult | undefined {
  const exclusive =
    TF.pending | TF.balancing_debit | TF.balancing_credit | TF.closing_debit | TF.closing_credit;
  const both = TF.post_pending_transfer | TF.void_pending_transfer;
  if ((t.flags & both) === both || (t.flags & exclusive) !== 0) return 'flags_are_mutually_exclusive';
  if (t.pending_id === 0n) return 'pending_id_must_not_be_zero';
  if (t.pending_id === idMax) return 'pending_id_must_not_be_int_max';
  if (t.pending_id === t.id) return 'pending_id_must_be_different';
  if (t.timeout !== 0) return 'timeout_reserved_for_pending_transfer';
  return undefined;
}

function pendingMismatch(t: Transfer, p: Transfer): CreateTransferResult | undefined {
  if (t.debit_account_id > 0n && t.debit_account_id !== p.debit_account_id) {
    return 'pending_transfer_has_different_debit_account_id';
  }
  if (t.credit_account_id > 0n && t.credit_account_id !== p.credit_account_id) {
    return 'pending_transfer_has_different_credit_account_id';
  }
  if (t.ledger > 0 && t.ledger !== p.ledger) return 'pending_transfer_has_different_ledger';
  if (t.code > 0 && t.code !== p.code) return 'pending_transfer_has_different_code';
  return undefined;
}

function postOrVoidExists(t: Transfer, e: Transfer, p: Transfer): CreateTransferResult {
  if (t.debit_account_id !== 0n && t.debit_account_id !== e.debit_account_id) {
    return 'exists_with_different_debit_account_id';
  }
  if (t.credit_account_id !== 0n && t.credit_account_id !== e.credit_account_id) {
    return 'exists_with_different_credit_account_id';
  }
  if ((t.flags & TF.void_pending_transfer) !== 0) {
    if (t.amount === 0n ? e.amount !== p.amount : t.amount !== e.amount) return 'exists_with_different_amount';
  } else if (t.amount === amountMax ? e.amount !== p.amount : t.amount !== e.amount) {
    return 'exists_with_different_amount';
  }
  if ((t.user_data_128 === 0n ? p.user_data_128 : t.user_data_128) !== e.user_data_128) {
    return 'exists_with_different_user_data_128';
  }
  if ((t.user_data_64 === 0n ? p.user_data_64 : t.user_data_64) !== e.user_data_64) {
    return 'exists_with_different_user_data_64';
  }
  if ((t.user_data_32 === 0 ? p.user_data_32 : t.user_data_32) !== e.user_data_32) {
    return 'exists_with_different_user_data_32';
  }
  if (t.ledger !== 0 && t.ledger !== e.ledger) return 'exists_with_different_ledger';
  if (t.code !== 0 && t.code !== e.code) return 'exists_with_different_code';
  return 'exists';
}

/** The amount a transfer moves: `balancing_*` clamps it to what keeps the account balanced. */
function balancedAmount(t: Transfer, dr: Account, cr: Account): bigint {
  let amount = t.amount;
  if ((t.flags & TF.balancing_debit) !== 0) {
    const room = dr.credits_posted - (dr.debits_posted + dr.debits_pending);
    amount = min(amount, room > 0n ? room : 0n);
  }
  if ((t.flags & TF.balancing_credit) !== 0) {
    const room = cr.debits_posted - (cr.credits_posted + cr.credits_pending);
    amount = min(amount, room > 0n ? room : 0n);
  }
  return amount;
}

/**
 * Overflow and balance-limit checks in TigerBeetle's order. Written to allocate as few bigints as
 * possible (this is the engine's hot path): `x + amount > max` is tested as `x > max - amount`.
 */
function checkLimits(t: Transfer, amount: bigint, dr: Account, cr: Account, timestamp: bigint): CreateTransferResult | undefined {
  const room = amountMax - amount;
  if ((t.flags & TF.pending) !== 0) {
    if (dr.debits_pending > room) return 'overflows_debits_pending';
    if (cr.credits_pending > room) return 'overflows_credits_pending';
  }
  if (dr.debits_posted > room) return 'overflows_debits_posted';
  if (cr.credits_posted > room) return 'overflows_credits_posted';
  const drDebits = dr.debits_pending + dr.debits_posted;
  if (drDebits > room) return 'overflows_debits';
  const crCredits = cr.credits_pending + cr.credits_posted;
  if (crCredits > room) return 'overflows_credits';
  if (t.timeout !== 0 && timestamp + BigInt(t.timeout) * nsPerSecond > timestampMax) return 'overflows_timeout';
  if ((dr.flags & AF.debits_must_not_exceed_credits) !== 0 && drDebits + amount > dr.credits_posted) {
    return 'exceeds_credits';
  }
  if ((cr.flags & AF.credits_must_not_exceed_debits) !== 0 && crCredits + amount > cr.debits_posted) {
    return 'exceeds_debits';
  }
  return undefined;
}

function resolvePending(p: Transfer, amount: bigint, isVoid: boolean, dr: Account, cr: Account): void {
  dr.debits_pending -= p.amount;
  cr.credits_pending -= p.amount;
  if (!isVoid) {
    dr.debits_posted += amount;
    cr.credits_posted += amount;
    return;
  }
  if ((p.flags & TF.closing_debit) !== 0) dr.flags &= ~AF.closed;
  if ((p.flags & TF.closing_credit) !== 0) cr.flags &= ~AF.closed;
}

/** A copy of the transfer as stored; a literal (not a spread) so every stored transfer shares one shape. */
function storedTransfer(t: Transfer, amount: bigint, timestamp: bigint): Transfer {
  return {
    id: t.id,
    debit_account_id: t.debit_account_id,
    credit_account_id: t.credit_account_id,
    amount,
    pending_id: t.pending_id,
    user_data_128: t.user_data_128,
    user_data_64: t.user_data_64,
    user_data_32: t.user_data_32,
    timeout: t.timeout,
    ledger: t.ledger,
    code: t.code,
    flags: t.flags,
    timestamp,
  };
}

function balanceOf(a: Account, t: Transfer): AccountBalance {
  return {
    debits_pending: a.debits_pending,
    debits_posted: a.debits_posted,
    credits_pending: a.credits_pending,
    credits_posted: a.credits_posted,
    timestamp: t.timestamp,
  };
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** TigerBeetle's AccountFilter validity rules; an invalid filter yields no results. */
function validFilter(f: AccountFilter): boolean {
  const sides = AccountFilterFlags.debits | AccountFilterFlags.credits;
  const known = sides | AccountFilterFlags.reversed;
  if (f.account_id === 0n || f.account_id === idMax) return false;
  if (f.timestamp_min === u64Max || f.timestamp_max === u64Max) return false;
  if (f.timestamp_max !== 0n && f.timestamp_min > f.timestamp_max) return false;
  if (f.limit === 0) return false;
  if ((f.flags & sides) === 0 || (f.flags & ~known) !== 0) return false;
  return true;
}

/** Filters an account's timestamp-ordered entries; oldest first unless `reversed`. */
function scan<T>(list: readonly T[], f: AccountFilter, transferOf: (entry: T) => Transfer): T[] {
  const limit = Math.min(f.limit, eventBatchMax);
  const wantDebits = (f.flags & AccountFilterFlags.debits) !== 0;
  const wantCredits = (f.flags & AccountFilterFlags.credits) !== 0;
  const reversed = (f.flags & AccountFilterFlags.reversed) !== 0;
  const out: T[] = [];
  for (let k = 0; k < list.length && out.length < limit; k++) {
    const entry = list[reversed ? list.length - 1 - k : k]!;
    const t = transferOf(entry);
    if (f.timestamp_min !== 0n && t.timestamp < f.timestamp_min) continue;
    if (f.timestamp_max !== 0n && t.timestamp > f.timestamp_max) continue;
    const side = (wantDebits && t.debit_account_id === f.account_id) || (wantCredits && t.credit_account_id === f.account_id);
    if (!side) continue;
    if (f.user_data_128 !== 0n && t.user_data_128 !== f.user_data_128) continue;
    if (f.user_data_64 !== 0n && t.user_data_64 !== f.user_data_64) continue;
    if (f.user_data_32 !== 0 && t.user_data_32 !== f.user_data_32) continue;
    if (f.code !== 0 && t.code !== f.code) continue;
    out.push(entry);
  }
  return out;
}

/** A binary min-heap of pending transfers by expiry time. */
interface Expiry {
  expiresAt: bigint;
  id: bigint;
  /** The pending transfer's timestamp, to tell it from a later transfer with the same id. */
  createdAt: bigint;
}
