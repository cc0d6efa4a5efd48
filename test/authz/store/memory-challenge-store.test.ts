import test from 'ava';
import { StoreUnavailableError } from '../../../authz/ports.js';
import { StoreFullError } from '../../../authz/store/errors.js';
import { MemoryChallengeStore } from '../../../authz/store/memory-challenge-store.js';
import { challengeStoreContract, contractLockout, hexId, responseDigest } from './challenge-store.contract.js';

challengeStoreContract('memory challenge store', {
  async open(lockout) {
    let nowMs = 1_700_000_000_000;
    const store = new MemoryChallengeStore({ lockout, now: () => nowMs });
    return {
      store,
      advance: async (ms) => {
        nowMs += ms;
      },
      close: () => store.close(),
    };
  },
});

test('memory challenge store refuses a new challenge when challengesMax live ones are held, after evicting expired ones', async (t) => {
  let nowMs = 0;
  const store = new MemoryChallengeStore({ lockout: contractLockout, now: () => nowMs, challengesMax: 2 });
  const put = (challengeId: string, ttlMs: number) =>
    store.putChallenge({ challengeId, payerId: hexId(), responseDigests: [responseDigest('12345678')], ttlMs, attemptsMax: 5 });
  const [a, b] = [hexId(), hexId()];
  await put(a, 100);
  await put(b, 1_000);
  const full = await t.throwsAsync(put(hexId(), 1_000), { instanceOf: StoreFullError, message: /challengesMax=2/ });
  t.true(full instanceof StoreUnavailableError, 'a full store is unavailable to the caller');
  await put(a, 1_000);
  t.is(await store.attemptsLeft(a), 5, 'replacing a held key needs no room');
  nowMs = 1_000;
  await put(hexId(), 1_000);
  t.is(await store.attemptsLeft(b), undefined, 'expired entries were evicted to make room');
});

test('memory challenge store bounds idempotency keys and rate-limit windows too', async (t) => {
  let nowMs = 0;
  const store = new MemoryChallengeStore({ lockout: contractLockout, now: () => nowMs, idempotencyKeysMax: 1, rateLimitKeysMax: 1 });
  t.deepEqual(await store.beginIdempotency('m', 'k1', 'fp', 100), { status: 'new' });
  await t.throwsAsync(store.beginIdempotency('m', 'k2', 'fp', 100), { instanceOf: StoreFullError, message: /idempotencyKeysMax=1/ });
  t.true(await store.hitRateLimit('r1', 5, 100));
  await t.throwsAsync(store.hitRateLimit('r2', 5, 100), { instanceOf: StoreFullError, message: /rateLimitKeysMax=1/ });
  nowMs = 100;
  t.deepEqual(await store.beginIdempotency('m', 'k2', 'fp', 100), { status: 'new' });
  t.true(await store.hitRateLimit('r2', 5, 100));
});

test('memory challenge store: malformed digests and policies are programmer errors', async (t) => {
  const store = new MemoryChallengeStore({ lockout: contractLockout });
  await t.throwsAsync(
    store.putChallenge({ challengeId: hexId(), payerId: hexId(), responseDigests: ['12345678'], ttlMs: 1_000, attemptsMax: 5 }),
    { message: /digest/ },
  );
  await t.throwsAsync(store.verifyAndConsume(hexId(), hexId(), 'ABC'), { message: /digest/ });
  t.throws(() => new MemoryChallengeStore({ lockout: { ...contractLockout, backoffMaxMs: 1 } }), { message: /backoffMaxMs/ });
});
