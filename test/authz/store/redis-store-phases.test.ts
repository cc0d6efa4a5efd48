import test, { type ExecutionContext } from 'ava';
import { Cluster, Redis } from 'ioredis';
import { shardOfPayment } from '../../../authz/store/port.js';
import { storeKeysOf } from '../../../authz/store/redis/keys.js';
import { RedisPaymentStore } from '../../../authz/store/redis/redis-store.js';
import { startRedis } from '../../support/redis.js';
import { startRedisCluster } from '../../support/redis-cluster.js';
import { createItem, draft, recordOf } from './payment-store.contract.js';

/** Generous for a loaded test machine (many servers and clusters at once); the product default is 2 s. */
const commandTimeoutMs = 15_000;

const keys = storeKeysOf('ps');

/**
 * A create that stopped after its merchant-slot phase (a crash on a Cluster): the key names the
 * payment and the merchant index lists it, but the record and the payer's indexes were never
 * written. Simulated by removing what the payer-shard phase writes.
 */
async function crashBeforeRecord(client: Redis | Cluster, paymentId: string, payerId: string): Promise<void> {
  await client.del(keys.record(paymentId));
  await client.zrem(keys.payerIndex(payerId), paymentId);
  await client.zrem(keys.due(shardOfPayment(paymentId)), paymentId);
}

async function recovery(t: ExecutionContext, store: RedisPaymentStore, client: Redis | Cluster): Promise<void> {
  const t0 = Date.now();
  const d = draft(t0);
  const item = createItem(d);
  t.is((await store.create([item]))[0]?.outcome, 'created');
  await crashBeforeRecord(client, d.payment.id, d.payment.payerId);

  const retry = createItem(draft(t0 + 1, { merchantId: d.payment.merchantId, payerId: d.payment.payerId }), t0 + 1, {
    key: item.key,
    fingerprint: item.fingerprint,
  });
  t.deepEqual(await store.create([retry]), [{ outcome: 'missing', paymentId: d.payment.id }], 'the key names a payment that was never written');
  t.deepEqual(
    await store.create([{ ...item, nowMs: t0 + 2 }]),
    [{ outcome: 'created', record: recordOf(d) }],
    'the same request drafted with that id creates it',
  );
  t.deepEqual(await store.create([retry]), [{ outcome: 'replayed', record: recordOf(d) }]);
  t.deepEqual(await store.list({ merchantId: d.payment.merchantId, limit: 10 }), [d.payment]);
  t.deepEqual(await store.list({ payerId: d.payment.payerId, limit: 10 }), [d.payment]);
  t.deepEqual(
    (await store.claimDue({ nowMs: d.dueAtMs!, limit: 10, leaseMs: 1_000 })).map((r) => r.payment.id),
    [d.payment.id],
  );
}

test('Redis Cluster: a crash between the create phases leaves `missing`; the re-drafted create completes it', async (t) => {
  const cluster = await startRedisCluster({ masters: 3 });
  t.teardown(() => cluster.stop());
  const store = await RedisPaymentStore.open({ clusterNodes: cluster.nodes, dueShardsPerClaim: 64, commandTimeoutMs });
  t.teardown(() => store.close());
  const client = new Cluster(cluster.nodes);
  t.teardown(() => client.disconnect());
  await recovery(t, store, client);
});

test('single Redis: a key naming a missing record answers the same way', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const store = await RedisPaymentStore.open({ url: server.url, dueShardsPerClaim: 64, commandTimeoutMs });
  t.teardown(() => store.close());
  const client = new Redis(server.url);
  t.teardown(() => client.disconnect());
  await recovery(t, store, client);
});
