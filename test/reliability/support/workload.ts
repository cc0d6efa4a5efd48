import { PaymentState } from '../../../gen/countersign/v1/common_pb.js';
import { enrollMerchants, enrollPayers, type MerchantActor, noFactorBelow, type PayerActor, type PayerPlan } from './actors.js';
import type { AnswerLog } from './answer-log.js';
import { type CallStats, type RetryPolicy, retried } from './clients.js';
import { type FlowContext, type PaymentKind, type PaymentRecord, type PlannedPayment, runPayment, type Script } from './payment-flows.js';
import type { Prng } from './prng.js';
import type { World } from './world.js';

/**
 * A seeded mix of payments over enrolled payers, run by a bounded pool of concurrent clients.
 * SMS payments of one payer run one after another (the handset reads its newest message), and
 * each SMS payer gets at most `smsPaymentsPerPayerMax` (the platform limits codes per number).
 */

export interface WorkloadShape {
  payments: number;
  kinds: Record<PaymentKind, number>;
  scripts: Record<Script, number>;
  /** Share of payments below the no-factor threshold (frictionless). */
  frictionlessShare: number;
  /** Share of payers funded too little for most of their payments. */
  lowFundedShare: number;
  /** Clients running payments at once. */
  concurrency: number;
  /** App payments per app payer (no SMS is sent for them, so no per-number limit applies). */
  appPaymentsPerPayer: number;
}

export const defaultShape: Omit<WorkloadShape, 'payments' | 'concurrency'> = {
  kinds: { app: 80, 'sms-code': 12, 'sms-reply': 8 },
  scripts: { right: 85, 'wrong-then-right': 5, decline: 5, abandon: 5 },
  frictionlessShare: 0.08,
  lowFundedShare: 0.1,
  appPaymentsPerPayer: 10,
};
/** SMS payments per payer, at most (authz allows 5 codes per number per 10 minutes). */
export const smsPaymentsPerPayerMax = 3;
const fundingNormal = 20_000_00n;
const fundingLow = 60_00n;

export interface Workload {
  merchants: MerchantActor[];
  payers: PayerActor[];
  plans: PlannedPayment[];
}

function countKinds(shape: WorkloadShape, rng: Prng): Record<PaymentKind, number> {
  const counts: Record<PaymentKind, number> = { app: 0, 'sms-code': 0, 'sms-reply': 0 };
  for (let i = 0; i < shape.payments; i++) counts[rng.weighted(shape.kinds)] += 1;
  return counts;
}

function payerPlans(counts: Record<PaymentKind, number>, shape: WorkloadShape, rng: Prng): { plans: PayerPlan[]; groups: Record<PaymentKind, number[]> } {
  const plans: PayerPlan[] = [];
  const groups: Record<PaymentKind, number[]> = { app: [], 'sms-code': [], 'sms-reply': [] };
  const add = (kind: PaymentKind, payers: number) => {
    for (let i = 0; i < payers; i++) {
      groups[kind].push(plans.length);
      plans.push({ kind: kind === 'sms-reply' ? 'sms-otp' : 'app', funding: rng.next() < shape.lowFundedShare ? fundingLow : fundingNormal });
    }
  };
  add('app', Math.ceil(counts.app / shape.appPaymentsPerPayer));
  add('sms-code', Math.ceil(counts['sms-code'] / smsPaymentsPerPayerMax));
  add('sms-reply', Math.ceil(counts['sms-reply'] / smsPaymentsPerPayerMax));
  return { plans, groups };
}

export async function prepareWorkload(world: World, shape: WorkloadShape, rng: Prng, secrets: Set<string>, stats: CallStats): Promise<Workload> {
  const counts = countKinds(shape, rng);
  const { plans: payerPlan, groups } = payerPlans(counts, shape, rng);
  const merchants = await enrollMerchants(world, 4, secrets, stats);
  const payers = await enrollPayers(world, payerPlan, rng, secrets, stats);
  const plans: PlannedPayment[] = [];
  for (const kind of ['app', 'sms-code', 'sms-reply'] as const) {
    const perPayer = kind === 'app' ? shape.appPaymentsPerPayer : smsPaymentsPerPayerMax;
    for (let i = 0; i < counts[kind]; i++) {
      const payer = payers[groups[kind][Math.floor(i / perPayer)]!]!;
      const frictionless = rng.next() < shape.frictionlessShare;
      const amount = frictionless ? rng.amount(1n, noFactorBelow - 1n) : rng.amount(noFactorBelow, 400_00n);
      plans.push({ key: `${world.name}-pay-${plans.length}`, payer, merchant: rng.pick(merchants), amount, kind, script: rng.weighted(shape.scripts) });
    }
  }
  return { merchants, payers, plans };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the plans (SMS payments of one payer in sequence, lanes in seeded random order) until all
 * ran or `stop()` says so (lanes already started finish); the records of those that ran, in plan order.
 * `spanMs` > 0 paces the lanes: lane i starts no earlier than i × spanMs / lanes after the start,
 * so the load lasts at least `spanMs` however fast the machine (a fault schedule needs load to
 * interrupt); 0 runs them as fast as `concurrency` clients can.
 */
/** Runs the planned payments, `concurrency` at a time; `onFinished(finished)` after each payment. */
export async function runWorkload(
  ctx: FlowContext,
  workload: Workload,
  concurrency: number,
  rng: Prng,
  stop: () => boolean,
  spanMs: number,
  onFinished?: (finished: number) => void,
): Promise<PaymentRecord[]> {
  const lanes = new Map<string, PlannedPayment[]>();
  for (const plan of workload.plans) {
    const lane = plan.kind === 'app' ? plan.key : plan.payer.id;
    lanes.set(lane, [...(lanes.get(lane) ?? []), plan]);
  }
  const queue = rng.shuffle([...lanes.values()]);
  const records = new Map<string, PaymentRecord>();
  const startedAt = Date.now();
  const laneMs = queue.length === 0 ? 0 : spanMs / queue.length;
  let started = 0;
  const worker = async () => {
    for (let lane = queue.pop(); lane !== undefined && !stop(); lane = queue.pop()) {
      const notBeforeMs = startedAt + started++ * laneMs;
      if (Date.now() < notBeforeMs) await sleep(notBeforeMs - Date.now());
      for (const plan of lane) {
        records.set(plan.key, await runPayment(ctx, plan));
        onFinished?.(records.size);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return workload.plans.flatMap((p) => (records.has(p.key) ? [records.get(p.key)!] : []));
}

/**
 * Ends every payment still open (CREATED, CHALLENGED; APPROVED is settled by the read): the
 * merchant cancels it, so nothing stays reserved by a payment the client walked away from.
 * Returns how many were cancelled and how many could not be. The cancels' answers go to `answers`
 * (the reads before them do not: a payment first seen final by this cleanup was not told to its client).
 */
export async function cancelOpenPayments(
  world: World,
  merchants: MerchantActor[],
  policy: RetryPolicy,
  stats: CallStats,
  answers: AnswerLog,
): Promise<{ cancelled: number; failed: string[] }> {
  let cancelled = 0;
  const failed: string[] = [];
  for (const merchant of merchants) {
    for (const payment of await listPayments(merchant, policy, stats)) {
      if (payment.state !== PaymentState.CREATED && payment.state !== PaymentState.CHALLENGED && payment.state !== PaymentState.APPROVED) continue;
      const read = await retried(() => merchant.api.payments.getPayment({ paymentId: payment.id }), policy, stats);
      const state = read.ok ? read.value.payment!.state : payment.state;
      if (state !== PaymentState.CREATED && state !== PaymentState.CHALLENGED) continue;
      const key = `${world.name}-final-cancel-${payment.id}`;
      const out = await retried(
        () => merchant.api.payments.cancelPayment({ idempotencyKey: key, paymentId: payment.id, reason: 'reliability: left open' }),
        policy,
        stats,
        answers.observer(key, 'operation'),
      );
      if (out.ok && out.value.payment!.state === PaymentState.CANCELLED) cancelled += 1;
      else failed.push(`${payment.id}: ${out.ok ? PaymentState[out.value.payment!.state] : out.error.message}`);
    }
  }
  return { cancelled, failed };
}

/** Pages through ListPayments, at most this many pages (1000 each). */
export const listPagesMax = 1_000;

export async function listPayments(merchant: MerchantActor, policy: RetryPolicy, stats: CallStats) {
  const all = [];
  let pageToken = '';
  for (let page = 0; page < listPagesMax; page++) {
    const out = await retried(() => merchant.api.payments.listPayments({ pageSize: 1000, pageToken }), policy, stats);
    if (!out.ok) throw new Error(`ListPayments for ${merchant.name} failed: ${out.error.message}`);
    all.push(...out.value.payments);
    pageToken = out.value.nextPageToken;
    if (pageToken === '') return all;
  }
  throw new Error(`ListPayments for ${merchant.name}: more than ${listPagesMax} pages`);
}
