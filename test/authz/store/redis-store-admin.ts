import type { ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { RedisPaymentStore, type RedisPaymentStoreOptions } from '../../../authz/store/redis/redis-store.js';
import { startRedis } from '../../support/redis.js';

/** Generous for a loaded test machine (many servers and clusters at once); the product default is 2 s. */
export const testCommandTimeoutMs = 15_000;

/**
 * A private redis-server, a payment store on it, and a second connection for the test to look
 * with (INFO, GET): all three stopped when the test ends. `options` go to the store.
 */
export async function storeWithAdmin(t: ExecutionContext, options: RedisPaymentStoreOptions = {}): Promise<{ store: RedisPaymentStore; admin: Redis }> {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const store = await RedisPaymentStore.open({ url: server.url, commandTimeoutMs: testCommandTimeoutMs, ...options });
  t.teardown(() => store.close());
  const admin = new Redis(server.url);
  t.teardown(() => admin.disconnect());
  return { store, admin };
}

/**
 * Calls per command redis-server has executed (INFO commandstats, script-internal commands
 * included), summed over `nodes` (a Cluster's, or one server); INFO itself left out, so that
 * measuring does not count as what is measured.
 */
export async function commandCalls(nodes: Redis | readonly Redis[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const node of Array.isArray(nodes) ? nodes : [nodes]) {
    for (const m of (await node.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (m[1] !== 'info') counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + Number(m[2]));
    }
  }
  return counts;
}

/** Script calls (EVALSHA and EVAL) redis-server has executed. */
export async function scriptCallCount(admin: Redis): Promise<number> {
  const calls = await commandCalls(admin);
  return (calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0);
}
