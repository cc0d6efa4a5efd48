import type { Merchant, Payer, Payment, PaymentState, SealedEnvelope } from './model.js';

/**
 * Ports of the authorization domain. Adapters live in authz/store/ (memory, Redis); services/
 * picks one. Every adapter passes the same contract suite. Operating outcomes are values;
 * an unreachable backend throws `StoreUnavailableError`.
 */

export { StoreUnavailableError } from './store/port.js';

// ------------------------------------------------------------------ challenge store

/** A challenge as stored: only keyed digests of the accepted responses, never a code. */
export interface ChallengeInput {
  /** The payment id (one live challenge per payment). */
  challengeId: string;
  payerId: string;
  /**
   * HMAC-SHA256 digests (hex) of every response that satisfies the challenge, computed by the
   * caller with a key the store never sees (e.g. the digest of the expected second code and the
   * digest of the first code). Compared whole; a match consumes the challenge.
   */
  responseDigests: string[];
  /** Lifetime in milliseconds; the challenge is gone after it. */
  ttlMs: number;
  /** Failed attempts allowed before the challenge is declined (5). */
  attemptsMax: number;
}

export type VerifyOutcome =
  /** The digest matched: the challenge is consumed (single use); the payer's failure streak is reset. */
  | { outcome: 'ok'; matchedIndex: number }
  /** Wrong response; `attemptsLeft` > 0. */
  | { outcome: 'mismatch'; attemptsLeft: number }
  /** Wrong response and no attempts left: the challenge is consumed and must be declined. */
  | { outcome: 'exhausted' }
  /** No such live challenge: never created, expired, or already consumed. */
  | { outcome: 'not_found' }
  /** The payer is locked out; nothing was checked and no attempt was counted. */
  | { outcome: 'locked'; retryAfterMs: number };

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

export type IdempotencyOutcome =
  /** First use of the key: the caller does the work, then calls `completeIdempotency`. */
  | { status: 'new' }
  /** Same key and same request, done: the stored result. */
  | { status: 'done'; result: string }
  /** Same key and same request, still being worked on by another call. */
  | { status: 'in_progress' }
  /** Same key, different request. */
  | { status: 'conflict' };

/** Items one batch call of the challenge store takes at most (a batch RPC's 1000 items × 3 rate limits). */
export const challengeStoreBatchMax = 3_000;

/** One response to check in `verifyAndConsumeMany`: the arguments of `verifyAndConsume`. */
export interface VerifyRequest {
  challengeId: string;
  payerId: string;
  digest: string;
  forceMismatch?: boolean;
}

/** One key of `beginIdempotencyMany`: the arguments of `beginIdempotency` under the call's scope. */
export interface IdempotencyClaim {
  key: string;
  fingerprint: string;
  resultIfNew?: string;
}

/** One key of `completeIdempotencyMany`: the arguments of `completeIdempotency` under the call's scope. */
export interface IdempotencyResult {
  key: string;
  fingerprint: string;
  result: string;
}

/** One event of `hitRateLimits`: the arguments of `hitRateLimit`. */
export interface RateLimitHit {
  key: string;
  limit: number;
  windowMs: number;
}

/**
 * The store of challenges, idempotency keys, rate limits and lockouts. Each `...Many` method is
 * its single-item method applied to every item in order, each item atomic on its own as the
 * single call is (a later item sees what an earlier one did), in one round trip; the items are
 * not one transaction together. At most `challengeStoreBatchMax` items per call.
 */
export interface ChallengeStore {
  /** Stores (or replaces) the challenge for a payment. */
  putChallenge(challenge: ChallengeInput): Promise<void>;
  /** `putChallenge` for each challenge. */
  putChallenges(challenges: ChallengeInput[]): Promise<void>;
  /**
   * Checks a response digest and counts the attempt, atomically (one round trip): lockout check,
   * compare, attempt counting, consume on success or exhaustion, payer failure streak and
   * lockout with exponential back-off. `forceMismatch` counts a failed attempt without comparing
   * (used when another part of the proof, such as a PIN, was already wrong).
   */
  verifyAndConsume(challengeId: string, payerId: string, digest: string, forceMismatch?: boolean): Promise<VerifyOutcome>;
  /** `verifyAndConsume` for each request; the outcomes in request order. */
  verifyAndConsumeMany(requests: VerifyRequest[]): Promise<VerifyOutcome[]>;
  /** Removes a challenge (payment cancelled or declined); no-op when absent. */
  dropChallenge(challengeId: string): Promise<void>;
  /** Attempts left on a live challenge, or undefined when there is none. */
  attemptsLeft(challengeId: string): Promise<number | undefined>;
  /** The payer's current lockout, if any: milliseconds until it ends. */
  lockedFor(payerId: string): Promise<number | undefined>;

  /**
   * Claims an idempotency key for a request fingerprint (e.g. SHA-256 of the canonical request),
   * scoped by the caller (`scope` = merchant id). Keys are kept `ttlMs` (24 h). With
   * `resultIfNew`, a new key is stored as done with that result in the same round trip (the
   * caller names its work up front, e.g. the id of the payment it is about to create).
   */
  beginIdempotency(scope: string, key: string, fingerprint: string, ttlMs: number, resultIfNew?: string): Promise<IdempotencyOutcome>;
  /** `beginIdempotency` for each claim under one scope; the outcomes in claim order (a key claimed twice: the second sees the first). */
  beginIdempotencyMany(scope: string, claims: IdempotencyClaim[], ttlMs: number): Promise<IdempotencyOutcome[]>;
  /** Stores the result for a claimed key. */
  completeIdempotency(scope: string, key: string, fingerprint: string, result: string, ttlMs: number): Promise<void>;
  /** `completeIdempotency` for each result under one scope. */
  completeIdempotencyMany(scope: string, results: IdempotencyResult[], ttlMs: number): Promise<void>;
  /** Releases a claimed key whose work failed before doing anything, so a retry may run it. */
  abandonIdempotency(scope: string, key: string): Promise<void>;

  /**
   * Counts one event against a fixed-window rate limit; true when within `limit` per `windowMs`.
   * When over the limit the event is not counted.
   */
  hitRateLimit(key: string, limit: number, windowMs: number): Promise<boolean>;
  /** `hitRateLimit` for each event, in order (two events on one key count twice); true where within the limit. */
  hitRateLimits(hits: RateLimitHit[]): Promise<boolean[]>;

  /**
   * M5: remembers a dynamic pay number (by its keyed digest, never the number) standing for a
   * payer, for `ttlMs`.
   */
  putPayNumber(numberDigest: string, payerId: string, ttlMs: number): Promise<void>;
  /**
   * M5: uses a pay number, atomically: the payer it stands for when it is live and unused, or
   * already used by the same `claimant` (a retried request); undefined otherwise (unknown,
   * expired, or used by another request). Single use.
   */
  takePayNumber(numberDigest: string, claimant: string): Promise<string | undefined>;

  close(): Promise<void>;
}

// ------------------------------------------------------------------ payments

export interface PaymentQuery {
  merchantId?: string;
  payerId?: string;
  states?: PaymentState[];
  /** Payments with id greater than this (ids are time-ordered), for paging. */
  afterId?: string;
  /** At most this many (1..1000). */
  limit: number;
}

export interface PutOptions {
  /**
   * Each payment was read from this repository and keeps its merchant and payer: only the record
   * changes, so an adapter may leave its indexes as they are (Redis: no index writes).
   */
  replacing?: boolean;
}

export interface PaymentRepository {
  get(id: string): Promise<Payment | undefined>;
  getMany(ids: string[]): Promise<(Payment | undefined)[]>;
  /** Inserts or replaces. */
  put(payment: Payment, options?: PutOptions): Promise<void>;
  putMany(payments: Payment[], options?: PutOptions): Promise<void>;
  /** Oldest first. */
  list(query: PaymentQuery): Promise<Payment[]>;
  close(): Promise<void>;
}

// ------------------------------------------------------------------ directory

/** A directory record changed (or, `all`, anything may have: a lost notification channel came back). */
export type DirectoryChange = { kind: 'payer' | 'merchant'; id: string } | { kind: 'all' };

export interface Directory {
  getPayer(id: string): Promise<Payer | undefined>;
  findPayerByPhone(phone: string): Promise<Payer | undefined>;
  /** The payer with this login account (M3 checkouts). */
  findPayerByLogin(loginAccount: string): Promise<Payer | undefined>;
  /**
   * The payer whose terminal token hashes to this (SHA-256 hex): its current token or its previous
   * one, which the caller checks is still in its overlap (`credentialLive`; CachedDirectory does).
   * A put indexes both and drops the index entries of hashes the record no longer holds.
   */
  findPayerByTokenHash(tokenHash: string): Promise<Payer | undefined>;
  putPayer(payer: Payer): Promise<void>;
  getMerchant(id: string): Promise<Merchant | undefined>;
  /** The merchant whose current or previous API key hashes to this; as `findPayerByTokenHash`. */
  findMerchantByApiKeyHash(apiKeyHash: string): Promise<Merchant | undefined>;
  putMerchant(merchant: Merchant): Promise<void>;
  /**
   * Calls `listener` after every change of a record, in every process that watches (caches forget
   * it). Optional: a directory without it is not cached.
   */
  watch?(listener: (change: DirectoryChange) => void): void;
  close(): Promise<void>;
}

// ------------------------------------------------------------------ bank front-end (M5)

/** A bank front-end's public key, relayed to terminals (the private key never leaves the bank). */
export interface BankKey {
  keyId: string;
  suite: string;
  publicKey: Uint8Array;
  /** Unix milliseconds after which the bank no longer accepts the key. */
  expiresAtMs: number;
}

export interface CardPaymentRequest {
  /** Idempotency: one decision per payment (the payment id). */
  paymentId: string;
  merchantId: string;
  amount: bigint;
  currency: string;
  envelope: SealedEnvelope;
}

export type BankDecision =
  | { decision: 'APPROVED'; reasonCode: string; reason: string; authorizationCode: string }
  | { decision: 'DECLINED'; reasonCode: string; reason: string };

/**
 * The payer's bank (M5), reached over gRPC by services/. It alone opens the envelope. A decline
 * is a value; an unreachable bank, a deadline or a malformed answer throws
 * `BankUnavailableError` (the payment fails closed); a request the bank rejects as malformed
 * throws `BankRequestError`.
 */
export interface BankGateway {
  publicKey(): Promise<BankKey>;
  authorize(request: CardPaymentRequest): Promise<BankDecision>;
  close(): Promise<void>;
}

export class BankUnavailableError extends Error {
  override readonly name = 'BankUnavailableError';
}

export class BankRequestError extends Error {
  override readonly name = 'BankRequestError';
}
