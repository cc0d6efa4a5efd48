import cluster, { type Worker } from 'node:cluster';
import type { PaymentEvents } from '../authz/events.js';
import type { Payment } from '../authz/model.js';
import { type Config, ConfigError } from './config.js';
import { freePort } from './net.js';

/**
 * `countersign serve --workers N`: N authorization processes on one machine behind the same ports
 * (node:cluster; the primary accepts connections and hands them to the workers in turn). Every
 * worker is stateless: payments live in Redis (one script call per step, compare-and-set
 * records, atomic sweeper claims) and money in TigerBeetle, so any worker may serve any call and
 * a worker killed at any moment loses nothing acknowledged. The primary restarts workers that
 * die, relays payment changes between them for the watch streams, and stops them on SIGTERM.
 */

/** Workers at most (each a full Node process; beyond the cores they only compete). */
export const workersMax = 64;
/** A worker that dies is restarted after this delay, milliseconds; more than `workerRestartsMax` deaths within `workerRestartWindowMs` stop the service. */
export const workerRestartDelayMs = 500;
export const workerRestartsMax = 20;
export const workerRestartWindowMs = 60_000;
/** How long SIGTERM waits for workers to close before killing them, milliseconds. */
export const workerStopTimeoutMs = 10_000;

/** Messages between the primary and its workers (IPC with structured clone: bigints travel). */
type ToPrimary =
  | { type: 'listening'; grpcPort: number; connectPort: number; webUrl: string | undefined }
  | { type: 'payment'; payment: Payment }
  | { type: 'watchers'; count: number };
type ToWorker = { type: 'payment'; payment: Payment } | { type: 'watchers'; othersWatching: boolean };

/** Why a configuration cannot run several workers, or undefined when it can. */
export function workersRefusal(config: Config, withBridge: boolean): string | undefined {
  if (config.redisUrl === undefined && config.redisCluster === undefined) {
    return `--workers needs the payment store in Redis (COUNTERSIGN_REDIS_URL or COUNTERSIGN_REDIS_CLUSTER): the embedded store in ${config.dataDir} belongs to one process (one process per data directory)`;
  }
  if (config.tbAddresses.length === 0) {
    return `--workers needs the ledger in TigerBeetle (COUNTERSIGN_TB_ADDRESSES): the embedded ledger in ${config.dataDir} belongs to one process (one process per data directory)`;
  }
  if (withBridge)
    return '--workers runs the authorization service only: run the telco bridge as its own process (countersign telco-bridge) and point COUNTERSIGN_TELCO_BRIDGE at it';
  return undefined;
}

export function parseWorkers(text: string | undefined): number {
  if (text === undefined) return 1;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > workersMax) throw new ConfigError(`--workers must be 1 to ${workersMax}, got "${text}"`);
  return n;
}

export function isWorker(): boolean {
  return cluster.isWorker;
}

/**
 * The primary: fixes the ports (a port 0 becomes one free port all workers share), forks the
 * workers, restarts the ones that die, relays payment changes, and resolves with the first
 * worker's listening report; `stop` ends them all.
 */
export async function startPrimary(
  config: Config,
  count: number,
  log: (line: string) => void,
): Promise<{ listening: ToPrimary & { type: 'listening' }; stop(): Promise<void> }> {
  const ports = {
    COUNTERSIGN_GRPC_PORT: String(config.grpcPort === 0 ? await freePort(config.host) : config.grpcPort),
    COUNTERSIGN_CONNECT_PORT: String(config.connectPort === 0 ? await freePort(config.host) : config.connectPort),
    COUNTERSIGN_WEB_PORT: String(config.webPort === 0 ? await freePort(config.host) : config.webPort),
  };
  cluster.setupPrimary({ serialization: 'advanced' });
  const watching = new Map<Worker, number>();
  const deaths: number[] = [];
  let stopping = false;
  let firstListening: ((m: ToPrimary & { type: 'listening' }) => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  const listening = new Promise<ToPrimary & { type: 'listening' }>((resolve, reject) => ((firstListening = resolve), (failed = reject)));

  const broadcastWatchers = () => {
    for (const w of Object.values(cluster.workers ?? {})) {
      if (w === undefined) continue;
      const others = [...watching.entries()].some(([other, n]) => other !== w && n > 0);
      w.send({ type: 'watchers', othersWatching: others } satisfies ToWorker);
    }
  };
  const fork = () => {
    const worker = cluster.fork(ports);
    worker.on('message', (m: ToPrimary) => {
      if (m.type === 'listening') firstListening?.(m);
      else if (m.type === 'watchers') watching.set(worker, m.count), broadcastWatchers();
      else if (m.type === 'payment')
        for (const w of Object.values(cluster.workers ?? {}))
          if (w !== undefined && w !== worker) w.send({ type: 'payment', payment: m.payment } satisfies ToWorker);
    });
    worker.on('exit', (code, signal) => {
      watching.delete(worker);
      broadcastWatchers();
      if (stopping) return;
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && deaths[0]! < now - workerRestartWindowMs) deaths.shift();
      log(
        `worker ${worker.process.pid} exited (${signal ?? `code ${code}`}); ${deaths.length > workerRestartsMax ? 'too many deaths: stopping' : 'restarting it'}`,
      );
      if (deaths.length > workerRestartsMax)
        return void failed?.(new Error(`more than ${workerRestartsMax} worker deaths within ${workerRestartWindowMs / 1000} s`));
      setTimeout(() => !stopping && fork(), workerRestartDelayMs);
    });
  };
  for (let i = 0; i < count; i++) fork();
  return {
    listening: await listening,
    async stop() {
      stopping = true;
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      await Promise.all(workers.map((w) => stopWorker(w)));
    },
  };
}

function stopWorker(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    if (worker.isDead()) return resolve();
    const timer = setTimeout(() => worker.process.kill('SIGKILL'), workerStopTimeoutMs);
    worker.once('exit', () => (clearTimeout(timer), resolve()));
    worker.process.kill('SIGTERM');
  });
}

/**
 * In a worker: reports where it listens, relays its payment changes to the others while anyone
 * else watches, delivers theirs to its own watchers, and stops when the primary is gone.
 */
export function joinPrimary(
  events: PaymentEvents,
  listening: { grpcPort: number; connectPort: number; webUrl: string | undefined },
  stop: () => Promise<void>,
): void {
  let othersWatching = false;
  const send = (m: ToPrimary) => process.send?.(m);
  process.on('message', (m: ToWorker) => {
    if (m.type === 'watchers') othersWatching = m.othersWatching;
    else if (m.type === 'payment') events.deliver(m.payment);
  });
  events.listen((payment) => othersWatching && send({ type: 'payment', payment }));
  events.onSubscribers((count) => send({ type: 'watchers', count }));
  // The primary died (killed): nothing routes connections here any more.
  process.once('disconnect', () => void stop().finally(() => process.exit(0)));
  send({ type: 'listening', ...listening });
}
