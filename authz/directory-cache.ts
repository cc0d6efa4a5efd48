import { LRUCache } from 'lru-cache';
import { credentialLive, type Merchant, type Payer } from './model.js';
import type { Directory, DirectoryChange } from './ports.js';

/** Payers and merchants a process keeps cached, each, at most (least recently used go first). */
export const directoryCacheEntriesMax = 100_000;
/**
 * How long a cached record is trusted without hearing of a change, milliseconds: the safety net
 * behind the change notifications (a lost notification is healed within this time).
 */
export const directoryCacheTtlMs = 60_000;

/**
 * The cache's one structure: `lru-cache` (also what the telco bridge's bounded state can use, as
 * it imports no folder of ours): at most `entriesMax` entries, the least recently used out first
 * when full, each trusted for `ttlMs` from when it was set (a get does not extend it; a stale
 * entry is a miss and is dropped). Time is `now` (tests move it), read on every check
 * (`ttlResolution: 0`). It allocates its index for `entriesMax` up front.
 */
function lru<T extends {}>(entriesMax: number, ttlMs: number, now: () => number): LRUCache<string, T> {
  return new LRUCache<string, T>({ max: entriesMax, ttl: ttlMs, ttlResolution: 0, perf: { now } });
}

/** Records are shared by every caller of the cache: frozen, so no caller can change another's copy. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * The directory with a per-process cache in front: creates, confirms and caller authentication
 * read payers and merchants on every request, and they change rarely. The directory tells of
 * every change (`watch`: in process for the embedded directories, a Redis channel for the Redis
 * one, which every process hears), and the cache forgets that record at once; `directoryCacheTtlMs`
 * bounds how long a lost notification could leave a stale record. Lookups by phone, login, token
 * or API key go through the record, and a record that no longer carries that value is a miss.
 * Only found records are cached: unknown keys and phones always ask the directory.
 *
 * Credentials (API keys, payer tokens) are checked against the record at every lookup, cached or
 * not (`credentialLive`): a previous key is accepted until the end of its overlap by this
 * process's clock, never after, whatever the cache holds; a revoked one is gone from the record,
 * so it is refused as soon as the change is heard (at once in this process, within the
 * notification's delay in the others, at most `directoryCacheTtlMs` when a notification is lost).
 */
export class CachedDirectory implements Directory {
  private readonly payers: LRUCache<string, Payer>;
  private readonly merchants: LRUCache<string, Merchant>;
  /** `phone:…`, `login:…`, `token:…`, `apikey:…` → id. */
  private readonly lookups: LRUCache<string, string>;
  private readonly now: () => number;

  constructor(
    readonly inner: Directory,
    options: { now?: () => number; entriesMax?: number; ttlMs?: number } = {},
  ) {
    const now = options.now ?? Date.now;
    this.now = now;
    const max = options.entriesMax ?? directoryCacheEntriesMax;
    const ttl = options.ttlMs ?? directoryCacheTtlMs;
    this.payers = lru(max, ttl, now);
    this.merchants = lru(max, ttl, now);
    this.lookups = lru(4 * max, ttl, now);
    inner.watch?.((change) => this.forget(change));
  }

  private forget(change: DirectoryChange): void {
    if (change.kind === 'all') {
      this.payers.clear();
      this.merchants.clear();
      this.lookups.clear();
    } else if (change.kind === 'payer') this.payers.delete(change.id);
    else this.merchants.delete(change.id);
  }

  async getPayer(id: string): Promise<Payer | undefined> {
    const hit = this.payers.get(id);
    if (hit !== undefined) return hit;
    const payer = await this.inner.getPayer(id);
    if (payer !== undefined) this.payers.set(id, deepFreeze(payer));
    return payer;
  }

  async getMerchant(id: string): Promise<Merchant | undefined> {
    const hit = this.merchants.get(id);
    if (hit !== undefined) return hit;
    const merchant = await this.inner.getMerchant(id);
    if (merchant !== undefined) this.merchants.set(id, deepFreeze(merchant));
    return merchant;
  }

  findPayerByPhone(phone: string): Promise<Payer | undefined> {
    return this.findPayer(
      `phone:${phone}`,
      (p) => p.phone === phone,
      () => this.inner.findPayerByPhone(phone),
    );
  }

  findPayerByLogin(loginAccount: string): Promise<Payer | undefined> {
    return this.findPayer(
      `login:${loginAccount}`,
      (p) => p.loginAccount === loginAccount,
      () => this.inner.findPayerByLogin(loginAccount),
    );
  }

  findPayerByTokenHash(tokenHash: string): Promise<Payer | undefined> {
    return this.findPayer(
      `token:${tokenHash}`,
      (p) => credentialLive(p, tokenHash, this.now()),
      () => this.inner.findPayerByTokenHash(tokenHash),
    );
  }

  async findMerchantByApiKeyHash(apiKeyHash: string): Promise<Merchant | undefined> {
    const key = `apikey:${apiKeyHash}`;
    const id = this.lookups.get(key);
    const cached = id === undefined ? undefined : await this.getMerchant(id);
    if (cached !== undefined && credentialLive(cached, apiKeyHash, this.now())) return cached;
    const merchant = await this.inner.findMerchantByApiKeyHash(apiKeyHash);
    if (merchant === undefined || !credentialLive(merchant, apiKeyHash, this.now())) return undefined;
    this.merchants.set(merchant.id, deepFreeze(merchant));
    this.lookups.set(key, merchant.id);
    return merchant;
  }

  /**
   * The merchant or payer a credential hash names, when the cache already knows it (no directory
   * read): callers try this before asking for a merchant key or a payer token, so a payer's token
   * never costs a merchant lookup that misses.
   */
  cachedCredential(hash: string): { kind: 'merchant'; merchant: Merchant } | { kind: 'payer'; payer: Payer } | undefined {
    const merchantId = this.lookups.get(`apikey:${hash}`);
    const merchant = merchantId === undefined ? undefined : this.merchants.get(merchantId);
    const now = this.now();
    if (merchant !== undefined && credentialLive(merchant, hash, now)) return { kind: 'merchant', merchant };
    const payerId = this.lookups.get(`token:${hash}`);
    const payer = payerId === undefined ? undefined : this.payers.get(payerId);
    if (payer !== undefined && credentialLive(payer, hash, now)) return { kind: 'payer', payer };
    return undefined;
  }

  private async findPayer(key: string, carries: (p: Payer) => boolean, ask: () => Promise<Payer | undefined>): Promise<Payer | undefined> {
    const id = this.lookups.get(key);
    const cached = id === undefined ? undefined : await this.getPayer(id);
    if (cached !== undefined && carries(cached)) return cached;
    const payer = await ask();
    if (payer === undefined || !carries(payer)) return undefined;
    this.payers.set(payer.id, deepFreeze(payer));
    this.lookups.set(key, payer.id);
    return payer;
  }

  async putPayer(payer: Payer): Promise<void> {
    await this.inner.putPayer(payer);
    this.payers.delete(payer.id);
  }

  async putMerchant(merchant: Merchant): Promise<void> {
    await this.inner.putMerchant(merchant);
    this.merchants.delete(merchant.id);
  }

  watch(listener: (change: DirectoryChange) => void): void {
    this.inner.watch?.(listener);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
