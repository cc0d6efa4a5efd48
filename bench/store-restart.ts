/**
 * What the journaled payment store (authz/store/journal/) costs: create+confirm throughput with
 * fsync on, journal and checkpoint bytes per payment, memory per payment, and how long a reopen
 * takes after N payments.
 *
 *   npx tsx bench/store-restart.ts --payments 1000000 [--batch 1000] [--pipelines 4] [--label after] [--keep]
 *
 * A fresh child process fills a store in a temporary directory through the port: N payments,
 * each created (CHALLENGED, one rate-limit counter per payer) and then confirmed (9 in 10 with
 * the right answer: APPROVED, version 2; 1 in 10 wrong: a mismatch and a failure streak), in
 * steps of `batch` items with `pipelines` steps in flight, fsync on. It closes the store; a second
 * fresh child reopens it (newest checkpoint + journal tail), measures the open, heap and RSS after
 * a full GC, and checks a sample of payments and their idempotency keys. Rows are merged into
 * bench/results/store-restart.{json,md} by (label, payments).
 *
 * The fill child runs with a larger heap (`fillHeapMiB`): the live state costs more than the
 * reopened one (see the README); the reopen child runs with Node's default heap.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { heapLimitBytes, paymentsMaxDefault, entriesMaxDefault } from '../authz/store/journal/bounds.js';
import { JournalPaymentStore } from '../authz/store/journal/journal-store.js';
import type { Recovery } from '../authz/store/journal/recovery.js';
import type { ConfirmItem, CreateItem } from '../authz/store/port.js';

const self = fileURLToPath(import.meta.url);
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
/** Heap of the fill child, MiB: 1 M live payments need about 3 GB (README). */
const fillHeapMiB = 8192;
/** Merchants and payers the payments spread over. */
const merchantsCount = 100;
const payersCount = 10_000;
/** Payments checked after reopening (spread over the whole range). */
const sampleSize = 1_000;
/** One confirm in `wrongEvery` gives a wrong answer. */
const wrongEvery = 10;
const keyTtlMs = 86_400_000;

interface MemoryNumbers {
  heapUsedMB: number;
  rssMB: number;
}

interface FillReport {
  payments: number;
  fillSeconds: number;
  /** CPU time (user + system) of the fill: less sensitive than wall time to a shared machine. */
  fillCpuSeconds: number;
  closeSeconds: number;
  journalBytes: number;
  journalFrames: number;
  checkpoints: number;
  lastCheckpointBytes: number;
  lastCheckpointSeconds: number;
  memory: MemoryNumbers;
  baseline: MemoryNumbers;
  dataDirBytes: number;
}

interface ReopenReport {
  openSeconds: number;
  openCpuSeconds: number;
  recovered: Omit<Recovery, 'segments' | 'removed' | 'lastSegment' | 'lastSegmentBytes'>;
  memory: MemoryNumbers;
  baseline: MemoryNumbers;
  heapLimitMB: number;
  paymentsMaxDefault: number;
  entriesMaxDefault: number;
  verified: boolean;
  failures: string[];
}

// ------------------------------------------------------------------ the workload (both children)

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const idHex = (ms: number, n: number): string => ((BigInt(ms) << 80n) | (BigInt(n) << 4n)).toString(16).padStart(32, '0');

function population(t0: number): { merchants: string[]; payers: string[] } {
  return {
    merchants: Array.from({ length: merchantsCount }, (_, i) => idHex(t0 - 2, i)),
    payers: Array.from({ length: payersCount }, (_, i) => idHex(t0 - 1, i)),
  };
}

/** Payment `i`: a deterministic create, as the domain would draft it. */
function createOf(t0: number, pop: ReturnType<typeof population>, i: number): CreateItem {
  const payerId = pop.payers[i % payersCount]!;
  const merchantId = pop.merchants[i % merchantsCount]!;
  const id = idHex(t0, i);
  return {
    scope: merchantId,
    key: `order-${i}`,
    fingerprint: sha(`create ${i}`),
    payment: {
      id, merchantId, payerId, payeeAccountId: merchantId, payerAccountId: payerId,
      amount: BigInt(100 + (i % 99_900)), currency: 'EUR', description: `Order ${i} at the corner shop`, channel: 'APP',
      requiredFactors: ['SECOND_CODE'], satisfiedFactors: [], attemptsLeft: 5, state: 'CHALLENGED',
      createdAtMs: t0, updatedAtMs: t0, expiresAtMs: t0 + 300_000, feeAmount: BigInt(i % 50),
      sealedFirstCode: `v1.${sha(`seal ${i}`).slice(0, 24)}.${sha(`code ${i}`)}`,
    },
    digests: { SECOND_CODE: sha(`answer ${i}`) },
    dueAtMs: t0 + 300_000,
    rateLimits: [{ key: `sms:payer:${payerId}`, limit: 1_000_000_000, windowMs: 3_600_000 }],
    keyTtlMs,
    nowMs: t0,
  };
}

function confirmOf(t0: number, create: CreateItem, i: number): ConfirmItem {
  const right = i % wrongEvery !== 0;
  return {
    paymentId: create.payment.id,
    caller: { scope: `payer-${create.payment.payerId}`, payerId: create.payment.payerId },
    key: `confirm-${i}`,
    fingerprint: sha(`confirm ${i} ${right}`),
    factor: 'SECOND_CODE',
    after: [],
    answer: { kind: 'digest', digest: right ? create.digests.SECOND_CODE! : sha('wrong') },
    attemptsMax: 5,
    keyTtlMs,
    nowMs: t0 + 1,
  };
}

function memoryNow(): MemoryNumbers {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
  const m = process.memoryUsage();
  const mb = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
  return { heapUsedMB: mb(m.heapUsed + m.arrayBuffers), rssMB: mb(m.rss) };
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

function directoryBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}

// ------------------------------------------------------------------ child: fill

async function fill(dataDir: string, payments: number, batch: number, pipelines: number, t0: number): Promise<FillReport> {
  const baseline = memoryNow();
  const store = await JournalPaymentStore.open({ dataDir, paymentsMax: payments, entriesMax: 4 * payments + payersCount, lockout: { failuresMax: 1_000_000, backoffBaseMs: 1, backoffMaxMs: 1, memoryMs: 3_600_000 } });
  const pop = population(t0);
  const started = performance.now();
  const cpu = process.cpuUsage();
  let next = 0;
  let reported = 0;
  const pipeline = async (): Promise<void> => {
    while (next < payments) {
      const from = next;
      next = Math.min(payments, next + batch);
      const creates = Array.from({ length: next - from }, (_, k) => createOf(t0, pop, from + k));
      const created = await store.create(creates);
      if (created.some((o) => o.outcome !== 'created')) throw new Error(`payments ${from}..: ${created.find((o) => o.outcome !== 'created')!.outcome}`);
      await store.confirm(creates.map((c, k) => confirmOf(t0, c, from + k)));
      if (next - reported >= payments / 10) {
        reported = next;
        console.error(`  ${next} payments, ${(next / ((performance.now() - started) / 1000)).toFixed(0)}/s, checkpoints ${store.checkpoints.length}`);
      }
    }
  };
  await Promise.all(Array.from({ length: pipelines }, pipeline));
  const fillSeconds = (performance.now() - started) / 1000;
  const fillCpuSeconds = cpuSeconds(cpu);
  const memory = memoryNow();
  const written = store.journalWritten;
  const closing = performance.now();
  await store.close();
  const last = store.checkpoints.at(-1);
  return {
    payments, fillSeconds, fillCpuSeconds, closeSeconds: (performance.now() - closing) / 1000,
    journalBytes: written.bytes, journalFrames: written.frames,
    checkpoints: store.checkpoints.length, lastCheckpointBytes: last?.bytes ?? 0, lastCheckpointSeconds: last?.seconds ?? 0,
    memory, baseline, dataDirBytes: directoryBytes(dataDir),
  };
}

// ------------------------------------------------------------------ child: reopen

async function reopen(dataDir: string, payments: number, t0: number): Promise<ReopenReport> {
  const baseline = memoryNow();
  const started = performance.now();
  const cpu = process.cpuUsage();
  const store = await JournalPaymentStore.open({ dataDir, paymentsMax: payments, entriesMax: 4 * payments + payersCount });
  const openSeconds = (performance.now() - started) / 1000;
  const openCpuSeconds = cpuSeconds(cpu);
  const memory = memoryNow();
  const failures = await verify(store, payments, t0);
  const { segments: _s, removed: _r, lastSegment: _l, lastSegmentBytes: _b, ...recovered } = store.recovered;
  await store.close();
  return {
    openSeconds, openCpuSeconds, recovered, memory, baseline,
    heapLimitMB: Math.round(heapLimitBytes() / 2 ** 20), paymentsMaxDefault: paymentsMaxDefault(), entriesMaxDefault: entriesMaxDefault(),
    verified: failures.length === 0, failures: failures.slice(0, 10),
  };
}

/** Sampled payments are there at version 2 (APPROVED, or CHALLENGED with an attempt counted), and their keys replay. */
async function verify(store: JournalPaymentStore, payments: number, t0: number): Promise<string[]> {
  const failures: string[] = [];
  const pop = population(t0);
  const sample = Array.from({ length: Math.min(sampleSize, payments) }, (_, k) => Math.floor((k * payments) / Math.min(sampleSize, payments)));
  sample.push(payments - 1);
  for (const i of sample) {
    const create = createOf(t0, pop, i);
    const [record] = await store.get([create.payment.id]);
    const state = i % wrongEvery === 0 ? 'CHALLENGED' : 'APPROVED';
    if (record?.version !== 2 || record.payment.state !== state) failures.push(`payment ${i}: ${record === undefined ? 'missing' : `v${record.version} ${record.payment.state}`}`);
    const [again] = await store.create([create]);
    if (again?.outcome !== 'replayed') failures.push(`create key ${i}: ${again?.outcome}`);
    const [confirmed] = await store.confirm([confirmOf(t0, create, i)]);
    if (confirmed?.outcome !== 'replayed') failures.push(`confirm key ${i}: ${confirmed?.outcome}`);
  }
  if (store.state.records.size !== payments) failures.push(`${store.state.records.size} records, expected ${payments}`);
  return failures;
}

// ------------------------------------------------------------------ parent

interface Row {
  label: string;
  payments: number;
  batch: number;
  pipelines: number;
  fillSeconds: number;
  paymentsPerSecond: number;
  paymentsPerCpuSecond: number;
  fsyncsPerSecond: number;
  journalBytesPerPayment: number;
  checkpoints: number;
  checkpointBytesPerPayment: number;
  lastCheckpointSeconds: number;
  dataDirMB: number;
  liveHeapMB: number;
  liveBytesPerPayment: number;
  reopenSeconds: number;
  reopenCpuSeconds: number;
  checkpointLoadSeconds: number;
  checkpointMB: number;
  tailMB: number;
  tailFrames: number;
  tailMutations: number;
  reopenHeapMB: number;
  reopenRssMB: number;
  reopenBytesPerPayment: number;
  reopenRssBytesPerPayment: number;
  heapLimitMB: number;
  paymentsMaxDefault: number;
  entriesMaxDefault: number;
  loadAverage: number;
  verified: boolean;
  failures: string[];
  date: string;
}

function options(): { payments: number; batch: number; pipelines: number; label: string; keep: boolean; child: string | undefined; dir: string | undefined; t0: number } {
  const { values } = parseArgs({
    strict: true,
    options: {
      payments: { type: 'string', default: '100000' },
      batch: { type: 'string', default: '1000' },
      pipelines: { type: 'string', default: '4' },
      label: { type: 'string', default: 'after' },
      keep: { type: 'boolean', default: false },
      child: { type: 'string' },
      dir: { type: 'string' },
      t0: { type: 'string', default: '0' },
    },
  });
  const int = (text: string, what: string, min: number): number => {
    const n = Number(text.replaceAll('_', ''));
    if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`--${what} must be an integer >= ${min}`);
    return n;
  };
  const batch = int(values.batch, 'batch', 1);
  if (batch > 1000) throw new RangeError('--batch must be at most 1000 (stepItemsMax)');
  return { payments: int(values.payments, 'payments', 1), batch, pipelines: int(values.pipelines, 'pipelines', 1), label: values.label, keep: values.keep, child: values.child, dir: values.dir, t0: int(values.t0, 't0', 0) };
}

function runChild<T>(nodeArgs: string[], args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import=tsx', '--expose-gc', ...nodeArgs, self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!) as T) : reject(new Error(`${args[1]} child exited with ${code}`))));
  });
}

function row(label: string, o: ReturnType<typeof options>, f: FillReport, r: ReopenReport): Row {
  const n = f.payments;
  const perPayment = (mb: number): number => Math.round((mb * 2 ** 20) / n);
  const mb = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    label, payments: n, batch: o.batch, pipelines: o.pipelines,
    fillSeconds: round(f.fillSeconds), paymentsPerSecond: Math.round(n / f.fillSeconds), paymentsPerCpuSecond: Math.round(n / f.fillCpuSeconds), fsyncsPerSecond: Math.round(f.journalFrames / f.fillSeconds),
    journalBytesPerPayment: Math.round(f.journalBytes / n), checkpoints: f.checkpoints, checkpointBytesPerPayment: Math.round(f.lastCheckpointBytes / n),
    lastCheckpointSeconds: round(f.lastCheckpointSeconds), dataDirMB: mb(f.dataDirBytes),
    liveHeapMB: f.memory.heapUsedMB, liveBytesPerPayment: perPayment(f.memory.heapUsedMB - f.baseline.heapUsedMB),
    reopenSeconds: round(r.openSeconds), reopenCpuSeconds: round(r.openCpuSeconds), checkpointLoadSeconds: round(r.recovered.checkpointSeconds),
    checkpointMB: mb(r.recovered.checkpointBytes), tailMB: mb(r.recovered.replayedBytes), tailFrames: r.recovered.replayedFrames, tailMutations: r.recovered.replayedMutations,
    reopenHeapMB: r.memory.heapUsedMB, reopenRssMB: r.memory.rssMB,
    reopenBytesPerPayment: perPayment(r.memory.heapUsedMB - r.baseline.heapUsedMB), reopenRssBytesPerPayment: perPayment(r.memory.rssMB - r.baseline.rssMB),
    heapLimitMB: r.heapLimitMB, paymentsMaxDefault: r.paymentsMaxDefault, entriesMaxDefault: r.entriesMaxDefault,
    loadAverage: Math.round(loadavg()[0]! * 10) / 10, verified: r.verified, failures: r.failures, date: new Date().toISOString(),
  };
}

function table(rows: readonly Row[]): string {
  const columns: [string, (r: Row) => unknown][] = [
    ['code', (r) => r.label], ['payments', (r) => r.payments], ['create+confirm /s (fsync on)', (r) => r.paymentsPerSecond],
    ['per CPU s', (r) => r.paymentsPerCpuSecond], ['fsyncs /s', (r) => r.fsyncsPerSecond], ['journal B/payment', (r) => r.journalBytesPerPayment], ['checkpoint B/payment', (r) => r.checkpointBytesPerPayment],
    ['checkpoints', (r) => r.checkpoints], ['data dir MB', (r) => r.dataDirMB], ['live heap B/payment', (r) => r.liveBytesPerPayment],
    ['reopen s (CPU s)', (r) => `${r.reopenSeconds} (${r.reopenCpuSeconds})`], ['checkpoint load s', (r) => r.checkpointLoadSeconds], ['checkpoint MB', (r) => r.checkpointMB],
    ['tail MB (frames)', (r) => `${r.tailMB} (${r.tailFrames})`], ['heap MB after reopen', (r) => r.reopenHeapMB], ['RSS MB', (r) => r.reopenRssMB],
    ['heap B/payment after reopen', (r) => r.reopenBytesPerPayment], ['default paymentsMax (heap MB)', (r) => `${r.paymentsMaxDefault} (${r.heapLimitMB})`],
    ['load avg', (r) => r.loadAverage], ['verified', (r) => (r.verified ? 'yes' : `no: ${r.failures.join('; ')}`)],
  ];
  const lines = [`| ${columns.map(([h]) => h).join(' | ')} |`, `|${columns.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${columns.map(([, f]) => String(f(r))).join(' | ')} |`);
  return lines.join('\n');
}

function write(next: Row): Row[] {
  const path = join(resultsDir, 'store-restart.json');
  const old = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { rows: Row[] }).rows : [];
  const rows = [...old.filter((r) => r.label !== next.label || r.payments !== next.payments), next].sort((a, b) => a.payments - b.payments || a.label.localeCompare(b.label));
  mkdirSync(resultsDir, { recursive: true });
  const environment = { node: process.version, platform: `${process.platform}-${process.arch}` };
  writeFileSync(path, JSON.stringify({ environment, rows }, null, 2) + '\n');
  const md =
    '# Payment store restart bench\n\n' +
    `Node ${environment.node} on ${environment.platform}. \`npx tsx bench/store-restart.ts --payments N\`: a journaled payment store ` +
    '(authz/store/journal/) filled with N payments, each created and then confirmed (1 in 10 with a wrong answer), steps of `batch` ' +
    'items with `pipelines` steps in flight, fsync on; closed; reopened in a fresh process with the default heap. Memory after a full GC ' +
    '(heap + array buffers); per-payment figures are that minus the empty process. "tail" is the journal replayed after the checkpoint. ' +
    '"per CPU s": payments per second of the fill process\'s CPU time (user + system), steadier than wall time on a shared machine; ' +
    'load avg: the machine\'s 1-minute load when the row was written (2 cores, shared with other work).\n\n' +
    `${table(rows)}\n`;
  writeFileSync(join(resultsDir, 'store-restart.md'), md);
  return rows;
}

async function main(): Promise<void> {
  const o = options();
  if (o.child === 'fill') return void console.log(JSON.stringify(await fill(o.dir!, o.payments, o.batch, o.pipelines, o.t0)));
  if (o.child === 'reopen') return void console.log(JSON.stringify(await reopen(o.dir!, o.payments, o.t0)));
  const root = mkdtempSync(join(tmpdir(), 'cs-store-restart-'));
  const dataDir = join(root, 'payments');
  const t0 = Date.now();
  try {
    const common = ['--dir', dataDir, '--payments', String(o.payments), '--t0', String(t0)];
    console.log(`filling ${o.payments} payments into ${dataDir} (fsync on)`);
    const f = await runChild<FillReport>([`--max-old-space-size=${fillHeapMiB}`], ['--child', 'fill', ...common, '--batch', String(o.batch), '--pipelines', String(o.pipelines)]);
    console.log(`filled in ${f.fillSeconds.toFixed(1)} s; reopening`);
    const r = await runChild<ReopenReport>([], ['--child', 'reopen', ...common]);
    const rows = write(row(o.label, o, f, r));
    console.log(table(rows));
  } finally {
    if (o.keep) console.log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

await main();
