import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { CheckResult } from './check.js';
import type { BenchOptions, ScenarioName } from './options.js';
import type { Latency, LoopStats, MethodStats } from './stats.js';

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
  /** Per authorization; per RPC for echo. */
  serverCpuMicrosPerUnit: number | undefined;
  /** Share of one core, percent. */
  serverCpuPercent: number | undefined;
  clientCpuMicros: number;
  clientCpuMicrosPerUnit: number | undefined;
  clientCpuPercent: number;
  errors: Record<string, number>;
  check: { ok: boolean; summary: string; detail: CheckResult | { ok: boolean; balanced: boolean; failures: string[] } };
  profile: string | undefined;
  /** Store redis: commands per authorization (echo: per RPC) by name, and redis-server CPU per unit. */
  redis: { commandsPerUnit: number; cpuMicrosPerUnit: number; byCommand: Record<string, number> } | undefined;
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

export interface Report {
  date: string;
  command: string;
  environment: { node: string; platform: string; cpu: string; cores: number };
  options: Omit<BenchOptions, 'resultsDir' | 'tbClusterId'> & { tbClusterId: string };
  server: { describe: string[] };
  setupSeconds: number;
  scenarios: ScenarioResult[];
  ratios: Ratio[];
  checksPassed: boolean;
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
    { name: 'unary vs echo', formula: 'unary auth/s ÷ (echo RPC/s ÷ 2)', value: unaryRatio, target: '≥ 0.6', met: unaryRatio === undefined ? undefined : unaryRatio >= 0.6 },
    { name: 'batch vs ledger', formula: 'batch auth/s ÷ (ledger transfers/s ÷ 2)', value: batchRatio, target: '≥ 0.5', met: batchRatio === undefined ? undefined : batchRatio >= 0.5 },
    { name: 'server CPU, unary', formula: 'server CPU per unary auth ÷ (2 × server CPU per echo RPC)', value: cpuRatio, target: '(1.0 = an authorization costs two bare RPCs)', met: undefined },
    { name: 'server CPU, batch', formula: 'server CPU per batch auth ÷ (2 × server CPU per echo RPC)', value: batchCpuRatio, target: '(informative)', met: undefined },
    {
      name: 'ConfirmPayment p99 at half load',
      formula: `ConfirmPayment p99 (ms) in unary-half, offered ${options.halfLoadFraction} × unary auth/s`,
      value: confirmP99,
      target: '< 10 ms',
      met: confirmP99 === undefined ? undefined : confirmP99 < 10,
    },
  ];
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
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
      r.scenario === 'batch' ? `batch (B=${r.batch}, ${r.concurrency} in flight)`
      : r.scenario === 'unary-half' ? `unary-half (offered ${fmt(r.offeredRate)}/s)`
      : r.scenario === 'ledger' ? `ledger (${fmt(r.transfersPerSecond)} transfers/s)`
      : `${r.scenario} (C=${r.concurrency})`;
    const perUnit = r.scenario === 'echo' ? ' /RPC' : '';
    lines.push(
      `| ${name} | ${r.scenario === 'echo' || r.scenario === 'ledger' ? '—' : fmt(r.authPerSecond)} | ${r.scenario === 'ledger' ? '—' : fmt(r.rpcPerSecond)} | ` +
        `${r.scenario === 'ledger' ? '— | — | — | —' : `${ms(r.latency.p50Ms)} | ${ms(r.latency.p90Ms)} | ${ms(r.latency.p99Ms)} | ${ms(r.latency.maxMs)}`} | ` +
        `${fmt(r.serverCpuMicrosPerUnit, 1)}${r.serverCpuMicrosPerUnit === undefined ? '' : perUnit} | ${r.serverCpuPercent === undefined ? '—' : `${fmt(r.serverCpuPercent)} %`} | ` +
        `${fmt(r.clientCpuMicrosPerUnit, 1)}${r.clientCpuMicrosPerUnit === undefined ? '' : perUnit} | ${fmt(r.clientCpuPercent)} % | ${errorsText(r.errors)} | ${r.check.ok ? 'ok' : 'FAILED'}: ${r.check.summary} |`,
    );
  }
  const methods = ['', '| scenario | method | calls | p50 ms | p90 ms | p99 ms | max ms | errors |', '|---|---|--:|--:|--:|--:|--:|---|'];
  for (const r of report.scenarios) {
    for (const m of r.methods) {
      methods.push(`| ${r.scenario} | ${m.method} | ${m.count} | ${ms(m.p50Ms)} | ${ms(m.p90Ms)} | ${ms(m.p99Ms)} | ${ms(m.maxMs)} | ${errorsText(m.errors)} |`);
    }
  }
  const ratios = ['', '| ratio | formula | value | target | met |', '|---|---|--:|---|---|'];
  for (const q of report.ratios) {
    ratios.push(`| ${q.name} | ${q.formula} | ${fmt(q.value, 2)} | ${q.target} | ${q.met === undefined ? '—' : q.met ? 'yes' : 'no'} |`);
  }
  const redisRows = report.scenarios.filter((r) => r.redis !== undefined);
  const redis = redisRows.length === 0 ? [] : ['', '| scenario | Redis commands per auth (echo: per RPC) | by command | redis-server µs/auth |', '|---|--:|---|--:|'];
  for (const r of redisRows) {
    const by = Object.entries(r.redis!.byCommand).sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${n.toFixed(2)}`).join(', ');
    redis.push(`| ${r.scenario} | ${r.redis!.commandsPerUnit.toFixed(2)} | ${by} | ${fmt(r.redis!.cpuMicrosPerUnit, 1)} |`);
  }
  const loopRows = report.scenarios.filter((r) => r.loops !== undefined);
  const loops = loopRows.length === 0 ? [] : ['', '| scenario | process | loop delay p99 ms | loop delay max ms | GC pauses | GC pause total ms | GC pause max ms |', '|---|---|--:|--:|--:|--:|---|'];
  for (const r of loopRows) {
    for (const [who, l] of [['server', r.loops!.server], ['generator', r.loops!.client]] as const) {
      loops.push(`| ${r.scenario} | ${who} | ${ms(l.delayP99Ms)} | ${ms(l.delayMaxMs)} | ${l.gcPauses} | ${fmt(l.gcPauseTotalMs)} | ${ms(l.gcPauseMaxMs)}${l.gcPauseMaxKind === '' ? '' : ` (${l.gcPauseMaxKind})`} |`);
    }
  }
  return [...lines, ...methods, ...redis, ...loops, ...ratios].join('\n');
}

export function markdownReport(report: Report): string {
  const o = report.options;
  return (
    `# countersign bench: ${o.tag}\n\n` +
    `${report.date}, Node ${report.environment.node} on ${report.environment.platform}, ${report.environment.cores} × ${report.environment.cpu}.\n` +
    `Store ${o.store}, ledger ${o.ledger} (${report.server.describe.join('; ')}); client ${o.client}; node flags: server ${o.serverNodeArgs.join(' ') || '(V8 defaults)'}, generator ${o.loadNodeArgs.join(' ') || '(V8 defaults)'}; ${o.payers} payers, ${o.merchants} merchants; ` +
    `${o.durationMs / 1000} s measured after ${o.warmupMs / 1000} s warm-up per scenario; server log level ${o.serverLogLevel}. ` +
    `Correctness checks ${report.checksPassed ? 'passed after every scenario' : 'FAILED (see the correctness column and the JSON)'}.\n\n` +
    `\`${report.command}\`\n\n` +
    `${markdownTables(report)}\n`
  );
}

export async function writeReport(report: Report, dir: string): Promise<{ json: string; md: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, `bench-${report.options.tag}.json`);
  const md = join(dir, `bench-${report.options.tag}.md`);
  await writeFile(json, JSON.stringify(report, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
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
