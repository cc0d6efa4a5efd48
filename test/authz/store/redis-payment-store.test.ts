import test from 'ava';
import type { Cluster, Redis } from 'ioredis';
import { storeShards } from '../../../authz/store/port.js';
import { closeRedisCluster, openRedisCluster } from '../../../authz/store/redis/connect.js';
import { RedisPaymentStore } from '../../../authz/store/redis/redis-store.js';
import { closeRedis, openRedis } from '../../../authz/store/redis-client.js';
import { type RedisServer, startRedis } from '../../support/redis.js';
import { type RedisCluster, startRedisCluster } from '../../support/redis-cluster.js';
import { paymentStoreContract } from './payment-store.contract.js';

// The contract on a private redis-server and on a private 3-master Redis Cluster. The stores of
// one backend share one client, as the services' stores do; each gets its own key prefix, so
// every test sees a fresh, empty store while they run concurrently.
//
// The contract's claimDue cases expect one call to see every due record, so these stores look at
// every shard per call; the default (8 of 64, rotating) is tested in redis-store-sweep.test.ts.

/** Generous for a loaded test machine (many servers and clusters at once); the product default is 2 s. */
const commandTimeoutMs = 15_000;

let single: Promise<{ server: RedisServer; client: Redis }> | undefined;
let cluster: Promise<{ cluster: RedisCluster; client: Cluster }> | undefined;
let stores = 0;

const options = (lockout: Parameters<Parameters<typeof paymentStoreContract>[1]['open']>[0]['lockout']) => ({
  keyPrefix: `contract-${++stores}`,
  dueShardsPerClaim: storeShards,
  ownsClient: false,
  ...(lockout && { lockout }),
});

paymentStoreContract('redis store', {
  open: async ({ lockout }) => {
    single ??= startRedis().then(async (server) => ({ server, client: await openRedis({ url: server.url, commandTimeoutMs }) }));
    return new RedisPaymentStore((await single).client, options(lockout));
  },
});

paymentStoreContract('redis cluster store', {
  open: async ({ lockout }) => {
    cluster ??= startRedisCluster({ masters: 3 }).then(async (c) => ({
      cluster: c,
      client: await openRedisCluster({ clusterNodes: c.nodes, commandTimeoutMs }),
    }));
    return new RedisPaymentStore((await cluster).client, options(lockout));
  },
});

test.after.always('close the clients, stop redis and the cluster', async () => {
  await Promise.all([
    single?.then(async ({ server, client }) => (await closeRedis(client), await server.stop())),
    cluster?.then(async ({ cluster: c, client }) => (await closeRedisCluster(client), await c.stop())),
  ]);
});
