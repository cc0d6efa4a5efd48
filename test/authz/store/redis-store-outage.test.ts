import { randomUUID } from 'node:crypto';
import test from 'ava';
import { StoreUnavailableError } from '../../../authz/store/port.js';
import { RedisPaymentStore } from '../../../authz/store/redis/redis-store.js';
import { freePort, sleep, startRedis, stopRedis } from '../../support/redis.js';
import { confirmItem, createItem, draft, recordOf, seed } from './payment-store.contract.js';
import { storeWithAdmin } from './redis-store-admin.js';

/** Attempts to reach the restarted server, each after `reconnectPollMs`. */
const reconnectAttemptsMax = 50;
const reconnectPollMs = 100;

test.serial('opening the store where no Redis listens throws StoreUnavailableError', async (t) => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  await t.throwsAsync(RedisPaymentStore.open({ url }), { instanceOf: StoreUnavailableError });
  await t.throwsAsync(RedisPaymentStore.open({ clusterNodes: [{ host: '127.0.0.1', port: await freePort() }] }), { instanceOf: StoreUnavailableError });
});

test.serial('Redis going away: every call throws StoreUnavailableError (nothing queued); back again, the store works (scripts reloaded)', async (t) => {
  const server = await startRedis();
  const store = await RedisPaymentStore.open({ url: server.url });
  t.teardown(() => store.close());
  const t0 = Date.now();
  const d = draft(t0);
  await seed(store, d);

  await stopRedis(server);
  const unavailable = { instanceOf: StoreUnavailableError };
  await t.throwsAsync(store.create([createItem(draft(t0))]), unavailable);
  await t.throwsAsync(store.confirm([confirmItem(d.payment, t0 + 1)]), unavailable);
  await t.throwsAsync(store.commit([{ paymentId: d.payment.id, expectVersion: 1, dueAtMs: null, nowMs: t0 + 1 }]), unavailable);
  await t.throwsAsync(store.get([d.payment.id]), unavailable);
  await t.throwsAsync(store.list({ payerId: d.payment.payerId, limit: 10 }), unavailable);
  await t.throwsAsync(store.scan('', 10), unavailable);
  await t.throwsAsync(store.claimDue({ nowMs: t0, limit: 10, leaseMs: 1_000 }), unavailable);
  await t.throwsAsync(store.guard([{ payerId: d.payment.payerId, event: 'check', nowMs: t0 }]), unavailable);
  await t.throwsAsync(store.putPayNumber({ numberDigest: 'n', payerId: d.payment.payerId, ttlMs: 1_000, nowMs: t0 }), unavailable);

  // A fresh, empty server on the same port: the store reconnects and loads its scripts again.
  const again = await startRedis({ port: server.port });
  t.teardown(() => again.stop());
  const fresh = draft(t0);
  let created: string | undefined;
  for (let i = 0; i < reconnectAttemptsMax && created === undefined; i++) {
    try {
      created = (await store.create([createItem(fresh)]))[0]?.outcome;
    } catch (err) {
      t.true(err instanceof StoreUnavailableError, String(err));
      await sleep(reconnectPollMs);
    }
  }
  t.is(created, 'created');
  t.is((await store.confirm([confirmItem(fresh.payment, t0 + 1)]))[0]?.outcome, 'satisfied');
});

test.serial(
  'Redis over its maxmemory: a create is StoreUnavailableError and writes nothing (the script stops at its first write); reads still answer',
  async (t) => {
    const { store, admin } = await storeWithAdmin(t);
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const keysBefore = await admin.dbsize();
    await admin.config('SET', 'maxmemory', '1');

    const shared = { key: `rate-${randomUUID()}`, limit: 10, windowMs: 60_000 };
    const refused = await t.throwsAsync(
      store.create([createItem(draft(t0), t0, { rateLimits: [shared] }), createItem(draft(t0), t0, { rateLimits: [shared] })]),
      {
        instanceOf: StoreUnavailableError,
      },
    );
    t.regex(refused?.message ?? '', /OOM/);
    t.is(await admin.dbsize(), keysBefore, 'no key written');
    t.deepEqual(await store.get([d.payment.id]), [recordOf(d)]);
  },
);
