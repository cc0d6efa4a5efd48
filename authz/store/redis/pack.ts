/**
 * An item's script arguments as ONE argument: its strings one after another in MessagePack (each
 * a `str` object: fixstr, str 8, 16 or 32), which the script turns back into a table of the same
 * strings with `{ cmsgpack.unpack(ARGV[n]) }` (Redis's Lua has cmsgpack built in). ARGV entries
 * are strings, and so is every value here (numbers are written as their decimal text): the
 * scripts read them exactly as they read ARGV.
 *
 * Why: ioredis builds each argument of a command in JavaScript (flattening the array, a `$len`
 * header and a string concatenation per argument, then the whole rope written to the socket);
 * a 1 000-item create carried about 52 000 arguments and the client spent more on them than on
 * the rest of the step. Packed, an item is its keys and one argument (bench/README.md, round 5).
 */
export function packStrings(values: readonly (string | number)[]): PackedArg {
  let out = '';
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    // A number's text is ASCII: only strings need wireText's scan (about 60 ns each).
    const text = typeof value === 'string' ? wireText(value) : String(value);
    const n = text.length; // bytes: one char per byte
    if (n < 32) out += String.fromCharCode(0xa0 | n);
    else if (n < 0x100) out += String.fromCharCode(0xd9, n);
    else if (n < 0x10000) out += String.fromCharCode(0xda, n >>> 8, n & 0xff);
    else out += String.fromCharCode(0xdb, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
    out += text;
  }
  return new PackedArg(out);
}

/** The largest position `withPositions` writes (uint 16); a call's KEYS are fewer (batch.ts `scriptArgumentsMax`). */
export const packedPositionMax = 0xffff;

/**
 * `packed` followed by `positions` as MessagePack unsigned integers (positive fixint, uint 8 or
 * uint 16): `cmsgpack.unpack` gives the script Lua numbers, no string to make per value.
 */
export function withPositions(packed: PackedArg, positions: readonly number[]): PackedArg {
  let out = packed.bytes;
  for (const n of positions) {
    if (!(Number.isSafeInteger(n) && n >= 0 && n <= packedPositionMax)) throw new RangeError(`a position must be 0..${packedPositionMax}, not ${n}`);
    if (n < 0x80) out += String.fromCharCode(n);
    else if (n < 0x100) out += String.fromCharCode(0xcc, n);
    else out += String.fromCharCode(0xcd, n >>> 8, n & 0xff);
  }
  return new PackedArg(out);
}

/**
 * A packed argument as a byte string (one char per byte, 0–255): the step scripts' wire command
 * (redis-scripts.ts) is built as one such string and turned into bytes by ONE `latin1` write,
 * instead of a `Buffer.byteLength` and a `write` per string (4.3 → 2.2 µs for a create item,
 * tight loop).
 */
export class PackedArg {
  constructor(readonly bytes: string) {}

  toBuffer(): Buffer {
    return Buffer.from(this.bytes, 'latin1');
  }
}

const nonAscii = /[\u0080-\uffff]/;

/** The bytes Redis receives for `text` (its UTF-8), as a byte string: ASCII (every id, key, number and state here) is itself. */
export function wireText(text: string): string {
  return nonAscii.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}

/** A script's reply as `cmsgpack.pack` made it: nested arrays of strings (and numbers, booleans, nil). */
/** Arrays nested in a packed reply, at most: Redis's cmsgpack packs no deeper (LUACMSGPACK_MAX_NESTING); the steps answer 3. */
export const packedReplyDepthMax = 16;

export type PackedReply = string | number | boolean | null | PackedReply[];

/**
 * The reply of a step script that ends in `return cmsgpack.pack(out)` (fetched as a Buffer), as
 * the nested arrays ioredis would have made of `return out`: strings UTF-8 decoded, integers and
 * floats as numbers. Why: a 1 000-item confirm answers about 37 000 strings; as RESP, ioredis
 * parses each one (22–32 µs per item) and redis-server writes each (5.2 µs per item); packed,
 * one bulk string, 7.7–11 and 2.6–3.9 µs (bench/README.md, round 6). A map (a Lua table with
 * other keys than 1..n) is refused: no step answers one.
 */
export function unpackReply(buf: Buffer): PackedReply {
  const reader = { at: 0, depth: 0 };
  const value = readValue(buf, reader);
  if (reader.at !== buf.length) throw broken(`has ${buf.length - reader.at} bytes after its value`);
  return value;
}

function readValue(buf: Buffer, r: Reader): PackedReply {
  if (r.at >= buf.length) throw broken('ends inside a value');
  const b = buf[r.at++]!;
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b >= 0xa0 && b <= 0xbf) return readString(buf, r, b & 0x1f);
  if (b >= 0x90 && b <= 0x9f) return readArray(buf, r, b & 0x0f);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xd9:
      return readString(buf, r, readUint(buf, r, 1));
    case 0xda:
      return readString(buf, r, readUint(buf, r, 2));
    case 0xdb:
      return readString(buf, r, readUint(buf, r, 4));
    case 0xdc:
      return readArray(buf, r, readUint(buf, r, 2));
    case 0xdd:
      return readArray(buf, r, readUint(buf, r, 4));
    default: {
      const number = packedNumbers.get(b);
      if (number === undefined) throw broken(`has type byte 0x${b.toString(16)}, which no step answers (a map or binary)`);
      if (r.at + number.bytes > buf.length) throw broken('ends inside a value');
      const value = number.read(buf, r.at);
      r.at += number.bytes;
      return value;
    }
  }
}

/** MessagePack's fixed-width numbers (uint 8–64, int 8–64, float 32/64): their width and reader, by type byte. */
const packedNumbers = new Map<number, { bytes: number; read: (buf: Buffer, at: number) => number }>([
  [0xcc, { bytes: 1, read: (buf, at) => buf.readUInt8(at) }],
  [0xcd, { bytes: 2, read: (buf, at) => buf.readUInt16BE(at) }],
  [0xce, { bytes: 4, read: (buf, at) => buf.readUInt32BE(at) }],
  [0xcf, { bytes: 8, read: (buf, at) => Number(buf.readBigUInt64BE(at)) }],
  [0xd0, { bytes: 1, read: (buf, at) => buf.readInt8(at) }],
  [0xd1, { bytes: 2, read: (buf, at) => buf.readInt16BE(at) }],
  [0xd2, { bytes: 4, read: (buf, at) => buf.readInt32BE(at) }],
  [0xd3, { bytes: 8, read: (buf, at) => Number(buf.readBigInt64BE(at)) }],
  [0xca, { bytes: 4, read: (buf, at) => buf.readFloatBE(at) }],
  [0xcb, { bytes: 8, read: (buf, at) => buf.readDoubleBE(at) }],
]);

/**
 * A reply no step script makes is a bug in a script, not an outage: an "assertion failed" error
 * (the port's programmer error, INTERNAL), which `scripts.ts` passes on unchanged rather than as
 * `StoreUnavailableError` (UNAVAILABLE, which asks the caller to retry).
 */
function broken(what: string): Error {
  return new BrokenReplyError(`assertion failed: a packed script reply ${what}`);
}

class BrokenReplyError extends Error {
  override readonly name = 'Error';
}

/** Whether `err` is `unpackReply`'s refusal of a reply (`scripts.ts` passes it on as the programmer error it is). */
export function isBrokenReply(err: unknown): boolean {
  return err instanceof BrokenReplyError;
}

function readUint(buf: Buffer, r: Reader, bytes: 1 | 2 | 4): number {
  if (r.at + bytes > buf.length) throw broken('ends inside a value');
  const value = bytes === 1 ? buf[r.at]! : buf.readUIntBE(r.at, bytes);
  r.at += bytes;
  return value;
}

function readString(buf: Buffer, r: Reader, length: number): string {
  const end = r.at + length;
  if (end > buf.length) throw broken('ends inside a string');
  const text = buf.toString('utf8', r.at, end);
  r.at = end;
  return text;
}

interface Reader {
  at: number;
  depth: number;
}

function readArray(buf: Buffer, r: Reader, length: number): PackedReply[] {
  // Every element takes a byte at least: a length past the end is a broken reply, refused before allocating.
  if (length > buf.length - r.at) throw broken(`announces ${length} elements in ${buf.length - r.at} bytes`);
  if (++r.depth > packedReplyDepthMax) throw broken(`nests arrays deeper than ${packedReplyDepthMax}`);
  const out = new Array<PackedReply>(length);
  for (let i = 0; i < length; i++) out[i] = readValue(buf, r);
  r.depth--;
  return out;
}
