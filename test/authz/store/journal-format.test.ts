import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { checkpointLagPerTrigger } from '../../../authz/store/journal/bounds.js';
import { formatFileName, StoreFormatError } from '../../../authz/store/journal/format.js';
import { encodeFrame, frameHeaderBytes, JournalCorruptError } from '../../../authz/store/journal/frame.js';
import { JournalPaymentStore, type JournalStoreOptions } from '../../../authz/store/journal/journal-store.js';
import { checkpointName, segmentName } from '../../../authz/store/journal/layout.js';
import { confirmItem, createItem, hexId } from './fixtures/journal-items.js';
import { populate } from './fixtures/journal-populate.js';
import { stateImage } from './fixtures/journal-state.js';

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-pay-format-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(t: { teardown: (f: () => Promise<void>) => void }, options: JournalStoreOptions): Promise<JournalPaymentStore> {
  const store = await JournalPaymentStore.open(options);
  t.teardown(() => store.close());
  return store;
}

/** The payloads of a file's frames, in order. */
function framesOf(path: string): Buffer[] {
  const bytes = readFileSync(path);
  const frames: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32LE(at + 4);
    frames.push(bytes.subarray(at + frameHeaderBytes, at + frameHeaderBytes + length));
    at += frameHeaderBytes + length;
  }
  return frames;
}

function writeFrames(path: string, payloads: readonly Buffer[]): void {
  writeFileSync(path, Buffer.concat(payloads.map((p) => encodeFrame(p))));
}

/** A store with every kind of state, checkpointed at its last open: its directory and state image. */
async function checkpointed(t: { teardown: (f: () => void) => void }): Promise<{ dataDir: string; image: unknown; t0: number }> {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const first = await JournalPaymentStore.open({ dataDir });
  await populate(first, t0);
  const image = stateImage(first.state, t0);
  await first.close();
  const second = await JournalPaymentStore.open({ dataDir, checkpointJournalBytesMin: 1, checkpointJournalBytesMax: 1 }); // checkpoints at open
  await second.checkpointSettled();
  await second.close();
  return { dataDir, image, t0 };
}

test('a new directory gets a FORMAT file; a format-1 directory (JSON lines, no FORMAT) is refused, nothing changed', async (t) => {
  const fresh = tempDir(t);
  const store = await JournalPaymentStore.open({ dataDir: fresh });
  await store.close();
  t.is(readFileSync(join(fresh, formatFileName), 'utf8'), 'countersign payment store format 2\n');

  const old = tempDir(t);
  writeFrames(join(old, segmentName(1)), [Buffer.from('["d","0123456789abcdef0123456789abcdef"]')]);
  const before = readdirSync(old).sort();
  const error = await t.throwsAsync(JournalPaymentStore.open({ dataDir: old }), { instanceOf: StoreFormatError });
  t.regex(error!.message, /holds format 1 .*this build reads format 2 only.*Nothing was changed/);
  t.true(error!.message.includes(old), error!.message);
  t.deepEqual(readdirSync(old).sort(), before, 'no FORMAT written, no lock left, nothing removed');
});

test('a FORMAT naming another format, or not naming one, is refused before anything is read', async (t) => {
  const dataDir = tempDir(t);
  const store = await JournalPaymentStore.open({ dataDir });
  await store.create([createItem(Date.now(), 'kept')]);
  await store.close();
  const segment = readFileSync(join(dataDir, segmentName(1)));
  writeFileSync(join(dataDir, formatFileName), 'countersign payment store format 3\n');
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: StoreFormatError, message: /holds format 3/ });
  writeFileSync(join(dataDir, formatFileName), 'something else');
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: StoreFormatError, message: /does not name a payment store format/ });
  t.deepEqual(readFileSync(join(dataDir, segmentName(1))), segment);
  writeFileSync(join(dataDir, formatFileName), 'countersign payment store format 2\n');
  const reopened = await open(t, { dataDir });
  t.is(reopened.state.records.size, 1);
});

test('a checkpoint round-trips every kind of state; its dictionary makes it smaller than the journal it replaces', async (t) => {
  const { dataDir, image, t0 } = await checkpointed(t);
  const names = readdirSync(dataDir);
  t.true(names.includes(checkpointName(2)), names.join(' '));
  const store = await open(t, { dataDir });
  t.is(store.recovered.checkpoint, 2);
  t.is(store.recovered.replayedBytes, 0);
  t.true(store.recovered.checkpointMutations > 48, `${store.recovered.checkpointMutations} mutations`);
  t.deepEqual(stateImage(store.state, t0), image);
  const frames = framesOf(join(dataDir, checkpointName(2)));
  t.deepEqual(JSON.parse(frames[0]!.toString()), { checkpoint: 2, segment: 2, writtenAtMs: JSON.parse(frames[0]!.toString()).writtenAtMs });
  const end = JSON.parse(frames.at(-1)!.toString()) as { end: boolean; mutations: number; dictionary: number };
  t.is(end.mutations, store.recovered.checkpointMutations);
  t.true(end.dictionary > 0, 'shared strings went through the dictionary');
});

test('a checkpoint in format 1, with damaged content under a good CRC, or without its end frame, refuses to open naming the file', async (t) => {
  const { dataDir } = await checkpointed(t);
  const path = join(dataDir, checkpointName(2));
  const frames = framesOf(path);
  const original = readFileSync(path);

  writeFrames(path, [Buffer.from(JSON.stringify({ checkpoint: 1, segment: 2, writtenAtMs: 1 })), ...frames.slice(1)]);
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: StoreFormatError, message: /checkpoint in format 1/ });

  const damaged = Buffer.from(frames[1]!);
  damaged[0] = 0x2a; // no such op
  writeFrames(path, [frames[0]!, damaged, ...frames.slice(2)]);
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), {
    instanceOf: JournalCorruptError,
    message: /checkpoint-0000000000000002\.snap: frame at byte \d+, payload byte \d+: a mutation with unknown op 42/,
  });

  writeFrames(path, frames.slice(0, -1));
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: JournalCorruptError, message: /no end frame/ });

  writeFrames(path, [...frames.slice(0, -1), Buffer.from(JSON.stringify({ end: true, mutations: 1 }))]);
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: JournalCorruptError, message: /end frame .* after \d+ mutations/ });

  writeFileSync(path, original);
  const store = await open(t, { dataDir });
  t.is(store.recovered.checkpoint, 2);
});

test('a journal frame whose content does not decode (under a good CRC) refuses to open, naming the file and the frame', async (t) => {
  const dataDir = tempDir(t);
  const first = await JournalPaymentStore.open({ dataDir });
  await first.create([createItem(Date.now(), 'a')]);
  await first.create([createItem(Date.now(), 'b')]);
  await first.close();
  const path = join(dataDir, segmentName(1));
  const frames = framesOf(path);
  writeFrames(path, [frames[0]!, frames[1]!.subarray(0, frames[1]!.length - 5)]); // a record cut inside
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), {
    instanceOf: JournalCorruptError,
    message: /journal-0000000000000001\.log: frame at byte \d+, payload byte \d+: a payload ends inside a value/,
  });
});

test('a checkpoint written under continuous traffic finishes its walk within its lag bound; the replay tail a crash could meet stays within trigger + what a checkpoint saw written', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  // A state whose checkpoint takes several turns to walk (~8 MB), a lag bound shorter than that many passes.
  const triggerBytes = 16 * 1024;
  const options = { dataDir, fsync: false, checkpointJournalBytesMin: triggerBytes, checkpointJournalBytesMax: triggerBytes };
  const items = Array.from({ length: 20_000 }, (_, i) => createItem(t0, `paced-${i}-${hexId()}`));
  const filling = await JournalPaymentStore.open({ ...options, checkpointJournalBytesMin: 2 ** 40, checkpointJournalBytesMax: 2 ** 40 });
  for (let i = 0; i < items.length; i += 1_000) await filling.create(items.slice(i, i + 1_000));
  await filling.close();
  const store = await open(t, options); // checkpoints at open (the tail exceeds the trigger)
  await store.checkpointSettled();
  const lagBytes = triggerBytes * checkpointLagPerTrigger;
  let passBytesMax = 0;
  // Small passes back to back, never idle: the walk only progresses through its pacing.
  for (let next = 0; store.checkpointsWritten < 5 && next < items.length; next += 5) {
    const before = store.journalWritten.bytes;
    await store.confirm(items.slice(next, next + 5).map((c) => confirmItem(c, t0 + 1)));
    passBytesMax = Math.max(passBytesMax, store.journalWritten.bytes - before);
  }
  await store.checkpointSettled();
  const paced = store.checkpoints.slice(1);
  t.true(paced.length >= 4, `${paced.length} checkpoints under traffic`);
  t.log(
    `pass ≤ ${passBytesMax} B; walks saw ${paced.map((c) => c.journalBytesDuringWalk).join(', ')} B (until the rename: ${paced.map((c) => c.journalBytesDuring).join(', ')}); replay tail max ${store.replayTailBytesMax} B`,
  );
  t.true(
    paced.some((c) => c.journalBytesDuringWalk > 0),
    'traffic ran while walks ran',
  );
  for (const c of paced) {
    t.true(
      c.journalBytesDuringWalk <= lagBytes + 2 * passBytesMax,
      `a walk saw ${c.journalBytesDuringWalk} journal bytes; lag bound ${lagBytes} (+ ${passBytesMax} per pass)`,
    );
  }
  // A crash replays from the newest durable checkpoint's rotation: the journal until the next
  // rotation (the trigger and the pass that crossed it, or what the previous checkpoint saw
  // written if that was more), plus what the running checkpoint has seen written.
  const during = Math.max(...paced.map((c) => c.journalBytesDuring));
  t.true(store.replayTailBytesMax <= Math.max(triggerBytes + passBytesMax, during) + during + passBytesMax, `replay tail ${store.replayTailBytesMax}`);
  const image = stateImage(store.state, t0);
  await store.close();
  const reopened = await open(t, { dataDir });
  t.deepEqual(stateImage(reopened.state, t0), image);
});
