/**
 * The bench's authorization server: the production composition (`createApp` + `startServers`,
 * same interceptors, same stores, same ledger) in its own process, started by bench/main.ts with
 * an IPC channel for bench control only. What differs from `countersign serve`:
 *
 * - first codes go to `CodeFeedNotifier` (bench/code-feed.ts) instead of the console;
 * - the payment store's pass-through methods and the directory behind its cache are wrapped to
 *   count calls (bench/store-counts.ts; the same functions are called);
 * - the IPC channel answers `cpu` (this process's `process.cpuUsage()` and the store counts), `register` and `check`
 *   (bench/check.ts), `profile-start` / `profile-stop` (V8 CPU profiler, the one `--cpu-prof`
 *   drives) and `stop`. None of it runs on the RPC path.
 *
 * With `workers` > 1 (`npm run bench -- --workers N`) this process is the cluster primary of
 * `countersign serve --workers N` (services/workers.ts `startPrimary`): it forks N workers of this
 * file that share the gRPC and Connect ports, each running exactly what one server runs above
 * (its own code feed, store counts, loop watch and profiler) and joined to the primary with
 * `joinPrimary`. The primary answers bench/main.ts for all of them: `cpu` sums every worker's and
 * its own CPU, the store counts and the codes delivered (loop stats: the worst worker's, by loop
 * delay p99); `baseline`, `register`, `check` and the profiler go to worker 1 (all state is in
 * Redis and TigerBeetle, so worker 1's app sees what every worker did). A worker that dies ends
 * the run (the primary exits): a restarted one would have lost its counts.
 *
 * Options come as one JSON argument (see `ServerOptions`).
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, prepareKeys } from '../services/app.js';
import { loadConfig } from '../services/config.js';
import { startServers } from '../services/server.js';
import { joinPrimary, startPrimary } from '../services/workers.js';
import { type Baseline, Checker, checkTimeoutMs, type Registration } from './check.js';
import { CodeFeedNotifier } from './code-feed.js';
import { announce, type Handlers, IpcClient, serveIpc } from './ipc.js';
import { benchLimits } from './options.js';
import { WindowProfiler } from './profiler.js';
import { type LoopStats, LoopWatch } from './stats.js';
import { countStoreTraffic, type StoreCounts, sumStoreCounts } from './store-counts.js';

export interface ServerOptions {
  /**
   * memory: the payment store in memory; journal: the durable embedded journal store under this
   * process's temporary data directory (the `countersign serve` default without Redis); redis:
   * the Redis store and directory at `redisUrl`. The directory is in memory unless on Redis.
   */
  store: 'memory' | 'journal' | 'redis';
  redisUrl: string | undefined;
  tbAddresses: string[];
  tbClusterId: string;
  logLevel: string;
  /** 1: one server process (no cluster); N > 1: a cluster primary and N workers (store redis, ledger on TigerBeetle). */
  workers: number;
}

/** What the primary hands its workers: the options and the data directory its keys are in. */
interface WorkerOptions extends ServerOptions {
  dataDir: string;
}

export interface ServerReady {
  grpcPort: number;
  connectPort: number;
  /** Every worker's code feed (one port with one server process). */
  feedPorts: number[];
  adminKey: string;
  describe: string[];
  /** The process bench/main.ts forked (the primary with workers). */
  pid: number;
  /** The worker processes (empty with one server process). */
  workerPids: number[];
}

export interface ServerCpu {
  /** CPU of the server process, or of the primary and every worker together. */
  userMicros: number;
  systemMicros: number;
  rssBytes: number;
  heapUsedBytes: number;
  codesDelivered: number;
  /** This process's event loop since the previous `cpu` call (the measured window, for the second); with workers, the worst worker's (largest delay p99). */
  loop: LoopStats;
  /** Store calls sent and directory reads past the cache since start (bench/store-counts.ts); with workers, summed. */
  store: StoreCounts;
  /** With workers: each worker's CPU (user + system) since it started, microseconds, in worker order. */
  workerCpuMicros?: number[];
}

/** How long the primary waits for every worker to be ready, milliseconds. */
const workersReadyTimeoutMs = 60_000;

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as ServerOptions;
  if ((options.store === 'redis') !== (options.redisUrl !== undefined))
    throw new Error(`assertion failed: store ${options.store} with redisUrl ${options.redisUrl}`);
  if (cluster.isWorker) return runWorker(options as WorkerOptions);
  if (options.workers > 1) return runPrimary(options);
  return runAlone(options);
}

/** Where one server runs: its data directory, its keys (undefined: the key files in `dataDir`), its ports, and how its feed listens. */
interface Place {
  dataDir: string;
  masterKey: string | undefined;
  adminKey: string | undefined;
  grpcPort: number;
  connectPort: number;
}

/** One server: the app, its servers and code feed, and its IPC answers (today's server, and each worker). */
async function startServer(options: ServerOptions, place: Place) {
  const { notifier, port: feedPort } = await CodeFeedNotifier.listen();
  const config = {
    ...loadConfig({}),
    dataDir: place.dataDir,
    redisUrl: options.redisUrl,
    tbAddresses: options.tbAddresses,
    tbClusterId: BigInt(options.tbClusterId),
    masterKey: place.masterKey,
    adminKey: place.adminKey,
    logLevel: options.logLevel,
    grpcPort: place.grpcPort,
    connectPort: place.connectPort,
  };
  const app = await createApp({ config, memoryLedger: true, memoryDirectory: true, memoryStore: options.store === 'memory', notifier, limits: benchLimits });
  const storeCounts = countStoreTraffic(app);
  const servers = await startServers(app, { host: '127.0.0.1', grpcPort: place.grpcPort, connectPort: place.connectPort });
  let checker: Checker | undefined;
  let baseline: Baseline | undefined;
  const profiler = new WindowProfiler();
  const loopWatch = new LoopWatch();
  const close = async () => {
    await servers.close();
    await app.close();
    await notifier.close();
  };
  const handlers = {
    cpu: (): ServerCpu => {
      const cpu = process.cpuUsage();
      const memory = process.memoryUsage();
      const loop = loopWatch.read();
      loopWatch.reset();
      return {
        userMicros: cpu.user,
        systemMicros: cpu.system,
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        codesDelivered: notifier.delivered,
        loop,
        store: storeCounts(),
      };
    },
    baseline: async () => {
      baseline = await Checker.baseline(app);
      return {};
    },
    register: (registration: Registration) => {
      if (baseline === undefined) throw new Error('register before baseline');
      checker = new Checker(app, registration, baseline);
      return {};
    },
    check: () => {
      if (checker === undefined) throw new Error('check before register');
      return checker.run();
    },
    'profile-start': async () => (await profiler.start(), {}),
    'profile-stop': (body: { file: string }) => profiler.stop(body.file),
  } satisfies Handlers;
  const ready: ServerReady = {
    grpcPort: servers.grpcPort,
    connectPort: servers.connectPort,
    feedPorts: [feedPort],
    adminKey: app.adminKey,
    describe: app.describe,
    pid: process.pid,
    workerPids: [],
  };
  return { app, handlers, ready, close };
}

/** `--workers 1`: one server process, a data directory and keys of its own. */
async function runAlone(options: ServerOptions): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-bench-'));
  const server = await startServer(options, {
    dataDir,
    masterKey: randomBytes(32).toString('base64'),
    adminKey: `cs_admin_${randomBytes(16).toString('hex')}`,
    grpcPort: 0,
    connectPort: 0,
  });
  const stop = async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
    setImmediate(() => process.exit(0));
    return {};
  };
  process.once('SIGTERM', () => void stop());
  serveIpc({ ...server.handlers, stop });
  announce('ready', server.ready);
}

/** A worker of the primary: the ports `startPrimary` fixed, the keys the primary wrote, IPC with the primary. */
async function runWorker(options: WorkerOptions): Promise<void> {
  const port = (name: string) => {
    const n = Number(process.env[name]);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`assertion failed: worker without ${name} (got ${process.env[name]})`);
    return n;
  };
  const server = await startServer(options, {
    dataDir: options.dataDir,
    masterKey: undefined,
    adminKey: undefined,
    grpcPort: port('COUNTERSIGN_GRPC_PORT'),
    connectPort: port('COUNTERSIGN_CONNECT_PORT'),
  });
  let stopping: Promise<void> | undefined;
  const close = () => (stopping ??= server.close());
  process.once('SIGTERM', () => void close().finally(() => process.exit(0)));
  serveIpc(server.handlers);
  joinPrimary(server.app.events, { grpcPort: server.ready.grpcPort, connectPort: server.ready.connectPort, webUrl: undefined }, close);
  announce('ready', server.ready);
}

/**
 * `--workers N`: the primary of `countersign serve --workers N` (keys written once into a shared
 * data directory, ports fixed, workers forked by `startPrimary`), answering bench/main.ts for all.
 */
async function runPrimary(options: ServerOptions): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-bench-'));
  const config = {
    ...loadConfig({}),
    dataDir,
    host: '127.0.0.1',
    grpcPort: 0,
    connectPort: 0,
    webPort: 0,
    redisUrl: options.redisUrl,
    tbAddresses: options.tbAddresses,
  };
  prepareKeys(config);
  const workers: IpcClient[] = [];
  let stopping = false;
  cluster.on('fork', (worker) => workers.push(new IpcClient(worker.process, `bench server worker ${workers.length + 1}`)));
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    process.stderr.write(`bench server: worker ${worker.process.pid} exited (${signal ?? `code ${code}`}): the run cannot go on without its counts\n`);
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(1);
  });
  cluster.setupPrimary({ args: [JSON.stringify({ ...options, dataDir } satisfies WorkerOptions)] });
  const primary = await startPrimary(config, options.workers, (line) => process.stderr.write(`bench server primary: ${line}\n`));
  const readies = await Promise.all(workers.map((w) => w.announced<ServerReady>('ready', workersReadyTimeoutMs)));
  const first = workers[0]!;
  const stop = async () => {
    stopping = true;
    await primary.stop();
    rmSync(dataDir, { recursive: true, force: true });
    setImmediate(() => process.exit(0));
    return {};
  };
  process.once('SIGTERM', () => void stop());
  serveIpc({
    cpu: async (): Promise<ServerCpu> => sumCpu(await Promise.all(workers.map((w) => w.call<ServerCpu>('cpu')))),
    baseline: () => first.call('baseline'),
    register: (registration: Registration) => first.call('register', registration),
    check: () => first.call('check', {}, checkTimeoutMs),
    'profile-start': () => first.call('profile-start'),
    'profile-stop': (body: { file: string }) => first.call('profile-stop', body),
    stop,
  });
  const one = readies[0]!;
  announce('ready', {
    grpcPort: one.grpcPort,
    connectPort: one.connectPort,
    feedPorts: readies.map((r) => r.feedPorts[0]!),
    adminKey: one.adminKey,
    describe: [`${options.workers} worker processes (node:cluster, as countersign serve --workers ${options.workers})`, ...one.describe],
    pid: process.pid,
    workerPids: readies.map((r) => r.pid),
  } satisfies ServerReady);
}

/** The workers' answers and the primary's own CPU as one: sums, and the worst worker's loop. */
function sumCpu(answers: ServerCpu[]): ServerCpu {
  const own = process.cpuUsage();
  const memory = process.memoryUsage();
  const sum = (pick: (c: ServerCpu) => number) => answers.reduce((total, c) => total + pick(c), 0);
  const worst = answers.reduce((a, b) => (b.loop.delayP99Ms > a.loop.delayP99Ms ? b : a));
  return {
    userMicros: own.user + sum((c) => c.userMicros),
    systemMicros: own.system + sum((c) => c.systemMicros),
    rssBytes: memory.rss + sum((c) => c.rssBytes),
    heapUsedBytes: memory.heapUsed + sum((c) => c.heapUsedBytes),
    codesDelivered: sum((c) => c.codesDelivered),
    loop: worst.loop,
    store: sumStoreCounts(answers.map((c) => c.store)),
    workerCpuMicros: answers.map((c) => c.userMicros + c.systemMicros),
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`bench server failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
