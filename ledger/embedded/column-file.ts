import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { CheckpointCorruptError, type ColumnMeta } from './checkpoint-format.js';
import { type Column, chunkRecords, chunkShift } from './column.js';
import { privateFileMode } from './data-dir.js';

/**
 * An append-only column's data file: records are written once, at their slot's position, by the
 * checkpoint that first includes them, with a running crc32 per chunk that the checkpoint file
 * records. Loading reads the first `count` records back and checks every chunk's crc.
 */

export const fileFlags = constants.O_RDWR | constants.O_CREAT;

/** What of a column is on disk: how many records, and the crc32 of each chunk's written part. */
export class ColumnOnDisk {
  constructor(
    public persisted = 0,
    public crcs: number[] = [],
  ) {}

  /** The part of the metadata that covers the first `count` records (count >= persisted). */
  meta(count: number): ColumnMeta {
    return { count, crcs: this.crcs.slice(0, Math.ceil(count / chunkRecords)) };
  }

  /**
   * Writes records [persisted, count) at their positions, chunk by chunk (each write yields to
   * the event loop), updating the chunk crcs as it goes. The records must not change meanwhile.
   */
  async append(file: FileHandle, column: Column, count: number): Promise<number> {
    let written = 0;
    while (this.persisted < count) {
      const bytes = column.bytes(this.persisted, count);
      for (let off = 0; off < bytes.length; ) {
        const { bytesWritten } = await file.write(bytes, off, bytes.length - off, this.persisted * column.width + off);
        off += bytesWritten;
      }
      const chunk = this.persisted >>> chunkShift;
      this.crcs[chunk] = crc32(bytes, this.crcs[chunk] ?? 0);
      this.persisted += bytes.length / column.width;
      written += bytes.length;
    }
    return written;
  }
}

/**
 * Loads the first `meta.count` records of the column's file into `column` (empty), verifying
 * each chunk, and cuts off whatever follows them. With `evicted`, full chunks are only verified
 * (streamed through one scratch buffer) and left on disk; the last, partial chunk is loaded.
 * Returns what is on disk.
 */
export function loadColumn(path: string, column: Column, meta: ColumnMeta, options: { evicted: boolean }): ColumnOnDisk {
  const fd = openSync(path, fileFlags, privateFileMode);
  try {
    const size = meta.count * column.width;
    if (fstatSync(fd).size < size) throw new CheckpointCorruptError(`${path} is shorter than the checkpoint says`);
    ftruncateSync(fd, size);
    if (options.evicted) column.resizeEvicted(meta.count);
    else column.resize(meta.count);
    const scratch = options.evicted ? Buffer.allocUnsafe(chunkRecords * column.width) : undefined;
    for (let chunk = 0; chunk * chunkRecords < meta.count; chunk++) {
      const records = Math.min(chunkRecords, meta.count - chunk * chunkRecords);
      const resident = column.isResident(chunk * chunkRecords);
      const target = (resident ? column.chunks[chunk]! : scratch!).subarray(0, records * column.width);
      readFully(fd, target, chunk * chunkRecords * column.width, path);
      if (crc32(target) !== meta.crcs[chunk]) throw new CheckpointCorruptError(`${path} chunk ${chunk} fails its checksum`);
    }
    return new ColumnOnDisk(meta.count, meta.crcs.slice());
  } finally {
    closeSync(fd);
  }
}

function readFully(fd: number, target: Buffer, position: number, path: string): void {
  for (let off = 0; off < target.length; ) {
    const n = readSync(fd, target, off, target.length - off, position + off);
    if (n === 0) throw new CheckpointCorruptError(`${path} ended early`);
    off += n;
  }
}
