import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import type { Merchant, Payer } from '../model.js';
import type { Directory } from '../ports.js';
import { assertKeyPart } from './errors.js';
import { decodeMerchant, decodePayer, encodeMerchant, encodePayer } from './directory-codec.js';
import { callRedis, closeRedis, openRedis, pipelineResults, type RedisConnectOptions } from './redis-client.js';

/**
 * Key layout: payers and merchants as JSON strings (directory codec) under their own tags, plus
 * index keys phone → payer id, terminal token hash → payer id and API key hash → merchant id. A lookup through an index checks
 * that the record still carries that phone or key hash, so an index left stale by an interrupted
 * put never returns the wrong record.
 */
export const directoryKeys = {
  payer: (id: string) => `cs:{payer:${id}}:profile`,
  payerByPhone: (phone: string) => `cs:{phone:${phone}}`,
  payerByTokenHash: (tokenHash: string) => `cs:{token:${tokenHash}}`,
  payerByLogin: (login: string) => `cs:{login:${createHash('sha256').update(login).digest('hex')}}`,
  merchant: (id: string) => `cs:{merchant:${id}}:profile`,
  merchantByApiKeyHash: (apiKeyHash: string) => `cs:{apikey:${apiKeyHash}}`,
} as const;

/** KEYS: index key. ARGV: record id. Drops the index key only while it still names that record. */
const dropIndexLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

/** Queues the drop of an index entry on `pipeline` (EVAL: enrollment writes are rare, and no script is defined on the shared client). */
function dropIndex(pipeline: ChainableCommander, key: string, id: string): void {
  pipeline.eval(dropIndexLua, 1, key, id);
}

export interface RedisDirectoryOptions {
  ownsClient?: boolean;
}

export class RedisDirectory implements Directory {
  constructor(
    private readonly redis: Redis,
    private readonly options: RedisDirectoryOptions = {},
  ) {}

  static async open(options: RedisConnectOptions): Promise<RedisDirectory> {
    return new RedisDirectory(await openRedis(options), { ownsClient: true });
  }

  async getPayer(id: string): Promise<Payer | undefined> {
    const text = await callRedis('directory.getPayer', () => this.redis.get(directoryKeys.payer(id)));
    return text === null ? undefined : decodePayer(text);
  }

  async findPayerByPhone(phone: string): Promise<Payer | undefined> {
    const id = await callRedis('directory.findPayerByPhone', () => this.redis.get(directoryKeys.payerByPhone(phone)));
    const payer = id === null ? undefined : await this.getPayer(id);
    return payer?.phone === phone ? payer : undefined;
  }

  async findPayerByTokenHash(tokenHash: string): Promise<Payer | undefined> {
    const id = await callRedis('directory.findPayerByTokenHash', () => this.redis.get(directoryKeys.payerByTokenHash(tokenHash)));
    const payer = id === null ? undefined : await this.getPayer(id);
    return payer?.tokenHash === tokenHash ? payer : undefined;
  }

  async findPayerByLogin(loginAccount: string): Promise<Payer | undefined> {
    const id = await callRedis('directory.findPayerByLogin', () => this.redis.get(directoryKeys.payerByLogin(loginAccount)));
    const payer = id === null ? undefined : await this.getPayer(id);
    return payer?.loginAccount === loginAccount ? payer : undefined;
  }

  /** Two round trips: read the previous record, then write record and indexes (and drop index keys this record no longer holds). */
  async putPayer(payer: Payer): Promise<void> {
    assertKeyPart(payer.id, 'payer id');
    assertKeyPart(payer.phone, 'payer phone');
    assertKeyPart(payer.tokenHash, 'payer tokenHash');
    const text = encodePayer(payer);
    const previous = await this.getPayer(payer.id);
    const pipeline = this.redis.pipeline();
    pipeline.set(directoryKeys.payer(payer.id), text);
    pipeline.set(directoryKeys.payerByPhone(payer.phone), payer.id);
    pipeline.set(directoryKeys.payerByTokenHash(payer.tokenHash), payer.id);
    if (payer.loginAccount !== undefined) pipeline.set(directoryKeys.payerByLogin(payer.loginAccount), payer.id);
    if (previous?.loginAccount !== undefined && previous.loginAccount !== payer.loginAccount) {
      dropIndex(pipeline, directoryKeys.payerByLogin(previous.loginAccount), payer.id);
    }
    if (previous !== undefined && previous.phone !== payer.phone) dropIndex(pipeline, directoryKeys.payerByPhone(previous.phone), payer.id);
    if (previous !== undefined && previous.tokenHash !== payer.tokenHash) {
      dropIndex(pipeline, directoryKeys.payerByTokenHash(previous.tokenHash), payer.id);
    }
    pipelineResults('directory.putPayer', await callRedis('directory.putPayer', () => pipeline.exec()));
  }

  async getMerchant(id: string): Promise<Merchant | undefined> {
    const text = await callRedis('directory.getMerchant', () => this.redis.get(directoryKeys.merchant(id)));
    return text === null ? undefined : decodeMerchant(text);
  }

  async findMerchantByApiKeyHash(apiKeyHash: string): Promise<Merchant | undefined> {
    const id = await callRedis('directory.findMerchantByApiKeyHash', () =>
      this.redis.get(directoryKeys.merchantByApiKeyHash(apiKeyHash)),
    );
    const merchant = id === null ? undefined : await this.getMerchant(id);
    return merchant?.apiKeyHash === apiKeyHash ? merchant : undefined;
  }

  async putMerchant(merchant: Merchant): Promise<void> {
    assertKeyPart(merchant.id, 'merchant id');
    assertKeyPart(merchant.apiKeyHash, 'merchant apiKeyHash');
    const text = encodeMerchant(merchant);
    const previous = await this.getMerchant(merchant.id);
    const pipeline = this.redis.pipeline();
    pipeline.set(directoryKeys.merchant(merchant.id), text);
    pipeline.set(directoryKeys.merchantByApiKeyHash(merchant.apiKeyHash), merchant.id);
    if (previous !== undefined && previous.apiKeyHash !== merchant.apiKeyHash) {
      dropIndex(pipeline, directoryKeys.merchantByApiKeyHash(previous.apiKeyHash), merchant.id);
    }
    pipelineResults('directory.putMerchant', await callRedis('directory.putMerchant', () => pipeline.exec()));
  }

  async close(): Promise<void> {
    if (this.options.ownsClient === true) await closeRedis(this.redis);
  }
}
