import { challengeStoreBatchMax, type ChallengeInput, type LockoutPolicy, type RateLimitHit, type VerifyRequest } from '../ports.js';
import { assert, assertKeyPart } from './errors.js';

/** The defaults of DESIGN.md §6: 5 consecutive failures, then 1 min doubling up to 1 h, remembered 24 h. */
export const lockoutPolicyDefault: LockoutPolicy = Object.freeze({
  failuresMax: 5,
  backoffBaseMs: 60_000,
  backoffMaxMs: 3_600_000,
  memoryMs: 86_400_000,
});

/** Accepted responses per challenge (second code, first code, ...). */
export const responseDigestsMax = 8;
/** HMAC-SHA256 digests as Node's `digest('hex')` writes them. */
const digestPattern = /^[0-9a-f]{64}$/;

export function assertLockoutPolicy(p: LockoutPolicy): void {
  assert(Number.isSafeInteger(p.failuresMax) && p.failuresMax >= 1, 'failuresMax must be a positive integer');
  assert(Number.isSafeInteger(p.backoffBaseMs) && p.backoffBaseMs >= 1, 'backoffBaseMs must be a positive integer');
  assert(Number.isSafeInteger(p.backoffMaxMs) && p.backoffMaxMs >= p.backoffBaseMs, 'backoffMaxMs must be >= backoffBaseMs');
  assert(Number.isSafeInteger(p.memoryMs) && p.memoryMs >= 1, 'memoryMs must be a positive integer');
}

/** Lockout number `lockoutsBefore + 1` lasts base × 2^lockoutsBefore, capped. */
export function lockoutMs(policy: LockoutPolicy, lockoutsBefore: number): number {
  const exponent = Math.min(lockoutsBefore, 40);
  return Math.min(policy.backoffBaseMs * 2 ** exponent, policy.backoffMaxMs);
}

export function assertDigest(digest: string): void {
  assert(typeof digest === 'string' && digestPattern.test(digest), 'digest must be 64 lowercase hex digits (HMAC-SHA256)');
}

export function assertChallenge(c: ChallengeInput): void {
  assertKeyPart(c.challengeId, 'challengeId');
  assertKeyPart(c.payerId, 'payerId');
  assert(c.responseDigests.length >= 1 && c.responseDigests.length <= responseDigestsMax, `1..${responseDigestsMax} responseDigests`);
  c.responseDigests.forEach(assertDigest);
  assert(Number.isSafeInteger(c.ttlMs) && c.ttlMs >= 1, 'ttlMs must be a positive integer');
  assert(Number.isSafeInteger(c.attemptsMax) && c.attemptsMax >= 1, 'attemptsMax must be a positive integer');
}

export function assertTtl(ttlMs: number, what: string): void {
  assert(Number.isSafeInteger(ttlMs) && ttlMs >= 1, `${what} must be a positive integer`);
}

/** Checks shared by both adapters' batch calls. */
export function assertBatch(items: number): void {
  assert(items <= challengeStoreBatchMax, `at most ${challengeStoreBatchMax} items per batch call`);
}

export function assertVerifyRequest(r: VerifyRequest): void {
  assertKeyPart(r.challengeId, 'challengeId');
  assertKeyPart(r.payerId, 'payerId');
  if (r.forceMismatch !== true) assertDigest(r.digest);
}

export function assertRateLimitHit(h: RateLimitHit): void {
  assertKeyPart(h.key, 'rate limit key');
  assert(Number.isSafeInteger(h.limit) && h.limit >= 1, 'rate limit must be a positive integer');
  assertTtl(h.windowMs, 'rate limit windowMs');
}
