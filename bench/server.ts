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
 * Options come as one JSON argument (see `ServerOptions`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PaymentLimits } from '../authz/payments.js';
import { createApp } from '../services/app.js';
import { loadConfig } from '../services/config.js';
import { startServers } from '../services/server.js';
import { type Baseline, Checker, type Registration } from './check.js';
import { CodeFeedNotifier } from './code-feed.js';
import { announce, serveIpc } from './ipc.js';
import { WindowProfiler } from './profiler.js';
import { type LoopStats, LoopWatch } from './stats.js';
import { countStoreTraffic, type StoreCounts } from './store-counts.js';

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
}

export interface ServerReady {
  grpcPort: number;
  connectPort: number;
  feedPort: number;
  adminKey: string;
  describe: string[];
  pid: number;
}

export interface ServerCpu {
  userMicros: number;
  systemMicros: number;
  rssBytes: number;
  heapUsedBytes: number;
  codesDelivered: number;
  /** This process's event loop since the previous `cpu` call (the measured window, for the second). */
  loop: LoopStats;
  /** Store calls sent and directory reads past the cache since start (bench/store-counts.ts). */
  store: StoreCounts;
}

/**
 * The SMS-pumping limits (codes per number, payer and prefix per 10 minutes) and the challenges one
 * merchant may open per payer (30 per 10 minutes, README "Tenant safety") are raised: each
 * simulated payer authorizes many payments a minute at the same few merchants, which no real
 * payer does. The checks still run on every CreatePayment, so their cost is measured.
 */
const codeRateMaxForBench = 1_000_000_000;
const benchLimits: Partial<PaymentLimits> = {
  codesPerDestinationMax: codeRateMaxForBench,
  codesPerPayerMax: codeRateMaxForBench,
  codesPerPrefixMax: codeRateMaxForBench,
  challengesPerPayerMerchantMax: codeRateMaxForBench,
};

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as ServerOptions;
  if ((options.store === 'redis') !== (options.redisUrl !== undefined))
    throw new Error(`assertion failed: store ${options.store} with redisUrl ${options.redisUrl}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-bench-'));
  const { notifier, port: feedPort } = await CodeFeedNotifier.listen();
  const config = {
    ...loadConfig({}),
    dataDir,
    redisUrl: options.redisUrl,
    tbAddresses: options.tbAddresses,
    tbClusterId: BigInt(options.tbClusterId),
    masterKey: randomBytes(32).toString('base64'),
    adminKey: `cs_admin_${randomBytes(16).toString('hex')}`,
    logLevel: options.logLevel,
    grpcPort: 0,
    connectPort: 0,
  };
  const app = await createApp({ config, memoryLedger: true, memoryDirectory: true, memoryStore: options.store === 'memory', notifier, limits: benchLimits });
  const storeCounts = countStoreTraffic(app);
  const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0 });
  let checker: Checker | undefined;
  let baseline: Baseline | undefined;
  const profiler = new WindowProfiler();
  const loopWatch = new LoopWatch();

  const stop = async () => {
    await servers.close();
    await app.close();
    await notifier.close();
    rmSync(dataDir, { recursive: true, force: true });
    setImmediate(() => process.exit(0));
    return {};
  };
  process.once('SIGTERM', () => void stop());

  serveIpc({
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
    stop,
  });
  announce('ready', {
    grpcPort: servers.grpcPort,
    connectPort: servers.connectPort,
    feedPort,
    adminKey: app.adminKey,
    describe: app.describe,
    pid: process.pid,
  } satisfies ServerReady);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench server failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
