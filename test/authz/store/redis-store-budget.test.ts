import { randomUUID } from 'node:crypto';
import test from 'ava';
import type { Redis } from 'ioredis';
import type { Payment } from '../../../authz/model.js';
import { type PaymentRecord, type PaymentStore, type RateLimitHit, rateWindowOf, shardOfPayment } from '../../../authz/store/port.js';
import { storeKeyPrefixDefault, storeKeysOf } from '../../../authz/store/redis/keys.js';
import { confirmItem, createItem, draft, newHexId } from './payment-store.contract.js';
import { commandCalls, storeWithAdmin } from './redis-store-admin.js';

/**
 * Commands redis-server executes per step, one item per call, script-internal commands included
 * (INFO commandstats before and after; INFO itself left out). The budgets of the adapter's
 * README: a whole authorization (create, confirm, settle) costs at most 16 commands.
 */
const budget = {
  /** EVALSHA, SET NX GET PX (create key), HSET (record), ZADD ×3 (merchant, payer, due). */
  create: 6,
  /** `create` and an INCRBY per rate counter (3 for an SMS-channel create: number, payer, prefix), +1 (PEXPIRE) per counter whose window is new. */
  createPerRateLimit: 1,
  createPerNewWindow: 1,
  /** EVALSHA, HGETALL, GET (guard), HSET (record and the confirm key). */
  confirm: 4,
  /** EVALSHA, HSET, ZREM. */
  settle: 3,
  authorizationMax: 16,
} as const;

/** The SMS channel's code-rate limits (DESIGN §6): per number, per payer and per number prefix. */
const rateWindowMs = 3_600_000;
/** The counter key of `key`'s window at `nowMs` (keys.ts). */
const rateKey = (key: string, nowMs: number): string => storeKeysOf(storeKeyPrefixDefault).rate(key, rateWindowOf(nowMs, rateWindowMs));

interface Measured {
  total: number;
  by: Record<string, number>;
}

/** The commands `run` made the server execute, by name. */
async function measure(admin: Redis, run: () => Promise<unknown>): Promise<Measured> {
  const before = await commandCalls(admin);
  await run();
  const after = await commandCalls(admin);
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

/** One CHALLENGED payment: create (with `rateLimits`), the right code, the settle after the post. */
async function authorize(
  store: PaymentStore,
  admin: Redis,
  t0: number,
  rateLimits: readonly RateLimitHit[],
): Promise<{ create: Measured; confirm: Measured; settle: Measured }> {
  const d = draft(t0, rateLimits.length > 0 ? { channel: 'SMS', requiredFactors: ['SMS_OTP'] } : {});
  const create = await measure(admin, async () => {
    const [o] = await store.create([createItem(d, t0, { rateLimits })]);
    if (o?.outcome !== 'created') throw new Error(`create: ${o?.outcome}`);
  });
  let approved: PaymentRecord | undefined;
  const confirm = await measure(admin, async () => {
    const [o] = await store.confirm([confirmItem(d.payment, t0 + 1)]);
    if (o?.outcome !== 'satisfied' || o.record.payment.state !== 'APPROVED') throw new Error(`confirm: ${o?.outcome}`);
    approved = o.record;
  });
  const settle = await measure(admin, async () => {
    const [o] = await store.commit([
      {
        paymentId: d.payment.id,
        expectVersion: approved!.version,
        payment: { ...approved!.payment, state: 'SUCCEEDED', updatedAtMs: t0 + 2 },
        dueAtMs: null,
        settle: true,
        nowMs: t0 + 2,
      },
    ]);
    if (o?.outcome !== 'committed') throw new Error(`settle: ${o?.outcome}`);
  });
  return { create, confirm, settle };
}

test('a whole authorization on a single Redis: SMS 16 commands (17 when a payer opens a new rate window), APP 13 (EVALSHA included)', async (t) => {
  const { store, admin } = await storeWithAdmin(t);
  // Every time below is in one aligned rate window (port.ts RateLimitHit), ahead of the real clock.
  const t0 = (rateWindowOf(Date.now(), rateWindowMs) + 1) * rateWindowMs;
  const number = { key: `sms:number:${randomUUID()}`, limit: 1_000, windowMs: rateWindowMs };
  const payer = { key: `sms:payer:${randomUUID()}`, limit: 1_000, windowMs: rateWindowMs };
  const prefix = { key: `sms:prefix:${randomUUID()}`, limit: 1_000, windowMs: rateWindowMs };
  await authorize(store, admin, t0, [number, payer, prefix]); // loads the scripts (NOSCRIPT, then EVAL) and opens the windows

  const sms = await authorize(store, admin, t0 + 10, [number, payer, prefix]);
  const app = await authorize(store, admin, t0 + 20, []);
  const newWindow = await authorize(store, admin, t0 + 30, [{ ...number, key: `sms:number:${randomUUID()}` }, payer, prefix]);
  for (const [name, counts] of Object.entries({ sms, app, newWindow })) {
    for (const [step, m] of Object.entries(counts)) {
      t.log(`${name} ${step}: ${m.total} ${JSON.stringify(m.by)}`);
      t.is(m.by.evalsha, 1, `${name} ${step}: one script call`);
    }
  }
  const total = (m: typeof sms): number => m.create.total + m.confirm.total + m.settle.total;

  t.true(app.create.total <= budget.create, `create without rate limits: ${app.create.total}, budget ${budget.create}`);
  const smsCreate = budget.create + 3 * budget.createPerRateLimit;
  t.true(sms.create.total <= smsCreate, `create with 3 rate limits in existing windows: ${sms.create.total}, budget ${smsCreate}`);
  t.is(sms.create.by.incrby, 3, 'one INCRBY per counter');
  t.true(
    newWindow.create.total <= smsCreate + budget.createPerNewWindow,
    `create with a new window: ${newWindow.create.total}, budget ${smsCreate + budget.createPerNewWindow}`,
  );
  for (const counts of [sms, app, newWindow]) {
    t.true(counts.confirm.total <= budget.confirm, `confirm: ${counts.confirm.total}, budget ${budget.confirm}`);
    t.true(counts.settle.total <= budget.settle, `settle: ${counts.settle.total}, budget ${budget.settle}`);
  }
  t.true(total(sms) <= budget.authorizationMax, `SMS authorization: ${total(sms)}`);
  t.true(total(newWindow) <= budget.authorizationMax + budget.createPerNewWindow, `SMS authorization opening a window: ${total(newWindow)}`);
  t.true(total(app) <= 13, `APP authorization: ${total(app)}`);
});

/** Creates in the one call of the shared-counter case below, each with its own number and payer counters and the shared prefix's. */
const sharedCounterItems = 10;

test('a create call counts a counter its items share with one INCRBY and adds to an index they share with one ZADD, not one per item; a reservation a refusal leaves unused goes back (DECRBY)', async (t) => {
  const { store, admin } = await storeWithAdmin(t);
  const t0 = (rateWindowOf(Date.now(), rateWindowMs) + 1) * rateWindowMs;
  const prefix = { key: `sms:prefix:${randomUUID()}`, limit: 1_000, windowMs: rateWindowMs };
  const own = () => [
    { key: `sms:number:${randomUUID()}`, limit: 1_000, windowMs: rateWindowMs },
    { key: `sms:payer:${randomUUID()}`, limit: 1_000, windowMs: rateWindowMs },
  ];
  const sms: Partial<Payment> = { channel: 'SMS', requiredFactors: ['SMS_OTP'] };
  await store.create([createItem(draft(t0, sms), t0, { rateLimits: [prefix] })]); // loads the script, opens the prefix's window

  const merchantId = newHexId();
  const drafts = Array.from({ length: sharedCounterItems }, () => draft(t0, { ...sms, merchantId }));
  const items = drafts.map((d) => createItem(d, t0 + 1, { rateLimits: [...own(), prefix] }));
  const shared = await measure(admin, async () => {
    const outcomes = await store.create(items);
    if (!outcomes.every((o) => o.outcome === 'created')) throw new Error(`create: ${outcomes.map((o) => o.outcome)}`);
  });
  t.log(`${sharedCounterItems} creates: ${shared.total} ${JSON.stringify(shared.by)}`);
  t.is(shared.by.incrby, 2 * sharedCounterItems + 1, "each item's own two counters, and the prefix once");
  t.is(shared.by.decrby, undefined, 'every hit reserved was used');
  const dueShards = new Set(drafts.map((d) => shardOfPayment(d.payment.id))).size;
  t.is(shared.by.zadd, 1 + sharedCounterItems + dueShards, 'the merchant index once, each payer index, each due shard once');
  t.deepEqual(
    (await store.list({ merchantId, limit: 100 })).map((p) => p.id),
    drafts.map((d) => d.payment.id).sort(),
  );

  // A tight counter first: from the third item on it refuses, and the prefix's hits reserved for those items go back.
  const tight = { key: `sms:tight:${randomUUID()}`, limit: 2, windowMs: rateWindowMs };
  const refusing = await measure(admin, async () => {
    const outcomes = await store.create(Array.from({ length: sharedCounterItems }, () => createItem(draft(t0, sms), t0 + 2, { rateLimits: [tight, prefix] })));
    t.deepEqual(
      outcomes.map((o) => o.outcome),
      [...Array<string>(2).fill('created'), ...Array<string>(sharedCounterItems - 2).fill('refused')],
    );
  });
  t.log(`${sharedCounterItems} creates, 2 within the tight limit: ${refusing.total} ${JSON.stringify(refusing.by)}`);
  t.is(refusing.by.incrby, 2, 'the tight counter once and the prefix once');
  t.is(refusing.by.decrby, 1, "the prefix's unused reservation returned");
  t.is(await admin.get(rateKey(tight.key, t0)), String(sharedCounterItems), 'every refused hit counted');
  t.is(await admin.get(rateKey(prefix.key, t0)), String(1 + sharedCounterItems + 2), 'the prefix counted once per item that reached it');
});
