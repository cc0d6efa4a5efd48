import { createHash, randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { Factor, Payment } from '../../../authz/model.js';
import {
  type CommitItem,
  type ConfirmAnswer,
  type ConfirmItem,
  type ConfirmOutcome,
  type CreateItem,
  type KeyClaim,
  type LockoutPolicy,
  operationKeysPerPaymentMax,
  type PaymentRecord,
  type PaymentStore,
  pageMax,
  rateLimitsPerCreateMax,
  rateWindowOf,
  type StepCaller,
  shardOfPayer,
  stepItemsMax,
  withShard,
} from '../../../authz/store/port.js';
import { idToHex, newId } from '../../../ledger/ids.js';

/**
 * The payment store contract (authz/store/port.ts): every adapter (memory, journal, Redis, Redis
 * Cluster) runs it through `paymentStoreContract`.
 *
 * Time is the items' `nowMs`, never the wall clock: each test takes `t0 = Date.now()` and moves
 * forward from it (never backward of the real clock, never more than 48 h), so a Redis adapter may
 * also let Redis expire its keys at those absolute times. Nothing sleeps.
 *
 * Every entry with a lifetime (idempotency record, lease, lockout, failure streak, pay number,
 * challenge) made at `nowMs` with a lifetime of `xMs` is live while the later `nowMs` < made +
 * `xMs`, and gone from made + `xMs` on (as `nowMs ≥ expiresAtMs` expires a payment). Rate
 * windows are aligned to the clock instead (port.ts `RateLimitHit`): their tests place `nowMs`
 * around a multiple of `windowMs` (`windowStartAfterNow`). The boundaries are tested exactly, so
 * all adapters agree to the millisecond.
 *
 * Each test opens its own store (closed in teardown) and mints fresh ids, so tests run concurrently.
 */

export interface PaymentStoreFactory {
  /** A fresh, empty store. `lockout` overrides the lockout policy (tests use small ones). */
  open(options: { lockout?: LockoutPolicy }): Promise<PaymentStore>;
  /** Set when the backend cannot run here: the suite registers one skipped test with this reason and console.logs it. */
  skip?: string;
}

// ------------------------------------------------------------------ bounds the cases use

/** Idempotency records (24 h, as the services use). */
export const keyTtlMs = 86_400_000;
/** Attempts a payment gets again once one of its factors is satisfied. */
export const attemptsMax = 5;
/** Challenge lifetime: a drafted payment expires this long after it is drafted. */
export const challengeTtlMs = 300_000;
/** Sweeper and keyed-claim leases. */
export const leaseMs = 30_000;

/** Lockout tests: 3 failures, then 1 min, 2 min, then the 2.5 min cap; remembered 10 min. */
export const strictLockout: LockoutPolicy = Object.freeze({ failuresMax: 3, backoffBaseMs: 60_000, backoffMaxMs: 150_000, memoryMs: 600_000 });
/** Every other test: failures never lock (so a test about attempts is about attempts only). */
export const quietLockout: LockoutPolicy = Object.freeze({ failuresMax: 1_000, backoffBaseMs: 60_000, backoffMaxMs: 150_000, memoryMs: 600_000 });

// ------------------------------------------------------------------ ids, digests, drafts

/** sha256 of `text`, 64 lowercase hex digits: a stand-in for keyed digests and fingerprints. */
export function hex64(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A fresh payer, merchant or account id (32 lowercase hex digits). */
export function newHexId(): string {
  return idToHex(newId());
}

/** A fresh payment id carrying `payerId`'s shard. */
export function newPaymentIdFor(payerId: string): string {
  return idToHex(withShard(newId(), shardOfPayer(payerId)));
}

/** The digest a factor of a drafted payment expects. */
export function rightDigest(paymentId: string, factor: Factor): string {
  return hex64(`right answer ${paymentId} ${factor}`);
}

export const wrongDigest = hex64('a wrong answer');

export function right(p: Payment, factor: Factor): ConfirmAnswer {
  return { kind: 'digest', digest: rightDigest(p.id, factor) };
}

export const wrong: ConfirmAnswer = Object.freeze({ kind: 'digest', digest: wrongDigest });

/** A payment as a create would store it. */
export interface Draft {
  payment: Payment;
  digests: Partial<Record<Factor, string>>;
  dueAtMs: number | undefined;
}

/**
 * A valid payment drafted at `nowMs`: CHALLENGED for SECOND_CODE unless `overrides` say
 * otherwise, with the digests of its unsatisfied factors and due at its expiry (a CHALLENGED
 * one) or at once (any other). Its id carries its payer's shard.
 */
export function draft(nowMs: number, overrides: Partial<Payment> = {}): Draft {
  const payerId = overrides.payerId ?? newHexId();
  const id = overrides.id ?? newPaymentIdFor(payerId);
  const payment: Payment = {
    id,
    merchantId: newHexId(),
    payerId,
    payeeAccountId: newHexId(),
    payerAccountId: newHexId(),
    amount: 12_345n,
    currency: 'EUR',
    description: 'Coffee ☕ "quoted"',
    channel: 'APP',
    requiredFactors: ['SECOND_CODE'],
    satisfiedFactors: [],
    attemptsLeft: 5,
    state: 'CHALLENGED',
    createdAtMs: nowMs,
    updatedAtMs: nowMs,
    expiresAtMs: nowMs + challengeTtlMs,
    feeAmount: 25n,
    sealedFirstCode: `sealed-${hex64(id).slice(0, 16)}`,
    originPath: 'data',
    ...overrides,
  };
  const digests: Partial<Record<Factor, string>> = {};
  if (payment.state === 'CHALLENGED') {
    for (const f of payment.requiredFactors) if (!payment.satisfiedFactors.includes(f)) digests[f] = rightDigest(id, f);
  }
  return { payment, digests, dueAtMs: payment.state === 'CHALLENGED' ? payment.expiresAtMs : nowMs };
}

/** An APPROVED payment (no factor needed), due at once for its post. */
export function draftApproved(nowMs: number, overrides: Partial<Payment> = {}): Draft {
  const { sealedFirstCode: _, ...rest } = draft(nowMs, { requiredFactors: [], state: 'APPROVED', ...overrides }).payment;
  return { payment: rest, digests: {}, dueAtMs: nowMs };
}

/** A payment DECLINED by policy at create, due at once for its void. */
export function draftDeclined(nowMs: number, overrides: Partial<Payment> = {}): Draft {
  return draftApproved(nowMs, { state: 'DECLINED', declineReason: 'POLICY_DENIED', declineDetail: 'over the merchant limit', ...overrides });
}

export function recordOf(d: Draft, version = 1): PaymentRecord {
  return { payment: d.payment, version, digests: d.digests, dueAtMs: d.dueAtMs };
}

/** `p` without `field`: what a store keeps after clearing an optional field. */
export function without<K extends keyof Payment>(p: Payment, ...fields: K[]): Payment {
  const copy: Partial<Payment> = { ...p };
  for (const f of fields) delete copy[f];
  return copy as Payment;
}

// ------------------------------------------------------------------ items

export function createItem(d: Draft, nowMs: number = d.payment.createdAtMs, more: Partial<CreateItem> = {}): CreateItem {
  return {
    scope: d.payment.merchantId,
    key: `create-${d.payment.id}`,
    fingerprint: hex64(`create ${d.payment.id}`),
    payment: d.payment,
    digests: d.digests,
    dueAtMs: d.dueAtMs,
    rateLimits: [],
    keyTtlMs,
    nowMs,
    ...more,
  };
}

export interface ConfirmOptions {
  factor?: Factor;
  answer?: ConfirmAnswer;
  key?: string;
  fingerprint?: string;
  caller?: StepCaller;
  after?: Factor[];
  keyTtlMs?: number;
}

/** A confirm of `p` by its payer with a fresh key; by default the right answer to its first required factor. */
export function confirmItem(p: Payment, nowMs: number, o: ConfirmOptions = {}): ConfirmItem {
  const factor = o.factor ?? p.requiredFactors[0] ?? 'SECOND_CODE';
  const answer = o.answer ?? right(p, factor);
  return {
    paymentId: p.id,
    caller: o.caller ?? { scope: `payer-${p.payerId}`, payerId: p.payerId },
    key: o.key ?? `confirm-${randomUUID()}`,
    fingerprint: o.fingerprint ?? hex64(JSON.stringify({ paymentId: p.id, factor, answer })),
    factor,
    after: o.after ?? [],
    answer,
    attemptsMax,
    keyTtlMs: o.keyTtlMs ?? keyTtlMs,
    nowMs,
  };
}

/** Creates `drafts` (each at its own createdAtMs) and checks each was created. */
export async function seed(store: PaymentStore, ...drafts: Draft[]): Promise<void> {
  const outcomes = await store.create(drafts.map((d) => createItem(d)));
  outcomes.forEach((o, i) => {
    if (o.outcome !== 'created') throw new Error(`seeding payment ${drafts[i]!.payment.id}: ${o.outcome}`);
  });
}

async function confirmOne(store: PaymentStore, item: ConfirmItem): Promise<ConfirmOutcome> {
  const outcomes = await store.confirm([item]);
  if (outcomes.length !== 1) throw new Error(`confirm of one item answered ${outcomes.length} outcomes`);
  return outcomes[0]!;
}

async function getOne(store: PaymentStore, id: string): Promise<PaymentRecord | undefined> {
  return (await store.get([id]))[0];
}

/** The ids of payments, in their order. */
export const ids = (ps: readonly { id: string }[]): string[] => ps.map((p) => p.id);
const sorted = (xs: readonly string[]): string[] => [...xs].sort();

// ------------------------------------------------------------------ the suite

type Open = (lockout?: LockoutPolicy) => Promise<PaymentStore>;
type Body = (t: ExecutionContext, open: Open) => Promise<void>;
type Case = (title: string, body: Body) => void;

export function paymentStoreContract(name: string, factory: PaymentStoreFactory): void {
  if (factory.skip !== undefined) {
    console.log(`${name}: payment store contract skipped: ${factory.skip}`);
    test.skip(`${name} payment store contract (skipped: ${factory.skip})`, () => {});
    return;
  }
  const c: Case = (title, body) => {
    test(`${name} ${title}`, async (t) => {
      const open: Open = async (lockout = quietLockout) => {
        const store = await factory.open({ lockout });
        t.teardown(() => store.close());
        return store;
      };
      await body(t, open);
    });
  };
  createCases(c);
  rateLimitCases(c);
  confirmCases(c);
  refusalCases(c);
  replayCases(c);
  lockoutCases(c);
  commitCases(c);
  settleCases(c);
  operationKeyCases(c);
  claimDueCases(c);
  readCases(c);
  keyClaimCases(c);
  guardCases(c);
  payNumberCases(c);
  preconditionCases(c);
}

// ------------------------------------------------------------------ create

function createCases(c: Case): void {
  c('create: a new key stores version 1 with digests and due time; get returns it exactly', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, {
      amount: 2n ** 64n - 1n,
      feeAmount: 0n,
      requiredFactors: ['SMS_OTP', 'IVR_PASSWORD'],
      originSim: { iccid: '8931440400000000001', imsi: '234150000000001', msisdn: '+447700900001' },
      billableLineId: newHexId(),
      lineControlAccountId: newHexId(),
    });
    t.deepEqual(await store.create([createItem(d)]), [{ outcome: 'created', record: recordOf(d) }]);
    const missing = newPaymentIdFor(d.payment.payerId);
    t.deepEqual(await store.get([missing, d.payment.id, d.payment.id]), [undefined, recordOf(d), recordOf(d)]);
    const plain = draft(t0);
    await seed(store, plain);
    const read = (await getOne(store, plain.payment.id))!;
    t.deepEqual(read, recordOf(plain));
    t.false('declineReason' in read.payment, 'absent optional fields stay absent');
    t.deepEqual(await store.get([]), []);
  });

  c('create: records are copies, in and out', async (t, open) => {
    const store = await open();
    const d = draft(Date.now());
    const expected = recordOf(structuredClone(d));
    const item = createItem(d);
    const [out] = await store.create([item]);
    d.payment.satisfiedFactors.push('SECOND_CODE');
    d.payment.amount = 1n;
    d.digests.SECOND_CODE = wrongDigest;
    if (out?.outcome === 'created') out.record.payment.requiredFactors.push('SMS_OTP');
    const read = (await getOne(store, expected.payment.id))!;
    read.payment.state = 'SUCCEEDED';
    t.deepEqual(await getOne(store, expected.payment.id), expected);
    const next = structuredClone(expected.payment);
    const digests = { SECOND_CODE: hex64('a new code') };
    t.is(
      (await store.commit([{ paymentId: next.id, expectVersion: 1, payment: next, digests, nowMs: expected.payment.createdAtMs + 1 }]))[0]?.outcome,
      'committed',
    );
    next.requiredFactors.push('SMS_OTP');
    digests.SECOND_CODE = wrongDigest;
    t.deepEqual(await getOne(store, expected.payment.id), { ...expected, version: 2, digests: { SECOND_CODE: hex64('a new code') } });
  });

  c('create: the same key and fingerprint replay the current record, also after it changed', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    const item = createItem(d);
    await store.create([item]);
    t.deepEqual(await store.create([{ ...item, nowMs: t0 + 1_000 }]), [{ outcome: 'replayed', record: recordOf(d) }]);
    t.is((await confirmOne(store, confirmItem(d.payment, t0 + 2_000))).outcome, 'satisfied');
    const changed = (await getOne(store, d.payment.id))!;
    t.is(changed.version, 2);
    t.deepEqual(await store.create([{ ...item, nowMs: t0 + 3_000 }]), [{ outcome: 'replayed', record: changed }]);
  });

  c('create: the same key with another fingerprint is a conflict and writes nothing', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    const item = createItem(d);
    await store.create([item]);
    const other = draft(t0, { merchantId: d.payment.merchantId });
    const clash = createItem(other, t0 + 1, { key: item.key, fingerprint: hex64('another request') });
    t.deepEqual(await store.create([clash]), [{ outcome: 'conflict' }]);
    t.deepEqual(await store.get([d.payment.id, other.payment.id]), [recordOf(d), undefined]);
  });

  c('create: keys are scoped per merchant (the same key in another scope is a new payment)', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const a = draft(t0);
    const b = draft(t0);
    const itemA = createItem(a);
    t.deepEqual(await store.create([itemA]), [{ outcome: 'created', record: recordOf(a) }]);
    const itemB = createItem(b, t0, { key: itemA.key, fingerprint: itemA.fingerprint });
    t.is(itemB.scope, b.payment.merchantId);
    t.deepEqual(await store.create([itemB]), [{ outcome: 'created', record: recordOf(b) }]);
    t.deepEqual(await store.get([a.payment.id, b.payment.id]), [recordOf(a), recordOf(b)]);
  });

  c('create: the key expires after keyTtlMs (then the same key makes a new payment)', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const ttlMs = 60_000;
    const first = draft(t0);
    const item = createItem(first, t0, { keyTtlMs: ttlMs });
    await store.create([item]);
    t.deepEqual(await store.create([{ ...item, nowMs: t0 + ttlMs - 1 }]), [{ outcome: 'replayed', record: recordOf(first) }]);
    const second = draft(t0 + ttlMs, { merchantId: first.payment.merchantId, payerId: first.payment.payerId });
    const again = createItem(second, t0 + ttlMs, { key: item.key, fingerprint: item.fingerprint, keyTtlMs: ttlMs });
    t.deepEqual(await store.create([again]), [{ outcome: 'created', record: recordOf(second) }]);
    t.deepEqual(await store.create([{ ...again, nowMs: t0 + ttlMs + 1 }]), [{ outcome: 'replayed', record: recordOf(second) }]);
    t.deepEqual(await store.get([first.payment.id, second.payment.id]), [recordOf(first), recordOf(second)]);
  });

  c('create: DECLINED and APPROVED new payments are stored as given', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const declined = draftDeclined(t0);
    const approved = draftApproved(t0, { feeAmount: 0n });
    t.deepEqual(await store.create([createItem(declined), createItem(approved)]), [
      { outcome: 'created', record: recordOf(declined) },
      { outcome: 'created', record: recordOf(approved) },
    ]);
    t.deepEqual(await store.get([declined.payment.id, approved.payment.id]), [recordOf(declined), recordOf(approved)]);
    t.false('sealedFirstCode' in (await getOne(store, approved.payment.id))!.payment);
  });

  c('create: items of one call apply in order (the same key twice makes one payment)', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const a = draft(t0);
    const b = draft(t0, { merchantId: a.payment.merchantId });
    const c2 = draft(t0, { merchantId: a.payment.merchantId });
    const first = createItem(a);
    const same = createItem(b, t0, { key: first.key, fingerprint: first.fingerprint });
    const clash = createItem(c2, t0, { key: first.key, fingerprint: hex64('another request') });
    t.deepEqual(await store.create([first, same, clash]), [
      { outcome: 'created', record: recordOf(a) },
      { outcome: 'replayed', record: recordOf(a) },
      { outcome: 'conflict' },
    ]);
    t.deepEqual(await store.get([b.payment.id, c2.payment.id]), [undefined, undefined]);
    t.deepEqual(ids(await store.list({ merchantId: a.payment.merchantId, limit: 10 })), [a.payment.id]);
  });
}

// ------------------------------------------------------------------ create: rate limits

/**
 * The start of an aligned rate window (port.ts `RateLimitHit`) at least one window after now:
 * every time in [start - windowMs, start + windowMs] is ahead of the real clock.
 */
export function windowStartAfterNow(windowMs: number): number {
  return (rateWindowOf(Date.now(), windowMs) + 2) * windowMs;
}

function rateLimitCases(c: Case): void {
  const windowMs = 60_000;

  c('create rate limits: only new keys count; the first over refuses rate:<index> and writes no record', async (t, open) => {
    const store = await open();
    const t0 = windowStartAfterNow(windowMs);
    const merchantId = newHexId();
    const limits = [{ key: `rate-${randomUUID()}`, limit: 2, windowMs }];
    const [a, b, x] = [draft(t0, { merchantId }), draft(t0, { merchantId }), draft(t0, { merchantId })];
    const itemA = createItem(a, t0, { rateLimits: limits });
    t.deepEqual(await store.create([itemA]), [{ outcome: 'created', record: recordOf(a) }]);
    t.deepEqual(await store.create([itemA, itemA]), [
      { outcome: 'replayed', record: recordOf(a) },
      { outcome: 'replayed', record: recordOf(a) },
    ]);
    t.deepEqual(await store.create([createItem(b, t0 + 1, { rateLimits: limits })]), [{ outcome: 'created', record: recordOf(b) }]);
    t.deepEqual(await store.create([createItem(x, t0 + 2, { rateLimits: limits })]), [{ outcome: 'refused', refusal: 'rate:0' }]);
    t.is(await getOne(store, x.payment.id), undefined);
    t.deepEqual(ids(await store.list({ merchantId, limit: 10 })), sorted([a.payment.id, b.payment.id]));
    t.deepEqual(await store.list({ payerId: x.payment.payerId, limit: 10 }), []);
  });

  c('create rate limits: counted in order, earlier ones counted even when a later one refuses, later ones not', async (t, open) => {
    const store = await open();
    const t0 = windowStartAfterNow(windowMs);
    const wide = { key: `rate-wide-${randomUUID()}`, limit: 3, windowMs };
    const narrow = { key: `rate-narrow-${randomUUID()}`, limit: 1, windowMs };
    const [a, b, c2, d] = [draft(t0), draft(t0), draft(t0), draft(t0)];
    t.is((await store.create([createItem(a, t0, { rateLimits: [wide, narrow] })]))[0]?.outcome, 'created'); // wide 1, narrow 1
    t.deepEqual(await store.create([createItem(b, t0, { rateLimits: [wide, narrow] })]), [{ outcome: 'refused', refusal: 'rate:1' }]); // wide 2, narrow 2
    t.deepEqual(await store.create([createItem(draft(t0), t0, { rateLimits: [narrow, wide] })]), [{ outcome: 'refused', refusal: 'rate:0' }]); // narrow 3, wide not counted
    t.deepEqual(await store.create([createItem(c2, t0, { rateLimits: [wide] })]), [{ outcome: 'created', record: recordOf(c2) }]); // wide 3
    t.deepEqual(
      await store.create([createItem(d, t0, { rateLimits: [wide] })]),
      [{ outcome: 'refused', refusal: 'rate:0' }],
      'the refused create still counted wide',
    ); // wide 4
    t.deepEqual(await store.get([b.payment.id, d.payment.id]), [undefined, undefined]);
  });

  c(
    'create rate limits: items of one call sharing a counter count in item order; replays and conflicts count nothing; the next call sees the exact count',
    async (t, open) => {
      const store = await open();
      const t0 = windowStartAfterNow(windowMs);
      const key = `rate-${randomUUID()}`;
      const shared = (limit: number) => [{ key, limit, windowMs }];
      const a = draft(t0);
      const itemA = createItem(a, t0, { rateLimits: shared(4) });
      t.is((await store.create([itemA]))[0]?.outcome, 'created'); // 1
      const [b, c2, d, e, f] = [draft(t0), draft(t0), draft(t0), draft(t0), draft(t0)];
      const outcomes = await store.create([
        itemA,
        createItem(b, t0 + 1, { rateLimits: shared(4) }),
        { ...itemA, fingerprint: hex64('another request') },
        ...[c2, d, e, f].map((x) => createItem(x, t0 + 1, { rateLimits: shared(4) })),
      ]);
      t.deepEqual(
        outcomes.map((o) => (o.outcome === 'refused' ? `refused ${o.refusal}` : o.outcome)),
        ['replayed', 'created', 'conflict', 'created', 'created', 'refused rate:0', 'refused rate:0'],
      ); // 2, 3, 4, 5, 6
      t.deepEqual(await store.get([e.payment.id, f.payment.id]), [undefined, undefined]);
      const [g, h] = [draft(t0), draft(t0)];
      t.deepEqual(
        (await store.create([createItem(g, t0 + 2, { rateLimits: shared(7) }), createItem(h, t0 + 2, { rateLimits: shared(7) })])).map((o) => o.outcome),
        ['created', 'refused'],
        'the count was 6: 7 is within the limit, 8 over',
      );
    },
  );

  c('create rate limits: a refused hit counts too (a higher limit later in the window sees it)', async (t, open) => {
    const store = await open();
    const t0 = windowStartAfterNow(windowMs);
    const key = `rate-${randomUUID()}`;
    const strict = [{ key, limit: 1, windowMs }];
    t.is((await store.create([createItem(draft(t0), t0, { rateLimits: strict })]))[0]?.outcome, 'created'); // 1
    t.deepEqual(
      (await store.create([createItem(draft(t0), t0 + 1, { rateLimits: strict }), createItem(draft(t0), t0 + 2, { rateLimits: strict })])).map(
        (o) => o.outcome,
      ),
      ['refused', 'refused'],
    ); // 2, 3
    const looser = [{ key, limit: 3, windowMs }];
    t.deepEqual(
      await store.create([createItem(draft(t0), t0 + 3, { rateLimits: looser })]),
      [{ outcome: 'refused', refusal: 'rate:0' }],
      'the count is 4: the refused hits counted',
    );
    const loosest = [{ key, limit: 5, windowMs }];
    t.is((await store.create([createItem(draft(t0), t0 + 4, { rateLimits: loosest })]))[0]?.outcome, 'created'); // 5
  });

  c('create rate limits: windows are aligned to the clock: the count starts again at the next multiple of windowMs', async (t, open) => {
    const store = await open();
    const start = windowStartAfterNow(windowMs);
    const limits = [{ key: `rate-${randomUUID()}`, limit: 1, windowMs }];
    const [a, refused, late, fresh, next] = [draft(start), draft(start), draft(start), draft(start), draft(start)];
    const first = start - 1; // the last millisecond of the window before `start`
    t.is((await store.create([createItem(a, first - windowMs / 2, { rateLimits: limits })]))[0]?.outcome, 'created');
    const refusedItem = createItem(refused, first - 10, { rateLimits: limits });
    t.deepEqual(await store.create([refusedItem]), [{ outcome: 'refused', refusal: 'rate:0' }]);
    t.deepEqual(await store.create([createItem(late, first, { rateLimits: limits })]), [{ outcome: 'refused', refusal: 'rate:0' }]);
    t.deepEqual(await store.create([{ ...refusedItem, nowMs: start }]), [{ outcome: 'refused', refusal: 'rate:0' }], 'the key keeps its refusal');
    t.deepEqual(
      await store.create([createItem(fresh, start, { rateLimits: limits })]),
      [{ outcome: 'created', record: recordOf(fresh) }],
      'half a window after the first hit: a new window',
    );
    t.deepEqual(await store.create([createItem(next, start + windowMs - 1, { rateLimits: limits })]), [{ outcome: 'refused', refusal: 'rate:0' }]);
    t.deepEqual(await store.get([refused.payment.id, late.payment.id, next.payment.id]), [undefined, undefined, undefined]);
  });

  c('create rate limits: the same key with another fingerprint after a refusal is a conflict', async (t, open) => {
    const store = await open();
    const t0 = windowStartAfterNow(windowMs);
    const limits = [{ key: `rate-${randomUUID()}`, limit: 1, windowMs }];
    t.is((await store.create([createItem(draft(t0), t0, { rateLimits: limits })]))[0]?.outcome, 'created');
    const refused = createItem(draft(t0), t0, { rateLimits: limits });
    t.deepEqual(await store.create([refused]), [{ outcome: 'refused', refusal: 'rate:0' }]);
    t.deepEqual(await store.create([{ ...refused, fingerprint: hex64('another request') }]), [{ outcome: 'conflict' }]);
  });
}

// ------------------------------------------------------------------ confirm

function confirmCases(c: Case): void {
  c('confirm: another merchant or payer does not see the payment, and nothing is stored under the key', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const p = d.payment;
    const asService = (caller: Omit<StepCaller, 'scope'>): ConfirmOptions => ({ key: 'confirm-once', caller: { scope: 'service', ...caller } });
    t.deepEqual(await store.confirm([confirmItem(p, t0 + 1, asService({ merchantId: newHexId() }))]), [{ outcome: 'not_found' }]);
    t.deepEqual(await store.confirm([confirmItem(p, t0 + 2, asService({ payerId: newHexId() }))]), [{ outcome: 'not_found' }]);
    t.deepEqual(await store.confirm([confirmItem(p, t0 + 3, asService({ merchantId: p.merchantId, payerId: newHexId() }))]), [{ outcome: 'not_found' }]);
    const ghost = draft(t0).payment;
    t.deepEqual(await store.confirm([confirmItem(ghost, t0 + 4)]), [{ outcome: 'not_found' }]);
    t.deepEqual(await getOne(store, p.id), recordOf(d));
    const out = await confirmOne(store, confirmItem(p, t0 + 5, asService({ merchantId: p.merchantId, payerId: p.payerId })));
    t.is(out.outcome, 'satisfied', 'the key was not used by the invisible attempts');
  });

  c('confirm: the right digest of the last factor approves: version +1, digest dropped, code cleared, due time unchanged', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, { attemptsLeft: 3 });
    await seed(store, d);
    const now = t0 + 10;
    const approved: PaymentRecord = {
      payment: { ...without(d.payment, 'sealedFirstCode'), state: 'APPROVED', satisfiedFactors: ['SECOND_CODE'], attemptsLeft: attemptsMax, updatedAtMs: now },
      version: 2,
      digests: {},
      dueAtMs: d.dueAtMs,
    };
    t.deepEqual(await store.confirm([confirmItem(d.payment, now)]), [{ outcome: 'satisfied', record: approved }]);
    t.deepEqual(await getOne(store, d.payment.id), approved);
  });

  c('confirm: a first factor of several is satisfied: still CHALLENGED, attempts back to attemptsMax', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, { requiredFactors: ['SMS_OTP', 'IVR_PASSWORD'] });
    await seed(store, d);
    const p = d.payment;
    t.is((await confirmOne(store, confirmItem(p, t0 + 1, { factor: 'SMS_OTP', answer: wrong }))).outcome, 'mismatch');
    const half: PaymentRecord = {
      payment: { ...p, satisfiedFactors: ['SMS_OTP'], attemptsLeft: attemptsMax, updatedAtMs: t0 + 2 },
      version: 3,
      digests: { IVR_PASSWORD: rightDigest(p.id, 'IVR_PASSWORD') },
      dueAtMs: d.dueAtMs,
    };
    t.deepEqual(await store.confirm([confirmItem(p, t0 + 2, { factor: 'SMS_OTP' })]), [{ outcome: 'satisfied', record: half }]);
    t.deepEqual(await getOne(store, p.id), half);
    const done: PaymentRecord = {
      payment: { ...without(half.payment, 'sealedFirstCode'), state: 'APPROVED', satisfiedFactors: ['SMS_OTP', 'IVR_PASSWORD'], updatedAtMs: t0 + 3 },
      version: 4,
      digests: {},
      dueAtMs: d.dueAtMs,
    };
    t.deepEqual(await store.confirm([confirmItem(p, t0 + 3, { factor: 'IVR_PASSWORD', after: ['SMS_OTP'] })]), [{ outcome: 'satisfied', record: done }]);
  });

  c('confirm: a wrong digest is a mismatch counting down; the last attempt exhausts and declines', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, { attemptsLeft: 3 });
    await seed(store, d);
    const p = d.payment;
    for (const [i, left] of [2, 1].entries()) {
      const now = t0 + 1 + i;
      const expected: PaymentRecord = { payment: { ...p, attemptsLeft: left, updatedAtMs: now }, version: 2 + i, digests: d.digests, dueAtMs: d.dueAtMs };
      t.deepEqual(await store.confirm([confirmItem(p, now, { answer: wrong })]), [{ outcome: 'mismatch', attemptsLeft: left, record: expected }]);
      t.deepEqual(await getOne(store, p.id), expected);
    }
    const out = await confirmOne(store, confirmItem(p, t0 + 9, { answer: wrong }));
    const record = (await getOne(store, p.id))!;
    t.deepEqual(out, { outcome: 'exhausted', record });
    t.is(typeof record.payment.declineDetail, 'string');
    t.deepEqual(record, {
      payment: {
        ...without(p, 'sealedFirstCode'),
        state: 'DECLINED',
        declineReason: 'ATTEMPTS_EXHAUSTED',
        declineDetail: record.payment.declineDetail!,
        attemptsLeft: 0,
        updatedAtMs: t0 + 9,
      },
      version: 4,
      digests: {},
      dueAtMs: d.dueAtMs,
    });
    t.deepEqual((await confirmOne(store, confirmItem(p, t0 + 10))).outcome, 'refused', 'the right answer comes too late');
  });

  c('confirm: a `wrong` answer counts like a wrong digest', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, { requiredFactors: ['AUTH_PASSWORD'], attemptsLeft: 2 });
    await seed(store, d);
    const out = await confirmOne(store, confirmItem(d.payment, t0 + 1, { answer: { kind: 'wrong' } }));
    t.deepEqual(out, { outcome: 'mismatch', attemptsLeft: 1, record: { ...recordOf(d, 2), payment: { ...d.payment, attemptsLeft: 1, updatedAtMs: t0 + 1 } } });
    t.is((await confirmOne(store, confirmItem(d.payment, t0 + 2, { answer: { kind: 'wrong' } }))).outcome, 'exhausted');
    t.is((await getOne(store, d.payment.id))!.payment.state, 'DECLINED');
  });

  c('confirm: accept satisfies the factor and records the bank authorization code', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const [coded, plain] = [draft(t0, { requiredFactors: ['BANK_CARD_PIN'] }), draft(t0, { requiredFactors: ['BANK_CARD_PIN'] })];
    await seed(store, coded, plain);
    const approved = (d: Draft, extra: Partial<Payment>): PaymentRecord => ({
      payment: {
        ...without(d.payment, 'sealedFirstCode'),
        state: 'APPROVED',
        satisfiedFactors: ['BANK_CARD_PIN'],
        attemptsLeft: attemptsMax,
        updatedAtMs: t0 + 1,
        ...extra,
      },
      version: 2,
      digests: {},
      dueAtMs: d.dueAtMs,
    });
    const accept = (code?: string): ConfirmAnswer => (code === undefined ? { kind: 'accept' } : { kind: 'accept', bankAuthorizationCode: code });
    t.deepEqual(
      await store.confirm([confirmItem(coded.payment, t0 + 1, { answer: accept('A1B2C3') }), confirmItem(plain.payment, t0 + 1, { answer: accept() })]),
      [
        { outcome: 'satisfied', record: approved(coded, { bankAuthorizationCode: 'A1B2C3' }) },
        { outcome: 'satisfied', record: approved(plain, {}) },
      ],
    );
    t.deepEqual(await store.get([coded.payment.id, plain.payment.id]), [approved(coded, { bankAuthorizationCode: 'A1B2C3' }), approved(plain, {})]);
  });

  c('confirm: a decline answer declines with its reason and detail', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, { requiredFactors: ['PAIRED_DEVICE'] });
    await seed(store, d);
    const declined: PaymentRecord = {
      payment: {
        ...without(d.payment, 'sealedFirstCode'),
        state: 'DECLINED',
        declineReason: 'DEVICE_MISMATCH',
        declineDetail: 'auxiliary SIM on the main path',
        updatedAtMs: t0 + 1,
      },
      version: 2,
      digests: {},
      dueAtMs: d.dueAtMs,
    };
    const answer: ConfirmAnswer = { kind: 'decline', reason: 'DEVICE_MISMATCH', detail: 'auxiliary SIM on the main path' };
    t.deepEqual(await store.confirm([confirmItem(d.payment, t0 + 1, { answer })]), [{ outcome: 'declined', record: declined }]);
    t.deepEqual(await getOne(store, d.payment.id), declined);
  });

  c('confirm: at expiresAtMs the payment expires (EXPIRED, challenges gone, due time unchanged)', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const p = d.payment;
    t.is((await confirmOne(store, confirmItem(p, p.expiresAtMs - 1, { answer: wrong }))).outcome, 'mismatch', 'a millisecond before it is still live');
    const expired: PaymentRecord = {
      payment: { ...without(p, 'sealedFirstCode'), state: 'EXPIRED', attemptsLeft: 4, updatedAtMs: p.expiresAtMs },
      version: 3,
      digests: {},
      dueAtMs: d.dueAtMs,
    };
    t.deepEqual(await store.confirm([confirmItem(p, p.expiresAtMs)]), [{ outcome: 'expired', record: expired }]);
    t.deepEqual(await getOne(store, p.id), expired);
  });

  c('confirm: items of one call apply in order', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, { attemptsLeft: 2 });
    await seed(store, d);
    const outs = await store.confirm([
      confirmItem(d.payment, t0 + 1, { answer: wrong }),
      confirmItem(d.payment, t0 + 1, { answer: wrong }),
      confirmItem(d.payment, t0 + 1),
    ]);
    t.deepEqual(
      outs.map((o) => o.outcome),
      ['mismatch', 'exhausted', 'refused'],
    );
    t.deepEqual(outs[2], { outcome: 'refused', refusal: 'state:DECLINED', record: (await getOne(store, d.payment.id))! });
  });
}

// ------------------------------------------------------------------ confirm: refusals

function refusalCases(c: Case): void {
  c('confirm: a payment neither CHALLENGED nor APPROVED is refused state:<STATE>, nothing changes', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const declined = draftDeclined(t0);
    const challenged = draft(t0);
    await seed(store, declined, challenged);
    t.deepEqual(await store.confirm([confirmItem(declined.payment, t0 + 1, { factor: 'SECOND_CODE' })]), [
      { outcome: 'refused', refusal: 'state:DECLINED', record: recordOf(declined) },
    ]);
    const succeeded = {
      ...without(challenged.payment, 'sealedFirstCode'),
      state: 'SUCCEEDED' as const,
      satisfiedFactors: ['SECOND_CODE' as const],
      updatedAtMs: t0 + 2,
    };
    t.is(
      (await store.commit([{ paymentId: succeeded.id, expectVersion: 1, payment: succeeded, digests: {}, dueAtMs: null, nowMs: t0 + 2 }]))[0]?.outcome,
      'committed',
    );
    const record = (await getOne(store, succeeded.id))!;
    t.deepEqual(await store.confirm([confirmItem(challenged.payment, t0 + 3)]), [{ outcome: 'refused', refusal: 'state:SUCCEEDED', record }]);
    t.deepEqual(await store.get([declined.payment.id, succeeded.id]), [recordOf(declined), record]);
  });

  c('confirm: an APPROVED payment answers approved and changes nothing', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draftApproved(t0);
    const c2 = draft(t0);
    await seed(store, d, c2);
    t.deepEqual(await store.confirm([confirmItem(d.payment, t0 + 1, { factor: 'SECOND_CODE', answer: wrong })]), [
      { outcome: 'approved', record: recordOf(d) },
    ]);
    t.is((await confirmOne(store, confirmItem(c2.payment, t0 + 2))).outcome, 'satisfied');
    const approved = (await getOne(store, c2.payment.id))!;
    t.deepEqual(await store.confirm([confirmItem(c2.payment, t0 + 3, { answer: wrong })]), [{ outcome: 'approved', record: approved }]);
    t.deepEqual(await store.get([d.payment.id, c2.payment.id]), [recordOf(d), approved]);
  });

  c('confirm: a factor not required or already satisfied is refused factor', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, { requiredFactors: ['SMS_OTP', 'IVR_PASSWORD'] });
    await seed(store, d);
    const p = d.payment;
    t.deepEqual(await store.confirm([confirmItem(p, t0 + 1, { factor: 'SECOND_CODE', answer: wrong })]), [
      { outcome: 'refused', refusal: 'factor', record: recordOf(d) },
    ]);
    t.is((await confirmOne(store, confirmItem(p, t0 + 2, { factor: 'SMS_OTP' }))).outcome, 'satisfied');
    const half = (await getOne(store, p.id))!;
    t.deepEqual(await store.confirm([confirmItem(p, t0 + 3, { factor: 'SMS_OTP', answer: wrong })]), [{ outcome: 'refused', refusal: 'factor', record: half }]);
    t.deepEqual(await getOne(store, p.id), half, 'no attempt counted');
  });

  c('confirm: a factor whose required `after` factor is unsatisfied is refused order; `after` factors not required do not matter', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const both = draft(t0, { requiredFactors: ['SMS_OTP', 'IVR_PASSWORD'] });
    const ivrOnly = draft(t0, { requiredFactors: ['IVR_PASSWORD'] });
    await seed(store, both, ivrOnly);
    const ivr: ConfirmOptions = { factor: 'IVR_PASSWORD', after: ['SMS_OTP'] };
    t.deepEqual(await store.confirm([confirmItem(both.payment, t0 + 1, ivr)]), [{ outcome: 'refused', refusal: 'order', record: recordOf(both) }]);
    t.is((await confirmOne(store, confirmItem(ivrOnly.payment, t0 + 1, ivr))).outcome, 'satisfied');
    t.is((await confirmOne(store, confirmItem(both.payment, t0 + 2, { factor: 'SMS_OTP' }))).outcome, 'satisfied');
    const out = await confirmOne(store, confirmItem(both.payment, t0 + 3, ivr));
    t.is(out.outcome, 'satisfied');
    t.is((await getOne(store, both.payment.id))!.payment.state, 'APPROVED');
  });
}

// ------------------------------------------------------------------ confirm: idempotency

interface ReplayCase {
  /** What the first confirm answers, and the result a replay returns. */
  outcome: ConfirmOutcome['outcome'];
  result: string;
  /** Seeds what it needs (payments drafted at `t0`) and returns the confirm to replay. */
  setup(store: PaymentStore, t0: number): Promise<ConfirmItem>;
}

const replayTable: ReplayCase[] = [
  { outcome: 'satisfied', result: 'p', setup: async (store, t0) => seeded(store, draft(t0), (p) => confirmItem(p, t0 + 1)) },
  { outcome: 'mismatch', result: 'mismatch:4', setup: async (store, t0) => seeded(store, draft(t0), (p) => confirmItem(p, t0 + 1, { answer: wrong })) },
  {
    outcome: 'exhausted',
    result: 'exhausted',
    setup: async (store, t0) => seeded(store, draft(t0, { attemptsLeft: 1 }), (p) => confirmItem(p, t0 + 1, { answer: wrong })),
  },
  {
    outcome: 'locked',
    result: `locked:${strictLockout.backoffBaseMs - 5}`,
    setup: async (store, t0) => {
      const d = draft(t0);
      await store.guard(Array.from({ length: strictLockout.failuresMax }, () => ({ payerId: d.payment.payerId, event: 'failure' as const, nowMs: t0 })));
      return seeded(store, d, (p) => confirmItem(p, t0 + 5));
    },
  },
  {
    outcome: 'declined',
    result: 'p',
    setup: async (store, t0) => seeded(store, draft(t0), (p) => confirmItem(p, t0 + 1, { answer: { kind: 'decline', reason: 'BANK_DECLINED', detail: 'no' } })),
  },
  { outcome: 'approved', result: 'p', setup: async (store, t0) => seeded(store, draftApproved(t0), (p) => confirmItem(p, t0 + 1, { factor: 'SECOND_CODE' })) },
  {
    outcome: 'refused',
    result: 'state:DECLINED',
    setup: async (store, t0) => seeded(store, draftDeclined(t0), (p) => confirmItem(p, t0 + 1, { factor: 'SECOND_CODE' })),
  },
  { outcome: 'refused', result: 'factor', setup: async (store, t0) => seeded(store, draft(t0), (p) => confirmItem(p, t0 + 1, { factor: 'SMS_OTP' })) },
  {
    outcome: 'refused',
    result: 'order',
    setup: async (store, t0) =>
      seeded(store, draft(t0, { requiredFactors: ['SMS_OTP', 'IVR_PASSWORD'] }), (p) => confirmItem(p, t0 + 1, { factor: 'IVR_PASSWORD', after: ['SMS_OTP'] })),
  },
  { outcome: 'expired', result: 'expired', setup: async (store, t0) => seeded(store, draft(t0), (p) => confirmItem(p, p.expiresAtMs)) },
];

async function seeded(store: PaymentStore, d: Draft, item: (p: Payment) => ConfirmItem): Promise<ConfirmItem> {
  await seed(store, d);
  return item(d.payment);
}

function replayCases(c: Case): void {
  for (const r of replayTable) {
    c(`confirm replay: ${r.outcome} (${r.result}) replays its stored result, counts nothing, changes nothing`, async (t, open) => {
      const store = await open(strictLockout);
      const t0 = Date.now();
      const item = await r.setup(store, t0);
      const first = await confirmOne(store, item);
      t.is(first.outcome, r.outcome);
      const after = (await getOne(store, item.paymentId))!;
      for (const later of [item.nowMs + 1, item.nowMs + 60_000]) {
        t.deepEqual(await store.confirm([{ ...item, nowMs: later }]), [{ outcome: 'replayed', result: r.result, record: after }]);
      }
      t.deepEqual(await getOne(store, item.paymentId), after);
    });
  }

  c('confirm replay: a replayed mismatch counts neither an attempt nor a failure of the payer', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const item = confirmItem(d.payment, t0 + 1, { answer: wrong });
    t.is((await confirmOne(store, item)).outcome, 'mismatch');
    for (let i = 0; i < strictLockout.failuresMax + 1; i++) {
      const out = await confirmOne(store, { ...item, nowMs: t0 + 2 + i });
      t.is(out.outcome === 'replayed' ? out.record?.payment.attemptsLeft : out.outcome, 4);
    }
    t.deepEqual(await store.guard([{ payerId: d.payment.payerId, event: 'check', nowMs: t0 + 10 }]), [{ lockedForMs: undefined }]);
    t.is((await confirmOne(store, confirmItem(d.payment, t0 + 11))).outcome, 'satisfied');
  });

  c('confirm replay: the same key with another fingerprint is a conflict and counts nothing', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const item = confirmItem(d.payment, t0 + 1, { answer: wrong });
    await store.confirm([item]);
    const before = (await getOne(store, d.payment.id))!;
    t.deepEqual(await store.confirm([confirmItem(d.payment, t0 + 2, { key: item.key })]), [{ outcome: 'conflict' }]);
    t.deepEqual(await store.confirm([{ ...item, fingerprint: hex64('another request'), nowMs: t0 + 3 }]), [{ outcome: 'conflict' }]);
    t.deepEqual(await getOne(store, d.payment.id), before);
  });

  c('confirm replay: keys are scoped per caller scope and payment', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const payerId = newHexId();
    const [a, b] = [draft(t0, { payerId }), draft(t0, { payerId })];
    await seed(store, a, b);
    const key = 'confirm-shared-key';
    const fingerprint = hex64('the same request');
    const as = (scope: string): ConfirmOptions => ({ key, fingerprint, answer: wrong, caller: { scope, payerId } });
    t.is((await confirmOne(store, confirmItem(a.payment, t0 + 1, as('payer')))).outcome, 'mismatch');
    const onB = await confirmOne(store, confirmItem(b.payment, t0 + 2, as('payer')));
    t.deepEqual(onB.outcome === 'mismatch' ? onB.attemptsLeft : onB.outcome, 4, 'the same key on another payment is another request');
    const otherScope = await confirmOne(store, confirmItem(a.payment, t0 + 3, as('service')));
    t.deepEqual(otherScope.outcome === 'mismatch' ? otherScope.attemptsLeft : otherScope.outcome, 3, 'the same key in another scope is another request');
  });

  c('confirm replay: the key expires after keyTtlMs (then it is a new attempt)', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const ttlMs = 60_000;
    const item = confirmItem(d.payment, t0 + 1, { answer: wrong, keyTtlMs: ttlMs });
    t.is((await confirmOne(store, item)).outcome, 'mismatch');
    t.is((await confirmOne(store, { ...item, nowMs: t0 + ttlMs })).outcome, 'replayed');
    const out = await confirmOne(store, { ...item, nowMs: t0 + 1 + ttlMs });
    t.deepEqual(out.outcome === 'mismatch' ? out.attemptsLeft : out.outcome, 3);
  });
}

// ------------------------------------------------------------------ confirm: lockout

/** A new payment of `payerId` drafted at `nowMs`, confirmed with a wrong answer. */
async function failOnce(store: PaymentStore, payerId: string, nowMs: number, answer: ConfirmAnswer = wrong): Promise<string> {
  const d = draft(nowMs, { payerId });
  await seed(store, d);
  return (await confirmOne(store, confirmItem(d.payment, nowMs, { answer }))).outcome;
}

/** A new payment of `payerId` drafted at `nowMs`, confirmed with the right answer. */
async function tryRight(store: PaymentStore, payerId: string, nowMs: number): Promise<ConfirmOutcome> {
  const d = draft(nowMs, { payerId });
  await seed(store, d);
  return confirmOne(store, confirmItem(d.payment, nowMs));
}

/** `retryAfterMs` of a locked outcome, else the outcome's name. */
const lockedFor = (o: ConfirmOutcome): number | string => (o.outcome === 'locked' ? o.retryAfterMs : o.outcome);

function lockoutCases(c: Case): void {
  const { failuresMax, backoffBaseMs, backoffMaxMs, memoryMs } = strictLockout;

  c('lockout: failuresMax consecutive failures across payments lock the payer; confirms then decline the payment', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const payerId = newHexId();
    const outcomes = [await failOnce(store, payerId, t0), await failOnce(store, payerId, t0 + 1, { kind: 'wrong' }), await failOnce(store, payerId, t0 + 2)];
    t.deepEqual(outcomes, ['mismatch', 'mismatch', 'mismatch']);
    const d = draft(t0 + 10, { payerId });
    await seed(store, d);
    const declined = {
      payment: { ...without(d.payment, 'sealedFirstCode'), state: 'DECLINED' as const, declineReason: 'ATTEMPTS_EXHAUSTED' as const, updatedAtMs: t0 + 10 },
      version: 2,
      digests: {},
      dueAtMs: d.dueAtMs,
    };
    const out = await confirmOne(store, confirmItem(d.payment, t0 + 10));
    const record = (await getOne(store, d.payment.id))!;
    t.deepEqual(out, { outcome: 'locked', retryAfterMs: t0 + 2 + backoffBaseMs - (t0 + 10), record });
    t.deepEqual(
      record,
      { ...declined, payment: { ...declined.payment, declineDetail: record.payment.declineDetail! } },
      'nothing compared: attempts unchanged',
    );
    t.is(typeof record.payment.declineDetail, 'string');
    t.deepEqual(await store.guard([{ payerId, event: 'check', nowMs: t0 + 20 }]), [{ lockedForMs: t0 + 2 + backoffBaseMs - (t0 + 20) }]);
  });

  c('lockout: a success ends the failure streak', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const payerId = newHexId();
    for (let i = 0; i < failuresMax - 1; i++) t.is(await failOnce(store, payerId, t0 + i), 'mismatch');
    t.is((await tryRight(store, payerId, t0 + 10)).outcome, 'satisfied');
    for (let i = 0; i < failuresMax - 1; i++) t.is(await failOnce(store, payerId, t0 + 20 + i), 'mismatch');
    t.is((await tryRight(store, payerId, t0 + 30)).outcome, 'satisfied', 'failures around a success do not add up');
    for (let i = 0; i < failuresMax; i++) t.is(await failOnce(store, payerId, t0 + 40 + i), 'mismatch');
    t.is(lockedFor(await tryRight(store, payerId, t0 + 50)), backoffBaseMs - 50 + 40 + failuresMax - 1);
  });

  c('lockout: it lasts backoffBaseMs, doubles with each further lockout and stops at backoffMaxMs, then ends', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const payerId = newHexId();
    const lockAt = async (at: number): Promise<void> => {
      for (let i = 0; i < failuresMax; i++) t.is(await failOnce(store, payerId, at), 'mismatch');
    };
    await lockAt(t0);
    t.is(lockedFor(await tryRight(store, payerId, t0)), backoffBaseMs);
    t.is(lockedFor(await tryRight(store, payerId, t0 + backoffBaseMs - 1)), 1);
    const t1 = t0 + backoffBaseMs;
    await lockAt(t1);
    t.is(lockedFor(await tryRight(store, payerId, t1)), 2 * backoffBaseMs);
    const t2 = t1 + 2 * backoffBaseMs;
    await lockAt(t2);
    t.is(lockedFor(await tryRight(store, payerId, t2)), backoffMaxMs, 'capped (4 × base is more)');
    const t3 = t2 + backoffMaxMs;
    t.is((await tryRight(store, payerId, t3)).outcome, 'satisfied', 'the lockout ended');
  });

  c('lockout: the failure streak is forgotten memoryMs after the last failure', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const [remembered, forgotten] = [newHexId(), newHexId()];
    for (const payerId of [remembered, forgotten]) {
      for (let i = 0; i < failuresMax - 1; i++) t.is(await failOnce(store, payerId, t0 + i), 'mismatch');
    }
    const last = t0 + failuresMax - 2;
    t.is(await failOnce(store, remembered, last + memoryMs - 1), 'mismatch');
    t.is(lockedFor(await tryRight(store, remembered, last + memoryMs - 1)), backoffBaseMs);
    t.is(await failOnce(store, forgotten, last + memoryMs), 'mismatch');
    t.is((await tryRight(store, forgotten, last + memoryMs)).outcome, 'satisfied');
  });

  c('lockout: other payers are unaffected', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const [locked, other] = [newHexId(), newHexId()];
    for (let i = 0; i < failuresMax; i++) t.is(await failOnce(store, locked, t0), 'mismatch');
    t.is(lockedFor(await tryRight(store, locked, t0 + 1)), backoffBaseMs - 1);
    t.is(await failOnce(store, other, t0 + 2), 'mismatch');
    t.is((await tryRight(store, other, t0 + 3)).outcome, 'satisfied');
  });

  c("lockout: a merchant's wrong answers lock the payer at that merchant only; the payer's own lock the payer everywhere", async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const [payerId, merchantA, merchantB] = [newHexId(), newHexId(), newHexId()];
    const asMerchant = (merchantId: string) => ({ caller: { scope: merchantId, merchantId } });
    const asPayer = { caller: { scope: payerId, payerId } };
    const attempt = async (merchantId: string, nowMs: number, o: ConfirmOptions): Promise<ConfirmOutcome> => {
      const d = draft(nowMs, { payerId, merchantId });
      await seed(store, d);
      return confirmOne(store, confirmItem(d.payment, nowMs, o));
    };
    for (let i = 0; i < failuresMax; i++) t.is((await attempt(merchantB, t0 + i, { ...asMerchant(merchantB), answer: wrong })).outcome, 'mismatch');
    t.is(lockedFor(await attempt(merchantB, t0 + 10, asMerchant(merchantB))), backoffBaseMs - 10 + failuresMax - 1, 'locked at merchant B');
    t.is((await attempt(merchantA, t0 + 11, asMerchant(merchantA))).outcome, 'satisfied', "merchant A's call is compared");
    t.is((await attempt(merchantA, t0 + 12, asPayer)).outcome, 'satisfied', "the payer's own call is compared");
    t.is((await attempt(merchantB, t0 + 13, asPayer)).outcome, 'satisfied', "the payer's own call on B's payment is compared");
    t.deepEqual(await store.guard([{ payerId, event: 'check', nowMs: t0 + 14 }]), [{ lockedForMs: undefined }], 'the payer-wide guard is not locked');

    const t1 = t0 + 100;
    for (let i = 0; i < failuresMax; i++) t.is((await attempt(merchantA, t1 + i, { ...asPayer, answer: wrong })).outcome, 'mismatch');
    t.is(
      lockedFor(await attempt(merchantA, t1 + 10, asMerchant(merchantA))),
      backoffBaseMs - 10 + failuresMax - 1,
      "the payer's own failures lock merchant A's calls",
    );
    t.is(lockedFor(await attempt(merchantA, t1 + 11, asPayer)), backoffBaseMs - 11 + failuresMax - 1, 'and the payer');
  });

  c("lockout: a merchant's success ends its own streak only", async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const [payerId, merchantA] = [newHexId(), newHexId()];
    const attempt = async (nowMs: number, o: ConfirmOptions): Promise<string> => {
      const d = draft(nowMs, { payerId, merchantId: merchantA });
      await seed(store, d);
      return (await confirmOne(store, confirmItem(d.payment, nowMs, o))).outcome;
    };
    const asA = { caller: { scope: merchantA, merchantId: merchantA } };
    for (let i = 0; i < failuresMax - 1; i++) t.is(await attempt(t0 + i, { answer: wrong }), 'mismatch');
    t.is(await attempt(t0 + 10, asA), 'satisfied');
    t.is(await attempt(t0 + 11, { answer: wrong }), 'mismatch');
    t.is(lockedFor(await tryRight(store, payerId, t0 + 12)), backoffBaseMs - 1, "merchant A's success left the payer-wide streak alone");
  });
}

// ------------------------------------------------------------------ commit

function commitCases(c: Case): void {
  c('commit: writes the payment, digests and due time at version +1; undefined digests and due stay', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const resent: Payment = { ...d.payment, sealedFirstCode: 'resealed', attemptsLeft: 2, updatedAtMs: t0 + 5, expiresAtMs: t0 + 2 * challengeTtlMs };
    const v2: PaymentRecord = { payment: resent, version: 2, digests: { SECOND_CODE: hex64('a new code') }, dueAtMs: t0 + 2 * challengeTtlMs };
    t.deepEqual(
      await store.commit([{ paymentId: d.payment.id, expectVersion: 1, payment: resent, digests: v2.digests, dueAtMs: v2.dueAtMs!, nowMs: t0 + 5 }]),
      [{ outcome: 'committed', record: v2 }],
    );
    t.deepEqual(await getOne(store, d.payment.id), v2);
    const described = { ...resent, description: 'changed', updatedAtMs: t0 + 6 };
    const v3: PaymentRecord = { ...v2, payment: described, version: 3 };
    t.deepEqual(await store.commit([{ paymentId: d.payment.id, expectVersion: 2, payment: described, nowMs: t0 + 6 }]), [{ outcome: 'committed', record: v3 }]);
    t.deepEqual(await getOne(store, d.payment.id), v3);
  });

  c('commit: another expectVersion is stale with the current record and writes nothing; a missing payment is stale with undefined', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const changed = { ...d.payment, description: 'changed' };
    for (const expectVersion of [2, 7]) {
      t.deepEqual(await store.commit([{ paymentId: d.payment.id, expectVersion, payment: changed, digests: {}, dueAtMs: null, nowMs: t0 + 1 }]), [
        { outcome: 'stale', record: recordOf(d) },
      ]);
    }
    t.deepEqual(await store.commit([{ paymentId: d.payment.id, expectVersion: 2, dueAtMs: null, nowMs: t0 + 1 }]), [{ outcome: 'stale', record: recordOf(d) }]);
    t.deepEqual(await getOne(store, d.payment.id), recordOf(d));
    const ghost = draft(t0).payment;
    t.deepEqual(await store.commit([{ paymentId: ghost.id, expectVersion: 1, payment: ghost, nowMs: t0 + 1 }]), [{ outcome: 'stale', record: undefined }]);
    t.is(await getOne(store, ghost.id), undefined);
  });

  c('commit: without a payment only dueAtMs changes and the version stays; null takes it out of the due index', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const moved: PaymentRecord = { ...recordOf(d), dueAtMs: t0 + 50 };
    t.deepEqual(await store.commit([{ paymentId: d.payment.id, expectVersion: 1, dueAtMs: t0 + 50, digests: { SECOND_CODE: wrongDigest }, nowMs: t0 + 1 }]), [
      { outcome: 'committed', record: moved },
    ]);
    t.deepEqual(await getOne(store, d.payment.id), moved, 'digests without a payment are ignored');
    t.deepEqual(await store.commit([{ paymentId: d.payment.id, expectVersion: 1, nowMs: t0 + 2 }]), [{ outcome: 'committed', record: moved }]);
    const undue: PaymentRecord = { ...recordOf(d), dueAtMs: undefined };
    t.deepEqual(await store.commit([{ paymentId: d.payment.id, expectVersion: 1, dueAtMs: null, nowMs: t0 + 3 }]), [{ outcome: 'committed', record: undue }]);
    t.deepEqual(await getOne(store, d.payment.id), undue);
    t.deepEqual(await store.claimDue({ nowMs: t0 + 2 * challengeTtlMs, limit: 10, leaseMs }), []);
  });

  c('commit: a claim stores its result; the same claim replays it and writes nothing, another fingerprint conflicts', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const claim = { scope: `merchant-${d.payment.merchantId}`, key: 'cancel-1', fingerprint: hex64('cancel 1'), result: 'p', keyTtlMs };
    const cancelled = { ...without(d.payment, 'sealedFirstCode'), state: 'CANCELLED' as const, updatedAtMs: t0 + 1 };
    const v2: PaymentRecord = { payment: cancelled, version: 2, digests: {}, dueAtMs: t0 + 1 };
    t.deepEqual(await store.commit([{ paymentId: d.payment.id, expectVersion: 1, payment: cancelled, digests: {}, dueAtMs: t0 + 1, claim, nowMs: t0 + 1 }]), [
      { outcome: 'committed', record: v2 },
    ]);
    const again = { ...cancelled, description: 'second writer', updatedAtMs: t0 + 2 };
    t.deepEqual(
      await store.commit([{ paymentId: d.payment.id, expectVersion: 2, payment: again, dueAtMs: null, claim: { ...claim, result: 'other' }, nowMs: t0 + 2 }]),
      [{ outcome: 'replayed', result: 'p' }],
    );
    t.deepEqual(
      await store.commit([{ paymentId: d.payment.id, expectVersion: 2, payment: again, claim: { ...claim, fingerprint: hex64('cancel 2') }, nowMs: t0 + 3 }]),
      [{ outcome: 'conflict' }],
    );
    t.deepEqual(await getOne(store, d.payment.id), v2);
  });

  c('commit: a stale commit does not use its claim', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const claim = { scope: 'admin', key: 'fix-1', fingerprint: hex64('fix 1'), result: 'p', keyTtlMs };
    const changed = { ...d.payment, description: 'fixed', updatedAtMs: t0 + 1 };
    t.deepEqual(await store.commit([{ paymentId: d.payment.id, expectVersion: 3, payment: changed, claim, nowMs: t0 + 1 }]), [
      { outcome: 'stale', record: recordOf(d) },
    ]);
    const v2: PaymentRecord = { ...recordOf(d), payment: changed, version: 2 };
    t.deepEqual(await store.commit([{ paymentId: d.payment.id, expectVersion: 1, payment: changed, claim, nowMs: t0 + 2 }]), [
      { outcome: 'committed', record: v2 },
    ]);
  });

  c("commit: changing a payment's id, merchant or payer is an assertion and writes nothing", async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const p = d.payment;
    const changes: Payment[] = [
      { ...p, id: newPaymentIdFor(p.payerId) },
      { ...p, merchantId: newHexId() },
      { ...p, payerId: newHexId() },
    ];
    for (const payment of changes) {
      await t.throwsAsync(() => store.commit([{ paymentId: p.id, expectVersion: 1, payment, nowMs: t0 + 1 }]), { message: /^assertion failed/ });
    }
    t.deepEqual(await getOne(store, p.id), recordOf(d));
    t.deepEqual(await store.list({ merchantId: p.merchantId, limit: 10 }), [p]);
  });
}

// ------------------------------------------------------------------ commit: settle

/** A payment approved by its right code (the record a settle goes over), drafted at `t0`. */
async function approvedRecord(store: PaymentStore, t0: number, answer?: ConfirmAnswer): Promise<PaymentRecord> {
  const d = draft(t0);
  await seed(store, d);
  const out = await confirmOne(store, confirmItem(d.payment, t0 + 1, answer === undefined ? {} : { answer }));
  if (out.outcome !== 'satisfied' || out.record.payment.state !== 'APPROVED') throw new Error(`approving ${d.payment.id}: ${out.outcome}`);
  return out.record;
}

/** The settle of `record` (APPROVED or SUCCEEDED) at `nowMs`, out of the due index unless `more` says otherwise. */
function settleOf(record: PaymentRecord, nowMs: number, more: Partial<CommitItem> = {}): CommitItem {
  return {
    paymentId: record.payment.id,
    expectVersion: record.version,
    payment: { ...record.payment, state: 'SUCCEEDED', updatedAtMs: nowMs },
    dueAtMs: null,
    settle: true,
    nowMs,
    ...more,
  };
}

function settleCases(c: Case): void {
  c('commit settle: APPROVED → SUCCEEDED at version +1, out of the due index; the record is the one the answer built', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const approved = await approvedRecord(store, t0);
    const item = settleOf(approved, t0 + 2);
    const settled: PaymentRecord = { payment: item.payment!, version: approved.version + 1, digests: {}, dueAtMs: undefined };
    t.deepEqual(await store.commit([item]), [{ outcome: 'committed', record: settled }]);
    t.deepEqual(await getOne(store, approved.payment.id), settled);
    t.deepEqual(await store.claimDue({ nowMs: t0 + 2 * challengeTtlMs, limit: 10, leaseMs }), []);
    t.deepEqual(await store.list({ merchantId: approved.payment.merchantId, states: ['SUCCEEDED'], limit: 10 }), [settled.payment]);
  });

  c('commit settle: written without a compare: the same settle again (the record SUCCEEDED already) commits the same record', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const approved = await approvedRecord(store, t0);
    const item = settleOf(approved, t0 + 2);
    const settled: PaymentRecord = { payment: item.payment!, version: approved.version + 1, digests: {}, dueAtMs: undefined };
    t.deepEqual(await store.commit([item, item]), [
      { outcome: 'committed', record: settled },
      { outcome: 'committed', record: settled },
    ]);
    t.deepEqual(await store.commit([{ ...item, nowMs: t0 + 3 }]), [{ outcome: 'committed', record: settled }], 'never stale');
    t.deepEqual(await getOne(store, approved.payment.id), settled);
  });

  c('commit settle: a due time given is indexed; fields the settle does not write stay (bank code, factors, attempts)', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const approved = await approvedRecord(store, t0, { kind: 'accept', bankAuthorizationCode: 'A1B2C3' });
    t.is(approved.payment.bankAuthorizationCode, 'A1B2C3');
    const item = settleOf(approved, t0 + 2, { dueAtMs: t0 + 500 });
    const settled: PaymentRecord = { payment: item.payment!, version: approved.version + 1, digests: {}, dueAtMs: t0 + 500 };
    t.deepEqual(await store.commit([item]), [{ outcome: 'committed', record: settled }]);
    t.deepEqual(await getOne(store, approved.payment.id), settled);
    t.deepEqual(await store.claimDue({ nowMs: t0 + 499, limit: 10, leaseMs }), []);
    t.deepEqual(await store.claimDue({ nowMs: t0 + 500, limit: 10, leaseMs }), [{ ...settled, dueAtMs: t0 + 500 + leaseMs }]);
  });

  c(
    'commit settle: over an APPROVED record that kept its digest and sealed first code (a commit approved it), the settled record has neither',
    async (t, open) => {
      const store = await open();
      const t0 = Date.now();
      const d = draft(t0);
      await seed(store, d);
      t.truthy(d.payment.sealedFirstCode);
      t.deepEqual(Object.keys(d.digests), ['SECOND_CODE']);
      // The port lets a commit approve and keep the digests (undefined: they stay) and the sealed code.
      const approve: CommitItem = {
        paymentId: d.payment.id,
        expectVersion: 1,
        payment: { ...d.payment, state: 'APPROVED', updatedAtMs: t0 + 1 },
        dueAtMs: t0 + 1,
        nowMs: t0 + 1,
      };
      const [approved] = await store.commit([approve]);
      t.is(approved!.outcome, 'committed');
      const kept = (approved as { record: PaymentRecord }).record;
      t.deepEqual([kept.payment.state, kept.digests, kept.payment.sealedFirstCode], ['APPROVED', d.digests, d.payment.sealedFirstCode]);
      const item = settleOf({ ...kept, payment: without(kept.payment, 'sealedFirstCode') }, t0 + 2);
      const settled: PaymentRecord = { payment: item.payment!, version: kept.version + 1, digests: {}, dueAtMs: undefined };
      t.deepEqual(await store.commit([item]), [{ outcome: 'committed', record: settled }]);
      t.deepEqual(await getOne(store, d.payment.id), settled, 'read back: no digest, no sealed code');
      t.deepEqual(await store.list({ payerId: d.payment.payerId, limit: 10 }), [settled.payment]);
    },
  );

  c('commit settle: preconditions: a payment not SUCCEEDED, no dueAtMs, a claim, a decline reason, or no record are assertions', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const approved = await approvedRecord(store, t0);
    const item = settleOf(approved, t0 + 2);
    const bad: CommitItem[] = [
      { ...item, payment: { ...item.payment!, state: 'APPROVED' } },
      { ...item, payment: undefined },
      { ...item, dueAtMs: undefined },
      { ...item, claim: { scope: 'admin', key: 'settle-1', fingerprint: hex64('settle 1'), result: 'p', keyTtlMs } },
      { ...item, payment: { ...item.payment!, declineReason: 'PAYER_DECLINED' } },
    ];
    for (const one of bad) await t.throwsAsync(() => store.commit([one]), { message: /^assertion failed/ });
    t.deepEqual(await getOne(store, approved.payment.id), approved);
    const ghost = draftApproved(t0);
    const ghostRecord: PaymentRecord = { ...recordOf(ghost), version: 2 };
    await t.throwsAsync(() => store.commit([settleOf(ghostRecord, t0 + 2)]), { message: /^assertion failed/ });
    t.is(await getOne(store, ghost.payment.id), undefined, 'a settle never creates a record');
  });
}

// ------------------------------------------------------------------ operation keys: the bound

function operationKeyCases(c: Case): void {
  const max = operationKeysPerPaymentMax;
  /** `count` confirms of `p` refused for their factor (nothing changes), each under its own key. */
  const refusals = (p: Payment, nowMs: number, count: number, from = 0, more: ConfirmOptions = {}): ConfirmItem[] =>
    Array.from({ length: count }, (_, i) => confirmItem(p, nowMs, { factor: 'BANK_CARD_PIN', answer: wrong, key: `refused-${from + i}`, ...more }));
  const outcomes = (os: readonly { outcome: string }[]): string[] => os.map((o) => o.outcome);

  c('operation keys: at operationKeysPerPaymentMax live keys, an outcome that changed nothing is answered but not stored', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draftApproved(t0);
    await seed(store, d);
    const items = Array.from({ length: max }, (_, i) => confirmItem(d.payment, t0 + 1, { factor: 'SECOND_CODE', key: `approved-${i}` }));
    t.deepEqual(outcomes(await store.confirm(items)), Array<string>(max).fill('approved'));
    t.deepEqual(outcomes(await store.confirm(items.map((item) => ({ ...item, nowMs: t0 + 2 })))), Array<string>(max).fill('replayed'), 'every one stored');
    const extra = confirmItem(d.payment, t0 + 3, { factor: 'SECOND_CODE', key: 'approved-extra' });
    t.deepEqual(await store.confirm([extra]), [{ outcome: 'approved', record: recordOf(d) }]);
    t.deepEqual(
      await store.confirm([{ ...extra, fingerprint: hex64('another request'), nowMs: t0 + 4 }]),
      [{ outcome: 'approved', record: recordOf(d) }],
      'not stored: decided again, no conflict',
    );
    t.deepEqual(await getOne(store, d.payment.id), recordOf(d));
  });

  c('operation keys: at the bound, a confirm that changed the record is stored all the same', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, { requiredFactors: ['SMS_OTP'] });
    await seed(store, d);
    t.deepEqual(outcomes(await store.confirm(refusals(d.payment, t0 + 1, max))), Array<string>(max).fill('refused'));
    const mismatch = confirmItem(d.payment, t0 + 2, { answer: wrong, key: 'wrong-1' });
    t.is((await confirmOne(store, mismatch)).outcome, 'mismatch');
    const afterMismatch = (await getOne(store, d.payment.id))!;
    t.deepEqual(await store.confirm([{ ...mismatch, nowMs: t0 + 3 }]), [{ outcome: 'replayed', result: 'mismatch:4', record: afterMismatch }]);
    const [extra] = refusals(d.payment, t0 + 4, 1, max);
    t.is((await confirmOne(store, extra!)).outcome, 'refused');
    t.is((await confirmOne(store, { ...extra!, fingerprint: hex64('another request') })).outcome, 'refused', 'the refusal beyond the bound was not stored');
    const satisfied = confirmItem(d.payment, t0 + 5, { key: 'right-1' });
    t.is((await confirmOne(store, satisfied)).outcome, 'satisfied');
    const approved = (await getOne(store, d.payment.id))!;
    t.deepEqual(await store.confirm([{ ...satisfied, nowMs: t0 + 6 }]), [{ outcome: 'replayed', result: 'p', record: approved }]);
  });

  c('operation keys: commit claims share the bound: one without a payment is not stored at it, one with a payment is', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0, { requiredFactors: ['SMS_OTP'] });
    await seed(store, d);
    t.deepEqual(outcomes(await store.confirm(refusals(d.payment, t0 + 1, max))), Array<string>(max).fill('refused'));
    const claim = (key: string, fingerprint = hex64(key)) => ({ scope: 'admin', key, fingerprint, result: 'p', keyTtlMs });
    const moved = { ...recordOf(d), dueAtMs: t0 + 50 };
    const move: CommitItem = { paymentId: d.payment.id, expectVersion: 1, dueAtMs: t0 + 50, claim: claim('move-1'), nowMs: t0 + 2 };
    t.deepEqual(await store.commit([move]), [{ outcome: 'committed', record: moved }]);
    t.deepEqual(
      await store.commit([{ ...move, claim: claim('move-1', hex64('another request')), nowMs: t0 + 3 }]),
      [{ outcome: 'committed', record: moved }],
      'not stored',
    );
    const cancelled = { ...without(d.payment, 'sealedFirstCode'), state: 'CANCELLED' as const, updatedAtMs: t0 + 4 };
    const cancel: CommitItem = {
      paymentId: d.payment.id,
      expectVersion: 1,
      payment: cancelled,
      digests: {},
      dueAtMs: t0 + 4,
      claim: claim('cancel-1'),
      nowMs: t0 + 4,
    };
    t.deepEqual(await store.commit([cancel]), [{ outcome: 'committed', record: { payment: cancelled, version: 2, digests: {}, dueAtMs: t0 + 4 } }]);
    t.deepEqual(await store.commit([{ ...cancel, expectVersion: 2, nowMs: t0 + 5 }]), [{ outcome: 'replayed', result: 'p' }]);
    t.deepEqual(await store.commit([{ ...cancel, claim: claim('cancel-1', hex64('another request')), nowMs: t0 + 5 }]), [{ outcome: 'conflict' }]);
  });

  c('operation keys: only live keys count: once keyTtlMs has passed, the payment stores new ones again', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const ttlMs = 60_000;
    const d = draft(t0, { requiredFactors: ['SMS_OTP'] });
    await seed(store, d);
    t.deepEqual(outcomes(await store.confirm(refusals(d.payment, t0 + 1, max, 0, { keyTtlMs: ttlMs }))), Array<string>(max).fill('refused'));
    const [late] = refusals(d.payment, t0 + ttlMs, 1, max);
    t.is((await confirmOne(store, late!)).outcome, 'refused');
    t.is(
      (await confirmOne(store, { ...late!, fingerprint: hex64('another request') })).outcome,
      'refused',
      'at the bound a millisecond before the others expire',
    );
    const [later] = refusals(d.payment, t0 + 1 + ttlMs, 1, max + 1);
    t.is((await confirmOne(store, later!)).outcome, 'refused');
    t.is((await confirmOne(store, { ...later!, fingerprint: hex64('another request') })).outcome, 'conflict', 'stored: the expired keys no longer count');
    const [first] = refusals(d.payment, t0 + 2 + ttlMs, 1);
    t.is((await confirmOne(store, { ...first!, fingerprint: hex64('another request') })).outcome, 'refused', 'an expired key is absent');
  });
}

// ------------------------------------------------------------------ claimDue

function claimDueCases(c: Case): void {
  /** Seeds payments due at `t0 + offsets[i]` (undefined: not due). */
  const dueAt = async (store: PaymentStore, t0: number, offsets: (number | undefined)[]): Promise<Draft[]> => {
    const drafts = offsets.map((o) => ({ ...draft(t0), dueAtMs: o === undefined ? undefined : t0 + o }));
    await seed(store, ...drafts);
    return drafts;
  };

  c('claimDue: returns the records due by nowMs (not later ones), each due again after the lease', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const [a, b, later, never] = await dueAt(store, t0, [100, 200, 201, undefined]);
    const claimed = await store.claimDue({ nowMs: t0 + 200, limit: 10, leaseMs });
    t.deepEqual(sorted(claimed.map((r) => r.payment.id)), sorted([a!.payment.id, b!.payment.id]));
    const leased = [
      { ...recordOf(a!), dueAtMs: t0 + 200 + leaseMs },
      { ...recordOf(b!), dueAtMs: t0 + 200 + leaseMs },
    ];
    t.deepEqual(await store.get([a!.payment.id, b!.payment.id, later!.payment.id, never!.payment.id]), [...leased, recordOf(later!), recordOf(never!)]);
    t.deepEqual(
      claimed.sort((x, y) => (x.payment.id < y.payment.id ? -1 : 1)),
      leased.sort((x, y) => (x.payment.id < y.payment.id ? -1 : 1)),
      'claimed records are returned as the claim left them',
    );
  });

  c('claimDue: at most limit records per call; each once within its lease', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const drafts = await dueAt(store, t0, [1, 2, 3, 4, 5]);
    const pages: string[][] = [];
    for (let i = 0; i < 4; i++) pages.push((await store.claimDue({ nowMs: t0 + 10, limit: 2, leaseMs })).map((r) => r.payment.id));
    t.deepEqual(
      pages.map((p) => p.length),
      [2, 2, 1, 0],
    );
    t.deepEqual(sorted(pages.flat()), sorted(drafts.map((d) => d.payment.id)));
  });

  c('claimDue: a claimed record is not returned again until nowMs + leaseMs', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const [d] = await dueAt(store, t0, [100]);
    t.deepEqual(ids((await store.claimDue({ nowMs: t0 + 100, limit: 10, leaseMs })).map((r) => r.payment)), [d!.payment.id]);
    t.deepEqual(await store.claimDue({ nowMs: t0 + 100 + leaseMs - 1, limit: 10, leaseMs }), []);
    const again = await store.claimDue({ nowMs: t0 + 100 + leaseMs, limit: 10, leaseMs });
    t.deepEqual(again, [{ ...recordOf(d!), dueAtMs: t0 + 100 + 2 * leaseMs }]);
  });

  c('claimDue: a record committed with dueAtMs null never comes back', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const [d] = await dueAt(store, t0, [100]);
    const done = { ...d!.payment, state: 'CANCELLED' as const, updatedAtMs: t0 + 1 };
    t.is((await store.commit([{ paymentId: done.id, expectVersion: 1, payment: done, digests: {}, dueAtMs: null, nowMs: t0 + 1 }]))[0]?.outcome, 'committed');
    for (const later of [t0 + 100, t0 + 3_600_000, t0 + 48 * 3_600_000]) t.deepEqual(await store.claimDue({ nowMs: later, limit: 10, leaseMs }), []);
  });

  c('claimDue: a record whose due time moved is returned at its new time only', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const [later, earlier] = await dueAt(store, t0, [100, 5_000]);
    const move = (d: Draft, dueAtMs: number): CommitItem => ({ paymentId: d.payment.id, expectVersion: 1, dueAtMs, nowMs: t0 + 1 });
    t.deepEqual(
      (await store.commit([move(later!, t0 + 5_000), move(earlier!, t0 + 100)])).map((o) => o.outcome),
      ['committed', 'committed'],
    );
    t.deepEqual(ids((await store.claimDue({ nowMs: t0 + 4_999, limit: 10, leaseMs })).map((r) => r.payment)), [earlier!.payment.id]);
    t.deepEqual(ids((await store.claimDue({ nowMs: t0 + 5_000, limit: 10, leaseMs })).map((r) => r.payment)), [later!.payment.id]);
  });

  c('claimDue: two concurrent claimers never get the same record within the lease', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const drafts = await dueAt(store, t0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const request = { nowMs: t0 + 10, limit: 6, leaseMs };
    const [x, y] = await Promise.all([store.claimDue(request), store.claimDue(request)]);
    const both = [...x!, ...y!].map((r) => r.payment.id);
    t.deepEqual(sorted(both), sorted(drafts.map((d) => d.payment.id)), 'disjoint, and together every due record');
    t.deepEqual(await store.claimDue({ ...request, nowMs: t0 + 11 }), []);
  });

  c("claimDue: a confirm leaves the due time alone: what it approves or declines is found at the create's due time", async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const [approved, declined, exhausted] = [draft(t0), draft(t0 + 1), draft(t0 + 2, { attemptsLeft: 1 })];
    await seed(store, approved, declined, exhausted);
    const decline: ConfirmAnswer = { kind: 'decline', reason: 'BANK_DECLINED', detail: 'no' };
    const outs = await store.confirm([
      confirmItem(approved.payment, t0 + 3),
      confirmItem(declined.payment, t0 + 3, { answer: decline }),
      confirmItem(exhausted.payment, t0 + 3, { answer: wrong }),
    ]);
    t.deepEqual(
      outs.map((o) => o.outcome),
      ['satisfied', 'declined', 'exhausted'],
    );
    t.deepEqual(
      (await store.get([approved.payment.id, declined.payment.id, exhausted.payment.id])).map((r) => r?.dueAtMs),
      [approved.dueAtMs, declined.dueAtMs, exhausted.dueAtMs],
    );
    t.deepEqual(await store.claimDue({ nowMs: approved.dueAtMs! - 1, limit: 10, leaseMs }), [], "not before the create's due time");
    const claimed = await store.claimDue({ nowMs: exhausted.dueAtMs!, limit: 10, leaseMs });
    t.deepEqual(
      sorted(claimed.map((r) => `${r.payment.id} ${r.payment.state}`)),
      sorted([`${approved.payment.id} APPROVED`, `${declined.payment.id} DECLINED`, `${exhausted.payment.id} DECLINED`]),
    );
  });
}

// ------------------------------------------------------------------ reads

function readCases(c: Case): void {
  /** Payments of one merchant from two payers, plus one of payer A elsewhere; created newest first. */
  const population = async (store: PaymentStore, t0: number) => {
    const [merchantId, payerA, payerB] = [newHexId(), newHexId(), newHexId()];
    const mine = [
      draft(t0, { merchantId, payerId: payerA }),
      draftDeclined(t0, { merchantId, payerId: payerB }),
      draft(t0, { merchantId, payerId: payerA }),
      draftApproved(t0, { merchantId, payerId: payerB }),
      draft(t0, { merchantId, payerId: payerB }),
      draftDeclined(t0, { merchantId, payerId: payerA }),
    ];
    const elsewhere = draft(t0, { payerId: payerA });
    await store.create([elsewhere, ...mine].reverse().map((d) => createItem(d)));
    const byId = (ds: Draft[]): Payment[] => ds.map((d) => d.payment).sort((x, y) => (x.id < y.id ? -1 : 1));
    return { merchantId, payerA, payerB, mine: byId(mine), ofA: byId([...mine, elsewhere].filter((d) => d.payment.payerId === payerA)) };
  };

  c('list: by merchant and by payer, oldest (smallest id) first, whole payments', async (t, open) => {
    const store = await open();
    const { merchantId, payerA, mine, ofA } = await population(store, Date.now());
    t.deepEqual(await store.list({ merchantId, limit: 100 }), mine);
    t.deepEqual(await store.list({ payerId: payerA, limit: 100 }), ofA);
    t.deepEqual(await store.list({ merchantId: newHexId(), limit: 100 }), []);
  });

  c('list: filters by state, and by merchant and payer together', async (t, open) => {
    const store = await open();
    const { merchantId, payerA, payerB, mine, ofA } = await population(store, Date.now());
    t.deepEqual(
      await store.list({ merchantId, states: ['DECLINED'], limit: 100 }),
      mine.filter((p) => p.state === 'DECLINED'),
    );
    t.deepEqual(
      await store.list({ merchantId, states: ['APPROVED', 'CHALLENGED'], limit: 100 }),
      mine.filter((p) => p.state !== 'DECLINED'),
    );
    t.deepEqual(
      await store.list({ payerId: payerA, states: ['CHALLENGED'], limit: 100 }),
      ofA.filter((p) => p.state === 'CHALLENGED'),
    );
    t.deepEqual(
      await store.list({ merchantId, payerId: payerB, limit: 100 }),
      mine.filter((p) => p.payerId === payerB),
    );
    t.deepEqual(await store.list({ merchantId, states: ['SUCCEEDED'], limit: 100 }), []);
  });

  c('list: pages with afterId and limit', async (t, open) => {
    const store = await open();
    const { merchantId, payerA, mine, ofA } = await population(store, Date.now());
    const page1 = await store.list({ merchantId, limit: 4 });
    const page2 = await store.list({ merchantId, limit: 4, afterId: page1.at(-1)!.id });
    t.deepEqual([page1, page2], [mine.slice(0, 4), mine.slice(4)]);
    t.deepEqual(await store.list({ merchantId, limit: 4, afterId: mine.at(-1)!.id }), []);
    t.deepEqual(await store.list({ payerId: payerA, limit: 1, afterId: ofA[0]!.id }), [ofA[1]]);
    const declined = mine.filter((p) => p.state === 'DECLINED');
    t.deepEqual(
      await store.list({ merchantId, states: ['DECLINED'], limit: 1, afterId: declined[0]!.id }),
      [declined[1]],
      'a state filter skips, it does not shorten the page',
    );
  });

  c("scan: pages through every payment exactly once, cursor '' at the end", async (t, open) => {
    const store = await open();
    t.deepEqual(await store.scan('', 10), { records: [], cursor: '' });
    const t0 = Date.now();
    const drafts = Array.from({ length: 7 }, () => draft(t0));
    await seed(store, ...drafts);
    const seen: PaymentRecord[] = [];
    let cursor = '';
    for (let page = 0; page < 10; page++) {
      const next = await store.scan(cursor, 3);
      t.true(next.records.length <= 3);
      seen.push(...next.records);
      cursor = next.cursor;
      if (cursor === '') break;
    }
    t.is(cursor, '', 'the scan ended');
    const byId = (rs: PaymentRecord[]): PaymentRecord[] => [...rs].sort((x, y) => (x.payment.id < y.payment.id ? -1 : 1));
    t.deepEqual(byId(seen), byId(drafts.map((d) => recordOf(d))));
  });
}

// ------------------------------------------------------------------ keyed claims

function keyClaimCases(c: Case): void {
  const claimOf = (nowMs: number, more: Partial<KeyClaim> = {}): KeyClaim => ({
    scope: 'enrollment',
    key: `enroll-${randomUUID()}`,
    fingerprint: hex64('enroll payer'),
    value: 'first-value',
    leaseMs,
    keyTtlMs,
    nowMs,
    ...more,
  });

  c('claimKey: a new key is claimed with its value echoed', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    t.deepEqual(await store.claimKey(claimOf(t0)), { status: 'claimed', value: 'first-value', takenOver: false });
  });

  c('claimKey: the same request while the lease runs is in progress', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const claim = claimOf(t0);
    await store.claimKey(claim);
    t.deepEqual(await store.claimKey({ ...claim, value: 'second-value', nowMs: t0 + 10_000 }), { status: 'in_progress', retryAfterMs: leaseMs - 10_000 });
    t.deepEqual(await store.claimKey({ ...claim, nowMs: t0 + leaseMs - 1 }), { status: 'in_progress', retryAfterMs: 1 });
  });

  c("claimKey: after the lease a retry takes over with the first claimant's value", async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const claim = claimOf(t0);
    await store.claimKey(claim);
    t.deepEqual(await store.claimKey({ ...claim, value: 'second-value', nowMs: t0 + leaseMs }), { status: 'claimed', value: 'first-value', takenOver: true });
    t.deepEqual(
      await store.claimKey({ ...claim, value: 'third-value', nowMs: t0 + leaseMs + 1 }),
      { status: 'in_progress', retryAfterMs: leaseMs - 1 },
      'the taker owns a new lease',
    );
  });

  c('claimKey: a completed key is done with its result', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const claim = claimOf(t0);
    await store.claimKey(claim);
    await store.completeKey({ scope: claim.scope, key: claim.key, fingerprint: claim.fingerprint, result: 'payer-42', keyTtlMs, nowMs: t0 + 1 });
    for (const later of [t0 + 2, t0 + 2 * leaseMs]) t.deepEqual(await store.claimKey({ ...claim, nowMs: later }), { status: 'done', result: 'payer-42' });
    await store.releaseKey({ scope: claim.scope, key: claim.key, fingerprint: claim.fingerprint });
    t.deepEqual(await store.claimKey({ ...claim, nowMs: t0 + 3 }), { status: 'done', result: 'payer-42' }, 'a release does not undo a completed key');
  });

  c('claimKey: another fingerprint conflicts, claimed or done; keys are scoped', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const claim = claimOf(t0);
    await store.claimKey(claim);
    const other = { ...claim, fingerprint: hex64('another request') };
    t.deepEqual(await store.claimKey({ ...other, nowMs: t0 + 1 }), { status: 'conflict' });
    t.deepEqual(await store.claimKey({ ...other, nowMs: t0 + leaseMs }), { status: 'conflict' }, 'also after the lease');
    await store.completeKey({ scope: claim.scope, key: claim.key, fingerprint: claim.fingerprint, result: 'done', keyTtlMs, nowMs: t0 + 2 });
    t.deepEqual(await store.claimKey({ ...other, nowMs: t0 + 3 }), { status: 'conflict' });
    t.deepEqual(await store.claimKey({ ...other, scope: 'another-scope', value: 'v', nowMs: t0 + 4 }), { status: 'claimed', value: 'v', takenOver: false });
  });

  c('releaseKey: lets a new claim in; a release with another fingerprint does nothing', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const claim = claimOf(t0);
    await store.claimKey(claim);
    const other = { ...claim, fingerprint: hex64('another request'), value: 'other-value' };
    await store.releaseKey({ scope: claim.scope, key: claim.key, fingerprint: other.fingerprint });
    t.deepEqual(await store.claimKey({ ...claim, nowMs: t0 + 1 }), { status: 'in_progress', retryAfterMs: leaseMs - 1 });
    t.deepEqual(await store.claimKey({ ...other, nowMs: t0 + 1 }), { status: 'conflict' });
    await store.releaseKey({ scope: claim.scope, key: claim.key, fingerprint: claim.fingerprint });
    t.deepEqual(await store.claimKey({ ...other, nowMs: t0 + 2 }), { status: 'claimed', value: 'other-value', takenOver: false });
  });

  c('claimKey: a key expires keyTtlMs after its claim', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const claim = claimOf(t0, { keyTtlMs: 2 * leaseMs });
    await store.claimKey(claim);
    const other = { ...claim, fingerprint: hex64('another request'), value: 'other-value' };
    t.deepEqual(await store.claimKey({ ...other, nowMs: t0 + 2 * leaseMs - 1 }), { status: 'conflict' });
    t.deepEqual(await store.claimKey({ ...other, nowMs: t0 + 2 * leaseMs }), { status: 'claimed', value: 'other-value', takenOver: false });
  });
}

// ------------------------------------------------------------------ guards

function guardCases(c: Case): void {
  const { failuresMax, backoffBaseMs, backoffMaxMs, memoryMs } = strictLockout;
  const events = (payerId: string, nowMs: number, ...kinds: ('check' | 'failure' | 'success')[]) => kinds.map((event) => ({ payerId, event, nowMs }));
  const lockedForMs = async (store: PaymentStore, payerId: string, nowMs: number): Promise<number | undefined> =>
    (await store.guard([{ payerId, event: 'check', nowMs }]))[0]!.lockedForMs;

  c('guard: a check on an unknown payer is not locked', async (t, open) => {
    const store = await open(strictLockout);
    t.deepEqual(await store.guard(events(newHexId(), Date.now(), 'check', 'check')), [{ lockedForMs: undefined }, { lockedForMs: undefined }]);
  });

  c('guard: failuresMax failures lock, in order within one call; checks tell the time left until it ends', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const payerId = newHexId();
    const failures = Array<'failure'>(failuresMax).fill('failure');
    t.deepEqual(
      (await store.guard(events(payerId, t0, ...failures, 'check'))).map((o) => o.lockedForMs),
      [...Array<undefined>(failuresMax - 1).fill(undefined), backoffBaseMs, backoffBaseMs],
    );
    t.is(await lockedForMs(store, payerId, t0 + backoffBaseMs - 1), 1);
    t.is(await lockedForMs(store, payerId, t0 + backoffBaseMs), undefined);
  });

  c('guard: a success ends the streak', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const payerId = newHexId();
    const almost = Array<'failure'>(failuresMax - 1).fill('failure');
    const outs = await store.guard(events(payerId, t0, ...almost, 'success', ...almost, 'check'));
    t.deepEqual(
      outs.map((o) => o.lockedForMs),
      Array<undefined>(2 * failuresMax).fill(undefined),
    );
    t.deepEqual((await store.guard(events(payerId, t0 + 1, 'failure')))[0], { lockedForMs: backoffBaseMs });
  });

  c('guard: lockouts double up to backoffMaxMs; streak and lockout count are forgotten memoryMs after the last failure', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const payerId = newHexId();
    const failures = Array<'failure'>(failuresMax).fill('failure');
    const lock = async (nowMs: number): Promise<number | undefined> => (await store.guard(events(payerId, nowMs, ...failures))).at(-1)!.lockedForMs;
    t.is(await lock(t0), backoffBaseMs);
    const t1 = t0 + backoffBaseMs;
    t.is(await lock(t1), 2 * backoffBaseMs);
    const t2 = t1 + 2 * backoffBaseMs;
    t.is(await lock(t2), backoffMaxMs);
    const t3 = t2 + memoryMs;
    t.true(t3 >= t2 + backoffMaxMs);
    t.is(await lockedForMs(store, payerId, t3), undefined);
    t.is(await lock(t3), backoffBaseMs, 'the lockout count was forgotten');
  });

  c('guard: guard failures and confirm failures share one streak per payer', async (t, open) => {
    const store = await open(strictLockout);
    const t0 = Date.now();
    const [a, b] = [newHexId(), newHexId()];
    await store.guard(events(a, t0, ...Array<'failure'>(failuresMax - 1).fill('failure')));
    t.is(await failOnce(store, a, t0 + 1), 'mismatch');
    t.is(await lockedForMs(store, a, t0 + 1), backoffBaseMs);
    t.is(lockedFor(await tryRight(store, a, t0 + 2)), backoffBaseMs - 1);
    for (let i = 0; i < failuresMax - 1; i++) t.is(await failOnce(store, b, t0), 'mismatch');
    t.deepEqual(await store.guard(events(b, t0 + 1, 'failure')), [{ lockedForMs: backoffBaseMs }]);
    t.is(lockedFor(await tryRight(store, b, t0 + 2)), backoffBaseMs - 1);
  });
}

// ------------------------------------------------------------------ pay numbers

function payNumberCases(c: Case): void {
  const ttlMs = 60_000;

  c('takePayNumber: returns the payer once; the same claimant again, another claimant nothing', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const [numberDigest, payerId] = [hex64(`pay number ${randomUUID()}`), newHexId()];
    await store.putPayNumber({ numberDigest, payerId, ttlMs, nowMs: t0 });
    t.is(await store.takePayNumber({ numberDigest, claimant: 'order-1', nowMs: t0 + 1 }), payerId);
    t.is(await store.takePayNumber({ numberDigest, claimant: 'order-1', nowMs: t0 + 2 }), payerId, 'a retried request');
    t.is(await store.takePayNumber({ numberDigest, claimant: 'order-2', nowMs: t0 + 3 }), undefined, 'single use');
    t.is(await store.takePayNumber({ numberDigest: hex64('never issued'), claimant: 'order-1', nowMs: t0 + 4 }), undefined);
  });

  c('takePayNumber: an expired number is nothing', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const [live, lapsed, payerId] = [hex64(`pay number ${randomUUID()}`), hex64(`pay number ${randomUUID()}`), newHexId()];
    await store.putPayNumber({ numberDigest: live, payerId, ttlMs, nowMs: t0 });
    await store.putPayNumber({ numberDigest: lapsed, payerId, ttlMs, nowMs: t0 });
    t.is(await store.takePayNumber({ numberDigest: live, claimant: 'order-1', nowMs: t0 + ttlMs - 1 }), payerId);
    t.is(await store.takePayNumber({ numberDigest: lapsed, claimant: 'order-2', nowMs: t0 + ttlMs }), undefined);
    t.is(await store.takePayNumber({ numberDigest: live, claimant: 'order-1', nowMs: t0 + ttlMs }), undefined, 'a taken number expires too');
  });
}

// ------------------------------------------------------------------ preconditions

function preconditionCases(c: Case): void {
  const assertion = { message: /^assertion failed/ };

  c('preconditions: a step call with more than stepItemsMax items is an assertion and changes nothing', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const drafts = Array.from({ length: stepItemsMax + 1 }, () => draft(t0));
    await t.throwsAsync(() => store.create(drafts.map((d) => createItem(d))), assertion);
    t.deepEqual(await store.get([drafts[0]!.payment.id, drafts[stepItemsMax]!.payment.id]), [undefined, undefined]);
    const d = drafts[0]!;
    await seed(store, d);
    await t.throwsAsync(() => store.confirm(Array.from({ length: stepItemsMax + 1 }, () => confirmItem(d.payment, t0 + 1, { answer: wrong }))), assertion);
    const commit: CommitItem = { paymentId: d.payment.id, expectVersion: 1, dueAtMs: null, nowMs: t0 + 1 };
    await t.throwsAsync(() => store.commit(Array.from({ length: stepItemsMax + 1 }, () => commit)), assertion);
    t.deepEqual(await getOne(store, d.payment.id), recordOf(d));
    t.deepEqual((await store.create(drafts.slice(0, stepItemsMax).map((x) => createItem(x)))).length, stepItemsMax, 'stepItemsMax items are fine');
  });

  c('preconditions: a malformed create item is an assertion and the call changes nothing', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const good = draft(t0);
    const bad = draft(t0);
    const malformed: CreateItem[] = [
      createItem({ ...bad, payment: { ...bad.payment, id: 'not-a-payment-id' } }),
      createItem({ ...bad, payment: { ...bad.payment, payerId: `g${bad.payment.payerId.slice(1)}` } }),
      createItem({ ...bad, digests: { SECOND_CODE: 'ABCDEF' } }),
      createItem(bad, t0, { fingerprint: hex64('x').slice(1) }),
      createItem({ ...bad, payment: { ...bad.payment, amount: 0n } }),
      createItem(bad, t0, { rateLimits: Array.from({ length: rateLimitsPerCreateMax + 1 }, (_, i) => ({ key: `rate-${i}`, limit: 9, windowMs: 60_000 })) }),
    ];
    for (const item of malformed) await t.throwsAsync(() => store.create([createItem(good), item]), assertion);
    t.deepEqual(await store.get([good.payment.id, bad.payment.id]), [undefined, undefined]);
    t.deepEqual(await store.create([createItem(good)]), [{ outcome: 'created', record: recordOf(good) }], 'the key was not used');
  });

  c('preconditions: a malformed confirm or commit item is an assertion and the call changes nothing', async (t, open) => {
    const store = await open();
    const t0 = Date.now();
    const d = draft(t0);
    await seed(store, d);
    const valid = confirmItem(d.payment, t0 + 1, { answer: wrong });
    const badConfirms: ConfirmItem[] = [
      { ...valid, key: 'other-key', paymentId: `G${d.payment.id.slice(1)}` },
      { ...valid, key: 'other-key', answer: { kind: 'digest', digest: 'short' } },
      { ...valid, key: 'other-key', fingerprint: 'not a digest' },
    ];
    for (const item of badConfirms) await t.throwsAsync(() => store.confirm([valid, item]), assertion);
    t.deepEqual(await getOne(store, d.payment.id), recordOf(d));
    const validCommit: CommitItem = { paymentId: d.payment.id, expectVersion: 1, dueAtMs: t0 + 5, nowMs: t0 + 1 };
    const badCommits: CommitItem[] = [
      { ...validCommit, paymentId: 'zz' },
      { ...validCommit, payment: d.payment, digests: { SECOND_CODE: 'not hex' } },
      { ...validCommit, claim: { scope: 'admin', key: 'k', fingerprint: 'nope', result: 'p', keyTtlMs } },
    ];
    for (const item of badCommits) await t.throwsAsync(() => store.commit([validCommit, item]), assertion);
    t.deepEqual(await getOne(store, d.payment.id), recordOf(d));
    t.is((await confirmOne(store, valid)).outcome, 'mismatch', 'the key was not used');
  });

  c('preconditions: a list needs a merchant or payer and a limit of 1..pageMax', async (t, open) => {
    const store = await open();
    await t.throwsAsync(() => store.list({ limit: 10 }), assertion);
    await t.throwsAsync(() => store.list({ merchantId: newHexId(), limit: 0 }), assertion);
    await t.throwsAsync(() => store.list({ merchantId: newHexId(), limit: pageMax + 1 }), assertion);
    t.deepEqual(await store.list({ merchantId: newHexId(), limit: pageMax }), []);
  });
}
