import { unreachable } from '../../../ledger/assert.js';
import { terminalStates } from '../../model.js';
import { assert, assertBatch, assertCreateItem, copyRecord } from '../checks.js';
import { type CreateItem, type CreateOutcome, type RateLimitHit, rateWindowOf, shardOfPayer, shardOfPayment } from '../port.js';
import { scriptCalls, sharedKeyCalls } from './batch.js';
import { type StoreKeys, slotOfShard } from './keys.js';
import { decodeRecordValues, encodeRecord, type StoredValue } from './record-codec.js';
import type { RunScript } from './scripts.js';
import { slotOf } from './slot.js';

/** How the steps reach Redis and the settings every script gets. */
export interface StepContext {
  run: RunScript;
  keys: StoreKeys;
  /** True on a Redis Cluster: items grouped by slot, creates in phases. */
  cluster: boolean;
  /** Redis keeps an entry this long past its own expiry, ms (README.md, "Time"). */
  entrySlackMs: number;
  /** Final records leave Redis this long after they leave the due index, ms; 0: never. */
  closedRetentionMs: number;
}

type Reply = [string, ...unknown[]];

export function assertCreateItems(items: readonly CreateItem[]): void {
  assertBatch(items.length);
  for (const item of items) {
    assertCreateItem(item);
    assert(shardOfPayment(item.payment.id) === shardOfPayer(item.payment.payerId), `payment id ${item.payment.id} must carry its payer's shard (withShard)`);
  }
}

/** Single Redis: one script for the whole batch (cut at `scriptArgumentsMax`). Cluster: the phases of `createOnCluster`. */
export async function createStep(ctx: StepContext, items: readonly CreateItem[]): Promise<CreateOutcome[]> {
  assertCreateItems(items);
  if (items.length === 0) return [];
  if (ctx.cluster) return createOnCluster(ctx, items);
  const replies = await sharedKeyCalls(ctx.run, 'createAll', items, [ctx.entrySlackMs, ctx.closedRetentionMs], (item) => {
    const p = item.payment;
    const keys = [
      ctx.keys.create(p.merchantId, item.scope, item.key),
      ctx.keys.merchantIndex(p.merchantId),
      ctx.keys.record(p.id),
      ctx.keys.payerIndex(p.payerId),
      ctx.keys.due(shardOfPayment(p.id)),
    ];
    for (const hit of item.rateLimits) keys.push(rateKey(ctx, hit, item.nowMs));
    const fields = newRecordFields(item);
    const values: (string | number)[] = [item.fingerprint, item.keyTtlMs, item.nowMs, p.id, dueArg(item), retires(item), item.rateLimits.length, fields.length];
    for (const hit of item.rateLimits) values.push(hit.limit, windowEnd(hit, item.nowMs));
    for (const field of fields) values.push(field);
    return { keys, values };
  });
  return replies.map((reply, i) => createOutcome(reply as Reply, items[i]!));
}

/** The counter of the aligned window a hit at `nowMs` counts into (port.ts `RateLimitHit`). */
function rateKey(ctx: StepContext, hit: RateLimitHit, nowMs: number): string {
  return ctx.keys.rate(hit.key, rateWindowOf(nowMs, hit.windowMs));
}

/** The end of that window, Unix ms. */
function windowEnd(hit: RateLimitHit, nowMs: number): number {
  return (rateWindowOf(nowMs, hit.windowMs) + 1) * hit.windowMs;
}

function newRecordFields(item: CreateItem): string[] {
  return encodeRecord({ payment: item.payment, version: 1, digests: item.digests, dueAtMs: item.dueAtMs });
}

function dueArg(item: CreateItem): string {
  return item.dueAtMs === undefined ? '' : String(item.dueAtMs);
}

/** '1' when the new record is final and not due: with `closedRetentionMs` it expires at once. */
function retires(item: CreateItem): string {
  return terminalStates.has(item.payment.state) && item.dueAtMs === undefined ? '1' : '0';
}

export function createOutcome(reply: Reply, item: CreateItem): CreateOutcome {
  switch (reply[0]) {
    case 'created':
      return { outcome: 'created', record: copyRecord({ payment: item.payment, version: 1, digests: item.digests, dueAtMs: item.dueAtMs }) };
    case 'replayed':
      return { outcome: 'replayed', record: decodeRecordValues(reply[1] as StoredValue[]) };
    case 'missing':
      return { outcome: 'missing', paymentId: reply[1] as string };
    case 'refused':
      return { outcome: 'refused', refusal: reply[1] as string };
    case 'conflict':
      return { outcome: 'conflict' };
  }
  return unreachable(`unknown create reply ${String(reply[0])}`);
}

// ---------------------------------------------------------------- Redis Cluster

/** Where an item stands between the phases. */
interface Pending {
  item: CreateItem;
  /** Set once decided. */
  outcome?: CreateOutcome;
  /** The record phase's mode and the payment it reads or writes. */
  record?: { mode: 'i' | 'o' | 'n'; paymentId: string };
  refusal?: string;
}

/**
 * The phases, each one script call per slot (README.md, "Cluster phases"): (1) the merchant
 * slot: claim the create key and index the id (items with rate limits only look: their counters
 * count only for a new key); (2) for those, the counters, one round per position in their
 * lists, then the merchant slot again to claim the key for the payment or the refusal; (3) the
 * payer shard: insert the record (payer index, due index), or read the one the key names.
 */
async function createOnCluster(ctx: StepContext, items: readonly CreateItem[]): Promise<CreateOutcome[]> {
  const pending: Pending[] = items.map((item) => ({ item }));
  await keyPhase(ctx, pending, (p) => (p.item.rateLimits.length > 0 ? 'k' : 'c'));
  const counting = pending.filter((p) => p.outcome === undefined && p.record === undefined);
  if (counting.length > 0) {
    await countPhases(ctx, counting);
    await keyPhase(ctx, counting, (p) => (p.refusal === undefined ? 'c' : 'r'));
  }
  await recordPhase(
    ctx,
    pending.filter((p) => p.record !== undefined),
  );
  return pending.map((p) => p.outcome!);
}

async function keyPhase(ctx: StepContext, pending: readonly Pending[], modeOf: (p: Pending) => 'c' | 'r' | 'k'): Promise<void> {
  const replies = await scriptCalls(
    ctx.run,
    'createKey',
    pending,
    (p) => slotOf(ctx.keys.merchantIndex(p.item.payment.merchantId)),
    [ctx.entrySlackMs, ctx.closedRetentionMs],
    (p) => {
      const { item } = p;
      const mode = modeOf(p);
      return {
        keys: [ctx.keys.create(item.payment.merchantId, item.scope, item.key), ctx.keys.merchantIndex(item.payment.merchantId)],
        args: [mode, item.fingerprint, item.keyTtlMs, item.nowMs, mode === 'r' ? p.refusal! : item.payment.id],
      };
    },
  );
  replies.forEach((reply, i) => keyStatus(pending[i]!, ...(reply as [string, string])));
}

function keyStatus(p: Pending, status: string, value: string): void {
  if (status === 'absent') return;
  if (status === 'conflict') p.outcome = { outcome: 'conflict' };
  else if (status === 'refused') p.outcome = { outcome: 'refused', refusal: value };
  else if (status === 'new') p.record = { mode: 'i', paymentId: value };
  else if (status === 'named') p.record = { mode: value === p.item.payment.id ? 'o' : 'n', paymentId: value };
  else unreachable(`unknown create key status ${status}`);
}

/** Round h counts every still-counting item's counter h (one script per counter slot); the first over its limit refuses. */
async function countPhases(ctx: StepContext, counting: readonly Pending[]): Promise<void> {
  const rounds = Math.max(...counting.map((p) => p.item.rateLimits.length));
  for (let h = 0; h < rounds; h++) {
    const round = counting.filter((p) => p.refusal === undefined && h < p.item.rateLimits.length);
    const key = (p: Pending): string => rateKey(ctx, p.item.rateLimits[h]!, p.item.nowMs);
    const counted = await scriptCalls(
      ctx.run,
      'createCount',
      round,
      (p) => slotOf(key(p)),
      [ctx.entrySlackMs, ctx.closedRetentionMs],
      (p) => {
        const hit = p.item.rateLimits[h]!;
        return { keys: [key(p)], args: [hit.limit, windowEnd(hit, p.item.nowMs), p.item.nowMs] };
      },
    );
    counted.forEach((ok, i) => {
      if (ok !== 1) round[i]!.refusal = `rate:${h}`;
    });
  }
}

async function recordPhase(ctx: StepContext, pending: readonly Pending[]): Promise<void> {
  const replies = await scriptCalls(
    ctx.run,
    'createRecord',
    pending,
    (p) => slotOfShard(shardOfPayment(p.record!.paymentId)),
    [ctx.entrySlackMs, ctx.closedRetentionMs],
    ({ item, record }) => {
      const shard = shardOfPayment(record!.paymentId);
      // Reading another payment ('n') touches its record only: the other two keys name its shard's due index, unused.
      const payerIndex = record!.mode === 'n' ? ctx.keys.due(shard) : ctx.keys.payerIndex(item.payment.payerId);
      const fields = record!.mode === 'n' ? [] : newRecordFields(item);
      return {
        keys: [ctx.keys.record(record!.paymentId), payerIndex, ctx.keys.due(shard)],
        args: [record!.mode, record!.paymentId, dueArg(item), retires(item), fields.length, ...fields],
      };
    },
  );
  replies.forEach((reply, i) => (pending[i]!.outcome = createOutcome(reply as Reply, pending[i]!.item)));
}
