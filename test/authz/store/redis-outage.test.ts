import test from 'ava';
import { StoreUnavailableError } from '../../../authz/ports.js';
import { RedisDirectory } from '../../../authz/store/redis-directory.js';
import { freePort, sleep, startRedis, stopRedis } from '../../support/redis.js';
import { hexId, payer } from './directory.contract.js';

// One server per case, and the cases run one at a time: they stop it. (The payment store's own
// outage test is test/authz/store/redis-store-outage.test.ts.)

/** How long the directory may take to reconnect after Redis is back, milliseconds. */
const reconnectWithinMs = 10_000;

test.serial('opening the directory on a port nobody listens on throws StoreUnavailableError', async (t) => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  await t.throwsAsync(RedisDirectory.open({ url }), { instanceOf: StoreUnavailableError });
});

test.serial('Redis going away surfaces as StoreUnavailableError; the directory recovers when it is back', async (t) => {
  const server = await startRedis();
  const directory = await RedisDirectory.open({ url: server.url });
  try {
    const p = payer();
    await directory.putPayer(p);
    await stopRedis(server);
    await t.throwsAsync(directory.getPayer(p.id), { instanceOf: StoreUnavailableError });
    await t.throwsAsync(directory.findPayerByPhone(p.phone), { instanceOf: StoreUnavailableError });
    const again = await startRedis({ port: server.port });
    try {
      let back = false;
      for (const until = Date.now() + reconnectWithinMs; !back && Date.now() < until; ) {
        back = await directory.getPayer(hexId()).then(
          () => true,
          () => false,
        );
        if (!back) await sleep(100);
      }
      t.true(back, 'the directory answers again once Redis is back');
      t.is(await directory.getPayer(p.id), undefined, 'a fresh server is empty: the record is not invented');
    } finally {
      await again.stop();
    }
  } finally {
    await directory.close();
  }
});
