import { assert } from '../assert.js';

/**
 * A growable array of fixed-width records kept off the JS heap, in chunks of `chunkRecords`
 * records. Chunks are allocated as the column grows and never move, so a record's bytes stay
 * where they are: a checkpoint can write a prefix of the column from another async task while
 * new records are appended after it.
 *
 * `truncate` (used to undo a broken linked chain) only moves `count` back; the bytes past it are
 * overwritten by the next appends.
 *
 * A column whose records are also in a file can drop its full chunks from memory
 * (`evictBelow`): the balance history does, since only `get_account_balances` reads it back.
 */

/** Records per chunk (2^15): 4 MiB chunks for 128-byte transfers, 128 KiB for u32 columns. */
export const chunkShift = 15;
export const chunkRecords = 1 << chunkShift;
export const chunkMask = chunkRecords - 1;

/** What an evicted chunk is replaced by: reading it is a bug (check `isResident`). */
const evictedChunk = Buffer.alloc(0);
const evictedWords = new Uint32Array(0);

export class Column {
  readonly chunks: Buffer[] = [];
  /** u32 views of the chunks (for widths that are a multiple of 4). */
  readonly words: Uint32Array[] = [];
  count = 0;
  /** Chunks below this index are not in memory (see `evictBelow`). */
  private residentFrom = 0;

  constructor(
    /** Bytes per record. */
    readonly width: number,
  ) {
    assert(Number.isInteger(width) && width > 0, 'a column width is a positive integer of bytes');
  }

  /** Appends one record (its bytes are whatever the slot held before: the caller writes them all). */
  push(): number {
    const slot = this.count;
    if (slot >>> chunkShift === this.chunks.length) this.addChunk();
    this.count = slot + 1;
    return slot;
  }

  /** Makes the column exactly `count` records long, allocating chunks as needed (used when loading). */
  resize(count: number): void {
    while (this.chunks.length * chunkRecords < count) this.addChunk();
    this.count = count;
  }

  /** Like `resize`, but with every full chunk evicted: only the chunk `count` falls in is allocated. */
  resizeEvicted(count: number): void {
    assert(this.count === 0, 'resizeEvicted on a column in use');
    while ((this.chunks.length + 1) * chunkRecords <= count) this.chunks.push(evictedChunk), this.words.push(evictedWords);
    this.residentFrom = this.chunks.length;
    this.resize(count);
  }

  truncate(count: number): void {
    assert(count >= this.residentFrom * chunkRecords && count <= this.count, `truncate to ${count} of ${this.count}`);
    this.count = count;
  }

  /** Drops from memory the chunks that lie wholly below `count` (their records are on disk). */
  evictBelow(count: number): void {
    const below = Math.min(Math.floor(count / chunkRecords), Math.floor(this.count / chunkRecords));
    for (let c = this.residentFrom; c < below; c++) {
      this.chunks[c] = evictedChunk;
      this.words[c] = evictedWords;
    }
    this.residentFrom = Math.max(this.residentFrom, below);
  }

  isResident(slot: number): boolean {
    return slot >>> chunkShift >= this.residentFrom;
  }

  chunk(slot: number): Buffer {
    return this.chunks[slot >>> chunkShift]!;
  }

  offset(slot: number): number {
    return (slot & chunkMask) * this.width;
  }

  /** The `k`-th u32 of the record at `slot`. */
  word(slot: number, k: number): number {
    return this.words[slot >>> chunkShift]![(slot & chunkMask) * (this.width >>> 2) + k]!;
  }

  setWord(slot: number, k: number, value: number): void {
    this.words[slot >>> chunkShift]![(slot & chunkMask) * (this.width >>> 2) + k] = value;
  }

  /** The bytes of records [from, to) that lie in one chunk, starting at `from`. */
  bytes(from: number, to: number): Buffer {
    assert(this.isResident(from), 'bytes of an evicted chunk');
    const end = Math.min(to, ((from >>> chunkShift) + 1) << chunkShift);
    return this.chunk(from).subarray(this.offset(from), this.offset(from) + (end - from) * this.width);
  }

  /** Bytes held in memory by the column's chunks. */
  get allocatedBytes(): number {
    return (this.chunks.length - this.residentFrom) * chunkRecords * this.width;
  }

  private addChunk(): void {
    // Zeroed by a write from here rather than lazily by the kernel: touching fresh pages from JS
    // first is several times cheaper than having read(2) fault them in (measured on loading).
    const chunk = Buffer.allocUnsafe(chunkRecords * this.width).fill(0);
    this.chunks.push(chunk);
    if (this.width % 4 === 0) this.words.push(new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length >>> 2));
  }
}
