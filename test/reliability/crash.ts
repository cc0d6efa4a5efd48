import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario, ScenarioOptions, ScenarioResult } from './scenario.js';
import { audit } from './support/audit.js';
import { CallStats, crashRetries } from './support/clients.js';
import { Prng, randomSeed } from './support/prng.js';
import { reconcileWorld } from './support/reconcile.js';
import { startWorld, type World } from './support/world.js';
import { cancelOpenPayments, defaultShape, prepareWorkload, runWorkload } from './support/workload.js';

/**
 * Crash consistency: payments through separate authz and telco-bridge processes on a real
 * redis-server while a seeded schedule SIGKILLs one of them at random moments and restarts it.
 * Clients retry with the same idempotency keys. Afterwards the merchant cancels what was left
 * open, `countersign reconcile` runs, and the audit reads every invariant back from the ledger.
 */

interface CrashPlan {
  payments: number;
  concurrency: number;
  /** Pause between two kills, milliseconds (uniform in the range). */
  killEveryMs: [number, number];
  /** Pause between a kill and the restart, milliseconds (uniform in the range). */
  restartDelayMs: [number, number];
  /** Chance that a kill hits authz rather than the telco bridge. */
  authzKillShare: number;
  /** Kills at most: bounds the run on a busy machine, where every restart takes longer. */
  killsMax: number;
}

const plans: Record<ScenarioOptions['mode'], CrashPlan> = {
  short: { payments: 2_000, concurrency: 24, killEveryMs: [2_000, 5_000], restartDelayMs: [0, 800], authzKillShare: 0.7, killsMax: 12 },
  soak: { payments: 20_000, concurrency: 32, killEveryMs: [2_000, 8_000], restartDelayMs: [0, 1_500], authzKillShare: 0.7, killsMax: 150 },
};
/** Time kept back from the deadline for cleanup, reconcile and the audit, milliseconds. */
const auditReserveMs = 45_000;
/** Attempts to restart a killed process. */
const restartAttemptsMax = 3;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const runCrash: Scenario = (options) => crashScenario(options, 'crash', [], undefined);

/** The same on TigerBeetle (TB_ADDRESS=host:port[,…]); undefined when no cluster is configured. */
export function crashOnTigerBeetle(env: NodeJS.ProcessEnv = process.env): Scenario | undefined {
  const addresses = (env.TB_ADDRESS ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (addresses.length === 0) return undefined;
  return (options) => crashScenario(options, 'crash-tigerbeetle', addresses, env.TB_CLUSTER_ID);
}

interface Chaos {
  kills: number;
  stop(): Promise<void>;
}

/** Kills authz or the bridge at seeded random moments and restarts it, until stopped. */
function startChaos(world: World, plan: CrashPlan, rng: Prng, log: (line: string) => void): Chaos {
  let stopped = false;
  const chaos = { kills: 0, stop: async () => undefined as void };
  const loop = async () => {
    while (!stopped && chaos.kills < plan.killsMax) {
      const waitMs = rng.int(...plan.killEveryMs);
      for (const until = Date.now() + waitMs; !stopped && Date.now() < until; ) await sleep(Math.min(100, until - Date.now()));
      if (stopped) return;
      const target = rng.next() < plan.authzKillShare ? 'authz' : 'telco-bridge';
      const proc = target === 'authz' ? world.authz : world.bridge;
      await proc.kill();
      chaos.kills += 1;
      log(`${new Date().toISOString()} SIGKILL ${target} (kill ${chaos.kills})`);
      await sleep(rng.int(...plan.restartDelayMs));
      await restart(world, target, log);
    }
  };
  // A failed restart ends the chaos; the error is rethrown by stop(), never left unhandled.
  let failure: unknown;
  const running = loop().catch((error: unknown) => void (failure = error));
  chaos.stop = async () => {
    stopped = true;
    await running;
    if (failure !== undefined) throw failure;
  };
  return chaos;
}

async function restart(world: World, target: 'authz' | 'telco-bridge', log: (line: string) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await (target === 'authz' ? world.authz.start() : world.startBridge());
      log(`${new Date().toISOString()} ${target} restarted`);
      return;
    } catch (error) {
      log(`${new Date().toISOString()} ${target} restart ${attempt} failed: ${(error as Error).message.split('\n')[0]}`);
      if (attempt >= restartAttemptsMax) throw error;
      await (target === 'authz' ? world.authz.kill() : world.bridge.kill());
    }
  }
}

async function crashScenario(options: ScenarioOptions, name: string, tbAddresses: string[], tbClusterId: string | undefined): Promise<ScenarioResult> {
  const startedAt = Date.now();
  const plan = plans[options.mode];
  const seed = options.seed ?? randomSeed();
  const rng = new Prng(seed);
  mkdirSync(options.logDir, { recursive: true });
  const chaosLog = join(options.logDir, `${name}-chaos.log`);
  const log = (line: string) => appendFileSync(chaosLog, `${line}\n`);
  log(`seed ${seed}, ${plan.payments} payments, ${plan.concurrency} clients`);
  const authzEnv: Record<string, string> = tbClusterId === undefined || tbClusterId === '' ? {} : { COUNTERSIGN_TB_CLUSTER_ID: tbClusterId };
  const world = await startWorld({ name, workDir: options.workDir, logDir: options.logDir, secrets: options.secrets, tbAddresses, authzEnv });
  try {
    const stats = new CallStats();
    const workload = await prepareWorkload(world, { ...defaultShape, payments: plan.payments, concurrency: plan.concurrency }, rng, options.secrets, stats);
    const ctx = { world, stats, policy: crashRetries, secrets: options.secrets };
    const chaos = startChaos(world, plan, rng, log);
    const loadStartedAt = Date.now();
    const stopAtMs = startedAt + options.deadlineMs - auditReserveMs;
    const records = await runWorkload(ctx, workload, plan.concurrency, rng, () => Date.now() >= stopAtMs);
    await chaos.stop();
    const loadMs = Date.now() - loadStartedAt;
    for (const [why, n] of stats.gaveUpWith) log(`gave up ${n}× after retries: ${why}`);
    const cleanup = await cancelOpenPayments(world, workload.merchants, crashRetries, stats);
    const reconciled = await reconcileWorld(world);
    const result = await audit({ world, workload, records, reconcileAnomalies: reconciled.anomalies, engine: tbAddresses.length > 0 ? 'tigerbeetle' : 'embedded', policy: crashRetries, stats });
    const violations = [...result.violations, ...cleanup.failed.map((f) => `could not cancel an open payment: ${f}`)];
    if (records.length < workload.plans.length) violations.push(`only ${records.length} of ${workload.plans.length} payments ran before the deadline`);
    const outcomes: Record<string, number> = {};
    for (const r of records) outcomes[`client_${r.result}`] = (outcomes[`client_${r.result}`] ?? 0) + 1;
    return {
      name,
      counts: {
        payments: records.length,
        kills: chaos.kills,
        seed,
        authzStarts: world.authz.starts,
        bridgeStarts: world.bridge.starts,
        loadMs,
        cancelledAtEnd: cleanup.cancelled,
        reconcileExamined: reconciled.examined,
        ...Object.fromEntries(Object.entries(reconciled.changed).map(([k, n]) => [`reconciled ${k}`, n])),
        ...result.facts,
        ...outcomes,
        ...Object.fromEntries(Object.entries(stats.toJSON()).map(([k, n]) => [`calls_${k}`, n])),
      },
      violations,
      durationMs: Date.now() - startedAt,
    };
  } finally {
    await world.close();
  }
}
