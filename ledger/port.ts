import type { Account, AccountBalance, AccountFilter, Transfer } from './model.js';
import type { CreateAccountResult, CreateTransferResult } from './results.js';

/**
 * The ledger port: the only way countersign moves or reads money.
 *
 * Two engines implement it with the same semantics: `TigerBeetleLedger` (a TigerBeetle cluster
 * through tigerbeetle-node 0.16.44) and `EmbeddedLedger` (in process, optionally journaled to a
 * data directory). Both are checked by one contract suite (`test/ledger/contract.ts`).
 *
 * Semantics are TigerBeetle's (docs.tigerbeetle.com, reference/requests):
 * - Operating outcomes are values: every create call returns one result per event, in input
 *   order, named as TigerBeetle names them. Only a broken request (a linked chain longer than
 *   `eventBatchMax`) or an unreachable ledger throws.
 * - Events are applied in order. Arrays longer than `eventBatchMax` (8189) are split into
 *   requests of at most 8189 events, never inside a linked chain, so a chain stays atomic.
 *   Events in different requests are not atomic with each other (nor are unlinked events in one).
 * - The caller makes the id and the id is the idempotency key. Creating the same event again
 *   returns `exists` (treat it as `ok`, see `isApplied`), a different event with the same id
 *   returns the first differing `exists_with_different_*`, and an id whose first attempt failed
 *   for a transient reason returns `id_already_failed` forever.
 *
 * Errors thrown: `LedgerUnavailableError` when the ledger did not answer within the engine's
 * deadline or is closed (the request may or may not have been applied: retry with the same ids);
 * its subclass `LedgerCapacityError` when the embedded engine is at its capacity bound (nothing
 * of the request was applied); `LedgerRequestError` for a request the port refuses before
 * sending it.
 */
export interface Ledger {
  /**
   * Creates accounts. One result per account, in order.
   *
   * Results: `ok`; `exists` and `exists_with_different_{flags,user_data_128,user_data_64,
   * user_data_32,ledger,code}`; `linked_event_failed`, `linked_event_chain_open`;
   * `timestamp_must_be_zero`, `reserved_field`, `reserved_flag`, `id_must_not_be_zero`,
   * `id_must_not_be_int_max`, `flags_are_mutually_exclusive`, `{debits,credits}_{pending,posted}
   * _must_be_zero`, `ledger_must_not_be_zero`, `code_must_not_be_zero` (and the `imported_*`
   * results when `flags.imported` is used).
   */
  createAccounts(accounts: readonly Account[]): Promise<CreateAccountResult[]>;

  /**
   * Creates transfers: single-phase, pending (with `timeout` in whole seconds, 0 = never expires),
   * post or void of a pending transfer (`pending_id`), with `linked`, `balancing_debit`,
   * `balancing_credit`, `closing_debit`, `closing_credit` flags. One result per transfer, in order.
   *
   * Results (TigerBeetle precedence): `ok`; idempotency — `exists`,
   * `exists_with_different_{flags,pending_id,timeout,debit_account_id,credit_account_id,amount,
   * user_data_128,user_data_64,user_data_32,ledger,code}`, `id_already_failed`; chains —
   * `linked_event_failed`, `linked_event_chain_open`; validation — `timestamp_must_be_zero`,
   * `reserved_flag`, `id_must_not_be_{zero,int_max}`, `flags_are_mutually_exclusive`,
   * `{debit,credit}_account_id_must_not_be_{zero,int_max}`, `accounts_must_be_different`,
   * `pending_id_must_be_zero`, `pending_id_must_not_be_{zero,int_max}`,
   * `pending_id_must_be_different`, `timeout_reserved_for_pending_transfer`,
   * `closing_transfer_must_be_pending`, `ledger_must_not_be_zero`, `code_must_not_be_zero`;
   * state — `{debit,credit}_account_not_found`, `accounts_must_have_the_same_ledger`,
   * `transfer_must_have_the_same_ledger_as_accounts`, `pending_transfer_not_found`,
   * `pending_transfer_not_pending`, `pending_transfer_has_different_{debit_account_id,
   * credit_account_id,ledger,code,amount}`, `exceeds_pending_transfer_amount`,
   * `pending_transfer_already_{posted,voided}`, `pending_transfer_expired`,
   * `{debit,credit}_account_already_closed`, `overflows_{debits,credits}{,_pending,_posted}`,
   * `overflows_timeout`, `exceeds_credits`, `exceeds_debits`.
   *
   * A retried linked chain that was already applied answers `exists` for its first event and
   * `linked_event_failed` for the rest (an `exists` breaks a chain like any non-`ok` result);
   * look the other transfers up to confirm them.
   */
  createTransfers(transfers: readonly Transfer[]): Promise<CreateTransferResult[]>;

  /** The accounts that exist among `ids`, in the order asked; unknown ids are left out. */
  lookupAccounts(ids: readonly bigint[]): Promise<Account[]>;

  /** The transfers that exist among `ids`, in the order asked; unknown ids are left out. */
  lookupTransfers(ids: readonly bigint[]): Promise<Transfer[]>;

  /**
   * An account's transfers matching the filter (debits and/or credits, optional user data, code
   * and inclusive timestamp range), oldest first or newest first with `reversed`, at most
   * `min(limit, eventBatchMax)`. An invalid filter (zero or int-max account id, limit 0, neither
   * debits nor credits, min > max) returns `[]`, as TigerBeetle does.
   */
  getAccountTransfers(filter: AccountFilter): Promise<Transfer[]>;

  /**
   * The account's balances after each matching transfer (same filter rules as
   * `getAccountTransfers`). Only accounts created with `flags.history` keep balance history;
   * other accounts return `[]`.
   */
  getAccountBalances(filter: AccountFilter): Promise<AccountBalance[]>;

  /** Waits for in-flight requests, then releases the connection or journal. Idempotent. */
  close(): Promise<void>;
}

/** The ledger did not answer in time or is closed. Retry with the same ids; `exists` is success. */
export class LedgerUnavailableError extends Error {
  override readonly name: string = 'LedgerUnavailableError';
}

/**
 * The embedded ledger is full: it holds as many transfers (or accounts) as its configured bound
 * allows, and refused the whole request before applying any of it. Not retryable until an
 * operator acts (moves the ledger to TigerBeetle, or raises the bound on a larger machine); it
 * is a `LedgerUnavailableError` so that every caller that already maps an unavailable ledger
 * (UNAVAILABLE, nothing approved) handles it without a new case.
 */
export class LedgerCapacityError extends LedgerUnavailableError {
  override readonly name = 'LedgerCapacityError';
}

/** The port refused the request before sending it (a programming error at the call site). */
export class LedgerRequestError extends Error {
  override readonly name = 'LedgerRequestError';
}
