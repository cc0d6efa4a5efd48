/**
 * Small bounded in-memory structures of the bridge: a map that forgets its oldest entries, an
 * idempotency record, a per-destination sliding-window limiter, and the reply matcher. Every
 * one has a named bound; none grows without limit.
 */

import { LRUCache } from 'lru-cache';

/**
 * The bounded map every structure here stands on: at most `entriesMax` entries, the least recently
 * set one dropped first (reads use `peek`, which leaves the order alone), `lru-cache` underneath as
 * in authz's directory cache.
 */
export function boundedMap<K extends {}, V extends {}>(entriesMax: number): LRUCache<K, V> {
  if (!(entriesMax > 0)) throw new Error('assertion failed: entriesMax must be positive');
  return new LRUCache<K, V>({ max: entriesMax });
}

interface IdempotentEntry<T> {
  fingerprint: string;
  result: Promise<T>;
  atMs: number;
}

export type IdempotentLookup<T> = { kind: 'new' } | { kind: 'replay'; result: Promise<T> } | { kind: 'conflict' };

/** Results by idempotency key: at most `keysMax`, each for `ttlMs`. */
export class IdempotencyRecord<T> {
  private readonly entries: LRUCache<string, IdempotentEntry<T>>;
  constructor(
    keysMax: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = boundedMap(keysMax);
  }

  lookup(key: string, fingerprint: string): IdempotentLookup<T> {
    const entry = this.entries.peek(key);
    if (entry === undefined || this.now() - entry.atMs > this.ttlMs) return { kind: 'new' };
    return entry.fingerprint === fingerprint ? { kind: 'replay', result: entry.result } : { kind: 'conflict' };
  }

  /** Records `result` for `key`; a failed result is forgotten so a retry runs again. */
  record(key: string, fingerprint: string, result: Promise<T>): void {
    const entry = { fingerprint, result, atMs: this.now() };
    this.entries.set(key, entry);
    result.catch(() => {
      if (this.entries.peek(key) === entry) this.entries.delete(key);
    });
  }
}

/** At most `perWindowMax` sends per destination in any `windowMs`; tracks at most `destinationsMax` destinations. */
export class DestinationLimiter {
  private readonly sends = new Map<string, number[]>();
  constructor(
    private readonly perWindowMax: number,
    private readonly windowMs: number,
    private readonly destinationsMax: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one send to `destination` if allowed; false when over the limit (or no room to track it). */
  take(destination: string): boolean {
    const nowMs = this.now();
    const recent = (this.sends.get(destination) ?? []).filter((t) => nowMs - t < this.windowMs);
    if (recent.length >= this.perWindowMax) return false;
    if (!this.sends.has(destination) && this.sends.size >= this.destinationsMax) {
      this.prune(nowMs);
      if (this.sends.size >= this.destinationsMax) return false; // fail closed
    }
    recent.push(nowMs);
    this.sends.set(destination, recent);
    return true;
  }

  /** Gives back the last send counted for `destination` (it was not made). */
  refund(destination: string): void {
    this.sends.get(destination)?.pop();
  }

  private prune(nowMs: number): void {
    for (const [destination, times] of this.sends) if (times.every((t) => nowMs - t >= this.windowMs)) this.sends.delete(destination);
  }
}

export interface SentTo {
  reference: string;
  messageId: string;
  atMs: number;
}

/** The latest SendSms (with a reference) per destination, so a reply from that number finds its payment. */
export class ReplyMatcher {
  private readonly latest: LRUCache<string, SentTo>;
  constructor(
    /** replyWindowMs: a reply counts for a message sent at most this long before. */
    private readonly replyWindowMs: number,
    destinationsMax: number,
    private readonly now: () => number = Date.now,
  ) {
    this.latest = boundedMap(destinationsMax);
  }

  sent(to: string, reference: string, messageId: string): void {
    this.latest.set(to, { reference, messageId, atMs: this.now() });
  }

  /** The most recent message sent to `from` within the reply window. */
  match(from: string): SentTo | undefined {
    const sent = this.latest.peek(from);
    return sent !== undefined && this.now() - sent.atMs <= this.replyWindowMs ? sent : undefined;
  }
}
