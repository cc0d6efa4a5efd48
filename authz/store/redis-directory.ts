import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { assert } from '../../ledger/assert.js';
import type { Merchant, Payer } from '../model.js';
import type { Directory, DirectoryChange } from '../ports.js';
import { decodeMerchant, decodePayer, encodeMerchant, encodePayer } from './directory-codec.js';
import { assertKeyPart } from './errors.js';
import { callRedis, closeRedis, openRedis, type RedisConnectOptions } from './redis-client.js';

/**
 * Key layout: payers and merchants as JSON strings (directory codec) under their own tags, plus
 * index keys phone → payer id, terminal token hash → payer id and API key hash → merchant id (the
 * current credential's hash and the previous one's, in its overlap; a put drops the index keys of
 * hashes the record no longer holds). A lookup through an index checks
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

/** A record's credential hashes (current, then the previous one in its overlap), the absent ones left out. */
function credentialHashes(current: string | undefined, previous: string | undefined): string[] {
  return [current, previous].filter((hash): hash is string => hash !== undefined);
}

/** The channel every change of a record is published on (`payer:<id>` or `merchant:<id>`), for the processes' caches. */
export const directoryChannel = 'cs:directory';

export interface RedisDirectoryOptions {
  ownsClient?: boolean;
}

/**
 * Writes are rare (enrollment), so each is plain commands sent together (one round trip with
 * auto-pipelining on one Redis; routed by slot on a Cluster, where a pipeline could not span the
 * record's and the indexes' slots), then a PUBLISH on `directoryChannel` so every process's cache
 * forgets the record.
 */
export class RedisDirectory implements Directory {
  private subscriber: Redis | Cluster | undefined;
  /** Resolves once the change channel is subscribed (tests; a process start need not wait). */
  watching: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis | Cluster,
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
    return payer !== undefined && (payer.tokenHash === tokenHash || payer.previousTokenHash === tokenHash) ? payer : undefined;
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
    if (payer.previousTokenHash !== undefined) assertKeyPart(payer.previousTokenHash, 'payer previousTokenHash');
    const text = encodePayer(payer);
    const previous = await this.getPayer(payer.id);
    const r = this.redis;
    const tokens = credentialHashes(payer.tokenHash, payer.previousTokenHash);
    const writes: Promise<unknown>[] = [
      r.set(directoryKeys.payer(payer.id), text),
      r.set(directoryKeys.payerByPhone(payer.phone), payer.id),
      ...tokens.map((hash) => r.set(directoryKeys.payerByTokenHash(hash), payer.id)),
    ];
    if (payer.loginAccount !== undefined) writes.push(r.set(directoryKeys.payerByLogin(payer.loginAccount), payer.id));
    if (previous?.loginAccount !== undefined && previous.loginAccount !== payer.loginAccount)
      writes.push(this.dropIndex(directoryKeys.payerByLogin(previous.loginAccount), payer.id));
    if (previous !== undefined && previous.phone !== payer.phone) writes.push(this.dropIndex(directoryKeys.payerByPhone(previous.phone), payer.id));
    for (const stale of credentialHashes(previous?.tokenHash, previous?.previousTokenHash)) {
      if (!tokens.includes(stale)) writes.push(this.dropIndex(directoryKeys.payerByTokenHash(stale), payer.id));
    }
    await callRedis('directory.putPayer', () => Promise.all(writes));
    await this.announce({ kind: 'payer', id: payer.id });
  }

  async getMerchant(id: string): Promise<Merchant | undefined> {
    const text = await callRedis('directory.getMerchant', () => this.redis.get(directoryKeys.merchant(id)));
    return text === null ? undefined : decodeMerchant(text);
  }

  async findMerchantByApiKeyHash(apiKeyHash: string): Promise<Merchant | undefined> {
    const id = await callRedis('directory.findMerchantByApiKeyHash', () => this.redis.get(directoryKeys.merchantByApiKeyHash(apiKeyHash)));
    const merchant = id === null ? undefined : await this.getMerchant(id);
    return merchant !== undefined && (merchant.apiKeyHash === apiKeyHash || merchant.previousApiKeyHash === apiKeyHash) ? merchant : undefined;
  }

  async putMerchant(merchant: Merchant): Promise<void> {
    assertKeyPart(merchant.id, 'merchant id');
    assertKeyPart(merchant.apiKeyHash, 'merchant apiKeyHash');
    if (merchant.previousApiKeyHash !== undefined) assertKeyPart(merchant.previousApiKeyHash, 'merchant previousApiKeyHash');
    const text = encodeMerchant(merchant);
    const previous = await this.getMerchant(merchant.id);
    const keys = credentialHashes(merchant.apiKeyHash, merchant.previousApiKeyHash);
    const writes: Promise<unknown>[] = [
      this.redis.set(directoryKeys.merchant(merchant.id), text),
      ...keys.map((hash) => this.redis.set(directoryKeys.merchantByApiKeyHash(hash), merchant.id)),
    ];
    for (const stale of credentialHashes(previous?.apiKeyHash, previous?.previousApiKeyHash)) {
      if (!keys.includes(stale)) writes.push(this.dropIndex(directoryKeys.merchantByApiKeyHash(stale), merchant.id));
    }
    await callRedis('directory.putMerchant', () => Promise.all(writes));
    await this.announce({ kind: 'merchant', id: merchant.id });
  }

  /** Drops an index key while it still names `id` (EVAL: writes are rare, and no script is defined on the shared client). */
  private dropIndex(key: string, id: string): Promise<unknown> {
    return this.redis.eval(dropIndexLua, 1, key, id);
  }

  private async announce(change: DirectoryChange): Promise<void> {
    if (change.kind === 'all') return;
    await callRedis('directory.publish', () => this.redis.publish(directoryChannel, `${change.kind}:${change.id}`));
  }

  /**
   * Hears every process's changes on its own subscriber connection. When that connection comes
   * back after a loss, anything may have changed meanwhile: the listener hears `all`.
   */
  watch(listener: (change: DirectoryChange) => void): void {
    assert(this.subscriber === undefined, 'RedisDirectory.watch is called once');
    // Its own connection, allowed to queue its SUBSCRIBE until connected (the shared one never queues).
    const queueing = { enableOfflineQueue: true, lazyConnect: false };
    const subscriber = this.redis.isCluster ? (this.redis as Cluster).duplicate(undefined, queueing) : (this.redis as Redis).duplicate(queueing);
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined); // reconnects by itself; the cache's TTL covers the gap
    let connectedBefore = false;
    subscriber.on('ready', () => {
      if (connectedBefore) listener({ kind: 'all' });
      connectedBefore = true;
    });
    subscriber.on('message', (_channel: string, message: string) => {
      const [kind, id] = message.split(':', 2);
      if ((kind === 'payer' || kind === 'merchant') && id !== undefined) listener({ kind, id });
    });
    this.watching = subscriber.subscribe(directoryChannel).then(
      () => undefined,
      () => listener({ kind: 'all' }),
    );
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    if (this.options.ownsClient === true) await closeRedis(this.redis as Redis);
  }
}
