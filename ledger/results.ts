/**
 * Per-event results of `createAccounts` and `createTransfers`, named exactly as TigerBeetle 0.16
 * names them (`CreateAccountError` / `CreateTransferError` in tigerbeetle-node 0.16.44).
 *
 * Lists are in TigerBeetle's order of descending precedence: when several results apply to one
 * event, only the first in this order is returned. The numeric values are TigerBeetle's wire codes.
 */

export const createAccountResultCodes = {
  ok: 0,
  linked_event_failed: 1,
  linked_event_chain_open: 2,
  imported_event_expected: 22,
  imported_event_not_expected: 23,
  timestamp_must_be_zero: 3,
  imported_event_timestamp_out_of_range: 24,
  imported_event_timestamp_must_not_advance: 25,
  reserved_field: 4,
  reserved_flag: 5,
  id_must_not_be_zero: 6,
  id_must_not_be_int_max: 7,
  exists_with_different_flags: 15,
  exists_with_different_user_data_128: 16,
  exists_with_different_user_data_64: 17,
  exists_with_different_user_data_32: 18,
  exists_with_different_ledger: 19,
  exists_with_different_code: 20,
  exists: 21,
  flags_are_mutually_exclusive: 8,
  debits_pending_must_be_zero: 9,
  debits_posted_must_be_zero: 10,
  credits_pending_must_be_zero: 11,
  credits_posted_must_be_zero: 12,
  ledger_must_not_be_zero: 13,
  code_must_not_be_zero: 14,
  imported_event_timestamp_must_not_regress: 26,
} as const;

export type CreateAccountResult = keyof typeof createAccountResultCodes;

export const createTransferResultCodes = {
  ok: 0,
  linked_event_failed: 1,
  linked_event_chain_open: 2,
  imported_event_expected: 56,
  imported_event_not_expected: 57,
  timestamp_must_be_zero: 3,
  imported_event_timestamp_out_of_range: 58,
  imported_event_timestamp_must_not_advance: 59,
  reserved_flag: 4,
  id_must_not_be_zero: 5,
  id_must_not_be_int_max: 6,
  exists_with_different_flags: 36,
  exists_with_different_pending_id: 40,
  exists_with_different_timeout: 44,
  exists_with_different_debit_account_id: 37,
  exists_with_different_credit_account_id: 38,
  exists_with_different_amount: 39,
  exists_with_different_user_data_128: 41,
  exists_with_different_user_data_64: 42,
  exists_with_different_user_data_32: 43,
  exists_with_different_ledger: 67,
  exists_with_different_code: 45,
  exists: 46,
  id_already_failed: 68,
  flags_are_mutually_exclusive: 7,
  debit_account_id_must_not_be_zero: 8,
  debit_account_id_must_not_be_int_max: 9,
  credit_account_id_must_not_be_zero: 10,
  credit_account_id_must_not_be_int_max: 11,
  accounts_must_be_different: 12,
  pending_id_must_be_zero: 13,
  pending_id_must_not_be_zero: 14,
  pending_id_must_not_be_int_max: 15,
  pending_id_must_be_different: 16,
  timeout_reserved_for_pending_transfer: 17,
  closing_transfer_must_be_pending: 64,
  ledger_must_not_be_zero: 19,
  code_must_not_be_zero: 20,
  debit_account_not_found: 21,
  credit_account_not_found: 22,
  accounts_must_have_the_same_ledger: 23,
  transfer_must_have_the_same_ledger_as_accounts: 24,
  pending_transfer_not_found: 25,
  pending_transfer_not_pending: 26,
  pending_transfer_has_different_debit_account_id: 27,
  pending_transfer_has_different_credit_account_id: 28,
  pending_transfer_has_different_ledger: 29,
  pending_transfer_has_different_code: 30,
  exceeds_pending_transfer_amount: 31,
  pending_transfer_has_different_amount: 32,
  pending_transfer_already_posted: 33,
  pending_transfer_already_voided: 34,
  pending_transfer_expired: 35,
  imported_event_timestamp_must_not_regress: 60,
  imported_event_timestamp_must_postdate_debit_account: 61,
  imported_event_timestamp_must_postdate_credit_account: 62,
  imported_event_timeout_must_be_zero: 63,
  debit_account_already_closed: 65,
  credit_account_already_closed: 66,
  overflows_debits_pending: 47,
  overflows_credits_pending: 48,
  overflows_debits_posted: 49,
  overflows_credits_posted: 50,
  overflows_debits: 51,
  overflows_credits: 52,
  overflows_timeout: 53,
  exceeds_credits: 54,
  exceeds_debits: 55,
} as const;

export type CreateTransferResult = keyof typeof createTransferResultCodes;

function invert<T extends Record<string, number>>(codes: T): Map<number, keyof T> {
  return new Map(Object.entries(codes).map(([name, code]) => [code, name as keyof T]));
}

const accountResultByCode = invert(createAccountResultCodes);
const transferResultByCode = invert(createTransferResultCodes);

/** TigerBeetle wire code → result name. Throws on a code this version does not know. */
export function createAccountResultName(code: number): CreateAccountResult {
  const name = accountResultByCode.get(code);
  if (name === undefined) throw new Error(`unknown create_accounts result code ${code}`);
  return name;
}

/** TigerBeetle wire code → result name. Throws on a code this version does not know. */
export function createTransferResultName(code: number): CreateTransferResult {
  const name = transferResultByCode.get(code);
  if (name === undefined) throw new Error(`unknown create_transfers result code ${code}`);
  return name;
}

/**
 * Results after which TigerBeetle remembers the id as failed: creating the same id again returns
 * `id_already_failed` (the request was well-formed but the ledger's state refused it). A caller
 * that wants to try again after one of these must mint a new id.
 */
export const transientTransferResults: ReadonlySet<CreateTransferResult> = new Set<CreateTransferResult>([
  'debit_account_not_found',
  'credit_account_not_found',
  'pending_transfer_not_found',
  'exceeds_credits',
  'exceeds_debits',
  'debit_account_already_closed',
  'credit_account_already_closed',
]);

/** `ok`, or `exists`: the event is in the ledger exactly as asked (an idempotent retry). */
export function isApplied(result: CreateTransferResult | CreateAccountResult): boolean {
  return result === 'ok' || result === 'exists';
}
