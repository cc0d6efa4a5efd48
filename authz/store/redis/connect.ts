import { Cluster, type ClusterOptions } from 'ioredis';
import { assert } from '../../../ledger/assert.js';
import { StoreUnavailableError } from '../port.js';
import { redisCommandTimeoutMs, redisConnectTimeoutMs, redisReconnectDelayMaxMs, redisRetriesPerRequestMax } from '../redis-client.js';

/**
 * A Redis Cluster client with the bounds of redis-client.ts: a command without a reply within
 * the command timeout fails; nothing is queued while the cluster is not ready
 * (`enableOfflineQueue: false`); a command is retried at most `redisRetriesPerRequestMax` times
 * on a node's reconnect and follows at most `clusterRedirectionsMax` MOVED/ASK redirections;
 * reconnects back off up to `redisReconnectDelayMaxMs`; opening gives up after `clusterOpenTimeoutMs`.
 */

/** MOVED/ASK redirections one command follows at most (a resharding in progress). */
export const clusterRedirectionsMax = 16;
/** Wait before retrying a command after a failover or CLUSTERDOWN/TRYAGAIN, ms. */
export const clusterRetryDelayMs = 100;
/** How long a slots refresh (CLUSTER SLOTS) may take, ms. */
export const clusterSlotsRefreshTimeoutMs = 1_000;
/** How long opening a cluster (slots, a connection per node, the ready check) may take in all, ms. */
export const clusterOpenTimeoutMs = 10_000;

export interface ClusterConnectOptions {
  clusterNodes: readonly { host: string; port: number }[];
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export function clusterOptions(options: ClusterConnectOptions): ClusterOptions {
  return {
    lazyConnect: true,
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRedirections: clusterRedirectionsMax,
    retryDelayOnFailover: clusterRetryDelayMs,
    retryDelayOnClusterDown: clusterRetryDelayMs,
    retryDelayOnTryAgain: clusterRetryDelayMs,
    slotsRefreshTimeout: clusterSlotsRefreshTimeoutMs,
    clusterRetryStrategy: (times) => Math.min(times * 100, redisReconnectDelayMaxMs),
    redisOptions: {
      maxRetriesPerRequest: redisRetriesPerRequestMax,
      commandTimeout: options.commandTimeoutMs ?? redisCommandTimeoutMs,
      connectTimeout: options.connectTimeoutMs ?? redisConnectTimeoutMs,
    },
  };
}

/** Connects to a cluster, or throws `StoreUnavailableError` (and stops reconnecting). */
export async function openRedisCluster(options: ClusterConnectOptions): Promise<Cluster> {
  assert(options.clusterNodes.length > 0, 'a cluster needs at least one node');
  const cluster = new Cluster(
    options.clusterNodes.map((n) => ({ host: n.host, port: n.port })),
    clusterOptions(options),
  );
  // Failures surface on the commands that meet them; without a listener ioredis would log each.
  cluster.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready within ${clusterOpenTimeoutMs} ms`)), clusterOpenTimeoutMs);
  });
  try {
    await Promise.race([cluster.connect(), deadline]);
  } catch (err) {
    cluster.disconnect();
    const nodes = options.clusterNodes.map((n) => `${n.host}:${n.port}`).join(', ');
    throw new StoreUnavailableError(`redis cluster unreachable at ${nodes}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  return cluster;
}

/** Closes a cluster client politely, or drops it when the cluster is gone. */
export async function closeRedisCluster(cluster: Cluster): Promise<void> {
  if (cluster.status === 'end') return;
  try {
    await cluster.quit();
  } catch {
    cluster.disconnect();
  }
}
