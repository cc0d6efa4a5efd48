import type { Redis } from 'ioredis';
import type { Payment } from '../model.js';
import type { PaymentQuery, PaymentRepository, PutOptions } from '../ports.js';
import { assert } from './errors.js';
import { decodePayment, encodePayment } from './payment-codec.js';
import { assertPayment, assertPaymentQuery, paymentMatches, paymentsBatchMax } from './payment-query.js';
import { redisScripts } from './redis-scripts.js';
import { callRedis, closeRedis, openRedis, pipelineResults, type RedisConnectOptions } from './redis-client.js';

/**
 * Key layout: each payment is one JSON string (payment codec) under its own tag; three sorted
 * sets (score 0, members ordered lexicographically = by time-ordered id) index them for `list`.
 * Indexes are never rewritten: a put that moves a payment to another merchant or payer leaves a
 * stale member, which `list` skips by checking the payment itself.
 */
export const paymentKeys = {
  payment: (id: string) => `cs:{pay:${id}}`,
  byMerchant: (merchantId: string) => `cs:{merchant:${merchantId}}:payments`,
  byPayer: (payerId: string) => `cs:{payer:${payerId}}:payments`,
  all: 'cs:{payments}:all',
} as const;

/** Index members read per `list` step when filters may reject some (two round trips per step). */
export const listScanBatchMax = 1000;

/**
 * A new payment's record and its three index entries in one script: one command and one reply
 * for ioredis instead of four (the keys carry different hash tags, so on a Redis Cluster the put
 * sends the four commands instead).
 * KEYS: record, by merchant, by payer, all. ARGV: the record's JSON, the payment id.
 */
const putNewLua = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
redis.call('ZADD', KEYS[4], 0, ARGV[2])
return 1
`;

export interface RedisPaymentRepositoryOptions {
  ownsClient?: boolean;
}

/**
 * Payments on Redis. `putMany` and `getMany` are one pipeline each (one round trip on a single
 * Redis; on a Cluster, ioredis would have to split the pipeline per slot). `list` pages an index
 * with ZRANGEBYLEX and reads the payments with one pipelined GET batch per step.
 */
export class RedisPaymentRepository implements PaymentRepository {
  private readonly scripts: { readonly putNew: (...args: (string | number)[]) => Promise<unknown> };

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisPaymentRepositoryOptions = {},
  ) {
    this.scripts = redisScripts(redis, { putNew: { numberOfKeys: 4, lua: putNewLua } });
  }

  static async open(options: RedisConnectOptions): Promise<RedisPaymentRepository> {
    return new RedisPaymentRepository(await openRedis(options), { ownsClient: true });
  }

  async get(id: string): Promise<Payment | undefined> {
    const text = await callRedis('payments.get', () => this.redis.get(paymentKeys.payment(id)));
    return text === null ? undefined : decodePayment(text);
  }

  async getMany(ids: string[]): Promise<(Payment | undefined)[]> {
    assert(ids.length <= paymentsBatchMax, `getMany takes at most ${paymentsBatchMax} ids`);
    if (ids.length === 0) return [];
    const texts = await this.readMany('payments.getMany', ids);
    return texts.map((text) => (text === null ? undefined : decodePayment(text)));
  }

  /**
   * The record and its three index entries (only the record when `replacing`): one script on a
   * single Redis, auto-pipelined, so it shares one socket write with every other command of this
   * turn of the event loop (concurrent RPCs).
   */
  async put(payment: Payment, options: PutOptions = {}): Promise<void> {
    assertPayment(payment);
    const text = encodePayment(payment);
    const record = () => this.redis.set(paymentKeys.payment(payment.id), text);
    if (options.replacing === true) {
      await callRedis('payments.put', record);
      return;
    }
    if (!this.redis.isCluster) {
      await callRedis('payments.put', () =>
        this.scripts.putNew(paymentKeys.payment(payment.id), paymentKeys.byMerchant(payment.merchantId), paymentKeys.byPayer(payment.payerId), paymentKeys.all, text, payment.id),
      );
      return;
    }
    await callRedis('payments.put', () =>
      Promise.all([
        record(),
        this.redis.zadd(paymentKeys.byMerchant(payment.merchantId), 0, payment.id),
        this.redis.zadd(paymentKeys.byPayer(payment.payerId), 0, payment.id),
        this.redis.zadd(paymentKeys.all, 0, payment.id),
      ]),
    );
  }

  /** One pipeline: a SET per payment and (unless `replacing`) one ZADD per index key with all of its new members. */
  async putMany(payments: Payment[], options: PutOptions = {}): Promise<void> {
    assert(payments.length <= paymentsBatchMax, `putMany takes at most ${paymentsBatchMax} payments`);
    if (payments.length === 0) return;
    payments.forEach(assertPayment);
    const pipeline = this.redis.pipeline();
    const members = new Map<string, (string | number)[]>();
    const index = (key: string, id: string) => {
      const list = members.get(key);
      if (list === undefined) members.set(key, [0, id]);
      else list.push(0, id);
    };
    for (const p of payments) {
      pipeline.set(paymentKeys.payment(p.id), encodePayment(p));
      if (options.replacing === true) continue;
      index(paymentKeys.byMerchant(p.merchantId), p.id);
      index(paymentKeys.byPayer(p.payerId), p.id);
      index(paymentKeys.all, p.id);
    }
    for (const [key, scoresAndIds] of members) pipeline.zadd(key, ...scoresAndIds);
    const replies = await callRedis('payments.putMany', () => pipeline.exec());
    pipelineResults('payments.putMany', replies);
  }

  async list(query: PaymentQuery): Promise<Payment[]> {
    assertPaymentQuery(query);
    const index =
      query.merchantId !== undefined
        ? paymentKeys.byMerchant(query.merchantId)
        : query.payerId !== undefined
          ? paymentKeys.byPayer(query.payerId)
          : paymentKeys.all;
    const filtered = query.states !== undefined || (query.merchantId !== undefined && query.payerId !== undefined);
    const batch = filtered ? listScanBatchMax : query.limit;
    const found: Payment[] = [];
    let cursor = query.afterId;
    // Each step reads `batch` more index members; it ends when the page is full or the index is.
    for (;;) {
      const ids = await callRedis('payments.list', () =>
        this.redis.zrangebylex(index, cursor === undefined ? '-' : `(${cursor}`, '+', 'LIMIT', 0, batch),
      );
      if (ids.length === 0) return found;
      const texts = await this.readMany('payments.list', ids);
      for (const text of texts) {
        if (text === null) continue;
        const payment = decodePayment(text);
        if (paymentMatches(payment, query)) found.push(payment);
        if (found.length === query.limit) return found;
      }
      if (ids.length < batch) return found;
      cursor = ids[ids.length - 1];
    }
  }

  async close(): Promise<void> {
    if (this.options.ownsClient === true) await closeRedis(this.redis);
  }

  private async readMany(operation: string, ids: string[]): Promise<(string | null)[]> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.get(paymentKeys.payment(id));
    const replies = await callRedis(operation, () => pipeline.exec());
    return pipelineResults(operation, replies) as (string | null)[];
  }
}
