/**
 * How long a journaled embedded ledger takes to reopen, and how much memory it holds, after N
 * transfers.
 *
 *   npx tsx bench/ledger-restart.ts --transfers 10000000 [--accounts 10000] [--label after] [--keep] [--publish]
 *   npx tsx bench/ledger-restart.ts --render-only [--publish]   # rewrite the .md from the .json
 *
 * A fresh child process fills a journaled `EmbeddedLedger` in a temporary directory through the
 * port (batches of 8189, fsync off for the fill: durability is not what is measured), closes
 * it; a second fresh child reopens it (latest checkpoint + journal tail), measures the open time,
 * heap and RSS after a full GC, and checks sampled transfers and the posted totals. Rows are
 * merged into bench/results/latest/ledger-restart.{json,md} (git-ignored) by (label, transfers);
 * with --publish into bench/results/ledger-restart.{json,md}, the published record.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { eventBatchMax } from '../ledger/model.js';
import type { FillReport, ReopenReport } from './ledger-restart-child.js';
import { publishOption, resultsDirFor } from './results-dir.js';

const child = fileURLToPath(new URL('./ledger-restart-child.ts', import.meta.url));

interface Row {
  label: string;
  transfers: number;
  accounts: number;
  fillSeconds: number;
  dataDirMB: number;
  openSeconds: number;
  /** This machine's rate of handing out fresh memory during the run (see the child). */
  populateMBps: number;
  heapMB: number;
  arrayBuffersMB: number;
  rssMB: number;
  /** (heap + array buffers) after reopen, less the empty process's, per transfer. */
  bytesPerTransfer: number;
  rssBytesPerTransfer: number;
  recovered: Record<string, number>;
  checkpoints: Record<string, number>;
  verified: boolean;
  failures: string[];
  date: string;
}

function options(): { transfers: number; accounts: number; label: string; keep: boolean; renderOnly: boolean; resultsDir: string } {
  const { values } = parseArgs({
    strict: true,
    options: {
      transfers: { type: 'string', default: '2000000' },
      accounts: { type: 'string', default: '10000' },
      label: { type: 'string', default: 'after' },
      keep: { type: 'boolean', default: false },
      'render-only': { type: 'boolean', default: false },
      ...publishOption,
    },
  });
  const transfers = Number(values.transfers.replaceAll('_', ''));
  const accounts = Number(values.accounts.replaceAll('_', ''));
  if (!Number.isInteger(transfers) || transfers < eventBatchMax) throw new RangeError(`--transfers must be an integer >= ${eventBatchMax}`);
  if (!Number.isInteger(accounts) || accounts < 2) throw new RangeError('--accounts must be an integer >= 2');
  return { transfers, accounts, label: values.label, keep: values.keep, renderOnly: values['render-only'], resultsDir: resultsDirFor(values.publish) };
}

/** Runs the child in `mode` and returns the JSON it printed last. */
function runChild<T>(args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import=tsx', '--expose-gc', child, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${args[0]} child exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as T);
    });
  });
}

function row(label: string, accounts: number, fill: FillReport, reopen: ReopenReport, populateMBps: number): Row {
  const m = reopen.memory;
  const b = reopen.baseline;
  const perTransfer = (mb: number): number => Math.round((mb * 2 ** 20) / fill.transfers);
  return {
    label,
    transfers: fill.transfers,
    accounts,
    fillSeconds: round(fill.fillSeconds),
    dataDirMB: fill.dataDirMB,
    openSeconds: round(reopen.openSeconds),
    populateMBps,
    heapMB: m.heapUsedMB,
    arrayBuffersMB: m.arrayBuffersMB,
    rssMB: m.rssMB,
    bytesPerTransfer: perTransfer(m.heapUsedMB + m.arrayBuffersMB - b.heapUsedMB - b.arrayBuffersMB),
    rssBytesPerTransfer: perTransfer(m.rssMB - b.rssMB),
    recovered: reopen.recovered,
    checkpoints: Object.fromEntries(Object.entries(fill.checkpoints ?? {}).map(([k, v]) => [k, Math.round(v)])),
    verified: reopen.verified,
    failures: reopen.failures,
    date: new Date().toISOString(),
  };
}

/**
 * How fast this machine hands a process fresh memory (allocate + first write of 256 MiB in
 * 4 MiB buffers), MB/s, measured in this small process just before the reopen: loading is
 * mostly that, and on a virtual machine it can be 10-20 times slower than on bare metal.
 */
function populateRate(): number {
  const start = performance.now();
  const held = Array.from({ length: 64 }, () => Buffer.allocUnsafe(4 * 2 ** 20).fill(1));
  return Math.round((held.length * 4) / ((performance.now() - start) / 1000));
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function table(rows: readonly Row[]): string {
  const lines = [
    '| code | transfers | fill s | data dir MB | reopen s | fresh memory MB/s | heap MB | array buffers MB | RSS MB | bytes/transfer (heap+buffers) | RSS bytes/transfer | on open | checkpoints during fill | verified |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|',
  ];
  for (const r of rows) {
    const replayed = Object.entries(r.recovered)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    const checkpoints =
      Object.entries(r.checkpoints ?? {})
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none';
    lines.push(
      `| ${r.label} | ${r.transfers} | ${r.fillSeconds} | ${r.dataDirMB} | ${r.openSeconds} | ${r.populateMBps ?? '?'} | ${r.heapMB} | ${r.arrayBuffersMB} | ` +
        `${r.rssMB} | ${r.bytesPerTransfer} | ${r.rssBytesPerTransfer} | ${replayed} | ${checkpoints} | ${r.verified ? 'yes' : 'no'} |`,
    );
  }
  return lines.join('\n');
}

function readRows(resultsDir: string): Row[] {
  const path = join(resultsDir, 'ledger-restart.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { rows: Row[] }).rows : [];
}

function merge(resultsDir: string, next: Row): Row[] {
  const rows = readRows(resultsDir).filter((r) => r.label !== next.label || r.transfers !== next.transfers);
  rows.push(next);
  return rows.sort((a, b) => a.transfers - b.transfers || a.label.localeCompare(b.label));
}

/** Writes `<resultsDir>/ledger-restart.{json,md}` and says where. */
function write(resultsDir: string, rows: readonly Row[]): void {
  mkdirSync(resultsDir, { recursive: true });
  const environment = { node: process.version, platform: `${process.platform}-${process.arch}` };
  writeFileSync(join(resultsDir, 'ledger-restart.json'), `${JSON.stringify({ environment, rows }, null, 2)}\n`);
  const md =
    '# Ledger restart bench\n\n' +
    `Node ${environment.node} on ${environment.platform}. \`npx tsx bench/ledger-restart.ts --transfers N\`: ` +
    'a journaled embedded ledger filled with N transfers (10 000 accounts with `flags.history`, 1 in 8 transfers ' +
    'pending and posted in the next batch, batches of 8189, fsync off for the fill; then a checkpoint and single-phase ' +
    'batches until the live journal is just under the checkpoint bound, the longest tail a clean shutdown leaves), ' +
    'closed, reopened in a fresh process. `before` is the engine as it was before checkpoints (full journal replay, ' +
    'every transfer a JS object), run with this script from a copy of that commit. Memory after a full GC; ' +
    'per-transfer figures are after reopen minus the empty process. "fresh memory MB/s" is how fast the machine ' +
    'handed out new memory just before the reopen (allocate + first write): loading is mostly that.\n\n' +
    `${table(rows)}\n`;
  writeFileSync(join(resultsDir, 'ledger-restart.md'), md);
  console.log(`written: ${join(resultsDir, 'ledger-restart.md')}, ${join(resultsDir, 'ledger-restart.json')}`);
}

async function main(): Promise<void> {
  const { transfers, accounts, label, keep, renderOnly, resultsDir } = options();
  if (renderOnly) return write(resultsDir, readRows(resultsDir)); // rewrite the .md from the .json
  const root = mkdtempSync(join(tmpdir(), 'cs-restart-'));
  const dataDir = join(root, 'ledger');
  try {
    console.log(`filling ${transfers} transfers into ${dataDir}`);
    const fill = await runChild<FillReport>(['fill', dataDir, String(transfers), String(accounts), String(eventBatchMax)]);
    console.log(`filled in ${fill.fillSeconds.toFixed(1)} s; reopening`);
    const populateMBps = populateRate();
    const reopen = await runChild<ReopenReport>(['reopen', dataDir]);
    const rows = merge(resultsDir, row(label, accounts, fill, reopen, populateMBps));
    write(resultsDir, rows);
    console.log(table(rows));
    for (const f of reopen.failures) console.error(`not verified: ${f}`);
    if (!reopen.verified) process.exitCode = 1;
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
}

await main();
