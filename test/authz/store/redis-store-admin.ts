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
