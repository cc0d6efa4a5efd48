/**
 * The two halves of `bench/ledger-restart.ts`, each run in a fresh process so that its memory
 * numbers are its own:
 *
 *   node --import=tsx --expose-gc bench/ledger-restart-child.ts fill <dataDir> <transfers> <accounts> <batch>
 *   node --import=tsx --expose-gc bench/ledger-restart-child.ts reopen <dataDir>
 *
 * `fill` writes `<dataDir>/../fill.json` (what reopen must find); both print one JSON line.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EmbeddedLedger } from '../ledger/embedded/engine.js';
import { newId } from '../ledger/ids.js';
import { AccountFlags, account, type Transfer, TransferFlags, transfer } from '../ledger/model.js';
import { mulberry32 as random } from './prng.js';

const ledgerId = 1;
const code = 1;
/** Amounts are 1..amountSpread. */
const amountSpread = 100;
/** One transfer in `pendingEvery` is pending (1 h timeout) and posted in the next batch. */
const pendingEvery = 8;
const pendingTimeoutSeconds = 3600;
/** Ids of the first and last transfers kept to look up after reopening. */
const sampleSize = 100;
const seed = 0x5eed;

export interface MemoryNumbers {
  heapUsedMB: number;
  arrayBuffersMB: number;
  rssMB: number;
}

export interface FillReport {
  transfers: number;
  fillSeconds: number;
  memory: MemoryNumbers;
  /** Journal, checkpoint and data files after close. */
  dataDirMB: number;
  /** Checkpoints written during the fill: count, longest pause of writes, last one's duration. */
  checkpoints: Record<string, number>;
}

export interface ReopenReport {
  openSeconds: number;
  memory: MemoryNumbers;
  /** Memory before opening (the process with nothing loaded), for per-transfer deltas. */
  baseline: MemoryNumbers;
  recovered: Record<string, number>;
  verified: boolean;
  failures: string[];
}

interface Plan {
  accounts: string[];
  sample: string[];
  debitsPosted: string;
}

export function memoryNow(): MemoryNumbers {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
  const m = process.memoryUsage();
  const mb = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
  return { heapUsedMB: mb(m.heapUsed), arrayBuffersMB: mb(m.arrayBuffers), rssMB: mb(m.rss) };
}

function postOf(p: Transfer): Transfer {
  return transfer({ id: newId(), pending_id: p.id, amount: p.amount, flags: TransferFlags.post_pending_transfer });
}

/** One batch: the posts of the previous batch's pendings, then new transfers (1 in 8 pending). */
function nextBatch(ids: bigint[], next: () => number, size: number, previous: Transfer[]): { batch: Transfer[]; pendings: Transfer[] } {
  const batch = previous.map(postOf);
  const pendings: Transfer[] = [];
  while (batch.length < size) {
    const debit = Math.floor(next() * ids.length);
    const credit = (debit + 1 + Math.floor(next() * (ids.length - 1))) % ids.length;
    const pending = batch.length % pendingEvery === 0;
    const t = transfer({
      id: newId(),
      debit_account_id: ids[debit]!,
      credit_account_id: ids[credit]!,
      amount: BigInt(1 + Math.floor(next() * amountSpread)),
      ledger: ledgerId,
      code,
      flags: pending ? TransferFlags.pending : TransferFlags.none,
      timeout: pending ? pendingTimeoutSeconds : 0,
    });
    batch.push(t);
    if (pending) pendings.push(t);
  }
  return { batch, pendings };
}

async function fill(dataDir: string, transfers: number, accounts: number, batchSize: number): Promise<FillReport> {
  const ledger = await EmbeddedLedger.open({ dataDir, fsync: false });
  const ids = Array.from({ length: accounts }, () => newId());
  const created = await ledger.createAccounts(ids.map((id) => account({ id, ledger: ledgerId, code, flags: AccountFlags.history })));
  if (created.some((r) => r !== 'ok')) throw new Error('accounts not created');
  const next = random(seed);
  const sample: bigint[] = [];
  let debitsPosted = 0n;
  let previous: Transfer[] = [];
  const start = performance.now();
  let sent = 0;
  while (sent < transfers) {
    const last = transfers - sent <= batchSize;
    const { batch, pendings } = nextBatch(ids, next, Math.min(batchSize, transfers - sent), last ? [] : previous);
    const all = last ? [...batch, ...pendings.map(postOf), ...previous.map(postOf)] : batch;
    const results = await ledger.createTransfers(all);
    const failed = results.findIndex((r) => r !== 'ok');
    if (failed >= 0) throw new Error(`transfer ${sent + failed}: ${results[failed]}`);
    for (const t of all) if ((t.flags & TransferFlags.pending) === 0) debitsPosted += t.amount;
    if (sample.length < sampleSize) sample.push(...all.slice(0, sampleSize).map((t) => t.id));
    if (last) sample.push(...all.slice(-sampleSize).map((t) => t.id));
    previous = pendings;
    sent += all.length;
  }
  const tail = await leaveTail(ledger, ids, next, batchSize);
  sent += tail.sent;
  debitsPosted += tail.amount;
  sample.push(...tail.lastIds);
  const fillSeconds = (performance.now() - start) / 1000;
  const plan: Plan = { accounts: ids.map(String), sample: sample.map(String), debitsPosted: String(debitsPosted) };
  writeFileSync(join(dirname(dataDir), 'fill.json'), JSON.stringify(plan));
  const memory = memoryNow();
  const checkpoints = { ...(ledger.checkpoints as unknown as Record<string, number> | undefined) };
  await ledger.close();
  const bytes = readdirSync(dataDir).reduce((sum, name) => sum + statSync(join(dataDir, name)).size, 0);
  return { transfers: sent, fillSeconds, memory, dataDirMB: Math.round(bytes / 2 ** 20), checkpoints };
}

/**
 * Single-phase batches until the live journal is as close to the checkpoint bound as a batch
 * allows, so that reopening replays about the longest tail a clean shutdown can leave.
 */
async function leaveTail(
  ledger: EmbeddedLedger,
  ids: bigint[],
  next: () => number,
  batchSize: number,
): Promise<{ sent: number; amount: bigint; lastIds: bigint[] }> {
  const batchBytes = batchSize * 128 + 28;
  const tail = { sent: 0, amount: 0n, lastIds: [] as bigint[] };
  if (ledger.checkpoints === undefined) return tail; // an engine without checkpoints (the `before` code) replays everything anyway
  const bound = ledger.usage.bounds.checkpointEveryJournalBytes;
  await ledger.checkpoint(); // settles any checkpoint the fill left due, so the tail below is all that is left
  while (ledger.checkpoints.liveJournalBytes + batchBytes < bound) {
    const { batch } = nextBatch(ids, next, batchSize, []);
    const single = batch.map((t) => ({ ...t, flags: TransferFlags.none, timeout: 0 }));
    if ((await ledger.createTransfers(single)).some((r) => r !== 'ok')) throw new Error('tail batch failed');
    tail.amount += single.reduce((sum, t) => sum + t.amount, 0n);
    tail.sent += single.length;
    tail.lastIds = single.slice(-sampleSize).map((t) => t.id);
  }
  return tail;
}

async function reopen(dataDir: string): Promise<ReopenReport> {
  const plan = JSON.parse(readFileSync(join(dirname(dataDir), 'fill.json'), 'utf8')) as Plan;
  const sample = plan.sample.map(BigInt);
  const baseline = memoryNow();
  const start = performance.now();
  const ledger = await EmbeddedLedger.open({ dataDir, fsync: false });
  const openSeconds = (performance.now() - start) / 1000;
  const memory = memoryNow();
  const failures: string[] = [];
  const found = await ledger.lookupTransfers(sample);
  if (found.length !== sample.length) failures.push(`found ${found.length} of ${sample.length} sampled transfers`);
  const sums = (await ledger.totals()).get(ledgerId);
  if (sums === undefined || sums.debitsPosted !== BigInt(plan.debitsPosted) || sums.creditsPosted !== sums.debitsPosted) {
    failures.push(`posted sums ${sums?.debitsPosted}/${sums?.creditsPosted}, expected ${plan.debitsPosted}`);
  }
  if (sums !== undefined && (sums.debitsPending !== 0n || sums.creditsPending !== 0n)) failures.push('pending left over');
  const recovered = { ...(ledger.recovered as unknown as Record<string, number>) };
  await ledger.close();
  return { openSeconds, memory, baseline, recovered, verified: failures.length === 0, failures };
}

const [mode, dataDir, ...rest] = process.argv.slice(2);
if (mode === 'fill') {
  const [transfers, accounts, batch] = rest.map(Number);
  console.log(JSON.stringify(await fill(dataDir!, transfers!, accounts!, batch!)));
} else if (mode === 'reopen') {
  console.log(JSON.stringify(await reopen(dataDir!)));
} else {
  throw new Error(`unknown mode ${mode}`);
}
