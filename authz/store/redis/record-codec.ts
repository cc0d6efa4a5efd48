import { allFactors, type Factor, type Payment } from '../../model.js';
import { assert } from '../checks.js';
import type { PaymentRecord } from '../port.js';

/**
 * A payment record as a Redis HASH. The fields the scripts read or write are fields of their
 * own, as decimal strings or short tokens; the rest of the payment is one JSON field (`j`) the
 * scripts never touch (Lua's cjson prints numbers with 14 significant digits: no JSON in Lua).
 * The optional fields (dr, dd, sc, ba, d0 … d6) are written when present; an absent one is a
 * missing field or '' (a write that clears one sets '': no HDEL). A SUCCEEDED record has no
 * decline, sealed first code or digest whatever dr, dd, sc and d0 … d6 hold: a settle writes only
 * the state, times and version (commit-lua.ts), and decoding leaves those fields out.
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
 * | d0 … d6 | the digest each factor (by index) still expects (none once SUCCEEDED) |
 * | du | due time (Unix ms); '' when not due |
 * | dr, dd, sc, ba | decline reason, decline detail, sealed first code, bank authorization code: '+' and the value |
 * | j | JSON of every other field (amounts as decimal strings) |
 * | o:<scope length>:<scope>:<key> | an operation's idempotency record (confirm, commit claim): `fingerprint:expiresAtMs:result` |
 *
 * The `o:` fields are not part of the record: a script answers a record as the values of
 * `recordFields` after its writes (lua-common.ts `values`), reads outside the scripts ask HMGET
 * for the same fields, and both decode through `decodeRecordValues`.
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

/** Where each field sits in `recordFields` (the digests d0 … d6 from d0 on). */
const at = { v: 0, j: 1, st: 2, m: 3, py: 4, rq: 5, sf: 6, al: 7, up: 8, ex: 9, dr: 10, dd: 11, sc: 12, ba: 13, du: 14, d0: 15 } as const;
/**
 * Every field a record may hold besides its operation keys, in the order `readRecords` asks HMGET
 * for them (and `decodeRecordValues` reads them). A field the codec writes must be listed here,
 * or reads outside the scripts lose it (test: redis-store-codec).
 */
export const recordFields: readonly string[] = [...Object.keys(at).slice(0, at.d0), ...digestFields];
assert(
  Object.entries(at).every(([field, i]) => recordFields[i] === field),
  "record-codec: each position in `at` must be its field's index in recordFields",
);
/** The fields every write of a record carries (encodeRecord): one missing is a malformed record, not a 0 or a null id. */
const requiredAt: readonly number[] = [at.v, at.j, at.st, at.m, at.py, at.al, at.up, at.ex];

/** A value of HMGET's reply (null where the field is missing) or of a script's record reply (false there). */
export type StoredValue = string | null | false | undefined;

/**
 * A record from the values of `recordFields`, in that order: HMGET's reply, and the record a
 * script answers (lua-common.ts `values`). No field names, no operation keys: 10–20 µs of client
 * CPU less per read than HGETALL's object (round 9), about 4 µs less per script record than a
 * flat field, value list (round 10).
 */
export function decodeRecordValues(f: readonly StoredValue[]): PaymentRecord {
  let complete = true;
  for (const i of requiredAt) complete &&= typeof f[i] === 'string';
  assert(complete, 'stored payment record is malformed');
  const v = f[at.v] as string;
  const j = f[at.j] as string;
  const st = f[at.st] as string;
  // The parsed object becomes the payment, field by field: spreading it into a literal that turns
  // its string amounts into bigints cost 16 µs per record (V8 generalizes the copied fields'
  // representation on every call), these assignments about 1.
  const fields = JSON.parse(j) as Record<string, unknown> & { amount: string; feeAmount: string };
  assert(/^\d+$/.test(fields.amount) && /^\d+$/.test(fields.feeAmount), 'stored payment amounts are malformed');
  const decoded = fields as Record<string, unknown>;
  decoded.merchantId = f[at.m];
  decoded.payerId = f[at.py];
  decoded.amount = BigInt(fields.amount);
  decoded.feeAmount = BigInt(fields.feeAmount);
  decoded.requiredFactors = decodeFactors(text(f[at.rq]));
  decoded.satisfiedFactors = decodeFactors(text(f[at.sf]));
  decoded.attemptsLeft = Number(f[at.al]);
  decoded.state = st;
  decoded.updatedAtMs = Number(f[at.up]);
  decoded.expiresAtMs = Number(f[at.ex]);
  const payment = decoded as unknown as Payment;
  // A settle leaves a SUCCEEDED record's decline, sealed code and digests as the approval left them (void).
  const settled = st === 'SUCCEEDED';
  if (!settled) {
    setOptional(payment, 'declineReason', f[at.dr]);
    setOptional(payment, 'declineDetail', f[at.dd]);
    setOptional(payment, 'sealedFirstCode', f[at.sc]);
  }
  setOptional(payment, 'bankAuthorizationCode', f[at.ba]);
  const digests: Partial<Record<Factor, string>> = {};
  for (let i = 0; i < allFactors.length && !settled; i++) {
    const digest = f[at.d0 + i];
    if (typeof digest === 'string' && digest !== '') digests[allFactors[i]!] = digest;
  }
  const due = text(f[at.du]);
  return { payment, version: Number(v), digests, dueAtMs: due === '' ? undefined : Number(due) };
}

function setOptional(p: Payment, key: 'declineReason' | 'declineDetail' | 'sealedFirstCode' | 'bankAuthorizationCode', stored: StoredValue): void {
  if (typeof stored === 'string' && stored.startsWith('+')) (p as unknown as Record<string, string>)[key] = stored.slice(1);
}

/** A stored value as text: '' for a missing field. */
function text(stored: StoredValue): string {
  return typeof stored === 'string' ? stored : '';
}
