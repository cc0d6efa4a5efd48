import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Every file of the ledger's data directory: owner only (it holds every account and transfer). */
export const privateFileMode = 0o600;
/** The data directory itself: owner only. */
export const privateDirMode = 0o700;

/**
 * Creates the data directory owner-only (0700), and makes an existing one and the files in it
 * owner-only (0600) too: a directory written by a version that left them 0755 / 0644 is fixed on
 * its next open. The ledger holds every account and transfer.
 */
export function makePrivateDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: privateDirMode });
  chmodSync(dataDir, privateDirMode);
  for (const entry of readdirSync(dataDir, { withFileTypes: true })) {
    if (entry.isFile()) chmodSync(join(dataDir, entry.name), privateFileMode);
  }
}

/**
 * The files of a journaled embedded ledger's data directory:
 *
 * - `ledger.journal`: the live journal, appended by every create (journal.ts);
 * - `ledger.journal.<n>` (n = 1, 2, …): sealed journal segments. Starting a checkpoint renames the
 *   live journal to the next segment number and opens a new, empty live journal;
 * - `ledger.checkpoint`: the latest complete checkpoint (checkpoint-format.ts); it holds the state
 *   after every segment numbered up to its `through`. Written as `ledger.checkpoint.tmp`, then
 *   fsync'd and renamed over the old one;
 * - `transfers.data`, `transfer-links.data`, `history.data`, `failed-ids.data`: the append-only
 *   columns (state-image.ts `persistedColumns`, same order). Only their first `count` records,
 *   as named by the checkpoint, are valid; anything after is from an unfinished checkpoint;
 * - `LOCK`: the owning process's pid (journal.ts `lockDataDir`).
 *
 * Opening = the checkpoint + the sealed segments after its `through` + the live journal.
 */

export const liveJournalName = 'ledger.journal';
export const checkpointName = 'ledger.checkpoint';
export const checkpointTmpName = 'ledger.checkpoint.tmp';
export const dataFileNames = ['transfers.data', 'transfer-links.data', 'history.data', 'failed-ids.data'] as const;

const sealedPattern = /^ledger\.journal\.([1-9][0-9]*)$/;

export function sealedJournalName(segment: number): string {
  return `${liveJournalName}.${segment}`;
}

/** Sealed segment numbers present in the directory, ascending. */
export function sealedSegments(dataDir: string): number[] {
  const segments: number[] = [];
  for (const name of readdirSync(dataDir)) {
    const match = sealedPattern.exec(name);
    if (match !== null) segments.push(Number(match[1]));
  }
  return segments.sort((a, b) => a - b);
}

/** Renames the live journal to sealed segment `segment` (the caller has closed its writer). */
export function sealLiveJournal(dataDir: string, segment: number): void {
  renameSync(join(dataDir, liveJournalName), join(dataDir, sealedJournalName(segment)));
}

/** Deletes sealed segments numbered up to `through` (a durable checkpoint holds them). */
export function removeSealedThrough(dataDir: string, through: number): void {
  for (const segment of sealedSegments(dataDir)) {
    if (segment <= through) rmSync(join(dataDir, sealedJournalName(segment)), { force: true });
  }
}

/** Makes renames and new files in `dataDir` durable. */
export function fsyncDir(dataDir: string): void {
  const fd = openSync(dataDir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
