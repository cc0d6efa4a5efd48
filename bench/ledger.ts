/**
 * Transfers per second through the Ledger port, in batches of up to 8189 events.
 *
 *   npm run bench:ledger -- [--transfers N] [--batch B] [--accounts A] [--publish]
 *   TB_ADDRESS=3000 [TB_CLUSTER_ID=0] npm run bench:ledger   # also benchmarks a TigerBeetle cluster
 *
 * Results go to bench/results/latest/ledger-<engine>.{json,md} (git-ignored); with --publish to
 * bench/results/, the published record.
 *
 * See bench/README.md for what is measured and how it is verified.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedLedger } from '../ledger/embedded/engine.js';
import { newId } from '../ledger/ids.js';
import { AccountFlags, account, eventBatchMax, type Transfer, TransferFlags, transfer } from '../ledger/model.js';
import type { Ledger } from '../ledger/port.js';
import { TigerBeetleLedger } from '../ledger/tigerbeetle.js';
import { mulberry32 as random } from './prng.js';
import { publishOption, resultsDirFor } from './results-dir.js';

const ledgerId = 1;
const code = 1;
/** Credit given to each limited account up front: far above what any run can debit from it. */
const fundingAmount = 1n << 64n;
/** Transfer amounts are 1..amountSpread. */
const amountSpread = 100;
const seed = 0x5eed;
/** Deadline for one request to TigerBeetle during the bench (a full batch on a loaded cluster). */
const tbRequestTimeoutMs = 30_000;

interface Options {
  transfers: number;
  batch: number;
  accounts: number;
}

interface Row {
  engine: string;
  mode: 'single-phase' | 'two-phase';
  transfers: number;
  batches: number;
  seconds: number;
  transfersPerSecond: number;
  ok: boolean;
  balanced: boolean;
  /** Non-ok results by name, or the check that failed: empty when the row is fully verified. */
  failures: string[];
}

interface Engine {
  name: string;
  open(): Promise<{ ledger: Ledger; cleanup(): Promise<void> }>;
}

interface Accounts {
  operator: bigint;
  /** Every account that transfers move money between (the operator is not among them). */
  ids: bigint[];
}

interface Totals {
  debitsPosted: bigint;
  creditsPosted: bigint;
  debitsPending: bigint;
  creditsPending: bigint;
}

function parseOptions(argv: string[]): { options: Options; resultsDir: string } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      transfers: { type: 'string', default: '500000' },
      batch: { type: 'string', default: String(eventBatchMax) },
      accounts: { type: 'string', default: '10000' },
      ...publishOption,
    },
  });
  const integer = (name: string, text: string, min: number, max: number): number => {
    const value = Number(text.replaceAll('_', ''));
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(`--${name} must be an integer in ${min}..${max}, got ${text}`);
    }
    return value;
  };
  const options = {
    transfers: integer('transfers', values.transfers, 2, 100_000_000),
    batch: integer('batch', values.batch, 2, eventBatchMax),
    accounts: integer('accounts', values.accounts, 2, 1_000_000),
  };
  return { options, resultsDir: resultsDirFor(values.publish) };
}

/** A random single-phase (or, with `flags`, pending) transfer between two different accounts. */
function randomTransfer(accounts: Accounts, next: () => number, flags: number): Transfer {
  const count = accounts.ids.length;
  const debit = Math.floor(next() * count);
  const credit = (debit + 1 + Math.floor(next() * (count - 1))) % count;
  return transfer({
    id: newId(),
    debit_account_id: accounts.ids[debit]!,
    credit_account_id: accounts.ids[credit]!,
    amount: BigInt(1 + Math.floor(next() * amountSpread)),
    ledger: ledgerId,
    code,
    flags,
  });
}

/** The post of a pending transfer, every field given (none left for the ledger to fill in). */
function postOf(pending: Transfer): Transfer {
  return transfer({
    id: newId(),
    pending_id: pending.id,
    debit_account_id: pending.debit_account_id,
    credit_account_id: pending.credit_account_id,
    amount: pending.amount,
    ledger: pending.ledger,
    code: pending.code,
    flags: TransferFlags.post_pending_transfer,
  });
}

/**
 * Creates an operator account without limits and `count` accounts, half of them with
 * `debits_must_not_exceed_credits`, funded from the operator by one single-phase transfer each.
 */
async function setupAccounts(ledger: Ledger, count: number): Promise<Accounts> {
  const operator = account({ id: newId(), ledger: ledgerId, code });
  const accounts = Array.from({ length: count }, (_, i) =>
    account({
      id: newId(),
      ledger: ledgerId,
      code,
      flags: i % 2 === 0 ? AccountFlags.debits_must_not_exceed_credits : AccountFlags.none,
    }),
  );
  assertAllOk('create accounts', await ledger.createAccounts([operator, ...accounts]));
  const funding = accounts
    .filter((a) => a.flags === AccountFlags.debits_must_not_exceed_credits)
    .map((a) => transfer({ id: newId(), debit_account_id: operator.id, credit_account_id: a.id, amount: fundingAmount, ledger: ledgerId, code }));
  assertAllOk('fund accounts', await ledger.createTransfers(funding));
  return { operator: operator.id, ids: accounts.map((a) => a.id) };
}

function assertAllOk(what: string, results: readonly string[]): void {
  const failed = countFailures(results);
  if (failed.length > 0) throw new Error(`setup failed: ${what}: ${failed.join(', ')}`);
}

/** Non-ok results as "name×count". */
function countFailures(results: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const result of results) if (result !== 'ok') counts.set(result, (counts.get(result) ?? 0) + 1);
  return [...counts].map(([name, n]) => `${name}×${n}`);
}

async function totals(ledger: Ledger, accounts: Accounts): Promise<Totals> {
  const ids = [accounts.operator, ...accounts.ids];
  const found = await ledger.lookupAccounts(ids);
  if (found.length !== ids.length) throw new Error(`lookup found ${found.length} of ${ids.length} accounts`);
  const sum: Totals = { debitsPosted: 0n, creditsPosted: 0n, debitsPending: 0n, creditsPending: 0n };
  for (const a of found) {
    sum.debitsPosted += a.debits_posted;
    sum.creditsPosted += a.credits_posted;
    sum.debitsPending += a.debits_pending;
    sum.creditsPending += a.credits_pending;
  }
  return sum;
}

/** Sends batches one after another; `seconds` counts only the time inside `createTransfers`. */
class BatchSender {
  batches = 0;
  seconds = 0;
  readonly transferIds: bigint[] = [];
  readonly results: string[] = [];

  async send(ledger: Ledger, batch: Transfer[]): Promise<void> {
    const start = performance.now();
    const results = await ledger.createTransfers(batch);
    this.seconds += (performance.now() - start) / 1000;
    this.batches += 1;
    for (const t of batch) this.transferIds.push(t.id);
    for (const r of results) this.results.push(r);
    if (results.length !== batch.length) throw new Error(`${results.length} results for ${batch.length} transfers`);
  }
}

async function runSinglePhase(ledger: Ledger, accounts: Accounts, options: Options): Promise<Omit<Row, 'engine'>> {
  const next = random(seed);
  const before = await totals(ledger, accounts);
  const timer = new BatchSender();
  let amount = 0n;
  for (let sent = 0; sent < options.transfers; ) {
    const size = Math.min(options.batch, options.transfers - sent);
    const batch = Array.from({ length: size }, () => randomTransfer(accounts, next, TransferFlags.none));
    for (const t of batch) amount += t.amount;
    await timer.send(ledger, batch);
    sent += size;
  }
  return verify(ledger, accounts, 'single-phase', timer, before, amount, options.transfers);
}

/**
 * Pending transfers, each posted in the next batch: every batch but the first and the last
 * carries the posts of the previous batch's pendings, then new pendings (about half each).
 * `transfers` counts both pendings and posts.
 */
async function runTwoPhase(ledger: Ledger, accounts: Accounts, options: Options): Promise<Omit<Row, 'engine'>> {
  const next = random(seed + 1);
  const before = await totals(ledger, accounts);
  const timer = new BatchSender();
  const pendingsTotal = Math.floor(options.transfers / 2);
  const pendingsPerBatch = Math.floor(options.batch / 2);
  let amount = 0n;
  let previous: Transfer[] = [];
  for (let made = 0; made < pendingsTotal || previous.length > 0; ) {
    const size = Math.min(pendingsPerBatch, pendingsTotal - made);
    const pendings = Array.from({ length: size }, () => randomTransfer(accounts, next, TransferFlags.pending));
    for (const t of pendings) amount += t.amount;
    await timer.send(ledger, [...previous.map(postOf), ...pendings]);
    previous = pendings;
    made += size;
  }
  return verify(ledger, accounts, 'two-phase', timer, before, amount, 2 * pendingsTotal);
}

/**
 * Every result ok and every transfer found again; debits equal credits over all accounts, nothing
 * left pending, and posted balances grew by exactly the amounts sent (each transfer applied once).
 */
async function verify(
  ledger: Ledger,
  accounts: Accounts,
  mode: Row['mode'],
  timer: BatchSender,
  before: Totals,
  amount: bigint,
  expectedTransfers: number,
): Promise<Omit<Row, 'engine'>> {
  const transfers = timer.transferIds.length;
  const failures = countFailures(timer.results);
  if (transfers !== expectedTransfers) failures.push(`sent ${transfers} transfers, expected ${expectedTransfers}`);
  const found = (await ledger.lookupTransfers(timer.transferIds)).length;
  if (found !== transfers) failures.push(`found ${found} of ${transfers} transfers`);
  const ok = failures.length === 0;
  const after = await totals(ledger, accounts);
  const balanced =
    after.debitsPosted === after.creditsPosted &&
    after.debitsPending === after.creditsPending &&
    after.debitsPending === before.debitsPending &&
    after.debitsPosted - before.debitsPosted === amount;
  if (!balanced) failures.push(`unbalanced: before ${format(before)}, after ${format(after)}, sent ${amount}`);
  return {
    mode,
    transfers,
    batches: timer.batches,
    seconds: timer.seconds,
    transfersPerSecond: Math.round(transfers / timer.seconds),
    ok,
    balanced,
    failures,
  };
}

function format(t: Totals): string {
  return `debits ${t.debitsPosted}+${t.debitsPending} pending, credits ${t.creditsPosted}+${t.creditsPending} pending`;
}

async function benchEngine(engine: Engine, options: Options): Promise<Row[]> {
  const { ledger, cleanup } = await engine.open();
  try {
    const accounts = await setupAccounts(ledger, options.accounts);
    const single = await runSinglePhase(ledger, accounts, options);
    const twoPhase = await runTwoPhase(ledger, accounts, options);
    return [single, twoPhase].map((row) => ({ engine: engine.name, ...row }));
  } finally {
    await ledger.close();
    await cleanup();
  }
}

function engines(env: NodeJS.ProcessEnv): { run: Engine[]; skipped: string[] } {
  const run: Engine[] = [
    {
      name: 'embedded-memory',
      open: async () => ({ ledger: await EmbeddedLedger.open({}), cleanup: async () => {} }),
    },
    {
      name: 'embedded-journal',
      open: async () => {
        const dataDir = await mkdtemp(join(tmpdir(), 'countersign-bench-'));
        const ledger = await EmbeddedLedger.open({ dataDir, fsync: true });
        return { ledger, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
      },
    },
  ];
  const address = env.TB_ADDRESS;
  if (address === undefined || address === '') return { run, skipped: ['tigerbeetle: skipped (TB_ADDRESS not set)'] };
  const clusterId = BigInt(env.TB_CLUSTER_ID ?? '0');
  const addresses = address.split(',').map((a) => a.trim());
  run.push({
    name: 'tigerbeetle',
    open: async () => ({
      ledger: await TigerBeetleLedger.connect({ clusterId, addresses, requestTimeoutMs: tbRequestTimeoutMs }),
      cleanup: async () => {},
    }),
  });
  return { run, skipped: [] };
}

function table(rows: readonly Row[]): string {
  const lines = ['| engine | mode | transfers | batches | seconds | transfers/s | ok | balanced |', '|---|---|--:|--:|--:|--:|---|---|'];
  for (const r of rows) {
    lines.push(
      `| ${r.engine} | ${r.mode} | ${r.transfers} | ${r.batches} | ${r.seconds.toFixed(3)} | ` +
        `${r.transfersPerSecond} | ${r.ok ? 'yes' : 'no'} | ${r.balanced ? 'yes' : 'no'} |`,
    );
  }
  return lines.join('\n');
}

/** Writes `<resultsDir>/ledger-<engine>.{json,md}` and says where. */
async function writeResults(resultsDir: string, engine: string, rows: readonly Row[], options: Options): Promise<void> {
  await mkdir(resultsDir, { recursive: true });
  const [json, markdown] = [join(resultsDir, `ledger-${engine}.json`), join(resultsDir, `ledger-${engine}.md`)];
  const environment = { node: process.version, platform: `${process.platform}-${process.arch}` };
  const report = { engine, date: new Date().toISOString(), options, environment, rows };
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  const md =
    `# Ledger bench: ${engine}\n\n${report.date}, Node ${environment.node} on ${environment.platform}; ` +
    `${options.accounts} accounts, batches of ${options.batch}.\n\n${table(rows)}\n`;
  await writeFile(markdown, md);
  console.log(`written: ${markdown}, ${json}`);
}

async function main(): Promise<void> {
  const { options, resultsDir } = parseOptions(process.argv.slice(2));
  const { run, skipped } = engines(process.env);
  const rows: Row[] = [];
  const failed: string[] = [];
  for (const engine of run) {
    try {
      const engineRows = await benchEngine(engine, options);
      await writeResults(resultsDir, engine.name, engineRows, options);
      rows.push(...engineRows);
    } catch (error) {
      failed.push(`${engine.name}: failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    }
  }
  console.log(table(rows));
  for (const line of skipped) console.log(line);
  for (const line of failed) console.error(line);
  for (const r of rows) for (const f of r.failures) console.error(`${r.engine} ${r.mode}: ${f}`);
  if (failed.length > 0 || rows.some((r) => !r.ok || !r.balanced)) process.exitCode = 1;
}

await main();
