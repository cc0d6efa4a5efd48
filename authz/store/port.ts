import type { DeclineReason, Factor, Payment, PaymentState } from '../model.js';

/**
 * The payment store port: everything about payments that is not money. One port owns payment
 * records (with the keyed digests of their challenges inside), idempotency records, rate-limit
 * counters, the payers' failure streaks and lockouts, pay numbers and the due index the sweeper
 * works from. Adapters: `memory/` (tests, bench), `journal/` (the durable embedded default) and
 * `redis/` (one Redis or a Redis Cluster). One contract suite (test/authz/store/) runs on all.
 *
 * **Steps.** `create`, `confirm` and `commit` take a batch of items and apply each item
 * atomically: on Redis one script call per batch (per hash slot on a Cluster, and per bounded
 * number of script arguments: redis/README.md), sent together, in memory one synchronous pass.
 * Items of one call are applied in order (a later item sees what an earlier one did) but are
 * not one transaction together. A step claims an item's idempotency key in the
 * same atomic operation that records what the request did, so a key never names a request that
 * left nothing behind: there is no "in progress" state to get stuck in. What a step decided and
 * the ledger has not yet been told (a reservation, a post, a void) is re-driven by whoever next
 * touches the payment: a retry, a read, or the sweeper through the due index.
 *
 * **Slots.** Everything about one payer lives in one store shard, `shardOfPayer(payerId)`; a
 * payment id carries its payer's shard (`withShard`), so a payment's record (with the
 * idempotency records of operations on it) and its payer's indexes and guard share one Redis
 * Cluster slot. Only a create also touches its merchant's shard (the create's idempotency key
 * and the merchant's index) and the code-rate counters (their own slots).
 *
 * **Keys.** A create's idempotency key is scoped to its merchant. The keys of operations on a
 * payment (confirm, and the claims of commits: cancel, decline) are scoped to the caller and the
 * payment, in one namespace: the same key reused for another operation on the same payment is
 * a `conflict` (another fingerprint). They live with the payment's record (on Redis, fields of
 * its HASH: read and written by the same commands as the record) and expire logically
 * `keyTtlMs` after they were stored (an expired one counts as absent; adapters drop it when the
 * record is next written, or with the record). A payment holds at most
 * `operationKeysPerPaymentMax` live ones: at the bound, an outcome that changed nothing in the
 * record (a refusal, `approved`, a commit without a `payment`) is answered but not stored, so a
 * retry of it decides again (and, nothing having changed, gets the same answer); an outcome
 * that changed the record is always stored (those are bounded by the record's own transitions).
 *
 * Errors: operating outcomes are values. An unreachable or failed backend throws
 * `StoreUnavailableError` (services map it to UNAVAILABLE), a full embedded store
 * `StoreFullError` (a kind of it, naming the fix); a broken precondition (an item that violates
 * checks.ts, a batch above `stepItemsMax`, a new payment whose id is already taken) rejects with
 * a plain `Error` ("assertion failed: …") and the whole call changes nothing.
 */

export class StoreUnavailableError extends Error {
  override readonly name: string = 'StoreUnavailableError';
}

/** A bounded store is full; the message names the bound and the fix. */
export class StoreFullError extends StoreUnavailableError {
  override readonly name: string = 'StoreFullError';
}

// ------------------------------------------------------------------ bounds

/** Items one step call takes at most (a batch RPC's 1000 items; coalesced unary calls). */
export const stepItemsMax = 1000;
/** Payments `get` reads per call at most. */
export const readIdsMax = 1000;
/** `list` and `scan` pages, payments at most. */
export const pageMax = 1000;
/** Keyed digests (HMAC-SHA256, 64 lowercase hex digits) of one expected answer. */
export const digestHexChars = 64;
/** Store shards: everything of one payer lives in one (`shardOfPayer`). Fixed: payment ids carry it. */
export const storeShards = 64;
/**
 * Live idempotency records of operations (confirms, commit claims) one payment holds at most;
 * beyond it only outcomes that change the record are stored (see "Keys" above).
 */
export const operationKeysPerPaymentMax = 64;
/** Rate limits one create counts at most. */
export const rateLimitsPerCreateMax = 8;

// ------------------------------------------------------------------ records

/** A payment as the store keeps it. */
export interface PaymentRecord {
  payment: Payment;
  /** 1 when created; +1 on every change of `payment` or `digests`. */
  version: number;
  /**
   * The keyed digest (`CodeKit.digest`) of the answer each challenged factor still expects;
   * never a code. A factor's digest is dropped once it is satisfied.
   */
  digests: Partial<Record<Factor, string>>;
  /** When the sweeper should next look at the payment (Unix ms); undefined: it never needs to. */
  dueAtMs: number | undefined;
}

// ------------------------------------------------------------------ shards and ids

/** The store shard of a payer (0 ≤ shard < `storeShards`): bits 4..9 of its time-ordered id. */
export function shardOfPayer(payerId: string): number {
  return (parseInt(payerId.slice(-3, -1), 16) & (storeShards - 1)) >>> 0;
}

/** A payment id carries its payer's shard in bits 74..79: the top of the 80 random bits below the 48-bit time. */
const shardShift = 74n;

/**
 * The shard a payment id carries (see `withShard`). An id as ids are written (32 hex digits) has
 * bits 74..79 in its 13th and 14th digits (bits 72..79): read from those two (0.03 µs, tight
 * loop) instead of the whole id as a BigInt (0.36 µs; every step reads it several times per item).
 */
export function shardOfPayment(paymentId: string): number {
  if (paymentId.length === 32) {
    const high = hexDigit(paymentId.charCodeAt(12));
    const low = hexDigit(paymentId.charCodeAt(13));
    if (high >= 0 && low >= 0) return (((high << 4) | low) >>> 2) & (storeShards - 1);
  }
  return Number((BigInt(`0x${paymentId}`) >> shardShift) & BigInt(storeShards - 1));
}

/** 0..15 for a hex digit's character code (either case), -1 for any other. */
function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 32;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/**
 * `id` (a time-ordered id from ledger/ids.ts) with its payer's shard in bits 74..79, the top of
 * its random part: ids minted in one millisecond still differ (their counter sits below), and the
 * low 4 bits the ledger uses for transfer kinds stay zero.
 */
export function withShard(id: bigint, shard: number): bigint {
  const mask = BigInt(storeShards - 1) << shardShift;
  return (id & ~mask) | (BigInt(shard) << shardShift);
}

// ------------------------------------------------------------------ step: create

/**
 * One event counted against a fixed-window limit (SMS-pumping defence). Windows are aligned to
 * the clock: a hit at `nowMs` counts into window `floor(nowMs / windowMs)` of `key`, which lasts
 * from `index × windowMs` to `(index + 1) × windowMs` (exclusive); the next window starts from 0
 * at that boundary, however recently the last hit came. Every hit counts, also one over the
 * limit (the refused event): a window over its limit refuses until its end either way.
 */
export interface RateLimitHit {
  key: string;
  /** Events allowed per window. */
  limit: number;
  windowMs: number;
}

/** The aligned window a hit at `nowMs` counts into (see `RateLimitHit`). */
export function rateWindowOf(nowMs: number, windowMs: number): number {
  return Math.floor(nowMs / windowMs);
}

export interface CreateItem {
  /** The idempotency scope: the merchant. */
  scope: string;
  key: string;
  /** Keyed digest of the request the key is bound to. */
  fingerprint: string;
  /**
   * The new payment (its id minted with its payer's shard), in the state the domain decided:
   * CHALLENGED, APPROVED (no factor needed: reservation and post follow) or DECLINED (policy).
   */
  payment: Payment;
  digests: Partial<Record<Factor, string>>;
  /** Undefined: not in the due index. */
  dueAtMs: number | undefined;
  /**
   * At most `rateLimitsPerCreateMax`, counted in order (one hit each, in its aligned window) when
   * the key is new. The first one whose count goes over its limit refuses the create
   * (`rate:<index>`): no record is written, the refusal is stored under the key, that hit and
   * the limits before it stay counted (a slightly stricter limit, never a looser one), the ones
   * after it are not counted.
   */
  rateLimits: readonly RateLimitHit[];
  /** Idempotency records live this long (24 h), milliseconds. */
  keyTtlMs: number;
  nowMs: number;
}

export type CreateOutcome =
  /** The key was new: the record is stored (version 1) and the key names it. */
  | { outcome: 'created'; record: PaymentRecord }
  /** The key names a payment made by the same request before: that payment as it is now. */
  | { outcome: 'replayed'; record: PaymentRecord }
  /** Refused (now or by the same request before); `refusal` is the token stored under the key. */
  | { outcome: 'refused'; refusal: string }
  /** The key was used for another request (another fingerprint). */
  | { outcome: 'conflict' }
  /**
   * Redis Cluster only, after a crash between the create's two slots: the key names payment
   * `paymentId` whose record was never written. Draft the same request with that id and create again.
   */
  | { outcome: 'missing'; paymentId: string };

// ------------------------------------------------------------------ step: confirm

/** Who asks, for visibility and idempotency. */
export interface StepCaller {
  /** Idempotency scope: the merchant's, the payer's, or 'service' / 'admin'. */
  scope: string;
  /**
   * When set, only this merchant's payments are visible (others are `not_found`), and the answers
   * count in the payer's guard at this merchant ("Lockout scopes").
   */
  merchantId?: string;
  /** When set, only this payer's payments are visible. */
  payerId?: string;
}

export type ConfirmAnswer =
  /** The keyed digest of the response given; compared with the factor's digest in constant time. */
  | { kind: 'digest'; digest: string }
  /** A wrong answer decided before the store (a wrong PIN or password): counted as a failure. */
  | { kind: 'wrong' }
  /** Satisfied by a decision made outside (the bank, M5); `bankAuthorizationCode` is recorded. */
  | { kind: 'accept'; bankAuthorizationCode?: string }
  /** Declines the payment (a paired device on the wrong path, the bank said no). */
  | { kind: 'decline'; reason: DeclineReason; detail: string };

export interface ConfirmItem {
  paymentId: string;
  caller: StepCaller;
  /** Scoped to the caller and the payment. */
  key: string;
  fingerprint: string;
  factor: Factor;
  /** Factors that, when required, must be satisfied before `factor` (M2: SMS_OTP before IVR_PASSWORD). */
  after: readonly Factor[];
  answer: ConfirmAnswer;
  /** Attempts a payment gets again once one of its factors is satisfied (5). */
  attemptsMax: number;
  /** The idempotency record lives this long (24 h), milliseconds; it is stored with the payment. */
  keyTtlMs: number;
  nowMs: number;
}

/**
 * What a confirm did. Every outcome but `not_found`, `conflict` and `replayed` stored its result
 * under the key in the same atomic operation: the payment (`p`) or the refusal token, so a retry
 * gets the same answer without a second attempt being counted (at `operationKeysPerPaymentMax`,
 * `refused` and `approved` are not stored: they changed nothing and decide the same again).
 *
 * **A confirm leaves the due time alone.** A payment it approves, declines, exhausts, locks or
 * expires keeps its `dueAtMs` (from the create: its expiry): the caller posts or voids it at once
 * and commits it out of the due index; after a crash the sweeper finds it at that time (the
 * reservation outlives the challenge by a grace, so a late post still lands).
 *
 * The checks, in order: visibility; the key; state (APPROVED: `approved`, nothing changes;
 * other than CHALLENGED: `refused` `state:<STATE>`); `factor` required and not yet satisfied
 * (`refused` `factor`); `after` (`refused` `order`); expiry (`nowMs ≥ expiresAtMs`: EXPIRED);
 * the payer's lockout (`locked`: the payment is DECLINED); then the answer.
 *
 * **Lockout scopes** (README "Tenant safety"): a payer has a payer-wide guard and one per merchant.
 * An answer given through a merchant's call (`caller.merchantId` set) counts — failure or, for a
 * compared answer, success ending the streak — in the guard of (payer, that merchant) only; any
 * other (the payer's own token, the service's telco relays; `GuardEvent`) in the payer-wide one.
 * A confirm is `locked` while the payer-wide guard is locked, or, through a merchant, while that
 * merchant's guard for the payer is; `retryAfterMs` is the later end. So a merchant's wrong
 * answers never lock the payer at another merchant or on the payer's own terminal, while the
 * payer's own failures lock the payer everywhere.
 */
export type ConfirmOutcome =
  | { outcome: 'not_found' }
  | { outcome: 'conflict' }
  /** Same key and request before: the stored result (`p` = the payment, as it is now in `record`). */
  | { outcome: 'replayed'; result: string; record: PaymentRecord | undefined }
  | { outcome: 'refused'; refusal: string; record: PaymentRecord }
  /** The payment was APPROVED already (its post may still be due): nothing changed. */
  | { outcome: 'approved'; record: PaymentRecord }
  /** Past its expiry: now EXPIRED (its due time unchanged: the void follows). */
  | { outcome: 'expired'; record: PaymentRecord }
  /** The factor is satisfied; the payment is APPROVED when it was the last one (its due time unchanged: the post follows). */
  | { outcome: 'satisfied'; record: PaymentRecord }
  /** Wrong; `attemptsLeft` > 0 (the payment keeps them in `attemptsLeft`). */
  | { outcome: 'mismatch'; attemptsLeft: number; record: PaymentRecord }
  /** Wrong and no attempts left: DECLINED (ATTEMPTS_EXHAUSTED); the void follows. */
  | { outcome: 'exhausted'; record: PaymentRecord }
  /** The payer is locked out: nothing compared, the payment DECLINED (ATTEMPTS_EXHAUSTED). */
  | { outcome: 'locked'; retryAfterMs: number; record: PaymentRecord }
  /** `answer.kind === 'decline'` applied: DECLINED with its reason; the void follows. */
  | { outcome: 'declined'; record: PaymentRecord };

// ------------------------------------------------------------------ step: commit

/** An idempotency key claimed in the same atomic operation as a commit. */
export interface CommitClaim {
  scope: string;
  key: string;
  fingerprint: string;
  /** Stored under the key: `p` (the payment) or a refusal token. */
  result: string;
  keyTtlMs: number;
}

export interface CommitItem {
  paymentId: string;
  /** The record's version the change was computed from: another version makes the item `stale`. */
  expectVersion: number;
  /**
   * The new payment (same id, merchant and payer). Undefined: the record is left as it is (only
   * `dueAtMs` and `claim` apply) and its version does not change.
   */
  payment?: Payment;
  /** Undefined: the digests stay. */
  digests?: Partial<Record<Factor, string>>;
  /** A number: (re)indexed at that time; null: out of the due index; undefined: unchanged. */
  dueAtMs?: number | null;
  /** Stored with the payment; at `operationKeysPerPaymentMax` only when the commit has a `payment`. */
  claim?: CommitClaim;
  /**
   * The ledger decided this transition: the post exists, so SUCCEEDED is the truth whatever the
   * record says. Only for a `payment` whose state is SUCCEEDED over a record that is APPROVED or
   * SUCCEEDED, built from that record (the same payment but `state` and `updatedAtMs`; no
   * decline reason, decline detail or sealed first code), with `dueAtMs` given (a number or
   * null) and no `claim` (checks.ts asserts these). The adapter may write it without reading the
   * record: state, `updatedAtMs`, version := `expectVersion + 1`, digests {}, the decline fields
   * and sealed first code cleared, `dueAtMs` applied; it is never `stale`, and a repeated settle
   * writes the same again. The outcome is `committed` with a record the adapter may build from
   * the item (`payment`, version `expectVersion + 1`, digests {}, `dueAtMs`). A settle of a
   * payment that has no record is a programmer error: an assertion, and no record is made
   * (memory also asserts that the record is APPROVED or SUCCEEDED with the same merchant and payer).
   */
  settle?: true;
  nowMs: number;
}

export type CommitOutcome =
  /** Applied (at version +1 when the item had a `payment`); a settle's record is built from the item. */
  | { outcome: 'committed'; record: PaymentRecord }
  /** The record is at another version (or gone, claim or not: claims live with it): nothing written; the current record to decide again. */
  | { outcome: 'stale'; record: PaymentRecord | undefined }
  /** `claim` was used by the same request before: nothing written; its stored result. */
  | { outcome: 'replayed'; result: string }
  /** `claim`'s key was used for another request: nothing written. */
  | { outcome: 'conflict' };

// ------------------------------------------------------------------ keyed claims (enrollment)

export interface KeyClaim {
  scope: string;
  key: string;
  fingerprint: string;
  /** Stored with a new claim and returned to whoever takes it over after its lease (e.g. the id the work will create). */
  value: string;
  /** How long the claim belongs to this caller, milliseconds; then a retry may take it over. */
  leaseMs: number;
  keyTtlMs: number;
  nowMs: number;
}

export type KeyClaimOutcome =
  /** The caller owns the key until `nowMs + leaseMs` (or took over an expired lease: `value` is the first claimant's). */
  | { status: 'claimed'; value: string; takenOver: boolean }
  | { status: 'done'; result: string }
  | { status: 'in_progress'; retryAfterMs: number }
  | { status: 'conflict' };

// ------------------------------------------------------------------ guards

/** The payer's payer-wide failure streak and lockout (DESIGN §6), outside a confirm (M3's authentication password). */
export interface GuardEvent {
  payerId: string;
  /** check: only read the lockout; failure: count one; success: end the streak. */
  event: 'check' | 'failure' | 'success';
  nowMs: number;
}

export interface GuardOutcome {
  /** Milliseconds the payer is (now) locked out for; undefined when not locked. */
  lockedForMs: number | undefined;
}

export interface LockoutPolicy {
  /** Consecutive failures across challenges before the payer is locked out (5). */
  failuresMax: number;
  /** First lockout duration, milliseconds; doubles with each further lockout. */
  backoffBaseMs: number;
  /** Lockout duration cap, milliseconds. */
  backoffMaxMs: number;
  /** How long the failure streak and lockout count are remembered, milliseconds. */
  memoryMs: number;
}

/** The defaults of DESIGN.md §6: 5 consecutive failures, then 1 min doubling up to 1 h, remembered 24 h. */
export const lockoutPolicyDefault: LockoutPolicy = Object.freeze({ failuresMax: 5, backoffBaseMs: 60_000, backoffMaxMs: 3_600_000, memoryMs: 86_400_000 });

/** Lockout number `lockoutsBefore + 1` lasts base × 2^lockoutsBefore, capped. */
export function lockoutMs(policy: LockoutPolicy, lockoutsBefore: number): number {
  return Math.min(policy.backoffBaseMs * 2 ** Math.min(lockoutsBefore, 40), policy.backoffMaxMs);
}

// ------------------------------------------------------------------ queries

export interface PaymentQuery {
  merchantId?: string;
  payerId?: string;
  states?: readonly PaymentState[];
  /** Payments with an id greater than this (ids are time-ordered), for paging. */
  afterId?: string;
  /** At most this many (1..`pageMax`). */
  limit: number;
}

// ------------------------------------------------------------------ the port

export interface PaymentStore {
  /** Human-readable: where the state lives (for the start-up banner). */
  readonly describe: string;

  create(items: readonly CreateItem[]): Promise<CreateOutcome[]>;
  confirm(items: readonly ConfirmItem[]): Promise<ConfirmOutcome[]>;
  commit(items: readonly CommitItem[]): Promise<CommitOutcome[]>;

  /** The records of `ids` (undefined where absent), in order; at most `readIdsMax`. */
  get(ids: readonly string[]): Promise<(PaymentRecord | undefined)[]>;
  /** Payments by merchant or payer index (one of the two is required), oldest first, filtered; `limit` ≤ `pageMax`. */
  list(query: PaymentQuery): Promise<Payment[]>;
  /**
   * Every payment, in pages of at most `limit` (reconcile --all). `cursor` '' starts; the next
   * page's cursor is returned, '' at the end. Order is the adapter's.
   */
  scan(cursor: string, limit: number): Promise<{ records: PaymentRecord[]; cursor: string }>;

  /**
   * The sweeper: up to `limit` records whose due time has come, each claimed atomically by moving
   * its due time to `nowMs + leaseMs`, so concurrent sweepers (other processes) take others. An
   * adapter may look at part of its due index per call (Redis: some of its shards, in rotation);
   * it names the bound within which every due record is claimed.
   */
  claimDue(request: { nowMs: number; limit: number; leaseMs: number }): Promise<PaymentRecord[]>;

  claimKey(claim: KeyClaim): Promise<KeyClaimOutcome>;
  /** Stores the result of a claimed key (the work is done). */
  completeKey(done: { scope: string; key: string; fingerprint: string; result: string; keyTtlMs: number; nowMs: number }): Promise<void>;
  /** Releases a claimed key whose work failed before changing anything, so a retry may run it. */
  releaseKey(release: { scope: string; key: string; fingerprint: string }): Promise<void>;

  guard(events: readonly GuardEvent[]): Promise<GuardOutcome[]>;

  /** M5: a pay number (by its keyed digest, never the number) standing for a payer, for `ttlMs`. */
  putPayNumber(entry: { numberDigest: string; payerId: string; ttlMs: number; nowMs: number }): Promise<void>;
  /**
   * M5: uses a pay number: the payer when it is live and unused or used by the same `claimant`
   * (a retried request); undefined otherwise. Single use.
   */
  takePayNumber(take: { numberDigest: string; claimant: string; nowMs: number }): Promise<string | undefined>;

  close(): Promise<void>;
}
