import test from 'ava';
import { type PaymentStore, shardOfPayer, storeShards } from '../../../authz/store/port.js';
import { dueShardsPerClaimDefault, RedisPaymentStore } from '../../../authz/store/redis/redis-store.js';
import { startRedis } from '../../support/redis.js';
import { startRedisCluster } from '../../support/redis-cluster.js';
import { type Draft, draft, leaseMs, newHexId, seed } from './payment-store.contract.js';

/** Generous for a loaded test machine (many servers and clusters at once); the product default is 2 s. */
const commandTimeoutMs = 15_000;

/** A fresh payer id in store shard `shard` (bits 4..9 of the id). */
function payerInShard(shard: number): string {
  const id = newHexId();
  const payerId = id.slice(0, 29) + shard.toString(16).padStart(2, '0') + id.slice(31);
  if (shardOfPayer(payerId) !== shard) throw new Error(`payer id ${payerId} is not in shard ${shard}`);
  return payerId;
}

/** A payment due at `t0` in each shard of `shards`. */
async function dueIn(store: PaymentStore, t0: number, shards: readonly number[]): Promise<Draft[]> {
  const drafts = shards.map((s) => ({ ...draft(t0, { payerId: payerInShard(s) }), dueAtMs: t0 }));
  await seed(store, ...drafts);
  return drafts;
}

const shardOf = (id: string) => shardOfPayer(id);

async function rotation(t: import('ava').ExecutionContext, store: PaymentStore): Promise<void> {
  const t0 = Date.now();
  const all = Array.from({ length: storeShards }, (_, s) => s);
  await dueIn(store, t0, all);
  const calls = storeShards / dueShardsPerClaimDefault;
  for (let call = 0; call < calls; call++) {
    const claimed = await store.claimDue({ nowMs: t0 + 1, limit: 1_000, leaseMs });
    const shards = claimed.map((r) => shardOf(r.payment.payerId)).sort((a, b) => a - b);
    const window = all.slice(call * dueShardsPerClaimDefault, (call + 1) * dueShardsPerClaimDefault);
    t.deepEqual(shards, window, `call ${call} looks at shards ${window[0]}..${window.at(-1)}`);
  }
  t.deepEqual(await store.claimDue({ nowMs: t0 + 1, limit: 1_000, leaseMs }), [], 'every shard visited: nothing left');
}

test('single Redis: claimDue looks at 8 shards per call, rotating: every shard within storeShards / 8 calls', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const store = await RedisPaymentStore.open({ url: server.url, commandTimeoutMs });
  t.teardown(() => store.close());
  await rotation(t, store);
});

test('single Redis: a call that fills limit stops in a shard; the next call starts after it, and the rest comes round', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const store = await RedisPaymentStore.open({ url: server.url, commandTimeoutMs });
  t.teardown(() => store.close());
  const t0 = Date.now();
  const [a, b, c, d] = await dueIn(store, t0, [0, 0, 0, 1]);
  const claim = async () => (await store.claimDue({ nowMs: t0 + 1, limit: 2, leaseMs })).map((r) => r.payment.id).sort();
  const first = await claim();
  t.is(first.length, 2, 'two of shard 0');
  t.deepEqual(await claim(), [d!.payment.id], 'then shard 1 (and 2..8)');
  const rest = [a, b, c].map((x) => x!.payment.id).filter((id) => !first.includes(id));
  const later: string[] = [];
  for (let call = 0; call < storeShards / dueShardsPerClaimDefault && later.length === 0; call++) later.push(...(await claim()));
  t.deepEqual(later, rest, 'shard 0 again within storeShards / 8 short calls');
});

test('Redis Cluster: claimDue rotates the same way (ZCOUNT per shard, a claim script per shard with some due)', async (t) => {
  const cluster = await startRedisCluster({ masters: 3 });
  t.teardown(() => cluster.stop());
  const store = await RedisPaymentStore.open({ clusterNodes: cluster.nodes, commandTimeoutMs });
  t.teardown(() => store.close());
  await rotation(t, store);
});
