import { assert, unreachable } from '../../../ledger/assert.js';
import type { Channel, DeclineReason, Factor, Payment, PaymentState, SimIdentity } from '../../model.js';
import type { KeyEntry, Mutation } from '../memory/state.js';
import type { PaymentRecord } from '../port.js';
import type { ByteReader, ByteWriter } from './bytes.js';
import { JournalCorruptError } from './frame.js';

/**
 * `Mutation` ⇄ bytes (format 2). A frame's payload is mutations back to back, each an op byte
 * and its fields (bytes.ts: uint, int, bigint, string; `shared` strings go through the
 * checkpoint's dictionary):
 *
 *   1 record     payment, version uint, digests (count uint, then factor shared + digest string),
 *                dueAtMs optInt
 *   2 drop       paymentId
 *   3 key        keyId, fingerprint, mask uint (1 result, 2 value, 4 leaseUntilMs), those present,
 *                expiresAtMs int
 *   4 unkey      keyId
 *   5 counter    key (`<limit key>:<aligned window>`), count uint, expiresAtMs int
 *   6 guard      key shared (the payer id, or `<payer id>/m:<merchant id>`), streak uint, lockouts uint, lockedUntilMs int, expiresAtMs int
 *   7 payNumber  digest, payerId shared, claimant (u8 0 | 1 then string), expiresAtMs int
 *   8 due        paymentId, dueAtMs optInt
 *
 * A payment: id, merchantId shared, payerId shared, payeeAccountId shared, payerAccountId
 * shared, amount bigint, currency shared, description, channel shared, requiredFactors and
 * satisfiedFactors (each one shared string, the factors joined by ','), attemptsLeft int, state
 * shared, createdAtMs int, updatedAtMs and expiresAtMs (ints, less createdAtMs), feeAmount
 * bigint, then a mask uint of the optional fields present and those fields in this order:
 *
 *   1 declineReason shared   2 declineDetail shared   4 sealedFirstCode   8 originSim (iccid,
 *   imsi, msisdn)   16 originPath shared   32 billableLineId shared   64 lineControlAccountId
 *   shared   128 bankAuthorizationCode   256 other fields: one JSON object   512 secretVersion uint
 *   (after the JSON object: the bit came later; a journal without it reads as before)
 *
 * so a field added to `Payment` later round-trips without a format change (in the JSON object)
 * until the codec learns it; a bigint field there makes JSON.stringify throw, which fails the
 * store (add it here). A field of the wrong type is an assertion (it fails the store too).
 *
 * Decoded records share what never changes in place (records are immutable in the state: every
 * change stores a new object): the empty digests object and the factor lists are frozen and
 * shared, dictionary strings are one string each, small bigints are shared.
 */

const ops = { record: 1, drop: 2, key: 3, unkey: 4, counter: 5, guard: 6, payNumber: 7, due: 8 } as const;

export function encodeMutation(m: Mutation, w: ByteWriter): void {
  switch (m.op) {
    case 'record':
      w.u8(ops.record);
      return encodeRecord(m.record, w);
    case 'drop':
      w.u8(ops.drop);
      return w.hexStr(m.paymentId);
    case 'key':
      w.u8(ops.key);
      w.str(m.id);
      return encodeKeyEntry(m.entry, w);
    case 'unkey':
      w.u8(ops.unkey);
      return w.str(m.id);
    case 'counter':
      w.u8(ops.counter);
      w.str(m.key);
      w.uint(m.counter.count);
      return w.int(m.counter.expiresAtMs);
    case 'guard':
      w.u8(ops.guard);
      w.shared(m.payerId);
      w.uint(m.entry.streak);
      w.uint(m.entry.lockouts);
      w.int(m.entry.lockedUntilMs);
      return w.int(m.entry.expiresAtMs);
    case 'payNumber':
      w.u8(ops.payNumber);
      w.hexStr(m.digest);
      w.shared(m.entry.payerId);
      if (m.entry.claimant === undefined) w.u8(0);
      else {
        w.u8(1);
        w.str(m.entry.claimant);
      }
      return w.int(m.entry.expiresAtMs);
    case 'due':
      w.u8(ops.due);
      w.hexStr(m.paymentId);
      return w.optInt(m.dueAtMs);
  }
}

/** The next mutation of `r`. */
export function decodeMutation(r: ByteReader): Mutation {
  const op = r.u8();
  switch (op) {
    case ops.record:
      return { op: 'record', record: decodeRecord(r) };
    case ops.drop:
      return { op: 'drop', paymentId: r.str() };
    case ops.key: {
      const id = r.str();
      return { op: 'key', id, entry: decodeKeyEntry(r) };
    }
    case ops.unkey:
      return { op: 'unkey', id: r.str() };
    case ops.counter: {
      const key = r.str();
      const count = r.uint();
      return { op: 'counter', key, counter: { count, expiresAtMs: r.int() } };
    }
    case ops.guard: {
      const payerId = r.shared();
      const streak = r.uint();
      const lockouts = r.uint();
      const lockedUntilMs = r.int();
      return { op: 'guard', payerId, entry: { streak, lockouts, lockedUntilMs, expiresAtMs: r.int() } };
    }
    case ops.payNumber: {
      const digest = r.str();
      const payerId = r.shared();
      const claimant = r.u8() === 1 ? r.str() : undefined;
      return { op: 'payNumber', digest, entry: { payerId, claimant, expiresAtMs: r.int() } };
    }
    case ops.due: {
      const paymentId = r.str();
      return { op: 'due', paymentId, dueAtMs: r.optInt() };
    }
    default:
      throw new JournalCorruptError(`a mutation with unknown op ${op} at byte ${r.pos - 1}`);
  }
}

// ------------------------------------------------------------------ records

function encodeRecord(record: PaymentRecord, w: ByteWriter): void {
  encodePayment(record.payment, w);
  w.uint(record.version);
  let factors = 0;
  for (const factor in record.digests) if (record.digests[factor as Factor] !== undefined) factors += 1;
  w.uint(factors);
  for (const factor in record.digests) {
    const digest = record.digests[factor as Factor];
    if (digest === undefined) continue;
    w.shared(factor);
    w.hexStr(digest);
  }
  w.optInt(record.dueAtMs);
}

function decodeRecord(r: ByteReader): PaymentRecord {
  const payment = decodePayment(r);
  const version = r.uint();
  const factors = r.uint();
  let digests: PaymentRecord['digests'] = noDigests;
  if (factors > 0) {
    if (factors > digestsMax) throw new JournalCorruptError(`a record with ${factors} digests`);
    digests = {};
    for (let i = 0; i < factors; i++) {
      const factor = r.shared() as Factor;
      digests[factor] = r.str();
    }
  }
  return { payment, version, digests, dueAtMs: r.optInt() };
}

/** The digests of a record without any (most of them: only CHALLENGED records hold digests), shared. */
const noDigests: PaymentRecord['digests'] = Object.freeze({});
const digestsMax = 16;

// ------------------------------------------------------------------ payments

const optional = {
  declineReason: 1,
  declineDetail: 2,
  sealedFirstCode: 4,
  originSim: 8,
  originPath: 16,
  billableLineId: 32,
  lineControlAccountId: 64,
  bankAuthorizationCode: 128,
  others: 256,
  secretVersion: 512,
} as const;

/** One past the highest optional-field bit: a mask at or above it names fields this codec does not know. */
const optionalMaskEnd = optional.secretVersion * 2;

/** Every field the codec writes by itself; any other is carried in the JSON object of `others`. */
const knownFields = new Set<string>([
  'id',
  'merchantId',
  'payerId',
  'payeeAccountId',
  'payerAccountId',
  'amount',
  'currency',
  'description',
  'channel',
  'requiredFactors',
  'satisfiedFactors',
  'attemptsLeft',
  'state',
  'createdAtMs',
  'updatedAtMs',
  'expiresAtMs',
  'feeAmount',
  ...Object.keys(optional).filter((field) => field !== 'others'),
]);

function encodePayment(p: Payment, w: ByteWriter): void {
  w.hexStr(p.id);
  w.shared(p.merchantId);
  w.shared(p.payerId);
  w.shared(p.payeeAccountId);
  w.shared(p.payerAccountId);
  w.bigint(p.amount);
  w.shared(p.currency);
  w.str(p.description);
  w.shared(p.channel);
  w.shared(factorList(p.requiredFactors));
  w.shared(factorList(p.satisfiedFactors));
  w.int(p.attemptsLeft);
  w.shared(p.state);
  w.int(p.createdAtMs);
  w.int(p.updatedAtMs - p.createdAtMs);
  w.int(p.expiresAtMs - p.createdAtMs);
  w.bigint(p.feeAmount);
  encodeOptional(p, w);
}

function encodeOptional(p: Payment, w: ByteWriter): void {
  const others = otherFields(p);
  let mask = others === undefined ? 0 : optional.others;
  for (const [field, bit] of optionalFields) if (p[field] !== undefined) mask |= bit;
  w.uint(mask);
  if (p.declineReason !== undefined) w.shared(p.declineReason);
  if (p.declineDetail !== undefined) w.shared(p.declineDetail);
  if (p.sealedFirstCode !== undefined) w.str(p.sealedFirstCode);
  if (p.originSim !== undefined) {
    w.str(p.originSim.iccid);
    w.str(p.originSim.imsi);
    w.str(p.originSim.msisdn);
    assert(Object.keys(p.originSim).length === 3, 'originSim holds fields the journal codec does not know (add them)');
  }
  if (p.originPath !== undefined) w.shared(p.originPath);
  if (p.billableLineId !== undefined) w.shared(p.billableLineId);
  if (p.lineControlAccountId !== undefined) w.shared(p.lineControlAccountId);
  if (p.bankAuthorizationCode !== undefined) w.str(p.bankAuthorizationCode);
  if (others !== undefined) w.str(others);
  if (p.secretVersion !== undefined) w.uint(p.secretVersion);
}

const optionalFields = (Object.entries(optional) as [keyof typeof optional, number][]).filter(([field]) => field !== 'others') as [keyof Payment, number][];

/** The payment's fields the codec does not know, as one JSON object (undefined when none). */
function otherFields(p: Payment): string | undefined {
  let others: Record<string, unknown> | undefined;
  for (const field in p) {
    const value = (p as unknown as Record<string, unknown>)[field];
    if (knownFields.has(field) || value === undefined) continue;
    (others ??= {})[field] = value;
  }
  return others === undefined ? undefined : JSON.stringify(others);
}

/** The factors joined by ','; a list of one is its factor's own string (no new string to hash on every record). */
function factorList(factors: readonly Factor[]): string {
  assert(Array.isArray(factors), 'a factor list is an array');
  for (const f of factors) if (typeof f !== 'string' || f.includes(',')) unreachable(`a factor is a name without ',', not ${String(f)}`);
  return factors.length === 1 ? factors[0]! : factors.join(',');
}

function decodePayment(r: ByteReader): Payment {
  const id = r.str();
  const merchantId = r.shared();
  const payerId = r.shared();
  const payeeAccountId = r.shared();
  const payerAccountId = r.shared();
  const amount = r.bigint();
  const currency = r.shared();
  const description = r.str();
  const channel = r.shared() as Channel;
  const requiredFactors = factorsOf(r.shared());
  const satisfiedFactors = factorsOf(r.shared());
  const attemptsLeft = r.int();
  const state = r.shared() as PaymentState;
  const createdAtMs = r.int();
  const updatedAtMs = createdAtMs + r.int();
  const expiresAtMs = createdAtMs + r.int();
  const feeAmount = r.bigint();
  const p: Payment = {
    id,
    merchantId,
    payerId,
    payeeAccountId,
    payerAccountId,
    amount,
    currency,
    description,
    channel,
    requiredFactors,
    satisfiedFactors,
    attemptsLeft,
    state,
    createdAtMs,
    updatedAtMs,
    expiresAtMs,
    feeAmount,
  };
  const mask = r.uint();
  if (mask !== 0) decodeOptional(r, mask, p);
  return p;
}

function decodeOptional(r: ByteReader, mask: number, p: Payment): void {
  if (mask >= optionalMaskEnd) throw new JournalCorruptError(`a payment with unknown optional fields (mask ${mask})`);
  if ((mask & optional.declineReason) !== 0) p.declineReason = r.shared() as DeclineReason;
  if ((mask & optional.declineDetail) !== 0) p.declineDetail = r.shared();
  if ((mask & optional.sealedFirstCode) !== 0) p.sealedFirstCode = r.str();
  if ((mask & optional.originSim) !== 0) {
    const iccid = r.str();
    const imsi = r.str();
    p.originSim = { iccid, imsi, msisdn: r.str() } satisfies SimIdentity;
  }
  if ((mask & optional.originPath) !== 0) p.originPath = r.shared();
  if ((mask & optional.billableLineId) !== 0) p.billableLineId = r.shared();
  if ((mask & optional.lineControlAccountId) !== 0) p.lineControlAccountId = r.shared();
  if ((mask & optional.bankAuthorizationCode) !== 0) p.bankAuthorizationCode = r.str();
  if ((mask & optional.others) !== 0) {
    const text = r.str();
    let others: unknown;
    try {
      others = JSON.parse(text);
    } catch (cause) {
      throw new JournalCorruptError(`a payment's other fields are not JSON: ${text.slice(0, 80)}`, { cause });
    }
    if (typeof others !== 'object' || others === null || Array.isArray(others))
      throw new JournalCorruptError(`a payment's other fields are not an object: ${text.slice(0, 80)}`);
    Object.assign(p, others);
  }
  if ((mask & optional.secretVersion) !== 0) p.secretVersion = r.uint();
}

/** Decoded factor lists, frozen and shared by every record with the same list (a handful of distinct lists exist). */
const factorLists = new Map<string, Factor[]>();
const factorListsMax = 256;

function factorsOf(joined: string): Factor[] {
  const known = factorLists.get(joined);
  if (known !== undefined) return known;
  const list = Object.freeze(joined === '' ? [] : (joined.split(',') as Factor[])) as Factor[];
  if (factorLists.size < factorListsMax) factorLists.set(joined, list);
  return list;
}

// ------------------------------------------------------------------ idempotency records

const keyFields = { result: 1, value: 2, leaseUntilMs: 4 } as const;

function encodeKeyEntry(e: KeyEntry, w: ByteWriter): void {
  w.hexStr(e.fingerprint);
  const mask =
    (e.result === undefined ? 0 : keyFields.result) |
    (e.value === undefined ? 0 : keyFields.value) |
    (e.leaseUntilMs === undefined ? 0 : keyFields.leaseUntilMs);
  w.uint(mask);
  // A create's result names its payment (`p:<id>`, one per payment): inline; the rest repeat.
  if (e.result !== undefined) {
    if (e.result.startsWith('p:')) w.str(e.result);
    else w.shared(e.result);
  }
  if (e.value !== undefined) w.str(e.value);
  if (e.leaseUntilMs !== undefined) w.int(e.leaseUntilMs);
  w.int(e.expiresAtMs);
}

function decodeKeyEntry(r: ByteReader): KeyEntry {
  const fingerprint = r.str();
  const mask = r.uint();
  if (mask >= 8) throw new JournalCorruptError(`an idempotency record with unknown fields (mask ${mask})`);
  if (mask === keyFields.result) {
    const result = r.shared();
    return { fingerprint, result, expiresAtMs: r.int() };
  }
  const entry: KeyEntry = { fingerprint, expiresAtMs: 0 };
  if ((mask & keyFields.result) !== 0) entry.result = r.shared();
  if ((mask & keyFields.value) !== 0) entry.value = r.str();
  if ((mask & keyFields.leaseUntilMs) !== 0) entry.leaseUntilMs = r.int();
  entry.expiresAtMs = r.int();
  return entry;
}
