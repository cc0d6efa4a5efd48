import { statSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mutation, MemoryState } from '../memory/state.js';
import { JournalCorruptError, encodeFrame, scanFrames } from './frame.js';
import { checkpointName, fileMode, syncDirectoryAsync, temporaryName } from './layout.js';
import { decodeMutation, encodeMutation } from './mutation-codec.js';

/**
 * A checkpoint: the whole state as the mutations that rebuild it, framed like the journal.
 *
 *   frame 0          {"checkpoint":1,"segment":n,"writtenAtMs":…}
 *   frames 1..k      mutation lines (records, then live keys, counters, guards, pay numbers)
 *   last frame       {"end":true,"lines":<mutation lines>}
 *
 * It is *fuzzy*: written while the store keeps serving, each chunk taken synchronously from the
 * live maps after the journal was rotated to segment n. Every mutation applied after the
 * rotation is in segment n or later, and each one sets a whole value (or the due time of a
 * record that an earlier line of the suffix set in full), so loading the checkpoint and then
 * replaying segments n… in order ends in exactly the journal's state. The checkpoint may see
 * passes that are not yet durable; it is renamed into place only after the journal is durable
 * through every pass it could have seen (`durable`), so it never holds more than the journal.
 * Records and entries are immutable in the state (every change stores a new object), so a line
 * always encodes one whole value.
 */

/** Characters of mutation lines per checkpoint frame: one synchronous slice of the event loop. */
export const checkpointChunkChars = 1 * 2 ** 20;

export interface CheckpointWritten {
  segment: number;
  lines: number;
  bytes: number;
  seconds: number;
}

export async function writeCheckpoint(args: {
  dataDir: string;
  segment: number;
  state: MemoryState;
  nowMs: number;
  fsync: boolean;
  /** Resolves when the journal is durable through every pass applied so far. */
  durable: () => Promise<void>;
}): Promise<CheckpointWritten> {
  const started = performance.now();
  const temporary = join(args.dataDir, temporaryName(args.segment));
  const final = join(args.dataDir, checkpointName(args.segment));
  const handle = await open(temporary, 'w', fileMode);
  let lines = 0;
  let bytes = 0;
  const put = async (text: string): Promise<void> => {
    const frame = encodeFrame(Buffer.from(text, 'utf8'));
    await handle.write(frame);
    bytes += frame.length;
  };
  try {
    await put(JSON.stringify({ checkpoint: 1, segment: args.segment, writtenAtMs: args.nowMs }));
    for (const chunk of snapshotChunks(args.state, args.nowMs)) {
      lines += chunk.length;
      await put(chunk.join('\n'));
    }
    await put(JSON.stringify({ end: true, lines }));
    if (args.fsync) await handle.sync();
  } finally {
    await handle.close();
  }
  await args.durable();
  await rename(temporary, final);
  if (args.fsync) await syncDirectoryAsync(args.dataDir);
  return { segment: args.segment, lines, bytes, seconds: (performance.now() - started) / 1000 };
}

/** The state's lines in chunks of about `checkpointChunkChars`; entries expired at `nowMs` are left out. */
function* snapshotChunks(state: MemoryState, nowMs: number): Generator<string[]> {
  let chunk: string[] = [];
  let chars = 0;
  for (const m of liveMutations(state, nowMs)) {
    const line = encodeMutation(m);
    chunk.push(line);
    chars += line.length;
    if (chars >= checkpointChunkChars) {
      yield chunk;
      chunk = [];
      chars = 0;
    }
  }
  if (chunk.length > 0) yield chunk;
}

function* liveMutations(state: MemoryState, nowMs: number): Generator<Mutation> {
  for (const record of state.records.values()) yield { op: 'record', record };
  for (const [id, entry] of state.keys) if (entry.expiresAtMs > nowMs) yield { op: 'key', id, entry };
  for (const [key, counter] of state.counters) if (counter.expiresAtMs > nowMs) yield { op: 'counter', key, counter };
  for (const [payerId, entry] of state.guards) if (entry.expiresAtMs > nowMs || entry.lockedUntilMs > nowMs) yield { op: 'guard', payerId, entry };
  for (const [digest, entry] of state.payNumbers) if (entry.expiresAtMs > nowMs) yield { op: 'payNumber', digest, entry };
}

/** Applies checkpoint `segment` to an empty state. Throws JournalCorruptError on any damage: a checkpoint is never torn (it is renamed in only once durable). */
export function loadCheckpoint(dataDir: string, segment: number, state: MemoryState): { lines: number; bytes: number } {
  const path = join(dataDir, checkpointName(segment));
  let frames = 0;
  let lines = 0;
  let ended = false;
  scanFrames(path, false, (payload) => {
    const text = payload.toString('utf8');
    if (ended) throw new JournalCorruptError(`${path}: data after its end frame`);
    if (frames++ === 0) return checkHead(path, text, segment);
    if (text.startsWith('{')) {
      const end = JSON.parse(text) as { end?: boolean; lines?: number };
      if (end.end !== true || end.lines !== lines) throw new JournalCorruptError(`${path}: end frame ${text} after ${lines} lines`);
      ended = true;
      return;
    }
    for (const line of text.split('\n')) {
      state.apply(decodeMutation(line));
      lines += 1;
    }
  });
  if (!ended) throw new JournalCorruptError(`${path}: no end frame (the checkpoint is incomplete)`);
  return { lines, bytes: statSync(path).size };
}

function checkHead(path: string, text: string, segment: number): void {
  const head = JSON.parse(text) as { checkpoint?: number; segment?: number };
  if (head.checkpoint !== 1 || head.segment !== segment) throw new JournalCorruptError(`${path}: unexpected head ${text.slice(0, 120)}`);
}
