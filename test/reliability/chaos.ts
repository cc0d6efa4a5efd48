import type { TigerBeetleCluster } from '../support/tigerbeetle.js';
import { forkedChildren, isAlive, killPid } from './support/pids.js';
import type { Prng } from './support/prng.js';
import type { ManagedProcess } from './support/processes.js';
import type { World } from './support/world.js';

/**
 * The crash scenarios' fault injector: at seeded random moments it SIGKILLs one of its targets
 * (chosen by weight; the last kills go to targets not hit yet, so each is hit at least once when
 * `killsMax` allows), waits a seeded pause, and brings it back, one fault at a time, until stopped
 * or `killsMax` kills. Targets: a process of the world (authz, the telco bridge), a worker of
 * `serve --workers N` (its primary forks a new one), the primary itself (its workers must end
 * with it; serve is started again), a TigerBeetle replica (restarted on its data file).
 */

export interface ChaosTarget {
  name: string;
  /** Relative chance of being the next one killed. */
  weight: number;
  /** SIGKILLs it and resolves once it is dead, with what was killed (for the event log). */
  kill(): Promise<string>;
  /** Brings it back, or waits until what restarts it by itself has. */
  restart(): Promise<void>;
}

export interface ChaosPlan {
  /** Pause between two kills, milliseconds (uniform in the range). */
  killEveryMs: [number, number];
  /** Pause between a kill and the restart, milliseconds (uniform in the range). */
  restartDelayMs: [number, number];
  /** Kills at most: bounds the run on a busy machine, where every restart takes longer. */
  killsMax: number;
}

/** From a kill to the end of its target's restart. */
export interface DownWindow {
  target: string;
  what: string;
  fromMs: number;
  toMs: number;
}

export interface Chaos {
  readonly kills: number;
  readonly killsByTarget: Record<string, number>;
  readonly windows: DownWindow[];
  stop(): Promise<void>;
}

/** Attempts to start a killed process again. */
export const restartAttemptsMax = 3;
/** How long the primary of `serve --workers` has to fork a replacement for a killed worker, milliseconds. */
export const workerRespawnWaitMs = 30_000;
/** How long the workers of a killed primary have to exit (they leave on IPC disconnect), milliseconds. */
export const orphanExitWaitMs = 15_000;
/** How long a SIGKILLed process has to disappear, milliseconds. */
const deathWaitMs = 10_000;
const pollMs = 100;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const stamp = () => new Date().toISOString();

/** Polls `done` every `pollMs` until it holds or `waitMs` passed; whether it held. */
async function until(done: () => boolean, waitMs: number): Promise<boolean> {
  for (const deadline = Date.now() + waitMs; !done(); await sleep(pollMs)) if (Date.now() > deadline) return false;
  return true;
}

export function startChaos(targets: ChaosTarget[], plan: ChaosPlan, rng: Prng, log: (line: string) => void): Chaos {
  let stopped = false;
  const chaos = { kills: 0, killsByTarget: {} as Record<string, number>, windows: [] as DownWindow[], stop: async () => undefined as undefined };
  const weights = Object.fromEntries(targets.map((t) => [t.name, t.weight]));
  const loop = async () => {
    while (!stopped && chaos.kills < plan.killsMax) {
      const waitMs = rng.int(...plan.killEveryMs);
      for (const killAt = Date.now() + waitMs; !stopped && Date.now() < killAt; ) await sleep(Math.min(pollMs, killAt - Date.now()));
      if (stopped) return;
      const target = nextTarget(targets, weights, chaos.killsByTarget, plan.killsMax - chaos.kills, rng);
      const fromMs = Date.now();
      const what = await target.kill();
      chaos.kills += 1;
      chaos.killsByTarget[target.name] = (chaos.killsByTarget[target.name] ?? 0) + 1;
      log(`${stamp()} SIGKILL ${what} (kill ${chaos.kills})`);
      await sleep(rng.int(...plan.restartDelayMs));
      await target.restart();
      chaos.windows.push({ target: target.name, what, fromMs, toMs: Date.now() });
      log(`${stamp()} ${what}: back`);
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

/** By weight, unless the kills left are only enough for the targets not hit yet: then the first of those. */
function nextTarget(targets: ChaosTarget[], weights: Record<string, number>, hits: Record<string, number>, killsLeft: number, rng: Prng): ChaosTarget {
  const name = rng.weighted(weights);
  const drawn = targets.find((t) => t.name === name)!;
  const unhit = targets.filter((t) => t.weight > 0 && hits[t.name] === undefined);
  return unhit.length >= killsLeft && !unhit.includes(drawn) ? unhit[0]! : drawn;
}

/** `start`, and after a failed start `abort` (the half-started process) and again, `restartAttemptsMax` times at most. */
async function startWithRetries(name: string, start: () => Promise<void>, abort: () => Promise<void>, log: (line: string) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      return;
    } catch (error) {
      log(`${stamp()} ${name} restart ${attempt} failed: ${(error as Error).message.split('\n')[0]}`);
      if (attempt >= restartAttemptsMax) throw error;
      await abort();
    }
  }
}

/** A process of the world, killed and started again by this chaos. */
export function processTarget(name: string, weight: number, proc: ManagedProcess, start: () => Promise<void>, log: (line: string) => void): ChaosTarget {
  return {
    name,
    weight,
    kill: async () => (await proc.kill(), name),
    restart: () => startWithRetries(name, start, () => proc.kill(), log),
  };
}

/** The authz process and the telco bridge of `world`, `authzShare` of the kills on authz. */
export function worldTargets(world: World, authzShare: number, log: (line: string) => void): ChaosTarget[] {
  return [
    processTarget('authz', authzShare, world.authz, () => world.authz.start(), log),
    processTarget('telco-bridge', 1 - authzShare, world.bridge, () => world.startBridge(), log),
  ];
}

/**
 * The processes of `serve --workers N` (`world.authz` is its primary): a worker, which the
 * primary must replace within `workerRespawnWaitMs`, or the primary, whose workers must exit
 * within `orphanExitWaitMs` (serve is then started again). Broken promises go to `violations`;
 * every worker pid seen goes to `seen` (so the scenario can make sure none outlives it).
 */
export function workerTargets(
  world: World,
  workers: number,
  primaryShare: number,
  rng: Prng,
  seen: Set<number>,
  violations: string[],
  log: (line: string) => void,
): ChaosTarget[] {
  const primary = () => world.authz.pid ?? -1;
  const liveWorkers = () => forkedChildren(primary()).filter(isAlive);
  const worker: ChaosTarget = {
    name: 'worker',
    weight: 1 - primaryShare,
    async kill() {
      if (!(await until(() => liveWorkers().length > 0, workerRespawnWaitMs)))
        violations.push(`serve --workers ${workers}: no worker process for ${workerRespawnWaitMs / 1000} s`);
      const pids = liveWorkers();
      pids.forEach((p) => seen.add(p));
      const pid = rng.pick(pids.length > 0 ? pids : [-1]);
      if (pid > 0) killPid(pid);
      await until(() => !isAlive(pid), deathWaitMs);
      return `worker ${pid} of primary ${primary()}`;
    },
    async restart() {
      const back = await until(() => liveWorkers().length >= workers, workerRespawnWaitMs);
      if (!back)
        violations.push(
          `serve --workers ${workers}: the primary did not replace a killed worker within ${workerRespawnWaitMs / 1000} s (${liveWorkers().length} running)`,
        );
      liveWorkers().forEach((p) => seen.add(p));
    },
  };
  const killPrimary = async (): Promise<void> => {
    const orphans = liveWorkers();
    orphans.forEach((p) => seen.add(p));
    await world.authz.kill();
    if (await until(() => orphans.every((p) => !isAlive(p)), orphanExitWaitMs)) return;
    const left = orphans.filter(isAlive);
    violations.push(
      `serve --workers ${workers}: ${left.length} worker(s) still running ${orphanExitWaitMs / 1000} s after their primary was killed (pids ${left.join(', ')})`,
    );
    left.forEach(killPid);
  };
  const primaryTarget: ChaosTarget = {
    name: 'primary',
    weight: primaryShare,
    kill: async () => {
      const pid = primary();
      await killPrimary();
      return `primary ${pid}`;
    },
    restart: () => startWithRetries('primary', () => world.authz.start(), killPrimary, log),
  };
  return [worker, primaryTarget];
}

/** A TigerBeetle replica of `cluster` (one of `replicas`), killed and restarted on its data file; `expectDown` is told first. */
export function replicaTarget(
  cluster: TigerBeetleCluster,
  replicas: number,
  weight: number,
  rng: Prng,
  expectDown: (index: number, down: boolean) => void,
): ChaosTarget {
  let down = -1;
  return {
    name: 'tigerbeetle-replica',
    weight,
    async kill() {
      down = rng.int(0, replicas - 1);
      expectDown(down, true);
      await cluster.killReplica(down);
      return `tigerbeetle replica ${down}`;
    },
    async restart() {
      await cluster.restartReplica(down);
      expectDown(down, false);
    },
  };
}
