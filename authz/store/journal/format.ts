import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DirectoryListing, fileMode, syncDirectory, syncFile } from './layout.js';

/**
 * The on-disk format of a payment store directory, named by its `FORMAT` file.
 *
 *   1  JSON lines in frames (the first embedded store; no FORMAT file). Not read by this build.
 *   2  binary mutations (mutation-codec.ts), checkpoints with a string dictionary. This build.
 *
 * `open` writes FORMAT into a directory holding no journal or checkpoint yet, and refuses any
 * other directory whose FORMAT is missing or names another format — before it reads or changes
 * anything in it.
 */
export const storeFormat = 2;
export const formatFileName = 'FORMAT';
const formatText = (format: number): string => `countersign payment store format ${format}\n`;
const formatPattern = /^countersign payment store format (\d+)\n$/;

/** The directory holds a store in a format this build does not read. Nothing was changed. */
export class StoreFormatError extends Error {
  override readonly name: string = 'StoreFormatError';
}

/** Checks (or, for a directory without journal or checkpoint, writes) the FORMAT file. */
export function checkFormat(dataDir: string, listing: DirectoryListing): void {
  const path = join(dataDir, formatFileName);
  if (!existsSync(path)) {
    if (listing.segments.length > 0 || listing.checkpoints.length > 0)
      throw refusal(dataDir, 1, `it has journal or checkpoint files but no ${formatFileName} file`);
    const temporary = `${path}.tmp`;
    writeFileSync(temporary, formatText(storeFormat), { mode: fileMode });
    syncFile(temporary);
    renameSync(temporary, path);
    syncDirectory(dataDir);
    return;
  }
  const text = readFileSync(path, 'utf8');
  const found = formatPattern.exec(text);
  if (found === null)
    throw new StoreFormatError(`${path} does not name a payment store format (it holds ${JSON.stringify(text.slice(0, 60))}); nothing was changed`);
  const format = Number(found[1]);
  if (format !== storeFormat) throw refusal(dataDir, format, `its ${formatFileName} file says so`);
}

function refusal(dataDir: string, format: number, why: string): StoreFormatError {
  return new StoreFormatError(
    `payment store data directory ${dataDir} holds format ${format} (${why}); this build reads format ${storeFormat} only. ` +
      'Nothing was changed. Open it with the build that wrote it, or move the directory aside and start empty ' +
      '(format 1, JSON lines, predates any release: there is no converter).',
  );
}
