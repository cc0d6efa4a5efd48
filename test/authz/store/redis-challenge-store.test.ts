import test from 'ava';
import { Redis } from 'ioredis';
import { RedisChallengeStore, challengeKeys } from '../../../authz/store/redis-challenge-store.js';
import { clusterSlot, hashTag } from '../../support/cluster-slot.js';
import { redisSnapshot } from '../../../bench/redis-stats.js';
import { monitorRedis, sleep, startRedis, stopRedis, type RedisServer } from '../../support/redis.js';
import { challengeStoreContract, codesUsed, contractLockout, hexId, newCode, responseDigest } from './challenge-store.contract.js';

let started: Promise<RedisServer> | undefined;
const server = (): Promise<RedisServer> => (started ??= startRedis());
/** Real TTLs lapse on Redis's clock; this margin covers timer slack between the test and Redis. */
const ttlMarginMs = 30;

challengeStoreContract('redis challenge store', {
  async open(lockout) {
    const store = await RedisChallengeStore.open({ url: (await server()).url, lockout });
    return { store, advance: (ms) => sleep(ms + ttlMarginMs), close: () => store.close() };
  },
});

test.after.always('stop redis', async () => {
  if (started !== undefined) await (await started).stop();
});

/** Every key with its type and full value, read with a bounded SCAN. */
async function dumpKeyspace(redis: Redis): Promise<{ keys: string[]; text: string }> {
  const keys: string[] = [];
  let cursor = '0';
  for (let step = 0; step < 10_000; step++) {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 500);
    keys.push(...batch);
    cursor = next;
    if (cursor === '0') break;
  }
  const parts: string[] = [];
  for (const key of keys) {
    const type = await redis.type(key);
    if (type === 'string') parts.push(key, (await redis.get(key)) ?? '');
    else if (type === 'hash') parts.push(key, ...Object.entries(await redis.hgetall(key)).flat());
    else if (type === 'zset') parts.push(key, ...(await redis.zrange(key, '0', '-1')));
    else parts.push(key, `<${type}>`);
  }
  return { keys, text: parts.join('\n') };
}

test('redis holds digests, never a plaintext code', async (t) => {
  const redis = new Redis((await server()).url);
  const store = await RedisChallengeStore.open({ url: (await server()).url, lockout: contractLockout });
  try {
    const payerId = hexId();
    const codes = ['12345678', newCode(), newCode()];
    const ids = [hexId(), hexId(), hexId()];
    for (const [i, challengeId] of ids.entries()) {
      await store.putChallenge({ challengeId, payerId, responseDigests: [responseDigest(codes[i]!)], ttlMs: 60_000, attemptsMax: 5 });
    }
    await store.verifyAndConsume(ids[1]!, payerId, responseDigest(newCode()));
    await store.verifyAndConsume(ids[2]!, payerId, responseDigest(codes[2]!));
    const { keys, text } = await dumpKeyspace(redis);
    t.true(keys.includes(challengeKeys.challenge(payerId, ids[0]!)), 'the live challenge is in the scan');
    t.true(text.includes(responseDigest(codes[0]!)), 'its digest is stored');
    for (const code of codes) t.false(text.includes(code), `plaintext ${code} never stored`);
  } finally {
    await store.close();
    redis.disconnect();
  }
});

test.after('after every challenge case, no plaintext code anywhere in redis', async (t) => {
  const redis = new Redis((await server()).url);
  try {
    const { keys, text } = await dumpKeyspace(redis);
    t.true(keys.length > 10, `scanned ${keys.length} keys`);
    t.true(codesUsed.size > 50, `checked ${codesUsed.size} codes`);
    const leaked = [...codesUsed].filter((code) => text.includes(code));
    t.deepEqual(leaked, []);
  } finally {
    redis.disconnect();
  }
});

/** Waits (bounded) until the monitor has reported what a check needs. */
async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await sleep(10);
}

test('one verify is one EVALSHA whose keys all hash to one cluster slot', async (t) => {
  t.is(clusterSlot('123456789'), 0x31c3 % 16384, 'CRC16/XMODEM check value');
  t.is(clusterSlot('{user1000}.following'), clusterSlot('{user1000}.followers'));
  t.is(hashTag('foo{}{bar}'), 'foo{}{bar}');

  const { url, port } = await server();
  const store = await RedisChallengeStore.open({ url, lockout: contractLockout });
  const [payerId, warmUpPayerId] = [hexId(), hexId()];
  let storeSource: string | undefined;
  const seen: string[][] = [];
  const inScript: string[][] = [];
  // Other cases run concurrently (the keyspace dump reads these keys too): keep only the
  // store's own connection, whose address the warm-up call reveals, and the script's commands.
  const monitor = await monitorRedis(port, ({ source, args }) => {
    if (args.some((a) => a.includes(warmUpPayerId))) storeSource ??= source === 'lua' ? undefined : source;
    if (!args.some((a) => a.includes(payerId))) return;
    if (source === 'lua') inScript.push(args);
    else if (source === storeSource) seen.push(args);
  });
  try {
    const challengeId = hexId();
    await store.putChallenge({ challengeId, payerId, responseDigests: [responseDigest('12345678')], ttlMs: 60_000, attemptsMax: 5 });
    await store.verifyAndConsume(hexId(), warmUpPayerId, responseDigest(newCode())); // also loads the script
    await until(() => storeSource !== undefined); // MONITOR is ordered: putChallenge's commands came before
    t.not(storeSource, undefined);
    seen.length = 0;
    inScript.length = 0;
    const outcome = await store.verifyAndConsume(challengeId, payerId, responseDigest(newCode()));
    t.deepEqual(outcome, { outcome: 'mismatch', attemptsLeft: 4 });
    await until(() => seen.length >= 1 && inScript.length >= 4);
    await sleep(100);
    t.is(seen.length, 1, 'one command, one round trip: ' + JSON.stringify(seen));
    const [command, , numKeys, ...rest] = seen[0]!;
    t.is(command!.toLowerCase(), 'evalsha');
    const keys = rest.slice(0, Number(numKeys));
    t.deepEqual(keys, [
      challengeKeys.challenge(payerId, challengeId),
      challengeKeys.streak(payerId),
      challengeKeys.lockouts(payerId),
      challengeKeys.locked(payerId),
    ]);
    t.deepEqual(new Set(keys.map(clusterSlot)).size, 1);
    t.true(keys.every((k) => hashTag(k) === `payer:${payerId}`));
    t.true(inScript.length > 0, 'the script ran');
    t.true(inScript.every((args) => keys.includes(args[1]!)), 'the script touched only its declared keys');
  } finally {
    monitor.stop();
    await store.close();
  }
});

test('a batch call is one script call on a single Redis, however many items it holds', async (t) => {
  const own = await startRedis();
  const store = await RedisChallengeStore.open({ url: own.url, lockout: contractLockout });
  try {
    const items = 50;
    const [scope, payerId] = [hexId(), hexId()];
    const challenges = Array.from({ length: items }, () => ({ challengeId: hexId(), payerId, responseDigests: [responseDigest(newCode())], ttlMs: 60_000, attemptsMax: 5 }));
    const round = async () => {
      await store.putChallenges(challenges.map((c) => ({ ...c, challengeId: hexId() })));
      await store.beginIdempotencyMany(scope, Array.from({ length: items }, () => ({ key: hexId(), fingerprint: 'fp' })), 60_000);
      await store.completeIdempotencyMany(scope, [], 60_000);
      await store.hitRateLimits(Array.from({ length: items }, () => ({ key: `sms:${hexId()}`, limit: 5, windowMs: 60_000 })));
      return store.verifyAndConsumeMany(challenges.map((c) => ({ challengeId: c.challengeId, payerId: c.payerId, digest: responseDigest(newCode()) })));
    };
    await store.putChallenges(challenges);
    await round(); // loads the scripts (EVALSHA, then EVAL on NOSCRIPT)
    const before = await redisSnapshot(own.url);
    const outcomes = await round();
    const after = await redisSnapshot(own.url);
    const delta = (name: string) => (after.calls[name] ?? 0) - (before.calls[name] ?? 0);
    t.is(delta('evalsha'), 4, 'putChallenges, beginIdempotencyMany, hitRateLimits, verifyAndConsumeMany: one EVALSHA each (an empty batch sends nothing)');
    t.is(delta('eval'), 0);
    t.is(delta('hmget'), items, 'the verify script ran once per item');
    t.is(outcomes.filter((o) => o.outcome === 'mismatch' || o.outcome === 'locked').length, items);
  } finally {
    await store.close();
    await stopRedis(own);
  }
});

test.serial('scripts run by EVALSHA, and again after Redis forgot them (SCRIPT FLUSH: EVAL, then EVALSHA once more)', async (t) => {
  const url = (await server()).url;
  const admin = new Redis(url);
  const store = await RedisChallengeStore.open({ url, lockout: contractLockout });
  try {
    const payerId = hexId();
    const [a, b] = [hexId(), hexId()];
    const [codeA, codeB] = [newCode(), newCode()];
    const statsOf = async () => {
      const info = await admin.info('commandstats');
      const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
      return { evalsha: calls('evalsha'), eval: calls('eval') };
    };
    await store.putChallenge({ challengeId: a, payerId, responseDigests: [responseDigest(codeA)], ttlMs: 60_000, attemptsMax: 5 });
    await admin.script('FLUSH');
    const before = await statsOf();
    // The script cache is empty: the verification still runs (EVALSHA refused, then EVAL) and consumes the challenge.
    t.deepEqual(await store.verifyAndConsume(a, payerId, responseDigest(codeA)), { outcome: 'ok', matchedIndex: 0 });
    const afterFlush = await statsOf();
    t.is(afterFlush.eval - before.eval, 1, 'one EVAL after NOSCRIPT');
    await store.putChallenge({ challengeId: b, payerId, responseDigests: [responseDigest(codeB)], ttlMs: 60_000, attemptsMax: 5 });
    const afterPut = await statsOf(); // the put's own script was flushed too: it was EVAL'd once
    t.deepEqual(await store.verifyAndConsume(b, payerId, responseDigest(codeB)), { outcome: 'ok', matchedIndex: 0 });
    const later = await statsOf();
    t.is(later.eval - afterPut.eval, 0, 'the EVAL cached the verification script: EVALSHA from then on');
    t.is(later.evalsha - afterPut.evalsha, 1);
    t.deepEqual(await store.verifyAndConsume(a, payerId, responseDigest(codeA)), { outcome: 'not_found' }, 'consumed once');
  } finally {
    await store.close();
    admin.disconnect();
  }
});
