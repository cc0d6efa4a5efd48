import { allFactors, type Factor, type Payment } from '../../model.js';
import { assert } from '../checks.js';
import type { PaymentRecord } from '../port.js';

/**
 * A payment record as a Redis HASH. The fields the scripts read or write are fields of their
 * own, as decimal strings or short tokens; the rest of the payment is one JSON field (`j`) the
 * scripts never touch (Lua's cjson prints numbers with 14 significant digits: no JSON in Lua).
 * The optional fields (dr, dd, sc, ba, d0 … d6) are written when present; an absent one is a
 * missing field or '' (a write that clears one sets '': no HDEL).
 *
 * | field | holds |
 * |---|---|
 * | v | version |
 * | st | state |
 * | rq, sf | required and satisfied factors: one digit per factor (its index in `allFactors`), in the payment's order |
 * | al | attempts left |
 * | ex | expiresAtMs |
 * | up | updatedAtMs |
 * | m, py | merchant and payer ids |
 * | d0 … d6 | the digest each factor (by index) still expects |
 * | du | due time (Unix ms); '' when not due |
 * | dr, dd, sc, ba | decline reason, decline detail, sealed first code, bank authorization code: '+' and the value |
 * | j | JSON of every other field (amounts as decimal strings) |
 * | o:<scope length>:<scope>:<key> | an operation's idempotency record (confirm, commit claim): `fingerprint:expiresAtMs:result` |
 *
 * The `o:` fields are not part of the record: the scripts leave them out of the records they
 * return, and decoding ignores them.
 */

/** The field of an operation's idempotency record in its payment's HASH (scopes may hold ':': length-prefixed). */
export function operationField(scope: string, key: string): string {
  return `o:${scope.length}:${scope}:${key}`;
}

/** The payment fields kept in fields of their own (everything else goes to `j`). */
const ownFields = new Set<string>([
  'merchantId',
  'payerId',
  'requiredFactors',
  'satisfiedFactors',
  'attemptsLeft',
  'state',
  'declineReason',
  'declineDetail',
  'updatedAtMs',
  'expiresAtMs',
  'sealedFirstCode',
  'bankAuthorizationCode',
  'amount',
  'feeAmount',
]);

export const digestFields: readonly string[] = allFactors.map((_, i) => `d${i}`);

const factorIndex = new Map<Factor, number>(allFactors.map((f, i) => [f, i]));

/** A factor's digit in `rq`/`sf` and the suffix of its digest field. */
export function factorDigit(factor: Factor): string {
  const index = factorIndex.get(factor);
  assert(index !== undefined, `unknown factor ${factor}`);
  return String(index);
}

export function encodeFactors(factors: readonly Factor[]): string {
  let digits = '';
  for (const f of factors) digits += factorDigit(f);
  return digits;
}

function decodeFactors(digits: string): Factor[] {
  const factors: Factor[] = [];
  for (const d of digits) factors.push(allFactors[Number(d)]!);
  return factors;
}

/** An optional string as the scripts write it: '+' and the value, '' for none. */
export function encodeOptional(value: string | undefined): string {
  return value === undefined ? '' : `+${value}`;
}

/**
 * The payment's fields (all but `v`, `du` and the digests), as field, value pairs. `clearing`:
 * absent optional fields too (as ''), for a write over an existing record.
 */
export function encodePaymentFields(p: Payment, clearing: boolean): string[] {
  assert(typeof p.amount === 'bigint' && typeof p.feeAmount === 'bigint', 'payment amounts must be bigints');
  const rest: Record<string, unknown> = { amount: p.amount.toString(10), feeAmount: p.feeAmount.toString(10) };
  for (const key in p) {
    const value = (p as unknown as Record<string, unknown>)[key];
    if (!ownFields.has(key) && value !== undefined) rest[key] = value;
  }
  const pairs = [
    'st',
    p.state,
    'rq',
    encodeFactors(p.requiredFactors),
    'sf',
    encodeFactors(p.satisfiedFactors),
    'al',
    String(p.attemptsLeft),
    'ex',
    String(p.expiresAtMs),
    'up',
    String(p.updatedAtMs),
    'm',
    p.merchantId,
    'py',
    p.payerId,
    'j',
    JSON.stringify(rest),
  ]; // prettier-ignore
  optional(pairs, 'dr', p.declineReason, clearing);
  optional(pairs, 'dd', p.declineDetail, clearing);
  optional(pairs, 'sc', p.sealedFirstCode, clearing);
  optional(pairs, 'ba', p.bankAuthorizationCode, clearing);
  return pairs;
}

function optional(pairs: string[], field: string, value: string | undefined, clearing: boolean): void {
  if (value !== undefined) pairs.push(field, `+${value}`);
  else if (clearing) pairs.push(field, '');
}

/** The digest fields: each factor's digest; `clearing`: '' for the factors without one too. */
export function encodeDigests(digests: Partial<Record<Factor, string>>, clearing: boolean): string[] {
  const pairs: string[] = [];
  for (let i = 0; i < allFactors.length; i++) {
    const digest = digests[allFactors[i]!];
    if (digest !== undefined || clearing) pairs.push(digestFields[i]!, digest ?? '');
  }
  return pairs;
}

/** A new record as field, value pairs (one HSET; absent optional fields are left out). */
export function encodeRecord(record: PaymentRecord): string[] {
  return [
    'v',
    String(record.version),
    ...encodePaymentFields(record.payment, false),
    ...encodeDigests(record.digests, false),
    'du',
    record.dueAtMs === undefined ? '' : String(record.dueAtMs),
  ];
}

/** A record from HGETALL's flat reply (field, value, field, value, …), as the scripts return it. */
export function decodeRecord(flat: readonly string[]): PaymentRecord {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return decodeRecordFields(f);
}

/** A record from HGETALL as ioredis returns it outside scripts (an object). */
export function decodeRecordFields(f: Record<string, string>): PaymentRecord {
  assert(f.v !== undefined && f.j !== undefined && f.st !== undefined, 'stored payment record is malformed');
  // The parsed object becomes the payment, field by field: spreading it into a literal that turns
  // its string amounts into bigints cost 16 µs per record (V8 generalizes the copied fields'
  // representation on every call), these assignments about 1.
  const fields = JSON.parse(f.j) as Record<string, unknown> & { amount: string; feeAmount: string };
  assert(/^\d+$/.test(fields.amount) && /^\d+$/.test(fields.feeAmount), 'stored payment amounts are malformed');
  const decoded = fields as Record<string, unknown>;
  decoded.merchantId = f.m!;
  decoded.payerId = f.py!;
  decoded.amount = BigInt(fields.amount);
  decoded.feeAmount = BigInt(fields.feeAmount);
  decoded.requiredFactors = decodeFactors(f.rq ?? '');
  decoded.satisfiedFactors = decodeFactors(f.sf ?? '');
  decoded.attemptsLeft = Number(f.al);
  decoded.state = f.st;
  decoded.updatedAtMs = Number(f.up);
  decoded.expiresAtMs = Number(f.ex);
  const payment = decoded as unknown as Payment;
  setOptional(payment, 'declineReason', f.dr);
  setOptional(payment, 'declineDetail', f.dd);
  setOptional(payment, 'sealedFirstCode', f.sc);
  setOptional(payment, 'bankAuthorizationCode', f.ba);
  const digests: Partial<Record<Factor, string>> = {};
  for (let i = 0; i < allFactors.length; i++) {
    const digest = f[digestFields[i]!];
    if (digest !== undefined && digest !== '') digests[allFactors[i]!] = digest;
  }
  const due = f.du;
  return { payment, version: Number(f.v), digests, dueAtMs: due === undefined || due === '' ? undefined : Number(due) };
}

function setOptional(p: Payment, key: 'declineReason' | 'declineDetail' | 'sealedFirstCode' | 'bankAuthorizationCode', stored: string | undefined): void {
  if (stored?.startsWith('+')) (p as unknown as Record<string, string>)[key] = stored.slice(1);
}
