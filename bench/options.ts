import { parseArgs } from 'node:util';
import type { PaymentLimits } from '../authz/payments.js';
import { batchItemsMax } from '../authz/validation.js';
import { eventBatchMax } from '../ledger/model.js';
import { serverNodeFlags } from '../services/runtime-flags.js';
import { publishOption, resultsDirFor } from './results-dir.js';

/**
 * Options of `npm run bench` (bench/main.ts). Every bound is named here with its unit; the
 * defaults are the (10 000 payers, 10 s + 3 s per scenario).
 */

export const scenarioNames = ['echo', 'bare', 'unary-seq', 'unary', 'unary-half', 'batch', 'ledger'] as const;
export type ScenarioName = (typeof scenarioNames)[number];

export type StoreKind = 'memory' | 'journal' | 'redis';
export type LedgerKind = 'embedded' | 'tigerbeetle';
export type ClientKind = 'grpc-js' | 'connect';

export interface BenchOptions {
  store: StoreKind;
  ledger: LedgerKind;
  /** Redis URL; unset with `--store redis`: a private redis-server on a free loopback port. */
  redisUrl: string | undefined;
  /** TigerBeetle replica addresses (comma-separated in the flag), for `--ledger tigerbeetle`. */
  tbAddresses: string[];
  tbClusterId: bigint;
  payers: number;
  merchants: number;
  /** Closed-loop workers (authorizations or echo RPCs in flight) for echo, bare and unary. */
  concurrency: number;
  /** Batches in flight in the batch scenario. */
  batchConcurrency: number;
  /** Items per BatchCreatePayments / BatchConfirmPayments call. */
  batch: number;
  /** Events per createTransfers call in the ledger scenario. */
  ledgerBatch: number;
  durationMs: number;
  warmupMs: number;
  /** unary-seq: authorizations measured, one at a time, and the unrecorded ones before them. */
  seqCount: number;
  seqWarmup: number;
  /** Fraction of the unary maximum the paced `unary-half` scenario offers. */
  halfLoadFraction: number;
  scenarios: ScenarioName[];
  client: ClientKind;
  /** pino level of the server (its lines go to /dev/null: the cost of writing them is measured). */
  serverLogLevel: string;
  /** Extra node flags for the server and for the load generator (GC experiments: `--max-semi-space-size=8`). */
  serverNodeArgs: string[];
  loadNodeArgs: string[];
  /** Write a V8 CPU profile of the server per scenario (measured window only) under <resultsDir>/profiles. */
  profile: boolean;
  /** Name of the result files: <resultsDir>/bench-<tag>.{json,md}; default `<store>-<ledger>`. */
  tag: string;
  /** Where results go: `--results-dir`, else bench/results/latest/ (git-ignored), or bench/results/ with `--publish`. */
  resultsDir: string;
  /** No progress bar (also off when stderr is not a terminal, except for a line per scenario). */
  quiet: boolean;
  quick: boolean;
}

/** Largest payer population the bench enrolls. */
export const payersMax = 1_000_000;
/** Longest measured window or warm-up, milliseconds. */
export const phaseMsMax = 600_000;
/** unary-seq authorizations (measured or warm-up) at most. */
export const seqCountMax = 100_000;
/** Closed-loop workers at most. */
export const concurrencyMax = 4096;

/**
 * The load generator's node flags by default: a 1 MiB young generation. With V8's default (16 MiB)
 * the generator's own scavenges took 10–25 ms each, about twice a second at half load (its grpc-js
 * client allocates ~36 KB per RPC and promotes a third of it), and every response that arrived
 * during one was timed late by the pause: client GC counted as server latency. Small scavenges cost
 * the generator 8–18 % more CPU per authorization (20 s runs, back to back). The server keeps V8's defaults, as `countersign serve` runs.
 */
export const loadNodeArgsDefault = '--max-semi-space-size=1';

const quickDefaults = { payers: '200', duration: '3', warmup: '1' };

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      store: { type: 'string', default: 'memory' },
      ledger: { type: 'string', default: 'embedded' },
      'redis-url': { type: 'string' },
      'tb-addresses': { type: 'string', default: process.env.TB_ADDRESS ?? '' },
      'tb-cluster-id': { type: 'string', default: process.env.TB_CLUSTER_ID ?? '0' },
      payers: { type: 'string' },
      merchants: { type: 'string', default: '4' },
      concurrency: { type: 'string', default: '32' },
      'batch-concurrency': { type: 'string', default: '2' },
      batch: { type: 'string', default: String(batchItemsMax) },
      'ledger-batch': { type: 'string', default: String(eventBatchMax) },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'half-load': { type: 'string', default: '0.5' },
      'seq-count': { type: 'string', default: '300' },
      'seq-warmup': { type: 'string', default: '30' },
      scenarios: { type: 'string', default: scenarioNames.join(',') },
      client: { type: 'string', default: 'grpc-js' },
      'server-log-level': { type: 'string', default: 'info' },
      'server-node-args': { type: 'string', default: serverNodeFlags.join(' ') },
      'load-node-args': { type: 'string', default: loadNodeArgsDefault },
      profile: { type: 'boolean', default: false },
      tag: { type: 'string' },
      'results-dir': { type: 'string' },
      ...publishOption,
      quiet: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  const quick = values.quick;
  if (values.publish && values['results-dir'] !== undefined) throw new RangeError('--publish writes bench/results/: leave out --results-dir');
  const store = oneOf('store', values.store, ['memory', 'journal', 'redis'] as const);
  if (values['redis-url'] !== undefined && store !== 'redis') throw new RangeError('--redis-url needs --store redis');
  const ledger = oneOf('ledger', values.ledger, ['embedded', 'tigerbeetle'] as const);
  const tbAddresses = values['tb-addresses']
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (!/^\d+$/.test(values['tb-cluster-id'])) throw new RangeError('--tb-cluster-id must be an unsigned integer');
  const scenarios = values.scenarios.split(',').map((s) => oneOf('scenarios', s.trim(), scenarioNames));
  if (scenarios.includes('unary-half') && !scenarios.includes('unary'))
    throw new RangeError('unary-half runs at a fraction of the unary maximum: list unary before it');
  return {
    store,
    ledger,
    redisUrl: values['redis-url'] || undefined,
    tbAddresses,
    tbClusterId: BigInt(values['tb-cluster-id']),
    payers: integer('payers', values.payers ?? (quick ? quickDefaults.payers : '10000'), 2, payersMax),
    merchants: integer('merchants', values.merchants, 1, 100),
    concurrency: integer('concurrency', values.concurrency, 1, concurrencyMax),
    batchConcurrency: integer('batch-concurrency', values['batch-concurrency'], 1, 64),
    batch: integer('batch', values.batch, 1, batchItemsMax),
    ledgerBatch: integer('ledger-batch', values['ledger-batch'], 2, eventBatchMax),
    durationMs: seconds('duration', values.duration ?? (quick ? quickDefaults.duration : '10')),
    warmupMs: seconds('warmup', values.warmup ?? (quick ? quickDefaults.warmup : '3'), 0),
    halfLoadFraction: fraction('half-load', values['half-load']),
    seqCount: integer('seq-count', values['seq-count'], 1, seqCountMax),
    seqWarmup: integer('seq-warmup', values['seq-warmup'], 0, seqCountMax),
    scenarios: [...new Set(scenarios)],
    client: oneOf('client', values.client, ['grpc-js', 'connect'] as const),
    serverLogLevel: oneOf('server-log-level', values['server-log-level'], ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const),
    serverNodeArgs: nodeArgs('server-node-args', values['server-node-args']),
    loadNodeArgs: nodeArgs('load-node-args', values['load-node-args']),
    profile: values.profile,
    tag: values.tag ?? `${store}-${ledger}`,
    resultsDir: values['results-dir'] ?? resultsDirFor(values.publish),
    quiet: values.quiet,
    quick,
  };
}

function oneOf<const T extends readonly string[]>(name: string, value: string, allowed: T): T[number] {
  if (!allowed.includes(value)) throw new RangeError(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T[number];
}

/** Space-separated node flags; each must be `--name` or `--name=value` (no file, no script). */
function nodeArgs(name: string, text: string): string[] {
  const args = text.split(' ').filter((a) => a !== '');
  for (const a of args) if (!/^--[a-z0-9-]+(=[\w.,:/-]+)?$/i.test(a)) throw new RangeError(`--${name}: "${a}" is not a node flag (--name or --name=value)`);
  return args;
}

function integer(name: string, text: string, min: number, max: number): number {
  const value = Number(text.replaceAll('_', ''));
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`--${name} must be an integer in ${min}..${max}, got ${text}`);
  return value;
}

function seconds(name: string, text: string, min = 0.1): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value * 1000 > phaseMsMax)
    throw new RangeError(`--${name} must be ${min}..${phaseMsMax / 1000} seconds, got ${text}`);
  return Math.round(value * 1000);
}

function fraction(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || value > 1) throw new RangeError(`--${name} must be in (0, 1], got ${text}`);
  return value;
}

export const usage = `npm run bench -- [options]

  --store memory|journal|redis  the payment store (default memory): journal is the durable embedded
                              store in the server's temporary data directory; redis also puts the
                              directory in Redis (elsewhere it is in memory)
  --redis-url URL             use this Redis (default with --store redis: a private redis-server)
  --ledger embedded|tigerbeetle   ledger engine (default embedded, in memory)
  --tb-addresses A[,B]        TigerBeetle replicas (or TB_ADDRESS); --tb-cluster-id N; without either,
                              --ledger tigerbeetle starts a private single-replica cluster from TB_BIN
                              or ../shared/tigerbeetle/tigerbeetle and removes it after the run
                              (--tb-addresses= ignores TB_ADDRESS; a cluster shared with other
                              work moves the platform accounts the check compares: use a private one)
  --payers P                  payers enrolled and funded (default 10000; --quick 200)
  --merchants M               merchants (default 4)
  --scenarios a,b             of ${scenarioNames.join(', ')} (default all, in this order)
  --concurrency C             closed-loop workers for echo, bare and unary (default 32)
  --batch B                   items per batch RPC (default ${batchItemsMax}); --batch-concurrency N (default 2)
  --ledger-batch N            events per createTransfers call in the ledger scenario (default ${eventBatchMax})
  --duration S --warmup S     measured seconds and warm-up seconds per scenario (default 10 and 3)
  --half-load F               unary-half offers F × the unary maximum (default 0.5)
  --seq-count N --seq-warmup W  unary-seq: N authorizations measured one at a time after W
                              unmeasured ones (default 300 and 30; also with --quick)
  --client grpc-js|connect    the load generator's gRPC client (default grpc-js: cheaper, see README)
  --server-log-level L        the server's pino level (default info, as in production; lines go to /dev/null)
  --server-node-args="F"      node flags for the server (default: serve's, services/runtime-flags.ts:
                              "--max-semi-space-size=64"), e.g. --server-node-args="--max-semi-space-size=8";
                              --load-node-args="F" the same for the load generator (default "--max-semi-space-size=1";
                              --load-node-args= for V8's defaults)
  --profile                   V8 CPU profile of the server per scenario → <results dir>/profiles/
  --quick                     a ~1 minute smoke run (200 payers, 3 s + 1 s per scenario; unary-seq unchanged)
  --tag T --results-dir D     result files D/bench-T.{json,md} (default bench/results/latest/bench-<store>-<ledger>,
                              git-ignored)
  --publish                   write to bench/results/ instead: the published results, committed by hand
  --quiet                     no progress bar
`;

/**
 * The SMS-pumping limits (codes per number, payer and prefix per 10 minutes) and the challenges one
 * merchant may open per payer (30 per 10 minutes, README "Tenant safety") are raised: each
 * simulated payer authorizes many payments a minute at the same few merchants, which no real
 * payer does. The checks still run on every CreatePayment, so their cost is measured.
 */
const codeRateMaxForBench = 1_000_000_000;
export const benchLimits: Partial<PaymentLimits> = {
  codesPerDestinationMax: codeRateMaxForBench,
  codesPerPayerMax: codeRateMaxForBench,
  codesPerPrefixMax: codeRateMaxForBench,
  challengesPerPayerMerchantMax: codeRateMaxForBench,
};
