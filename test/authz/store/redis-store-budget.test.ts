import test from 'ava';
import { Redis } from 'ioredis';
import type { PaymentStore } from '../../../authz/store/port.js';
import { RedisPaymentStore } from '../../../authz/store/redis/redis-store.js';
import { startRedis } from '../../support/redis.js';
import { confirmItem, createItem, draft } from './payment-store.contract.js';

/** Generous for a loaded test machine (many servers and clusters at once); the product default is 2 s. */
const commandTimeoutMs = 15_000;

/**
 * Commands redis-server executes per step, one item per call, script-internal commands included
 * (INFO commandstats before and after; INFO itself left out). The budgets of the adapter's
 * README: a whole authorization (create, confirm, commit) costs at most 16 commands.
 */
const budget = { create: 6, confirm: 6, commit: 4 } as const;

async function commandCounts(admin: Redis): Promise<Map<string, number>> {
  const stats = await admin.info('commandstats');
  const counts = new Map<string, number>();
  for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') counts.set(m[1]!, Number(m[2]));
  return counts;
}

/** The commands `run` made the server execute, by name. */
async function measure(admin: Redis, run: () => Promise<unknown>): Promise<{ total: number; by: Record<string, number> }> {
  const before = await commandCounts(admin);
  await run();
  const after = await commandCounts(admin);
  const by: Record<string, number> = {};
  let total = 0;
  for (const [name, calls] of after) {
    const delta = calls - (before.get(name) ?? 0);
    if (delta > 0) {
      by[name] = delta;
      total += delta;
    }
  }
  return { total, by };
}

/** One APP-channel CHALLENGED payment, no rate limits: create, the right code, the post's commit. */
async function authorize(store: PaymentStore, admin: Redis, t0: number) {
  const d = draft(t0);
  const create = await measure(admin, async () => {
    const [o] = await store.create([createItem(d)]);
    if (o?.outcome !== 'created') throw new Error(`create: ${o?.outcome}`);
  });
  let approved: Awaited<ReturnType<PaymentStore['confirm']>>[number] | undefined;
  const confirm = await measure(admin, async () => {
    [approved] = await store.confirm([confirmItem(d.payment, t0 + 1)]);
  });
  if (approved?.outcome !== 'satisfied' || approved.record.payment.state !== 'APPROVED') throw new Error(`confirm: ${approved?.outcome}`);
  const record = approved.record;
  const commit = await measure(admin, async () => {
    const [o] = await store.commit([{ paymentId: d.payment.id, expectVersion: record.version, payment: { ...record.payment, state: 'SUCCEEDED', updatedAtMs: t0 + 2 }, dueAtMs: null, nowMs: t0 + 2 }]);
    if (o?.outcome !== 'committed') throw new Error(`commit: ${o?.outcome}`);
  });
  return { create, confirm, commit };
}

test('a whole authorization on a single Redis: create ≤ 6, confirm ≤ 6, commit ≤ 4 commands (EVALSHA included)', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const store = await RedisPaymentStore.open({ url: server.url, commandTimeoutMs });
  t.teardown(() => store.close());
  const admin = new Redis(server.url);
  t.teardown(() => admin.disconnect());
  const t0 = Date.now();
  await authorize(store, admin, t0); // loads the scripts (NOSCRIPT, then EVAL)
  const counts = await authorize(store, admin, t0 + 10);
  t.log(`create ${JSON.stringify(counts.create)}`);
  t.log(`confirm ${JSON.stringify(counts.confirm)}`);
  t.log(`commit ${JSON.stringify(counts.commit)}`);
  for (const step of ['create', 'confirm', 'commit'] as const) {
    t.is(counts[step].by.evalsha, 1, `${step}: one script call`);
    t.true(counts[step].total <= budget[step], `${step}: ${counts[step].total} commands, budget ${budget[step]}`);
  }
  t.true(counts.create.total + counts.confirm.total + counts.commit.total <= budget.create + budget.confirm + budget.commit);
});
