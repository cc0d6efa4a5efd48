import type { Payment } from '../../model.js';
import { encodePayment } from '../payment-codec.js';
import type { PaymentRecord } from '../port.js';
import type { KeyEntry, Mutation } from '../memory/state.js';
import { JournalCorruptError } from './frame.js';

/**
 * One `Mutation` per line of JSON (a frame's payload is lines joined by '\n'; JSON escapes every
 * newline inside a string). Each line is an array whose first element names the operation:
 *
 *   ["r", payment, version, digests, dueAtMs|null]    record (payment: its fields, `amount` and
 *                                                     `feeAmount` as decimal strings: exact bigints)
 *   ["d", paymentId]                                  drop (retention)
 *   ["k", keyId, entry]   ["u", keyId]                idempotency record set / removed
 *   ["c", key, count, expiresAtMs]                    rate-limit counter (`<key>:<aligned window>`)
 *   ["g", payerId, streak, lockouts, lockedUntilMs, expiresAtMs]   guard
 *   ["n", digest, payerId, claimant|null, expiresAtMs]             pay number
 *   ["t", paymentId, dueAtMs|null]                    due time only
 *
 * Checkpoints use the same lines (a snapshot is the mutations that rebuild the state). A line
 * that parses but has another shape is corruption (or a newer format): decoding throws.
 */

export function encodeMutation(m: Mutation): string {
  switch (m.op) {
    case 'record':
      return encodeRecord(m.record);
    case 'drop':
      return `["d",${JSON.stringify(m.paymentId)}]`;
    case 'key':
      return `["k",${JSON.stringify(m.id)},${JSON.stringify(m.entry)}]`;
    case 'unkey':
      return `["u",${JSON.stringify(m.id)}]`;
    case 'counter':
      return JSON.stringify(['c', m.key, m.counter.count, m.counter.expiresAtMs]);
    case 'guard':
      return JSON.stringify(['g', m.payerId, m.entry.streak, m.entry.lockouts, m.entry.lockedUntilMs, m.entry.expiresAtMs]);
    case 'payNumber':
      return JSON.stringify(['n', m.digest, m.entry.payerId, m.entry.claimant ?? null, m.entry.expiresAtMs]);
    case 'due':
      return `["t",${JSON.stringify(m.paymentId)},${m.dueAtMs ?? null}]`;
  }
}

function encodeRecord(r: PaymentRecord): string {
  return `["r",${encodePayment(r.payment)},${r.version},${JSON.stringify(r.digests)},${r.dueAtMs ?? null}]`;
}

export function decodeMutation(line: string): Mutation {
  let v: unknown[];
  try {
    v = JSON.parse(line) as unknown[];
  } catch (cause) {
    throw new JournalCorruptError(`a journal line is not JSON: ${line.slice(0, 80)}`, { cause });
  }
  if (!Array.isArray(v)) throw corrupt(line);
  const m = decodeFields(v);
  if (m === undefined) throw corrupt(line);
  return m;
}

function decodeFields(v: unknown[]): Mutation | undefined {
  const [op, a, b, c, d, e] = v;
  if (op === 'r') return isObject(a) && isInt(b) && isObject(c) && isTime(d) ? { op: 'record', record: decodeRecord(a, b, c, d) } : undefined;
  if (typeof a !== 'string') return undefined;
  switch (op) {
    case 'd':
      return { op: 'drop', paymentId: a };
    case 'k':
      return isKeyEntry(b) ? { op: 'key', id: a, entry: b } : undefined;
    case 'u':
      return { op: 'unkey', id: a };
    case 'c':
      return isInt(b) && isInt(c) ? { op: 'counter', key: a, counter: { count: b, expiresAtMs: c } } : undefined;
    case 'g':
      return isInt(b) && isInt(c) && isInt(d) && isInt(e) ? { op: 'guard', payerId: a, entry: { streak: b, lockouts: c, lockedUntilMs: d, expiresAtMs: e } } : undefined;
    case 'n':
      return typeof b === 'string' && (c === null || typeof c === 'string') && isInt(d) ? { op: 'payNumber', digest: a, entry: { payerId: b, claimant: c ?? undefined, expiresAtMs: d } } : undefined;
    case 't':
      return isTime(b) ? { op: 'due', paymentId: a, dueAtMs: b ?? undefined } : undefined;
    default:
      return undefined;
  }
}

const decimal = /^\d+$/;

/** The stored payment with its amounts as bigints again (the other fields are kept as they are, as payment-codec.ts does). */
function decodeRecord(p: Record<string, unknown>, version: number, digests: Record<string, unknown>, dueAtMs: number | null): PaymentRecord {
  if (typeof p.id !== 'string' || typeof p.amount !== 'string' || typeof p.feeAmount !== 'string' || !decimal.test(p.amount) || !decimal.test(p.feeAmount)) {
    throw new JournalCorruptError(`a journal record line holds a malformed payment: ${JSON.stringify(p).slice(0, 80)}`);
  }
  // The object is fresh from JSON.parse and ours: its amounts become bigints in place (no copy).
  const payment = p as unknown as Payment;
  payment.amount = BigInt(p.amount);
  payment.feeAmount = BigInt(p.feeAmount as string);
  return { payment, version, digests: digests as PaymentRecord['digests'], dueAtMs: dueAtMs ?? undefined };
}

function isInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x);
}

function isTime(x: unknown): x is number | null {
  return x === null || isInt(x);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isKeyEntry(x: unknown): x is KeyEntry {
  return isObject(x) && typeof x.fingerprint === 'string' && isInt(x.expiresAtMs);
}

function corrupt(line: string): JournalCorruptError {
  return new JournalCorruptError(`a journal line has an unknown shape: ${line.slice(0, 80)}`);
}
