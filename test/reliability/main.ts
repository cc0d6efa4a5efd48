/**
 * `npm run reliability [-- --short | --soak] [--only crash,outages] [--seed N] [--keep] [--work-dir DIR] [--publish]`
 *
 * Runs the reliability scenarios in order, each against its own real processes on 127.0.0.1
 * and within its own deadline: crash consistency (on Redis and the embedded ledger, on the
 * embedded defaults without Redis, with `serve --workers 2`, on TigerBeetle when TB_ADDRESS is
 * set, and in soak mode against a 3-replica TigerBeetle cluster), dependency outages, request
 * fuzzing, security and tenant safety. Then scans every log for every secret the scenarios registered, prints
 * one table, writes it as Markdown and JSON under test/reliability/results/latest/ (git-ignored;
 * a run never rewrites a tracked file), and exits non-zero on any violation. `--publish` writes
 * the results to test/reliability/results/ instead: the published record, committed by hand.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { crashOnTigerBeetle, crashTigerBeetleReplica, crashWorkers, runCrash, runCrashEmbedded, tigerBeetleAvailability } from './crash.js';
import { runOutages } from './outage.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from './scenario.js';
import { randomSeed } from './support/prng.js';
import { killAllChildren } from './support/processes.js';
import { type RunReport, table, violationsOf, writeReport } from './support/report.js';
import { scanLogs, storesUnder } from './support/secret-scan.js';

type Mode = ScenarioOptions['mode'];

interface Entry {
  name: string;
  load: () => Promise<Scenario>;
  /** The scenario's budget per mode, milliseconds; a mode without one does not run it. */
  deadlineMs: Partial<Record<Mode, number>>;
  /** Said in the report's notes when the scenario runs. */
  note?: string;
}

/** A scenario this machine cannot run, and why (said in the notes when it was asked for). */
interface Skipped {
  name: string;
  why: string;
}

/** How long the runner waits past a scenario's deadline for it to return before recording it as hung, milliseconds. */
const overrunGraceMs = 60_000;
/** The published results (written with --publish only). */
const publishedDir = fileURLToPath(new URL('./results/', import.meta.url));
/** Every other run's results: git-ignored, so the test command leaves the tree clean. */
const latestDir = fileURLToPath(new URL('./results/latest/', import.meta.url));

const noBinary = 'no TigerBeetle server binary (TB_BIN, or ../shared/tigerbeetle/tigerbeetle beside the repository)';

function entries(mode: Mode, skipped: Skipped[]): Entry[] {
  const tigerBeetle = crashOnTigerBeetle();
  const workers = crashWorkers();
  const replicas = mode === 'soak' ? crashTigerBeetleReplica() : undefined;
  if (tigerBeetle === undefined)
    skipped.push({
      name: 'crash-tigerbeetle',
      why: 'crash consistency on TigerBeetle skipped: TB_ADDRESS is not set (set TB_ADDRESS=host:port[,…] to run it against a cluster)',
    });
  if (workers === undefined)
    skipped.push({ name: 'crash-workers', why: `crash-workers skipped: it needs TigerBeetle, TB_ADDRESS is not set and there is ${noBinary}` });
  if (mode === 'soak' && replicas === undefined) skipped.push({ name: 'crash-tigerbeetle-replica', why: `crash-tigerbeetle-replica skipped: ${noBinary}` });
  const workersNote =
    tigerBeetleAvailability() === 'binary' ? 'crash-workers ran on a private single-replica TigerBeetle cluster (TB_ADDRESS is not set)' : undefined;
  return [
    // 240 s: the 200 s of before plus most of the finish phase's reserve (crash.ts), so a slow machine still runs all 2000 payments.
    { name: 'crash', load: async () => runCrash, deadlineMs: { short: 240_000, soak: 3_600_000 } },
    ...(tigerBeetle === undefined ? [] : [{ name: 'crash-tigerbeetle', load: async () => tigerBeetle, deadlineMs: { short: 240_000, soak: 3_600_000 } }]),
    { name: 'crash-embedded', load: async () => runCrashEmbedded, deadlineMs: { short: 160_000, soak: 2_400_000 } },
    ...(workers === undefined
      ? []
      : [
          {
            name: 'crash-workers',
            load: async () => workers,
            deadlineMs: { short: 210_000, soak: 2_400_000 },
            ...(workersNote === undefined ? {} : { note: workersNote }),
          },
        ]),
    ...(replicas === undefined ? [] : [{ name: 'crash-tigerbeetle-replica', load: async () => replicas, deadlineMs: { soak: 2_400_000 } }]),
    { name: 'outages', load: async () => runOutages, deadlineMs: { short: 180_000, soak: 600_000 } },
    // Part 2 of the suite (fuzzing, security): loaded only when run, so --only works while they are written.
    { name: 'fuzz', load: async () => (await import('./fuzz.js')).runFuzz, deadlineMs: { short: 120_000, soak: 1_200_000 } },
    { name: 'security', load: async () => (await import('./security.js')).runSecurity, deadlineMs: { short: 180_000, soak: 900_000 } },
    // Issue 15's findings 1–5 as checks against one `serve` world (tenant.ts).
    { name: 'tenant', load: async () => (await import('./tenant.js')).runTenant, deadlineMs: { short: 120_000, soak: 300_000 } },
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
      publish: { type: 'boolean', default: false },
    },
  });
  if (values.short && values.soak) throw new Error('choose --short or --soak, not both');
  if (values.seed !== undefined && !/^\d{1,10}$/.test(values.seed)) throw new Error('--seed is an unsigned 32-bit integer');
  const mode: Mode = values.soak ? 'soak' : 'short';
  const only = values.only === undefined ? undefined : new Set(values.only.split(',').map((s) => s.trim()));
  const seed = values.seed === undefined ? randomSeed() : Number(values.seed) >>> 0;
  return { mode, only, seed, keep: values.keep, workRoot: values['work-dir'] ?? tmpdir(), resultsDir: values.publish ? publishedDir : latestDir };
}

async function runOne(entry: Entry, base: Omit<ScenarioOptions, 'deadlineMs'>, mode: Mode): Promise<ScenarioResult> {
  const startedAt = Date.now();
  const deadlineMs = entry.deadlineMs[mode]!;
  process.stdout.write(`\n== ${entry.name} (deadline ${deadlineMs / 1000} s)\n`);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<ScenarioResult>((resolve) => {
    timer = setTimeout(() => {
      // Its processes would compete with the next scenario's: stop them.
      const killed = killAllChildren();
      resolve({
        name: entry.name,
        counts: {},
        violations: [`did not finish within ${(deadlineMs + overrunGraceMs) / 1000} s (${killed} child processes killed)`],
        durationMs: Date.now() - startedAt,
      });
    }, deadlineMs + overrunGraceMs);
  });
  try {
    const run = await entry.load();
    const progress = (line: string) => process.stdout.write(`   ${entry.name} ${Math.round((Date.now() - startedAt) / 1000)} s: ${line}\n`);
    return await Promise.race([run({ ...base, deadlineMs, progress }), hung]);
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return { name: entry.name, counts: {}, violations: [`failed to run: ${message.split('\n').slice(0, 3).join(' | ')}`], durationMs: Date.now() - startedAt };
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<number> {
  const { mode, only, seed, keep, workRoot, resultsDir } = options();
  const startedAt = Date.now();
  const notes: string[] = [];
  const skipped: Skipped[] = [];
  const chosen = entries(mode, skipped).filter((e) => e.deadlineMs[mode] !== undefined && (only === undefined || only.has(e.name)));
  mkdirSync(workRoot, { recursive: true });
  const workDir = mkdtempSync(join(workRoot, 'cs-reliability-'));
  const logDir = join(workDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const secrets = new Set<string>();
  notes.push(
    ...skipped.filter((s) => only === undefined || only.has(s.name)).map((s) => s.why),
    ...chosen.flatMap((e) => (e.note === undefined ? [] : [e.note])),
  );
  if (only !== undefined) notes.push(`only: ${[...only].join(', ')}`);
  for (const name of only ?? [])
    if (!chosen.some((e) => e.name === name) && !skipped.some((s) => s.name === name)) notes.push(`${name}: not run (no such scenario in ${mode} mode)`);
  console.log(`countersign reliability, ${mode} mode, seed ${seed}, work directory ${workDir}`);
  const scenarios: ScenarioResult[] = [];
  for (const entry of chosen) {
    const result = await runOne(entry, { mode, workDir, logDir, secrets, seed }, mode);
    scenarios.push(result);
    notes.push(...(result.notes ?? []).map((n) => `${result.name}: ${n}`));
    console.log(`   ${result.name}: ${result.violations.length} violations in ${(result.durationMs / 1000).toFixed(1)} s`);
  }
  // Every log, and what the services stored (Redis append-only files, authz data directories).
  const scan = scanLogs(workDir, secrets, [logDir, ...storesUnder(workDir)]);
  const report: RunReport = {
    mode,
    partial: only !== undefined,
    seed,
    startedAt: new Date(startedAt).toISOString(),
    durationMs: Date.now() - startedAt,
    node: `Node ${process.version} on ${process.platform}-${process.arch}, ${cpus().length} cores`,
    scenarios,
    scan,
    notes,
  };
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
