import { Redis, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../ports.js';

/**
 * One place for how the Redis adapters connect and how failures surface. Bounds, all named:
 * a command that gets no reply within `redisCommandTimeoutMs` fails; commands are never queued
 * while disconnected (`enableOfflineQueue: false`) and are retried at most
 * `redisRetriesPerRequestMax` times across a reconnect; reconnects back off up to
 * `redisReconnectDelayMaxMs`. Every such failure reaches the caller as `StoreUnavailableError`.
 */
export const redisCommandTimeoutMs = 2_000;
export const redisConnectTimeoutMs = 2_000;
export const redisRetriesPerRequestMax = 1;
export const redisReconnectDelayMaxMs = 2_000;

export interface RedisConnectOptions {
  url: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export function redisOptions(options: RedisConnectOptions): RedisOptions {
  return {
    lazyConnect: true,
    // Commands issued in the same tick (concurrent RPCs, batch items) share one write: one round trip.
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: redisRetriesPerRequestMax,
    commandTimeout: options.commandTimeoutMs ?? redisCommandTimeoutMs,
    connectTimeout: options.connectTimeoutMs ?? redisConnectTimeoutMs,
    retryStrategy: (times) => Math.min(times * 100, redisReconnectDelayMaxMs),
  };
}

/** Connects, or throws `StoreUnavailableError` (and stops reconnecting) when Redis is unreachable. */
export async function openRedis(options: RedisConnectOptions): Promise<Redis> {
  const redis = new Redis(options.url, redisOptions(options));
  // Failures surface on the commands that meet them; without a listener ioredis would log each.
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new StoreUnavailableError(`redis unreachable at ${redactUrl(options.url)}`, { cause: err });
  }
  return redis;
}

/** Closes a connection politely, or drops it when Redis is gone. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}

/** Error replies that mean "Redis cannot serve right now" rather than a bug in the command. */
const unavailableReplies = /^(LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|BUSY|NOREPLICAS|OOM)\b/;

/**
 * Runs one Redis operation: connection loss, timeouts and "busy" replies become
 * `StoreUnavailableError` (original kept as `cause`); any other error reply is a programmer
 * error (a script or key type bug) and passes through unchanged.
 */
export async function callRedis<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw toStoreError(operation, err);
  }
}

export function toStoreError(operation: string, err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const isReply = err instanceof Error && err.name === 'ReplyError';
  if (isReply && !unavailableReplies.test(err.message)) return err;
  return new StoreUnavailableError(`redis ${operation} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** Results of a pipeline, throwing the first error (through `toStoreError`). */
export function pipelineResults(operation: string, replies: [Error | null, unknown][] | null): unknown[] {
  if (replies === null) throw new StoreUnavailableError(`redis ${operation} failed: pipeline discarded`);
  return replies.map(([err, value]) => {
    if (err !== null) throw toStoreError(operation, err);
    return value;
  });
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
