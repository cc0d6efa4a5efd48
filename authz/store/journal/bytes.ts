import { unreachable } from '../../../ledger/assert.js';
import { JournalCorruptError } from './frame.js';

/**
 * The byte-level encoding under the mutation codec: varints, signed integers, bigints and
 * strings, with an optional string dictionary (checkpoints).
 *
 *   uint     LEB128, 7 bits a byte, low group first; 0 ≤ n ≤ 2^53 − 1
 *   int      zigzag (n ≥ 0 → 2n, n < 0 → −2n − 1) as a uint; |n| < 2^52
 *   bigint   a uint h: h even → the value h / 2 (values < 2^52); h odd → (h − 1) / 2 bytes of
 *            decimal ASCII digits follow (larger values); never negative
 *   string   a uint h whose low 3 bits say what follows, h >> 3 being n:
 *              0  n bytes of UTF-8
 *              1  n bytes whose lowercase hex is the string (ids, digests: half the bytes)
 *              2  dictionary entry n (defined earlier in the same stream)
 *              3  as 0, and the string becomes the next dictionary entry
 *              4  as 1, and the string becomes the next dictionary entry
 *              5  n bytes of JSON: a string with a lone surrogate, which UTF-8 cannot carry
 *
 * A checkpoint is one dictionary stream (its frames are read in order); a journal frame uses no
 * dictionary (any frame may be the first one read), so kinds 2..4 in it are corruption.
 */

const kindUtf8 = 0;
const kindHex = 1;
const kindRef = 2;
const kindUtf8Define = 3;
const kindHexDefine = 4;
const kindJson = 5;

/** Strings up to this many characters are worth a dictionary entry (ids, enums, short results); longer ones are written inline. */
export const dictionaryStringCharsMax = 40;
/** `int` takes integers of magnitude below this (beyond, zigzag would leave the safe integers). */
const intAbsLimit = 2 ** 52;
const bigintSmallMax = 2n ** 52n;
const lowerHex = /^(?:[0-9a-f]{2})+$/;
const decimal = /^\d+$/;

/** ES2024's String.prototype.isWellFormed (Node ≥ 20), not in this project's ES2022 lib. */
interface WellFormed {
  isWellFormed(): boolean;
}

/** Buffer's own slicing and writing methods (Node's Buffer.prototype), without toString's argument handling per call. */
interface FastBuffer extends Buffer {
  utf8Slice(start: number, end: number): string;
  hexSlice(start: number, end: number): string;
  utf8Write(text: string, offset: number, length?: number): number;
  hexWrite(text: string, offset: number, length?: number): number;
}

for (const method of ['utf8Slice', 'hexSlice', 'utf8Write', 'hexWrite']) {
  if (typeof (Buffer.prototype as unknown as Record<string, unknown>)[method] !== 'function') unreachable(`this Node has no Buffer.prototype.${method}`);
}

/** The strings a checkpoint's writer has put in its dictionary, at most `entriesMax` (then strings are written inline). */
export class StringDictionary {
  private readonly ids = new Map<string, number>();

  constructor(private readonly entriesMax: number) {}

  /** The entry of `text`, or -1 after adding it (the caller writes a define), or -2 when full. */
  lookup(text: string): number {
    const id = this.ids.get(text);
    if (id !== undefined) return id;
    if (this.ids.size >= this.entriesMax) return -2;
    this.ids.set(text, this.ids.size);
    return -1;
  }

  get size(): number {
    return this.ids.size;
  }
}

/** A growable byte buffer written front to back. */
export class ByteWriter {
  private buf: FastBuffer;
  length = 0;

  constructor(
    initialBytes: number,
    /** Present for a checkpoint: short strings are written once and referred to after. */
    readonly dictionary: StringDictionary | undefined = undefined,
  ) {
    this.buf = Buffer.allocUnsafe(initialBytes) as FastBuffer;
  }

  /** The bytes written so far (a view: valid until the next write or reset). */
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  /** The bytes written since `from`, copied out. */
  copyFrom(from: number): Buffer {
    const out = Buffer.allocUnsafe(this.length - from);
    this.buf.copy(out, 0, from, this.length);
    return out;
  }

  reset(): void {
    this.length = 0;
  }

  /** Drops what was written after `length` (a mutation that failed half way). */
  truncate(length: number): void {
    this.length = length;
  }

  private room(bytes: number): void {
    if (this.length + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + bytes)) as FastBuffer;
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(byte: number): void {
    this.room(1);
    this.buf[this.length++] = byte;
  }

  uint(n: number): void {
    if (!(Number.isSafeInteger(n) && n >= 0)) unreachable(`a journal uint is a safe integer ≥ 0, not ${n}`);
    this.room(8);
    const buf = this.buf;
    let at = this.length;
    while (n > 0x7fffffff) {
      buf[at++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    while (n > 0x7f) {
      buf[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[at++] = n;
    this.length = at;
  }

  int(n: number): void {
    if (!(Number.isInteger(n) && Math.abs(n) < intAbsLimit)) unreachable(`a journal int is an integer of magnitude < 2^52, not ${n}`);
    this.uint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  /** An optional integer: 0 for undefined, else the int plus one. */
  optInt(n: number | undefined): void {
    if (n === undefined) this.u8(0);
    else {
      if (!(Number.isInteger(n) && Math.abs(n) < intAbsLimit)) unreachable(`a journal int is an integer of magnitude < 2^52, not ${n}`);
      this.uint((n >= 0 ? n * 2 : -n * 2 - 1) + 1);
    }
  }

  bigint(v: bigint): void {
    if (typeof v !== 'bigint' || v < 0n) unreachable(`a journal bigint is a bigint ≥ 0, not ${String(v)}`);
    if (v < bigintSmallMax) return this.uint(Number(v) * 2);
    const digits = v.toString(10);
    this.uint(digits.length * 2 + 1);
    this.room(digits.length);
    this.length += this.buf.utf8Write(digits, this.length);
  }

  /** A string written inline as UTF-8 (as JSON when it holds a lone surrogate: exact either way). */
  str(text: string): void {
    if (typeof text !== 'string') unreachable(`a journal string field holds a ${typeof text}`);
    if ((text as unknown as WellFormed).isWellFormed()) this.utf8(text, kindUtf8);
    else this.utf8(JSON.stringify(text), kindJson);
  }

  /** A string usually of lowercase hex digits (an id, a digest): as its bytes when it is, else as `str`. */
  hexStr(text: string): void {
    if (typeof text !== 'string') unreachable(`a journal string field holds a ${typeof text}`);
    if (lowerHex.test(text)) this.hex(text, kindHex);
    else this.str(text);
  }

  /** A string likely to repeat (an id of a merchant or payer, a state, a factor): through the dictionary when there is one. */
  shared(text: string): void {
    const dictionary = this.dictionary;
    if (dictionary === undefined || typeof text !== 'string' || text.length > dictionaryStringCharsMax || !(text as unknown as WellFormed).isWellFormed())
      return this.hexStr(text);
    const id = dictionary.lookup(text);
    if (id >= 0) return this.uint(id * 8 + kindRef);
    if (id === -2) return this.hexStr(text);
    if (lowerHex.test(text)) this.hex(text, kindHexDefine);
    else this.utf8(text, kindUtf8Define);
  }

  private hex(text: string, kind: number): void {
    const bytes = text.length / 2;
    this.uint(bytes * 8 + kind);
    this.room(bytes);
    this.length += this.buf.hexWrite(text, this.length, bytes);
  }

  /** UTF-8 after a length header sized for the worst case (3 bytes a UTF-16 unit), moved back when the header came out shorter. */
  private utf8(text: string, kind: number): void {
    const reserved = uintBytes(text.length * 3 * 8 + kind);
    this.room(8 + text.length * 3); // the header's uint() below must not grow (and so move) the buffer
    const start = this.length + reserved;
    const written = this.buf.utf8Write(text, start);
    const header = written * 8 + kind;
    const used = uintBytes(header);
    if (used < reserved) this.buf.copyWithin(this.length + used, start, start + written);
    this.uint(header);
    this.length += written;
  }
}

function uintBytes(n: number): number {
  if (n < 2 ** 7) return 1;
  if (n < 2 ** 14) return 2;
  if (n < 2 ** 21) return 3;
  if (n < 2 ** 28) return 4;
  let bytes = 5;
  for (let limit = 2 ** 35; n >= limit; limit *= 2 ** 7) bytes += 1;
  return bytes;
}

/** Reads what ByteWriter wrote. Any malformation throws JournalCorruptError. */
export class ByteReader {
  pos: number;
  private readonly buf: FastBuffer;

  constructor(
    buf: Buffer,
    /** The stream's dictionary (a checkpoint's), grown by the defines read; undefined in the journal. */
    private readonly dictionary: string[] | undefined,
    pos = 0,
    readonly end = buf.length,
  ) {
    this.buf = buf as FastBuffer;
    this.pos = pos;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  u8(): number {
    if (this.pos >= this.end) throw this.short();
    return this.buf[this.pos++]!;
  }

  uint(): number {
    const buf = this.buf;
    let at = this.pos;
    if (at >= this.end) throw this.short();
    let byte = buf[at++]!;
    if (byte < 0x80) {
      this.pos = at;
      return byte;
    }
    let n = byte & 0x7f;
    let scale = 0x80;
    for (;;) {
      if (at >= this.end) throw this.short();
      byte = buf[at++]!;
      n += (byte & 0x7f) * scale;
      if (byte < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 49) throw new JournalCorruptError(`a varint longer than 53 bits at byte ${this.pos}`);
    }
    if (n > Number.MAX_SAFE_INTEGER) throw new JournalCorruptError(`a varint beyond 2^53 at byte ${this.pos}`);
    this.pos = at;
    return n;
  }

  int(): number {
    const z = this.uint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  optInt(): number | undefined {
    const z = this.uint();
    if (z === 0) return undefined;
    return z % 2 === 1 ? (z - 1) / 2 : -z / 2;
  }

  bigint(): bigint {
    const h = this.uint();
    if (h % 2 === 0) return h < smallBigints.length * 2 ? smallBigints[h / 2]! : BigInt(h / 2);
    const length = (h - 1) / 2;
    const digits = this.buf.utf8Slice(this.pos, this.take(length));
    if (!decimal.test(digits)) throw new JournalCorruptError(`a bigint that is not decimal digits: ${digits.slice(0, 40)}`);
    return BigInt(digits);
  }

  str(): string {
    return this.strOf(this.uint());
  }

  /**
   * A string the writer wrote with `shared`: a dictionary entry, or — written inline, as in every
   * journal frame — looked up by its bytes in the recent strings (`recentStrings`), so repeated
   * ids, states and currencies are one string each and cost no allocation.
   */
  shared(): string {
    const h = this.uint();
    const kind = h % 8;
    const n = Math.floor(h / 8);
    if ((kind !== kindUtf8 && kind !== kindHex) || n > recentStringBytesMax) return this.strOf(h);
    const start = this.pos;
    const end = this.take(n);
    return (
      recentStrings.get(this.buf, start, end, kind) ??
      recentStrings.put(this.buf, start, end, kind, kind === kindHex ? this.buf.hexSlice(start, end) : this.buf.utf8Slice(start, end))
    );
  }

  private strOf(h: number): string {
    const n = Math.floor(h / 8);
    switch (h % 8) {
      case kindUtf8:
        return this.buf.utf8Slice(this.pos, this.take(n));
      case kindHex:
        return this.buf.hexSlice(this.pos, this.take(n));
      case kindRef: {
        const text = this.dictionary?.[n];
        if (text === undefined)
          throw new JournalCorruptError(
            `a string refers to dictionary entry ${n}, which ${this.dictionary === undefined ? 'a journal frame cannot have' : 'is not defined'}`,
          );
        return text;
      }
      case kindUtf8Define:
        return this.define(this.buf.utf8Slice(this.pos, this.take(n)));
      case kindHexDefine:
        return this.define(this.buf.hexSlice(this.pos, this.take(n)));
      case kindJson: {
        const json = this.buf.utf8Slice(this.pos, this.take(n));
        let text: unknown;
        try {
          text = JSON.parse(json);
        } catch (cause) {
          throw new JournalCorruptError(`a JSON string that does not parse: ${json.slice(0, 40)}`, { cause });
        }
        if (typeof text !== 'string') throw new JournalCorruptError(`a JSON string that is not a string: ${json.slice(0, 40)}`);
        return text;
      }
      default:
        throw new JournalCorruptError(`a string of unknown kind ${h % 8} at byte ${this.pos}`);
    }
  }

  private define(text: string): string {
    if (this.dictionary === undefined) throw new JournalCorruptError('a journal frame defines a dictionary string (only checkpoints have a dictionary)');
    this.dictionary.push(text);
    return text;
  }

  /** Moves past `n` bytes; returns where they end. */
  private take(n: number): number {
    const start = this.pos;
    if (n > this.end - start) throw this.short();
    this.pos = start + n;
    return this.pos;
  }

  private short(): JournalCorruptError {
    return new JournalCorruptError(`a payload ends inside a value (byte ${this.pos} of ${this.end})`);
  }
}

/** Bigints below this are shared (fees, small amounts): one object each instead of one per payment. */
const smallBigints = Array.from({ length: 1024 }, (_, i) => BigInt(i));

/** Strings of at most this many bytes are looked up among the recent ones. */
const recentStringBytesMax = 32;
const recentSlots = 4096;

/**
 * The strings decoded recently from short `shared` fields, by their bytes: a direct-mapped table
 * (FNV-1a of kind and bytes picks the slot; a collision replaces). Only an optimization: a miss
 * decodes the string as usual. One table for the process (strings are immutable).
 */
class RecentStrings {
  private readonly strings: (string | undefined)[] = new Array<string | undefined>(recentSlots).fill(undefined);
  private readonly lengths = new Int16Array(recentSlots).fill(-1);
  private readonly kinds = new Uint8Array(recentSlots);
  private readonly bytes = new Uint8Array(recentSlots * recentStringBytesMax);

  get(buf: Buffer, start: number, end: number, kind: number): string | undefined {
    const slot = slotOf(buf, start, end, kind);
    const n = end - start;
    if (this.lengths[slot] !== n || this.kinds[slot] !== kind) return undefined;
    const base = slot * recentStringBytesMax;
    for (let i = 0; i < n; i++) if (this.bytes[base + i] !== buf[start + i]) return undefined;
    return this.strings[slot];
  }

  put(buf: Buffer, start: number, end: number, kind: number, text: string): string {
    const slot = slotOf(buf, start, end, kind);
    this.strings[slot] = text;
    this.lengths[slot] = end - start;
    this.kinds[slot] = kind;
    this.bytes.set(buf.subarray(start, end), slot * recentStringBytesMax);
    return text;
  }
}

function slotOf(buf: Buffer, start: number, end: number, kind: number): number {
  let h = Math.imul(0x811c9dc5 ^ kind, 0x01000193);
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return (h ^ (h >>> 15)) & (recentSlots - 1);
}

const recentStrings = new RecentStrings();
