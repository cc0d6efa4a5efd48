import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Account, Transfer } from '../model.js';
import { decodeAccountWords, decodeTransferWords, encodeAccountWords, encodeTransferWords, eventSize, eventWords, wordsOf } from './codec.js';
import { fsyncDir, liveJournalName, makePrivateDir, privateFileMode } from './data-dir.js';

/**
 * The embedded engine's append-only journal: one record per create request, written and
 * fdatasync'd before the request is acknowledged, replayed in order on open (after the latest
 * checkpoint: see data-dir.ts for how the journal is split into segments).
 *
 * Record: magic u32 | payload length u32 | crc32(payload) u32 | payload.
 * Payload:  operation u8 (1 accounts, 2 transfers) | 3 zero bytes | event count u32 |
 *           batch timestamp u64 | count × 128-byte events (TigerBeetle layout, see codec.ts).
 *
 * A crash can tear only the last record (records are appended and synced in order). On open, a
 * last record that is incomplete or fails its checksum is cut off: it was never acknowledged. A
 * bad record followed by more data is corruption, not a torn write, and opening fails loudly.
 */

export const journalFileName = liveJournalName;
const magic = 0x314a5343; // "CSJ1" little-endian
const headerSize = 12;
const payloadHeaderSize = 16;
/** Largest payload a record may claim: a full batch of 8189 events plus its header (~1 MiB). */
const payloadMax = payloadHeaderSize + 8189 * eventSize;

export type JournalRecord =
  | { operation: 'accounts'; batchTimestamp: bigint; events: Account[] }
  | { operation: 'transfers'; batchTimestamp: bigint; events: Transfer[] };

export class JournalCorruptError extends Error {
  override readonly name = 'JournalCorruptError';
}

export function encodeRecord(record: JournalRecord): Buffer {
  const count = record.events.length;
  const payloadLength = payloadHeaderSize + count * eventSize;
  const buf = Buffer.allocUnsafe(headerSize + payloadLength);
  const p = headerSize;
  buf.writeUInt8(record.operation === 'accounts' ? 1 : 2, p);
  buf.fill(0, p + 1, p + 4);
  buf.writeUInt32LE(count, p + 4);
  buf.writeBigUInt64LE(record.batchTimestamp, p + 8);
  const w = wordsOf(buf);
  let base = (p + payloadHeaderSize) / 4;
  if (record.operation === 'accounts') {
    for (const a of record.events) encodeAccountWords(w, base, a), (base += eventWords);
  } else {
    for (const t of record.events) encodeTransferWords(w, base, t), (base += eventWords);
  }
  buf.writeUInt32LE(magic, 0);
  buf.writeUInt32LE(payloadLength, 4);
  buf.writeUInt32LE(crc32(buf.subarray(p)), 8);
  return buf;
}

function decodePayload(payload: Buffer): JournalRecord {
  const operation = payload.readUInt8(0);
  const count = payload.readUInt32LE(4);
  const batchTimestamp = payload.readBigUInt64LE(8);
  if (payload.length !== payloadHeaderSize + count * eventSize || (operation !== 1 && operation !== 2)) {
    throw new JournalCorruptError('journal record has a valid checksum but an impossible shape');
  }
  const w = wordsOf(payload);
  if (operation === 1) {
    const events: Account[] = [];
    for (let i = 0; i < count; i++) events.push(decodeAccountWords(w, payloadHeaderSize / 4 + i * eventWords));
    return { operation: 'accounts', batchTimestamp, events };
  }
  const events: Transfer[] = [];
  for (let i = 0; i < count; i++) events.push(decodeTransferWords(w, payloadHeaderSize / 4 + i * eventWords));
  return { operation: 'transfers', batchTimestamp, events };
}

/** What replaying one journal file found. */
export interface Replayed {
  records: number;
  /** Bytes of complete records replayed. */
  bytes: number;
  /** Bytes of a torn tail cut off (live journal only). */
  truncatedBytes: number;
}

/**
 * Reads every complete record of the live journal in `dataDir` in order, cutting off a torn tail.
 */
export function replayJournal(dataDir: string, onRecord: (record: JournalRecord) => void): Replayed {
  makePrivateDir(dataDir);
  return replayJournalFile(join(dataDir, journalFileName), onRecord, { sealed: false });
}

/**
 * Reads every record of a journal file in order. The live journal's torn tail (a crash mid-append:
 * never acknowledged) is cut off; a sealed segment was complete and durable when it was sealed,
 * so any bad record in it is corruption.
 */
export function replayJournalFile(path: string, onRecord: (record: JournalRecord) => void, options: { sealed: boolean }): Replayed {
  const fd = openSync(path, options.sealed ? 'r' : 'a+', privateFileMode);
  try {
    const size = fstatSync(fd).size;
    const header = Buffer.alloc(headerSize);
    let offset = 0;
    let records = 0;
    while (offset < size) {
      const bad = readRecordAt(fd, offset, size, header);
      if (typeof bad === 'string') {
        if (options.sealed) throw new JournalCorruptError(`sealed journal segment ${path} is torn at byte ${offset}: ${bad}`);
        ftruncateSync(fd, offset);
        fsyncSync(fd);
        return { records, bytes: offset, truncatedBytes: size - offset };
      }
      onRecord(decodePayload(bad));
      offset += headerSize + bad.length;
      records += 1;
    }
    return { records, bytes: offset, truncatedBytes: 0 };
  } finally {
    closeSync(fd);
  }
}

/** The record's payload, or why the tail at `offset` is torn. Throws on mid-file corruption. */
function readRecordAt(fd: number, offset: number, size: number, header: Buffer): Buffer | string {
  if (size - offset < headerSize) return 'incomplete header';
  readSync(fd, header, 0, headerSize, offset);
  const length = header.readUInt32LE(4);
  const end = offset + headerSize + length;
  const last = end >= size;
  if (header.readUInt32LE(0) !== magic || length > payloadMax || length < payloadHeaderSize) {
    // A torn append leaves our own header (valid magic) or blocks the file system zero-filled.
    // Anything else is corruption: never cut off data that may hold acknowledged records.
    if (zerosToEnd(fd, offset, size)) return 'bad header (zero-filled tail)';
    throw new JournalCorruptError(`journal record at byte ${offset} has a bad header and data follows it`);
  }
  if (end > size) return 'incomplete payload';
  const payload = Buffer.allocUnsafe(length);
  readSync(fd, payload, 0, length, offset + headerSize);
  if (crc32(payload) !== header.readUInt32LE(8)) {
    if (last) return 'bad checksum';
    throw new JournalCorruptError(`journal record at byte ${offset} fails its checksum and data follows it`);
  }
  return payload;
}

/** True when every byte from `offset` to `size` is zero (read in 64 KiB steps, at most one record's worth). */
function zerosToEnd(fd: number, offset: number, size: number): boolean {
  if (size - offset > headerSize + payloadMax) return false;
  const chunk = Buffer.alloc(64 * 1024);
  for (let at = offset; at < size; at += chunk.length) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
    for (let i = 0; i < n; i++) if (chunk[i] !== 0) return false;
  }
  return true;
}

export class JournalLockedError extends Error {
  override readonly name = 'JournalLockedError';
}

/**
 * One process at a time per data directory: a `LOCK` file holding the owner's pid, created
 * exclusively; a lock whose process is gone (crashed, killed) is taken over. Returns the release.
 */
export function lockDataDir(dataDir: string): () => void {
  makePrivateDir(dataDir);
  const path = join(dataDir, 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', privateFileMode);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
        throw new JournalLockedError(`data directory ${dataDir} is in use by process ${owner}`);
      }
      rmSync(path, { force: true }); // stale: its process is gone
    }
  }
  throw new JournalLockedError(`could not lock data directory ${dataDir}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The journal's write side: appends records and makes them durable before returning. */
export class JournalWriter {
  private constructor(
    private readonly handle: FileHandle,
    private readonly fsync: boolean,
    /** Bytes in the live journal file (what a restart would replay of it). */
    public bytes: number,
  ) {}

  static async open(dataDir: string, options: { fsync: boolean }): Promise<JournalWriter> {
    const handle = await open(join(dataDir, journalFileName), 'a', privateFileMode);
    if (options.fsync) {
      await handle.datasync();
      fsyncDir(dataDir); // make the file's directory entry durable too
    }
    return new JournalWriter(handle, options.fsync, (await handle.stat()).size);
  }

  /** Appends the records in one write and one fdatasync. */
  async append(records: readonly Buffer[]): Promise<void> {
    const buf = records.length === 1 ? records[0]! : Buffer.concat(records);
    let written = 0;
    while (written < buf.length) {
      const { bytesWritten } = await this.handle.write(buf, written, buf.length - written);
      written += bytesWritten;
    }
    this.bytes += buf.length;
    if (this.fsync) await this.handle.datasync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
