import { closeSync, fsyncSync, openSync, readdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { makePrivateDir } from '../../../ledger/embedded/data-dir.js';

/**
 * The files of a payment store's data directory (mode 0700, files 0600):
 *
 *   LOCK                            the owning process's pid (lock.ts)
 *   FORMAT                          the on-disk format (format.ts), written when the directory is new
 *   journal-<n>.log                 journal segment n (n: 16 decimal digits, from 1 up)
 *   checkpoint-<n>.snap             the whole state as of the start of segment n: recovery loads
 *                                   the newest one and replays segments n, n+1, … after it
 *   checkpoint-<n>.snap.tmp         a checkpoint being written (removed on open)
 */

/** Owner only, as the embedded ledger's data directory: one definition (ledger/embedded/data-dir.ts). */
export { privateDirMode as dirMode, privateFileMode as fileMode } from '../../../ledger/embedded/data-dir.js';

const digits = 16;

export const segmentName = (n: number): string => `journal-${String(n).padStart(digits, '0')}.log`;
export const checkpointName = (n: number): string => `checkpoint-${String(n).padStart(digits, '0')}.snap`;
export const temporaryName = (n: number): string => `${checkpointName(n)}.tmp`;

export interface DirectoryListing {
  segments: number[];
  checkpoints: number[];
  temporaries: string[];
}

const segmentPattern = /^journal-(\d{16})\.log$/;
const checkpointPattern = /^checkpoint-(\d{16})\.snap$/;
const temporaryPattern = /^checkpoint-\d{16}\.snap\.tmp$/;

/** Creates the directory if needed and makes it private (it holds payment data). */
export function prepareDirectory(dataDir: string): void {
  makePrivateDir(dataDir);
}

/** Segments and checkpoints by number, ascending; other files are left alone. */
export function listDirectory(dataDir: string): DirectoryListing {
  const listing: DirectoryListing = { segments: [], checkpoints: [], temporaries: [] };
  for (const name of readdirSync(dataDir)) {
    const segment = segmentPattern.exec(name);
    const checkpoint = checkpointPattern.exec(name);
    if (segment !== null) listing.segments.push(Number(segment[1]));
    else if (checkpoint !== null) listing.checkpoints.push(Number(checkpoint[1]));
    else if (temporaryPattern.test(name)) listing.temporaries.push(name);
  }
  listing.segments.sort((a, b) => a - b);
  listing.checkpoints.sort((a, b) => a - b);
  return listing;
}

/** Makes a file's content durable. */
export function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes created, renamed and removed names in `dataDir` durable (the ledger's own, ledger/embedded/data-dir.ts). */
export { fsyncDir as syncDirectory } from '../../../ledger/embedded/data-dir.js';

/** As `syncDirectory`, without blocking the event loop. */
export async function syncDirectoryAsync(dataDir: string): Promise<void> {
  const handle = await open(dataDir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function removeFiles(dataDir: string, names: readonly string[]): void {
  for (const name of names) rmSync(join(dataDir, name), { force: true });
}
