import { Code } from '@connectrpc/connect';
import { defaultPaymentLimits } from '../../../authz/steps/context.js';
import { type Payment, PaymentState } from '../../../gen/countersign/v1/common_pb.js';
import { isFinal, type RetryPolicy, reasonOf, retried } from './clients.js';
import type { FlowContext, PaymentRecord } from './payment-flows.js';

/**
 * The finish phase of a scenario, once its faults stopped: every client sends each request it
 * gave up on again, with the same idempotency key, until the server gives a final answer, then
 * reads every payment its last answer left APPROVED (its post due) until the payment is final.
 * After it, every client has its final answer, so the audit may require that what the ledger
 * posted is exactly what the clients were told SUCCEEDED.
 *
 * A create retried within its lease answers IN_PROGRESS with `retry_after_ms`: the client waits
 * that long (up to the lease) and the retry after it finishes the payment itself. Bounded by
 * `finishRetries` per request and by the caller's deadline for the phase.
 */

/** A create's lease in the product (authz/steps/context.ts): a retry within it may be told IN_PROGRESS. */
export const createLeaseMs = defaultPaymentLimits.createLeaseMs;

/** Per request: enough to wait out one lease (one IN_PROGRESS pause of up to `createLeaseMs`) and a restart or two. */
export const finishRetries: RetryPolicy = {
  attemptsMax: 25,
  delayMsFirst: 200,
  delayMsMax: 2_000,
  inProgressWaitMsMax: createLeaseMs,
  inProgressAnswersMax: 4,
};
/** Clients finishing at once. */
export const finishConcurrency = 16;
/** Reads of one APPROVED payment, at most, `settleReadPauseMs` apart. */
export const settleReadsMax = 10;
const settleReadPauseMs = 500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface FinishOutcome {
  /** Requests sent again. */
  resent: number;
  /** Requests still without a final answer (at the deadline, or after `finishRetries`). */
  left: number;
  /** Payments read until final because the client's last answer left them APPROVED. */
  settleReads: number;
  /** What the resent requests were answered: `finish_<step>_<OK state | code[:reason]>` → count. */
  answers: Record<string, number>;
}

function labelOf(step: string, out: Awaited<ReturnType<typeof retried<unknown>>>): string {
  if (out.ok) {
    const p = (out.value as { payment?: Payment } | undefined)?.payment;
    return `finish_${step}_${p === undefined ? 'OK' : PaymentState[p.state]}`;
  }
  const reason = reasonOf(out.error);
  return `finish_${step}_${Code[out.error.code]}${reason === undefined ? '' : `:${reason}`}${isFinal(out) ? '' : ':gave-up'}`;
}

async function resend(ctx: FlowContext, rec: PaymentRecord, deadlineAtMs: number, outcome: FinishOutcome): Promise<void> {
  const pending = rec.unfinished.splice(0);
  for (const u of pending) {
    if (Date.now() >= deadlineAtMs) {
      rec.unfinished.push(u);
      continue;
    }
    outcome.resent += 1;
    const out = await retried(u.redo, finishRetries, ctx.stats, ctx.answers.observer(u.key, u.kind));
    const label = labelOf(u.step, out);
    outcome.answers[label] = (outcome.answers[label] ?? 0) + 1;
    if (!isFinal(out)) {
      rec.unfinished.push(u);
      continue;
    }
    const payment = out.ok ? (out.value as { payment?: Payment } | undefined)?.payment : undefined;
    if (payment === undefined) continue;
    rec.acked.push(payment.state);
    if (u.kind === 'create') rec.paymentId ??= payment.id;
  }
}

/** Reads the payment as its merchant while it is APPROVED (a read drives its post), at most `settleReadsMax` times. */
async function settle(ctx: FlowContext, rec: PaymentRecord, deadlineAtMs: number, outcome: FinishOutcome): Promise<void> {
  if (rec.paymentId === undefined || rec.acked.at(-1) !== PaymentState.APPROVED) return;
  outcome.settleReads += 1;
  for (let i = 0; i < settleReadsMax && Date.now() < deadlineAtMs; i++) {
    const out = await retried(
      () => rec.plan.merchant.api.payments.getPayment({ paymentId: rec.paymentId! }),
      finishRetries,
      ctx.stats,
      ctx.answers.observer(undefined, 'read'),
    );
    const state = out.ok ? out.value.payment?.state : undefined;
    if (state !== undefined) rec.acked.push(state);
    if (state !== undefined && state !== PaymentState.APPROVED) return;
    await sleep(settleReadPauseMs);
  }
}

/** Finishes every record's unfinished requests (`finishConcurrency` clients at once) before `deadlineAtMs`. */
export async function finishRequests(ctx: FlowContext, records: PaymentRecord[], deadlineAtMs: number): Promise<FinishOutcome> {
  const outcome: FinishOutcome = { resent: 0, left: 0, settleReads: 0, answers: {} };
  const queue = records.filter((r) => r.unfinished.length > 0 || r.acked.at(-1) === PaymentState.APPROVED);
  let next = 0;
  const worker = async () => {
    while (next < queue.length) {
      const rec = queue[next++]!;
      await resend(ctx, rec, deadlineAtMs, outcome);
      await settle(ctx, rec, deadlineAtMs, outcome);
    }
  };
  await Promise.all(Array.from({ length: finishConcurrency }, worker));
  outcome.left = records.reduce((n, r) => n + r.unfinished.length, 0);
  return outcome;
}
