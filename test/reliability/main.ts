/**
 * `npm run reliability [-- --short | --soak] [--only crash,outages] [--seed N] [--keep] [--work-dir DIR]`
 *
 * Runs the reliability scenarios in order, each against its own real processes on 127.0.0.1
 * and within its own deadline: crash consistency (and on TigerBeetle when TB_ADDRESS is set),
 * dependency outages, request fuzzing and security. Then scans every log for every secret the
 * scenarios registered, prints one table, writes it as Markdown and JSON under
 * test/reliability/results/, and exits non-zero on any violation.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { crashOnTigerBeetle, runCrash } from './crash.js';
import { runOutages } from './outage.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from './scenario.js';
import { killAllChildren } from './support/processes.js';
import { randomSeed } from './support/prng.js';
import { table, violationsOf, writeReport, type RunReport } from './support/report.js';
import { scanLogs, storesUnder } from './support/secret-scan.js';

type Mode = ScenarioOptions['mode'];

interface Entry {
  name: string;
  load: () => Promise<Scenario>;
  /** The scenario's budget per mode, milliseconds. */
  deadlineMs: Record<Mode, number>;
}

/** How long the runner waits past a scenario's deadline for it to return before recording it as hung, milliseconds. */
const overrunGraceMs = 60_000;
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));

function entries(notes: string[]): Entry[] {
  const tigerBeetle = crashOnTigerBeetle();
  if (tigerBeetle === undefined) notes.push('crash consistency on TigerBeetle skipped: TB_ADDRESS is not set (set TB_ADDRESS=host:port[,…] to run it against a cluster)');
  return [
    { name: 'crash', load: async () => runCrash, deadlineMs: { short: 200_000, soak: 3_600_000 } },
    ...(tigerBeetle === undefined ? [] : [{ name: 'crash-tigerbeetle', load: async () => tigerBeetle, deadlineMs: { short: 200_000, soak: 3_600_000 } }]),
    { name: 'outages', load: async () => runOutages, deadlineMs: { short: 180_000, soak: 600_000 } },
    // Part 2 of the suite (fuzzing, security): loaded only when run, so --only works while they are written.
    { name: 'fuzz', load: async () => (await import('./fuzz.js')).runFuzz, deadlineMs: { short: 120_000, soak: 1_200_000 } },
    { name: 'security', load: async () => (await import('./security.js')).runSecurity, deadlineMs: { short: 180_000, soak: 900_000 } },
  ];
}

function options() {
  const { values } = parseArgs({
    options: {
      short: { type: 'boolean', default: false },
      soak: { type: 'boolean', default: false },
      only: { type: 'string' },
      seed: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'work-dir': { type: 'string' },
    },
  });
  if (values.short && values.soak) throw new Error('choose --short or --soak, not both');
  if (values.seed !== undefined && !/^\d{1,10}$/.test(values.seed)) throw new Error('--seed is an unsigned 32-bit integer');
  const mode: Mode = values.soak ? 'soak' : 'short';
  const only = values.only === undefined ? undefined : new Set(values.only.split(',').map((s) => s.trim()));
  const seed = values.seed === undefined ? randomSeed() : Number(values.seed) >>> 0;
  return { mode, only, seed, keep: values.keep, workRoot: values['work-dir'] ?? tmpdir() };
}

async function runOne(entry: Entry, base: Omit<ScenarioOptions, 'deadlineMs'>, mode: Mode): Promise<ScenarioResult> {
  const startedAt = Date.now();
  const deadlineMs = entry.deadlineMs[mode];
  process.stdout.write(`\n== ${entry.name} (deadline ${deadlineMs / 1000} s)\n`);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<ScenarioResult>((resolve) => {
    timer = setTimeout(() => {
      // Its processes would compete with the next scenario's: stop them.
      const killed = killAllChildren();
      resolve({ name: entry.name, counts: {}, violations: [`did not finish within ${(deadlineMs + overrunGraceMs) / 1000} s (${killed} child processes killed)`], durationMs: Date.now() - startedAt });
    }, deadlineMs + overrunGraceMs);
  });
  try {
    const run = await entry.load();
    return await Promise.race([run({ ...base, deadlineMs }), hung]);
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return { name: entry.name, counts: {}, violations: [`failed to run: ${message.split('\n').slice(0, 3).join(' | ')}`], durationMs: Date.now() - startedAt };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Product issues the scenarios count but do not call violations (no invariant breaks; reported
 * to be fixed, see README "Reliability"): said in the notes whenever they showed up.
 */
function knownIssues(scenarios: ScenarioResult[]): string[] {
  const sum = (pattern: RegExp) => scenarios.reduce((n, s) => n + Object.entries(s.counts).filter(([k]) => pattern.test(k)).reduce((m, [, v]) => m + v, 0), 0);
  const notes: string[] = [];
  const stuck = sum(/(^calls_stuckKeys$|_keyInProgress$)/);
  if (stuck > 0) notes.push(`known issue, not counted as a violation: ${stuck} retries met an idempotency key left "in progress" by a call that died with its process or lost Redis mid-way; such a key stays claimed for 24 h, so the same request can never complete (money stays consistent)`);
  const lost = sum(/^client_confirm:FailedPrecondition:NO_CHALLENGE$/);
  if (lost > 0) notes.push(`known issue, not counted as a violation: ${lost} right answers were consumed by a process killed before it recorded the approval; the payment stays CHALLENGED until cancelled or expired, nothing moves`);
  return notes;
}

async function main(): Promise<number> {
  const { mode, only, seed, keep, workRoot } = options();
  const startedAt = Date.now();
  mkdirSync(workRoot, { recursive: true });
  const workDir = mkdtempSync(join(workRoot, 'cs-reliability-'));
  const logDir = join(workDir, 'logs');
  const secrets = new Set<string>();
  const notes: string[] = [];
  const chosen = entries(notes).filter((e) => only === undefined || only.has(e.name));
  if (only !== undefined) notes.push(`only: ${[...only].join(', ')}`);
  console.log(`countersign reliability, ${mode} mode, seed ${seed}, work directory ${workDir}`);
  const scenarios: ScenarioResult[] = [];
  for (const entry of chosen) {
    const result = await runOne(entry, { mode, workDir, logDir, secrets, seed }, mode);
    scenarios.push(result);
    console.log(`   ${result.name}: ${result.violations.length} violations in ${(result.durationMs / 1000).toFixed(1)} s`);
  }
  // Every log, and what the services stored (Redis append-only files, authz data directories).
  notes.push(...knownIssues(scenarios));
  const scan = scanLogs(workDir, secrets, [logDir, ...storesUnder(workDir)]);
  const report: RunReport = { mode, partial: only !== undefined, seed, startedAt: new Date(startedAt).toISOString(), durationMs: Date.now() - startedAt, node: `Node ${process.version} on ${process.platform}-${process.arch}, ${cpus().length} cores`, scenarios, scan, notes };
  const violations = violationsOf(report);
  console.log(`\n${table(report)}\n`);
  for (const note of notes) console.log(`note: ${note}`);
  for (const v of violations) console.log(`VIOLATION ${v}`);
  const paths = writeReport(resultsDir, report);
  console.log(`results: ${paths.markdown}, ${paths.json}`);
  if (keep || violations.length > 0) console.log(`logs and data kept in ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
  return violations.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`reliability: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  },
);
