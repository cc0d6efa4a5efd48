/**
 * What the journaled payment store (authz/store/journal/) costs: create+confirm throughput with
 * fsync on, journal and checkpoint bytes per payment, memory per payment, the replayed tail, and
 * how long a reopen takes after N payments.
 *
 *   npx tsx bench/store-restart.ts --payments 500000 [--tail-mib 168] [--batch 1000] [--pipelines 4] [--label after] [--keep] [--publish]
 *
 * A fresh child process fills a store in a temporary directory through the port, with the
 * default checkpoint settings: payments each created (CHALLENGED, one rate-limit counter per
 * payer) and then confirmed (9 in 10 with the right answer: APPROVED, version 2; 1 in 10 wrong: a
 * mismatch and a failure streak), in steps of `batch` items with `pipelines` steps in flight,
 * fsync on — a saturating load, so checkpoints are written under it. It reports the fill, the
 * checkpoints (bytes, seconds, the journal written meanwhile), the largest replay tail a crash
 * could have met at any write (`replayTailBytesMax`), and the heap after a full GC.
 *
 * The worst-case tail (`--tail-mib`, default: the stated bound, `replayTailBytesBound()`): the
 * last payments are written so that a reopen replays that much journal after its checkpoint —
 * the fill stops M payments short (M = tail / `tailBytesPerPaymentEstimate`), closes; a second
 * open writes a checkpoint of what is there; a third open, with checkpoints off, adds the last M
 * payments and closes. `--tail-mib 0` skips that: the reopen replays whatever the clean close left.
 *
 * A second fresh child reopens the directory with Node's default heap and the default settings,
 * measures the open (checkpoint load, tail replay), heap and RSS after a full GC, and checks a
 * sample of payments and their idempotency keys. Rows are merged into
 * bench/results/latest/store-restart.{json,md} (git-ignored) by (label, payments); with --publish
 * into bench/results/store-restart.{json,md}, the published record. The parent samples the 1-minute
 * load average every 2 s (2 cores, shared): mean and max per phase.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { entriesMaxDefault, heapLimitBytes, paymentsMaxDefault, replayTailBytesBound } from '../authz/store/journal/bounds.js';
import type { CheckpointWritten } from '../authz/store/journal/checkpoint.js';
import { JournalPaymentStore, type JournalStoreOptions } from '../authz/store/journal/journal-store.js';
import type { Recovery } from '../authz/store/journal/recovery.js';
import type { ConfirmItem, CreateItem } from '../authz/store/port.js';
import { publishOption, resultsDirFor } from './results-dir.js';

const self = fileURLToPath(import.meta.url);
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
/** Journal bytes one create + confirm writes (measured: bench/results/store-restart.md), to size the worst-case tail. */
const tailBytesPerPaymentEstimate = 840;
const MiB = 2 ** 20;

interface MemoryNumbers {
  heapUsedMB: number;
  rssMB: number;
}

interface FillReport {
  payments: number;
  /** Payments written by the saturating fill with default checkpoints (the rest: the tail). */
  filled: number;
  fillSeconds: number;
  /** CPU time (user + system) of the fill: less sensitive than wall time to a shared machine. */
  fillCpuSeconds: number;
  journalBytes: number;
  journalFrames: number;
  checkpoints: number;
  lastCheckpointBytes: number;
  lastCheckpointSeconds: number;
  /** Most journal written while one checkpoint ran (rotation to rename), and while its walk ran. */
  checkpointJournalBytesMax: number;
  walkJournalBytesMax: number;
  checkpointTriggerBytes: number;
  /** Seconds the checkpoints' walks held the event loop during the fill, summed. */
  checkpointBusySeconds: number;
  replayTailBytesMax: number;
  /** The checkpoint written with the store idle before the tail (0 without a tail). */
  idleCheckpointSeconds: number;
  tailPayments: number;
  tailJournalBytes: number;
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
      id,
      merchantId,
      payerId,
      payeeAccountId: merchantId,
      payerAccountId: payerId,
      amount: BigInt(100 + (i % 99_900)),
      currency: 'EUR',
      description: `Order ${i} at the corner shop`,
      channel: 'APP',
      requiredFactors: ['SECOND_CODE'],
      satisfiedFactors: [],
      attemptsLeft: 5,
      state: 'CHALLENGED',
      createdAtMs: t0,
      updatedAtMs: t0,
      expiresAtMs: t0 + 300_000,
      feeAmount: BigInt(i % 50),
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

const lockout = { failuresMax: 1_000_000, backoffBaseMs: 1, backoffMaxMs: 1, memoryMs: 3_600_000 };

/** Creates and confirms payments [from, to) in steps of `batch`, `pipelines` steps in flight; collects every checkpoint's report in `seen`. */
async function fillRange(
  store: JournalPaymentStore,
  t0: number,
  from: number,
  to: number,
  batch: number,
  pipelines: number,
  seen = new Map<number, CheckpointWritten>(),
): Promise<void> {
  const pop = population(t0);
  const started = performance.now();
  let next = from;
  let reported = from;
  const pipeline = async (): Promise<void> => {
    while (next < to) {
      const first = next;
      next = Math.min(to, next + batch);
      const creates = Array.from({ length: next - first }, (_, k) => createOf(t0, pop, first + k));
      const created = await store.create(creates);
      if (created.some((o) => o.outcome !== 'created')) throw new Error(`payments ${first}..: ${created.find((o) => o.outcome !== 'created')!.outcome}`);
      await store.confirm(creates.map((c, k) => confirmOf(t0, c, first + k)));
      for (const c of store.checkpoints) seen.set(c.segment, c);
      if (next - reported >= (to - from) / 10) {
        reported = next;
        console.error(
          `  ${next} payments, ${((next - from) / ((performance.now() - started) / 1000)).toFixed(0)}/s, checkpoints ${store.checkpoints.length}, replay tail ${(store.replayTailBytes / MiB).toFixed(0)} MiB`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: pipelines }, pipeline));
}

async function fill(dataDir: string, payments: number, tailBytes: number, batch: number, pipelines: number, t0: number): Promise<FillReport> {
  const baseline = memoryNow();
  const base: JournalStoreOptions = { dataDir, paymentsMax: payments, entriesMax: 4 * payments + payersCount, lockout };
  const tailPayments = Math.min(payments - 1, Math.ceil(tailBytes / tailBytesPerPaymentEstimate));
  const filled = payments - tailPayments;
  const store = await JournalPaymentStore.open(base);
  const started = performance.now();
  const cpu = process.cpuUsage();
  const seen = new Map<number, CheckpointWritten>();
  await fillRange(store, t0, 0, filled, batch, pipelines, seen);
  const fillSeconds = (performance.now() - started) / 1000;
  const fillCpuSeconds = cpuSeconds(cpu);
  const memory = memoryNow();
  const written = store.journalWritten;
  const checkpointTriggerBytes = store.checkpointTriggerBytes;
  await store.close();
  for (const c of store.checkpoints) seen.set(c.segment, c);
  const replayTailBytesMax = store.replayTailBytesMax;
  const last = store.checkpoints.at(-1);
  let idleCheckpointSeconds = 0;
  let tailJournalBytes = 0;
  if (tailPayments > 0) {
    const checkpointing = await JournalPaymentStore.open({ ...base, checkpointJournalBytesMin: 1, checkpointJournalBytesMax: 1 }); // checkpoints at open
    await checkpointing.checkpointSettled();
    idleCheckpointSeconds = checkpointing.checkpoints.at(-1)?.seconds ?? 0;
    await checkpointing.close();
    const tail = await JournalPaymentStore.open({ ...base, checkpointJournalBytesMin: 2 ** 50, checkpointJournalBytesMax: 2 ** 50 });
    await fillRange(tail, t0, filled, payments, batch, pipelines);
    await tail.close();
    tailJournalBytes = tail.journalWritten.bytes;
  }
  return {
    payments,
    filled,
    fillSeconds,
    fillCpuSeconds,
    journalBytes: written.bytes,
    journalFrames: written.frames,
    checkpoints: store.checkpointsWritten,
    lastCheckpointBytes: last?.bytes ?? 0,
    lastCheckpointSeconds: last?.seconds ?? 0,
    checkpointJournalBytesMax: Math.max(0, ...[...seen.values()].map((c) => c.journalBytesDuring)),
    walkJournalBytesMax: Math.max(0, ...[...seen.values()].map((c) => c.journalBytesDuringWalk)),
    checkpointBusySeconds: [...seen.values()].reduce((sum, c) => sum + c.busySeconds, 0),
    checkpointTriggerBytes,
    replayTailBytesMax,
    idleCheckpointSeconds,
    tailPayments,
    tailJournalBytes,
    memory,
    baseline,
    dataDirBytes: directoryBytes(dataDir),
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
  await store.checkpointSettled(); // one starts at open when the tail exceeds the trigger: not part of the state's cost
  const memory = memoryNow();
  const failures = await verify(store, payments, t0);
  const { segments: _s, removed: _r, lastSegment: _l, lastSegmentBytes: _b, ...recovered } = store.recovered;
  await store.close();
  return {
    openSeconds,
    openCpuSeconds,
    recovered,
    memory,
    baseline,
    heapLimitMB: Math.round(heapLimitBytes() / 2 ** 20),
    paymentsMaxDefault: paymentsMaxDefault(),
    entriesMaxDefault: entriesMaxDefault(),
    verified: failures.length === 0,
    failures: failures.slice(0, 10),
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
    if (record?.version !== 2 || record.payment.state !== state)
      failures.push(`payment ${i}: ${record === undefined ? 'missing' : `v${record.version} ${record.payment.state}`}`);
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
  /** Payments of the saturating fill; the rest were written as the worst-case tail. */
  filled: number;
  fillSeconds: number;
  paymentsPerSecond: number;
  paymentsPerCpuSecond: number;
  fsyncsPerSecond: number;
  journalBytesPerPayment: number;
  checkpoints: number;
  checkpointBytesPerPayment: number;
  lastCheckpointSeconds: number;
  idleCheckpointSeconds: number;
  checkpointTriggerMB: number;
  /** Share of the fill's wall time the checkpoints' walks held the event loop. */
  checkpointBusyShare: number;
  checkpointJournalMBMax: number;
  walkJournalMBMax: number;
  replayTailMBMax: number;
  replayTailBoundMB: number;
  dataDirMB: number;
  liveHeapMB: number;
  liveBytesPerPayment: number;
  reopenSeconds: number;
  reopenCpuSeconds: number;
  checkpointLoadSeconds: number;
  checkpointMB: number;
  replaySeconds: number;
  tailMB: number;
  tailFrames: number;
  tailMutations: number;
  replayMBPerSecond: number;
  reopenHeapMB: number;
  reopenRssMB: number;
  reopenBytesPerPayment: number;
  reopenRssBytesPerPayment: number;
  heapLimitMB: number;
  paymentsMaxDefault: number;
  entriesMaxDefault: number;
  loadFill: LoadSeen;
  loadReopen: LoadSeen;
  /** Rows of the first version of this bench: the 1-minute load when the row was written. */
  loadAverage?: number;
  verified: boolean;
  failures: string[];
  date: string;
}

interface Options {
  payments: number;
  tailBytes: number;
  batch: number;
  pipelines: number;
  label: string;
  keep: boolean;
  child: string | undefined;
  dir: string | undefined;
  t0: number;
  /** bench/results/latest/ (git-ignored), or bench/results/ with --publish. */
  resultsDir: string;
}

function options(): Options {
  const { values } = parseArgs({
    strict: true,
    options: {
      payments: { type: 'string', default: '100000' },
      'tail-mib': { type: 'string', default: String(Math.round(replayTailBytesBound() / MiB)) },
      batch: { type: 'string', default: '1000' },
      pipelines: { type: 'string', default: '4' },
      label: { type: 'string', default: 'after' },
      keep: { type: 'boolean', default: false },
      child: { type: 'string' },
      dir: { type: 'string' },
      t0: { type: 'string', default: '0' },
      ...publishOption,
    },
  });
  const int = (text: string, what: string, min: number): number => {
    const n = Number(text.replaceAll('_', ''));
    if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`--${what} must be an integer >= ${min}`);
    return n;
  };
  const batch = int(values.batch, 'batch', 1);
  if (batch > 1000) throw new RangeError('--batch must be at most 1000 (stepItemsMax)');
  return {
    payments: int(values.payments, 'payments', 1),
    tailBytes: int(values['tail-mib'], 'tail-mib', 0) * MiB,
    batch,
    pipelines: int(values.pipelines, 'pipelines', 1),
    label: values.label,
    keep: values.keep,
    child: values.child,
    dir: values.dir,
    t0: int(values.t0, 't0', 0),
    resultsDir: resultsDirFor(values.publish),
  };
}

function runChild<T>(nodeArgs: string[], args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import=tsx', '--expose-gc', ...nodeArgs, self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!) as T) : reject(new Error(`${args[1]} child exited with ${code}`)),
    );
  });
}

interface LoadSeen {
  mean: number;
  max: number;
}

/** Samples the 1-minute load average every `loadSampleMs` while `run` runs. */
async function withLoad<T>(run: () => Promise<T>): Promise<{ value: T; load: LoadSeen }> {
  const samples = [loadavg()[0]!];
  const timer = setInterval(() => samples.push(loadavg()[0]!), loadSampleMs);
  try {
    const value = await run();
    samples.push(loadavg()[0]!);
    const round = (x: number): number => Math.round(x * 10) / 10;
    return { value, load: { mean: round(samples.reduce((a, b) => a + b, 0) / samples.length), max: round(Math.max(...samples)) } };
  } finally {
    clearInterval(timer);
  }
}

const loadSampleMs = 2_000;

function row(o: Options, f: FillReport, r: ReopenReport, loadFill: LoadSeen, loadReopen: LoadSeen): Row {
  const n = f.payments;
  const perPayment = (mb: number, payments = n): number => Math.round((mb * MiB) / payments);
  const mb = (bytes: number): number => Math.round((bytes / MiB) * 10) / 10;
  const round = (x: number): number => Math.round(x * 100) / 100;
  const rec = r.recovered;
  return {
    label: o.label,
    payments: n,
    batch: o.batch,
    pipelines: o.pipelines,
    filled: f.filled,
    fillSeconds: round(f.fillSeconds),
    paymentsPerSecond: Math.round(f.filled / f.fillSeconds),
    paymentsPerCpuSecond: Math.round(f.filled / f.fillCpuSeconds),
    fsyncsPerSecond: Math.round(f.journalFrames / f.fillSeconds),
    journalBytesPerPayment: Math.round(f.journalBytes / f.filled),
    checkpoints: f.checkpoints,
    checkpointBytesPerPayment: Math.round(rec.checkpointBytes / Math.max(1, f.filled)),
    lastCheckpointSeconds: round(f.lastCheckpointSeconds),
    idleCheckpointSeconds: round(f.idleCheckpointSeconds),
    checkpointTriggerMB: mb(f.checkpointTriggerBytes),
    checkpointBusyShare: round(f.checkpointBusySeconds / f.fillSeconds),
    checkpointJournalMBMax: mb(f.checkpointJournalBytesMax),
    walkJournalMBMax: mb(f.walkJournalBytesMax),
    replayTailMBMax: mb(f.replayTailBytesMax),
    replayTailBoundMB: mb(replayTailBytesBound()),
    dataDirMB: mb(f.dataDirBytes),
    liveHeapMB: f.memory.heapUsedMB,
    liveBytesPerPayment: perPayment(f.memory.heapUsedMB - f.baseline.heapUsedMB, f.filled),
    reopenSeconds: round(r.openSeconds),
    reopenCpuSeconds: round(r.openCpuSeconds),
    checkpointLoadSeconds: round(rec.checkpointSeconds),
    checkpointMB: mb(rec.checkpointBytes),
    replaySeconds: round(rec.replaySeconds),
    tailMB: mb(rec.replayedBytes),
    tailFrames: rec.replayedFrames,
    tailMutations: rec.replayedMutations,
    replayMBPerSecond: rec.replaySeconds > 0 ? Math.round(mb(rec.replayedBytes) / rec.replaySeconds) : 0,
    reopenHeapMB: r.memory.heapUsedMB,
    reopenRssMB: r.memory.rssMB,
    reopenBytesPerPayment: perPayment(r.memory.heapUsedMB - r.baseline.heapUsedMB),
    reopenRssBytesPerPayment: perPayment(r.memory.rssMB - r.baseline.rssMB),
    heapLimitMB: r.heapLimitMB,
    paymentsMaxDefault: r.paymentsMaxDefault,
    entriesMaxDefault: r.entriesMaxDefault,
    loadFill,
    loadReopen,
    verified: r.verified,
    failures: r.failures,
    date: new Date().toISOString(),
  };
}

type Column = [string, (r: Row) => unknown];

function table(rows: readonly Row[], columns: readonly Column[]): string {
  const lines = [`| ${columns.map(([h]) => h).join(' | ')} |`, `|${columns.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${columns.map(([, f]) => String(f(r))).join(' | ')} |`);
  return lines.join('\n');
}

const load = (l: LoadSeen | undefined, at?: number): string => (l === undefined ? (at === undefined ? '—' : `${at} (at the end)`) : `${l.mean} (${l.max})`);

const reopenColumns: Column[] = [
  ['code', (r) => r.label],
  ['payments', (r) => r.payments],
  ['reopen s (CPU s)', (r) => `${r.reopenSeconds} (${r.reopenCpuSeconds})`],
  ['checkpoint load s', (r) => r.checkpointLoadSeconds],
  ['checkpoint MB', (r) => r.checkpointMB],
  ['checkpoint B/payment', (r) => r.checkpointBytesPerPayment],
  ['tail replay s', (r) => r.replaySeconds ?? '—'],
  ['tail MB (frames)', (r) => `${r.tailMB} (${r.tailFrames})`],
  ['replay MB/s', (r) => r.replayMBPerSecond ?? '—'],
  ['heap B/payment after reopen', (r) => r.reopenBytesPerPayment],
  ['RSS MB', (r) => r.reopenRssMB],
  ['default paymentsMax (heap MB)', (r) => `${r.paymentsMaxDefault} (${r.heapLimitMB})`],
  ['load mean (max)', (r) => load(r.loadReopen, r.loadAverage)],
  ['verified', (r) => (r.verified ? 'yes' : `no: ${r.failures.join('; ')}`)],
];

const fillColumns: Column[] = [
  ['code', (r) => r.label],
  ['payments (saturating fill)', (r) => `${r.payments} (${r.filled ?? r.payments})`],
  ['create+confirm /s (fsync on)', (r) => r.paymentsPerSecond],
  ['per CPU s', (r) => r.paymentsPerCpuSecond],
  ['fsyncs /s', (r) => r.fsyncsPerSecond],
  ['journal B/payment', (r) => r.journalBytesPerPayment],
  ['checkpoints', (r) => r.checkpoints],
  ['last checkpoint s (idle s)', (r) => `${r.lastCheckpointSeconds} (${r.idleCheckpointSeconds ?? '—'})`],
  ['trigger MB', (r) => r.checkpointTriggerMB ?? '—'],
  ['checkpoint share of the loop', (r) => (r.checkpointBusyShare === undefined ? '—' : `${Math.round(r.checkpointBusyShare * 100)} %`)],
  ['journal MB during a checkpoint, max (walk)', (r) => (r.checkpointJournalMBMax === undefined ? '—' : `${r.checkpointJournalMBMax} (${r.walkJournalMBMax})`)],
  ['replay tail MB, max seen (bound)', (r) => (r.replayTailMBMax === undefined ? '—' : `${r.replayTailMBMax} (${r.replayTailBoundMB})`)],
  ['data dir MB', (r) => r.dataDirMB],
  ['live heap B/payment', (r) => r.liveBytesPerPayment],
  ['load mean (max)', (r) => load(r.loadFill, r.loadAverage)],
];

/** Merges `next` into `<resultsDir>/store-restart.{json,md}` and says where. */
function write(resultsDir: string, next: Row): Row[] {
  const path = join(resultsDir, 'store-restart.json');
  const old = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { rows: Row[] }).rows : [];
  const rows = [...old.filter((r) => r.label !== next.label || r.payments !== next.payments), next].sort(
    (a, b) => a.payments - b.payments || a.label.localeCompare(b.label),
  );
  mkdirSync(resultsDir, { recursive: true });
  const environment = { node: process.version, platform: `${process.platform}-${process.arch}` };
  writeFileSync(path, `${JSON.stringify({ environment, rows }, null, 2)}\n`);
  const md =
    '# Payment store restart bench\n\n' +
    `Node ${environment.node} on ${environment.platform}. \`npx tsx bench/store-restart.ts --payments N\` (see its header): a journaled payment store ` +
    '(authz/store/journal/) filled with N payments, each created and then confirmed (1 in 10 with a wrong answer), steps of `batch` ' +
    'items with `pipelines` steps in flight, fsync on; the last payments written as a worst-case replay tail (`--tail-mib`, default the ' +
    'stated bound) unless the fill column shows the same count twice; closed; reopened in a fresh process with the default heap and settings. ' +
    'Memory after a full GC (heap + array buffers); per-payment figures are that minus the empty process. "tail" is the journal replayed ' +
    'after the checkpoint. "per CPU s": payments per second of the fill process\'s CPU time (user + system), steadier than wall time on a ' +
    'shared machine. Load: the 1-minute load average sampled every 2 s during the phase, mean (max), on 2 cores shared with other work. ' +
    'Rows labelled `before` are the format-1 store (JSON lines) this replaced; their columns that did not exist then show —.\n\n' +
    `## Reopen\n\n${table(rows, reopenColumns)}\n\n## Fill (the running store)\n\n${table(rows, fillColumns)}\n`;
  writeFileSync(join(resultsDir, 'store-restart.md'), md);
  console.log(`written: ${join(resultsDir, 'store-restart.md')}, ${path}`);
  return rows;
}

async function main(): Promise<void> {
  const o = options();
  if (o.child === 'fill') return void console.log(JSON.stringify(await fill(o.dir!, o.payments, o.tailBytes, o.batch, o.pipelines, o.t0)));
  if (o.child === 'reopen') return void console.log(JSON.stringify(await reopen(o.dir!, o.payments, o.t0)));
  const root = mkdtempSync(join(tmpdir(), 'cs-store-restart-'));
  const dataDir = join(root, 'payments');
  const t0 = Date.now();
  try {
    const common = ['--dir', dataDir, '--payments', String(o.payments), '--t0', String(t0)];
    console.log(`filling ${o.payments} payments into ${dataDir} (fsync on), the last as a ${o.tailBytes / MiB} MiB tail`);
    const f = await withLoad(() =>
      runChild<FillReport>(
        [`--max-old-space-size=${fillHeapMiB}`],
        ['--child', 'fill', ...common, '--tail-mib', String(o.tailBytes / MiB), '--batch', String(o.batch), '--pipelines', String(o.pipelines)],
      ),
    );
    console.log(
      `filled in ${f.value.fillSeconds.toFixed(1)} s (+ a ${(f.value.tailJournalBytes / MiB).toFixed(0)} MiB tail of ${f.value.tailPayments} payments); reopening`,
    );
    if (o.keep) cpSync(dataDir, join(root, 'filled'), { recursive: true }); // as the fill left it (the reopen may checkpoint)
    const r = await withLoad(() => runChild<ReopenReport>([], ['--child', 'reopen', ...common]));
    const rows = write(o.resultsDir, row(o, f.value, r.value, f.load, r.load));
    console.log(`${table(rows, reopenColumns)}\n\n${table(rows, fillColumns)}`);
  } finally {
    if (o.keep) console.log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

await main();
