import { type Account, AccountFlags, amountMax, idMax, type Transfer, TransferFlags } from '../model.js';
import type { CreateAccountResult, CreateTransferResult } from '../results.js';

/**
 * The state machine's pure rules: checks and balance changes that need no state beyond the
 * accounts and transfers passed in, in TigerBeetle 0.16's order of precedence (state.ts applies
 * them).
 */

export const nsPerSecond = 1_000_000_000n;
/** TigerBeetle timestamps are u63 (the top bit of a u64 is a tombstone). */
export const timestampMax = (1n << 63n) - 1n;

const TF = TransferFlags;
const AF = AccountFlags;

export function accountExists(a: Account, e: Account): CreateAccountResult {
  if (a.flags !== e.flags) return 'exists_with_different_flags';
  if (a.user_data_128 !== e.user_data_128) return 'exists_with_different_user_data_128';
  if (a.user_data_64 !== e.user_data_64) return 'exists_with_different_user_data_64';
  if (a.user_data_32 !== e.user_data_32) return 'exists_with_different_user_data_32';
  if (a.ledger !== e.ledger) return 'exists_with_different_ledger';
  if (a.code !== e.code) return 'exists_with_different_code';
  return 'exists';
}

/** Checks of a single-phase or pending transfer that need no state, in TigerBeetle's order. */
export function validateTransfer(t: Transfer): CreateTransferResult | undefined {
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

export function validatePostOrVoid(t: Transfer): CreateTransferResult | undefined {
  const exclusive = TF.pending | TF.balancing_debit | TF.balancing_credit | TF.closing_debit | TF.closing_credit;
  const both = TF.post_pending_transfer | TF.void_pending_transfer;
  if ((t.flags & both) === both || (t.flags & exclusive) !== 0) return 'flags_are_mutually_exclusive';
  if (t.pending_id === 0n) return 'pending_id_must_not_be_zero';
  if (t.pending_id === idMax) return 'pending_id_must_not_be_int_max';
  if (t.pending_id === t.id) return 'pending_id_must_be_different';
  if (t.timeout !== 0) return 'timeout_reserved_for_pending_transfer';
  return undefined;
}

export function pendingMismatch(t: Transfer, p: Transfer): CreateTransferResult | undefined {
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

export function postOrVoidExists(t: Transfer, e: Transfer, p: Transfer): CreateTransferResult {
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
export function balancedAmount(t: Transfer, dr: Account, cr: Account): bigint {
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
export function checkLimits(t: Transfer, amount: bigint, dr: Account, cr: Account, timestamp: bigint): CreateTransferResult | undefined {
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

export function resolvePending(p: Transfer, amount: bigint, isVoid: boolean, dr: Account, cr: Account): void {
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
export function storedTransfer(t: Transfer, amount: bigint, timestamp: bigint): Transfer {
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

export function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/**
 * `exists` or the first differing field of a transfer created again with the same id; `pending`
 * is the pending transfer a post or void refers to (looked up only for those).
 */
export function transferExists(t: Transfer, e: Transfer, pending: () => Transfer): CreateTransferResult {
  if (t.flags !== e.flags) return 'exists_with_different_flags';
  if (t.pending_id !== e.pending_id) return 'exists_with_different_pending_id';
  if (t.timeout !== e.timeout) return 'exists_with_different_timeout';
  if ((t.flags & (TF.post_pending_transfer | TF.void_pending_transfer)) !== 0) return postOrVoidExists(t, e, pending());
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

/** The post or void of pending transfer `p` as stored: fields left zero are taken from `p`. */
export function storedResolution(t: Transfer, p: Transfer, amount: bigint, timestamp: bigint): Transfer {
  return {
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
}

/** The account as the port returns it (a copy without the state's bookkeeping fields). */
export function publicAccount(a: Account): Account {
  return {
    id: a.id,
    debits_pending: a.debits_pending,
    debits_posted: a.debits_posted,
    credits_pending: a.credits_pending,
    credits_posted: a.credits_posted,
    user_data_128: a.user_data_128,
    user_data_64: a.user_data_64,
    user_data_32: a.user_data_32,
    reserved: a.reserved,
    ledger: a.ledger,
    code: a.code,
    flags: a.flags,
    timestamp: a.timestamp,
  };
}
