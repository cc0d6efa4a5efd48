import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { CheckpointCorruptError } from '../../ledger/embedded/checkpoint-format.js';
import { checkpointName, checkpointTmpName, dataFileNames, liveJournalName, sealedJournalName } from '../../ledger/embedded/data-dir.js';
import { EmbeddedLedger, type EmbeddedLedgerOptions } from '../../ledger/embedded/engine.js';
import { JournalCorruptError } from '../../ledger/embedded/journal.js';
import { dump, manualClock, Workload } from './fixtures/workload.js';

/**
 * The states a crash can leave a checkpoint in, made by hand from a real data directory (the
 * SIGKILL test in checkpoint-crash.test.ts hits them at random; these hit each one every time).
 */

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-ckpt-recovery-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A ledger with accounts, `batches` batches, a checkpoint, then `after` more batches in the journal. */
async function populated(dataDir: string, w: Workload, clock: ReturnType<typeof manualClock>, after: number): Promise<EmbeddedLedger> {
  const ledger = await EmbeddedLedger.open({ dataDir, clockNs: clock.now });
  await ledger.createAccounts(w.accounts);
  await ledger.createTransfers(w.funding());
  for (let b = 0; b < 4; b++) await ledger.createTransfers(w.batch(120));
  await ledger.checkpoint();
  for (let b = 0; b < after; b++) clock.advanceMs(900), await ledger.createTransfers(w.batch(120));
  return ledger;
}

test('a checkpoint cut off after sealing the journal (columns half appended, temp file half written) reopens with everything', async (t) => {
  const dataDir = tempDir(t);
  const clock = manualClock();
  const options: EmbeddedLedgerOptions = { dataDir, clockNs: clock.now };
  const w = new Workload(11);
  const first = await populated(dataDir, w, clock, 3);
  const before = await dump(first, w);
  await first.close();
  t.true(existsSync(join(dataDir, checkpointName)));
  // What the next checkpoint had done when the process died: sealed the live journal as segment
  // 2 and opened a new one, appended part of the new records to the columns, started the file.
  renameSync(join(dataDir, liveJournalName), join(dataDir, sealedJournalName(2)));
  for (const name of dataFileNames) appendFileSync(join(dataDir, name), Buffer.alloc(1000, 0x5a));
  writeFileSync(join(dataDir, checkpointTmpName), Buffer.alloc(3000, 0x17));

  const second = await EmbeddedLedger.open(options);
  t.deepEqual([second.recovered.checkpointThrough, second.recovered.segments], [1, 1]);
  t.deepEqual(await dump(second, w), before);
  t.false(existsSync(join(dataDir, checkpointTmpName)), 'the unfinished checkpoint is gone');
  await second.createTransfers(w.batch(120));
  await second.checkpoint(); // seals the live journal as segment 3, holds 1..3
  const after = await dump(second, w);
  await second.close();
  t.deepEqual(
    readdirSync(dataDir).filter((n) => n.startsWith(`${liveJournalName}.`)),
    [],
    'sealed segments are deleted',
  );

  const third = await EmbeddedLedger.open(options);
  t.teardown(() => third.close());
  t.deepEqual([third.recovered.checkpointThrough, third.recovered.segments, third.recovered.records], [3, 0, 0]);
  t.deepEqual(await dump(third, w), after);
});

test('a checkpoint renamed into place before its sealed segment was deleted: the segment is not applied twice', async (t) => {
  const dataDir = tempDir(t);
  const clock = manualClock();
  const options: EmbeddedLedgerOptions = { dataDir, clockNs: clock.now };
  const w = new Workload(12);
  const first = await populated(dataDir, w, clock, 3);
  await first.close();
  const segment = readFileSync(join(dataDir, liveJournalName));
  const second = await EmbeddedLedger.open(options);
  const before = await dump(second, w);
  await second.checkpoint(); // seals the live journal as segment 2 and deletes it once durable
  await second.close();
  writeFileSync(join(dataDir, sealedJournalName(2)), segment); // as if the process died before the delete

  const third = await EmbeddedLedger.open(options);
  t.teardown(() => third.close());
  t.deepEqual([third.recovered.checkpointThrough, third.recovered.segments, third.recovered.records], [2, 0, 0]);
  t.false(existsSync(join(dataDir, sealedJournalName(2))));
  t.deepEqual(await dump(third, w), before);
});

test('a checkpoint or column that fails its checksum, or a missing segment, refuses to open', async (t) => {
  const dataDir = tempDir(t);
  const clock = manualClock();
  const w = new Workload(13);
  await (await populated(dataDir, w, clock, 1)).close();
  const corrupt = async (name: string, change: (bytes: Buffer) => void, expected: { instanceOf: new (...args: never[]) => Error; message: RegExp }) => {
    const path = join(dataDir, name);
    const original = readFileSync(path);
    const changed = Buffer.from(original);
    change(changed);
    writeFileSync(path, changed);
    await t.throwsAsync(EmbeddedLedger.open({ dataDir }), expected, name);
    writeFileSync(path, original);
  };
  await corrupt(checkpointName, (b) => b.writeUInt8(b.readUInt8(b.length - 5) ^ 1, b.length - 5), {
    instanceOf: CheckpointCorruptError,
    message: /fails its checksum/,
  });
  await corrupt('transfers.data', (b) => b.writeUInt8(b.readUInt8(200) ^ 1, 200), {
    instanceOf: CheckpointCorruptError,
    message: /chunk 0 fails its checksum/,
  });
  const transfers = readFileSync(join(dataDir, 'transfers.data'));
  truncateSync(join(dataDir, 'transfers.data'), transfers.length - 128);
  await t.throwsAsync(EmbeddedLedger.open({ dataDir }), { instanceOf: CheckpointCorruptError, message: /shorter than the checkpoint says/ });
  writeFileSync(join(dataDir, 'transfers.data'), transfers);
  writeFileSync(join(dataDir, sealedJournalName(3)), Buffer.alloc(0));
  await t.throwsAsync(EmbeddedLedger.open({ dataDir }), { instanceOf: JournalCorruptError, message: /segment 2 is missing/ });
});
