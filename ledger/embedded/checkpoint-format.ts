import { crc32 } from 'node:zlib';
import { type AccountEntry, accountEntry } from './account-table.js';
import { decodeAccountWords, eventSize, wordsOf } from './codec.js';
import type { Expiry } from './expiry-queue.js';

/**
 * The checkpoint file (`ledger.checkpoint`): everything but the append-only columns' bytes.
 *
 * Header (24 bytes): magic u32 "CSK1" | version u32 | body length u64 | crc32(body) u32 | 0 u32.
 * Body, little-endian:
 *   through u64 (the last journal segment the checkpoint holds)
 *   commitTimestamp, expiredThrough, lastTransferTimestamp, lastAccountTimestamp: u64 each
 *   per persisted column (4): count u64 | chunk count u32 | chunk crc32s u32 × chunk count
 *   accounts u32 | accounts × (128-byte account, codec.ts | firstTransfer u32 | lastTransfer u32),
 *     in index (creation) order — the section starts at a multiple of 4 bytes
 *   statuses u64 | statuses × u8
 *   expiries u32 | expiries × (expiresAt u64 | slot u32 | 0 u32)
 *
 * A checkpoint that fails its checksum is corruption (the file is only ever renamed into place
 * complete and fsync'd): opening refuses rather than fall back to a state that may lack
 * acknowledged transfers.
 */

const magic = 0x314b5343; // "CSK1" little-endian
const version = 1;
export const checkpointHeaderSize = 24;
/** Bytes per account in the accounts section. */
export const accountRecordSize = eventSize + 8;

export class CheckpointCorruptError extends Error {
  override readonly name = 'CheckpointCorruptError';
}

/** A persisted column as the checkpoint records it: its length and a crc32 per chunk. */
export interface ColumnMeta {
  count: number;
  crcs: number[];
}

interface CheckpointFields {
  through: number;
  commitTimestamp: bigint;
  expiredThrough: bigint;
  lastTransferTimestamp: bigint;
  lastAccountTimestamp: bigint;
  columns: ColumnMeta[];
  statuses: Buffer;
  expiries: Expiry[];
}

/** What is written: the accounts as their encoded section (checkpoint-accounts.ts). */
export interface CheckpointOut extends CheckpointFields {
  accountsSection: Buffer;
}

/** What is read back: the accounts decoded, and where their section lies in the file. */
export interface CheckpointIn extends CheckpointFields {
  accounts: AccountEntry[];
  accountsOffset: number;
}

/** The file's bytes as a list of buffers (header first), and the file offset of the accounts section. */
export function encodeCheckpoint(c: CheckpointOut): { parts: Buffer[]; accountsOffset: number } {
  const head = Buffer.alloc(8 * 5 + c.columns.reduce((n, m) => n + 12 + 4 * m.crcs.length, 0) + 4);
  let at = writeU64s(head, 0, [BigInt(c.through), c.commitTimestamp, c.expiredThrough, c.lastTransferTimestamp, c.lastAccountTimestamp]);
  for (const m of c.columns) {
    at = writeU64s(head, at, [BigInt(m.count)]);
    at = head.writeUInt32LE(m.crcs.length, at);
    for (const crc of m.crcs) at = head.writeUInt32LE(crc, at);
  }
  head.writeUInt32LE(c.accountsSection.length / accountRecordSize, at);
  const statusCount = Buffer.alloc(8);
  statusCount.writeBigUInt64LE(BigInt(c.statuses.length));
  const body = [head, c.accountsSection, statusCount, c.statuses, encodeExpiries(c.expiries)];
  return { parts: [header(body), ...body], accountsOffset: checkpointHeaderSize + head.length };
}

function writeU64s(buf: Buffer, at: number, values: bigint[]): number {
  for (const v of values) at = buf.writeBigUInt64LE(v, at);
  return at;
}

function encodeExpiries(expiries: readonly Expiry[]): Buffer {
  const buf = Buffer.alloc(4 + expiries.length * 16);
  buf.writeUInt32LE(expiries.length, 0);
  expiries.forEach((e, i) => {
    buf.writeBigUInt64LE(e.expiresAt, 4 + i * 16);
    buf.writeUInt32LE(e.slot, 4 + i * 16 + 8);
  });
  return buf;
}

function header(body: readonly Buffer[]): Buffer {
  let crc = 0;
  let length = 0;
  for (const part of body) {
    crc = crc32(part, crc);
    length += part.length;
  }
  const buf = Buffer.alloc(checkpointHeaderSize);
  buf.writeUInt32LE(magic, 0);
  buf.writeUInt32LE(version, 4);
  buf.writeBigUInt64LE(BigInt(length), 8);
  buf.writeUInt32LE(crc, 16);
  return buf;
}

/** Parses and verifies a checkpoint file's bytes. */
export function decodeCheckpoint(file: Buffer, name: string): CheckpointIn {
  const corrupt = (why: string): CheckpointCorruptError => new CheckpointCorruptError(`${name}: ${why}`);
  if (file.length < checkpointHeaderSize || file.readUInt32LE(0) !== magic) throw corrupt('bad header');
  if (file.readUInt32LE(4) !== version) throw corrupt(`unknown version ${file.readUInt32LE(4)}`);
  if (file.readBigUInt64LE(8) !== BigInt(file.length - checkpointHeaderSize)) throw corrupt('length does not match the file');
  const body = file.subarray(checkpointHeaderSize);
  if (crc32(body) !== file.readUInt32LE(16)) throw corrupt('fails its checksum');
  try {
    return decodeBody(new Reader(body));
  } catch (error) {
    if (error instanceof RangeError) throw corrupt('body does not match its layout');
    throw error;
  }
}

function decodeBody(r: Reader): CheckpointIn {
  const [through, commitTimestamp, expiredThrough, lastTransferTimestamp, lastAccountTimestamp] = [r.u64(), r.u64(), r.u64(), r.u64(), r.u64()];
  const columns: ColumnMeta[] = [];
  for (let i = 0; i < 4; i++) {
    const count = Number(r.u64());
    columns.push({ count, crcs: Array.from({ length: r.u32() }, () => r.u32()) });
  }
  const accountCount = r.u32();
  const accountsOffset = checkpointHeaderSize + r.offset;
  const raw = r.bytes(accountCount * accountRecordSize);
  const section = wordsOf(raw.byteOffset % 4 === 0 ? raw : Buffer.from(raw));
  const accounts = Array.from({ length: accountCount }, (_, i): AccountEntry => {
    const b = (i * accountRecordSize) / 4;
    const transfers = { firstTransfer: section[b + eventSize / 4]!, lastTransfer: section[b + eventSize / 4 + 1]! };
    const a = decodeAccountWords(section, b);
    return accountEntry(a, a.timestamp, i, transfers);
  });
  const statuses = r.bytes(Number(r.u64()));
  const expiries = Array.from({ length: r.u32() }, (): Expiry => {
    const e = { expiresAt: r.u64(), slot: r.u32() };
    r.u32();
    return e;
  });
  if (r.offset !== r.length) throw new RangeError('trailing bytes');
  const scalars = { through: Number(through), commitTimestamp, expiredThrough, lastTransferTimestamp, lastAccountTimestamp };
  return { ...scalars, columns, accounts, accountsOffset, statuses, expiries };
}

/** A cursor over a buffer; reading past its end throws RangeError (Buffer's own check). */
class Reader {
  offset = 0;
  constructor(private readonly buf: Buffer) {}

  get length(): number {
    return this.buf.length;
  }

  u32(): number {
    const v = this.buf.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }

  u64(): bigint {
    const v = this.buf.readBigUInt64LE(this.offset);
    this.offset += 8;
    return v;
  }

  bytes(n: number): Buffer {
    if (this.offset + n > this.buf.length) throw new RangeError('past the end');
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }
}
