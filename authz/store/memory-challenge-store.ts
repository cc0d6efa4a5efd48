import { timingSafeEqual } from 'node:crypto';
import { type ChallengeInput, type ChallengeStore, type IdempotencyClaim, type IdempotencyOutcome, type IdempotencyResult, type LockoutPolicy, type RateLimitHit, type VerifyOutcome, type VerifyRequest } from '../ports.js';
import { BoundedMap } from './bounded-map.js';
import { assert, assertKeyPart } from './errors.js';
import { assertBatch, assertChallenge, assertDigest, assertLockoutPolicy, assertTtl, assertRateLimitHit, assertVerifyRequest, lockoutMs, lockoutPolicyDefault } from './lockout.js';

export interface MemoryChallengeStoreOptions {
  lockout?: LockoutPolicy;
  /** Unix milliseconds; injectable so tests drive TTLs without sleeping. */
  now?: () => number;
  challengesMax?: number;
  /** Payers with a live failure streak, lockout count or lockout. */
  payersMax?: number;
  idempotencyKeysMax?: number;
  rateLimitKeysMax?: number;
  payNumbersMax?: number;
}

export const memoryStoreEntriesMaxDefault = 1_000_000;

interface ChallengeEntry {
  payerId: string;
  digests: Buffer[];
  attemptsLeft: number;
  expiresAtMs: number;
}
interface Counter {
  count: number;
  expiresAtMs: number;
}
interface PayerEntry {
  streak: Counter;
  lockouts: Counter;
  lockedUntilMs: number;
  /** The latest of the three lapses above: the entry is forgotten then. */
  expiresAtMs: number;
}
interface IdempotencyEntry {
  fingerprint: string;
  result: string | undefined;
  expiresAtMs: number;
}

/**
 * The challenge store in process, for the embedded default: the semantics of the Redis adapter
 * (same contract suite), each operation synchronous so it is atomic like a Lua script.
 */
export class MemoryChallengeStore implements ChallengeStore {
  private readonly lockout: LockoutPolicy;
  private readonly now: () => number;
  private readonly challenges: BoundedMap<ChallengeEntry>;
  private readonly payers: BoundedMap<PayerEntry>;
  private readonly idempotency: BoundedMap<IdempotencyEntry>;
  private readonly rateLimits: BoundedMap<Counter>;
  private readonly payNumbers: BoundedMap<{ payerId: string; claimant: string | undefined; expiresAtMs: number }>;

  constructor(options: MemoryChallengeStoreOptions = {}) {
    this.lockout = options.lockout ?? lockoutPolicyDefault;
    assertLockoutPolicy(this.lockout);
    this.now = options.now ?? Date.now;
    this.challenges = new BoundedMap('challengesMax', options.challengesMax ?? memoryStoreEntriesMaxDefault);
    this.payers = new BoundedMap('payersMax', options.payersMax ?? memoryStoreEntriesMaxDefault);
    this.idempotency = new BoundedMap('idempotencyKeysMax', options.idempotencyKeysMax ?? memoryStoreEntriesMaxDefault);
    this.rateLimits = new BoundedMap('rateLimitKeysMax', options.rateLimitKeysMax ?? memoryStoreEntriesMaxDefault);
    this.payNumbers = new BoundedMap('payNumbersMax', options.payNumbersMax ?? memoryStoreEntriesMaxDefault);
  }

  async putChallenge(c: ChallengeInput): Promise<void> {
    assertChallenge(c);
    this.storeChallenge(c, this.now());
  }

  async putChallenges(challenges: ChallengeInput[]): Promise<void> {
    assertBatch(challenges.length);
    challenges.forEach(assertChallenge);
    const now = this.now();
    for (const c of challenges) this.storeChallenge(c, now);
  }

  private storeChallenge(c: ChallengeInput, now: number): void {
    this.challenges.set(
      c.challengeId,
      {
        payerId: c.payerId,
        digests: c.responseDigests.map((d) => Buffer.from(d, 'hex')),
        attemptsLeft: c.attemptsMax,
        expiresAtMs: now + c.ttlMs,
      },
      now,
    );
  }

  async verifyAndConsume(challengeId: string, payerId: string, digest: string, forceMismatch = false): Promise<VerifyOutcome> {
    const request = { challengeId, payerId, digest, forceMismatch };
    assertVerifyRequest(request);
    return this.verify(request, this.now());
  }

  async verifyAndConsumeMany(requests: VerifyRequest[]): Promise<VerifyOutcome[]> {
    assertBatch(requests.length);
    requests.forEach(assertVerifyRequest);
    const now = this.now();
    return requests.map((r) => this.verify(r, now));
  }

  private verify({ challengeId, payerId, digest, forceMismatch = false }: VerifyRequest, now: number): VerifyOutcome {
    const payer = this.payers.get(payerId, now);
    if (payer !== undefined && payer.lockedUntilMs > now) return { outcome: 'locked', retryAfterMs: payer.lockedUntilMs - now };
    const challenge = this.challenges.get(challengeId, now);
    if (challenge === undefined || challenge.payerId !== payerId) return { outcome: 'not_found' };

    const matchedIndex = forceMismatch ? -1 : matchIndex(challenge.digests, Buffer.from(digest, 'hex'));
    if (matchedIndex >= 0) {
      this.challenges.delete(challengeId);
      if (payer !== undefined) payer.streak = { count: 0, expiresAtMs: 0 };
      return { outcome: 'ok', matchedIndex };
    }
    this.countFailure(payerId, payer, now);
    challenge.attemptsLeft -= 1;
    if (challenge.attemptsLeft <= 0) {
      this.challenges.delete(challengeId);
      return { outcome: 'exhausted' };
    }
    return { outcome: 'mismatch', attemptsLeft: challenge.attemptsLeft };
  }

  /** One more consecutive failure; at `failuresMax` the payer is locked out and the streak restarts. */
  private countFailure(payerId: string, existing: PayerEntry | undefined, now: number): void {
    const memoryUntil = now + this.lockout.memoryMs;
    const live = (c: Counter): number => (c.expiresAtMs > now ? c.count : 0);
    const entry: PayerEntry = existing ?? {
      streak: { count: 0, expiresAtMs: 0 },
      lockouts: { count: 0, expiresAtMs: 0 },
      lockedUntilMs: 0,
      expiresAtMs: 0,
    };
    entry.streak = { count: live(entry.streak) + 1, expiresAtMs: memoryUntil };
    if (entry.streak.count >= this.lockout.failuresMax) {
      const lockoutsBefore = live(entry.lockouts);
      entry.lockedUntilMs = now + lockoutMs(this.lockout, lockoutsBefore);
      entry.lockouts = { count: lockoutsBefore + 1, expiresAtMs: memoryUntil };
      entry.streak = { count: 0, expiresAtMs: 0 };
    }
    entry.expiresAtMs = Math.max(entry.streak.expiresAtMs, entry.lockouts.expiresAtMs, entry.lockedUntilMs);
    if (existing === undefined) this.payers.set(payerId, entry, now);
  }

  async dropChallenge(challengeId: string): Promise<void> {
    assertKeyPart(challengeId, 'challengeId');
    this.challenges.delete(challengeId);
  }

  async attemptsLeft(challengeId: string): Promise<number | undefined> {
    assertKeyPart(challengeId, 'challengeId');
    return this.challenges.get(challengeId, this.now())?.attemptsLeft;
  }

  async lockedFor(payerId: string): Promise<number | undefined> {
    assertKeyPart(payerId, 'payerId');
    const now = this.now();
    const payer = this.payers.get(payerId, now);
    return payer !== undefined && payer.lockedUntilMs > now ? payer.lockedUntilMs - now : undefined;
  }

  async beginIdempotency(scope: string, key: string, fingerprint: string, ttlMs: number, resultIfNew?: string): Promise<IdempotencyOutcome> {
    const id = idempotencyId(scope, key);
    assertTtl(ttlMs, 'idempotency ttlMs');
    return this.begin(id, fingerprint, ttlMs, resultIfNew, this.now());
  }

  async beginIdempotencyMany(scope: string, claims: IdempotencyClaim[], ttlMs: number): Promise<IdempotencyOutcome[]> {
    assertBatch(claims.length);
    assertTtl(ttlMs, 'idempotency ttlMs');
    const ids = claims.map((c) => idempotencyId(scope, c.key));
    const now = this.now();
    return claims.map((c, i) => this.begin(ids[i]!, c.fingerprint, ttlMs, c.resultIfNew, now));
  }

  private begin(id: string, fingerprint: string, ttlMs: number, resultIfNew: string | undefined, now: number): IdempotencyOutcome {
    const entry = this.idempotency.get(id, now);
    if (entry === undefined) {
      this.idempotency.set(id, { fingerprint, result: resultIfNew, expiresAtMs: now + ttlMs }, now);
      return { status: 'new' };
    }
    if (entry.fingerprint !== fingerprint) return { status: 'conflict' };
    return entry.result === undefined ? { status: 'in_progress' } : { status: 'done', result: entry.result };
  }

  async completeIdempotency(scope: string, key: string, fingerprint: string, result: string, ttlMs: number): Promise<void> {
    const id = idempotencyId(scope, key);
    assertTtl(ttlMs, 'idempotency ttlMs');
    const now = this.now();
    this.complete(id, fingerprint, result, ttlMs, now);
  }

  async completeIdempotencyMany(scope: string, results: IdempotencyResult[], ttlMs: number): Promise<void> {
    assertBatch(results.length);
    assertTtl(ttlMs, 'idempotency ttlMs');
    const ids = results.map((r) => idempotencyId(scope, r.key));
    const now = this.now();
    // Checked before anything is written: a wrong fingerprint is a programmer error that changes nothing.
    results.forEach((r, i) => this.assertCompletable(ids[i]!, r.fingerprint, now));
    results.forEach((r, i) => this.complete(ids[i]!, r.fingerprint, r.result, ttlMs, now));
  }

  private assertCompletable(id: string, fingerprint: string, now: number): void {
    const entry = this.idempotency.get(id, now);
    assert(entry === undefined || entry.fingerprint === fingerprint, 'completeIdempotency with another request fingerprint');
  }

  private complete(id: string, fingerprint: string, result: string, ttlMs: number, now: number): void {
    this.assertCompletable(id, fingerprint, now);
    this.idempotency.set(id, { fingerprint, result, expiresAtMs: now + ttlMs }, now);
  }

  async abandonIdempotency(scope: string, key: string): Promise<void> {
    const id = idempotencyId(scope, key);
    const entry = this.idempotency.get(id, this.now());
    if (entry !== undefined && entry.result === undefined) this.idempotency.delete(id);
  }

  async putPayNumber(numberDigest: string, payerId: string, ttlMs: number): Promise<void> {
    assertDigest(numberDigest);
    assertKeyPart(payerId, 'payerId');
    assertTtl(ttlMs, 'pay number ttlMs');
    const now = this.now();
    this.payNumbers.set(numberDigest, { payerId, claimant: undefined, expiresAtMs: now + ttlMs }, now);
  }

  async takePayNumber(numberDigest: string, claimant: string): Promise<string | undefined> {
    assertDigest(numberDigest);
    const entry = this.payNumbers.get(numberDigest, this.now());
    if (entry === undefined || (entry.claimant !== undefined && entry.claimant !== claimant)) return undefined;
    entry.claimant = claimant;
    return entry.payerId;
  }

  async hitRateLimit(key: string, limit: number, windowMs: number): Promise<boolean> {
    const hit = { key, limit, windowMs };
    assertRateLimitHit(hit);
    return this.hit(hit, this.now());
  }

  async hitRateLimits(hits: RateLimitHit[]): Promise<boolean[]> {
    assertBatch(hits.length);
    hits.forEach(assertRateLimitHit);
    const now = this.now();
    return hits.map((h) => this.hit(h, now));
  }

  private hit({ key, limit, windowMs }: RateLimitHit, now: number): boolean {
    const window = this.rateLimits.get(key, now);
    if (window === undefined) {
      this.rateLimits.set(key, { count: 1, expiresAtMs: now + windowMs }, now);
      return true;
    }
    if (window.count >= limit) return false;
    window.count += 1;
    return true;
  }

  async close(): Promise<void> {}
}

/** Compares against every stored digest, without stopping early: same work whatever matches. */
function matchIndex(stored: Buffer[], candidate: Buffer): number {
  let matched = -1;
  for (let i = 0; i < stored.length; i++) {
    const digest = stored[i]!;
    const equal = digest.length === candidate.length && timingSafeEqual(digest, candidate);
    if (equal && matched < 0) matched = i;
  }
  return matched;
}

function idempotencyId(scope: string, key: string): string {
  assertKeyPart(scope, 'idempotency scope');
  assertKeyPart(key, 'idempotency key');
  return `${scope}\u0000${key}`;
}
