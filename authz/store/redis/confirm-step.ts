import { unreachable } from '../../../ledger/assert.js';
import { assertBatch, assertConfirmItem } from '../checks.js';
import { type ConfirmAnswer, type ConfirmItem, type ConfirmOutcome, type LockoutPolicy, operationKeysPerPaymentMax, shardOfPayment } from '../port.js';
import { scriptCalls } from './batch.js';
import type { StepContext } from './create-step.js';
import { slotOfShard } from './keys.js';
import { packStrings } from './pack.js';
import { decodeRecordValues, encodeFactors, encodeOptional, factorDigit, operationField, type StoredValue } from './record-codec.js';

type Reply = [string, string?, StoredValue[]?];

/** One script call per batch (per shard slot on a Cluster, cut at `scriptArgumentsMax`); see confirm-lua.ts. */
export async function confirmStep(ctx: StepContext, lockout: LockoutPolicy, items: readonly ConfirmItem[]): Promise<ConfirmOutcome[]> {
  assertBatch(items.length);
  items.forEach(assertConfirmItem);
  const head = [ctx.entrySlackMs, lockout.failuresMax, lockout.backoffBaseMs, lockout.backoffMaxMs, lockout.memoryMs, operationKeysPerPaymentMax];
  const replies = await scriptCalls(
    ctx.run,
    'confirm',
    items,
    ctx.cluster ? (item) => slotOfShard(shardOfPayment(item.paymentId)) : undefined,
    head,
    (item) => {
      const [kind, first, second] = answerArgs(item.answer);
      return {
        keys: [ctx.keys.record(item.paymentId)],
        args: [
          packStrings([
            item.paymentId,
            item.fingerprint,
            item.keyTtlMs,
            item.nowMs,
            factorDigit(item.factor),
            encodeFactors(item.after),
            kind,
            first,
            second,
            item.attemptsMax,
            item.caller.merchantId ?? '',
            item.caller.payerId ?? '',
            operationField(item.caller.scope, item.key),
          ]),
        ], // prettier-ignore
      };
    },
  );
  return replies.map((reply) => confirmOutcome(reply as Reply));
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
  const record = decodeRecordValues(flat!);
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
  return unreachable(`unknown confirm reply ${outcome}`);
}
