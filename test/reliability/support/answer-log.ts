import { timestampMs } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import { type Payment, PaymentState } from '../../../gen/countersign/v1/common_pb.js';
import { type Attempt, errorMetadata, isKeyInProgress, isTransient, reasonOf } from './clients.js';

/**
 * Every answer the clients of a scenario got, by request key and by payment: what the audit
 * needs to say that no acknowledged answer was lost or contradicted by a crash.
 *
 * - per idempotency key: when it was first sent, every payment id any answer (or refusal) named,
 *   when each IN_PROGRESS answer came, and the last answer (final, or a give-up);
 * - per payment id: the facts of the first answer that showed it (amount, payer, merchant,
 *   payee, currency), every state answered, when it was first answered SUCCEEDED, and any later
 *   answer that contradicted the first's facts.
 */

/** `create`: CreatePayment; `operation`: confirm, decline, cancel; `read`: GetPayment, GetChallenge (no key). */
export type RequestKind = 'create' | 'operation' | 'read';

export interface KeyFacts {
  key: string;
  kind: Exclude<RequestKind, 'read'>;
  /** Start of the first attempt with this key, ms. */
  firstRequestMs: number;
  /** Every payment id an answer to this key named (a payment, or a refusal's `payment_id`). */
  paymentIds: Set<string>;
  /** Each attempt answered IN_PROGRESS: when it started and when the answer came, ms. */
  inProgress: { startMs: number; endMs: number }[];
  /** The last answer: 'OK' or the code (and reason); `final` false when a retry could change it. */
  last: { label: string; final: boolean; inProgress: boolean; atMs: number };
  /** The first `trailMax` answers, `label@ms after the first request`, for reading a violation. */
  trail: string[];
}

/** Answers kept per key in its trail. */
const trailMax = 40;

/** What a payment was when an answer first showed it. */
export interface PaymentShape {
  amount: bigint;
  payerId: string;
  merchantId: string;
  payeeAccountId: string;
  currency: string;
}

export interface AnsweredPayment {
  id: string;
  /** The first answer's facts; undefined when only refusals named the payment. */
  shape: PaymentShape | undefined;
  createdAtMs: number | undefined;
  /** Every state an OK answer showed. */
  states: Set<PaymentState>;
  /** When an answer first said SUCCEEDED, ms. */
  succeededAtMs: number | undefined;
  /** Refusals of a create that named the payment (e.g. INSUFFICIENT_FUNDS, DELIVERY_FAILED): money must never move for it. */
  createRefusals: Set<string>;
  /** Later answers whose facts differ from the first's (at most a few kept). */
  contradictions: string[];
}

/** Contradictions kept per payment. */
const contradictionsMax = 3;

export function shapeOf(p: Payment): PaymentShape {
  return { amount: p.amount, payerId: p.payerId, merchantId: p.merchantId, payeeAccountId: p.payeeAccountId, currency: p.currency };
}

/** The fields where two shapes differ, e.g. `amount 500≠600`; empty when they agree. */
export function shapeDiff(a: PaymentShape, b: PaymentShape): string[] {
  return (Object.keys(a) as (keyof PaymentShape)[]).filter((k) => a[k] !== b[k]).map((k) => `${k} ${String(a[k])}≠${String(b[k])}`);
}

function labelOf(attempt: Attempt<unknown>): string {
  if (attempt.ok) return 'OK';
  const reason = reasonOf(attempt.error);
  return `${Code[attempt.error.code]}${reason === undefined ? '' : `:${reason}`}`;
}

export class AnswerLog {
  readonly keys = new Map<string, KeyFacts>();
  readonly payments = new Map<string, AnsweredPayment>();
  /** When each answer saying SUCCEEDED came, ms (in order of arrival). */
  readonly succeededAtMs: number[] = [];

  /** An observer for `retried`: notes every attempt of one request (`key` undefined for reads). */
  observer<T>(key: string | undefined, kind: RequestKind): (attempt: Attempt<T>) => void {
    return (attempt) => this.note(key, kind, attempt);
  }

  note(key: string | undefined, kind: RequestKind, attempt: Attempt<unknown>): void {
    const payment = attempt.ok ? (attempt.value as { payment?: Payment } | undefined)?.payment : undefined;
    const refusedFor = attempt.ok ? undefined : errorMetadata(attempt.error, 'payment_id');
    if (payment !== undefined) this.answered(payment, attempt.endMs);
    if (refusedFor !== undefined && refusedFor !== '' && kind === 'create' && !attempt.ok && !isTransient(attempt.error))
      this.entry(refusedFor).createRefusals.add(reasonOf(attempt.error) ?? Code[attempt.error.code]);
    if (key === undefined || kind === 'read') return;
    const facts = this.keys.get(key) ?? {
      key,
      kind,
      firstRequestMs: attempt.startMs,
      paymentIds: new Set<string>(),
      inProgress: [],
      last: { label: '', final: false, inProgress: false, atMs: 0 },
      trail: [],
    };
    this.keys.set(key, facts);
    facts.firstRequestMs = Math.min(facts.firstRequestMs, attempt.startMs);
    if (payment !== undefined) facts.paymentIds.add(payment.id);
    if (refusedFor !== undefined && refusedFor !== '') facts.paymentIds.add(refusedFor);
    const inProgress = !attempt.ok && isKeyInProgress(attempt.error);
    if (inProgress) facts.inProgress.push({ startMs: attempt.startMs, endMs: attempt.endMs });
    // Concurrent attempts of one key (a finish-phase retry and a late answer) are ordered by arrival.
    if (attempt.endMs >= facts.last.atMs)
      facts.last = { label: labelOf(attempt), final: attempt.ok || !isTransient(attempt.error), inProgress, atMs: attempt.endMs };
    if (facts.trail.length < trailMax)
      facts.trail.push(`${labelOf(attempt)}${payment === undefined ? '' : `(${PaymentState[payment.state]})`}@${attempt.endMs - facts.firstRequestMs}`);
  }

  private entry(id: string): AnsweredPayment {
    let entry = this.payments.get(id);
    if (entry === undefined) {
      entry = { id, shape: undefined, createdAtMs: undefined, states: new Set(), succeededAtMs: undefined, createRefusals: new Set(), contradictions: [] };
      this.payments.set(id, entry);
    }
    return entry;
  }

  private answered(payment: Payment, atMs: number): void {
    const entry = this.entry(payment.id);
    const shape = shapeOf(payment);
    if (entry.shape === undefined) entry.shape = shape;
    else {
      const diff = shapeDiff(entry.shape, shape);
      if (diff.length > 0 && entry.contradictions.length < contradictionsMax) entry.contradictions.push(diff.join(', '));
    }
    if (payment.createdAt !== undefined) entry.createdAtMs ??= timestampMs(payment.createdAt);
    entry.states.add(payment.state);
    if (payment.state === PaymentState.SUCCEEDED) {
      entry.succeededAtMs ??= atMs;
      this.succeededAtMs.push(atMs);
    }
  }
}
