import { unreachable } from '../../../ledger/assert.js';
import type { Payment } from '../../model.js';
import { assertBatch, assertCommitItem, assertConfirmItem, assertCreateItem, assertKeyPart } from '../checks.js';
import {
  type CommitItem,
  type CommitOutcome,
  type ConfirmItem,
  type ConfirmOutcome,
  type CreateItem,
  type CreateOutcome,
  type GuardEvent,
  type GuardOutcome,
  type KeyClaim,
  type KeyClaimOutcome,
  type LockoutPolicy,
  lockoutPolicyDefault,
  type PaymentQuery,
  type PaymentRecord,
  type PaymentStore,
  readIdsMax,
} from '../port.js';
import { MemoryState, type MemoryStateOptions } from './state.js';

/** Payment records a memory store keeps at most by default. */
export const memoryPaymentsMaxDefault = 1_000_000;
/** Idempotency records, counters, guards and pay numbers a memory store keeps at most by default. */
export const memoryEntriesMaxDefault = 2_000_000;
/** Expired entries examined per step call (their memory is reclaimed in the background of the traffic). */
export const entrySweepPerCall = 64;

export interface MemoryStoreOptions {
  lockout?: LockoutPolicy;
  paymentsMax?: number;
  entriesMax?: number;
  /** Reads the clock for housekeeping only (entry expiry); steps carry their own `nowMs`. */
  now?: () => number;
}

export function memoryStateOptions(options: MemoryStoreOptions, fullHint: string): MemoryStateOptions {
  return {
    lockout: options.lockout ?? lockoutPolicyDefault,
    paymentsMax: options.paymentsMax ?? memoryPaymentsMaxDefault,
    entriesMax: options.entriesMax ?? memoryEntriesMaxDefault,
    fullHint,
  };
}

/**
 * The payment store in process, nothing on disk: for tests and the bench (by name: `memory`).
 * Each step call is one synchronous pass over its items, so it is atomic like a Redis script.
 */
export class MemoryPaymentStore implements PaymentStore {
  readonly describe: string = 'payment store in memory (lost on exit)';
  protected readonly now: () => number;

  constructor(
    options: MemoryStoreOptions = {},
    readonly state = new MemoryState(
      memoryStateOptions(options, 'this store keeps everything in memory: use the journal (the default) or Redis (COUNTERSIGN_REDIS_URL)'),
    ),
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Runs a step's pass; the journal adapter overrides it to make the pass durable before it resolves. */
  protected async run<T>(pass: () => T): Promise<T> {
    const result = pass();
    this.state.sweepEntries(this.now(), entrySweepPerCall);
    return result;
  }

  // Steps check every item before the pass applies any: a call with a malformed item is a
  // programmer error that changes nothing, and (async) it rejects rather than throws.
  async create(items: readonly CreateItem[]): Promise<CreateOutcome[]> {
    assertBatch(items.length);
    for (const item of items) assertCreateItem(item);
    return this.run(() => items.map((item) => this.state.create(item)));
  }

  async confirm(items: readonly ConfirmItem[]): Promise<ConfirmOutcome[]> {
    assertBatch(items.length);
    for (const item of items) assertConfirmItem(item);
    return this.run(() => items.map((item) => this.state.confirm(item)));
  }

  async commit(items: readonly CommitItem[]): Promise<CommitOutcome[]> {
    assertBatch(items.length);
    for (const item of items) assertCommitItem(item);
    return this.run(() => items.map((item) => this.state.commit(item)));
  }

  async get(ids: readonly string[]): Promise<(PaymentRecord | undefined)[]> {
    if (ids.length > readIdsMax) unreachable(`get takes at most ${readIdsMax} ids`);
    return ids.map((id) => this.state.get(id));
  }

  async list(query: PaymentQuery): Promise<Payment[]> {
    return this.state.list(query);
  }

  async scan(cursor: string, limit: number): Promise<{ records: PaymentRecord[]; cursor: string }> {
    return this.state.scan(cursor, limit);
  }

  claimDue(request: { nowMs: number; limit: number; leaseMs: number }): Promise<PaymentRecord[]> {
    return this.run(() => this.state.claimDue(request.nowMs, request.limit, request.leaseMs));
  }

  claimKey(claim: KeyClaim): Promise<KeyClaimOutcome> {
    return this.run(() => this.state.claimKey(claim));
  }

  async completeKey(done: { scope: string; key: string; fingerprint: string; result: string; keyTtlMs: number; nowMs: number }): Promise<void> {
    assertKeyPart(done.scope, 'scope');
    return this.run(() => this.state.completeKey(done));
  }

  releaseKey(release: { scope: string; key: string; fingerprint: string }): Promise<void> {
    return this.run(() => this.state.releaseKey(release));
  }

  async guard(events: readonly GuardEvent[]): Promise<GuardOutcome[]> {
    assertBatch(events.length);
    return this.run(() => events.map((e) => this.state.guard(e)));
  }

  putPayNumber(entry: { numberDigest: string; payerId: string; ttlMs: number; nowMs: number }): Promise<void> {
    return this.run(() => this.state.putPayNumber(entry));
  }

  takePayNumber(take: { numberDigest: string; claimant: string; nowMs: number }): Promise<string | undefined> {
    return this.run(() => this.state.takePayNumber(take));
  }

  async close(): Promise<void> {}
}
