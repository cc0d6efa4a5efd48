import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { CheckResult } from './check.js';
import type { BenchOptions, ScenarioName } from './options.js';
import type { RedisPerUnit } from './redis-stats.js';
import type { Latency, LoopStats, MethodStats } from './stats.js';
import { coalescedKinds, type StorePerUnit, storeKinds } from './store-counts.js';
import { type Target, targetsTable } from './targets.js';

/** The store kinds of the request path, in the table's order (the sweeper has its own column). */
const requestKinds = storeKinds.filter((k) => k !== 'sweep');

/** One row of the report: a scenario's measured window. */
export interface ScenarioResult {
  scenario: ScenarioName;
  concurrency: number;
  batch: number | undefined;
  /** unary-half: the authorizations per second offered. */
  offeredRate: number | undefined;
  seconds: number;
  authorizations: number;
  authPerSecond: number;
  rpcs: number;
  rpcPerSecond: number;
  /** ledger: transfers per second through the port. */
  transfersPerSecond: number | undefined;
  latency: Latency;
  methods: MethodStats[];
  /** Server process CPU (user + system) in the window, microseconds; undefined for ledger. */
  serverCpuMicros: number | undefined;
  /** Per authorization; per RPC for echo and bare (bare: the bare grpc-js server's CPU). */
  serverCpuMicrosPerUnit: number | undefined;
  /** Share of one core, percent. */
  serverCpuPercent: number | undefined;
  clientCpuMicros: number;
  clientCpuMicrosPerUnit: number | undefined;
  clientCpuPercent: number;
  errors: Record<string, number>;
  check: { ok: boolean; summary: string; detail: CheckResult | { ok: boolean; balanced: boolean; failures: string[] } };
  profile: string | undefined;
  /** Store calls the server sent in the window per authorization (echo: per RPC), by kind; undefined for ledger. */
  store: StorePerUnit | undefined;
  /** Store redis: commands per authorization (echo: per RPC) by name, and redis-server CPU per unit. */
  redis: RedisPerUnit | undefined;
  /** unary-seq: the same counts for each payer's first authorization (cold directory cache, new rate windows). */
  firstAuthorization?: { store: StorePerUnit | undefined; redis: RedisPerUnit | undefined };
  /** The server's and the generator's event loops in the window (undefined for ledger). */
  loops: { server: LoopStats; client: LoopStats } | undefined;
}

export interface Ratio {
  name: string;
  formula: string;
  value: number | undefined;
  target: string;
  met: boolean | undefined;
}

/**
 * One of the issue's budgets, or a figure reported beside them for information. `value` and `met`
 * are null when the run did not measure it (Redis commands without `--store redis`, a scenario
 * not run). Reported, never asserted.
 */
export interface Budget {
  name: string;
  value: number | null;
  limit: number;
  met: boolean | null;
  /** Where the value comes from. */
  basis: string;
  /** true: shown for information, not a budget the issue sets. */
  informative: boolean;
}

export interface Report {
  date: string;
  command: string;
  environment: { node: string; platform: string; cpu: string; cores: number };
  options: Omit<BenchOptions, 'resultsDir' | 'tbClusterId'> & { tbClusterId: string };
  server: { describe: string[] };
  setupSeconds: number;
  scenarios: ScenarioResult[];
  ratios: Ratio[];
  budgets: Budget[];
  /** Issue 14's targets (bench/targets.ts). */
  targets: Target[];
  /** False when a check failed or the run stopped. */
  checksPassed: boolean;
  /** The scenario that failed and ended the run (later ones did not run), with the error; null when every scenario ran. */
  stopped: { scenario: ScenarioName; error: string } | null;
}

/** The issue's limits: store round trips and Redis commands per unary authorization. */
export const storeRoundTripsPerAuthMax = 3;
export const redisCommandsPerAuthMax = 16;

export function budgetsOf(rows: readonly ScenarioResult[]): Budget[] {
  const row = (name: ScenarioName) => rows.find((r) => r.scenario === name);
  const budget = (name: string, value: number | undefined, limit: number, basis: string, informative: boolean): Budget => ({
    name,
    value: value ?? null,
    limit,
    met: value === undefined ? null : value <= limit,
    basis,
    informative,
  });
  const seq = row('unary-seq');
  const batch = row('batch');
  return [
    budget(
      'unary_store_round_trips_per_auth',
      seq?.store === undefined ? undefined : seq.store.roundTripsPerUnit + seq.store.directoryReadsPerUnit,
      storeRoundTripsPerAuthMax,
      "unary-seq (each payer's next authorization, one at a time): store calls the server sent (all but the sweeper's) and directory reads ÷ authorizations",
      false,
    ),
    budget(
      'unary_redis_commands_per_auth',
      seq?.redis?.commandsPerUnit,
      redisCommandsPerAuthMax,
      "unary-seq on Redis: commands redis-server executed (INFO commandstats, script internals and EVALSHA) but the expiry sweeper's ÷ authorizations",
      false,
    ),
    budget(
      'unary_first_auth_store_round_trips',
      seq?.firstAuthorization?.store === undefined
        ? undefined
        : seq.firstAuthorization.store.roundTripsPerUnit + seq.firstAuthorization.store.directoryReadsPerUnit,
      storeRoundTripsPerAuthMax,
      "unary-seq, each payer's first authorization: store calls plus directory reads (cold cache) ÷ authorizations",
      true,
    ),
    budget(
      'unary_first_auth_redis_commands',
      seq?.firstAuthorization?.redis?.commandsPerUnit,
      redisCommandsPerAuthMax,
      "unary-seq on Redis, each payer's first authorization (cold directory cache, new rate windows): commands ÷ authorizations",
      true,
    ),
    budget(
      'batch_store_round_trips_per_auth',
      batch?.store?.roundTripsPerUnit,
      storeRoundTripsPerAuthMax,
      "batch: store calls (all but the sweeper's) ÷ authorizations (for information)",
      true,
    ),
    budget(
      'batch_redis_commands_per_auth',
      batch?.redis?.commandsPerUnit,
      redisCommandsPerAuthMax,
      'batch on Redis: commands ÷ authorizations (for information)',
      true,
    ),
  ];
}

/** One line per budget, for the end of the run. */
export function budgetLines(budgets: readonly Budget[]): string[] {
  return budgets.map((b) => {
    const verdict = b.met === null ? 'not measured in this run' : b.met ? 'met' : 'NOT met';
    const value = b.value === null ? '—' : b.value.toFixed(2);
    return `budget ${b.name}: ${value} (limit ${b.limit})${b.informative ? ' [information]' : ''}: ${verdict}`;
  });
}

export function ratiosOf(rows: readonly ScenarioResult[], options: BenchOptions): Ratio[] {
  const row = (name: ScenarioName) => rows.find((r) => r.scenario === name);
  const echo = row('echo');
  const unary = row('unary');
  const half = row('unary-half');
  const batch = row('batch');
  const ledger = row('ledger');
  const divide = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
  const unaryRatio = divide(unary?.authPerSecond, echo === undefined ? undefined : echo.rpcPerSecond / 2);
  const batchRatio = divide(batch?.authPerSecond, ledger?.transfersPerSecond === undefined ? undefined : ledger.transfersPerSecond / 2);
  const cpuRatio = divide(unary?.serverCpuMicrosPerUnit, echo?.serverCpuMicrosPerUnit === undefined ? undefined : 2 * echo.serverCpuMicrosPerUnit);
  const batchCpuRatio = divide(batch?.serverCpuMicrosPerUnit, echo?.serverCpuMicrosPerUnit === undefined ? undefined : 2 * echo.serverCpuMicrosPerUnit);
  const confirmP99 = half?.methods.find((m) => m.method === 'ConfirmPayment')?.p99Ms;
  return [
    {
      name: 'unary vs echo',
      formula: 'unary auth/s ÷ (echo RPC/s ÷ 2)',
      value: unaryRatio,
      target: '≥ 0.6',
      met: unaryRatio === undefined ? undefined : unaryRatio >= 0.6,
    },
    {
      name: 'batch vs ledger',
      formula: 'batch auth/s ÷ (ledger transfers/s ÷ 2)',
      value: batchRatio,
      target: '≥ 0.5',
      met: batchRatio === undefined ? undefined : batchRatio >= 0.5,
    },
    {
      name: 'server CPU, unary',
      formula: 'server CPU per unary auth ÷ (2 × server CPU per echo RPC)',
      value: cpuRatio,
      target: '(1.0 = an authorization costs two bare RPCs)',
      met: undefined,
    },
    {
      name: 'server CPU, batch',
      formula: 'server CPU per batch auth ÷ (2 × server CPU per echo RPC)',
      value: batchCpuRatio,
      target: '(informative)',
      met: undefined,
    },
    {
      name: 'ConfirmPayment p99 at half load',
      formula: `ConfirmPayment p99 (ms) in unary-half, offered ${options.halfLoadFraction} × unary auth/s`,
      value: confirmP99,
      target: '< 10 ms',
      met: confirmP99 === undefined ? undefined : confirmP99 < 10,
    },
  ];
}

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));

function errorsText(errors: Record<string, number>): string {
  const entries = Object.entries(errors);
  return entries.length === 0 ? '0' : entries.map(([k, v]) => `${k}×${v}`).join(', ');
}

export function markdownTables(report: Report): string {
  const lines = [
    '| scenario | auth/s | RPC/s | p50 ms | p90 ms | p99 ms | max ms | server µs/auth | server CPU | client µs/auth | client CPU | errors | correctness |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|',
  ];
  for (const r of report.scenarios) {
    const name =
      r.scenario === 'batch'
        ? `batch (B=${r.batch}, ${r.concurrency} in flight)`
        : r.scenario === 'unary-seq'
          ? `unary-seq (C=1, ${r.authorizations} auths)`
          : r.scenario === 'unary-half'
            ? `unary-half (offered ${fmt(r.offeredRate)}/s)`
            : r.scenario === 'ledger'
              ? `ledger (${fmt(r.transfersPerSecond)} transfers/s)`
              : r.scenario === 'bare'
                ? `bare (C=${r.concurrency}, grpc-js alone)`
                : `${r.scenario} (C=${r.concurrency})`;
    const echoLike = r.scenario === 'echo' || r.scenario === 'bare';
    const perUnit = echoLike ? ' /RPC' : '';
    lines.push(
      `| ${name} | ${echoLike || r.scenario === 'ledger' ? '—' : fmt(r.authPerSecond)} | ${r.scenario === 'ledger' ? '—' : fmt(r.rpcPerSecond)} | ` +
        `${r.scenario === 'ledger' ? '— | — | — | —' : `${ms(r.latency.p50Ms)} | ${ms(r.latency.p90Ms)} | ${ms(r.latency.p99Ms)} | ${ms(r.latency.maxMs)}`} | ` +
        `${fmt(r.serverCpuMicrosPerUnit, 1)}${r.serverCpuMicrosPerUnit === undefined ? '' : perUnit} | ${r.serverCpuPercent === undefined ? '—' : `${fmt(r.serverCpuPercent)} %`} | ` +
        `${fmt(r.clientCpuMicrosPerUnit, 1)}${r.clientCpuMicrosPerUnit === undefined ? '' : perUnit} | ${fmt(r.clientCpuPercent)} % | ${errorsText(r.errors)} | ${r.check.ok ? 'ok' : 'FAILED'}: ${r.check.summary} |`,
    );
  }
  const methods = ['', '| scenario | method | calls | p50 ms | p90 ms | p99 ms | max ms | errors |', '|---|---|--:|--:|--:|--:|--:|---|'];
  for (const r of report.scenarios) {
    for (const m of r.methods) {
      methods.push(
        `| ${r.scenario} | ${m.method} | ${m.count} | ${ms(m.p50Ms)} | ${ms(m.p90Ms)} | ${ms(m.p99Ms)} | ${ms(m.maxMs)} | ${errorsText(m.errors)} |`,
      );
    }
  }
  const ratios = ['', '| ratio | formula | value | target | met |', '|---|---|--:|---|---|'];
  for (const q of report.ratios) {
    ratios.push(`| ${q.name} | ${q.formula} | ${fmt(q.value, 2)} | ${q.target} | ${q.met === undefined ? '—' : q.met ? 'yes' : 'no'} |`);
  }
  const redisRows = report.scenarios.filter((r) => r.redis !== undefined);
  const redis =
    redisRows.length === 0
      ? []
      : [
          '',
          "| scenario | Redis commands per auth (echo: per RPC), the sweeper's left out | the sweeper's (not in the total) | by command (all) | redis-server µs/auth | in commands | in scripts' own Lua | other (I/O, parsing) |",
          '|---|--:|--:|---|--:|--:|--:|--:|',
        ];
  for (const r of redisRows) {
    const by = Object.entries(r.redis!.byCommand)
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ${n.toFixed(2)}`)
      .join(', ');
    redis.push(
      `| ${r.scenario} | ${r.redis!.commandsPerUnit.toFixed(2)} | ${r.redis!.sweeperCommandsPerUnit.toFixed(2)} | ${by} | ${fmt(r.redis!.cpuMicrosPerUnit, 1)} | ${fmt(r.redis!.commandMicrosPerUnit, 1)} | ${fmt(r.redis!.scriptMicrosPerUnit, 1)} | ${fmt(r.redis!.otherMicrosPerUnit, 1)} |`,
    );
  }
  const loopRows = report.scenarios.filter((r) => r.loops !== undefined);
  const storeRows = report.scenarios.filter((r) => r.store !== undefined);
  const store =
    storeRows.length === 0
      ? []
      : [
          '',
          `| scenario | store round trips per auth (echo: per RPC) | ${requestKinds.join(' | ')} | sweeper (not in the total) | items per call (${coalescedKinds.join(' / ')}) | directory reads per auth (cache misses) | Redis commands per auth |`,
          `|---|--:|${requestKinds.map(() => '--:|').join('')}--:|---|--:|--:|`,
        ];
  for (const r of storeRows) {
    const s = r.store!;
    const items = coalescedKinds.map((k) => (s.itemsPerCall[k] === 0 ? '—' : fmt(s.itemsPerCall[k], 1))).join(' / ');
    store.push(
      `| ${r.scenario} | ${s.roundTripsPerUnit.toFixed(3)} | ${requestKinds.map((k) => s.callsPerUnit[k].toFixed(3)).join(' | ')} | ${s.callsPerUnit.sweep.toFixed(3)} | ${items} | ${s.directoryReadsPerUnit.toFixed(3)} | ${r.redis === undefined ? '—' : r.redis.commandsPerUnit.toFixed(2)} |`,
    );
  }
  const budgets = report.budgets.length === 0 ? [] : ['', '| budget | value | limit | met | basis |', '|---|--:|--:|---|---|'];
  for (const b of report.budgets) {
    budgets.push(
      `| ${b.name}${b.informative ? ' (information)' : ''} | ${b.value === null ? '—' : b.value.toFixed(2)} | ≤ ${b.limit} | ${b.met === null ? '— (not measured)' : b.met ? 'yes' : 'NO'} | ${b.basis} |`,
    );
  }
  const loops =
    loopRows.length === 0
      ? []
      : [
          '',
          '| scenario | process | loop delay p99 ms | loop delay max ms | GC pauses | GC pause total ms | GC pause max ms |',
          '|---|---|--:|--:|--:|--:|---|',
        ];
  for (const r of loopRows) {
    for (const [who, l] of [
      ['server', r.loops!.server],
      ['generator', r.loops!.client],
    ] as const) {
      loops.push(
        `| ${r.scenario} | ${who} | ${ms(l.delayP99Ms)} | ${ms(l.delayMaxMs)} | ${l.gcPauses} | ${fmt(l.gcPauseTotalMs)} | ${ms(l.gcPauseMaxMs)}${l.gcPauseMaxKind === '' ? '' : ` (${l.gcPauseMaxKind})`} |`,
      );
    }
  }
  const targets = ['', ...targetsTable(report.targets)];
  return [...lines, ...methods, ...store, ...redis, ...loops, ...ratios, ...budgets, ...targets].join('\n');
}

export function markdownReport(report: Report): string {
  const o = report.options;
  return (
    `# countersign bench: ${o.tag}\n\n` +
    `${report.date}, Node ${report.environment.node} on ${report.environment.platform}, ${report.environment.cores} × ${report.environment.cpu}.\n` +
    `Store ${o.store}, ledger ${o.ledger} (${report.server.describe.join('; ')}); client ${o.client}; node flags: server ${o.serverNodeArgs.join(' ') || '(V8 defaults)'}, generator ${o.loadNodeArgs.join(' ') || '(V8 defaults)'}; ${o.payers} payers, ${o.merchants} merchants; ` +
    `${o.durationMs / 1000} s measured after ${o.warmupMs / 1000} s warm-up per scenario; server log level ${o.serverLogLevel}. ` +
    `Correctness checks ${!report.scenarios.every((r) => r.check.ok) ? 'FAILED (see the correctness column and the JSON)' : report.stopped === null ? 'passed after every scenario' : 'passed after every scenario that ran'}.\n\n` +
    `\`${report.command}\`\n\n` +
    (report.stopped === null
      ? ''
      : `**The run stopped: scenario ${report.stopped.scenario} FAILED** (the scenarios after it did not run):\n\n\`\`\`\n${report.stopped.error}\n\`\`\`\n\n`) +
    `${markdownTables(report)}\n`
  );
}

export async function writeReport(report: Report, dir: string): Promise<{ json: string; md: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, `bench-${report.options.tag}.json`);
  const md = join(dir, `bench-${report.options.tag}.md`);
  await writeFile(json, `${JSON.stringify(report, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
  await writeFile(md, markdownReport(report));
  return { json, md };
}

export function environment(): Report['environment'] {
  const list = cpus();
  return { node: process.version, platform: `${process.platform}-${process.arch}`, cpu: list[0]?.model.trim() ?? 'unknown', cores: list.length };
}

/** One line on what a check found. */
export function checkSummary(c: CheckResult): string {
  if (c.ok) return `${c.succeeded} SUCCEEDED posted once each, ${c.payments - c.succeeded} other payments posted nothing, balanced, payer balances exact`;
  const parts = [];
  if (c.missingPosts > 0) parts.push(`${c.missingPosts} SUCCEEDED without post`);
  if (c.strayPosts > 0) parts.push(`${c.strayPosts} posts for non-SUCCEEDED payments`);
  if (!c.balanced) parts.push('ledger unbalanced');
  if (c.payerMismatches > 0) parts.push(`${c.payerMismatches} payer balances wrong`);
  if (c.merchantMismatches > 0) parts.push(`${c.merchantMismatches} merchant balances wrong`);
  if (c.platformMismatches > 0) parts.push(`${c.platformMismatches} platform accounts wrong`);
  return parts.join(', ');
}
