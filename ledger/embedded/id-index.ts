import { assert } from '../assert.js';

/**
 * A hash index from u128 ids to slots, for ids stored in a column (transfers, failed ids): the
 * index holds only `slot + 1` per entry (0 = empty) and compares ids in the column itself.
 *
 * Open addressing with linear probing, split into `shardCount` shards by the hash's top bits so
 * that growing rehashes one shard (1/256 of the ids) at a time, never the whole index: at 10 M
 * ids a resize moves ~40 K entries (a few milliseconds) instead of stalling writes for a second.
 * Deletion (undoing a broken linked chain) is backward-shift, so no tombstones accumulate.
 *
 * Memory: 4 bytes per bucket at a load between 5/16 and 5/8, so 6.4 to 12.8 bytes per id.
 */

/** An id split into four little-endian u32 words, with its hash (reused for every probe). */
export interface IdKey {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
  hash: number;
}

/** Where the indexed ids live. */
export interface IdSource {
  /** The `k`-th little-endian u32 word (0..3) of the id stored at `slot`. */
  idWord(slot: number, k: number): number;
}

const shardBits = 8;
const shardCount = 1 << shardBits;
/** Buckets in a new shard. */
const shardCapacityMin = 16;
/** Grow a shard when entries exceed this fraction of its buckets (as numerator / 8). */
const loadMaxEighths = 5;

export function newIdKey(): IdKey {
  return { w0: 0, w1: 0, w2: 0, w3: 0, hash: 0 };
}

/** Fills `key` with `id`'s words and hash; returns it. */
export function idKey(id: bigint, key: IdKey): IdKey {
  if (id <= 0xffff_ffffn) {
    key.w0 = Number(id);
    key.w1 = key.w2 = key.w3 = 0;
  } else {
    const lo = BigInt.asUintN(64, id);
    const hi = id >> 64n;
    key.w0 = Number(lo & 0xffff_ffffn);
    key.w1 = Number(lo >> 32n);
    key.w2 = Number(hi & 0xffff_ffffn);
    key.w3 = Number(hi >> 32n);
  }
  key.hash = hashWords(key.w0, key.w1, key.w2, key.w3);
  return key;
}

/** MurmurHash3's 32-bit mixing over the four words. */
export function hashWords(w0: number, w1: number, w2: number, w3: number): number {
  return finalMix(mix(mix(mix(mix(0x5eed, w0), w1), w2), w3) ^ 16);
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finalMix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class IdIndex {
  private readonly tables: Uint32Array[] = [];
  private readonly sizes = new Uint32Array(shardCount);
  size = 0;

  constructor(private readonly source: IdSource) {
    for (let s = 0; s < shardCount; s++) this.tables.push(new Uint32Array(shardCapacityMin));
  }

  /** Sizes the shards for `count` ids in all, so loading that many rehashes nothing. */
  reserve(count: number): void {
    const perShard = Math.ceil(count / shardCount);
    for (let s = 0; s < shardCount; s++) {
      let capacity = this.tables[s]!.length;
      while (perShard * 8 > capacity * loadMaxEighths) capacity *= 2;
      if (capacity !== this.tables[s]!.length) this.resize(s, capacity);
    }
  }

  /** The slot holding `key`'s id, or -1. */
  find(key: IdKey): number {
    const table = this.tables[key.hash >>> (32 - shardBits)]!;
    const mask = table.length - 1;
    for (let i = key.hash & mask; ; i = (i + 1) & mask) {
      const entry = table[i]!;
      if (entry === 0) return -1;
      if (this.matches(entry - 1, key)) return entry - 1;
    }
  }

  /** Indexes `slot` under `key` (which must not be indexed yet). */
  insert(key: IdKey, slot: number): void {
    const shard = key.hash >>> (32 - shardBits);
    let table = this.tables[shard]!;
    if ((this.sizes[shard]! + 1) * 8 > table.length * loadMaxEighths) table = this.grow(shard);
    this.place(table, key.hash, slot + 1);
    this.sizes[shard]! += 1;
    this.size += 1;
  }

  /** Removes `key`'s entry (which must be indexed), shifting back the entries probed past it. */
  remove(key: IdKey): void {
    const shard = key.hash >>> (32 - shardBits);
    const table = this.tables[shard]!;
    const mask = table.length - 1;
    let hole = key.hash & mask;
    for (; ; hole = (hole + 1) & mask) {
      assert(table[hole] !== 0, 'removing an id that is not indexed');
      if (this.matches(table[hole]! - 1, key)) break;
    }
    for (let j = (hole + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const home = this.hashOf(table[j]! - 1) & mask;
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      table[hole] = table[j]!;
      hole = j;
    }
    table[hole] = 0;
    this.sizes[shard]! -= 1;
    this.size -= 1;
  }

  /** Bytes held by the buckets. */
  get allocatedBytes(): number {
    return this.tables.reduce((sum, t) => sum + t.byteLength, 0);
  }

  private matches(slot: number, key: IdKey): boolean {
    const s = this.source;
    return s.idWord(slot, 0) === key.w0 && s.idWord(slot, 1) === key.w1 && s.idWord(slot, 2) === key.w2 && s.idWord(slot, 3) === key.w3;
  }

  private hashOf(slot: number): number {
    const s = this.source;
    return hashWords(s.idWord(slot, 0), s.idWord(slot, 1), s.idWord(slot, 2), s.idWord(slot, 3));
  }

  private place(table: Uint32Array, hash: number, entry: number): void {
    const mask = table.length - 1;
    let i = hash & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = entry;
  }

  private grow(shard: number): Uint32Array {
    return this.resize(shard, this.tables[shard]!.length * 2);
  }

  private resize(shard: number, capacity: number): Uint32Array {
    const old = this.tables[shard]!;
    const table = new Uint32Array(capacity);
    for (const entry of old) if (entry !== 0) this.place(table, this.hashOf(entry - 1), entry);
    this.tables[shard] = table;
    return table;
  }
}
