import type { Payment } from '../model.js';
import { assert } from './errors.js';

/**
 * Payments as JSON text, shared by the Redis adapter (the stored value) and the memory adapter
 * (copy on write and on read, so callers never share an object with the store). The bigint
 * fields are decimal strings; every other field is stored as is, so a field added to `Payment`
 * round-trips without a codec change (a new bigint field makes JSON.stringify throw: add it here).
 */

type Stored = Omit<Payment, 'amount' | 'feeAmount'> & { amount: string; feeAmount: string };

export function encodePayment(p: Payment): string {
  assert(typeof p.amount === 'bigint' && p.amount >= 0n, 'payment amount must be a non-negative bigint');
  assert(typeof p.feeAmount === 'bigint' && p.feeAmount >= 0n, 'payment feeAmount must be a non-negative bigint');
  const stored: Stored = { ...p, amount: p.amount.toString(10), feeAmount: p.feeAmount.toString(10) };
  return JSON.stringify(stored);
}

export function decodePayment(text: string): Payment {
  const s = JSON.parse(text) as Stored;
  assert(typeof s.id === 'string' && /^\d+$/.test(s.amount) && /^\d+$/.test(s.feeAmount), 'stored payment is malformed');
  return { ...s, amount: BigInt(s.amount), feeAmount: BigInt(s.feeAmount) };
}
