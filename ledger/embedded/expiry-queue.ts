/**
 * Pending transfers with a timeout, by when they expire: a binary min-heap of (expiresAt, slot)
 * kept in one growable `Uint32Array` (3 words per entry: expiresAt high, expiresAt low, slot),
 * 12 bytes per entry and nothing for the garbage collector to trace.
 *
 * Entries are not removed when their transfer is posted, voided or rolled back: the state
 * machine skips them when they come due (state.ts `pendingAt`). So that such stale entries do not
 * pile up for a whole timeout, `compactIfDoubled` — called between batches only, never inside a
 * linked chain whose rollback could make a resolved pending transfer pending again — keeps only
 * the entries `isLive` still accepts whenever the heap has doubled since the last compaction:
 * amortized O(1) per push, and never more than about twice the entries that were live at the
 * last compaction plus the pushes since.
 */

const stride = 3;
/** Entries below which the heap is never compacted. */
const compactSizeMin = 4096;
const initialCapacity = 1024;

export interface Expiry {
  expiresAt: bigint;
  /** Where the pending transfer is stored. */
  slot: number;
}

export class ExpiryQueue {
  private words = new Uint32Array(initialCapacity * stride);
  size = 0;
  private sizeAfterCompaction = 0;

  constructor(private readonly isLive: (e: Expiry) => boolean) {}

  push(e: Expiry): void {
    if ((this.size + 1) * stride > this.words.length) this.grow();
    this.set(this.size, Number(e.expiresAt >> 32n), Number(e.expiresAt & 0xffff_ffffn), e.slot);
    this.size += 1;
    this.siftUp(this.size - 1);
  }

  peek(): Expiry | undefined {
    return this.size === 0 ? undefined : this.at(0);
  }

  pop(): Expiry | undefined {
    if (this.size === 0) return undefined;
    const top = this.at(0);
    this.size -= 1;
    if (this.size > 0) {
      this.words.copyWithin(0, this.size * stride, this.size * stride + stride);
      this.siftDown(0);
    }
    return top;
  }

  /** The entries in heap order (for a checkpoint; `restore` takes them back as they are). */
  toArray(): Expiry[] {
    return Array.from({ length: this.size }, (_, i) => this.at(i));
  }

  restore(entries: readonly Expiry[]): void {
    this.size = 0;
    for (const e of entries) {
      if ((this.size + 1) * stride > this.words.length) this.grow();
      this.set(this.size++, Number(e.expiresAt >> 32n), Number(e.expiresAt & 0xffff_ffffn), e.slot);
    }
    this.sizeAfterCompaction = this.size;
  }

  /** Between batches: drops entries that are no longer live once the heap has doubled since the last time. */
  compactIfDoubled(): void {
    if (this.size >= compactSizeMin && this.size >= 2 * this.sizeAfterCompaction) this.compact();
  }

  private compact(): void {
    let kept = 0;
    for (let i = 0; i < this.size; i++) {
      if (!this.isLive(this.at(i))) continue;
      this.words.copyWithin(kept * stride, i * stride, i * stride + stride);
      kept += 1;
    }
    this.size = kept;
    for (let i = (kept >> 1) - 1; i >= 0; i--) this.siftDown(i);
    this.sizeAfterCompaction = kept;
  }

  private at(i: number): Expiry {
    const w = this.words;
    return { expiresAt: (BigInt(w[i * stride]!) << 32n) | BigInt(w[i * stride + 1]!), slot: w[i * stride + 2]! };
  }

  private set(i: number, hi: number, lo: number, slot: number): void {
    this.words[i * stride] = hi;
    this.words[i * stride + 1] = lo;
    this.words[i * stride + 2] = slot;
  }

  private less(i: number, j: number): boolean {
    const w = this.words;
    const a = w[i * stride]!;
    const b = w[j * stride]!;
    return a !== b ? a < b : w[i * stride + 1]! < w[j * stride + 1]!;
  }

  private swap(i: number, j: number): void {
    const w = this.words;
    for (let k = 0; k < stride; k++) {
      const t = w[i * stride + k]!;
      w[i * stride + k] = w[j * stride + k]!;
      w[j * stride + k] = t;
    }
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      let m = i;
      if (l < this.size && this.less(l, m)) m = l;
      if (l + 1 < this.size && this.less(l + 1, m)) m = l + 1;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private grow(): void {
    const words = new Uint32Array(this.words.length * 2);
    words.set(this.words);
    this.words = words;
  }
}
