import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { unreachable } from '../../../ledger/assert.js';

/**
 * The framing shared by journal segments and checkpoints: every write is one frame.
 *
 *   magic u32 LE (bytes ff 63 73 70) | payload length u32 LE | crc32(payload) u32 LE | crc32(bytes 0..11) u32 LE | payload
 *
 * The header checks itself, so a length is trusted only when its header is intact. Payloads are
 * binary (mutation-codec.ts) and may hold the magic's bytes; what looks like an intact frame
 * inside a torn tail must also pass two CRC-32s (header and payload), about 2^-64 per position by
 * chance, and the only effect of such a match is that open refuses (it never drops data).
 */

export const frameHeaderBytes = 16;
/** Largest payload a frame may carry, bytes (a checkpoint chunk or a group of passes is far smaller). */
export const framePayloadBytesMax = 64 * 2 ** 20;
const magic = 0x707363ff;
/** Bytes a reader fetches from disk at once, so small frames cost no syscall each. */
const readWindowBytes = 8 * 2 ** 20;

export class JournalCorruptError extends Error {
  override readonly name: string = 'JournalCorruptError';
}

export function encodeFrame(payload: Buffer): Buffer {
  return encodeFrameOf([payload]);
}

/** One frame whose payload is `parts` back to back (one copy of each). */
export function encodeFrameOf(parts: readonly Buffer[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  if (length < 1 || length > framePayloadBytesMax) unreachable(`a frame payload is 1..${framePayloadBytesMax} bytes, not ${length}`);
  const frame = Buffer.allocUnsafe(frameHeaderBytes + length);
  let at = frameHeaderBytes;
  for (const part of parts) at += part.copy(frame, at);
  frame.writeUInt32LE(magic, 0);
  frame.writeUInt32LE(length, 4);
  frame.writeUInt32LE(crc32(frame.subarray(frameHeaderBytes)), 8);
  frame.writeUInt32LE(crc32(frame.subarray(0, 12)), 12);
  return frame;
}

/** The payload length a header at `at` declares, or undefined when the header is not intact. */
function headerLength(buf: Buffer, at: number): number | undefined {
  if (buf.length - at < frameHeaderBytes || buf.readUInt32LE(at) !== magic) return undefined;
  if (crc32(buf.subarray(at, at + 12)) !== buf.readUInt32LE(at + 12)) return undefined;
  const length = buf.readUInt32LE(at + 4);
  return length >= 1 && length <= framePayloadBytesMax ? length : undefined;
}

export interface FrameScan {
  frames: number;
  /** Bytes of whole frames read (where the file is cut when its tail is torn). */
  goodBytes: number;
  /** Bytes after the last whole frame: a torn write (only allowed when `tornTailAllowed`). */
  tornBytes: number;
}

/**
 * Calls `onFrame` with each frame's payload in order (the buffer is reused afterwards: decode it
 * at once). A bad spot — a short or broken header, a short payload, a payload failing its
 * checksum — ends the scan:
 * - when `tornTailAllowed` and nothing after it could be an acknowledged frame (at most one
 *   frame's worth of bytes remain and no intact frame starts anywhere in them), it is a torn last
 *   write: reported in `tornBytes`, for the caller to cut;
 * - otherwise it is corruption followed by data, and the scan throws JournalCorruptError.
 */
export function scanFrames(path: string, tornTailAllowed: boolean, onFrame: (payload: Buffer, offset: number) => void): FrameScan {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const reader = new WindowReader(fd, size);
    let offset = 0;
    let frames = 0;
    while (offset < size) {
      const payload = frameAt(reader, offset, size);
      if (typeof payload === 'string') {
        if (!tornTailAllowed) throw new JournalCorruptError(`${path}: ${payload} at byte ${offset} of ${size}`);
        assertTornTail(path, reader, offset, size, payload);
        return { frames, goodBytes: offset, tornBytes: size - offset };
      }
      onFrame(payload, offset);
      offset += frameHeaderBytes + payload.length;
      frames += 1;
    }
    return { frames, goodBytes: offset, tornBytes: 0 };
  } finally {
    closeSync(fd);
  }
}

/** The payload of the frame at `offset`, or what is wrong with it. */
function frameAt(reader: WindowReader, offset: number, size: number): Buffer | string {
  if (size - offset < frameHeaderBytes) return 'a short header';
  const header = reader.bytes(offset, frameHeaderBytes);
  const length = headerLength(header, 0);
  if (length === undefined) return 'a broken header';
  if (offset + frameHeaderBytes + length > size) return 'a short payload';
  const crc = header.readUInt32LE(8);
  const payload = reader.bytes(offset + frameHeaderBytes, length);
  return crc32(payload) === crc ? payload : 'a payload failing its checksum';
}

/** A torn write leaves at most one frame's bytes and no intact frame after the bad spot; anything else is corruption. */
function assertTornTail(path: string, reader: WindowReader, offset: number, size: number, why: string): void {
  const rest = size - offset;
  if (rest > frameHeaderBytes + framePayloadBytesMax) {
    throw new JournalCorruptError(`${path}: ${why} at byte ${offset}, and ${rest} bytes follow: more than one torn write can leave`);
  }
  const tail = Buffer.from(reader.bytes(offset, rest));
  const magicByte = magic & 0xff;
  for (let at = tail.indexOf(magicByte, 1); at >= 0; at = tail.indexOf(magicByte, at + 1)) {
    const length = headerLength(tail, at);
    if (length === undefined || at + frameHeaderBytes + length > tail.length) continue;
    if (crc32(tail.subarray(at + frameHeaderBytes, at + frameHeaderBytes + length)) === tail.readUInt32LE(at + 8)) {
      throw new JournalCorruptError(`${path}: ${why} at byte ${offset}, and an intact frame follows at byte ${offset + at}`);
    }
  }
}

/** Reads a file through one window of `readWindowBytes`, refilled as the reader moves on. */
class WindowReader {
  private buffer = Buffer.alloc(0);
  private start = 0;
  private filled = 0;

  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {}

  /** `length` bytes at `offset` (valid until the next call). */
  bytes(offset: number, length: number): Buffer {
    if (offset < this.start || offset + length > this.start + this.filled) this.fill(offset, length);
    return this.buffer.subarray(offset - this.start, offset - this.start + length);
  }

  private fill(offset: number, length: number): void {
    const want = Math.min(Math.max(length, readWindowBytes), this.size - offset);
    if (this.buffer.length < want) this.buffer = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const n = readSync(this.fd, this.buffer, got, want - got, offset + got);
      if (n === 0) throw new JournalCorruptError(`file shrank while being read at byte ${offset + got}`);
      got += n;
    }
    this.start = offset;
    this.filled = want;
  }
}
