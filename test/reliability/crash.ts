import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { tigerBeetleBinary } from '../support/tigerbeetle.js';
import { type ChaosPlan, type ChaosTarget, type DownWindow, replicaTarget, startChaos, workerTargets, worldTargets } from './chaos.js';
import { progressTicker, type Scenario, type ScenarioOptions, type ScenarioResult } from './scenario.js';
import { AnswerLog } from './support/answer-log.js';
import { audit } from './support/audit.js';
import { CallStats, crashRetries } from './support/clients.js';
import { finishRequests } from './support/finish.js';
import { embeddedLedger, givenAddresses, givenCluster, type LedgerSetup, privateCluster } from './support/ledger-setup.js';
import type { FlowContext, PaymentRecord } from './support/payment-flows.js';
import { isAlive, killPid } from './support/pids.js';
import { Prng, randomSeed } from './support/prng.js';
import { reconcileWorld } from './support/reconcile.js';
import { cancelOpenPayments, defaultShape, prepareWorkload, runWorkload } from './support/workload.js';
import { startWorld, type World, type WorldOptions } from './support/world.js';

/**
 * Crash consistency: payments through real countersign processes on loopback while a seeded
 * schedule SIGKILLs one of them at random moments and brings it back (chaos.ts). Clients retry
 * with the same idempotency keys. Once the faults stop, every client sends each request it gave
 * up on again until it has a final answer (finish.ts), the merchant cancels what was left open,
 * `countersign reconcile` runs on the same data, and the audit reads every invariant back from the
 * ledger and checks it against every answer the clients got (audit.ts). Variants:
 *
 * - crash:             payments in a durable redis-server, the ledger embedded and journaled in
 *                      authz's data directory; authz or the telco bridge is killed;
 * - crash-tigerbeetle: the same on TigerBeetle (TB_ADDRESS);
 * - crash-embedded:    no Redis: `serve` on its embedded defaults (journaled payment store and
 *                      ledger, file directory, in its data directory); serve or the bridge is killed;
 * - crash-workers:     `serve --workers 2` on Redis and TigerBeetle (TB_ADDRESS, or a private
 *                      single-replica cluster); a worker is killed (its primary forks another) or
 *                      the primary (its workers must end with it; serve is started again);
 * - crash-tigerbeetle-replica (soak): TigerBeetle as 3 replicas on loopback; a replica is killed
 *                      and restarted on its data file (or authz is killed); payments must keep
 *                      succeeding while one replica is down.
 */

type Mode = ScenarioOptions['mode'];

interface CrashPlan extends ChaosPlan {
  payments: number;
  concurrency: number;
  /** The load lasts at least this long, milliseconds (paced; 0: as fast as it goes): the kills need load to interrupt. */
  loadSpanMs: number;
}

interface Variant {
  name: string;
  plans: Record<Mode, CrashPlan>;
  world: Pick<WorldOptions, 'store' | 'serveArgs'>;
  ledger(log: (line: string) => void): Promise<LedgerSetup>;
  targets(world: World, ledger: LedgerSetup, rng: Prng, context: TargetContext): ChaosTarget[];
}

interface TargetContext {
  violations: string[];
  /** Worker pids of `serve --workers` seen: none may outlive the scenario. */
  workerPids: Set<number>;
  log: (line: string) => void;
}

/** Time kept back from the deadline for the finish phase: one create's lease (30 s) and a restart, milliseconds. */
const finishReserveMs = 45_000;
/** The finish phase's own bound when the load ended early, milliseconds. */
const finishPhaseMsMax = 60_000;
/** Time kept back from the deadline for cleanup, reconcile (serve stopped and started again) and the audit, milliseconds. */
const auditReserveMs = 45_000;
/** `serve --workers` in crash-workers. */
const workersCount = 2;
/** Replicas of the cluster in crash-tigerbeetle-replica. */
const replicasCount = 3;
/**
 * A replica down at least this long, milliseconds, must see payments succeed meanwhile (the
 * other two are a quorum; the view change after losing the primary replica takes a few seconds).
 */
export const replicaDownCheckMsMin = 5_000;

const short = (p: Partial<CrashPlan>): CrashPlan => ({
  payments: 400,
  concurrency: 16,
  loadSpanMs: 22_000,
  killEveryMs: [2_500, 5_000],
  restartDelayMs: [0, 500],
  killsMax: 5,
  ...p,
});
const soak = (p: Partial<CrashPlan>): CrashPlan => ({
  payments: 10_000,
  concurrency: 32,
  loadSpanMs: 900_000,
  killEveryMs: [2_000, 8_000],
  restartDelayMs: [0, 1_500],
  killsMax: 120,
  ...p,
});

const embedded = async (): Promise<LedgerSetup> => embeddedLedger();

const crashPlans = {
  short: short({ payments: 800, concurrency: 24, loadSpanMs: 20_000, killEveryMs: [2_000, 5_000], restartDelayMs: [0, 800], killsMax: 8 }),
  soak: soak({ payments: 20_000, loadSpanMs: 0, killsMax: 150 }),
};

const variants = {
  crash: { name: 'crash', plans: crashPlans, world: {}, ledger: embedded, targets: (world, _l, _r, c) => worldTargets(world, 0.7, c.log) },
  embedded: {
    name: 'crash-embedded',
    plans: { short: short({ killsMax: 3 }), soak: soak({}) },
    world: { store: 'embedded' },
    ledger: embedded,
    targets: (world, _l, _r, c) => worldTargets(world, 0.8, c.log),
  },
} satisfies Record<string, Variant>;

export const runCrash: Scenario = (options) => crashScenario(options, variants.crash);

/** No Redis: `serve` on the embedded defaults (journaled payment store and ledger in its data directory). */
export const runCrashEmbedded: Scenario = (options) => crashScenario(options, variants.embedded);

/** The crash scenario on TigerBeetle (TB_ADDRESS=host:port[,…]); undefined when no cluster is configured. */
export function crashOnTigerBeetle(env: NodeJS.ProcessEnv = process.env): Scenario | undefined {
  if (givenAddresses(env).length === 0) return undefined;
  return (options) => crashScenario(options, { ...variants.crash, name: 'crash-tigerbeetle', ledger: async () => givenCluster(env)! });
}

/** Whether a TigerBeetle cluster can be had: given (TB_ADDRESS), startable (the binary), or neither. */
export function tigerBeetleAvailability(env: NodeJS.ProcessEnv = process.env): 'given' | 'binary' | 'none' {
  if (givenAddresses(env).length > 0) return 'given';
  return tigerBeetleBinary(env) === undefined ? 'none' : 'binary';
}

/**
 * `serve --workers 2` on Redis and TigerBeetle: TB_ADDRESS when set, else a private
 * single-replica cluster (test/support/tigerbeetle.ts); undefined when neither is possible.
 */
export function crashWorkers(env: NodeJS.ProcessEnv = process.env): Scenario | undefined {
  const availability = tigerBeetleAvailability(env);
  if (availability === 'none') return undefined;
  const variant: Variant = {
    name: 'crash-workers',
    plans: { short: short({ payments: 250, killsMax: 2 }), soak: soak({}) }, // short: one worker and one primary kill (a primary's restart with its workers is the slow part)
    world: { serveArgs: ['--workers', String(workersCount)] },
    ledger: async (log) => givenCluster(env) ?? privateCluster(1, log),
    targets: (world, _l, rng, c) => workerTargets(world, workersCount, 0.3, rng, c.workerPids, c.violations, c.log),
  };
  return (options) => crashScenario(options, variant);
}

/** Soak: TigerBeetle as 3 replicas on loopback, a replica killed under load; undefined without the binary. */
export function crashTigerBeetleReplica(env: NodeJS.ProcessEnv = process.env): Scenario | undefined {
  if (tigerBeetleBinary(env) === undefined) return undefined;
  const variant: Variant = {
    name: 'crash-tigerbeetle-replica',
    plans: {
      short: short({ killsMax: 2, killEveryMs: [5_000, 8_000], restartDelayMs: [3_000, 6_000] }),
      soak: soak({ concurrency: 24, killEveryMs: [8_000, 20_000], restartDelayMs: [3_000, 10_000], killsMax: 30 }),
    },
    world: {},
    ledger: (log) => privateCluster(replicasCount, log),
    targets: (world, ledger, rng, c) => [
      replicaTarget(ledger.cluster!, replicasCount, 0.75, rng, (i, isDown) => ledger.expectDown(i, isDown)),
      ...worldTargets(world, 1, c.log)
        .slice(0, 1)
        .map((t) => ({ ...t, weight: 0.25 })),
    ],
  };
  return (options) => crashScenario(options, variant);
}

async function crashScenario(options: ScenarioOptions, variant: Variant): Promise<ScenarioResult> {
  const startedAt = Date.now();
  const plan = variant.plans[options.mode];
  const seed = options.seed ?? randomSeed();
  const rng = new Prng(seed);
  mkdirSync(options.logDir, { recursive: true });
  const chaosLog = join(options.logDir, `${variant.name}-chaos.log`);
  const log = (line: string) => appendFileSync(chaosLog, `${line}\n`);
  log(`seed ${seed}, ${plan.payments} payments, ${plan.concurrency} clients`);
  const ledgerStartedAt = Date.now();
  const ledger = await variant.ledger(log);
  log(`ledger ready in ${Date.now() - ledgerStartedAt} ms: ${ledger.addresses.length === 0 ? 'embedded' : ledger.addresses.join(',')}`);
  const context: TargetContext = { violations: [], workerPids: new Set(), log };
  try {
    return await inWorld(options, variant, plan, ledger, rng, context, startedAt);
  } catch (error) {
    // A ledger that went away (or crashed meanwhile) explains the failure: say so first.
    if (ledger.lost.length === 0 && ledger.incidents.length === 0) throw error;
    const failed = `failed to run: ${(error as Error).message.split('\n')[0]}`;
    return { name: variant.name, counts: {}, violations: [...ledger.lost, failed], durationMs: Date.now() - startedAt, notes: incidentNotes(ledger) };
  } finally {
    await ledger.close();
  }
}

async function inWorld(
  options: ScenarioOptions,
  variant: Variant,
  plan: CrashPlan,
  ledger: LedgerSetup,
  rng: Prng,
  context: TargetContext,
  startedAt: number,
): Promise<ScenarioResult> {
  const authzEnv: Record<string, string> = ledger.clusterId === undefined ? {} : { COUNTERSIGN_TB_CLUSTER_ID: ledger.clusterId };
  const world = await startWorld({
    name: variant.name,
    workDir: options.workDir,
    logDir: options.logDir,
    secrets: options.secrets,
    tbAddresses: ledger.addresses,
    authzEnv,
    ...variant.world,
  });
  try {
    return await underLoad(options, variant, plan, world, ledger, rng, context, startedAt);
  } finally {
    await world.close();
    // Workers of a primary killed at the very end exit on their own; any that did not is ours to end.
    for (const pid of context.workerPids) if (killPid(pid)) context.log(`worker ${pid} still running at the end: killed`);
  }
}

async function underLoad(
  options: ScenarioOptions,
  variant: Variant,
  plan: CrashPlan,
  world: World,
  ledger: LedgerSetup,
  rng: Prng,
  context: TargetContext,
  startedAt: number,
): Promise<ScenarioResult> {
  const stats = new CallStats();
  const answers = new AnswerLog();
  const workload = await prepareWorkload(world, { ...defaultShape, payments: plan.payments, concurrency: plan.concurrency }, rng, options.secrets, stats);
  const ctx: FlowContext = { world, stats, policy: crashRetries, secrets: options.secrets, answers };
  const chaos = startChaos(variant.targets(world, ledger, rng, context), plan, rng, context.log);
  const loadStartedAt = Date.now();
  const deadlineAt = startedAt + options.deadlineMs;
  let paymentsDone = 0;
  options.progress?.(`load: ${workload.plans.length} payments by ${plan.concurrency} clients, up to ${plan.killsMax} kills`);
  const stopTicker = progressTicker(options, () => `load: ${paymentsDone}/${workload.plans.length} payments, ${chaos.kills} kills`);
  const records = await runWorkload(
    ctx,
    workload,
    plan.concurrency,
    rng,
    () => ledger.lost.length > 0 || Date.now() >= deadlineAt - finishReserveMs - auditReserveMs,
    plan.loadSpanMs,
    (n) => (paymentsDone = n),
  ).finally(stopTicker);
  await chaos.stop();
  const loadMs = Date.now() - loadStartedAt;
  options.progress?.(
    `load done: ${records.length} payments, ${chaos.kills} kills in ${Math.round(loadMs / 1000)} s; finishing, cancelling, reconciling and auditing`,
  );
  if (ledger.lost.length > 0) return ledgerLost(variant, ledger, chaos.kills, records.length, startedAt);
  for (const [why, n] of stats.gaveUpWith) context.log(`gave up ${n}× after retries: ${why}`);
  const finishStartedAt = Date.now();
  const finished = await finishRequests(ctx, records, Math.min(finishStartedAt + finishPhaseMsMax, deadlineAt - auditReserveMs));
  const finishMs = Date.now() - finishStartedAt;
  context.log(`finish phase: ${finished.resent} requests sent again in ${finishMs} ms, ${finished.left} still without a final answer`);
  const auditStartedAt = Date.now();
  const cleanup = await cancelOpenPayments(world, workload.merchants, crashRetries, stats, answers);
  const reconciled = await reconcileWorld(world);
  const result = await audit({
    world,
    workload,
    records,
    reconcileAnomalies: reconciled.anomalies,
    engine: ledger.addresses.length > 0 ? 'tigerbeetle' : 'embedded',
    policy: crashRetries,
    stats,
    answers,
  });
  const auditMs = Date.now() - auditStartedAt;
  writeRecords(join(options.logDir, `${variant.name}-records.jsonl`), records, answers);
  const service = serviceWhileDown(chaos.windows, answers.succeededAtMs, ledger.incidents);
  const codes = codesDelivered(records, chaos.windows);
  const violations = [
    ...ledger.lost,
    ...result.violations,
    ...codes,
    ...context.violations,
    ...service.violations,
    ...cleanup.failed.map((f) => `could not cancel an open payment: ${f}`),
  ];
  if (records.length < workload.plans.length) violations.push(`only ${records.length} of ${workload.plans.length} payments ran before the deadline`);
  const outcomes: Record<string, number> = {};
  for (const r of records) outcomes[`client_${r.result}`] = (outcomes[`client_${r.result}`] ?? 0) + 1;
  return {
    name: variant.name,
    counts: {
      payments: records.length,
      kills: chaos.kills,
      seed: rng.seed,
      ...Object.fromEntries(Object.entries(chaos.killsByTarget).map(([k, n]) => [`kills_${k}`, n])),
      authzStarts: world.authz.starts,
      bridgeStarts: world.bridge.starts,
      ...(context.workerPids.size > 0 ? { workerPidsSeen: context.workerPids.size, workerPidsAliveAtEnd: [...context.workerPids].filter(isAlive).length } : {}),
      ...service.counts,
      ...(ledger.incidents.length === 0 ? {} : { tigerbeetleUnaskedExits: ledger.incidents.length }),
      setupMs: loadStartedAt - startedAt,
      loadMs,
      finishMs,
      auditMs,
      finishResent: finished.resent,
      finishLeft: finished.left,
      finishSettleReads: finished.settleReads,
      ...finished.answers,
      cancelledAtEnd: cleanup.cancelled,
      reconcileExamined: reconciled.examined,
      ...Object.fromEntries(Object.entries(reconciled.changed).map(([k, n]) => [`reconciled ${k}`, n])),
      ...result.facts,
      ...outcomes,
      ...Object.fromEntries(Object.entries(stats.toJSON()).map(([k, n]) => [`calls_${k}`, n])),
    },
    violations,
    durationMs: Date.now() - startedAt,
    notes: incidentNotes(ledger),
  };
}

/** The cluster's own crashes the run rode out, for the report's notes. */
function incidentNotes(ledger: LedgerSetup): string[] {
  return ledger.incidents.map((i) => `${new Date(i.atMs).toISOString()} ${i.what} (not a countersign fault; the run went on against the recovered cluster)`);
}

/** The cluster went away by itself mid-run: nothing after the load can be judged. */
function ledgerLost(variant: Variant, ledger: LedgerSetup, kills: number, payments: number, startedAt: number): ScenarioResult {
  const why = `run void after ${kills} kills and ${payments} payments: the TigerBeetle cluster went away by itself, so the finish phase, reconcile and the audit did not run`;
  return {
    name: variant.name,
    counts: { payments, kills },
    violations: [...ledger.lost, why],
    durationMs: Date.now() - startedAt,
    notes: incidentNotes(ledger),
  };
}

/** One line per payment as its client saw it (no secret: keys, ids, states, results, its create's answers), for reading a run afterwards. */
function writeRecords(file: string, records: PaymentRecord[], answers: AnswerLog): void {
  const line = (r: PaymentRecord) =>
    JSON.stringify({
      key: r.plan.key,
      paymentId: r.paymentId,
      kind: r.plan.kind,
      script: r.plan.script,
      amount: String(r.plan.amount),
      payer: r.plan.payer.id,
      startedAt: new Date(r.startedAtMs).toISOString(),
      acked: r.acked.map((s) => PaymentState[s]),
      proofSent: r.proofSent,
      retries: r.retries,
      result: r.result,
      unfinished: r.unfinished.map((u) => u.key),
      createAnswers: answers.keys.get(r.plan.key)?.trail ?? [],
    });
  writeFileSync(file, `${records.map(line).join('\n')}\n`);
}

/** Slack around a telco-bridge outage within which a missing SMS is blamed on it, milliseconds. */
const bridgeBlameMarginMs = 2_000;

/**
 * A payment answered CHALLENGED on an SMS path whose code never reached the handset, while the
 * telco bridge was up the whole time: the create (or its retry) never sent the code. A bridge
 * killed meanwhile may lose an accepted message, so those are not counted.
 */
function codesDelivered(records: PaymentRecord[], windows: DownWindow[]): string[] {
  const bridgeDown = windows.filter((w) => w.target === 'telco-bridge');
  const missed = records.filter((r) => {
    if (r.smsMissedAtMs === undefined || r.proofSent || !r.acked.includes(PaymentState.CHALLENGED)) return false;
    return !bridgeDown.some((w) => w.fromMs - bridgeBlameMarginMs < r.smsMissedAtMs! && w.toMs + bridgeBlameMarginMs > r.startedAtMs);
  });
  if (missed.length === 0) return [];
  const examples = missed.slice(0, 5).map((r) => `${r.paymentId} (${r.plan.key}, ${r.plan.kind}; client ${r.result})`);
  return [
    `acknowledged CHALLENGED but its code never reached the payer (the telco bridge was up): ${missed.length} (${examples.join('; ')}${missed.length > 5 ? '; …' : ''})`,
  ];
}

/**
 * Payments answered SUCCEEDED while a TigerBeetle replica was down: none in a window of
 * `replicaDownCheckMsMin` or more is a violation — unless another replica exited unasked within
 * it (then the cluster had no quorum for a while, not countersign's doing).
 */
function serviceWhileDown(
  windows: DownWindow[],
  succeededAtMs: number[],
  incidents: { atMs: number }[],
): { counts: Record<string, number>; violations: string[] } {
  const down = windows.filter((w) => w.target === 'tigerbeetle-replica' && !incidents.some((i) => i.atMs >= w.fromMs && i.atMs <= w.toMs));
  if (down.length === 0) return { counts: {}, violations: [] };
  const violations: string[] = [];
  let succeeded = 0;
  for (const w of down) {
    const n = succeededAtMs.filter((t) => t > w.fromMs && t < w.toMs).length;
    succeeded += n;
    if (n === 0 && w.toMs - w.fromMs >= replicaDownCheckMsMin)
      violations.push(`no payment succeeded in the ${((w.toMs - w.fromMs) / 1000).toFixed(1)} s ${w.what} was down (the other replicas are a quorum)`);
  }
  return {
    counts: { replicaDownWindows: down.length, replicaDownMs: down.reduce((ms, w) => ms + w.toMs - w.fromMs, 0), succeededWhileReplicaDown: succeeded },
    violations,
  };
}
