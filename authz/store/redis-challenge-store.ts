import type { Redis } from 'ioredis';
import { type ChallengeInput, type ChallengeStore, type IdempotencyClaim, type IdempotencyOutcome, type IdempotencyResult, type LockoutPolicy, type RateLimitHit, type VerifyOutcome, type VerifyRequest } from '../ports.js';
import {
  abandonIdempotencyLua,
  beginIdempotencyLua,
  beginIdempotencyManyLua,
  completeIdempotencyLua,
  completeIdempotencyManyLua,
  putChallengeLua,
  putChallengesLua,
  rateLimitLua,
  rateLimitManyLua,
  takePayNumberLua,
  verifyLua,
  verifyManyLua,
} from './challenge-scripts.js';
import { assert, assertKeyPart } from './errors.js';
import { assertBatch, assertChallenge, assertDigest, assertLockoutPolicy, assertTtl, assertRateLimitHit, assertVerifyRequest, lockoutPolicyDefault } from './lockout.js';
import { redisScripts } from './redis-scripts.js';
import { callRedis, closeRedis, openRedis, type RedisConnectOptions } from './redis-client.js';

/**
 * Key layout. Everything one script touches shares a hash tag, so the store runs on Redis
 * Cluster: a payer's challenges, failure streak, lockout count and lockout live under
 * `{payer:<payerId>}`. `dropChallenge` and `attemptsLeft` get only a challenge id, so
 * `cs:{ch:<challengeId>}:payer` maps it to its payer (same TTL as the challenge; it may outlive
 * a consumed challenge, and then points at nothing).
 */
export const challengeKeys = {
  challenge: (payerId: string, challengeId: string) => `cs:{payer:${payerId}}:challenge:${challengeId}`,
  streak: (payerId: string) => `cs:{payer:${payerId}}:streak`,
  lockouts: (payerId: string) => `cs:{payer:${payerId}}:lockouts`,
  locked: (payerId: string) => `cs:{payer:${payerId}}:locked`,
  challengePayer: (challengeId: string) => `cs:{ch:${challengeId}}:payer`,
  idempotency: (scope: string, key: string) => `cs:{idem:${scope}}:${key}`,
  rateLimit: (key: string) => `cs:{rl:${key}}`,
  payNumber: (numberDigest: string) => `cs:{pay:${numberDigest}}`,
} as const;

type Reply = (string | number | null)[];

/** The scripts as functions (`redisScripts`: EVALSHA, EVAL on NOSCRIPT). */
interface ScriptCommands {
  csVerify(challenge: string, streak: string, lockouts: string, locked: string, ...argv: (string | number)[]): Promise<Reply>;
  csPutChallenge(challenge: string, attemptsMax: number, digests: string, ttlMs: number): Promise<number>;
  csBeginIdempotency(key: string, fingerprint: string, ttlMs: number, resultIfNew?: string): Promise<Reply>;
  csCompleteIdempotency(key: string, fingerprint: string, result: string, ttlMs: number): Promise<number>;
  csAbandonIdempotency(key: string): Promise<number>;
  csRateLimit(key: string, limit: number, windowMs: number): Promise<number>;
  csTakePayNumber(key: string, claimant: string): Promise<string | null>;
  // The batch scripts take a variable number of keys: the count comes first.
  csVerifyMany(numKeys: number, ...keysThenArgv: (string | number)[]): Promise<Reply>;
  csPutChallenges(numKeys: number, ...keysThenArgv: (string | number)[]): Promise<Reply>;
  csBeginIdempotencyMany(numKeys: number, ...keysThenArgv: (string | number)[]): Promise<Reply>;
  csCompleteIdempotencyMany(numKeys: number, ...keysThenArgv: (string | number)[]): Promise<number>;
  csRateLimitMany(numKeys: number, ...keysThenArgv: (string | number)[]): Promise<number[]>;
}

export interface RedisChallengeStoreOptions {
  lockout?: LockoutPolicy;
  /** Whether `close` quits the connection (true when the store opened it). */
  ownsClient?: boolean;
}

/**
 * The challenge store on Redis: only digests, never codes; one Lua script per check. A batch
 * call is one script over every item's keys on a single Redis. Its items' keys carry different
 * hash tags (payers, challenges, counters), so on a Redis Cluster (`isCluster`) it is the
 * single-item commands instead, pipelined together; the idempotency batches share their scope's
 * tag and are one script everywhere.
 */
export class RedisChallengeStore implements ChallengeStore {
  private readonly lockout: LockoutPolicy;
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisChallengeStoreOptions = {},
  ) {
    this.lockout = options.lockout ?? lockoutPolicyDefault;
    assertLockoutPolicy(this.lockout);
    this.scripts = redisScripts(redis, {
      csVerify: { numberOfKeys: 4, lua: verifyLua },
      csPutChallenge: { numberOfKeys: 1, lua: putChallengeLua },
      csBeginIdempotency: { numberOfKeys: 1, lua: beginIdempotencyLua },
      csCompleteIdempotency: { numberOfKeys: 1, lua: completeIdempotencyLua },
      csAbandonIdempotency: { numberOfKeys: 1, lua: abandonIdempotencyLua },
      csRateLimit: { numberOfKeys: 1, lua: rateLimitLua },
      csTakePayNumber: { numberOfKeys: 1, lua: takePayNumberLua },
      csVerifyMany: { lua: verifyManyLua },
      csPutChallenges: { lua: putChallengesLua },
      csBeginIdempotencyMany: { lua: beginIdempotencyManyLua },
      csCompleteIdempotencyMany: { lua: completeIdempotencyManyLua },
      csRateLimitMany: { lua: rateLimitManyLua },
    }) as unknown as ScriptCommands;
  }

  static async open(options: RedisConnectOptions & { lockout?: LockoutPolicy }): Promise<RedisChallengeStore> {
    const redis = await openRedis(options);
    return new RedisChallengeStore(redis, { ...(options.lockout && { lockout: options.lockout }), ownsClient: true });
  }

  /** Two commands in one round trip (index, challenge), plus a drop when the challenge changed payer. */
  async putChallenge(c: ChallengeInput): Promise<void> {
    assertChallenge(c);
    await callRedis('putChallenge', async () => {
      const [previousPayer] = await Promise.all([
        this.redis.set(challengeKeys.challengePayer(c.challengeId), c.payerId, 'PX', c.ttlMs, 'GET'),
        this.scripts.csPutChallenge(challengeKeys.challenge(c.payerId, c.challengeId), c.attemptsMax, c.responseDigests.join(','), c.ttlMs),
      ]);
      if (previousPayer !== null && previousPayer !== c.payerId) {
        await this.redis.del(challengeKeys.challenge(previousPayer, c.challengeId));
      }
    });
  }

  /** One script for every challenge (single Redis), plus a drop for each that changed payer. */
  async putChallenges(challenges: ChallengeInput[]): Promise<void> {
    assertBatch(challenges.length);
    challenges.forEach(assertChallenge);
    if (challenges.length === 0) return;
    if (this.redis.isCluster) {
      await Promise.all(challenges.map((c) => this.putChallenge(c)));
      return;
    }
    const keys = challenges.flatMap((c) => [challengeKeys.challengePayer(c.challengeId), challengeKeys.challenge(c.payerId, c.challengeId)]);
    const argv = challenges.flatMap((c) => [c.payerId, c.attemptsMax, c.responseDigests.join(','), c.ttlMs]);
    await callRedis('putChallenges', async () => {
      const moved = await this.scripts.csPutChallenges(keys.length, ...keys, ...argv);
      const stale: string[] = [];
      for (let i = 0; i < moved.length; i += 2) stale.push(challengeKeys.challenge(String(moved[i + 1]), challenges[Number(moved[i])]!.challengeId));
      if (stale.length > 0) await this.redis.del(...stale);
    });
  }

  async verifyAndConsume(challengeId: string, payerId: string, digest: string, forceMismatch = false): Promise<VerifyOutcome> {
    assertKeyPart(challengeId, 'challengeId');
    assertKeyPart(payerId, 'payerId');
    if (!forceMismatch) assertDigest(digest);
    const p = this.lockout;
    const reply = await callRedis('verifyAndConsume', () =>
      this.scripts.csVerify(
        challengeKeys.challenge(payerId, challengeId),
        challengeKeys.streak(payerId),
        challengeKeys.lockouts(payerId),
        challengeKeys.locked(payerId),
        forceMismatch ? '' : digest,
        forceMismatch ? '1' : '0',
        p.failuresMax,
        p.backoffBaseMs,
        p.backoffMaxMs,
        p.memoryMs,
      ),
    );
    return toVerifyOutcome(reply);
  }

  async verifyAndConsumeMany(requests: VerifyRequest[]): Promise<VerifyOutcome[]> {
    assertBatch(requests.length);
    requests.forEach(assertVerifyRequest);
    if (requests.length === 0) return [];
    if (this.redis.isCluster) return Promise.all(requests.map((r) => this.verifyAndConsume(r.challengeId, r.payerId, r.digest, r.forceMismatch)));
    const p = this.lockout;
    const keys = requests.flatMap((r) => [
      challengeKeys.challenge(r.payerId, r.challengeId),
      challengeKeys.streak(r.payerId),
      challengeKeys.lockouts(r.payerId),
      challengeKeys.locked(r.payerId),
    ]);
    const argv = [p.failuresMax, p.backoffBaseMs, p.backoffMaxMs, p.memoryMs, ...requests.flatMap((r) => (r.forceMismatch === true ? ['', '1'] : [r.digest, '0']))];
    const reply = await callRedis('verifyAndConsumeMany', () => this.scripts.csVerifyMany(keys.length, ...keys, ...argv));
    assert(reply.length === 2 * requests.length, 'verifyAndConsumeMany: one outcome per request');
    return requests.map((_, i) => toVerifyOutcome(reply.slice(2 * i, 2 * i + 2)));
  }

  async dropChallenge(challengeId: string): Promise<void> {
    assertKeyPart(challengeId, 'challengeId');
    await callRedis('dropChallenge', async () => {
      const indexKey = challengeKeys.challengePayer(challengeId);
      const payerId = await this.redis.get(indexKey);
      if (payerId === null) return;
      await Promise.all([this.redis.del(challengeKeys.challenge(payerId, challengeId)), this.redis.del(indexKey)]);
    });
  }

  async attemptsLeft(challengeId: string): Promise<number | undefined> {
    assertKeyPart(challengeId, 'challengeId');
    return callRedis('attemptsLeft', async () => {
      const payerId = await this.redis.get(challengeKeys.challengePayer(challengeId));
      if (payerId === null) return undefined;
      const left = await this.redis.hget(challengeKeys.challenge(payerId, challengeId), 'left');
      return left === null ? undefined : Number(left);
    });
  }

  async lockedFor(payerId: string): Promise<number | undefined> {
    assertKeyPart(payerId, 'payerId');
    const pttl = await callRedis('lockedFor', () => this.redis.pttl(challengeKeys.locked(payerId)));
    if (pttl === -1) return this.lockout.backoffMaxMs;
    return pttl > 0 ? pttl : undefined;
  }

  async beginIdempotency(scope: string, key: string, fingerprint: string, ttlMs: number, resultIfNew?: string): Promise<IdempotencyOutcome> {
    assertIdempotency(scope, key, ttlMs);
    const reply = await callRedis('beginIdempotency', () =>
      resultIfNew === undefined
        ? this.scripts.csBeginIdempotency(challengeKeys.idempotency(scope, key), fingerprint, ttlMs)
        : this.scripts.csBeginIdempotency(challengeKeys.idempotency(scope, key), fingerprint, ttlMs, resultIfNew),
    );
    return toIdempotencyOutcome(reply);
  }

  async beginIdempotencyMany(scope: string, claims: IdempotencyClaim[], ttlMs: number): Promise<IdempotencyOutcome[]> {
    assertBatch(claims.length);
    claims.forEach((c) => assertIdempotency(scope, c.key, ttlMs));
    if (claims.length === 0) return [];
    const keys = claims.map((c) => challengeKeys.idempotency(scope, c.key));
    const argv = [ttlMs, ...claims.flatMap((c) => (c.resultIfNew === undefined ? [c.fingerprint, '0', ''] : [c.fingerprint, '1', c.resultIfNew]))];
    const reply = await callRedis('beginIdempotencyMany', () => this.scripts.csBeginIdempotencyMany(keys.length, ...keys, ...argv));
    assert(reply.length === 2 * claims.length, 'beginIdempotencyMany: one outcome per claim');
    return claims.map((_, i) => toIdempotencyOutcome(reply.slice(2 * i, 2 * i + 2)));
  }

  async completeIdempotency(scope: string, key: string, fingerprint: string, result: string, ttlMs: number): Promise<void> {
    assertIdempotency(scope, key, ttlMs);
    const stored = await callRedis('completeIdempotency', () =>
      this.scripts.csCompleteIdempotency(challengeKeys.idempotency(scope, key), fingerprint, result, ttlMs),
    );
    assert(stored === 1, 'completeIdempotency with another request fingerprint');
  }

  async completeIdempotencyMany(scope: string, results: IdempotencyResult[], ttlMs: number): Promise<void> {
    assertBatch(results.length);
    results.forEach((r) => assertIdempotency(scope, r.key, ttlMs));
    if (results.length === 0) return;
    const keys = results.map((r) => challengeKeys.idempotency(scope, r.key));
    const argv = [ttlMs, ...results.flatMap((r) => [r.fingerprint, r.result])];
    const stored = await callRedis('completeIdempotencyMany', () => this.scripts.csCompleteIdempotencyMany(keys.length, ...keys, ...argv));
    assert(stored === 1, 'completeIdempotency with another request fingerprint');
  }

  async abandonIdempotency(scope: string, key: string): Promise<void> {
    assertKeyPart(scope, 'idempotency scope');
    assertKeyPart(key, 'idempotency key');
    await callRedis('abandonIdempotency', () => this.scripts.csAbandonIdempotency(challengeKeys.idempotency(scope, key)));
  }

  async putPayNumber(numberDigest: string, payerId: string, ttlMs: number): Promise<void> {
    assertDigest(numberDigest);
    assertKeyPart(payerId, 'payerId');
    assertTtl(ttlMs, 'pay number ttlMs');
    await callRedis('putPayNumber', () => this.redis.set(challengeKeys.payNumber(numberDigest), payerId, 'PX', ttlMs));
  }

  async takePayNumber(numberDigest: string, claimant: string): Promise<string | undefined> {
    assertDigest(numberDigest);
    const payerId = await callRedis('takePayNumber', () => this.scripts.csTakePayNumber(challengeKeys.payNumber(numberDigest), claimant));
    return payerId ?? undefined;
  }

  async hitRateLimit(key: string, limit: number, windowMs: number): Promise<boolean> {
    assertKeyPart(key, 'rate limit key');
    assert(Number.isSafeInteger(limit) && limit >= 1, 'rate limit must be a positive integer');
    assertTtl(windowMs, 'rate limit windowMs');
    const allowed = await callRedis('hitRateLimit', () => this.scripts.csRateLimit(challengeKeys.rateLimit(key), limit, windowMs));
    return allowed === 1;
  }

  async hitRateLimits(hits: RateLimitHit[]): Promise<boolean[]> {
    assertBatch(hits.length);
    hits.forEach(assertRateLimitHit);
    if (hits.length === 0) return [];
    if (this.redis.isCluster) return Promise.all(hits.map((h) => this.hitRateLimit(h.key, h.limit, h.windowMs)));
    const keys = hits.map((h) => challengeKeys.rateLimit(h.key));
    const argv = hits.flatMap((h) => [h.limit, h.windowMs]);
    const allowed = await callRedis('hitRateLimits', () => this.scripts.csRateLimitMany(keys.length, ...keys, ...argv));
    assert(allowed.length === hits.length, 'hitRateLimits: one answer per event');
    return allowed.map((a) => a === 1);
  }

  async close(): Promise<void> {
    if (this.options.ownsClient === true) await closeRedis(this.redis);
  }
}

function assertIdempotency(scope: string, key: string, ttlMs: number): void {
  assertKeyPart(scope, 'idempotency scope');
  assertKeyPart(key, 'idempotency key');
  assertTtl(ttlMs, 'idempotency ttlMs');
}

function toIdempotencyOutcome(reply: Reply): IdempotencyOutcome {
  switch (reply[0]) {
    case 'new':
    case 'conflict':
    case 'in_progress':
      return { status: reply[0] };
    case 'done':
      return { status: 'done', result: String(reply[1]) };
    default:
      throw new Error(`assertion failed: unexpected idempotency reply ${JSON.stringify(reply)}`);
  }
}

function toVerifyOutcome(reply: Reply): VerifyOutcome {
  const [outcome, value] = reply;
  switch (outcome) {
    case 'locked':
      return { outcome, retryAfterMs: Number(value) };
    case 'not_found':
    case 'exhausted':
      return { outcome };
    case 'ok':
      return { outcome, matchedIndex: Number(value) };
    case 'mismatch':
      return { outcome, attemptsLeft: Number(value) };
    default:
      throw new Error(`assertion failed: unexpected verify reply ${JSON.stringify(reply)}`);
  }
}
