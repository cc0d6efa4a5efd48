import { statSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { MemoryState, Mutation } from '../memory/state.js';
import { checkpointChunkBytes, checkpointDictionaryEntriesMax, checkpointSliceMs, checkpointSyncBytes, checkpointWritesInFlightMax } from './bounds.js';
import { ByteReader, ByteWriter, StringDictionary } from './bytes.js';
import { StoreFormatError, storeFormat } from './format.js';
import { encodeFrame, JournalCorruptError, scanFrames } from './frame.js';
import { checkpointName, fileMode, syncDirectoryAsync, temporaryName } from './layout.js';
import { decodeMutation, encodeMutation } from './mutation-codec.js';

/**
 * A checkpoint: the whole state as the mutations that rebuild it, framed like the journal.
 *
 *   frame 0          {"checkpoint":2,"segment":n,"writtenAtMs":…}      (JSON: the format, 2)
 *   frames 1..k      mutations (mutation-codec.ts), ~1 MiB each: every record, then the live
 *                    idempotency records, counters, guards, pay numbers; one string dictionary
 *                    runs through all of them in order (bytes.ts)
 *   last frame       {"end":true,"mutations":<count>,"dictionary":<entries>}   (JSON; '{' is no op byte)
 *
 * It is *fuzzy*: written while the store keeps serving, each chunk taken synchronously from the
 * live maps after the journal was rotated to segment n. Every mutation applied after the
 * rotation is in segment n or later, and each one sets a whole value (or the due time of a
 * record that an earlier mutation of the suffix set in full), so loading the checkpoint and then
 * replaying segments n… in order ends in exactly the journal's state. The checkpoint may see
 * passes that are not yet durable; it is renamed into place only after the journal is durable
 * through every pass it could have seen (`durable`), so it never holds more than the journal.
 * Records and entries are immutable in the state (every change stores a new object), so a
 * mutation always encodes one whole value.
 *
 * Pacing. The walk runs in turns of the event loop: each turn encodes chunks for at least
 * `checkpointSliceMs`, and more while it is behind — the walk must have covered the share
 * `journalBytes / lagBytes` of the items the state held at the start, so it is done by the time
 * the journal has grown by `lagBytes` since the rotation, however busy the store is (a saturated
 * loop gives the walk one turn per round of traffic). When the store is idle the turns follow
 * each other at once.
 */

export interface CheckpointWritten {
  segment: number;
  mutations: number;
  bytes: number;
  seconds: number;
  /** Journal bytes written between the rotation and the end of the walk. */
  journalBytesDuringWalk: number;
  /** Journal bytes written between the rotation and the checkpoint's rename (what a crash just before it adds to the replayed tail). */
  journalBytesDuring: number;
  /** Seconds the walk held the event loop (encoding), summed over its turns. */
  busySeconds: number;
}

export interface CheckpointPace {
  /** Journal bytes written since this checkpoint's rotation. */
  journalBytes: () => number;
  /** The walk is due to be complete by the time the journal has grown by this many bytes. */
  lagBytes: number;
}

export async function writeCheckpoint(args: {
  dataDir: string;
  segment: number;
  state: MemoryState;
  nowMs: number;
  fsync: boolean;
  pace: CheckpointPace;
  /** Resolves when the journal is durable through every pass applied so far. */
  durable: () => Promise<void>;
}): Promise<CheckpointWritten> {
  const started = performance.now();
  const temporary = join(args.dataDir, temporaryName(args.segment));
  const final = join(args.dataDir, checkpointName(args.segment));
  const file = new FrameFile(await open(temporary, 'w', fileMode));
  const walk = new CheckpointWalk(args.state, args.nowMs);
  let journalBytesDuringWalk = 0;
  let busyMs = 0;
  try {
    file.write(encodeFrame(Buffer.from(JSON.stringify({ checkpoint: storeFormat, segment: args.segment, writtenAtMs: args.nowMs }))));
    while (!walk.done) {
      const turn = performance.now();
      do {
        const chunk = walk.chunk();
        if (chunk !== undefined) file.write(encodeFrame(chunk));
      } while (!walk.done && (performance.now() - turn < checkpointSliceMs || walk.behind(args.pace)));
      busyMs += performance.now() - turn;
      await file.drain(checkpointWritesInFlightMax);
      if (args.fsync && file.bytes - file.syncedBytes >= checkpointSyncBytes) await file.sync(); // keeps the final fsync short
      if (!walk.done) await nextTurn();
    }
    journalBytesDuringWalk = args.pace.journalBytes();
    file.write(encodeFrame(Buffer.from(JSON.stringify({ end: true, mutations: walk.mutations, dictionary: walk.dictionary.size }))));
    await file.drain(0);
    if (args.fsync) await file.sync();
  } finally {
    await file.close();
  }
  await args.durable();
  await rename(temporary, final);
  if (args.fsync) await syncDirectoryAsync(args.dataDir);
  const journalBytesDuring = args.pace.journalBytes();
  const seconds = (performance.now() - started) / 1000;
  return {
    segment: args.segment,
    mutations: walk.mutations,
    bytes: file.bytes,
    seconds,
    journalBytesDuringWalk,
    journalBytesDuring,
    busySeconds: busyMs / 1000,
  };
}

/** The state's mutations in chunks of about `checkpointChunkBytes`; entries expired at `nowMs` are left out. */
class CheckpointWalk {
  readonly dictionary = new StringDictionary(checkpointDictionaryEntriesMax);
  private readonly writer = new ByteWriter(checkpointChunkBytes + 64 * 1024, this.dictionary);
  private readonly mutationsLeft: Iterator<Mutation>;
  /** Items the state held when the walk began (the walk sees later additions too). */
  private readonly itemsAtStart: number;
  mutations = 0;
  done = false;

  constructor(state: MemoryState, nowMs: number) {
    this.mutationsLeft = liveMutations(state, nowMs);
    this.itemsAtStart = state.records.size + state.entries;
  }

  /** The next chunk (a view of the walk's buffer: frame it before the next call), or undefined when the walk ended without one. */
  chunk(): Buffer | undefined {
    const w = this.writer;
    w.reset();
    while (w.length < checkpointChunkBytes) {
      const next = this.mutationsLeft.next();
      if (next.done === true) {
        this.done = true;
        break;
      }
      encodeMutation(next.value, w);
      this.mutations += 1;
    }
    return w.length === 0 ? undefined : w.view();
  }

  /**
   * Whether the walk covers less of the state than the journal's growth since the rotation
   * demands; once that growth reaches `lagBytes`, always (the rest, items added since the start
   * included, is walked in this turn).
   */
  behind(pace: CheckpointPace): boolean {
    const share = pace.journalBytes() / pace.lagBytes;
    return share >= 1 || this.mutations < this.itemsAtStart * share;
  }
}

function* liveMutations(state: MemoryState, nowMs: number): Generator<Mutation> {
  for (const record of state.records.values()) yield { op: 'record', record };
  for (const [id, entry] of state.keys) if (entry.expiresAtMs > nowMs) yield { op: 'key', id, entry };
  for (const [key, counter] of state.counters) if (counter.expiresAtMs > nowMs) yield { op: 'counter', key, counter };
  for (const [payerId, entry] of state.guards) if (entry.expiresAtMs > nowMs || entry.lockedUntilMs > nowMs) yield { op: 'guard', payerId, entry };
  for (const [digest, entry] of state.payNumbers) if (entry.expiresAtMs > nowMs) yield { op: 'payNumber', digest, entry };
}

/** A file written with frames at increasing positions, a few writes in flight at once. */
class FrameFile {
  bytes = 0;
  /** Bytes written (and acknowledged) before the last fsync began. */
  syncedBytes = 0;
  private readonly inFlight: Promise<void>[] = [];
  private failure: unknown;

  constructor(readonly handle: FileHandle) {}

  write(frame: Buffer): void {
    const at = this.bytes;
    this.bytes += frame.length;
    this.inFlight.push(
      writeAll(this.handle, frame, at).catch((error: unknown) => {
        this.failure ??= error;
      }),
    );
  }

  /** Waits until at most `max` writes are in flight; throws the first write failure. */
  async drain(max: number): Promise<void> {
    while (this.inFlight.length > max) await this.inFlight.shift();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for the writes in flight, then fsyncs the file. */
  async sync(): Promise<void> {
    await this.drain(0);
    const bytes = this.bytes;
    await this.handle.sync();
    this.syncedBytes = bytes;
  }

  async close(): Promise<void> {
    await Promise.all(this.inFlight);
    await this.handle.close();
  }
}

async function writeAll(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written, position + written);
    written += bytesWritten;
  }
}

/**
 * Applies checkpoint `segment` to an empty state. Throws JournalCorruptError on any damage (a
 * checkpoint is never torn: it is renamed in only once durable), StoreFormatError when it was
 * written in another format.
 */
export function loadCheckpoint(dataDir: string, segment: number, state: MemoryState): { mutations: number; bytes: number } {
  const path = join(dataDir, checkpointName(segment));
  const dictionary: string[] = [];
  let frames = 0;
  let mutations = 0;
  let ended = false;
  scanFrames(path, false, (payload, offset) => {
    if (ended) throw new JournalCorruptError(`${path}: data after its end frame`);
    if (frames++ === 0) return checkHead(path, payload, segment);
    if (payload[0] === openingBrace) {
      const end = parseJson(path, payload) as { end?: boolean; mutations?: number };
      if (end.end !== true || end.mutations !== mutations)
        throw new JournalCorruptError(`${path}: end frame ${payload.toString('utf8', 0, 120)} after ${mutations} mutations`);
      ended = true;
      return;
    }
    const r = new ByteReader(payload, dictionary);
    try {
      while (!r.done) {
        state.apply(decodeMutation(r));
        mutations += 1;
      }
    } catch (error) {
      throw located(error, path, offset, r.pos);
    }
  });
  if (!ended) throw new JournalCorruptError(`${path}: no end frame (the checkpoint is incomplete)`);
  return { mutations, bytes: statSync(path).size };
}

const openingBrace = 0x7b;

function checkHead(path: string, payload: Buffer, segment: number): void {
  const head = payload[0] === openingBrace ? (parseJson(path, payload) as { checkpoint?: unknown; segment?: unknown }) : {};
  if (typeof head.checkpoint === 'number' && head.checkpoint !== storeFormat) {
    throw new StoreFormatError(`${path} is a checkpoint in format ${head.checkpoint}; this build reads format ${storeFormat} only (nothing was changed)`);
  }
  if (head.checkpoint !== storeFormat || head.segment !== segment)
    throw new JournalCorruptError(`${path}: unexpected head ${payload.toString('utf8', 0, 120)}`);
}

function parseJson(path: string, payload: Buffer): Record<string, unknown> {
  try {
    return JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new JournalCorruptError(`${path}: a head or end frame is not JSON`, { cause });
  }
}

/** A decoding failure in a frame, as corruption naming the file, the frame and the byte. */
export function located(error: unknown, path: string, frameOffset: number, at: number): Error {
  if (error instanceof JournalCorruptError)
    return new JournalCorruptError(`${path}: frame at byte ${frameOffset}, payload byte ${at}: ${error.message}`, { cause: error });
  return new JournalCorruptError(`${path}: frame at byte ${frameOffset}, payload byte ${at} does not decode: ${String(error)}`, { cause: error });
}
