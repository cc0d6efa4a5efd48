/**
 * The ledger's data model: accounts, transfers, filters and balances.
 *
 * Field names, flag bits and widths follow TigerBeetle 0.16 (`tigerbeetle-node` 0.16.44) exactly,
 * so the TigerBeetle engine passes objects through without conversion and the embedded engine
 * can be checked against TigerBeetle's documentation field by field. Money and ids are `bigint`
 * (u128); `user_data_32`, `ledger`, `code`, `flags` and `timeout` are `number` because they are
 * u32/u16 on the wire.
 */

/** 2^128 - 1: the largest u128; reserved as an id, and "the whole pending amount" when posting. */
export const amountMax: bigint = (1n << 128n) - 1n;
/** Ids are u128; 0 and 2^128-1 are reserved. */
export const idMax: bigint = amountMax;
export const u64Max: bigint = (1n << 64n) - 1n;
export const u32Max = 0xffff_ffff;
export const u16Max = 0xffff;

/** Maximum events in one request to TigerBeetle (1 MiB message / 128-byte events, less header). */
export const eventBatchMax = 8189;

export const AccountFlags = {
  none: 0,
  linked: 1 << 0,
  debits_must_not_exceed_credits: 1 << 1,
  credits_must_not_exceed_debits: 1 << 2,
  history: 1 << 3,
  imported: 1 << 4,
  closed: 1 << 5,
} as const;
/** Bits of `Account.flags` that TigerBeetle 0.16 defines; any other bit is `reserved_flag`. */
export const accountFlagsKnown = 0b11_1111;

export const TransferFlags = {
  none: 0,
  linked: 1 << 0,
  pending: 1 << 1,
  post_pending_transfer: 1 << 2,
  void_pending_transfer: 1 << 3,
  balancing_debit: 1 << 4,
  balancing_credit: 1 << 5,
  closing_debit: 1 << 6,
  closing_credit: 1 << 7,
  imported: 1 << 8,
} as const;
export const transferFlagsKnown = 0b1_1111_1111;

export const AccountFilterFlags = {
  none: 0,
  debits: 1 << 0,
  credits: 1 << 1,
  reversed: 1 << 2,
} as const;

export interface Account {
  id: bigint;
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
  user_data_128: bigint;
  user_data_64: bigint;
  user_data_32: number;
  /** Must be 0. */
  reserved: number;
  ledger: number;
  code: number;
  flags: number;
  /** Assigned by the ledger; must be 0 when creating (imported events excepted). */
  timestamp: bigint;
}

export interface Transfer {
  id: bigint;
  debit_account_id: bigint;
  credit_account_id: bigint;
  amount: bigint;
  pending_id: bigint;
  user_data_128: bigint;
  user_data_64: bigint;
  user_data_32: number;
  /** Seconds (u32) a pending transfer may stay pending before it expires by itself. */
  timeout: number;
  ledger: number;
  code: number;
  flags: number;
  timestamp: bigint;
}

/** Filter for an account's transfers or balance history (TigerBeetle's `AccountFilter`). */
export interface AccountFilter {
  account_id: bigint;
  user_data_128: bigint;
  user_data_64: bigint;
  user_data_32: number;
  code: number;
  /** Inclusive; 0 = no lower bound. */
  timestamp_min: bigint;
  /** Inclusive; 0 = no upper bound. */
  timestamp_max: bigint;
  /** At most this many results (>= 1). */
  limit: number;
  /** `AccountFilterFlags`: at least one of debits/credits; `reversed` for newest first. */
  flags: number;
}

/** An account's balances right after one transfer touched it (TigerBeetle's `AccountBalance`). */
export interface AccountBalance {
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
  timestamp: bigint;
}

/** A new account with every field zeroed except those given. */
export function account(fields: Partial<Account> & Pick<Account, 'id' | 'ledger' | 'code'>): Account {
  return {
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    reserved: 0,
    flags: 0,
    timestamp: 0n,
    ...fields,
  };
}

/** A new transfer with every field zeroed except those given. */
export function transfer(fields: Partial<Transfer> & Pick<Transfer, 'id'>): Transfer {
  return {
    debit_account_id: 0n,
    credit_account_id: 0n,
    amount: 0n,
    pending_id: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0,
    ledger: 0,
    code: 0,
    flags: 0,
    timestamp: 0n,
    ...fields,
  };
}

/** An account filter over both sides, oldest first, with the given limit. */
export function accountFilter(fields: Partial<AccountFilter> & Pick<AccountFilter, 'account_id' | 'limit'>): AccountFilter {
  return {
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    flags: AccountFilterFlags.debits | AccountFilterFlags.credits,
    ...fields,
  };
}
