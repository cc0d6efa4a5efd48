import type { Cluster, Redis } from 'ioredis';
import { unreachable } from '../../../ledger/assert.js';
import type { Payment } from '../../model.js';
import { assert, assertKeyClaim, assertKeyPart, assertMs } from '../checks.js';
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
} from '../port.js';
import { callRedis, closeRedis, openRedis } from '../redis-client.js';
import { payNumberValue } from './claims-lua.js';
import { commitStep } from './commit-step.js';
import { confirmStep } from './confirm-step.js';
import { type ClusterConnectOptions, closeRedisCluster, openRedisCluster } from './connect.js';
import { createStep, type StepContext } from './create-step.js';
import { storeKeyPrefixDefault, storeKeysOf } from './keys.js';
import { getRecords, listPayments, type RecordRead, recordReader, scanRecords } from './reads.js';
import { storeScripts } from './scripts.js';
import { assertClaimDue, claimDueCluster, claimDueSingle, DueCursor, guardStep } from './sweep-step.js';

/**
 * Redis keeps an entry (idempotency record, counter, guard, claim, pay number) this long past its
 * lifetime, ms. The store decides expiry by the item's `nowMs`; Redis only reclaims memory, with
 * a TTL relative to the item's times (README.md, "Time"), so the slack covers time between an
 * item's clock reading and its write, never more than that.
 */
export const entrySlackMsDefault = 60_000;
/** Due indexes (of `storeShards`) one `claimDue` call looks at. */
export const dueShardsPerClaimDefault = 8;

export interface RedisPaymentStoreOptions {
  lockout?: LockoutPolicy;
  /** Whether `close` quits the client (true when the store opened it). */
  ownsClient?: boolean;
  /** Final records leave Redis this long after they leave the due index, ms; undefined: never. */
  closedRetentionMs?: number;
  dueShardsPerClaim?: number;
  entrySlackMs?: number;
  /** Starts every key (default `ps`); letters, digits, `_ . : -`. */
  keyPrefix?: string;
}

export type RedisPaymentStoreOpenOptions = ({ url: string } | ClusterConnectOptions) &
  Omit<RedisPaymentStoreOptions, 'ownsClient'> & { commandTimeoutMs?: number; connectTimeoutMs?: number };

/**
 * The payment store on one Redis or a Redis Cluster (README.md): every step is one script call
 * per batch (per hash slot on a Cluster, cut at `scriptArgumentsMax`) following memory/state.ts.
 */
export class RedisPaymentStore implements PaymentStore {
  readonly describe: string;
  private readonly lockout: LockoutPolicy;
  private readonly ctx: StepContext;
  private readonly due: DueCursor;
  private readonly read: RecordRead;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly options: RedisPaymentStoreOptions = {},
  ) {
    this.lockout = options.lockout ?? lockoutPolicyDefault;
    assertLockoutPolicy(this.lockout);
    const cluster = 'isCluster' in client && client.isCluster;
    const closedRetentionMs = options.closedRetentionMs ?? 0;
    assert(Number.isSafeInteger(closedRetentionMs) && closedRetentionMs >= 0, 'closedRetentionMs must be a non-negative integer of milliseconds');
    const entrySlackMs = options.entrySlackMs ?? entrySlackMsDefault;
    assertMs(entrySlackMs, 'entrySlackMs');
    this.ctx = { run: storeScripts(client), keys: storeKeysOf(options.keyPrefix ?? storeKeyPrefixDefault), cluster, entrySlackMs, closedRetentionMs };
    this.due = new DueCursor(options.dueShardsPerClaim ?? dueShardsPerClaimDefault);
    this.read = recordReader(client);
    this.describe = cluster
      ? 'payment store on a Redis Cluster'
      : `payment store on Redis at ${(client as Redis).options.host}:${(client as Redis).options.port}`;
  }

  static async open(options: RedisPaymentStoreOpenOptions): Promise<RedisPaymentStore> {
    const client = 'url' in options ? await openRedis(options) : await openRedisCluster(options);
    return new RedisPaymentStore(client, { ...options, ownsClient: true });
  }

  create(items: readonly CreateItem[]): Promise<CreateOutcome[]> {
    return createStep(this.ctx, items);
  }

  confirm(items: readonly ConfirmItem[]): Promise<ConfirmOutcome[]> {
    return confirmStep(this.ctx, this.lockout, items);
  }

  commit(items: readonly CommitItem[]): Promise<CommitOutcome[]> {
    return commitStep(this.ctx, items);
  }

  get(ids: readonly string[]): Promise<(PaymentRecord | undefined)[]> {
    return getRecords(this.read, this.ctx.keys, ids);
  }

  list(query: PaymentQuery): Promise<Payment[]> {
    return listPayments(this.client, this.read, this.ctx.keys, query);
  }

  scan(cursor: string, limit: number): Promise<{ records: PaymentRecord[]; cursor: string }> {
    return scanRecords(this.client, this.read, this.ctx.keys, cursor, limit);
  }

  async claimDue(request: { nowMs: number; limit: number; leaseMs: number }): Promise<PaymentRecord[]> {
    assertClaimDue(request);
    if (request.limit === 0) return [];
    return this.ctx.cluster ? claimDueCluster(this.ctx, this.client, this.due, request) : claimDueSingle(this.ctx, this.due, request);
  }

  async claimKey(claim: KeyClaim): Promise<KeyClaimOutcome> {
    assertKeyClaim(claim);
    const [status, value, flag] = (await this.ctx.run(
      'claimKey',
      [this.ctx.keys.claim(claim.scope, claim.key)],
      [this.ctx.entrySlackMs, claim.fingerprint, claim.value, claim.leaseMs, claim.keyTtlMs, claim.nowMs],
    )) as [string, string?, string?];
    switch (status) {
      case 'claimed':
        return { status, value: value!, takenOver: flag === '1' };
      case 'done':
        return { status, result: value! };
      case 'in_progress':
        return { status, retryAfterMs: Number(value) };
      case 'conflict':
        return { status };
    }
    return unreachable(`unknown claimKey reply ${status}`);
  }

  async completeKey(done: { scope: string; key: string; fingerprint: string; result: string; keyTtlMs: number; nowMs: number }): Promise<void> {
    assertKeyPart(done.scope, 'scope');
    assertKeyPart(done.key, 'idempotency key');
    assertMs(done.keyTtlMs, 'keyTtlMs');
    await this.ctx.run(
      'completeKey',
      [this.ctx.keys.claim(done.scope, done.key)],
      [this.ctx.entrySlackMs, done.fingerprint, done.result, done.keyTtlMs, done.nowMs],
    );
  }

  async releaseKey(release: { scope: string; key: string; fingerprint: string }): Promise<void> {
    assertKeyPart(release.scope, 'scope');
    assertKeyPart(release.key, 'idempotency key');
    await this.ctx.run('releaseKey', [this.ctx.keys.claim(release.scope, release.key)], [this.ctx.entrySlackMs, release.fingerprint]);
  }

  guard(events: readonly GuardEvent[]): Promise<GuardOutcome[]> {
    return guardStep(this.ctx, this.lockout, events);
  }

  async putPayNumber(entry: { numberDigest: string; payerId: string; ttlMs: number; nowMs: number }): Promise<void> {
    assertKeyPart(entry.numberDigest, 'pay number digest');
    assertMs(entry.ttlMs, 'ttlMs');
    const value = payNumberValue(entry.payerId, entry.nowMs + entry.ttlMs);
    await callRedis('putPayNumber', () => this.client.set(this.ctx.keys.payNumber(entry.numberDigest), value, 'PX', entry.ttlMs + this.ctx.entrySlackMs));
  }

  async takePayNumber(take: { numberDigest: string; claimant: string; nowMs: number }): Promise<string | undefined> {
    assertKeyPart(take.numberDigest, 'pay number digest');
    const payer = await this.ctx.run('takePayNumber', [this.ctx.keys.payNumber(take.numberDigest)], [this.ctx.entrySlackMs, take.claimant, take.nowMs]);
    return payer === null ? undefined : (payer as string);
  }

  async close(): Promise<void> {
    if (this.options.ownsClient !== true) return;
    if (this.ctx.cluster) await closeRedisCluster(this.client as Cluster);
    else await closeRedis(this.client as Redis);
  }
}

function assertLockoutPolicy(p: LockoutPolicy): void {
  assert(Number.isSafeInteger(p.failuresMax) && p.failuresMax >= 1, 'failuresMax must be a positive integer');
  assertMs(p.backoffBaseMs, 'backoffBaseMs');
  assert(Number.isSafeInteger(p.backoffMaxMs) && p.backoffMaxMs >= p.backoffBaseMs, 'backoffMaxMs must be ≥ backoffBaseMs');
  assertMs(p.memoryMs, 'memoryMs');
}
