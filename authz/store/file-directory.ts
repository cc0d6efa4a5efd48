import fs from 'node:fs/promises';
import path from 'node:path';
import type { Merchant, Payer } from '../model.js';
import type { Directory, DirectoryChange } from '../ports.js';
import { StoreUnavailableError } from '../ports.js';
import { assert } from './errors.js';
import { type DirectorySnapshot, MemoryDirectory, type MemoryDirectoryOptions } from './memory-directory.js';

export interface FileDirectoryOptions extends MemoryDirectoryOptions {
  /** The JSON file; created on the first put, reloaded by `open`. */
  file: string;
}

const snapshotVersion = 1;

/**
 * The memory directory persisted to one JSON file, for the embedded default. Every put rewrites
 * the whole file atomically (temp file, fsync, rename, fsync of the directory), one write at a
 * time; a put resolves once its state is on disk. Sized for the embedded default (thousands of
 * records), not for production, which uses the Redis directory.
 */
export class FileDirectory implements Directory {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly memory: MemoryDirectory,
  ) {}

  static async open(options: FileDirectoryOptions): Promise<FileDirectory> {
    const memory = new MemoryDirectory(options);
    let text: string | undefined;
    try {
      text = await fs.readFile(options.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unavailable(options.file, err);
    }
    if (text !== undefined) {
      const stored = JSON.parse(text) as DirectorySnapshot & { version: number };
      assert(stored.version === snapshotVersion, `directory file ${options.file} has version ${stored.version}`);
      await memory.restore(stored);
    }
    return new FileDirectory(options.file, memory);
  }

  getPayer(id: string): Promise<Payer | undefined> {
    return this.memory.getPayer(id);
  }

  findPayerByPhone(phone: string): Promise<Payer | undefined> {
    return this.memory.findPayerByPhone(phone);
  }

  findPayerByTokenHash(tokenHash: string): Promise<Payer | undefined> {
    return this.memory.findPayerByTokenHash(tokenHash);
  }

  findPayerByLogin(loginAccount: string): Promise<Payer | undefined> {
    return this.memory.findPayerByLogin(loginAccount);
  }

  async putPayer(payer: Payer): Promise<void> {
    await this.memory.putPayer(payer);
    await this.persist();
  }

  getMerchant(id: string): Promise<Merchant | undefined> {
    return this.memory.getMerchant(id);
  }

  findMerchantByApiKeyHash(apiKeyHash: string): Promise<Merchant | undefined> {
    return this.memory.findMerchantByApiKeyHash(apiKeyHash);
  }

  async putMerchant(merchant: Merchant): Promise<void> {
    await this.memory.putMerchant(merchant);
    await this.persist();
  }

  watch(listener: (change: DirectoryChange) => void): void {
    this.memory.watch(listener);
  }

  async close(): Promise<void> {
    await this.writing;
  }

  /** Queues a write of the current state behind any write in flight. */
  private persist(): Promise<void> {
    const next = this.writing.then(() => this.writeFile());
    this.writing = next.catch(() => undefined);
    return next;
  }

  private async writeFile(): Promise<void> {
    const text = JSON.stringify({ version: snapshotVersion, ...this.memory.snapshot() });
    const temp = `${this.file}.${process.pid}.tmp`;
    try {
      const handle = await fs.open(temp, 'w', 0o600);
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temp, this.file);
      const dir = await fs.open(path.dirname(this.file), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      throw unavailable(this.file, err);
    }
  }
}

function unavailable(file: string, cause: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`directory file ${file} unavailable`, { cause });
}
