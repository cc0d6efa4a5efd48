import { timingSafeEqual } from 'node:crypto';
import { unreachable } from '../../../ledger/assert.js';
import { MinHeap } from '../../../ledger/heap.js';
import type { Factor, Payment } from '../../model.js';
import { terminalStates } from '../../model.js';
import { assert, assertKeyClaim, assertQuery, copyRecord } from '../checks.js';
import { clonePayment } from '../payment-codec.js';
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
  lockoutMs,
  operationKeysPerPaymentMax,
  type PaymentQuery,
  type PaymentRecord,
  rateWindowOf,
  StoreFullError,
} from '../port.js';

/**
 * The payment store's semantics in process: the reference the Redis scripts follow and the
 * state the journal adapter persists. Every operation is synchronous, hence atomic, and changes
 * state only through `apply(mutation)`: the journal records exactly those mutations and replays
 * them (never the steps, which read the clock through their items).
 */

/** An idempotency record: its request's fingerprint and what it answered (or, while leased, who works on it). */
export interface KeyEntry {
  fingerprint: string;
  /** Stored result: `p:<payment id>` (creates), `p` (payment operations) or a refusal token; undefined while claimed. */
  result?: string;
  /** Keyed claims (enrollment): what the first claimant will create, and until when it owns the key. */
  value?: string;
  leaseUntilMs?: number;
  expiresAtMs: number;
}

export interface Counter {
  count: number;
  expiresAtMs: number;
}

/**
 * A guard: a failure streak, lockout count and lockout, keyed by `guardKeyOf` (the payer-wide one
 * by the payer id, a merchant's by `<payer id>/m:<merchant id>`).
 */
export function guardKeyOf(payerId: string, merchantId: string | undefined): string {
  return merchantId === undefined || merchantId === '' ? payerId : `${payerId}/m:${merchantId}`; // '' as confirm-lua.ts: none
}

/** A payer's failure streak, lockout count and lockout. */
export interface GuardEntry {
  streak: number;
  lockouts: number;
  lockedUntilMs: number;
  /** Streak and lockout count are forgotten then. */
  expiresAtMs: number;
}

export interface PayNumberEntry {
  payerId: string;
  claimant: string | undefined;
  expiresAtMs: number;
}

/** Every change the state ever makes. */
export type Mutation =
  | { op: 'record'; record: PaymentRecord }
  | { op: 'drop'; paymentId: string }
  | { op: 'key'; id: string; entry: KeyEntry }
  | { op: 'unkey'; id: string }
  | { op: 'counter'; key: string; counter: Counter }
  /** `payerId`: the guard's key (`guardKeyOf`), the payer id for the payer-wide guard. */
  | { op: 'guard'; payerId: string; entry: GuardEntry }
  | { op: 'payNumber'; digest: string; entry: PayNumberEntry }
  | { op: 'due'; paymentId: string; dueAtMs: number | undefined };

export interface MemoryStateOptions {
  lockout: LockoutPolicy;
  /** Payment records kept at most; a create beyond it throws StoreFullError naming `fullHint`. */
  paymentsMax: number;
  /** Idempotency records, counters, guards and pay numbers kept at most (live ones), together. */
  entriesMax: number;
  /** What to do when full, for the error message. */
  fullHint: string;
}

/** Key ids: creates by merchant scope; payment operations by caller scope and payment; keyed claims by scope. */
export const keyIds = {
  create: (scope: string, key: string) => `c\u0000${scope}\u0000${key}`,
  operation: (scope: string, paymentId: string, key: string) => `o\u0000${scope}\u0000${paymentId}\u0000${key}`,
  claim: (scope: string, key: string) => `k\u0000${scope}\u0000${key}`,
};

/** The payment an operation key id belongs to; undefined for other key ids (scopes and keys hold no NUL). */
function paymentOfKeyId(id: string): string | undefined {
  if (!id.startsWith('o\u0000')) return undefined;
  const scopeEnd = id.indexOf('\u0000', 2);
  if (scopeEnd < 0) return undefined;
  const end = id.indexOf('\u0000', scopeEnd + 1);
  return end < 0 ? id.slice(scopeEnd + 1) : id.slice(scopeEnd + 1, end);
}

/** The counter of `key`'s aligned window `window` (`rateWindowOf`): windows are keys of their own. */
export function rateCounterKey(key: string, window: number): string {
  return `${key}:${window}`;
}

export class MemoryState {
  readonly records = new Map<string, PaymentRecord>();
  readonly keys = new Map<string, KeyEntry>();
  readonly counters = new Map<string, Counter>();
  readonly guards = new Map<string, GuardEntry>();
  readonly payNumbers = new Map<string, PayNumberEntry>();
  /**
   * The operation key ids stored for each payment (live or not yet swept): derived from `keys`,
   * never journaled. One id — the usual case — is held as the string itself, more in an array
   * (a Set per payment would cost ~150 bytes each).
   */
  private readonly operationKeys = new Map<string, string | string[]>();
  /** Payment ids per merchant and per payer, sorted (ids are time-ordered: appends in the usual case). */
  private readonly byMerchant = new Map<string, string[]>();
  private readonly byPayer = new Map<string, string[]>();
  /** Due times; entries whose record moved on are skipped when popped. */
  private readonly due = new MinHeap<{ id: string; at: number }>((e) => e.at);
  private readonly sink: ((m: Mutation) => void)[] = [];

  constructor(readonly options: MemoryStateOptions) {}

  /** Calls `listener` with every mutation applied from now on (the journal). */
  onMutation(listener: (m: Mutation) => void): void {
    this.sink.push(listener);
  }

  get entries(): number {
    return this.keys.size + this.counters.size + this.guards.size + this.payNumbers.size;
  }

  // ---------------------------------------------------------------- mutations

  apply(m: Mutation): void {
    switch (m.op) {
      case 'record':
        this.putRecord(m.record);
        break;
      case 'drop':
        this.dropRecord(m.paymentId);
        break;
      case 'key':
        this.keys.set(m.id, m.entry);
        this.indexKey(m.id);
        break;
      case 'unkey':
        this.forgetKey(m.id);
        break;
      case 'counter':
        this.counters.set(m.key, m.counter);
        break;
      case 'guard':
        this.guards.set(m.payerId, m.entry);
        break;
      case 'payNumber':
        this.payNumbers.set(m.digest, m.entry);
        break;
      case 'due': {
        const record = this.records.get(m.paymentId);
        if (record !== undefined) this.putRecord({ ...record, dueAtMs: m.dueAtMs });
        break;
      }
    }
    for (const listener of this.sink) listener(m);
  }

  private putRecord(record: PaymentRecord): void {
    const previous = this.records.get(record.payment.id);
    this.records.set(record.payment.id, record);
    if (previous === undefined) {
      insertSorted(indexOf(this.byMerchant, record.payment.merchantId), record.payment.id);
      insertSorted(indexOf(this.byPayer, record.payment.payerId), record.payment.id);
    }
    if (record.dueAtMs !== undefined && record.dueAtMs !== previous?.dueAtMs) this.due.push({ id: record.payment.id, at: record.dueAtMs });
  }

  private indexKey(id: string): void {
    const sliced = paymentOfKeyId(id);
    if (sliced === undefined) return;
    // Keyed by the record's own id string when there is one (no second copy of it).
    const paymentId = this.records.get(sliced)?.payment.id ?? sliced;
    const ids = this.operationKeys.get(paymentId);
    if (ids === undefined) this.operationKeys.set(paymentId, id);
    else if (typeof ids === 'string') {
      if (ids !== id) this.operationKeys.set(paymentId, [ids, id]);
    } else if (!ids.includes(id)) ids.push(id);
  }

  /** Deletes a key and its place in `operationKeys`. */
  private forgetKey(id: string): void {
    this.keys.delete(id);
    const paymentId = paymentOfKeyId(id);
    if (paymentId === undefined) return;
    const ids = this.operationKeys.get(paymentId);
    if (ids === id) this.operationKeys.delete(paymentId);
    else if (Array.isArray(ids)) {
      const at = ids.indexOf(id);
      if (at >= 0) ids.splice(at, 1);
      if (ids.length === 1) this.operationKeys.set(paymentId, ids[0]!);
    }
  }

  /** A copy of the payment's operation key ids (its caller may forget some while walking it). */
  private operationKeysOf(paymentId: string): string[] {
    const ids = this.operationKeys.get(paymentId);
    return ids === undefined ? [] : typeof ids === 'string' ? [ids] : [...ids];
  }

  private dropRecord(paymentId: string): void {
    const record = this.records.get(paymentId);
    if (record === undefined) return;
    this.records.delete(paymentId);
    removeSorted(this.byMerchant, record.payment.merchantId, paymentId);
    removeSorted(this.byPayer, record.payment.payerId, paymentId);
  }

  // ---------------------------------------------------------------- step: create

  // The step methods take items their adapter checked (memory-store.ts checks a call's every item
  // before its pass): checked once, not again here.
  create(item: CreateItem): CreateOutcome {
    const id = keyIds.create(item.scope, item.key);
    const stored = this.liveKey(id, item.nowMs);
    if (stored !== undefined) return this.replayCreate(stored, item.fingerprint);
    // Everything that can refuse the item is checked before it changes anything (no counter is
    // counted for a create that then throws): the record, the key and a counter per limit.
    if (this.records.has(item.payment.id)) unreachable(`payment id ${item.payment.id} is already taken`);
    if (this.records.size >= this.options.paymentsMax) {
      throw new StoreFullError(`the payment store holds ${this.records.size} payments, its limit (paymentsMax); ${this.options.fullHint}`);
    }
    this.checkRoom(item.rateLimits.length + 1);
    for (let i = 0; i < item.rateLimits.length; i++) {
      // Every hit counts into its aligned window, the one over the limit too (port.ts, RateLimitHit).
      const hit = item.rateLimits[i]!;
      const window = rateWindowOf(item.nowMs, hit.windowMs);
      const key = rateCounterKey(hit.key, window);
      const count = (this.liveCounter(key, item.nowMs)?.count ?? 0) + 1;
      this.apply({ op: 'counter', key, counter: { count, expiresAtMs: (window + 1) * hit.windowMs } });
      if (count > hit.limit) return this.refuseCreate(id, item, `rate:${i}`);
    }
    // Copied in as on every read: the caller keeps its objects, the store shares none.
    const record: PaymentRecord = { payment: clonePayment(item.payment), version: 1, digests: { ...item.digests }, dueAtMs: item.dueAtMs };
    this.apply({ op: 'record', record });
    this.apply({ op: 'key', id, entry: { fingerprint: item.fingerprint, result: `p:${item.payment.id}`, expiresAtMs: item.nowMs + item.keyTtlMs } });
    return { outcome: 'created', record: copyRecord(record) };
  }

  private replayCreate(stored: KeyEntry, fingerprint: string): CreateOutcome {
    if (stored.fingerprint !== fingerprint) return { outcome: 'conflict' };
    const result = stored.result ?? '';
    if (!result.startsWith('p:')) return { outcome: 'refused', refusal: result };
    const record = this.records.get(result.slice(2));
    // Memory and journal write both at once: a key never names a missing record here (retention
    // keeps closed records far longer than keys live).
    if (record === undefined) return { outcome: 'missing', paymentId: result.slice(2) };
    return { outcome: 'replayed', record: copyRecord(record) };
  }

  private refuseCreate(id: string, item: CreateItem, refusal: string): CreateOutcome {
    this.checkRoom(1);
    this.apply({ op: 'key', id, entry: { fingerprint: item.fingerprint, result: refusal, expiresAtMs: item.nowMs + item.keyTtlMs } });
    return { outcome: 'refused', refusal };
  }

  // ---------------------------------------------------------------- step: confirm

  confirm(item: ConfirmItem): ConfirmOutcome {
    const record = this.records.get(item.paymentId);
    if (record === undefined || !visibleTo(record.payment, item.caller)) return { outcome: 'not_found' };
    const keyId = keyIds.operation(item.caller.scope, item.paymentId, item.key);
    const stored = this.liveKey(keyId, item.nowMs);
    if (stored !== undefined) {
      if (stored.fingerprint !== item.fingerprint) return { outcome: 'conflict' };
      return { outcome: 'replayed', result: stored.result ?? '', record: copyRecord(record) };
    }
    // Room for the key (and the payer's guard a failure may add) before the attempt is counted:
    // a full store refuses the item without changing the payment.
    this.checkRoom(this.guards.has(guardKeyOf(record.payment.payerId, item.caller.merchantId)) ? 1 : 2);
    const outcome = this.confirmRecord(record, item);
    const changed = this.records.get(item.paymentId)!.version !== record.version;
    this.storeOperationKey(
      item.paymentId,
      keyId,
      { fingerprint: item.fingerprint, result: resultOf(outcome), expiresAtMs: item.nowMs + item.keyTtlMs },
      changed,
      item.nowMs,
    );
    return outcome;
  }

  /**
   * Stores an operation's idempotency record with its payment (port.ts, "Keys"): always when the
   * operation changed the record, else only while the payment holds fewer than
   * `operationKeysPerPaymentMax` live ones. The payment's expired ones are forgotten on the way
   * (not journaled, like `sweepEntries`: an expired key is dead whether or not it is in memory).
   */
  private storeOperationKey(paymentId: string, id: string, entry: KeyEntry, changed: boolean, now: number): void {
    let live = 0;
    for (const other of this.operationKeysOf(paymentId)) {
      if ((this.keys.get(other)?.expiresAtMs ?? 0) > now) live += 1;
      else if (other !== id) this.forgetKey(other);
    }
    if (changed || live < operationKeysPerPaymentMax) this.apply({ op: 'key', id, entry });
  }

  private confirmRecord(record: PaymentRecord, item: ConfirmItem): ConfirmOutcome {
    const p = record.payment;
    if (p.state === 'APPROVED') return { outcome: 'approved', record: copyRecord(record) };
    if (p.state !== 'CHALLENGED') return { outcome: 'refused', refusal: `state:${p.state}`, record: copyRecord(record) };
    if (!p.requiredFactors.includes(item.factor) || p.satisfiedFactors.includes(item.factor))
      return { outcome: 'refused', refusal: 'factor', record: copyRecord(record) };
    if (item.after.some((f) => p.requiredFactors.includes(f) && !p.satisfiedFactors.includes(f)))
      return { outcome: 'refused', refusal: 'order', record: copyRecord(record) };
    const now = item.nowMs;
    if (now >= p.expiresAtMs) return { outcome: 'expired', record: this.finish(record, { state: 'EXPIRED' }, now) };
    // port.ts "Lockout scopes": the payer-wide guard always; a merchant's call also its (payer, merchant) guard, where it counts.
    const wide = this.liveGuard(p.payerId, now);
    const guardKey = guardKeyOf(p.payerId, item.caller.merchantId);
    const guard = guardKey === p.payerId ? wide : this.liveGuard(guardKey, now);
    const lockedUntilMs = Math.max(wide?.lockedUntilMs ?? 0, guard?.lockedUntilMs ?? 0);
    if (lockedUntilMs > now) {
      const declined = this.finish(record, { state: 'DECLINED', declineReason: 'ATTEMPTS_EXHAUSTED', declineDetail: 'payer locked out' }, now);
      return { outcome: 'locked', retryAfterMs: lockedUntilMs - now, record: declined };
    }
    const answer = item.answer;
    if (answer.kind === 'decline') {
      return { outcome: 'declined', record: this.finish(record, { state: 'DECLINED', declineReason: answer.reason, declineDetail: answer.detail }, now) };
    }
    const matched = answer.kind === 'accept' || (answer.kind === 'digest' && digestMatches(record.digests[item.factor], answer.digest));
    if (matched) {
      if (answer.kind !== 'accept') this.guardSuccess(guardKey, guard);
      return { outcome: 'satisfied', record: this.satisfy(record, item, answer.kind === 'accept' ? answer.bankAuthorizationCode : undefined) };
    }
    this.guardFailure(guardKey, guard, now);
    const left = p.attemptsLeft - 1;
    if (left <= 0) {
      const declined = this.finish(
        record,
        { state: 'DECLINED', declineReason: 'ATTEMPTS_EXHAUSTED', declineDetail: 'too many wrong answers', attemptsLeft: 0 },
        now,
      );
      return { outcome: 'exhausted', record: declined };
    }
    const next = this.write(record, { ...p, attemptsLeft: left, updatedAtMs: now }, record.digests, record.dueAtMs);
    return { outcome: 'mismatch', attemptsLeft: left, record: next };
  }

  private satisfy(record: PaymentRecord, item: ConfirmItem, bankAuthorizationCode: string | undefined): PaymentRecord {
    const p = record.payment;
    const satisfied = [...p.satisfiedFactors, item.factor];
    const digests = { ...record.digests };
    delete digests[item.factor];
    const approved = p.requiredFactors.every((f) => satisfied.includes(f));
    const next = clonePayment(p);
    next.satisfiedFactors = satisfied;
    next.attemptsLeft = item.attemptsMax;
    next.updatedAtMs = item.nowMs;
    if (bankAuthorizationCode !== undefined) next.bankAuthorizationCode = bankAuthorizationCode;
    if (approved) {
      next.state = 'APPROVED';
      if (next.sealedFirstCode !== undefined) return this.write(record, withoutSealedCode(next), digests, record.dueAtMs);
    }
    return this.write(record, next, digests, record.dueAtMs);
  }

  /** A final state (or EXPIRED/DECLINED) reached in a step: challenges gone; the due time stays (port.ts: the caller voids at once). */
  private finish(record: PaymentRecord, change: Partial<Payment>, now: number): PaymentRecord {
    // A copy without the undefined fields (deleting them would leave V8 objects in slow dictionary mode).
    const next = clonePayment({ ...record.payment, ...change, sealedFirstCode: undefined, updatedAtMs: now });
    return this.write(record, next, {}, record.dueAtMs);
  }

  private write(record: PaymentRecord, payment: Payment, digests: Partial<Record<Factor, string>>, dueAtMs: number | undefined): PaymentRecord {
    const next: PaymentRecord = { payment, version: record.version + 1, digests, dueAtMs };
    this.apply({ op: 'record', record: next });
    return copyRecord(next);
  }

  // ---------------------------------------------------------------- guards

  private liveGuard(key: string, now: number): GuardEntry | undefined {
    const g = this.guards.get(key);
    if (g === undefined) return undefined;
    const streakLive = g.expiresAtMs > now;
    if (!streakLive && g.lockedUntilMs <= now) return undefined;
    return streakLive ? g : { streak: 0, lockouts: 0, lockedUntilMs: g.lockedUntilMs, expiresAtMs: g.expiresAtMs };
  }

  private guardSuccess(key: string, guard: GuardEntry | undefined): void {
    if (guard !== undefined && guard.streak > 0) this.apply({ op: 'guard', payerId: key, entry: { ...guard, streak: 0 } });
  }

  /** One more consecutive failure; at `failuresMax` the payer is locked out and the streak restarts. */
  private guardFailure(key: string, guard: GuardEntry | undefined, now: number): void {
    const policy = this.options.lockout;
    const g = guard ?? { streak: 0, lockouts: 0, lockedUntilMs: 0, expiresAtMs: 0 };
    let entry: GuardEntry = { ...g, streak: g.streak + 1, expiresAtMs: now + policy.memoryMs };
    if (entry.streak >= policy.failuresMax)
      entry = { streak: 0, lockouts: g.lockouts + 1, lockedUntilMs: now + lockoutMs(policy, g.lockouts), expiresAtMs: now + policy.memoryMs };
    if (guard === undefined) this.checkRoom(1);
    this.apply({ op: 'guard', payerId: key, entry });
  }

  guard(event: GuardEvent): GuardOutcome {
    const now = event.nowMs;
    let g = this.liveGuard(event.payerId, now);
    if (g !== undefined && g.lockedUntilMs > now) return { lockedForMs: g.lockedUntilMs - now };
    if (event.event === 'success') this.guardSuccess(event.payerId, g);
    if (event.event === 'failure') {
      this.guardFailure(event.payerId, g, now);
      g = this.guards.get(event.payerId);
    }
    return { lockedForMs: g !== undefined && g.lockedUntilMs > now ? g.lockedUntilMs - now : undefined };
  }

  // ---------------------------------------------------------------- step: commit

  /** The record first (its claims live with it), then the claim, then the version: as the Redis script reads them. */
  commit(item: CommitItem): CommitOutcome {
    if (item.settle === true) return this.settle(item);
    const record = this.records.get(item.paymentId);
    if (record === undefined) return { outcome: 'stale', record: undefined };
    const claimId = item.claim === undefined ? undefined : keyIds.operation(item.claim.scope, item.paymentId, item.claim.key);
    if (claimId !== undefined) {
      const stored = this.liveKey(claimId, item.nowMs);
      if (stored !== undefined)
        return stored.fingerprint === item.claim!.fingerprint ? { outcome: 'replayed', result: stored.result ?? '' } : { outcome: 'conflict' };
    }
    if (record.version !== item.expectVersion) return { outcome: 'stale', record: copyRecord(record) };
    if (item.payment !== undefined) assertSameOwners(item.payment, record.payment, "a commit may not change a payment's id, merchant or payer");
    if (claimId !== undefined) this.checkRoom(1);
    const dueAtMs = item.dueAtMs === undefined ? record.dueAtMs : (item.dueAtMs ?? undefined);
    const next: PaymentRecord =
      item.payment === undefined
        ? { ...record, dueAtMs }
        : {
            payment: clonePayment(item.payment),
            version: record.version + 1,
            digests: item.digests === undefined ? record.digests : { ...item.digests },
            dueAtMs,
          };
    if (item.payment === undefined) this.apply({ op: 'due', paymentId: item.paymentId, dueAtMs });
    else this.apply({ op: 'record', record: next });
    if (claimId !== undefined) {
      const claim = item.claim!;
      this.storeOperationKey(
        item.paymentId,
        claimId,
        { fingerprint: claim.fingerprint, result: claim.result, expiresAtMs: item.nowMs + claim.keyTtlMs },
        item.payment !== undefined,
        item.nowMs,
      );
    }
    return { outcome: 'committed', record: copyRecord(next) };
  }

  /**
   * A settle (port.ts `CommitItem.settle`): written without a compare, version := expectVersion
   * + 1. Memory can afford the checks Redis skips, and makes them assertions: the record exists,
   * is APPROVED or SUCCEEDED, and keeps its id, merchant and payer.
   */
  private settle(item: CommitItem): CommitOutcome {
    const record = this.records.get(item.paymentId);
    assert(record !== undefined, `a settle names payment ${item.paymentId}, which has no record`);
    assert(
      record.payment.state === 'APPROVED' || record.payment.state === 'SUCCEEDED',
      `a settle is over an APPROVED or SUCCEEDED record, not ${record.payment.state}`,
    );
    assertSameOwners(item.payment!, record.payment, "a settle may not change a payment's id, merchant or payer");
    const next: PaymentRecord = { payment: clonePayment(item.payment!), version: item.expectVersion + 1, digests: {}, dueAtMs: item.dueAtMs ?? undefined };
    this.apply({ op: 'record', record: next });
    return { outcome: 'committed', record: copyRecord(next) };
  }

  // ---------------------------------------------------------------- reads and the sweeper

  get(id: string): PaymentRecord | undefined {
    const record = this.records.get(id);
    return record === undefined ? undefined : copyRecord(record);
  }

  list(query: PaymentQuery): Payment[] {
    assertQuery(query);
    const ids = query.merchantId !== undefined ? (this.byMerchant.get(query.merchantId) ?? []) : (this.byPayer.get(query.payerId!) ?? []);
    const found: Payment[] = [];
    const start = query.afterId === undefined ? 0 : upperBound(ids, query.afterId);
    for (let i = start; i < ids.length && found.length < query.limit; i++) {
      const p = this.records.get(ids[i]!)!.payment;
      if (query.merchantId !== undefined && p.merchantId !== query.merchantId) continue;
      if (query.payerId !== undefined && p.payerId !== query.payerId) continue;
      if (query.states !== undefined && !query.states.includes(p.state)) continue;
      found.push(copyRecord(this.records.get(ids[i]!)!).payment);
    }
    return found;
  }

  /** Pages in id order; the cursor is the last id returned. */
  scan(cursor: string, limit: number): { records: PaymentRecord[]; cursor: string } {
    const ids = [...this.records.keys()].sort();
    const start = cursor === '' ? 0 : upperBound(ids, cursor);
    const page = ids.slice(start, start + limit).map((id) => copyRecord(this.records.get(id)!));
    return { records: page, cursor: page.length < limit ? '' : page[page.length - 1]!.payment.id };
  }

  claimDue(nowMs: number, limit: number, leaseMs: number): PaymentRecord[] {
    const claimed: PaymentRecord[] = [];
    while (claimed.length < limit) {
      const next = this.due.peek();
      if (next === undefined || next.at > nowMs) break;
      this.due.pop();
      const record = this.records.get(next.id);
      if (record === undefined || record.dueAtMs !== next.at) continue; // moved on since it was indexed
      this.apply({ op: 'due', paymentId: next.id, dueAtMs: nowMs + leaseMs });
      claimed.push(copyRecord(this.records.get(next.id)!));
    }
    return claimed;
  }

  // ---------------------------------------------------------------- keyed claims

  claimKey(claim: KeyClaim): KeyClaimOutcome {
    assertKeyClaim(claim);
    const id = keyIds.claim(claim.scope, claim.key);
    const stored = this.liveKey(id, claim.nowMs);
    if (stored !== undefined) {
      if (stored.fingerprint !== claim.fingerprint) return { status: 'conflict' };
      if (stored.result !== undefined) return { status: 'done', result: stored.result };
      if ((stored.leaseUntilMs ?? 0) > claim.nowMs) return { status: 'in_progress', retryAfterMs: stored.leaseUntilMs! - claim.nowMs };
      this.apply({ op: 'key', id, entry: { ...stored, leaseUntilMs: claim.nowMs + claim.leaseMs } });
      return { status: 'claimed', value: stored.value ?? claim.value, takenOver: true };
    }
    this.checkRoom(1);
    this.apply({
      op: 'key',
      id,
      entry: { fingerprint: claim.fingerprint, value: claim.value, leaseUntilMs: claim.nowMs + claim.leaseMs, expiresAtMs: claim.nowMs + claim.keyTtlMs },
    });
    return { status: 'claimed', value: claim.value, takenOver: false };
  }

  completeKey(done: { scope: string; key: string; fingerprint: string; result: string; keyTtlMs: number; nowMs: number }): void {
    const id = keyIds.claim(done.scope, done.key);
    const stored = this.liveKey(id, done.nowMs);
    assert(stored === undefined || stored.fingerprint === done.fingerprint, 'completeKey with another request fingerprint');
    this.checkRoom(stored === undefined ? 1 : 0);
    this.apply({ op: 'key', id, entry: { fingerprint: done.fingerprint, result: done.result, expiresAtMs: done.nowMs + done.keyTtlMs } });
  }

  releaseKey(release: { scope: string; key: string; fingerprint: string }): void {
    const id = keyIds.claim(release.scope, release.key);
    const stored = this.keys.get(id);
    if (stored !== undefined && stored.result === undefined && stored.fingerprint === release.fingerprint) this.apply({ op: 'unkey', id });
  }

  // ---------------------------------------------------------------- pay numbers

  putPayNumber(entry: { numberDigest: string; payerId: string; ttlMs: number; nowMs: number }): void {
    this.checkRoom(1);
    this.apply({ op: 'payNumber', digest: entry.numberDigest, entry: { payerId: entry.payerId, claimant: undefined, expiresAtMs: entry.nowMs + entry.ttlMs } });
  }

  takePayNumber(take: { numberDigest: string; claimant: string; nowMs: number }): string | undefined {
    const entry = this.payNumbers.get(take.numberDigest);
    if (entry === undefined || entry.expiresAtMs <= take.nowMs) return undefined;
    if (entry.claimant !== undefined) return entry.claimant === take.claimant ? entry.payerId : undefined;
    this.apply({ op: 'payNumber', digest: take.numberDigest, entry: { ...entry, claimant: take.claimant } });
    return entry.payerId;
  }

  // ---------------------------------------------------------------- expiry of entries

  private liveKey(id: string, now: number): KeyEntry | undefined {
    const entry = this.keys.get(id);
    return entry !== undefined && entry.expiresAtMs > now ? entry : undefined;
  }

  private liveCounter(key: string, now: number): Counter | undefined {
    const c = this.counters.get(key);
    return c !== undefined && c.expiresAtMs > now ? c : undefined;
  }

  /**
   * Forgets expired idempotency records, counters, guards and pay numbers (at most `budget`
   * examined per call, each map resuming where the last call stopped, so every map is swept in
   * turn however large the others are) — deletions are not journaled: an expired entry is dead
   * whether or not it is still in memory.
   */
  sweepEntries(now: number, budget: number): number {
    let examined = 0;
    let removed = 0;
    for (let turn = 0; turn < this.sweepers.length && examined < budget; turn++) {
      const sweeper = this.sweepers[this.sweepTurn]!;
      this.sweepTurn = (this.sweepTurn + 1) % this.sweepers.length;
      const share = Math.max(1, Math.ceil((budget - examined) / (this.sweepers.length - turn)));
      const step = sweeper.sweep(now, share);
      examined += step.examined;
      removed += step.removed;
    }
    return removed;
  }

  private readonly sweepers = [this.keys, this.counters, this.guards, this.payNumbers].map(
    (map) => new ResumableSweep(map as Map<string, Expiring>, map === this.keys ? (id) => this.forgetKey(id) : (k) => map.delete(k)),
  );
  private sweepTurn = 0;
  private retireCursor: Iterator<[string, PaymentRecord]> | undefined;

  /**
   * Final payments last changed before `beforeMs` and not due: their records are dropped
   * (retention), at most `limit`, examining at most `examineMax` records, resuming where the last
   * call stopped.
   */
  retire(beforeMs: number, limit: number, examineMax: number = Number.MAX_SAFE_INTEGER): number {
    let dropped = 0;
    for (let examined = 0; examined < examineMax && dropped < limit; examined++) {
      this.retireCursor ??= this.records.entries();
      const next = this.retireCursor.next();
      if (next.done === true) {
        this.retireCursor = undefined;
        break;
      }
      const [id, record] = next.value;
      const p = record.payment;
      if (terminalStates.has(p.state) && record.dueAtMs === undefined && p.updatedAtMs < beforeMs) {
        this.apply({ op: 'drop', paymentId: id });
        dropped += 1;
      }
    }
    return dropped;
  }

  private checkRoom(more: number): void {
    if (this.entries + more > this.options.entriesMax) {
      throw new StoreFullError(
        `the payment store holds ${this.entries} idempotency records, counters and guards, its limit (entriesMax); ${this.options.fullHint}`,
      );
    }
  }
}

interface Expiring {
  expiresAtMs: number;
  lockedUntilMs?: number;
}

/** Walks one map in insertion order across calls (a Map iterator survives deletions), starting over at its end. */
class ResumableSweep {
  private cursor: Iterator<[string, Expiring]> | undefined;

  constructor(
    private readonly map: Map<string, Expiring>,
    private readonly remove: (key: string) => void,
  ) {}

  sweep(now: number, budget: number): { examined: number; removed: number } {
    let examined = 0;
    let removed = 0;
    while (examined < budget && this.map.size > 0) {
      this.cursor ??= this.map.entries();
      const next = this.cursor.next();
      if (next.done === true) {
        this.cursor = undefined;
        break;
      }
      examined += 1;
      const [k, v] = next.value;
      if (v.expiresAtMs <= now && (v.lockedUntilMs ?? 0) <= now) {
        this.remove(k);
        removed += 1;
      }
    }
    return { examined, removed };
  }
}

function assertSameOwners(next: Payment, current: Payment, message: string): void {
  assert(next.id === current.id && next.merchantId === current.merchantId && next.payerId === current.payerId, message);
}

function visibleTo(p: Payment, caller: ConfirmItem['caller']): boolean {
  return (caller.merchantId === undefined || p.merchantId === caller.merchantId) && (caller.payerId === undefined || p.payerId === caller.payerId);
}

/** What a confirm stores under its key. */
function resultOf(outcome: ConfirmOutcome): string {
  switch (outcome.outcome) {
    case 'refused':
      return outcome.refusal;
    case 'expired':
      return 'expired';
    case 'mismatch':
      return `mismatch:${outcome.attemptsLeft}`;
    case 'exhausted':
      return 'exhausted';
    case 'locked':
      return `locked:${outcome.retryAfterMs}`;
    default:
      return 'p';
  }
}

/** Constant-time comparison of two hex digests (false when either is missing or lengths differ). */
function digestMatches(stored: string | undefined, given: string): boolean {
  if (stored === undefined || stored.length !== given.length) return false;
  return timingSafeEqual(Buffer.from(stored, 'latin1'), Buffer.from(given, 'latin1'));
}

function indexOf(map: Map<string, string[]>, key: string): string[] {
  let ids = map.get(key);
  if (ids === undefined) map.set(key, (ids = []));
  return ids;
}

/** The first index whose id is greater than `id`. */
export function upperBound(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(ids: string[], id: string): void {
  if (ids.length === 0 || ids[ids.length - 1]! < id) {
    ids.push(id);
    return;
  }
  const at = upperBound(ids, id);
  if (ids[at - 1] !== id) ids.splice(at, 0, id);
}

function removeSorted(map: Map<string, string[]>, key: string, id: string): void {
  const ids = map.get(key);
  if (ids === undefined) return;
  const at = upperBound(ids, id) - 1;
  if (ids[at] === id) ids.splice(at, 1);
  if (ids.length === 0) map.delete(key);
}

/** The payment without its sealed first code: a rest copy leaves no undefined field behind (and no `delete`, which would put the object in dictionary mode). */
function withoutSealedCode(p: Payment): Payment {
  const { sealedFirstCode: _sealed, ...rest } = p;
  return rest;
}
