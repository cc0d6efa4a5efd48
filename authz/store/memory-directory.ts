import type { Merchant, Payer } from '../model.js';
import type { Directory, DirectoryChange } from '../ports.js';
import { decodeMerchant, decodePayer, encodeMerchant, encodePayer } from './directory-codec.js';
import { assert, assertKeyPart, StoreFullError } from './errors.js';

export interface MemoryDirectoryOptions {
  payersMax?: number;
  merchantsMax?: number;
}

export const payersMaxDefault = 1_000_000;
export const merchantsMaxDefault = 100_000;

/** Everything the directory holds, as codec text: what the file directory writes. */
export interface DirectorySnapshot {
  payers: string[];
  merchants: string[];
}

/**
 * Payers and merchants in process, kept as codec text (copy on write and on read), with the
 * phone → payer, token hash → payer and API key hash → merchant indexes (current and previous
 * credential each: a lookup by a previous one finds the record, whose overlap the caller checks). A phone or hash names
 * one record: a put that moves it to another record takes it from the previous one.
 */
export class MemoryDirectory implements Directory {
  private readonly payers: Table<Payer>;
  private readonly merchants: Table<Merchant>;
  private readonly listeners: ((change: DirectoryChange) => void)[] = [];

  constructor(options: MemoryDirectoryOptions = {}) {
    this.payers = new Table('payersMax', options.payersMax ?? payersMaxDefault, encodePayer, decodePayer, {
      phone: (p) => p.phone,
      tokenHash: (p) => p.tokenHash,
      previousTokenHash: (p) => p.previousTokenHash,
      login: (p) => p.loginAccount,
    });
    this.merchants = new Table('merchantsMax', options.merchantsMax ?? merchantsMaxDefault, encodeMerchant, decodeMerchant, {
      apiKeyHash: (m) => m.apiKeyHash,
      previousApiKeyHash: (m) => m.previousApiKeyHash,
    });
  }

  async getPayer(id: string): Promise<Payer | undefined> {
    return this.payers.get(id);
  }

  async findPayerByPhone(phone: string): Promise<Payer | undefined> {
    return this.payers.find('phone', phone);
  }

  async findPayerByTokenHash(tokenHash: string): Promise<Payer | undefined> {
    return this.payers.find('tokenHash', tokenHash) ?? this.payers.find('previousTokenHash', tokenHash);
  }

  async findPayerByLogin(loginAccount: string): Promise<Payer | undefined> {
    return this.payers.find('login', loginAccount);
  }

  async putPayer(payer: Payer): Promise<void> {
    assertKeyPart(payer.phone, 'payer phone');
    assertKeyPart(payer.tokenHash, 'payer tokenHash');
    if (payer.previousTokenHash !== undefined) assertKeyPart(payer.previousTokenHash, 'payer previousTokenHash');
    this.payers.put(payer);
    for (const listener of this.listeners) listener({ kind: 'payer', id: payer.id });
  }

  async getMerchant(id: string): Promise<Merchant | undefined> {
    return this.merchants.get(id);
  }

  async findMerchantByApiKeyHash(apiKeyHash: string): Promise<Merchant | undefined> {
    return this.merchants.find('apiKeyHash', apiKeyHash) ?? this.merchants.find('previousApiKeyHash', apiKeyHash);
  }

  async putMerchant(merchant: Merchant): Promise<void> {
    assertKeyPart(merchant.apiKeyHash, 'merchant apiKeyHash');
    if (merchant.previousApiKeyHash !== undefined) assertKeyPart(merchant.previousApiKeyHash, 'merchant previousApiKeyHash');
    this.merchants.put(merchant);
    for (const listener of this.listeners) listener({ kind: 'merchant', id: merchant.id });
  }

  /** In process: every put is heard at once. */
  watch(listener: (change: DirectoryChange) => void): void {
    this.listeners.push(listener);
  }

  snapshot(): DirectorySnapshot {
    return { payers: this.payers.texts(), merchants: this.merchants.texts() };
  }

  /** Loads a snapshot into an empty directory (the file directory's reopen). */
  async restore(snapshot: DirectorySnapshot): Promise<void> {
    assert(this.payers.size === 0 && this.merchants.size === 0, 'restore into an empty directory only');
    for (const text of snapshot.payers) await this.putPayer(decodePayer(text));
    for (const text of snapshot.merchants) await this.putMerchant(decodeMerchant(text));
  }

  async close(): Promise<void> {}
}

/** Records by id as codec text, with unique secondary indexes and a named entry bound. */
class Table<T extends { id: string }> {
  private readonly records = new Map<string, string>();
  private readonly indexes = new Map<string, Map<string, string>>();

  constructor(
    private readonly boundName: string,
    private readonly recordsMax: number,
    private readonly encode: (record: T) => string,
    private readonly decode: (text: string) => T,
    /** Secondary unique keys; a record without one (undefined) is simply not in that index. */
    private readonly indexed: Record<string, (record: T) => string | undefined>,
  ) {
    assert(Number.isSafeInteger(recordsMax) && recordsMax >= 1, `${boundName} must be a positive integer`);
    for (const name of Object.keys(indexed)) this.indexes.set(name, new Map());
  }

  get size(): number {
    return this.records.size;
  }

  get(id: string): T | undefined {
    const text = this.records.get(id);
    return text === undefined ? undefined : this.decode(text);
  }

  find(index: string, value: string): T | undefined {
    const id = this.indexes.get(index)!.get(value);
    return id === undefined ? undefined : this.get(id);
  }

  put(record: T): void {
    assertKeyPart(record.id, `${this.boundName.replace(/Max$/, '')} id`);
    const text = this.encode(record);
    const previous = this.get(record.id);
    if (previous === undefined && this.records.size >= this.recordsMax) {
      throw new StoreFullError(`memory store full: ${this.boundName}=${this.recordsMax} records`);
    }
    for (const [name, keyOf] of Object.entries(this.indexed)) {
      const index = this.indexes.get(name)!;
      const stale = previous === undefined ? undefined : keyOf(previous);
      const value = keyOf(record);
      if (stale !== undefined && stale !== value && index.get(stale) === record.id) index.delete(stale);
      if (value !== undefined) index.set(value, record.id);
    }
    this.records.set(record.id, text);
  }

  texts(): string[] {
    return [...this.records.values()];
  }
}
