import { Code } from '@connectrpc/connect';
import { deriveSecondCode } from '../../../authz/codes/challenge.js';
import { Channel, type Payment, PaymentState } from '../../../gen/countersign/v1/common_pb.js';
import { formatMoney } from '../../../ledger/chart.js';
import type { MerchantActor, PayerActor } from './actors.js';
import type { AnswerLog, RequestKind } from './answer-log.js';
import { type CallStats, isFinal, type Outcome, type RetryPolicy, reasonOf, retried } from './clients.js';
import type { World } from './world.js';

/**
 * One payment as a client drives it, with every fact the audit needs afterwards: what the
 * server acknowledged, and whether the client ever gave the right proof. Paths:
 *
 * - `app` (M1b): the merchant creates it from the payer's app; the payer's terminal reads the
 *   first code (GetChallenge), derives the second code with its enrolled secret, confirms;
 * - `sms-code` (M1b + M1c): the first code arrives by SMS through the telco bridge on the
 *   simulated handset; the payer derives the second code and the merchant submits it;
 * - `sms-reply` (M2 pre-step): the SMS code is replied from the handset (the bridge relays it);
 *   if no answer shows within a bound, the payer's app submits the same code.
 *
 * Scripts: `right`, `wrong-then-right` (one wrong code first), `decline` (the payer refuses),
 * `abandon` (nobody answers; the merchant cancels at the end). Every call retries with the same
 * idempotency key on transient failures, within `RetryPolicy`; a call that ran out of retries
 * without a final answer is kept on the record (`unfinished`) for the finish phase (finish.ts),
 * which sends the same request again once the faults stopped. Every attempt's answer goes to the
 * scenario's `AnswerLog`.
 */

export type PaymentKind = 'app' | 'sms-code' | 'sms-reply';
export type Script = 'right' | 'wrong-then-right' | 'decline' | 'abandon';

export interface PlannedPayment {
  key: string;
  payer: PayerActor;
  merchant: MerchantActor;
  amount: bigint;
  kind: PaymentKind;
  script: Script;
}

/** A keyed request that ran out of retries without a final answer: the same request, to send again. */
export interface UnfinishedRequest {
  key: string;
  kind: RequestKind;
  /** e.g. create, confirm, decline, read */
  step: string;
  redo: () => Promise<unknown>;
}

export interface PaymentRecord {
  plan: PlannedPayment;
  paymentId: string | undefined;
  /** States the server answered with (OK responses only), in order. */
  acked: PaymentState[];
  /** A proof computed from a code delivered for this payment was sent at least once. */
  proofSent: boolean;
  wrongSent: number;
  declineSent: boolean;
  /** Attempts beyond the first, over all of this payment's calls (transient failures retried with the same key). */
  retries: number;
  /** How the client's story ended: succeeded, declined, insufficient-funds, undelivered, gave-up:<step>, … */
  result: string;
  /** Requests given up without a final answer, in order (the finish phase sends them again). */
  unfinished: UnfinishedRequest[];
  /** When the client started creating the payment, and (SMS paths) when it gave up waiting for its code, ms. */
  startedAtMs: number;
  smsMissedAtMs: number | undefined;
}

export interface FlowContext {
  world: World;
  stats: CallStats;
  policy: RetryPolicy;
  secrets: Set<string>;
  answers: AnswerLog;
}

/** How long a handset waits for its SMS, milliseconds (a bridge restart or two fits in). */
export const smsWaitMs = 20_000;
/** How long a replied SMS code has to approve the payment before the app submits it, milliseconds. */
export const replyWaitMs = 8_000;
/** Fresh first codes a client tries after a "wrong" right code (a crash-resumed create mints a new one). */
export const codeRoundsMax = 3;
const pollMs = 50;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const finalStates = new Set([PaymentState.SUCCEEDED, PaymentState.DECLINED, PaymentState.EXPIRED, PaymentState.CANCELLED]);

/** Which request a call sends: its idempotency key (none for reads), its kind and step. */
interface Request {
  key: string | undefined;
  kind: RequestKind;
  step: string;
}

const read = (step: string): Request => ({ key: undefined, kind: 'read', step });

/**
 * One call of this payment, retried with the same request on transient failures; the retries are
 * counted on the record, every answer goes to the answer log, and a call given up without a final
 * answer is kept for the finish phase.
 */
async function call<T>(ctx: FlowContext, rec: PaymentRecord, request: Request, run: () => Promise<T>): Promise<Outcome<T>> {
  const out = await retried(run, ctx.policy, ctx.stats, ctx.answers.observer<T>(request.key, request.kind));
  rec.retries += out.attempts - 1;
  if (!isFinal(out) && request.key !== undefined) rec.unfinished.push({ key: request.key, kind: request.kind, step: request.step, redo: run });
  return out;
}

function ack(rec: PaymentRecord, payment: Payment | undefined): Payment | undefined {
  if (payment !== undefined) rec.acked.push(payment.state);
  return payment;
}

function lastAck(rec: PaymentRecord): PaymentState | undefined {
  return rec.acked[rec.acked.length - 1];
}

function resultOfState(state: PaymentState | undefined): string {
  return state === undefined ? 'unknown' : PaymentState[state].toLowerCase();
}

function failure(step: string, outcome: Outcome<unknown>): string {
  if (outcome.ok) return step;
  const reason = reasonOf(outcome.error);
  return `${step}:${Code[outcome.error.code]}${reason === undefined ? '' : `:${reason}`}`;
}

function wrongCodeFor(code: string): string {
  return code.slice(0, -1) + String((Number(code.at(-1)) + 1) % 10);
}

export async function runPayment(ctx: FlowContext, plan: PlannedPayment): Promise<PaymentRecord> {
  const rec: PaymentRecord = {
    plan,
    paymentId: undefined,
    acked: [],
    proofSent: false,
    wrongSent: 0,
    declineSent: false,
    retries: 0,
    result: 'unknown',
    unfinished: [],
    startedAtMs: Date.now(),
    smsMissedAtMs: undefined,
  };
  const smsBaseline = plan.kind === 'app' ? 0 : ctx.world.smsc.messagesTo(plan.payer.phone).length;
  const created = await call(ctx, rec, { key: plan.key, kind: 'create', step: 'create' }, () =>
    plan.merchant.api.payments.createPayment({
      idempotencyKey: plan.key,
      payer: { case: 'payerId', value: plan.payer.id },
      amount: plan.amount,
      currency: 'USD',
      // The key as description: the audit maps server records back to the plan by it.
      description: plan.key,
      channel: plan.kind === 'app' ? Channel.APP : Channel.MERCHANT,
    }),
  );
  if (!created.ok) {
    const reason = reasonOf(created.error);
    rec.result = reason === 'INSUFFICIENT_FUNDS' ? 'insufficient-funds' : reason === 'DELIVERY_FAILED' ? 'undelivered' : failure('create', created);
    return rec;
  }
  const payment = ack(rec, created.value.payment)!;
  rec.paymentId = payment.id;
  if (payment.state !== PaymentState.CHALLENGED) {
    rec.result = resultOfState(payment.state);
    return rec;
  }
  if (plan.script === 'abandon') {
    rec.result = 'abandoned';
    return rec;
  }
  if (plan.script === 'decline') return decline(ctx, rec);
  if (plan.kind === 'app') return proveOnTerminal(ctx, rec, payment);
  if (plan.kind === 'sms-code') return proveWithSmsCode(ctx, rec, payment, smsBaseline);
  return proveByReply(ctx, rec, smsBaseline);
}

async function decline(ctx: FlowContext, rec: PaymentRecord): Promise<PaymentRecord> {
  rec.declineSent = true;
  const { plan } = rec;
  const out = await call(ctx, rec, { key: `${plan.key}:decline`, kind: 'operation', step: 'decline' }, () =>
    plan.payer.api.payer.declinePayment({ idempotencyKey: `${plan.key}:decline`, paymentId: rec.paymentId!, reason: 'not mine' }),
  );
  rec.result = out.ok ? resultOfState(ack(rec, out.value.payment)?.state) : failure('decline', out);
  return rec;
}

/** The first code as the payer's own terminal reads it; undefined when the challenge is gone. */
async function firstCodeOnTerminal(ctx: FlowContext, rec: PaymentRecord): Promise<string | undefined> {
  const out = await call(ctx, rec, read('challenge'), () => rec.plan.payer.api.payer.getChallenge({ paymentId: rec.paymentId! }));
  if (!out.ok || out.value.firstCode === '') return undefined;
  ctx.secrets.add(out.value.firstCode);
  return out.value.firstCode;
}

function secondCode(ctx: FlowContext, rec: PaymentRecord, payment: Payment, firstCode: string): string {
  const code = deriveSecondCode(rec.plan.payer.secret, {
    firstCode,
    amount: payment.amount,
    currency: payment.currency,
    payeeAccountId: payment.payeeAccountId,
  });
  ctx.secrets.add(code);
  return code;
}

type Confirm = (idempotencyKey: string, code: string) => Promise<{ payment?: Payment }>;

/** One wrong code first (the `wrong-then-right` script); PERMISSION_DENIED is the expected answer. */
async function sendWrong(ctx: FlowContext, rec: PaymentRecord, confirm: Confirm, right: string): Promise<void> {
  if (rec.plan.script !== 'wrong-then-right' || rec.wrongSent > 0) return;
  rec.wrongSent += 1;
  const wrong = wrongCodeFor(right);
  ctx.secrets.add(wrong);
  const key = `${rec.plan.key}:wrong`;
  const out = await call(ctx, rec, { key, kind: 'operation', step: 'confirm-wrong' }, () => confirm(key, wrong));
  if (out.ok) ack(rec, out.value.payment);
}

/**
 * Sends the right code under a key of its own. 'stale' when the server says it is wrong: a
 * crash-resumed create may have minted a new first code since this one was read.
 */
async function sendRight(ctx: FlowContext, rec: PaymentRecord, confirm: Confirm, code: string, round: number): Promise<'done' | 'stale'> {
  rec.proofSent = true;
  const key = `${rec.plan.key}:confirm:${round}`;
  const out = await call(ctx, rec, { key, kind: 'operation', step: 'confirm' }, () => confirm(key, code));
  if (out.ok) {
    rec.result = resultOfState(ack(rec, out.value.payment)?.state);
    return 'done';
  }
  if (out.error.code === Code.PermissionDenied) return 'stale';
  rec.result = failure('confirm', out);
  return 'done';
}

async function proveOnTerminal(ctx: FlowContext, rec: PaymentRecord, payment: Payment): Promise<PaymentRecord> {
  const api = rec.plan.payer.api.payer;
  const confirm: Confirm = (idempotencyKey, code) => api.confirmPayment({ idempotencyKey, paymentId: payment.id, proof: { case: 'secondCode', value: code } });
  for (let round = 0; round < codeRoundsMax; round++) {
    const first = await firstCodeOnTerminal(ctx, rec);
    if (first === undefined) return settleFromServer(ctx, rec, 'no-first-code');
    const code = secondCode(ctx, rec, payment, first);
    await sendWrong(ctx, rec, confirm, code);
    if ((await sendRight(ctx, rec, confirm, code, round)) === 'done') return rec;
  }
  rec.result = 'code-refused';
  return rec;
}

/**
 * The newest SMS code for this payment to the payer after `baseline` messages, waiting at most
 * `smsWaitMs`. A message is this payment's when it names its amount and payee (the notifier's text,
 * services/telco-notifier.ts): the previous payment of the same payer may still be delivering its
 * code after this one's baseline was taken (the bridge answers before the SMSC has the message).
 */
async function smsCode(ctx: FlowContext, rec: PaymentRecord, baseline: number, notCode?: string): Promise<string | undefined> {
  const deadline = Date.now() + smsWaitMs;
  const names = `for ${formatMoney(rec.plan.amount, 'USD')} to ${rec.plan.merchant.name}.`;
  for (;;) {
    const inbox = ctx.world.smsc
      .messagesTo(rec.plan.payer.phone)
      .slice(baseline)
      .filter((m) => m.text.includes(names));
    const code = inbox.length === 0 ? undefined : /code (\d{8})/.exec(inbox[inbox.length - 1]!.text)?.[1];
    if (code !== undefined && code !== notCode) {
      ctx.secrets.add(code);
      return code;
    }
    if (Date.now() > deadline) {
      rec.smsMissedAtMs ??= Date.now();
      return undefined;
    }
    await sleep(pollMs);
  }
}

async function proveWithSmsCode(ctx: FlowContext, rec: PaymentRecord, payment: Payment, baseline: number): Promise<PaymentRecord> {
  const api = rec.plan.merchant.api.payments;
  const confirm: Confirm = (idempotencyKey, code) => api.confirmPaymentAsMerchant({ idempotencyKey, paymentId: payment.id, secondCode: code });
  let previous: string | undefined;
  for (let round = 0; round < codeRoundsMax; round++) {
    const first = await smsCode(ctx, rec, baseline, previous);
    if (first === undefined) return settleFromServer(ctx, rec, 'no-sms');
    previous = first;
    const code = secondCode(ctx, rec, payment, first);
    await sendWrong(ctx, rec, confirm, code);
    if ((await sendRight(ctx, rec, confirm, code, round)) === 'done') return rec;
  }
  rec.result = 'code-refused';
  return rec;
}

async function proveByReply(ctx: FlowContext, rec: PaymentRecord, baseline: number): Promise<PaymentRecord> {
  const code = await smsCode(ctx, rec, baseline);
  if (code === undefined) return settleFromServer(ctx, rec, 'no-sms');
  rec.proofSent = true;
  // The reply needs the bridge bound to the SMSC; a dead bridge loses it (the app path follows).
  await ctx.world
    .handset(rec.plan.payer.phone)
    .reply(code)
    .catch(() => undefined);
  const state = await waitWhileChallenged(ctx, rec, replyWaitMs);
  if (state !== undefined && state !== PaymentState.CHALLENGED) {
    rec.result = resultOfState(state);
    return rec;
  }
  const api = rec.plan.payer.api.payer;
  const confirm: Confirm = (idempotencyKey, otp) => api.confirmPayment({ idempotencyKey, paymentId: rec.paymentId!, proof: { case: 'smsOtp', value: otp } });
  const sent = await sendRight(ctx, rec, confirm, code, 0);
  // A relayed reply that landed meanwhile makes the app's answer "not waiting": read the truth.
  if (sent === 'stale' || rec.result.startsWith('confirm:FailedPrecondition')) return settleFromServer(ctx, rec, sent === 'stale' ? 'otp-refused' : rec.result);
  return rec;
}

/** Polls the payment (as its merchant) while it is CHALLENGED, at most `waitMs`; the last state read. */
async function waitWhileChallenged(ctx: FlowContext, rec: PaymentRecord, waitMs: number): Promise<PaymentState | undefined> {
  const deadline = Date.now() + waitMs;
  let state: PaymentState | undefined;
  while (Date.now() <= deadline) {
    const out = await call(ctx, rec, read('read'), () => rec.plan.merchant.api.payments.getPayment({ paymentId: rec.paymentId! }));
    if (!out.ok) return state;
    state = ack(rec, out.value.payment)?.state;
    if (state !== PaymentState.CHALLENGED && state !== PaymentState.APPROVED) return state;
    await sleep(pollMs * 4);
  }
  return state;
}

/** The client lost track (no code, refused code): the server's word on the payment, as its merchant reads it. */
async function settleFromServer(ctx: FlowContext, rec: PaymentRecord, why: string): Promise<PaymentRecord> {
  const out = await call(ctx, rec, read('read'), () => rec.plan.merchant.api.payments.getPayment({ paymentId: rec.paymentId! }));
  const state = out.ok ? ack(rec, out.value.payment)?.state : undefined;
  rec.result = state !== undefined && finalStates.has(state) ? resultOfState(state) : `${why}:${resultOfState(state ?? lastAck(rec))}`;
  return rec;
}
