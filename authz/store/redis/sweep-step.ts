import type { Cluster, Redis } from 'ioredis';
import { assert, assertBatch, assertId } from '../checks.js';
import { type GuardEvent, type GuardOutcome, type LockoutPolicy, type PaymentRecord, pageMax, shardOfPayer, storeShards } from '../port.js';
import { callRedis } from '../redis-client.js';
import { scriptCalls } from './batch.js';
import type { StepContext } from './create-step.js';
import { slotOfShard } from './keys.js';
import { decodeRecordValues, type StoredValue } from './record-codec.js';

/**
 * The sweeper's claims. The due indexes are per shard; a call looks at `shardsPerClaim` of them,
 * from a cursor that rotates over all `storeShards` (README.md, "Bounds"): a call that ends
 * short of `limit` has looked at all its shards and the next call starts after them; a call that
 * fills `limit` stops in some shard and the next starts after that one. So every shard is looked
 * at within ⌈storeShards / shardsPerClaim⌉ calls that come back short, and within
 * `storeShards` calls whatever they return.
 */
export class DueCursor {
  private next = 0;

  constructor(readonly shardsPerClaim: number) {
    assert(Number.isSafeInteger(shardsPerClaim) && shardsPerClaim >= 1 && shardsPerClaim <= storeShards, `dueShardsPerClaim must be 1..${storeShards}`);
  }

  /** The shards the next call looks at, in order. */
  window(): number[] {
    return Array.from({ length: this.shardsPerClaim }, (_, i) => (this.next + i) % storeShards);
  }

  /** The call looked at the first `examined` shards of its window. */
  advance(examined: number): void {
    this.next = (this.next + Math.max(1, examined)) % storeShards;
  }
}

export interface ClaimDueRequest {
  nowMs: number;
  limit: number;
  leaseMs: number;
}

export function assertClaimDue(r: ClaimDueRequest): void {
  assert(Number.isSafeInteger(r.nowMs) && r.nowMs >= 0, 'nowMs must be Unix milliseconds');
  assert(Number.isSafeInteger(r.limit) && r.limit >= 0 && r.limit <= pageMax, `limit must be 0..${pageMax}`);
  assert(Number.isSafeInteger(r.leaseMs) && r.leaseMs >= 1, 'leaseMs must be a positive integer of milliseconds');
}

/** Single Redis: one script over the window's due indexes. */
export async function claimDueSingle(ctx: StepContext, cursor: DueCursor, r: ClaimDueRequest): Promise<PaymentRecord[]> {
  const window = cursor.window();
  const reply = (await ctx.run('claimDue', window.map(ctx.keys.due), [ctx.entrySlackMs, r.nowMs, r.limit, r.leaseMs])) as [number, ...string[][]];
  cursor.advance(reply[0]);
  return reply.slice(1).map((values) => decodeRecordValues(values as StoredValue[]));
}

/**
 * Cluster: how many are due in each shard of the window (ZCOUNT, concurrently: one round trip
 * per node), then the claim script on each shard that has some, one after another in window
 * order, each asking for what is left of `limit`: no call claims more than `limit`, and two
 * concurrent sweepers that counted the same records share them (the second takes what the
 * first left). An idle call is the one round of ZCOUNTs.
 */
export async function claimDueCluster(ctx: StepContext, client: Redis | Cluster, cursor: DueCursor, r: ClaimDueRequest): Promise<PaymentRecord[]> {
  const window = cursor.window();
  const counts = await callRedis('claimDue', () => Promise.all(window.map((shard) => client.zcount(ctx.keys.due(shard), '-inf', r.nowMs))));
  const claimed: PaymentRecord[] = [];
  let examined = window.length;
  for (let i = 0; i < window.length && claimed.length < r.limit; i++) {
    if (counts[i] === 0) continue;
    const reply = (await ctx.run('claimDue', [ctx.keys.due(window[i]!)], [ctx.entrySlackMs, r.nowMs, r.limit - claimed.length, r.leaseMs])) as [
      number,
      ...string[][],
    ];
    for (const values of reply.slice(1)) claimed.push(decodeRecordValues(values as StoredValue[]));
    if (claimed.length === r.limit) examined = i + 1;
  }
  cursor.advance(examined);
  return claimed;
}

const guardKinds = { check: 'c', failure: 'f', success: 's' } as const;

/** One script call per batch (per shard slot on a Cluster, cut at `scriptArgumentsMax`); see sweep-lua.ts. */
export async function guardStep(ctx: StepContext, lockout: LockoutPolicy, events: readonly GuardEvent[]): Promise<GuardOutcome[]> {
  assertBatch(events.length);
  for (const e of events) {
    assertId(e.payerId, 'payer id');
    assert(e.event in guardKinds, `unknown guard event ${e.event}`);
    assert(Number.isSafeInteger(e.nowMs) && e.nowMs >= 0, 'nowMs must be Unix milliseconds');
  }
  const head = [ctx.entrySlackMs, lockout.failuresMax, lockout.backoffBaseMs, lockout.backoffMaxMs, lockout.memoryMs];
  const replies = await scriptCalls(ctx.run, 'guard', events, ctx.cluster ? (e) => slotOfShard(shardOfPayer(e.payerId)) : undefined, head, (e) => ({
    keys: [ctx.keys.guard(e.payerId)],
    args: [guardKinds[e.event], e.nowMs],
  }));
  return replies.map((ms) => ({ lockedForMs: (ms as number) < 0 ? undefined : (ms as number) }));
}
