/**
 * `npm run bench`: the authorization server under load, end to end over gRPC on loopback.
 *
 *   npm run bench                                  # memory store, embedded ledger, 10 000 payers
 *   npm run bench -- --store journal               # the durable embedded journal store
 *   npm run bench -- --store redis                 # a private redis-server on a free port
 *   npm run bench -- --quick                       # ~1 minute smoke run
 *   npm run bench -- --workers 2 --store redis --ledger tigerbeetle   # serve --workers 2
 *   npm run bench -- --help
 *
 * Three processes (plus redis-server): the server (bench/server.ts), the load generator
 * (bench/load.ts), for the bare scenario the bare grpc-js server (bench/bare-server.ts) and, for
 * the ledger scenario, bench/ledger-ceiling.ts; this one orchestrates
 * them, samples the server's CPU and store counts around each measured window, runs the
 * correctness check after each scenario, draws the progress bar, writes
 * bench/results/latest/bench-<tag>.{json,md} (git-ignored; bench/results/ with --publish) and
 * prints the budget lines. See bench/README.md.
 *
 * `--workers N` (N > 1) benches `countersign serve --workers N`: the server process is a cluster
 * primary with N workers (bench/server.ts), the generator opens one connection per worker and
 * reads every worker's code feed, the server's CPU is all N + 1 processes', and the check runs in
 * worker 1 and must count every authorization the generator was answered SUCCEEDED. It needs the
 * store in Redis and the ledger in TigerBeetle; parsed here (bench/options.ts does not know it).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../services/config.js';
import { parseWorkers } from '../services/workers.js';
// The test suite's launcher of throwaway TigerBeetle clusters (format, start, wait, stop, remove).
import { startTigerBeetle, type TigerBeetleCluster, tigerBeetleBinary } from '../test/support/tigerbeetle.js';
import type { BareServerCpu, BareServerOptions, BareServerReady } from './bare-server.js';
import { type CheckResult, checkTimeoutMs, coversAnswered } from './check.js';
import type { CeilingRequest, CeilingResult } from './ledger-ceiling.js';
import type { Progress, SequenceRequest, SetupRequest, SetupResult, StartRequest } from './load.js';
import { type BenchOptions, parseOptions, type ScenarioName, usage } from './options.js';
import { type ForkedChild, forkBench, type PrivateRedis, startPrivateRedis } from './processes.js';
import { ProgressBar, progressIntervalMs } from './progress.js';
import { type RedisSnapshot, redisPerUnit, redisSnapshot } from './redis-stats.js';
import { budgetLines, budgetsOf, checkSummary, environment, markdownTables, type Report, ratiosOf, type ScenarioResult, writeReport } from './report.js';
import type { ServerCpu, ServerOptions, ServerReady } from './server.js';
import type { LoopStats, WindowStats } from './stats.js';
import { storePerUnit } from './store-counts.js';
import { targetLines, targetsOf } from './targets.js';

/** Bounds on the bench's own waiting, milliseconds. */
const serverStartTimeoutMs = 60_000;
const setupMsPerPayer = 20;
const setupMsMin = 60_000;
/** unary-seq: longest wait per authorization of a sequence before the bench gives up, milliseconds. */
const sequenceMsPerAuthMax = 1_000;
/** Heap for the ledger scenario's process (it keeps every transfer of the run in memory), MiB. */
const ledgerHeapMiB = 8_192;

/** The options of a run: bench/options.ts's and the worker count (`--workers`, default 1). */
type RunOptions = BenchOptions & { workers: number };

interface Running {
  options: RunOptions;
  server: ForkedChild;
  load: ForkedChild;
  bar: ProgressBar;
  /** Redis to read INFO from around each window (store redis). */
  redisUrl: string | undefined;
  /** What the bare server answers: the echo payment and the project server's response for it. */
  bare: BareServerOptions;
  /** With workers: each worker's share of the server CPU in a scenario's window, for its progress line. */
  workerShares: Map<ScenarioName, number[]>;
}

async function main(): Promise<number> {
  const args = workersOf(process.argv.slice(2));
  if (typeof args === 'string') return refuse(args);
  if (args.rest.includes('--help')) {
    process.stdout.write(`${usage}${workersUsage}`);
    return 0;
  }
  let options: RunOptions = { ...parseOptions(args.rest), workers: args.workers };
  const refusal = workersRefusal(options);
  if (refusal !== undefined) return refuse(refusal);
  // Results of N workers do not overwrite one server's: bench-<store>-<ledger>-workers<N> unless --tag.
  if (options.workers > 1 && !args.rest.some((a) => a === '--tag' || a.startsWith('--tag=')))
    options = { ...options, tag: `${options.tag}-workers${options.workers}` };
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const bar = new ProgressBar(options.quiet);
  let redis: PrivateRedis | undefined;
  let tigerBeetle: TigerBeetleCluster | undefined;
  let server: ForkedChild | undefined;
  let load: ForkedChild | undefined;
  try {
    if (options.store === 'redis' && options.redisUrl === undefined) redis = await startPrivateRedis();
    if (options.ledger === 'tigerbeetle' && options.tbAddresses.length === 0) {
      tigerBeetle = await startPrivateTigerBeetle();
      options = { ...options, tbAddresses: tigerBeetle.addresses, tbClusterId: tigerBeetle.clusterId };
    }
    const redisUrl = options.store === 'redis' ? (options.redisUrl ?? redis!.url) : undefined;
    const serverOptions: ServerOptions = {
      store: options.store,
      redisUrl,
      tbAddresses: options.ledger === 'tigerbeetle' ? options.tbAddresses : [],
      tbClusterId: String(options.tbClusterId),
      logLevel: options.serverLogLevel,
      workers: options.workers,
    };
    // Source maps only when profiling: profiles then name .ts lines (tsx compiles each file to one line).
    const nodeArgs = options.profile ? ['--enable-source-maps'] : [];
    server = forkBench('server.ts', [JSON.stringify(serverOptions)], { name: 'bench server', nodeArgs: [...nodeArgs, ...options.serverNodeArgs] });
    load = forkBench('load.ts', [], { name: 'load generator', nodeArgs: [...nodeArgs, ...options.loadNodeArgs] });
    const ready = await withStderr(server, server.ipc.announced<ServerReady>('ready', serverStartTimeoutMs));
    await withStderr(load, load.ipc.announced('ready', serverStartTimeoutMs));
    const privates = [...(redis ? [`private ${redis.url}`] : []), ...(tigerBeetle ? [`private TigerBeetle replica ${tigerBeetle.addresses[0]}`] : [])];
    const pids = ready.workerPids.length === 0 ? `pid ${ready.pid}` : `primary pid ${ready.pid}, worker pids ${ready.workerPids.join(', ')}`;
    process.stderr.write(`server ${pids} on 127.0.0.1:${ready.grpcPort} (${ready.describe.join('; ')})${privates.map((p) => `, ${p}`).join('')}\n`);
    if (options.profile && options.workers > 1) process.stderr.write(`--profile with --workers ${options.workers}: the server profiles are worker 1's\n`);

    const setupRequest: SetupRequest = {
      grpcPort: ready.grpcPort,
      feedPorts: ready.feedPorts,
      connections: options.workers,
      adminKey: ready.adminKey,
      payers: options.payers,
      merchants: options.merchants,
      client: options.client,
    };
    await server.ipc.call('baseline');
    process.stderr.write(`enrolling and funding ${options.payers} payers, ${options.merchants} merchants…\n`);
    const setup = await withStderr(load, load.ipc.call<SetupResult>('setup', setupRequest, Math.max(setupMsMin, options.payers * setupMsPerPayer)));
    await server.ipc.call('register', setup.registration);
    process.stderr.write(`setup done in ${setup.seconds.toFixed(1)} s\n`);

    const running: Running = {
      options,
      server,
      load,
      bar,
      redisUrl,
      bare: { paymentId: setup.echoPaymentId, responseBase64: setup.echoResponseBase64 },
      workerShares: new Map(),
    };
    const rows: ScenarioResult[] = [];
    // A scenario that fails (a crashed server) ends the run, but what was measured before it is still written.
    let stopped: Report['stopped'] = null;
    for (const scenario of options.scenarios) {
      try {
        const row =
          scenario === 'ledger'
            ? await runLedger(running)
            : scenario === 'unary-seq'
              ? await runSequential(running)
              : scenario === 'bare'
                ? await runBare(running)
                : await runLoad(running, scenario, startRequest(options, scenario, rows), projectServer(running));
        rows.push(row);
        bar.done(`${scenario.padEnd(11)} ${oneLine(row)}${workersNote(running, row)}`);
      } catch (error) {
        stopped = { scenario, error: withTails(error, [server, load]).message };
        bar.done(`${scenario.padEnd(11)} FAILED, run stopped: ${stopped.error.split('\n')[0]}`);
        break;
      }
    }
    const report: Report = {
      date: new Date().toISOString(),
      command,
      environment: environment(),
      options: { ...withoutResultsDir(options), tbClusterId: String(options.tbClusterId) },
      server: { describe: ready.describe },
      setupSeconds: setup.seconds,
      scenarios: rows,
      ratios: ratiosOf(rows, options),
      budgets: budgetsOf(rows),
      targets: targetsOf({ rows, scenarios: options.scenarios, store: options.store }),
      checksPassed: stopped === null && rows.every((r) => r.check.ok),
      stopped,
    };
    const files = await writeReport(report, options.resultsDir);
    process.stdout.write(
      `\n${markdownTables(report)}\n\nwritten: ${files.md}, ${files.json}\n${[...budgetLines(report.budgets), ...targetLines(report.targets)].join('\n')}\n`,
    );
    if (stopped !== null) process.stderr.write(`bench: scenario ${stopped.scenario} FAILED and the run stopped there:\n${stopped.error}\n`);
    else if (!report.checksPassed) process.stderr.write('bench: a correctness check FAILED\n');
    return report.checksPassed ? 0 : 1;
  } catch (error) {
    throw withTails(error, [server, load]);
  } finally {
    await Promise.allSettled([load?.stop('close'), server?.stop('stop')]);
    await redis?.stop();
    await tigerBeetle?.stop();
  }
}

/**
 * `--ledger tigerbeetle` without addresses: a private single-replica cluster from TB_BIN or
 * ../shared/tigerbeetle/tigerbeetle, started for this run on loopback and removed after it.
 */
async function startPrivateTigerBeetle(): Promise<TigerBeetleCluster> {
  const binary = tigerBeetleBinary();
  if (binary === undefined) {
    throw new RangeError(
      '--ledger tigerbeetle: no --tb-addresses or TB_ADDRESS, and no TigerBeetle server to start (TB_BIN, or ../shared/tigerbeetle/tigerbeetle beside the repository)',
    );
  }
  process.stderr.write(`starting a private TigerBeetle replica (${binary}; 15-30 s)…\n`);
  return startTigerBeetle({ replicas: 1, binary });
}

/** `--workers N` and `--workers=N` taken out of the arguments (the rest go to bench/options.ts); a bad N as its one-line message. */
function workersOf(argv: readonly string[]): { workers: number; rest: string[] } | string {
  const rest: string[] = [];
  let text: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--workers') text = argv[++i] ?? '';
    else if (arg.startsWith('--workers=')) text = arg.slice('--workers='.length);
    else rest.push(arg);
  }
  try {
    return { workers: parseWorkers(text), rest };
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
}

/** Why the options cannot run several workers (services/workers.ts `workersRefusal`, in the bench's flags), or undefined. */
function workersRefusal(options: RunOptions): string | undefined {
  if (options.workers === 1) return undefined;
  const needs = [
    ...(options.store === 'redis' ? [] : [`the payment store in Redis (--store redis; the ${options.store} store belongs to one process)`]),
    ...(options.ledger === 'tigerbeetle' ? [] : ['the ledger in TigerBeetle (--ledger tigerbeetle; the embedded ledger belongs to one process)']),
  ];
  return needs.length === 0 ? undefined : `--workers ${options.workers} needs ${needs.join(' and ')}`;
}

/** A usage error: one line on stderr, exit status 2, nothing started. */
function refuse(message: string): number {
  process.stderr.write(`bench: ${message}\n`);
  return 2;
}

const workersUsage = `  --workers N                 bench countersign serve --workers N (default 1: one server process): a cluster
                              primary and N workers on the same ports; needs --store redis --ledger tigerbeetle
`;

function withoutResultsDir<T extends BenchOptions>(options: T): Omit<T, 'resultsDir'> {
  const { resultsDir: _, ...rest } = options;
  return rest;
}

/** A failure with the stderr of every child that wrote some and is not already quoted in it. */
function withTails(error: unknown, children: (ForkedChild | undefined)[]): Error {
  const message = error instanceof Error ? error.message : String(error);
  const tails = children.flatMap((c) => {
    const tail = c?.stderrTail() ?? '';
    return tail === '' || message.includes(tail) ? [] : [`\n--- stderr of ${c!.ipc.name}:\n${tail}`];
  });
  return new Error(message + tails.join(''), { cause: error });
}

/** Adds the child's stderr to a failure, so a crash explains itself. */
async function withStderr<T>(child: ForkedChild, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    const tail = child.stderrTail();
    throw new Error(`${error instanceof Error ? error.message : String(error)}${tail === '' ? '' : `\n--- its stderr:\n${tail}`}`);
  }
}

/** The server's CPU and store counts and, on Redis, redis-server's counters: one side of a measured window. */
interface Sample {
  cpu: ServerCpu;
  redis: RedisSnapshot | undefined;
}

function sample(run: Running): Promise<Sample> {
  return Promise.all([run.server.ipc.call<ServerCpu>('cpu'), run.redisUrl === undefined ? undefined : redisSnapshot(run.redisUrl)]).then(([cpu, redis]) => ({
    cpu,
    redis,
  }));
}

/** The server-side columns of a window: CPU, store calls and Redis commands per unit. */
interface ServerSide {
  cpuMicros: number;
  loop: LoopStats;
  store: ScenarioResult['store'];
  redis: ScenarioResult['redis'];
  /** With workers: each worker's CPU in the window, microseconds (in `cpuMicros` with the primary's). */
  workerCpuMicros?: number[];
}

function serverSide(before: Sample, after: Sample, units: number): ServerSide {
  const cpuMicros = after.cpu.userMicros + after.cpu.systemMicros - before.cpu.userMicros - before.cpu.systemMicros;
  const sweeper = { calls: after.cpu.store.calls.sweep - before.cpu.store.calls.sweep, claimed: after.cpu.store.sweepClaimed - before.cpu.store.sweepClaimed };
  const redis = before.redis !== undefined && after.redis !== undefined ? redisPerUnit(before.redis, after.redis, units, sweeper) : undefined;
  const side = { cpuMicros, loop: after.cpu.loop, store: storePerUnit(before.cpu.store, after.cpu.store, units), redis };
  const workers = after.cpu.workerCpuMicros;
  return workers === undefined ? side : { ...side, workerCpuMicros: workers.map((m, i) => m - (before.cpu.workerCpuMicros?.[i] ?? 0)) };
}

/**
 * The correctness check after a scenario, in the server (with workers, worker 1); with workers it
 * must also count every authorization the generator was answered SUCCEEDED by any of them.
 */
async function runCheck(run: Running): Promise<CheckResult> {
  const check = await withStderr(run.server, run.server.ipc.call<CheckResult>('check', {}, checkTimeoutMs));
  if (run.options.workers === 1) return check;
  const progress = await run.load.ipc.call<Progress>('progress', {}, 5_000);
  return coversAnswered(check, progress.succeededTotal);
}

/** With workers, the end of a scenario's progress line: each worker's share of the server CPU, and what the check counted against the answers. */
function workersNote(run: Running, row: ScenarioResult): string {
  if (run.options.workers === 1 || row.scenario === 'ledger') return '';
  const shares = run.workerShares.get(row.scenario);
  const total = shares?.reduce((a, b) => a + b, 0) ?? 0;
  const split = shares === undefined || total === 0 ? '' : `; workers' CPU ${shares.map((m) => Math.round((m / total) * 100)).join('/')} %`;
  const check = row.check.detail as CheckResult;
  return `${split}; check counted ${check.succeeded} SUCCEEDED, generator answered ${check.answeredSucceeded}`;
}

/**
 * unary-seq: `seqWarmup` authorizations unmeasured (JIT), then `seqCount` payers' first
 * authorizations (counted for information: their directory entries are not cached yet and their
 * code-rate windows are new), then the same payers' next `seqCount` authorizations measured,
 * strictly one at a time (the generator waits for each ConfirmPayment before the next
 * CreatePayment), with the server's CPU, store counts and Redis counters read just before and
 * after; then the correctness check. Nothing runs concurrently, so nothing coalesces: the store round
 * trips and Redis commands per authorization are a single authorization's.
 */
async function runSequential(run: Running): Promise<ScenarioResult> {
  const { options, server, load, bar } = run;
  const total = options.seqWarmup + 2 * options.seqCount;
  const started = performance.now();
  const ticker = setInterval(() => {
    void load.ipc.call<Progress>('progress', {}, 5_000).then(
      (p) => {
        const done = p.recording ? options.seqWarmup + options.seqCount + p.authorizations : 0;
        bar.update(
          'unary-seq',
          done / total,
          p.recording ? 'measuring' : 'warm-up',
          p.recording ? `${Math.round(p.authorizations / ((performance.now() - started) / 1000))} auth/s` : '',
        );
      },
      () => undefined,
    );
  }, progressIntervalMs);
  try {
    const sequence = (request: SequenceRequest) =>
      withStderr(load, load.ipc.call<WindowStats>('sequence', request, request.count * sequenceMsPerAuthMax + 60_000));
    await sequence({ count: options.seqWarmup, record: false });
    // First pass: each payer's first authorization in this server (its directory entries not yet
    // cached, its code-rate window new). Reported for information.
    const coldBefore = await sample(run);
    await sequence({ count: options.seqCount, record: false });
    const cold = serverSide(coldBefore, await sample(run), options.seqCount);
    // The measured pass: the same payers again, as a running service sees its active payers.
    const profileFile = options.profile ? profilePath(options, 'server', 'unary-seq') : undefined;
    if (profileFile !== undefined) await server.ipc.call('profile-start');
    const before = await sample(run);
    const stats = await sequence({ count: options.seqCount, record: true, rewind: true });
    const after = await sample(run);
    if (profileFile !== undefined) await server.ipc.call('profile-stop', { file: profileFile });
    clearInterval(ticker);
    bar.update('unary-seq', 1, 'checking', '');
    const check = await runCheck(run);
    const side = serverSide(before, after, stats.authorizations);
    if (side.workerCpuMicros !== undefined) run.workerShares.set('unary-seq', side.workerCpuMicros);
    const request: StartRequest = { scenario: 'unary', concurrency: 1, batch: 0 };
    return { ...loadRow('unary-seq', request, stats, side, check, profileFile), firstAuthorization: { store: cold.store, redis: cold.redis } };
  } finally {
    clearInterval(ticker);
  }
}

function startRequest(options: BenchOptions, scenario: ScenarioName, rows: readonly ScenarioResult[]): StartRequest {
  if (scenario === 'batch') return { scenario: 'batch', concurrency: options.batchConcurrency, batch: options.batch };
  if (scenario === 'echo') return { scenario: 'echo', concurrency: options.concurrency, batch: 0 };
  if (scenario === 'bare') throw new Error('assertion failed: bare starts through runBare');
  if (scenario === 'unary') return { scenario: 'unary', concurrency: options.concurrency, batch: 0 };
  const unary = rows.find((r) => r.scenario === 'unary');
  if (unary === undefined || unary.authPerSecond === 0) throw new Error('unary-half needs a unary result first');
  return { scenario: 'unary', concurrency: options.concurrency, batch: 0, rate: Math.max(1, unary.authPerSecond * options.halfLoadFraction) };
}

/** The process whose CPU a load window measures: the project's server, or the bare grpc-js server. */
interface Measured<S> {
  /** One side of the window. */
  sample(): Promise<S>;
  side(before: S, after: S, units: number): ServerSide;
  /** A V8 profile of it can be taken (`--profile`: the project's server only). */
  profiles: boolean;
}

function projectServer(run: Running): Measured<Sample> {
  return { sample: () => sample(run), side: serverSide, profiles: true };
}

/** The bare server's CPU, as `serverSide` measures the project's; it has no store and no Redis. */
function bareServer(child: ForkedChild): Measured<BareServerCpu> {
  return {
    sample: () => child.ipc.call<BareServerCpu>('cpu'),
    side: (before, after) => ({
      cpuMicros: after.userMicros + after.systemMicros - before.userMicros - before.systemMicros,
      loop: after.loop,
      store: undefined,
      redis: undefined,
    }),
    profiles: false,
  };
}

/**
 * bare: a minimal grpc-js server (bench/bare-server.ts, its own process, started for this
 * scenario and stopped after it) answering the echo RPC with the same messages; the generator
 * drives it with the same client and loop as echo. The project server's correctness check still
 * runs after it.
 */
async function runBare(run: Running): Promise<ScenarioResult> {
  const { options } = run;
  const child = forkBench('bare-server.ts', [JSON.stringify(run.bare)], { name: 'bare server', nodeArgs: options.serverNodeArgs });
  try {
    const ready = await withStderr(child, child.ipc.announced<BareServerReady>('ready', serverStartTimeoutMs));
    const request: StartRequest = { scenario: 'bare', concurrency: options.concurrency, batch: 0, barePort: ready.grpcPort };
    return await runLoad(run, 'bare', request, bareServer(child));
  } catch (error) {
    throw withTails(error, [child]);
  } finally {
    await child.stop('stop');
  }
}

/** echo, bare, unary, unary-half, batch: warm-up, measured window with server CPU around it, drain, check. */
async function runLoad<S>(run: Running, scenario: ScenarioName, request: StartRequest, measured: Measured<S>): Promise<ScenarioResult> {
  const { options, server, load, bar } = run;
  const echoLike = scenario === 'echo' || scenario === 'bare';
  const totalMs = options.warmupMs + options.durationMs;
  const started = performance.now();
  const ticker = setInterval(() => {
    void load.ipc.call<Progress>('progress', {}, 5_000).then(
      (p) => {
        const elapsed = performance.now() - started;
        const windowSeconds = Math.max(0.001, (elapsed - options.warmupMs) / 1000);
        const rate = echoLike ? `${Math.round(p.rpcs / windowSeconds)} RPC/s` : `${Math.round(p.authorizations / windowSeconds)} auth/s`;
        bar.update(scenario, elapsed / totalMs, p.recording ? 'measuring' : 'warm-up', p.recording ? rate : '');
      },
      () => undefined,
    );
  }, progressIntervalMs);
  try {
    await withStderr(load, load.ipc.call('start', request));
    await sleep(options.warmupMs);
    const profileFile = options.profile && measured.profiles ? profilePath(options, 'server', scenario) : undefined;
    const clientProfileFile = options.profile && measured.profiles ? profilePath(options, 'load', scenario) : undefined;
    if (profileFile !== undefined) await Promise.all([server.ipc.call('profile-start'), load.ipc.call('profile-start')]);
    const [before] = await Promise.all([measured.sample(), load.ipc.call('measure')]);
    await sleep(options.durationMs);
    const [after, stats] = await Promise.all([measured.sample(), withStderr(load, load.ipc.call<WindowStats>('end', {}, 60_000))]);
    if (profileFile !== undefined)
      await Promise.all([server.ipc.call('profile-stop', { file: profileFile }), load.ipc.call('profile-stop', { file: clientProfileFile })]);
    clearInterval(ticker);
    bar.update(scenario, 1, 'checking', '');
    const check = await runCheck(run);
    const side = measured.side(before, after, echoLike ? stats.rpcs : stats.authorizations);
    if (side.workerCpuMicros !== undefined) run.workerShares.set(scenario, side.workerCpuMicros);
    return loadRow(scenario, request, stats, side, check, profileFile);
  } finally {
    clearInterval(ticker);
  }
}

function profilePath(options: BenchOptions, process: 'server' | 'load', scenario: ScenarioName): string {
  const dir = join(options.resultsDir, 'profiles');
  mkdirSync(dir, { recursive: true });
  return join(dir, `${process}-${options.tag}-${scenario}.cpuprofile`);
}

function loadRow(
  scenario: ScenarioName,
  request: StartRequest,
  stats: WindowStats,
  side: ServerSide,
  check: CheckResult,
  profile: string | undefined,
): ScenarioResult {
  const units = scenario === 'echo' || scenario === 'bare' ? stats.rpcs : stats.authorizations;
  const serverCpuMicros = side.cpuMicros;
  return {
    scenario,
    concurrency: request.concurrency,
    batch: scenario === 'batch' ? request.batch : undefined,
    offeredRate: request.rate,
    seconds: stats.seconds,
    authorizations: stats.authorizations,
    authPerSecond: stats.authorizations / stats.seconds,
    rpcs: stats.rpcs,
    rpcPerSecond: stats.rpcs / stats.seconds,
    transfersPerSecond: undefined,
    latency: stats.all,
    methods: stats.methods,
    serverCpuMicros,
    serverCpuMicrosPerUnit: units === 0 ? undefined : serverCpuMicros / units,
    serverCpuPercent: (serverCpuMicros / (stats.seconds * 1e6)) * 100,
    clientCpuMicros: stats.clientCpuMicros,
    clientCpuMicrosPerUnit: units === 0 ? undefined : stats.clientCpuMicros / units,
    clientCpuPercent: (stats.clientCpuMicros / (stats.seconds * 1e6)) * 100,
    errors: stats.errors,
    check: { ok: check.ok, summary: checkSummary(check), detail: check },
    profile,
    store: side.store,
    redis: side.redis,
    loops: { server: side.loop, client: stats.clientLoop },
  };
}

/** The ledger scenario in its own process, on its own engine instance. */
async function runLedger(run: Running): Promise<ScenarioResult> {
  const { options, bar } = run;
  const child = forkBench('ledger-ceiling.ts', [], { name: 'ledger scenario', nodeArgs: [`--max-old-space-size=${ledgerHeapMiB}`] });
  const totalMs = options.warmupMs + options.durationMs;
  const started = performance.now();
  const ticker = setInterval(() => {
    void child.ipc.call<{ transfers: number; recording: boolean }>('progress', {}, 5_000).then(
      (p) => {
        const elapsed = performance.now() - started;
        const windowSeconds = Math.max(0.001, (elapsed - options.warmupMs) / 1000);
        bar.update(
          'ledger',
          elapsed / totalMs,
          p.recording ? 'measuring' : 'warm-up',
          p.recording ? `~${Math.round(p.transfers / windowSeconds)} transfers/s` : '',
        );
      },
      () => undefined,
    );
  }, progressIntervalMs);
  try {
    await withStderr(child, child.ipc.announced('ready', serverStartTimeoutMs));
    const request: CeilingRequest = {
      ledger: options.ledger,
      tbAddresses: options.tbAddresses,
      tbClusterId: String(options.tbClusterId),
      payers: options.payers,
      merchants: options.merchants,
      batch: options.ledgerBatch,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
    };
    const result = await withStderr(child, child.ipc.call<CeilingResult>('run', request, totalMs + 300_000));
    return ledgerRow(options, result);
  } finally {
    clearInterval(ticker);
    await child.stop();
  }
}

function ledgerRow(options: BenchOptions, r: CeilingResult): ScenarioResult {
  const ok = r.ok && r.balanced;
  const summary = ok
    ? `${r.transfers} transfers all ok, balanced, nothing left pending`
    : [...r.failures, r.balanced ? '' : 'unbalanced'].filter((s) => s !== '').join(', ');
  const empty = { count: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 };
  return {
    scenario: 'ledger',
    concurrency: 1,
    batch: options.ledgerBatch,
    offeredRate: undefined,
    seconds: r.seconds,
    authorizations: 0,
    authPerSecond: 0,
    rpcs: 0,
    rpcPerSecond: 0,
    transfersPerSecond: r.transfersPerSecond,
    latency: empty,
    methods: [],
    serverCpuMicros: undefined,
    serverCpuMicrosPerUnit: undefined,
    serverCpuPercent: undefined,
    clientCpuMicros: r.clientCpuMicros,
    clientCpuMicrosPerUnit: undefined,
    clientCpuPercent: (r.clientCpuMicros / (r.wallSeconds * 1e6)) * 100,
    errors: {},
    check: { ok, summary, detail: { ok: r.ok, balanced: r.balanced, failures: r.failures } },
    profile: undefined,
    store: undefined,
    redis: undefined,
    loops: undefined,
  };
}

function oneLine(r: ScenarioResult): string {
  const check = r.check.ok ? 'check ok' : `check FAILED: ${r.check.summary}`;
  if (r.scenario === 'ledger') return `${Math.round(r.transfersPerSecond ?? 0)} transfers/s, ${check}`;
  const rate =
    r.scenario === 'echo' || r.scenario === 'bare'
      ? `${Math.round(r.rpcPerSecond)} RPC/s`
      : `${Math.round(r.authPerSecond)} auth/s, ${Math.round(r.rpcPerSecond)} RPC/s`;
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  // A failed check says what it found (the first few findings), not only how many: a failure seen once in CI must be readable from its log.
  const findings =
    r.check.ok || !('failures' in r.check.detail)
      ? ''
      : r.check.detail.failures
          .slice(0, 3)
          .map((f) => `\n    ${f}`)
          .join('');
  return `${rate}, p99 ${r.latency.p99Ms.toFixed(2)} ms, server ${Math.round(r.serverCpuPercent ?? 0)} % CPU, ${errors} errors, ${check}${findings}`;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`\nbench failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
