import { randomUUID } from 'node:crypto';
import test from 'ava';
import { Redis } from 'ioredis';
import type { PaymentStore } from '../../../authz/store/port.js';
import { RedisPaymentStore } from '../../../authz/store/redis/redis-store.js';
import { slotOf as clusterSlot } from '../../../authz/store/redis/slot.js';
import { type MonitoredCommand, monitorRedis } from '../../support/redis.js';
import { startRedisCluster } from '../../support/redis-cluster.js';
import { confirmItem, createItem, draft, hex64, keyTtlMs, leaseMs, newHexId, wrong } from './payment-store.contract.js';
import { scriptCallCount, storeWithAdmin, testCommandTimeoutMs } from './redis-store-admin.js';

/** Every kind of script call the store makes, batches of several payers (shards) and merchants. */
async function workout(store: PaymentStore, t0: number, each: (step: string) => Promise<void> = async () => {}): Promise<void> {
  const merchantId = newHexId();
  const drafts = Array.from({ length: 6 }, (_, i) => draft(t0, i < 4 ? { merchantId } : {}));
  const rates = [
    { key: `sms-${randomUUID()}`, limit: 10, windowMs: 60_000 },
    { key: `payer-${randomUUID()}`, limit: 10, windowMs: 60_000 },
  ];
  const items = drafts.map((d, i) => createItem(d, t0, i % 2 === 0 ? { rateLimits: rates } : {}));
  const retry = createItem(draft(t0, { merchantId }), t0 + 1, { key: items[1]!.key, fingerprint: items[1]!.fingerprint });
  await store.create([...items, retry]);
  await each('create');
  const [a, b, c, d] = drafts.map((x) => x.payment);
  const decline = { kind: 'decline', reason: 'BANK_DECLINED', detail: 'no' } as const;
  await store.confirm([confirmItem(a!, t0 + 1), confirmItem(b!, t0 + 1, { answer: wrong }), confirmItem(c!, t0 + 1, { answer: decline })]);
  await each('confirm');
  const [approved] = await store.get([a!.id]);
  const claim = { scope: 'admin', key: `cancel-${randomUUID()}`, fingerprint: hex64('cancel'), result: 'p', keyTtlMs };
  await store.commit([
    { paymentId: a!.id, expectVersion: approved!.version, payment: { ...approved!.payment, state: 'SUCCEEDED' }, dueAtMs: null, settle: true, nowMs: t0 + 2 },
    { paymentId: b!.id, expectVersion: 2, dueAtMs: t0 + 60_000, claim: { ...claim, key: `snooze-${randomUUID()}` }, nowMs: t0 + 2 },
    { paymentId: d!.id, expectVersion: 1, payment: { ...d!, state: 'CANCELLED' }, digests: {}, dueAtMs: null, claim, nowMs: t0 + 2 },
    { paymentId: c!.id, expectVersion: 9, dueAtMs: null, nowMs: t0 + 2 },
  ]);
  await each('commit');
  await store.guard([
    { payerId: a!.payerId, event: 'failure', nowMs: t0 + 3 },
    { payerId: b!.payerId, event: 'check', nowMs: t0 + 3 },
    { payerId: a!.payerId, event: 'success', nowMs: t0 + 3 },
  ]);
  await each('guard');
  await store.claimDue({ nowMs: t0 + 3_600_000, limit: 100, leaseMs });
  await each('claimDue');
  const key = { scope: 'enrollment', key: `enroll-${randomUUID()}`, fingerprint: hex64('enroll') };
  await store.claimKey({ ...key, value: 'v', leaseMs, keyTtlMs, nowMs: t0 });
  await store.completeKey({ ...key, result: 'done', keyTtlMs, nowMs: t0 + 1 });
  await store.releaseKey(key);
  const numberDigest = hex64(`pay number ${randomUUID()}`);
  await store.putPayNumber({ numberDigest, payerId: a!.payerId, ttlMs: 60_000, nowMs: t0 });
  await store.takePayNumber({ numberDigest, claimant: 'merchant', nowMs: t0 + 1 });
}

/** Script calls (EVAL/EVALSHA) with the commands they ran, from one server's MONITOR stream. */
function scriptCalls(commands: readonly MonitoredCommand[]): { declared: string[]; touched: string[] }[] {
  const calls: { declared: string[]; touched: string[] }[] = [];
  for (const { source, args } of commands) {
    const name = args[0]!.toUpperCase();
    if (source !== 'lua' && (name === 'EVALSHA' || name === 'EVAL')) calls.push({ declared: args.slice(3, 3 + Number(args[2])), touched: [] });
    else if (source === 'lua') calls.at(-1)!.touched.push(args[1]!);
  }
  return calls;
}

test('on a Redis Cluster every script call touches one slot: its declared keys and every key its commands use', async (t) => {
  const cluster = await startRedisCluster({ masters: 3 });
  t.teardown(() => cluster.stop());
  const seen = cluster.nodes.map(() => [] as MonitoredCommand[]);
  const marker = `end-${randomUUID()}`;
  const ended = cluster.nodes.map(() => {
    let resolve!: () => void;
    return { promise: new Promise<void>((r) => (resolve = r)), resolve: () => resolve() };
  });
  const monitors = await Promise.all(
    cluster.nodes.map((n, i) =>
      monitorRedis(n.port, (command) => {
        if (command.args[0]!.toUpperCase() === 'ECHO' && command.args[1] === marker) ended[i]!.resolve();
        else seen[i]!.push(command);
      }),
    ),
  );
  t.teardown(() => monitors.forEach((m) => m.stop()));
  const store = await RedisPaymentStore.open({ clusterNodes: cluster.nodes, commandTimeoutMs: testCommandTimeoutMs });
  t.teardown(() => store.close());
  await workout(store, Date.now());
  for (const n of cluster.nodes) {
    const direct = new Redis({ host: n.host, port: n.port });
    await direct.echo(marker);
    direct.disconnect();
  }
  await Promise.all(ended.map((e) => e.promise));

  const calls = seen.flatMap(scriptCalls);
  t.log(`${calls.length} script calls, ${calls.reduce((n, c) => n + c.touched.length, 0)} commands run by them`);
  t.true(calls.length >= 12, `${calls.length} script calls seen`);
  t.true(
    calls.some((c) => c.touched.some((k) => k.includes(':g:'))),
    'guards, keys derived in scripts, are among them',
  );
  for (const call of calls) {
    const slots = new Set([...call.declared, ...call.touched].map(clusterSlot));
    t.is(slots.size, 1, `one slot: ${[...call.declared, ...call.touched].join(' ')}`);
  }
});

test('on a single Redis each step is one script call for the whole batch', async (t) => {
  const { store, admin } = await storeWithAdmin(t);
  const scripts = (): Promise<number> => scriptCallCount(admin);
  await workout(store, Date.now()); // loads the scripts
  let before = await scripts();
  const perStep: Record<string, number> = {};
  await workout(store, Date.now(), async (step) => {
    const now = await scripts();
    perStep[step] = now - before;
    before = now;
  });
  t.deepEqual(perStep, { create: 1, confirm: 1, commit: 1, guard: 1, claimDue: 1 });
});
