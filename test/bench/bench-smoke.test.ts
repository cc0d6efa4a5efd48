import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { LoopStats } from '../../bench/stats.js';

/**
 * `npm run bench` in its quickest form (20 payers, 1 s per scenario, small batches): every
 * scenario runs, every correctness check passes, and the JSON and Markdown reports carry one row
 * per scenario. Speed is never asserted: this machine's numbers are for bench/README.md.
 */

const scenarios = ['echo', 'unary', 'unary-half', 'batch', 'ledger'] as const;
/** The whole bench run, milliseconds: process start-up, setup, five scenarios and their checks. */
const benchRunMsMax = 100_000;

interface ReportRow {
  scenario: string;
  loops?: { server: LoopStats; client: LoopStats };
  authorizations: number;
  rpcs: number;
  check: { ok: boolean; summary: string };
}
interface ReportFile {
  checksPassed: boolean;
  scenarios: ReportRow[];
  ratios: { name: string }[];
}

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), benchRunMsMax);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

for (const store of ['memory', 'redis'] as const) {
  test.serial(`npm run bench --quick on ${store}: every scenario runs, every check passes, both reports are written`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-bench-smoke-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const { code, output } = await runBench([
      '--quick', '--store', store, '--payers', '20', '--merchants', '2', '--duration', '1', '--warmup', '0.3',
      '--concurrency', '4', '--batch', '20', '--ledger-batch', '200', '--results-dir', dir, '--tag', 'smoke', '--quiet',
    ]);
    t.is(code, 0, output);

    const report = JSON.parse(readFileSync(join(dir, 'bench-smoke.json'), 'utf8')) as ReportFile;
    t.deepEqual(report.scenarios.map((r) => r.scenario), [...scenarios]);
    t.true(report.checksPassed, output);
    for (const row of report.scenarios) t.true(row.check.ok, `${row.scenario}: ${row.check.summary}`);
    const byName = new Map(report.scenarios.map((r) => [r.scenario, r]));
    t.true(byName.get('echo')!.rpcs > 0);
    for (const name of ['unary', 'unary-half', 'batch'] as const) t.true(byName.get(name)!.authorizations > 0, `${name} authorized nothing`);
    // Every load scenario says how both event loops fared (numbers, not NaN); the ledger row has none.
    for (const row of report.scenarios.filter((r) => r.scenario !== 'ledger')) {
      for (const loop of [row.loops!.server, row.loops!.client]) {
        for (const value of [loop.delayP99Ms, loop.delayMaxMs, loop.gcPauses, loop.gcPauseTotalMs, loop.gcPauseMaxMs]) t.true(Number.isFinite(value) && value >= 0, `${row.scenario}: ${JSON.stringify(loop)}`);
        t.true(loop.delayMaxMs >= loop.delayP99Ms, `${row.scenario}: max below p99`);
      }
    }
    t.is(byName.get('ledger')!.loops, undefined);
    t.deepEqual(report.ratios.map((r) => r.name), ['unary vs echo', 'batch vs ledger', 'server CPU, unary', 'server CPU, batch', 'ConfirmPayment p99 at half load']);

    const markdown = readFileSync(join(dir, 'bench-smoke.md'), 'utf8');
    for (const prefix of ['| echo (', '| unary (', '| unary-half (', '| batch (', '| ledger (']) t.true(markdown.includes(prefix), `${prefix} row missing`);
    for (const scenario of ['echo', 'unary', 'unary-half', 'batch']) {
      for (const who of ['server', 'generator']) t.true(markdown.includes(`| ${scenario} | ${who} | `), `loop row ${scenario}/${who} missing`);
    }
    t.false(markdown.includes('FAILED'));
  });
}
