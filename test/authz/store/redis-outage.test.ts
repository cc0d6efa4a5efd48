import test from 'ava';
import { StoreUnavailableError } from '../../../authz/ports.js';
import { RedisChallengeStore } from '../../../authz/store/redis-challenge-store.js';
import { RedisDirectory } from '../../../authz/store/redis-directory.js';
import { RedisPaymentRepository } from '../../../authz/store/redis-payment-repository.js';
import { freePort, sleep, startRedis, stopRedis } from '../../support/redis.js';
import { contractLockout, hexId, responseDigest } from './challenge-store.contract.js';

// One server per case, and the cases run one at a time: they stop it.

test.serial('opening a store on a port nobody listens on throws StoreUnavailableError', async (t) => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  await t.throwsAsync(RedisChallengeStore.open({ url, lockout: contractLockout }), { instanceOf: StoreUnavailableError });
  await t.throwsAsync(RedisPaymentRepository.open({ url }), { instanceOf: StoreUnavailableError });
  await t.throwsAsync(RedisDirectory.open({ url }), { instanceOf: StoreUnavailableError });
});

test.serial('Redis going away surfaces as StoreUnavailableError; the store recovers when it is back', async (t) => {
  const server = await startRedis();
  const store = await RedisChallengeStore.open({ url: server.url, lockout: contractLockout });
  const payments = await RedisPaymentRepository.open({ url: server.url });
  try {
    const [challengeId, payerId] = [hexId(), hexId()];
    const put = () => store.putChallenge({ challengeId, payerId, responseDigests: [responseDigest('12345678')], ttlMs: 60_000, attemptsMax: 5 });
    await put();
    await stopRedis(server);
    const started = Date.now();
    await t.throwsAsync(store.verifyAndConsume(challengeId, payerId, responseDigest('12345678')), { instanceOf: StoreUnavailableError });
    await t.throwsAsync(store.lockedFor(payerId), { instanceOf: StoreUnavailableError });
    await t.throwsAsync(payments.getMany([hexId(), hexId()]), { instanceOf: StoreUnavailableError });
    t.true(Date.now() - started < 5_000, 'failures are prompt, not queued');

    const again = await startRedis({ port: server.port });
    try {
      let outcome: unknown;
      for (let i = 0; i < 50 && outcome === undefined; i++) {
        try {
          await put();
          outcome = await store.verifyAndConsume(challengeId, payerId, responseDigest('12345678'));
        } catch (err) {
          t.true(err instanceof StoreUnavailableError, String(err));
          await sleep(100);
        }
      }
      t.deepEqual(outcome, { outcome: 'ok', matchedIndex: 0 }, 'reconnected, script reloaded on the new server');
    } finally {
      await again.stop();
    }
  } finally {
    await store.close();
    await payments.close();
  }
});
