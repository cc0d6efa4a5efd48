import type { Account, Transfer } from '../model.js';
import { idMax, u16Max, u32Max, u64Max } from '../model.js';
import { LedgerRequestError } from '../port.js';

/**
 * Field-width checks for events entering the embedded engine. TigerBeetle's client rejects values
 * that do not fit their wire width before sending; the embedded engine does the same, so a bad
 * value is a `LedgerRequestError` (a programming error at the call site), never a stored record.
 */

function u128(value: bigint, field: string, index: number): void {
  if (typeof value !== 'bigint' || value < 0n || value > idMax) {
    throw new LedgerRequestError(`event ${index}: ${field} must be a bigint in [0, 2^128-1]`);
  }
}

function u64(value: bigint, field: string, index: number): void {
  if (typeof value !== 'bigint' || value < 0n || value > u64Max) {
    throw new LedgerRequestError(`event ${index}: ${field} must be a bigint in [0, 2^64-1]`);
  }
}

function uint(value: number, max: number, field: string, index: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new LedgerRequestError(`event ${index}: ${field} must be an integer in [0, ${max}]`);
  }
}

export function checkAccounts(events: readonly Account[]): void {
  for (let i = 0; i < events.length; i++) {
    const a = events[i]!;
    u128(a.id, 'id', i);
    u128(a.debits_pending, 'debits_pending', i);
    u128(a.debits_posted, 'debits_posted', i);
    u128(a.credits_pending, 'credits_pending', i);
    u128(a.credits_posted, 'credits_posted', i);
    u128(a.user_data_128, 'user_data_128', i);
    u64(a.user_data_64, 'user_data_64', i);
    uint(a.user_data_32, u32Max, 'user_data_32', i);
    uint(a.reserved, u32Max, 'reserved', i);
    uint(a.ledger, u32Max, 'ledger', i);
    uint(a.code, u16Max, 'code', i);
    uint(a.flags, u16Max, 'flags', i);
    u64(a.timestamp, 'timestamp', i);
  }
}

export function checkTransfers(events: readonly Transfer[]): void {
  for (let i = 0; i < events.length; i++) {
    const t = events[i]!;
    u128(t.id, 'id', i);
    u128(t.debit_account_id, 'debit_account_id', i);
    u128(t.credit_account_id, 'credit_account_id', i);
    u128(t.amount, 'amount', i);
    u128(t.pending_id, 'pending_id', i);
    u128(t.user_data_128, 'user_data_128', i);
    u64(t.user_data_64, 'user_data_64', i);
    uint(t.user_data_32, u32Max, 'user_data_32', i);
    uint(t.timeout, u32Max, 'timeout', i);
    uint(t.ledger, u32Max, 'ledger', i);
    uint(t.code, u16Max, 'code', i);
    uint(t.flags, u16Max, 'flags', i);
    u64(t.timestamp, 'timestamp', i);
  }
}

export function checkIds(ids: readonly bigint[]): void {
  for (let i = 0; i < ids.length; i++) u128(ids[i]!, 'id', i);
}
