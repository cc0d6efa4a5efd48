import type { Payment } from '../model.js';
import type { PaymentQuery } from '../ports.js';
import { assert, assertKeyPart } from './errors.js';

/** `PaymentQuery.limit` range (ports.ts: 1..1000). */
export const paymentListLimitMax = 1000;
/** Payments per `putMany` / `getMany` call: one pipeline, one round trip. */
export const paymentsBatchMax = 1000;

export function assertPaymentQuery(q: PaymentQuery): void {
  assert(Number.isSafeInteger(q.limit) && q.limit >= 1 && q.limit <= paymentListLimitMax, `limit must be 1..${paymentListLimitMax}`);
  if (q.merchantId !== undefined) assertKeyPart(q.merchantId, 'merchantId');
  if (q.payerId !== undefined) assertKeyPart(q.payerId, 'payerId');
  if (q.afterId !== undefined) assertKeyPart(q.afterId, 'afterId');
}

export function assertPayment(p: Payment): void {
  assertKeyPart(p.id, 'payment id');
  assertKeyPart(p.merchantId, 'merchantId');
  assertKeyPart(p.payerId, 'payerId');
}

/** Whether a payment read through an index still satisfies the whole query (indexes may be stale). */
export function paymentMatches(p: Payment, q: PaymentQuery): boolean {
  if (q.merchantId !== undefined && p.merchantId !== q.merchantId) return false;
  if (q.payerId !== undefined && p.payerId !== q.payerId) return false;
  if (q.states !== undefined && !q.states.includes(p.state)) return false;
  return q.afterId === undefined || p.id > q.afterId;
}
