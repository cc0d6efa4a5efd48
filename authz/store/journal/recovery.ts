import { closeSync, fsyncSync, ftruncateSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { MemoryState } from '../memory/state.js';
import { ByteReader } from './bytes.js';
import { loadCheckpoint, located } from './checkpoint.js';
import { checkFormat } from './format.js';
import { frameHeaderBytes, JournalCorruptError, scanFrames } from './frame.js';
import { checkpointName, listDirectory, removeFiles, segmentName, syncDirectory } from './layout.js';
import { decodeMutation } from './mutation-codec.js';

/** What `open` found and did (for operators, tests and the bench). */
export interface Recovery {
  /** The checkpoint loaded (its segment number), undefined when there was none. */
  checkpoint: number | undefined;
  checkpointMutations: number;
  checkpointBytes: number;
  checkpointSeconds: number;
  /** Segments replayed after it, in order. */
  segments: number[];
  replayedFrames: number;
  replayedBytes: number;
  replayedMutations: number;
  /** Bytes of a torn last write cut off the last segment (never acknowledged). */
  tornBytes: number;
  /** The segment to append to (undefined: none exists yet) and its length after the cut. */
  lastSegment: number | undefined;
  lastSegmentBytes: number;
  /** Stale files removed: temporary checkpoints, and segments and checkpoints older than the one loaded. */
  removed: string[];
  /** Wall time of the tail's replay. */
  replaySeconds: number;
  /** Wall time of the whole recovery (format check, checkpoint load, tail replay, cut, clean-up). */
  seconds: number;
}

/**
 * Rebuilds `state` (empty) from `dataDir`: checks its format (format.ts), loads the newest
 * checkpoint, then replays every segment from its number on, in order. Only the last segment may end in a torn write (cut off and synced); any
 * other damage, or a missing segment, throws JournalCorruptError: nothing acknowledged is ever
 * silently dropped. Files older than the checkpoint (left by a crash before their deletion) and
 * temporary checkpoints (a crash while writing one) are removed.
 */
export function recover(dataDir: string, state: MemoryState): Recovery {
  const started = performance.now();
  const listing = listDirectory(dataDir);
  checkFormat(dataDir, listing);
  const checkpoint = listing.checkpoints.at(-1);
  const first = checkpoint ?? 1;
  const tail = listing.segments.filter((n) => n >= first);
  assertContiguous(dataDir, first, tail, checkpoint !== undefined);
  const r: Recovery = {
    checkpoint,
    checkpointMutations: 0,
    checkpointBytes: 0,
    checkpointSeconds: 0,
    segments: tail,
    replayedFrames: 0,
    replayedBytes: 0,
    replayedMutations: 0,
    tornBytes: 0,
    lastSegment: tail.at(-1),
    lastSegmentBytes: 0,
    removed: [],
    replaySeconds: 0,
    seconds: 0,
  };
  if (checkpoint !== undefined) {
    const loaded = loadCheckpoint(dataDir, checkpoint, state);
    r.checkpointMutations = loaded.mutations;
    r.checkpointBytes = loaded.bytes;
    r.checkpointSeconds = (performance.now() - started) / 1000;
  }
  const replay = performance.now();
  for (const n of tail) replaySegment(dataDir, n, n === r.lastSegment, state, r);
  r.replaySeconds = (performance.now() - replay) / 1000;
  r.removed = [
    ...listing.temporaries,
    ...listing.segments.filter((n) => n < first).map(segmentName),
    ...listing.checkpoints.filter((n) => n < first).map(checkpointName),
  ];
  if (r.removed.length > 0) {
    removeFiles(dataDir, r.removed);
    syncDirectory(dataDir);
  }
  r.seconds = (performance.now() - started) / 1000;
  return r;
}

/** Segments from `first` on must follow each other; a checkpoint's own segment must exist (it was made durable before the checkpoint began). */
function assertContiguous(dataDir: string, first: number, tail: readonly number[], checkpointed: boolean): void {
  if (checkpointed && tail[0] !== first) throw new JournalCorruptError(`${dataDir}: ${checkpointName(first)} exists but ${segmentName(first)} is missing`);
  if (!checkpointed && tail.length > 0 && tail[0] !== 1)
    throw new JournalCorruptError(`${dataDir}: no checkpoint, yet the journal starts at ${segmentName(tail[0]!)}`);
  for (let i = 1; i < tail.length; i++) {
    if (tail[i] !== tail[i - 1]! + 1) throw new JournalCorruptError(`${dataDir}: journal segment ${segmentName(tail[i - 1]! + 1)} is missing`);
  }
}

function replaySegment(dataDir: string, n: number, last: boolean, state: MemoryState, r: Recovery): void {
  const path = join(dataDir, segmentName(n));
  const scan = scanFrames(path, last, (payload, offset) => {
    const reader = new ByteReader(payload, undefined);
    try {
      while (!reader.done) {
        state.apply(decodeMutation(reader));
        r.replayedMutations += 1;
      }
    } catch (error) {
      throw located(error, path, offset, reader.pos);
    }
    r.replayedBytes += frameHeaderBytes + payload.length;
  });
  r.replayedFrames += scan.frames;
  if (!last) return;
  r.lastSegmentBytes = scan.goodBytes;
  if (scan.tornBytes > 0) {
    r.tornBytes = scan.tornBytes;
    const fd = openSync(path, 'r+');
    try {
      ftruncateSync(fd, scan.goodBytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
