import { assertBatch, assertCommitItem } from '../checks.js';
import { shardOfPayment, type CommitItem, type CommitOutcome } from '../port.js';
import { perSlot } from './batch.js';
import type { StepContext } from './create-step.js';
import { slotOfShard } from './keys.js';
import { decodeRecord, encodeDigests, encodePaymentFields } from './record-codec.js';

type Reply = [string, unknown?];

/** One script call per batch (per shard slot on a Cluster); see commit-lua.ts. */
export async function commitStep(ctx: StepContext, items: readonly CommitItem[]): Promise<CommitOutcome[]> {
  assertBatch(items.length);
  items.forEach(assertCommitItem);
  return perSlot(items, ctx.cluster ? (item) => slotOfShard(shardOfPayment(item.paymentId)) : undefined, async (group) => {
    const keys: string[] = [];
    const args: (string | number)[] = [ctx.entrySlackMs, ctx.closedRetentionMs];
    for (const item of group) {
      keys.push(ctx.keys.record(item.paymentId), ctx.keys.due(shardOfPayment(item.paymentId)));
      const claim = item.claim;
      if (claim !== undefined) keys.push(ctx.keys.operation(claim.scope, item.paymentId, claim.key));
      const p = item.payment;
      const fields = p === undefined ? [] : [...encodePaymentFields(p, true), ...(item.digests === undefined ? [] : encodeDigests(item.digests, true))];
      const due = item.dueAtMs === undefined ? '' : item.dueAtMs === null ? 'n' : String(item.dueAtMs);
      args.push(item.paymentId, item.expectVersion, item.nowMs, due, p === undefined ? '0' : '1', p?.merchantId ?? '', p?.payerId ?? '', fields.length);
      args.push(claim?.fingerprint ?? '', claim?.keyTtlMs ?? 0, claim?.result ?? '', ...fields);
    }
    const replies = (await ctx.run('commit', keys, args)) as Reply[];
    return replies.map(commitOutcome);
  });
}

function commitOutcome([outcome, value]: Reply): CommitOutcome {
  switch (outcome) {
    case 'committed':
      return { outcome, record: decodeRecord(value as string[]) };
    case 'stale':
      return { outcome, record: value === undefined || value === null ? undefined : decodeRecord(value as string[]) };
    case 'replayed':
      return { outcome, result: value as string };
    case 'conflict':
      return { outcome };
  }
  throw new Error(`assertion failed: unknown commit reply ${outcome}`);
}
