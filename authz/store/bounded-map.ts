import { StoreFullError } from './errors.js';

/** An entry that lapses at `expiresAtMs` (Infinity for never). */
export interface Expiring {
  expiresAtMs: number;
}

/**
 * A Map with a named entry bound and lazy expiry, for the memory adapters: reads drop a lapsed
 * entry; a new key when the map is at its bound first sweeps lapsed entries, then, if the map
 * is still full of live ones, is refused with `StoreFullError` naming the bound.
 */
export class BoundedMap<V extends Expiring> {
  private readonly entries = new Map<string, V>();

  constructor(
    /** The bound's name for the error message, e.g. `challengesMax`. */
    private readonly boundName: string,
    private readonly entriesMax: number,
  ) {
    if (!Number.isSafeInteger(entriesMax) || entriesMax < 1) throw new Error(`assertion failed: ${boundName} must be a positive integer`);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string, nowMs: number): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  set(key: string, value: V, nowMs: number): void {
    if (!this.entries.has(key) && this.entries.size >= this.entriesMax) {
      this.sweep(nowMs);
      if (this.entries.size >= this.entriesMax) {
        throw new StoreFullError(`memory store full: ${this.boundName}=${this.entriesMax} live entries`);
      }
    }
    this.entries.set(key, value);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drops every lapsed entry; O(size), run only when the map is at its bound. */
  private sweep(nowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAtMs <= nowMs) this.entries.delete(key);
    }
  }
}
