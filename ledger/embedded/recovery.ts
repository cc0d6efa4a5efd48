import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AccountsOnDisk } from './checkpoint-accounts.js';
import { type CheckpointIn, decodeCheckpoint } from './checkpoint-format.js';
import { type ColumnOnDisk, loadColumn } from './column-file.js';
import { checkpointName, checkpointTmpName, dataFileNames, makePrivateDir, removeSealedThrough, sealedJournalName, sealedSegments } from './data-dir.js';
import { JournalCorruptError, type JournalRecord, replayJournal, replayJournalFile } from './journal.js';
import type { LedgerState } from './state.js';
import { persistedColumns, restoreImage } from './state-image.js';

/** What opening a data directory found (for operators, tests and the restart benchmark). */
export interface Recovered {
  /** Journal records replayed (sealed segments after the checkpoint, then the live journal). */
  records: number;
  /** Bytes of a torn live-journal tail cut off. */
  truncatedBytes: number;
  /** Transfers loaded from the checkpoint (0 without one). */
  checkpointTransfers: number;
  /** The last journal segment the checkpoint holds (0 without one). */
  checkpointThrough: number;
  /** Sealed segments replayed after the checkpoint. */
  segments: number;
  /** Journal bytes replayed: the tail the checkpoint did not cover. */
  tailBytes: number;
  /** Milliseconds spent loading the checkpoint (and rebuilding indexes), then replaying the tail. */
  loadMs: number;
  replayMs: number;
}

export interface Recovery {
  recovered: Recovered;
  /** What of each persisted column is on disk (state-image.ts `persistedColumns` order). */
  onDisk: ColumnOnDisk[];
  /** The number the next sealed segment gets. */
  nextSegment: number;
  /** The loaded checkpoint's accounts section, which the next checkpoint starts from. */
  accountsOnDisk: AccountsOnDisk | undefined;
}

/**
 * Rebuilds `state` (empty) from `dataDir`: loads the latest checkpoint and its columns, drops
 * segments it already holds, then replays the later sealed segments and the live journal in
 * order through `replay`.
 */
export function recover(dataDir: string, state: LedgerState, replay: (record: JournalRecord) => void): Recovery {
  const started = performance.now();
  makePrivateDir(dataDir);
  rmSync(join(dataDir, checkpointTmpName), { force: true }); // an unfinished checkpoint
  const checkpoint = readCheckpoint(dataDir);
  const columns = persistedColumns(state);
  const onDisk = columns.map((column, i) =>
    loadColumn(join(dataDir, dataFileNames[i]!), column, checkpoint?.columns[i] ?? { count: 0, crcs: [] }, {
      evicted: column === state.transfers.history, // read back from disk by get_account_balances only
    }),
  );
  if (checkpoint !== undefined) restoreImage(state, checkpoint);
  const through = checkpoint?.through ?? 0;
  removeSealedThrough(dataDir, through);
  const later = sealedSegments(dataDir);
  later.forEach((segment, i) => {
    if (segment !== through + 1 + i) throw new JournalCorruptError(`journal segment ${through + 1 + i} is missing (found ${segment})`);
  });
  const recovered: Recovered = {
    records: 0,
    truncatedBytes: 0,
    checkpointTransfers: checkpoint === undefined ? 0 : checkpoint.columns[0]!.count,
    checkpointThrough: through,
    segments: later.length,
    tailBytes: 0,
    loadMs: Math.round(performance.now() - started),
    replayMs: 0,
  };
  for (const segment of later) {
    const r = replayJournalFile(join(dataDir, sealedJournalName(segment)), replay, { sealed: true });
    recovered.records += r.records;
    recovered.tailBytes += r.bytes;
  }
  const live = replayJournal(dataDir, replay);
  recovered.records += live.records;
  recovered.tailBytes += live.bytes;
  recovered.truncatedBytes = live.truncatedBytes;
  recovered.replayMs = Math.round(performance.now() - started - recovered.loadMs);
  const accountsOnDisk =
    checkpoint === undefined ? undefined : { path: join(dataDir, checkpointName), offset: checkpoint.accountsOffset, count: checkpoint.accounts.length };
  return { recovered, onDisk, nextSegment: Math.max(through, ...later) + 1, accountsOnDisk };
}

function readCheckpoint(dataDir: string): CheckpointIn | undefined {
  const path = join(dataDir, checkpointName);
  if (!existsSync(path)) return undefined;
  return decodeCheckpoint(readFileSync(path), path);
}
