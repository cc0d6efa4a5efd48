import { appendFileSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { JournalCorruptError } from '../../../authz/store/journal/frame.js';
import { JournalPaymentStore, type JournalStoreOptions } from '../../../authz/store/journal/journal-store.js';
import { checkpointName, segmentName } from '../../../authz/store/journal/layout.js';
import { confirmItem, createItem, digestOf, hexId } from './fixtures/journal-items.js';
import { populate } from './fixtures/journal-populate.js';
import { stateImage } from './fixtures/journal-state.js';

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-pay-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(t: { teardown: (f: () => Promise<void>) => void }, options: JournalStoreOptions): Promise<JournalPaymentStore> {
  const store = await JournalPaymentStore.open(options);
  t.teardown(() => store.close());
  return store;
}

const segment = (dir: string, n = 1): string => join(dir, segmentName(n));

test('close and reopen keeps records, versions, keys, counters, guards, leases, due times and pay numbers', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const first = await JournalPaymentStore.open({ dataDir });
  const made = await populate(first, t0);
  const before = stateImage(first.state, t0);
  await first.close();

  const store = await open(t, { dataDir });
  t.deepEqual(stateImage(store.state, t0), before);
  t.is(store.recovered.checkpoint, undefined);
  t.true(store.recovered.replayedMutations > 48, `${store.recovered.replayedMutations} mutations replayed`);
  const [replayed] = await store.create([made.approved[0]!]);
  t.is(replayed?.outcome, 'replayed');
  t.is(replayed?.outcome === 'replayed' && replayed.record.version, 2);
  t.is((await store.confirm([confirmItem(made.approved[0]!, t0 + 1)]))[0]?.outcome, 'replayed');
  t.is((await store.confirm([confirmItem(made.mismatched[0]!, t0 + 2, false)]))[0]?.outcome, 'replayed');
  t.deepEqual(
    await store.claimKey({ scope: 'enroll', key: 'done', fingerprint: digestOf('done'), value: 'x', leaseMs: 1, keyTtlMs: 86_400_000, nowMs: t0 + 8 }),
    { status: 'done', result: 'enrolled' },
  );
  t.is(
    (await store.claimKey({ scope: 'enroll', key: 'leased', fingerprint: digestOf('leased'), value: 'x', leaseMs: 1, keyTtlMs: 86_400_000, nowMs: t0 + 8 }))
      .status,
    'in_progress',
  );
  t.is(await store.takePayNumber({ numberDigest: made.payNumber, claimant: 'order-2', nowMs: t0 + 9 }), made.payerId);
  t.is(
    await store.takePayNumber({ numberDigest: digestOf(`taken ${made.payerId}`), claimant: 'order-1', nowMs: t0 + 9 }),
    made.payerId,
    'the claimant that took it still gets it',
  );
  const due = await store.claimDue({ nowMs: t0 + 400_000, limit: 1_000, leaseMs: 30_000 });
  const expectedDue = [...made.approved, ...made.mismatched, ...made.open].map((c) => c.payment.id).sort();
  t.deepEqual(due.map((r) => r.payment.id).sort(), expectedDue, 'the due index came back: every payment but the settled ones');
  t.deepEqual((await store.list({ payerId: made.payerId, limit: 1_000 })).length, 48);
});

test('a torn last write is cut off: only the unacknowledged tail is lost, and appending resumes at the cut', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const first = await JournalPaymentStore.open({ dataDir });
  const items = Array.from({ length: 4 }, (_, i) => createItem(t0, `torn-${i}`));
  const sizes = [statSync(segment(dataDir)).size];
  for (const item of items) {
    await first.create([item]);
    sizes.push(statSync(segment(dataDir)).size);
  }
  await first.close();
  truncateSync(segment(dataDir), sizes[4]! - 17); // the fourth write loses its last 17 bytes

  const store = await JournalPaymentStore.open({ dataDir });
  t.is(store.recovered.tornBytes, sizes[4]! - 17 - sizes[3]!);
  t.is(statSync(segment(dataDir)).size, sizes[3]!, 'cut at the last whole frame');
  const got = await store.get(items.map((i) => i.payment.id));
  t.deepEqual(
    got.map((r) => r?.version),
    [1, 1, 1, undefined],
  );
  t.is((await store.create([items[3]!]))[0]?.outcome, 'created', 'the lost create runs again as new');
  await store.close();
  t.is(statSync(segment(dataDir)).size, sizes[4]!, 'the new frame was appended where the torn one was cut');
  const reopened = await open(t, { dataDir });
  t.is(reopened.recovered.tornBytes, 0);
  t.is((await reopened.get([items[3]!.payment.id]))[0]?.version, 1);
});

test('a zero-filled tail, or a broken header followed only by zeros, is a torn write and is cut off', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const first = await JournalPaymentStore.open({ dataDir });
  const item = createItem(t0, 'zeros');
  await first.create([item]);
  await first.close();
  const good = statSync(segment(dataDir)).size;
  appendFileSync(segment(dataDir), Buffer.alloc(8192));
  const second = await JournalPaymentStore.open({ dataDir });
  t.is(second.recovered.tornBytes, 8192);
  await second.close();
  // Half a header made it to disk (a page boundary inside it), the rest of the write did not.
  appendFileSync(segment(dataDir), Buffer.concat([Buffer.from([0xff, 0x63, 0x73, 0x70, 0x10, 0x02]), Buffer.alloc(4090)]));
  const store = await open(t, { dataDir });
  t.is(store.recovered.tornBytes, 4096);
  t.is(statSync(segment(dataDir)).size, good);
  t.is((await store.get([item.payment.id]))[0]?.version, 1);
});

test('damage followed by an intact frame is corruption: open refuses, names the file and keeps it whole', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const first = await JournalPaymentStore.open({ dataDir });
  const sizes = [0];
  for (let i = 0; i < 3; i++) {
    await first.create([createItem(t0, `damage-${i}`)]);
    sizes.push(statSync(segment(dataDir)).size);
  }
  await first.close();
  const original = readFileSync(segment(dataDir));
  const flipped = Buffer.from(original);
  flipped[sizes[1]! + 40] = flipped[sizes[1]! + 40]! ^ 0x20; // inside the second frame's payload
  writeFileSync(segment(dataDir), flipped);
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), {
    instanceOf: JournalCorruptError,
    message: /journal-0000000000000001\.log: a payload failing its checksum at byte \d+, and an intact frame follows/,
  });
  const header = Buffer.from(original);
  header.fill(0x41, sizes[1]!, sizes[1]! + 8); // a garbage header in the middle
  writeFileSync(segment(dataDir), header);
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: JournalCorruptError, message: /a broken header/ });
  t.deepEqual(readFileSync(segment(dataDir)), header, 'nothing was cut');
  writeFileSync(segment(dataDir), original);
  const store = await open(t, { dataDir });
  t.is(store.state.records.size, 3);
});

test('a checkpoint written while writes continue, plus the journal tail, rebuilds exactly the state a kill -9 left', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const store = await open(t, { dataDir, checkpointJournalBytesMin: 256 * 1024, checkpointJournalBytesMax: 256 * 1024 });
  const items = Array.from({ length: 1_500 }, (_, i) => createItem(t0, `fuzzy-${i}-${hexId()}`));
  for (let i = 0; i < items.length; i += 500) await store.create(items.slice(i, i + 500));
  let during = 0;
  let next = 0;
  // Confirm one payment per pass while checkpoints run: records change behind and ahead of the
  // checkpoint's walk through the maps.
  while ((store.checkpoints.length < 2 || store.checkpointInProgress) && next < items.length) {
    if (store.checkpointInProgress) during += 1;
    await store.confirm([confirmItem(items[next++]!, t0 + 1, next % 3 !== 0)]);
  }
  await store.confirm(items.slice(next, next + 20).map((c) => confirmItem(c, t0 + 2)));
  t.true(store.checkpoints.length >= 2 && during > 0, `${store.checkpoints.length} checkpoints, ${during} passes while one was written`);
  const image = stateImage(store.state, t0);
  const copy = crashCopy(t, dataDir);
  const reopened = await open(t, { dataDir: copy });
  t.is(reopened.recovered.checkpoint, store.checkpoints.at(-1)!.segment);
  t.true(reopened.recovered.replayedFrames > 0, 'the tail after the checkpoint was replayed');
  t.deepEqual(stateImage(reopened.state, t0), image);
});

/** The files of `dataDir` as a kill -9 leaves them (the lock's pid would be dead): a copy without LOCK. */
function crashCopy(t: { teardown: (f: () => void) => void }, dataDir: string): string {
  const copy = tempDir(t);
  for (const name of readdirSync(dataDir)) if (name !== 'LOCK') copyFileSync(join(dataDir, name), join(copy, name));
  return copy;
}

test('a crash while a checkpoint is written (rotated segment, half-written temporary file) still opens with everything', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const first = await JournalPaymentStore.open({ dataDir });
  await populate(first, t0);
  const image = stateImage(first.state, t0);
  await first.close();
  writeFileSync(join(dataDir, segmentName(2)), ''); // rotation happened
  writeFileSync(join(dataDir, `${checkpointName(2)}.tmp`), readFileSync(segment(dataDir)).subarray(0, 1000)); // half a checkpoint
  const store = await open(t, { dataDir });
  t.deepEqual(stateImage(store.state, t0), image);
  t.deepEqual(store.recovered.segments, [1, 2]);
  t.deepEqual(store.recovered.removed, [`${checkpointName(2)}.tmp`]);
  t.deepEqual(readdirSync(dataDir).sort(), ['FORMAT', 'LOCK', segmentName(1), segmentName(2)]);
});

test('a crash after a checkpoint was renamed in, before the segments it replaces were deleted, opens from the checkpoint', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const first = await JournalPaymentStore.open({ dataDir });
  await populate(first, t0);
  const image = stateImage(first.state, t0);
  await first.close();
  const old = readFileSync(segment(dataDir));
  const second = await JournalPaymentStore.open({ dataDir, checkpointJournalBytesMin: 1, checkpointJournalBytesMax: 1 }); // checkpoints at open
  await second.checkpointSettled();
  t.deepEqual(
    second.checkpoints.map((c) => c.segment),
    [2],
  );
  await second.close();
  t.deepEqual(readdirSync(dataDir).sort(), ['FORMAT', checkpointName(2), segmentName(2)]);
  writeFileSync(segment(dataDir), old); // as if the deletion never happened
  const store = await open(t, { dataDir });
  t.is(store.recovered.checkpoint, 2);
  t.deepEqual(store.recovered.removed, [segmentName(1)]);
  t.deepEqual(stateImage(store.state, t0), image);
});

test('a missing segment or a damaged checkpoint refuses to open', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const first = await JournalPaymentStore.open({ dataDir });
  await populate(first, t0);
  await first.close();
  writeFileSync(join(dataDir, segmentName(3)), '');
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: JournalCorruptError, message: /journal-0000000000000002\.log is missing/ });
  rmSync(join(dataDir, segmentName(3)));
  const second = await JournalPaymentStore.open({ dataDir, checkpointJournalBytesMin: 1, checkpointJournalBytesMax: 1 });
  await second.close();
  const checkpoint = join(dataDir, checkpointName(2));
  const bytes = readFileSync(checkpoint);
  writeFileSync(checkpoint, bytes.subarray(0, bytes.length - 30));
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: JournalCorruptError, message: /checkpoint-0000000000000002\.snap/ });
  rmSync(join(dataDir, segmentName(2)));
  writeFileSync(checkpoint, bytes);
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: JournalCorruptError, message: /journal-0000000000000002\.log is missing/ });
});
