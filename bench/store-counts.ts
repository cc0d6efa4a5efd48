import { CachedDirectory } from '../authz/directory-cache.js';
import type { App } from '../services/app.js';

/**
 * What the server sent to its payment store and its directory, counted in the server process and
 * read over IPC around each measured window (bench/server.ts `cpu`), so the bench reports store
 * round trips per authorization next to the Redis commands.
 *
 * - The four coalesced kinds come from the store decorator's own counters
 *   (`app.store.creates.sent`, `.confirms.sent`, `.commits.sent`, `.reads.sent`): one call there
 *   is one store operation sent (one script call on a single Redis), whatever number of unary
 *   requests it carries.
 * - The store's other methods pass straight through the decorator (key claims, guards, pay
 *   numbers, the sweeper's `claimDue`, `list`, `scan`); `countPassThrough` wraps them on the
 *   decorator instance so every call is counted too. Nothing else changes: the wrapper calls the
 *   same function with the same arguments. `claimDue` is the sweeper's (a timer, once a second),
 *   reported as its own kind.
 * - Directory calls that miss the per-process cache and reach the directory itself (on Redis,
 *   Redis round trips of their own): `countDirectoryReads` wraps the cached directory's inner one.
 */

/** The store's step and read kinds the decorator coalesces, by the bench's names. */
export const coalescedKinds = ['create', 'confirm', 'commit', 'read'] as const;
export type CoalescedKind = (typeof coalescedKinds)[number];
/** Store kinds reported per authorization: the coalesced four, the other request-path methods, the sweeper. */
export const storeKinds = [...coalescedKinds, 'other', 'sweep'] as const;
export type StoreKind = (typeof storeKinds)[number];

/** The store methods that pass through the decorator uncoalesced, and the kind each is reported under. */
const passThrough: Record<string, StoreKind> = {
  claimKey: 'other',
  completeKey: 'other',
  releaseKey: 'other',
  guard: 'other',
  putPayNumber: 'other',
  takePayNumber: 'other',
  list: 'other',
  scan: 'other',
  claimDue: 'sweep',
};

/** Directory reads a cache miss sends on (writes are enrollment's, not an authorization's). */
const directoryReads = ['getPayer', 'getMerchant', 'findPayerByPhone', 'findPayerByLogin', 'findPayerByTokenHash', 'findMerchantByApiKeyHash'] as const;

/** Calls sent (and items in them, for the coalesced kinds) since the process started. */
export interface StoreCounts {
  calls: Record<StoreKind, number>;
  items: Record<CoalescedKind, number>;
  /** Pass-through calls by method name. */
  byMethod: Record<string, number>;
  /** Directory reads that reached the directory (cache misses), by method name. */
  directory: Record<string, number>;
  /** Records the sweeper's `claimDue` calls returned (each one claimed in the store). */
  sweepClaimed: number;
}

/** A window's store traffic per authorization (per RPC for echo). */
export interface StorePerUnit {
  /**
   * The store round trips per authorization: every store call of the window but the sweeper's
   * ÷ units. The sweeper (`callsPerUnit.sweep`) runs on a timer whatever the load; its calls
   * are reported beside the total, not in it.
   */
  roundTripsPerUnit: number;
  /** Calls per unit by kind. */
  callsPerUnit: Record<StoreKind, number>;
  /** Items per call of each coalesced kind (how much coalescing did); 0 when no call was sent. */
  itemsPerCall: Record<CoalescedKind, number>;
  /** Pass-through calls per unit by method name (only those called in the window). */
  byMethodPerUnit: Record<string, number>;
  /** Directory reads past the cache per unit. */
  directoryReadsPerUnit: number;
  directoryByMethodPerUnit: Record<string, number>;
}

type Counted = Record<string, number>;

function wrapCounting(target: object, names: readonly string[], counted: Counted): void {
  const methods = target as Record<string, unknown>;
  for (const name of names) {
    const original = methods[name];
    if (typeof original !== 'function') throw new Error(`assertion failed: ${name} is not a method of ${target.constructor.name}`);
    counted[name] = 0;
    methods[name] = function (this: unknown, ...args: unknown[]) {
      counted[name]! += 1;
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
}

/**
 * Starts counting the server's store and directory traffic; returns a function that reads the
 * counts so far. Call once, right after `createApp`.
 */
export function countStoreTraffic(app: App): () => StoreCounts {
  const byMethod: Counted = {};
  wrapCounting(app.store, Object.keys(passThrough), byMethod);
  const directory: Counted = {};
  if (!(app.directory instanceof CachedDirectory)) throw new Error('assertion failed: the app reads its directory through CachedDirectory');
  wrapCounting(app.directory.inner, directoryReads, directory);
  const { store } = app;
  // After wrapCounting: this wrapper counts what the sweeper claimed, then calls the counting one.
  const claims = { records: 0 };
  const claimDue = store.claimDue.bind(store);
  store.claimDue = (request) => claimDue(request).then((records) => ((claims.records += records.length), records));
  return () => {
    const calls = {
      create: store.creates.sent.calls,
      confirm: store.confirms.sent.calls,
      commit: store.commits.sent.calls,
      read: store.reads.sent.calls,
      other: 0,
      sweep: 0,
    };
    for (const [name, n] of Object.entries(byMethod)) calls[passThrough[name]!] += n;
    const items = { create: store.creates.sent.items, confirm: store.confirms.sent.items, commit: store.commits.sent.items, read: store.reads.sent.items };
    return { calls, items, byMethod: { ...byMethod }, directory: { ...directory }, sweepClaimed: claims.records };
  };
}

/** Several processes' counts as one (`npm run bench -- --workers N`: every worker's, summed). */
export function sumStoreCounts(counts: readonly StoreCounts[]): StoreCounts {
  const calls = Object.fromEntries(storeKinds.map((k) => [k, 0])) as Record<StoreKind, number>;
  const items = Object.fromEntries(coalescedKinds.map((k) => [k, 0])) as Record<CoalescedKind, number>;
  const byMethod: Counted = {};
  const directory: Counted = {};
  let sweepClaimed = 0;
  for (const c of counts) {
    for (const kind of storeKinds) calls[kind] += c.calls[kind];
    for (const kind of coalescedKinds) items[kind] += c.items[kind];
    for (const [name, n] of Object.entries(c.byMethod)) byMethod[name] = (byMethod[name] ?? 0) + n;
    for (const [name, n] of Object.entries(c.directory)) directory[name] = (directory[name] ?? 0) + n;
    sweepClaimed += c.sweepClaimed;
  }
  return { calls, items, byMethod, directory, sweepClaimed };
}

/** The window between two snapshots, per unit (authorization, or echo RPC). */
export function storePerUnit(before: StoreCounts, after: StoreCounts, units: number): StorePerUnit {
  const per = (n: number) => (units === 0 ? 0 : n / units);
  const callsPerUnit = {} as Record<StoreKind, number>;
  let total = 0;
  for (const kind of storeKinds) {
    const calls = after.calls[kind] - before.calls[kind];
    if (kind !== 'sweep') total += calls;
    callsPerUnit[kind] = per(calls);
  }
  const itemsPerCall = {} as Record<CoalescedKind, number>;
  for (const kind of coalescedKinds) {
    const calls = after.calls[kind] - before.calls[kind];
    itemsPerCall[kind] = calls === 0 ? 0 : (after.items[kind] - before.items[kind]) / calls;
  }
  const directory = deltas(after.directory, before.directory);
  return {
    roundTripsPerUnit: per(total),
    callsPerUnit,
    itemsPerCall,
    byMethodPerUnit: perUnit(deltas(after.byMethod, before.byMethod), units),
    directoryReadsPerUnit: per(Object.values(directory).reduce((a, b) => a + b, 0)),
    directoryByMethodPerUnit: perUnit(directory, units),
  };
}

/** The counts that grew between two snapshots, by name. */
function deltas(after: Counted, before: Counted): Counted {
  const out: Counted = {};
  for (const [name, n] of Object.entries(after)) if (n > (before[name] ?? 0)) out[name] = n - (before[name] ?? 0);
  return out;
}

function perUnit(counts: Counted, units: number): Counted {
  const out: Counted = {};
  for (const [name, n] of Object.entries(counts)) out[name] = units === 0 ? 0 : n / units;
  return out;
}
