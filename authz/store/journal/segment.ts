import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileMode, segmentName, syncDirectoryAsync } from './layout.js';

/** One journal segment file open for appending: each `append` is one write and one fdatasync. */
export class Segment {
  private constructor(
    readonly number: number,
    private readonly handle: FileHandle,
    private readonly fsync: boolean,
    /** Bytes in the file. */
    public bytes: number,
  ) {}

  /** A new, empty segment whose name is durable before anything is written to it. */
  static async create(dataDir: string, number: number, fsync: boolean): Promise<Segment> {
    const handle = await open(join(dataDir, segmentName(number)), 'wx', fileMode);
    try {
      if (fsync) {
        await handle.sync();
        await syncDirectoryAsync(dataDir);
      }
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new Segment(number, handle, fsync, 0);
  }

  /** The last segment found on open (its torn tail already cut to `bytes`), appended to from there. */
  static async reopen(dataDir: string, number: number, bytes: number, fsync: boolean): Promise<Segment> {
    return new Segment(number, await open(join(dataDir, segmentName(number)), 'a', fileMode), fsync, bytes);
  }

  async append(frame: Buffer): Promise<void> {
    let written = 0;
    while (written < frame.length) {
      const { bytesWritten } = await this.handle.write(frame, written, frame.length - written);
      written += bytesWritten;
    }
    if (this.fsync) await this.handle.datasync();
    this.bytes += frame.length;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
