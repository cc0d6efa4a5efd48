import { assert, unreachable } from '../../ledger/assert.js';
import { allFactors, type Factor } from '../model.js';
import { isHexId } from '../validation.js';
import { clonePayment } from './payment-codec.js';
import {
  type CommitItem,
  type ConfirmItem,
  type CreateItem,
  digestHexChars,
  type KeyClaim,
  type PaymentQuery,
  type PaymentRecord,
  pageMax,
  rateLimitsPerCreateMax,
  stepItemsMax,
} from './port.js';

/**
 * The port's preconditions, shared by every adapter: a broken one is a programmer error
 * (STYLE.md: an assertion that stops the caller), never an operating outcome.
 */

export { assert };

/** Longest id, scope or key accepted inside a store key (ids are 32 hex digits; keys ≤ 128 characters). */
export const keyPartCharsMax = 256;

/** Ids, scopes and keys go inside Redis keys and hash tags: non-empty, bounded, no braces. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is refused in a Redis key part on purpose
const keyPartRefused = /[{}\u0000]/;

// The checks below run for every item of every step: their messages (which name values) are built
// only when one fails (`unreachable`), not on every call as `assert`'s argument would be.

export function assertKeyPart(value: string, what: string): void {
  if (!(typeof value === 'string' && value.length > 0 && value.length <= keyPartCharsMax && !keyPartRefused.test(value)))
    unreachable(`${what} must be 1..${keyPartCharsMax} characters without braces`);
}

const digestPattern = new RegExp(`^[0-9a-f]{${digestHexChars}}$`);

export function assertId(id: string, what: string): void {
  if (!(typeof id === 'string' && isHexId(id))) unreachable(`${what} must be 32 lowercase hex digits`);
}

export function assertDigest(digest: string, what = 'digest'): void {
  if (!(typeof digest === 'string' && digestPattern.test(digest))) unreachable(`${what} must be ${digestHexChars} lowercase hex digits (a keyed SHA-256)`);
}

export function assertBatch(items: number): void {
  if (!(Number.isSafeInteger(items) && items <= stepItemsMax)) unreachable(`at most ${stepItemsMax} items per step call`);
}

export function assertMs(value: number, what: string): void {
  if (!(Number.isSafeInteger(value) && value >= 1)) unreachable(`${what} must be a positive integer of milliseconds`);
}

function assertNow(nowMs: number): void {
  assert(Number.isSafeInteger(nowMs) && nowMs >= 0, 'nowMs must be Unix milliseconds');
}

const factorNames: ReadonlySet<string> = new Set(allFactors);
const newPaymentStates: ReadonlySet<string> = new Set(['CHALLENGED', 'APPROVED', 'DECLINED']);

function assertDigests(digests: Partial<Record<Factor, string>>): void {
  for (const factor in digests) {
    if (!factorNames.has(factor)) unreachable(`unknown factor ${factor}`);
    const digest = digests[factor as Factor]!;
    if (!(typeof digest === 'string' && digestPattern.test(digest))) assertDigest(digest, `digest of ${factor}`);
  }
}

export function assertCreateItem(item: CreateItem): void {
  assertKeyPart(item.scope, 'scope');
  assertKeyPart(item.key, 'idempotency key');
  assertDigest(item.fingerprint, 'fingerprint');
  assertId(item.payment.id, 'payment id');
  assertId(item.payment.merchantId, 'merchant id');
  assertId(item.payment.payerId, 'payer id');
  assert(typeof item.payment.amount === 'bigint' && item.payment.amount > 0n, 'amount must be a positive bigint');
  assert(typeof item.payment.feeAmount === 'bigint' && item.payment.feeAmount >= 0n, 'feeAmount must be a non-negative bigint');
  assert(newPaymentStates.has(item.payment.state), 'a new payment is CHALLENGED, APPROVED or DECLINED');
  assertDigests(item.digests);
  if (!(Array.isArray(item.rateLimits) && item.rateLimits.length <= rateLimitsPerCreateMax))
    unreachable(`at most ${rateLimitsPerCreateMax} rate limits per create`);
  for (const hit of item.rateLimits) {
    assertKeyPart(hit.key, 'rate limit key');
    assert(Number.isSafeInteger(hit.limit) && hit.limit >= 1, 'rate limit must be a positive integer');
    assertMs(hit.windowMs, 'rate limit windowMs');
  }
  assertMs(item.keyTtlMs, 'keyTtlMs');
  assertNow(item.nowMs);
}

export function assertConfirmItem(item: ConfirmItem): void {
  assertId(item.paymentId, 'payment id');
  assertKeyPart(item.caller.scope, 'caller scope');
  assertKeyPart(item.key, 'idempotency key');
  assertDigest(item.fingerprint, 'fingerprint');
  if (!factorNames.has(item.factor)) unreachable(`unknown factor ${item.factor}`);
  if (item.answer.kind === 'digest') assertDigest(item.answer.digest);
  assert(Number.isSafeInteger(item.attemptsMax) && item.attemptsMax >= 1, 'attemptsMax must be a positive integer');
  assertMs(item.keyTtlMs, 'keyTtlMs');
  assertNow(item.nowMs);
}

export function assertCommitItem(item: CommitItem): void {
  assertId(item.paymentId, 'payment id');
  assert(Number.isSafeInteger(item.expectVersion) && item.expectVersion >= 1, 'expectVersion must be a positive integer');
  if (item.payment !== undefined) assert(item.payment.id === item.paymentId, 'a commit names the payment it changes');
  if (item.digests !== undefined) assertDigests(item.digests);
  if (item.settle !== undefined) {
    assert(item.settle === true, 'settle is true or absent');
    assert(item.payment?.state === 'SUCCEEDED', 'a settle writes a SUCCEEDED payment');
    const p = item.payment;
    assert(
      p.declineReason === undefined && p.declineDetail === undefined && p.sealedFirstCode === undefined,
      'a settled payment has no decline reason, decline detail or sealed first code',
    );
    assert(item.dueAtMs !== undefined, 'a settle gives its dueAtMs (a number or null)');
    assert(item.claim === undefined, 'a settle takes no claim');
  }
  if (item.dueAtMs !== undefined && item.dueAtMs !== null) assert(Number.isSafeInteger(item.dueAtMs) && item.dueAtMs >= 0, 'dueAtMs must be Unix milliseconds');
  if (item.claim !== undefined) {
    assertKeyPart(item.claim.scope, 'claim scope');
    assertKeyPart(item.claim.key, 'idempotency key');
    assertDigest(item.claim.fingerprint, 'fingerprint');
    assertMs(item.claim.keyTtlMs, 'keyTtlMs');
  }
  assertNow(item.nowMs);
}

export function assertKeyClaim(claim: KeyClaim): void {
  assertKeyPart(claim.scope, 'scope');
  assertKeyPart(claim.key, 'idempotency key');
  assertDigest(claim.fingerprint, 'fingerprint');
  assertMs(claim.leaseMs, 'leaseMs');
  assertMs(claim.keyTtlMs, 'keyTtlMs');
  assertNow(claim.nowMs);
}

export function assertQuery(q: PaymentQuery): void {
  assert(Number.isSafeInteger(q.limit) && q.limit >= 1 && q.limit <= pageMax, `limit must be 1..${pageMax}`);
  assert(q.merchantId !== undefined || q.payerId !== undefined, 'a query names a merchant or a payer');
  if (q.merchantId !== undefined) assertId(q.merchantId, 'merchantId');
  if (q.payerId !== undefined) assertId(q.payerId, 'payerId');
  if (q.afterId !== undefined) assertId(q.afterId, 'afterId');
}

/** A deep copy: no caller shares an object with the store. */
export function copyRecord(record: PaymentRecord): PaymentRecord {
  return { payment: clonePayment(record.payment), version: record.version, digests: { ...record.digests }, dueAtMs: record.dueAtMs };
}
