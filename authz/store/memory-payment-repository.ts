import type { Payment } from '../model.js';
import type { PaymentQuery, PaymentRepository, PutOptions } from '../ports.js';
import { StoreFullError, assert } from './errors.js';
import { assertPaymentAmounts, clonePayment } from './payment-codec.js';
import { assertPayment, assertPaymentQuery, paymentMatches, paymentsBatchMax } from './payment-query.js';

export interface MemoryPaymentRepositoryOptions {
  paymentsMax?: number;
}

export const paymentsMaxDefault = 1_000_000;

/**
 * Payments in process. Each payment is kept as a private deep copy (`clonePayment`: what the
 * codec would keep, without its JSON round trip), and reads return copies, so no caller shares
 * an object with the store. Ids are time-ordered strings, so id order is creation
 * order; indexes by merchant and by payer are id arrays kept sorted (appends in the usual case).
 */
export class MemoryPaymentRepository implements PaymentRepository {
  private readonly payments = new Map<string, Payment>();
  private readonly all: string[] = [];
  private readonly byMerchant = new Map<string, string[]>();
  private readonly byPayer = new Map<string, string[]>();
  private readonly paymentsMax: number;

  constructor(options: MemoryPaymentRepositoryOptions = {}) {
    this.paymentsMax = options.paymentsMax ?? paymentsMaxDefault;
    assert(Number.isSafeInteger(this.paymentsMax) && this.paymentsMax >= 1, 'paymentsMax must be a positive integer');
  }

  async get(id: string): Promise<Payment | undefined> {
    const stored = this.payments.get(id);
    return stored === undefined ? undefined : clonePayment(stored);
  }

  async getMany(ids: string[]): Promise<(Payment | undefined)[]> {
    assert(ids.length <= paymentsBatchMax, `getMany takes at most ${paymentsBatchMax} ids`);
    return Promise.all(ids.map((id) => this.get(id)));
  }

  /** `options.replacing` needs nothing here: a put compares merchant and payer with the stored record anyway. */
  async put(payment: Payment, _options?: PutOptions): Promise<void> {
    this.putOne(payment);
  }

  async putMany(payments: Payment[], _options?: PutOptions): Promise<void> {
    assert(payments.length <= paymentsBatchMax, `putMany takes at most ${paymentsBatchMax} payments`);
    const fresh = new Set(payments.map((p) => p.id).filter((id) => !this.payments.has(id)));
    if (this.payments.size + fresh.size > this.paymentsMax) {
      throw new StoreFullError(`memory store full: paymentsMax=${this.paymentsMax} payments`);
    }
    for (const p of payments) this.putOne(p);
  }

  private putOne(payment: Payment): void {
    assertPayment(payment);
    assertPaymentAmounts(payment);
    const previous = this.payments.get(payment.id);
    if (previous === undefined && this.payments.size >= this.paymentsMax) {
      throw new StoreFullError(`memory store full: paymentsMax=${this.paymentsMax} payments`);
    }
    this.payments.set(payment.id, clonePayment(payment));
    if (previous === undefined) insertSorted(this.all, payment.id);
    if (previous?.merchantId !== payment.merchantId) moveIndex(this.byMerchant, previous?.merchantId, payment.merchantId, payment.id);
    if (previous?.payerId !== payment.payerId) moveIndex(this.byPayer, previous?.payerId, payment.payerId, payment.id);
  }

  async list(query: PaymentQuery): Promise<Payment[]> {
    assertPaymentQuery(query);
    const ids =
      query.merchantId !== undefined
        ? (this.byMerchant.get(query.merchantId) ?? [])
        : query.payerId !== undefined
          ? (this.byPayer.get(query.payerId) ?? [])
          : this.all;
    const found: Payment[] = [];
    const start = query.afterId === undefined ? 0 : upperBound(ids, query.afterId);
    for (let i = start; i < ids.length && found.length < query.limit; i++) {
      const payment = this.payments.get(ids[i]!)!;
      if (paymentMatches(payment, query)) found.push(clonePayment(payment));
    }
    return found;
  }

  async close(): Promise<void> {}
}

/** The first index whose id is greater than `id`. */
function upperBound(ids: string[], id: string): number {
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
  const at = upperBound(ids, id);
  if (ids[at - 1] !== id) ids.splice(at, 0, id);
}

function moveIndex(index: Map<string, string[]>, from: string | undefined, to: string, id: string): void {
  if (from !== undefined) {
    const ids = index.get(from);
    const at = ids === undefined ? -1 : upperBound(ids, id) - 1;
    if (ids !== undefined && ids[at] === id) ids.splice(at, 1);
    if (ids?.length === 0) index.delete(from);
  }
  let ids = index.get(to);
  if (ids === undefined) index.set(to, (ids = []));
  insertSorted(ids, id);
}
