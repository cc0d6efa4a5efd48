import { assertBatch, assertConfirmItem } from '../checks.js';
import { shardOfPayment, type ConfirmAnswer, type ConfirmItem, type ConfirmOutcome, type LockoutPolicy } from '../port.js';
import { perSlot } from './batch.js';
import type { StepContext } from './create-step.js';
import { slotOfShard } from './keys.js';
import { decodeRecord, encodeFactors, encodeOptional, factorDigit } from './record-codec.js';

type Reply = [string, string?, string[]?];

/** One script call per batch (per shard slot on a Cluster); see confirm-lua.ts. */
export async function confirmStep(ctx: StepContext, lockout: LockoutPolicy, items: readonly ConfirmItem[]): Promise<ConfirmOutcome[]> {
  assertBatch(items.length);
  items.forEach(assertConfirmItem);
  return perSlot(items, ctx.cluster ? (item) => slotOfShard(shardOfPayment(item.paymentId)) : undefined, async (group) => {
    const keys: string[] = [];
    const args: (string | number)[] = [ctx.entrySlackMs, lockout.failuresMax, lockout.backoffBaseMs, lockout.backoffMaxMs, lockout.memoryMs];
    for (const item of group) {
      keys.push(ctx.keys.record(item.paymentId), ctx.keys.operation(item.caller.scope, item.paymentId, item.key), ctx.keys.due(shardOfPayment(item.paymentId)));
      const [kind, first, second] = answerArgs(item.answer);
      args.push(item.paymentId, item.fingerprint, item.keyTtlMs, item.nowMs, factorDigit(item.factor), encodeFactors(item.after), kind, first, second);
      args.push(item.attemptsMax, item.driveLeaseMs, item.caller.merchantId ?? '', item.caller.payerId ?? '');
    }
    const replies = (await ctx.run('confirm', keys, args)) as Reply[];
    return replies.map(confirmOutcome);
  });
}

function answerArgs(answer: ConfirmAnswer): [string, string, string] {
  switch (answer.kind) {
    case 'digest':
      return ['d', answer.digest, ''];
    case 'wrong':
      return ['w', '', ''];
    case 'accept':
      return ['a', encodeOptional(answer.bankAuthorizationCode), ''];
    case 'decline':
      return ['x', answer.reason, answer.detail];
  }
}

function confirmOutcome([outcome, extra, flat]: Reply): ConfirmOutcome {
  if (outcome === 'not_found' || outcome === 'conflict') return { outcome };
  const record = decodeRecord(flat!);
  switch (outcome) {
    case 'replayed':
      return { outcome, result: extra!, record };
    case 'refused':
      return { outcome, refusal: extra!, record };
    case 'mismatch':
      return { outcome, attemptsLeft: Number(extra), record };
    case 'locked':
      return { outcome, retryAfterMs: Number(extra), record };
    case 'approved':
    case 'expired':
    case 'satisfied':
    case 'exhausted':
    case 'declined':
      return { outcome, record };
  }
  throw new Error(`assertion failed: unknown confirm reply ${outcome}`);
}
