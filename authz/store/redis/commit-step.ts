import { unreachable } from '../../../ledger/assert.js';
import { assertBatch, assertCommitItem, copyRecord } from '../checks.js';
import { type CommitItem, type CommitOutcome, operationKeysPerPaymentMax, shardOfPayment } from '../port.js';
import { scriptCalls } from './batch.js';
import type { StepContext } from './create-step.js';
import { slotOfShard } from './keys.js';
import { packStrings } from './pack.js';
import { decodeRecordValues, encodeDigests, encodePaymentFields, operationField, type StoredValue } from './record-codec.js';

type Reply = [string, unknown?];

/** One script call per batch (per shard slot on a Cluster, cut at `scriptArgumentsMax`); see commit-lua.ts. */
export async function commitStep(ctx: StepContext, items: readonly CommitItem[]): Promise<CommitOutcome[]> {
  assertBatch(items.length);
  items.forEach(assertCommitItem);
  const head = [ctx.entrySlackMs, ctx.closedRetentionMs, operationKeysPerPaymentMax];
  const replies = await scriptCalls(ctx.run, 'commit', items, ctx.cluster ? (item) => slotOfShard(shardOfPayment(item.paymentId)) : undefined, head, (item) => {
    const p = item.payment;
    const claim = item.claim;
    const fields =
      item.settle === true
        ? settleFields(item)
        : p === undefined
          ? []
          : [...encodePaymentFields(p, true), ...(item.digests === undefined ? [] : encodeDigests(item.digests, true))];
    const due = item.dueAtMs === undefined ? '' : item.dueAtMs === null ? 'n' : String(item.dueAtMs);
    return {
      keys: [ctx.keys.record(item.paymentId), ctx.keys.due(shardOfPayment(item.paymentId))],
      args: [
        packStrings([
          item.paymentId,
          item.expectVersion,
          item.nowMs,
          due,
          p === undefined ? '0' : '1',
          p?.merchantId ?? '',
          p?.payerId ?? '',
          fields.length,
          claim === undefined ? '' : operationField(claim.scope, claim.key),
          claim?.fingerprint ?? '',
          claim?.keyTtlMs ?? 0,
          claim?.result ?? '',
          item.settle === true ? '1' : '0',
          ...fields,
        ]),
      ], // prettier-ignore
    };
  });
  return replies.map((reply, i) => commitOutcome(reply as Reply, items[i]!));
}

/**
 * What a settle sends (port.ts `CommitItem.settle`): updatedAtMs and the new version. The script
 * writes the rest of what changes — state SUCCEEDED and the due time; the fields a SUCCEEDED
 * payment never has (decline reason and detail, sealed first code, digests) are left, void
 * (record-codec.ts decodes none for a SUCCEEDED record), and so is the rest of the record: the
 * caller built the payment from it.
 */
function settleFields(item: CommitItem): string[] {
  return [String(item.payment!.updatedAtMs), String(item.expectVersion + 1)];
}

function commitOutcome([outcome, value]: Reply, item: CommitItem): CommitOutcome {
  switch (outcome) {
    case 'committed':
      return { outcome, record: decodeRecordValues(value as StoredValue[]) };
    case 'settled':
      return {
        outcome: 'committed',
        record: copyRecord({ payment: item.payment!, version: item.expectVersion + 1, digests: {}, dueAtMs: item.dueAtMs ?? undefined }),
      };
    case 'stale':
      return { outcome, record: value === undefined || value === null ? undefined : decodeRecordValues(value as StoredValue[]) };
    case 'replayed':
      return { outcome, result: value as string };
    case 'conflict':
      return { outcome };
  }
  return unreachable(`unknown commit reply ${outcome}`);
}
