import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { EmbeddedLedger } from '../../ledger/embedded/engine.js';
import { JournalCorruptError, JournalLockedError, journalFileName } from '../../ledger/embedded/journal.js';
import { account, transfer } from '../../ledger/model.js';
import { batchAmount, crashAccounts, crashOperator, crashTransferId } from './fixtures/crash-plan.js';
import { runAndKill } from './fixtures/kill-writer.js';

const writer = fileURLToPath(new URL('./fixtures/journal-writer.ts', import.meta.url));
/** Events per batch: a full TigerBeetle batch, so each journal record is ~1 MiB and a kill often lands mid-write. */
const batchSizeEvents = 8189;
/** Batches the child would write if never killed. */
const batchesMax = 60;
/** Kill rounds on one data directory: each round recovers the previous round's journal first. */
const roundsMax = 3;
/** Upper bound on one round, so a stuck child cannot hang the suite. */
const roundTimeoutMs = 60_000;

test('SIGKILL during journaled batches: every acknowledged batch survives, no batch is half-applied', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-crash-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const rounds: { runTag: bigint; acked: number; torn: number }[] = [];
  for (let r = 0; r < roundsMax; r++) {
    const runTag = BigInt(r + 1);
    const killAfter = 2 + Math.floor(Math.random() * 6);
    const args = [dataDir, String(runTag), String(batchesMax), String(batchSizeEvents)];
    const round = await runAndKill(writer, args, killAfter, { timeoutMs: roundTimeoutMs, killWithinMs: 8 });
    t.true(round.killedAfterReady, 'the writer was killed while writing batches');
    rounds.push({ runTag, acked: round.acked, torn: round.recoveredTornBytes });
  }

  const ledger = await EmbeddedLedger.open({ dataDir });
  t.teardown(() => ledger.close());
  const torn = [...rounds.slice(1).map((r) => r.torn), ledger.recovered.truncatedBytes];
  t.log(`acked per round: ${rounds.map((r) => r.acked).join(', ')}; torn bytes cut at each reopen: ${torn.join(', ')}`);
  let expectedTotal = 0n;
  for (const { runTag, acked } of rounds) {
    for (let b = 0; b < batchesMax; b++) {
      const ids = Array.from({ length: batchSizeEvents }, (_, i) => crashTransferId(runTag, b, i));
      const found = (await ledger.lookupTransfers(ids)).length;
      t.true(found === 0 || found === batchSizeEvents, `run ${runTag} batch ${b}: ${found} of ${batchSizeEvents} transfers`);
      if (b < acked) t.is(found, batchSizeEvents, `run ${runTag} batch ${b} was acknowledged`);
      if (found === batchSizeEvents) expectedTotal += batchAmount(batchSizeEvents);
    }
  }
  const [operator] = await ledger.lookupAccounts([crashOperator]);
  const credited = (await ledger.lookupAccounts(crashAccounts)).reduce((sum, a) => sum + a.credits_posted, 0n);
  t.is(operator!.debits_posted, expectedTotal, 'operator debits equal the surviving batches');
  t.is(credited, expectedTotal, 'credits equal debits');
});

async function journalWithBatches(dataDir: string, batches: number): Promise<number[]> {
  const ledger = await EmbeddedLedger.open({ dataDir });
  await ledger.createAccounts([account({ id: 1n, ledger: 1, code: 1 }), account({ id: 2n, ledger: 1, code: 1 })]);
  const sizes = [statSync(join(dataDir, journalFileName)).size];
  for (let b = 0; b < batches; b++) {
    const events = [transfer({ id: 100n + BigInt(b), debit_account_id: 1n, credit_account_id: 2n, amount: 10n, ledger: 1, code: 1 })];
    assertAllOk(await ledger.createTransfers(events));
    sizes.push(statSync(join(dataDir, journalFileName)).size);
  }
  await ledger.close();
  return sizes;
}

function assertAllOk(results: string[]): void {
  if (results.some((r) => r !== 'ok')) throw new Error(`unexpected results ${results.join(',')}`);
}

test('a torn last record is cut off on open; earlier records are kept', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-torn-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const sizes = await journalWithBatches(dataDir, 3);
  const path = join(dataDir, journalFileName);
  truncateSync(path, sizes[3]! - 40); // the third transfer's record loses its last 40 bytes
  const ledger = await EmbeddedLedger.open({ dataDir });
  t.is(ledger.recovered.truncatedBytes, sizes[3]! - 40 - sizes[2]!);
  t.deepEqual(
    (await ledger.lookupTransfers([100n, 101n, 102n])).map((x) => x.id),
    [100n, 101n],
  );
  const [a1] = await ledger.lookupAccounts([1n]);
  t.is(a1!.debits_posted, 20n);
  t.deepEqual(await ledger.createTransfers([transfer({ id: 102n, debit_account_id: 1n, credit_account_id: 2n, amount: 10n, ledger: 1, code: 1 })]), ['ok']);
  await ledger.close();
  t.is(statSync(path).size, sizes[3]!, 'the new record was appended where the torn one was cut');
});

test('a record that fails its checksum with data after it is corruption: open refuses', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-corrupt-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const sizes = await journalWithBatches(dataDir, 3);
  const path = join(dataDir, journalFileName);
  const bytes = readFileSync(path);
  const at = sizes[1]! + 30; // a byte inside the first transfer record
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(path, bytes);
  await t.throwsAsync(EmbeddedLedger.open({ dataDir }), { instanceOf: JournalCorruptError, message: /fails its checksum and data follows it/ });
});

test('garbage appended after the last record (torn header) is cut off', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-tail-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const sizes = await journalWithBatches(dataDir, 1);
  appendFileSync(join(dataDir, journalFileName), Buffer.from([1, 2, 3, 4, 5]));
  const ledger = await EmbeddedLedger.open({ dataDir });
  t.teardown(() => ledger.close());
  t.is(ledger.recovered.truncatedBytes, 5);
  t.is(statSync(join(dataDir, journalFileName)).size, sizes[1]!);
  t.is((await ledger.lookupTransfers([100n])).length, 1);
});

test('a zero-filled tail (blocks allocated, never written) is cut off; a non-zero bad header is corruption', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-zero-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const sizes = await journalWithBatches(dataDir, 2);
  const path = join(dataDir, journalFileName);
  appendFileSync(path, Buffer.alloc(4096));
  const ledger = await EmbeddedLedger.open({ dataDir });
  t.is(ledger.recovered.truncatedBytes, 4096);
  t.is((await ledger.lookupTransfers([100n, 101n])).length, 2);
  await ledger.close();
  // A header whose magic is garbage and whose claimed length runs past the end: not zeros, so
  // not a torn append — opening refuses rather than cut acknowledged data.
  const bytes = readFileSync(path);
  bytes.fill(0x41, sizes[1]!, sizes[1]! + 8);
  writeFileSync(path, bytes);
  await t.throwsAsync(EmbeddedLedger.open({ dataDir }), { instanceOf: JournalCorruptError, message: /bad header/ });
});

test('one process at a time per data directory; a lock left by a dead process is taken over', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-lock-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const first = await EmbeddedLedger.open({ dataDir });
  await t.throwsAsync(EmbeddedLedger.open({ dataDir }), { instanceOf: JournalLockedError, message: new RegExp(`in use by process ${process.pid}`) });
  await first.close();
  writeFileSync(join(dataDir, 'LOCK'), '2147483646\n'); // no such process
  const second = await EmbeddedLedger.open({ dataDir });
  t.is(readFileSync(join(dataDir, 'LOCK'), 'utf8').trim(), String(process.pid));
  await second.close();
});
