import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { type CommitItem, type PaymentRecord, rateWindowOf, stepItemsMax, storeShards } from '../../../authz/store/port.js';
import { scriptArgumentsMax } from '../../../authz/store/redis/batch.js';
import { storeKeyPrefixDefault, storeKeysOf } from '../../../authz/store/redis/keys.js';
import { RedisPaymentStore } from '../../../authz/store/redis/redis-store.js';
import { startRedisCluster } from '../../support/redis-cluster.js';
import { confirmItem, createItem, draft, ids, newHexId, recordOf, windowStartAfterNow } from './payment-store.contract.js';
import { commandCalls, scriptCallCount, storeWithAdmin, testCommandTimeoutMs } from './redis-store-admin.js';

/**
 * Steps of `stepItemsMax` items: a create of 1000 SMS-channel payments with two rate limits each
 * was about 60 000 script arguments, where ioredis (6.0 and 5.11) failed ("Maximum call stack size exceeded",
 * an uncaught "results[i] is not iterable"). Each item is now its keys and ONE packed argument
 * (pack.ts): 8 000 arguments; the adapter still cuts a step into script calls of at most
 * `scriptArgumentsMax` arguments, sent together (the cut itself: batch-cut.test.ts).
 */
async function fullSteps(t: ExecutionContext, store: RedisPaymentStore, scripts: () => Promise<number>): Promise<Record<string, number>> {
  const t0 = Date.now();
  const merchantId = newHexId();
  const rates = [
    { key: `sms:number:${randomUUID()}`, limit: 10 * stepItemsMax, windowMs: 3_600_000 },
    { key: `sms:prefix:${randomUUID()}`, limit: 10 * stepItemsMax, windowMs: 3_600_000 },
  ];
  const drafts = Array.from({ length: stepItemsMax }, (_, i) => draft(t0, { merchantId, description: `payment ${i} ${'x'.repeat(200)}` }));
  const calls: Record<string, number> = {};
  let before = await scripts();
  const count = async (step: string): Promise<void> => {
    const now = await scripts();
    calls[step] = now - before;
    before = now;
  };

  const created = await store.create(drafts.map((d) => createItem(d, t0, { rateLimits: rates })));
  await count('create');
  t.deepEqual(
    created,
    drafts.map((d) => ({ outcome: 'created', record: recordOf(d) })),
  );

  const confirmed = await store.confirm(drafts.map((d) => confirmItem(d.payment, t0 + 1)));
  await count('confirm');
  t.deepEqual([...new Set(confirmed.map((o) => (o.outcome === 'satisfied' ? o.record.payment.state : o.outcome)))], ['APPROVED']);

  const approved = confirmed.map((o) => (o as { record: PaymentRecord }).record);
  const settles: CommitItem[] = approved.map((r) => ({
    paymentId: r.payment.id,
    expectVersion: r.version,
    payment: { ...r.payment, state: 'SUCCEEDED', updatedAtMs: t0 + 2 },
    dueAtMs: null,
    settle: true,
    nowMs: t0 + 2,
  }));
  const settled = await store.commit(settles);
  await count('commit');
  const expected = settles.map((s) => ({ payment: s.payment!, version: s.expectVersion + 1, digests: {}, dueAtMs: undefined }));
  t.deepEqual(
    settled,
    expected.map((record) => ({ outcome: 'committed', record })),
  );
  t.deepEqual(await store.get(drafts.map((d) => d.payment.id)), expected, 'every record as its outcome says');
  t.deepEqual(
    await store.list({ merchantId, limit: 1_000 }),
    [...expected.map((r) => r.payment)].sort((a, b) => (a.id < b.id ? -1 : 1)),
  );
  return calls;
}

test(`single Redis: a step of stepItemsMax items is one script call (each item its keys and one packed argument, below scriptArgumentsMax = ${scriptArgumentsMax})`, async (t) => {
  const { store, admin } = await storeWithAdmin(t);
  const calls = await fullSteps(t, store, () => scriptCallCount(admin));
  t.log(`script calls per step: ${JSON.stringify(calls)}`);
  // Loading the scripts adds one EVAL per call that met NOSCRIPT (a fresh server: each script's first call).
  t.deepEqual(calls, { create: 2, confirm: 2, commit: 2 });
});

test('Redis Cluster: steps of stepItemsMax items; the create phases write a counter or an index key their items share once per call', async (t) => {
  const cluster = await startRedisCluster({ masters: 3 });
  t.teardown(() => cluster.stop());
  const store = await RedisPaymentStore.open({ clusterNodes: cluster.nodes, commandTimeoutMs: testCommandTimeoutMs });
  t.teardown(() => store.close());
  const nodes = cluster.urls.map((url) => new Redis(url));
  t.teardown(() => {
    for (const node of nodes) node.disconnect();
  });
  const before = await commandCalls(nodes);
  await fullSteps(t, store, async () => 0);
  const after = await commandCalls(nodes);
  const delta = (name: string): number => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  t.log(`INCRBY ${delta('incrby')}, DECRBY ${delta('decrby')}, ZADD ${delta('zadd')} for ${stepItemsMax} creates`);
  t.is(delta('incrby'), 2, 'each of the two counters every item names: one INCRBY');
  t.is(delta('decrby'), 0);
  // The merchant index in commands of 500 entries, each payer's index, each shard's due index once (the steps after the create add none).
  t.true(delta('zadd') <= 2 + stepItemsMax + storeShards, `ZADD ${delta('zadd')}`);
});

/** The rate window of the stopped-call case, ms. */
const rateWindowMs = 3_600_000;

test('single Redis: a create call stopped by an error reply half way leaves the items before it whole (indexes, due entries, exact counts) and answers the error', async (t) => {
  // Every shard's due index in one claimDue (the contract's setting).
  const { store, admin } = await storeWithAdmin(t, { dueShardsPerClaim: storeShards });
  const t0 = windowStartAfterNow(rateWindowMs);
  const merchantId = newHexId();
  const shared = { key: `sms:prefix:${randomUUID()}`, limit: 100, windowMs: rateWindowMs };
  const drafts = Array.from({ length: 5 }, () => draft(t0, { merchantId }));
  // A foreign value where the third payment's record goes: its HSET answers WRONGTYPE.
  await admin.set(storeKeysOf(storeKeyPrefixDefault).record(drafts[2]!.payment.id), 'not a hash');

  await t.throwsAsync(store.create(drafts.map((d) => createItem(d, t0, { rateLimits: [shared] }))), { message: /^WRONGTYPE/ });

  t.deepEqual(await store.get(drafts.map((d) => d.payment.id).filter((_, i) => i !== 2)), [recordOf(drafts[0]!), recordOf(drafts[1]!), undefined, undefined]);
  for (const d of drafts.slice(0, 2)) t.deepEqual(ids(await store.list({ payerId: d.payment.payerId, limit: 10 })), [d.payment.id], 'in its payer index');
  const due = await store.claimDue({ nowMs: drafts[0]!.payment.expiresAtMs, limit: 100, leaseMs: 1_000 });
  t.deepEqual(ids(due.map((r) => r.payment)).sort(), [drafts[0]!.payment.id, drafts[1]!.payment.id].sort(), 'in the due index');
  const counter = await admin.get(storeKeysOf(storeKeyPrefixDefault).rate(shared.key, rateWindowOf(t0, rateWindowMs)));
  t.is(counter, '3', 'the items up to the stopped one counted, the reservations of the two after it returned');
});
