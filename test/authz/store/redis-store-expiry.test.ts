import { randomUUID } from 'node:crypto';
import test from 'ava';
import { Redis } from 'ioredis';
import { rateWindowOf } from '../../../authz/store/port.js';
import { storeKeysOf } from '../../../authz/store/redis/keys.js';
import { operationField } from '../../../authz/store/redis/record-codec.js';
import { entrySlackMsDefault, RedisPaymentStore } from '../../../authz/store/redis/redis-store.js';
import { type RedisServer, startRedis } from '../../support/redis.js';
import { confirmItem, createItem, draft, draftDeclined, hex64, keyTtlMs, strictLockout, wrong } from './payment-store.contract.js';

/** Generous for a loaded test machine (many servers and clusters at once); the product default is 2 s. */
const commandTimeoutMs = 15_000;

const keys = storeKeysOf('ps');
let started: Promise<RedisServer> | undefined;
const server = (): Promise<RedisServer> => (started ??= startRedis());
test.after.always(async () => {
  if (started !== undefined) await (await started).stop();
});

/** The store on the shared server, and a plain client to look at what it wrote; both closed after the test. */
async function storeAndClient(
  t: import('ava').ExecutionContext,
  options: { lockout?: typeof strictLockout; closedRetentionMs?: number },
): Promise<{ store: RedisPaymentStore; redis: Redis }> {
  const { url } = await server();
  const store = await RedisPaymentStore.open({ url, ...options, commandTimeoutMs });
  t.teardown(() => store.close());
  const redis = new Redis(url);
  t.teardown(() => redis.disconnect());
  return { store, redis };
}

/** Redis's TTL is the lifetime plus the slack: never shorter than the lifetime (while the test takes less than the slack). */
function within(t: import('ava').ExecutionContext, pttl: number, lifetimeMs: number, what: string): void {
  t.true(pttl > lifetimeMs && pttl <= lifetimeMs + entrySlackMsDefault, `${what}: PTTL ${pttl}, lifetime ${lifetimeMs} + slack ${entrySlackMsDefault}`);
}

test('entries Redis can reclaim carry a TTL of their lifetime plus the slack; records none', async (t) => {
  const { store, redis } = await storeAndClient(t, { lockout: strictLockout });
  const t0 = Date.now();
  const d = draft(t0);
  const rate = { key: `rate-${randomUUID()}`, limit: 5, windowMs: 60_000 };
  const item = createItem(d, t0, { rateLimits: [rate] });
  await store.create([item]);
  const confirm = confirmItem(d.payment, t0 + 1, { answer: wrong });
  await store.confirm([confirm]);
  const numberDigest = hex64(randomUUID());
  await store.putPayNumber({ numberDigest, payerId: d.payment.payerId, ttlMs: 120_000, nowMs: t0 });

  within(t, await redis.pttl(keys.create(d.payment.merchantId, item.scope, item.key)), keyTtlMs, 'create key');
  const windowEndMs = (rateWindowOf(t0, rate.windowMs) + 1) * rate.windowMs;
  within(t, await redis.pttl(keys.rate(rate.key, rateWindowOf(t0, rate.windowMs))), windowEndMs - t0, 'rate counter: to the end of its aligned window');
  const stored = await redis.hget(keys.record(d.payment.id), operationField(confirm.caller.scope, confirm.key));
  t.is(stored, `${confirm.fingerprint}:${t0 + 1 + keyTtlMs}:mismatch:4`, 'the confirm key is a field of the record, its expiry in its value');
  within(t, await redis.pttl(keys.guard(d.payment.payerId)), strictLockout.memoryMs, 'guard');
  within(t, await redis.pttl(keys.payNumber(numberDigest)), 120_000, 'pay number');
  t.is(await redis.pttl(keys.record(d.payment.id)), -1, 'records never expire by default');
});

/** The record has a TTL of at most the retention (counting down since it was set). */
async function retained(redis: Redis, paymentId: string, retentionMs: number): Promise<boolean> {
  const pttl = await redis.pttl(keys.record(paymentId));
  return pttl > 0 && pttl <= retentionMs;
}

test('closedRetentionMs: a record that is final and out of the due index expires after it', async (t) => {
  const retentionMs = 7 * 86_400_000;
  const { store, redis } = await storeAndClient(t, { closedRetentionMs: retentionMs });
  const t0 = Date.now();
  const open = draft(t0);
  const declined = { ...draftDeclined(t0), dueAtMs: undefined };
  await store.create([createItem(open), createItem(declined)]);
  t.is(await redis.pttl(keys.record(open.payment.id)), -1, 'a CHALLENGED payment stays');
  t.true(await retained(redis, declined.payment.id, retentionMs), 'created final and not due');
  const cancelled = { ...open.payment, state: 'CANCELLED' as const, updatedAtMs: t0 + 1 };
  await store.commit([{ paymentId: open.payment.id, expectVersion: 1, payment: cancelled, digests: {}, dueAtMs: t0 + 5, nowMs: t0 + 1 }]);
  t.is(await redis.pttl(keys.record(open.payment.id)), -1, 'final but still due (its void): stays');
  await store.commit([{ paymentId: open.payment.id, expectVersion: 2, dueAtMs: null, nowMs: t0 + 2 }]);
  t.true(await retained(redis, open.payment.id, retentionMs), 'out of the due index');
});

test('a record field this version does not know (a later version wrote it) is neither taken for an operation key nor lost: confirms answer, their keys are bounded as before, get reads the record', async (t) => {
  const { store, redis } = await storeAndClient(t, { lockout: strictLockout });
  const t0 = Date.now();
  const d = draft(t0);
  await store.create([createItem(d, t0)]);
  await redis.hset(keys.record(d.payment.id), 'zz', 'written by a later version');
  const [first] = await store.confirm([confirmItem(d.payment, t0 + 1, { answer: wrong })]);
  t.is(first!.outcome, 'mismatch');
  const [second] = await store.confirm([confirmItem(d.payment, t0 + 2)]);
  t.is(second!.outcome, 'satisfied');
  t.is(await redis.hget(keys.record(d.payment.id), 'zz'), 'written by a later version');
  const [read] = await store.get([d.payment.id]);
  t.is(read!.payment.state, 'APPROVED');
});
