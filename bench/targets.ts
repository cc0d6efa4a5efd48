import type { ScenarioName, StoreKind } from './options.js';

/**
 * Issue 14's targets, computed from one run's rows (reported, never asserted). A target whose
 * inputs this run did not measure (Redis figures on another store, a scenario left out with
 * `--scenarios` or not reached because the run stopped) has `value` and `met` null and a `note`
 * saying why.
 */

export const targetNames = [
  'batch_server_us_per_auth',
  'batch_redis_commands_per_auth',
  'batch_redis_server_us_per_auth',
  'unary_server_cpu_vs_bare_echo',
  'echo_server_cpu_vs_bare_echo',
  'confirm_p99_half_load_ms',
] as const;
export type TargetName = (typeof targetNames)[number];

export interface Target {
  name: TargetName;
  value: number | null;
  limit: number;
  /** value ≤ limit (value < limit for `confirm_p99_half_load_ms`); null when not measured. */
  met: boolean | null;
  /** Why the value is null; null when measured. */
  note: string | null;
}

interface Definition {
  limit: number;
  /** true: met when value < limit; false: when value ≤ limit. */
  strict: boolean;
  basis: string;
}

export const targetDefinitions: Record<TargetName, Definition> = {
  batch_server_us_per_auth: { limit: 80, strict: false, basis: 'batch: server CPU µs ÷ authorizations' },
  batch_redis_commands_per_auth: {
    limit: 16,
    strict: false,
    basis: "batch on Redis: commands redis-server executed (the sweeper's left out) ÷ authorizations",
  },
  batch_redis_server_us_per_auth: {
    limit: 35,
    strict: false,
    basis: "batch on Redis: redis-server CPU µs ÷ authorizations (the Redis table splits it: in commands, in the scripts' own Lua, the rest)",
  },
  unary_server_cpu_vs_bare_echo: { limit: 3.5, strict: false, basis: 'server CPU per unary authorization ÷ bare server CPU per bare echo RPC' },
  echo_server_cpu_vs_bare_echo: { limit: 1.3, strict: false, basis: 'server CPU per echo RPC ÷ bare server CPU per bare echo RPC' },
  confirm_p99_half_load_ms: { limit: 10, strict: true, basis: 'unary-half: ConfirmPayment p99, ms' },
};

/** What a target needs of a scenario row (a `ScenarioResult` fits). */
export interface TargetRow {
  scenario: ScenarioName;
  serverCpuMicrosPerUnit: number | undefined;
  redis: { commandsPerUnit: number; cpuMicrosPerUnit: number } | undefined;
  methods: readonly { method: string; p99Ms: number }[];
}

export interface TargetInput {
  rows: readonly TargetRow[];
  /** The scenarios the run was asked for (`--scenarios`). */
  scenarios: readonly ScenarioName[];
  store: StoreKind;
}

/** A measured number, or why there is none. */
type Measure = { value: number } | { why: string };

export function targetsOf(input: TargetInput): Target[] {
  const row = (name: ScenarioName): TargetRow | string => {
    const found = input.rows.find((r) => r.scenario === name);
    if (found !== undefined) return found;
    return input.scenarios.includes(name) ? `the run stopped before scenario ${name}` : `scenario ${name} not run (--scenarios)`;
  };
  const cpu = (name: ScenarioName): Measure => {
    const r = row(name);
    if (typeof r === 'string') return { why: r };
    return r.serverCpuMicrosPerUnit === undefined || !Number.isFinite(r.serverCpuMicrosPerUnit)
      ? { why: `scenario ${name} completed nothing` }
      : { value: r.serverCpuMicrosPerUnit };
  };
  const redis = (pick: (r: NonNullable<TargetRow['redis']>) => number): Measure => {
    if (input.store !== 'redis') return { why: `store ${input.store}: no Redis in this run` };
    const r = row('batch');
    if (typeof r === 'string') return { why: r };
    return r.redis === undefined ? { why: 'batch: no Redis counters' } : { value: pick(r.redis) };
  };
  const vsBare = (name: ScenarioName): Measure => {
    const [a, bare] = [cpu(name), cpu('bare')];
    if ('why' in a) return a;
    if ('why' in bare) return bare;
    return bare.value === 0 ? { why: 'bare: server CPU measured 0' } : { value: a.value / bare.value };
  };
  const confirmP99 = (): Measure => {
    const r = row('unary-half');
    if (typeof r === 'string') return { why: r };
    const method = r.methods.find((m) => m.method === 'ConfirmPayment');
    return method === undefined ? { why: 'unary-half: no ConfirmPayment completed' } : { value: method.p99Ms };
  };
  const measures: Record<TargetName, Measure> = {
    batch_server_us_per_auth: cpu('batch'),
    batch_redis_commands_per_auth: redis((r) => r.commandsPerUnit),
    batch_redis_server_us_per_auth: redis((r) => r.cpuMicrosPerUnit),
    unary_server_cpu_vs_bare_echo: vsBare('unary'),
    echo_server_cpu_vs_bare_echo: vsBare('echo'),
    confirm_p99_half_load_ms: confirmP99(),
  };
  return targetNames.map((name) => {
    const { limit, strict } = targetDefinitions[name];
    const m = measures[name];
    if ('why' in m) return { name, value: null, limit, met: null, note: m.why };
    return { name, value: m.value, limit, met: strict ? m.value < limit : m.value <= limit, note: null };
  });
}

function comparator(name: TargetName): string {
  return targetDefinitions[name].strict ? '<' : '≤';
}

function valueText(t: Target): string {
  return t.value === null ? `not measured (${t.note})` : t.value.toFixed(2);
}

/** The Markdown table of the targets. */
export function targetsTable(targets: readonly Target[]): string[] {
  const lines = ['| target | value | limit | met | basis |', '|---|--:|--:|---|---|'];
  for (const t of targets) {
    lines.push(
      `| ${t.name} | ${valueText(t)} | ${comparator(t.name)} ${t.limit} | ${t.met === null ? '—' : t.met ? 'yes' : 'NO'} | ${targetDefinitions[t.name].basis} |`,
    );
  }
  return lines;
}

/** One line per target, for the end of the run. */
export function targetLines(targets: readonly Target[]): string[] {
  return targets.map(
    (t) => `target ${t.name}: ${valueText(t)} (limit ${comparator(t.name)} ${t.limit}): ${t.met === null ? 'not measured' : t.met ? 'met' : 'NOT met'}`,
  );
}
