import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreUnavailableError } from '../port.js';
import { fileMode } from './layout.js';

/** Another live process owns the data directory (or its lock cannot be read). */
export class StoreLockedError extends StoreUnavailableError {
  override readonly name: string = 'StoreLockedError';
}

export const lockFileName = 'LOCK';

/**
 * One process per data directory: `LOCK` holds the owner's pid. It is created with its content
 * at once (written to a private temporary name, then hard-linked, which fails if `LOCK` exists).
 * A lock whose process is gone (killed, crashed) is taken over; a live owner — this process
 * included — is refused with an error naming the directory and the pid. Best effort against two
 * processes taking over the same stale lock at the same instant (Node has no flock). Returns the release.
 */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, lockFileName);
  const mine = join(dataDir, `${lockFileName}.${process.pid}`);
  writeFileSync(mine, `${process.pid}\n`, { mode: fileMode });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (tryLink(mine, path)) return () => rmSync(path, { force: true });
      const owner = ownerOf(path);
      if (owner === undefined) continue; // removed between our link and our read: try again
      if (processAlive(owner)) throw new StoreLockedError(`payment store data directory ${dataDir} is in use by process ${owner} (its ${lockFileName} file)`);
      rmSync(path, { force: true }); // stale: its process is gone
    }
    throw new StoreLockedError(`could not lock payment store data directory ${dataDir}: another process keeps taking ${lockFileName}`);
  } finally {
    rmSync(mine, { force: true });
  }
}

function tryLink(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

function ownerOf(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new StoreLockedError(`${path} does not hold a process id (${JSON.stringify(text.slice(0, 20))}); remove it if no process uses the directory`);
  }
  return pid;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
