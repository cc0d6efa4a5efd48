import type { Account, AccountBalance, AccountFilter, Transfer } from '../model.js';
import { chunkEvents } from '../chunk.js';
import { LedgerUnavailableError, type Ledger } from '../port.js';
import type { CreateAccountResult, CreateTransferResult } from '../results.js';
import { JournalWriter, encodeRecord, lockDataDir, replayJournal, type JournalRecord } from './journal.js';
import { LedgerState } from './state.js';
import { checkAccounts, checkIds, checkTransfers } from './validate.js';

export interface EmbeddedLedgerOptions {
  /** Journal directory. Without one the ledger lives in memory only. */
  dataDir?: string;
  /** fdatasync each group of batches before acknowledging it (default true). Off only for benchmarks. */
  fsync?: boolean;
}

type Write =
  | { operation: 'accounts'; events: readonly Account[]; resolve: (r: CreateAccountResult[]) => void; reject: (e: Error) => void }
  | { operation: 'transfers'; events: readonly Transfer[]; resolve: (r: CreateTransferResult[]) => void; reject: (e: Error) => void };
type Read = { operation: 'read'; run: () => void; reject: (e: Error) => void };
type Op = Write | Read;

/**
 * The embedded ledger engine: TigerBeetle's semantics in process (see state.ts), in memory or
 * journaled to a data directory.
 *
 * Journaled, it acknowledges a create only after its record is fdatasync'd, and it never lets a
 * read see a batch that is not yet durable. Concurrent creates are group-committed: every create
 * queued while a write is in flight shares the next write and fdatasync.
 *
 * Pending transfers expire by themselves: before every request the engine expires what is due at
 * the current time, so no read or write ever observes a reservation past its timeout.
 */
export class EmbeddedLedger implements Ledger {
  private readonly state = new LedgerState();
  private writer: JournalWriter | undefined;
  private unlock: () => void = () => undefined;
  private queue: Op[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private failure: Error | undefined;
  /** Journal records replayed on open, and bytes of a torn tail cut off (for operators and tests). */
  readonly recovered = { records: 0, truncatedBytes: 0 };

  private constructor() {}

  static async open(options: EmbeddedLedgerOptions = {}): Promise<EmbeddedLedger> {
    const ledger = new EmbeddedLedger();
    if (options.dataDir !== undefined) {
      ledger.unlock = lockDataDir(options.dataDir);
      try {
        const replayed = replayJournal(options.dataDir, (record) => ledger.replay(record));
        Object.assign(ledger.recovered, replayed);
        ledger.writer = await JournalWriter.open(options.dataDir, { fsync: options.fsync ?? true });
      } catch (error) {
        ledger.unlock();
        throw error;
      }
    }
    return ledger;
  }

  private replay(record: JournalRecord): void {
    if (record.operation === 'accounts') this.state.createAccounts(record.events, record.batchTimestamp);
    else this.state.createTransfers(record.events, record.batchTimestamp);
  }

  // ------------------------------------------------------------------ writes

  createAccounts(accounts: readonly Account[]): Promise<CreateAccountResult[]> {
    return this.guard(() => {
      checkAccounts(accounts);
      return this.write('accounts', accounts) as Promise<CreateAccountResult[]>;
    });
  }

  createTransfers(transfers: readonly Transfer[]): Promise<CreateTransferResult[]> {
    return this.guard(() => {
      checkTransfers(transfers);
      return this.write('transfers', transfers) as Promise<CreateTransferResult[]>;
    });
  }

  private write(operation: Write['operation'], events: readonly (Account | Transfer)[]): Promise<string[]> {
    const chunks = chunkEvents(events);
    if (this.writer === undefined) {
      const results: string[] = [];
      for (const chunk of chunks) results.push(...this.apply(operation, chunk).results);
      return Promise.resolve(results);
    }
    return Promise.all(chunks.map((chunk) => this.enqueue(operation, chunk))).then((parts) => parts.flat());
  }

  private enqueue(operation: Write['operation'], events: readonly (Account | Transfer)[]): Promise<string[]> {
    return new Promise<string[]>((resolve, reject) => {
      this.queue.push({ operation, events, resolve, reject } as Write);
      this.flushing ??= this.flush();
    });
  }

  /**
   * Runs queued operations in arrival order. Consecutive writes form one group: applied, written
   * with one append + fdatasync, then acknowledged. A read runs only once every write queued
   * before it is durable, and before any write queued after it is applied.
   */
  private async flush(): Promise<void> {
    while (this.queue.length > 0 && this.failure === undefined) {
      const ops = this.queue;
      this.queue = [];
      let group: Write[] = [];
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        if (op.operation !== 'read') {
          group.push(op);
          continue;
        }
        if (group.length > 0 && !(await this.commit(group, ops.slice(i)))) break;
        group = [];
        op.run();
      }
      if (group.length > 0) await this.commit(group, []);
    }
    this.flushing = undefined;
  }

  /** Applies and persists a group of writes. On a journal failure, fails it and everything after. */
  private async commit(group: Write[], rest: Op[]): Promise<boolean> {
    const applied = group.map((w) => this.apply(w.operation, w.events));
    try {
      await this.writer!.append(applied.map((a) => a.record));
    } catch (cause) {
      // Memory now holds batches the disk does not: stop serving, as TigerBeetle would.
      this.failure = new LedgerUnavailableError('embedded ledger journal write failed; reopen the data directory', { cause });
      for (const op of [...group, ...rest, ...this.queue]) op.reject(this.failure);
      this.queue = [];
      return false;
    }
    group.forEach((w, i) => (w.resolve as (r: string[]) => void)(applied[i]!.results));
    return true;
  }

  private apply(operation: Write['operation'], events: readonly (Account | Transfer)[]): { results: string[]; record: Buffer } {
    const n = BigInt(events.length);
    const now = BigInt(Date.now()) * 1_000_000n;
    const floor = (this.state.commitTimestamp > this.state.expiredThrough ? this.state.commitTimestamp : this.state.expiredThrough) + n;
    const batchTimestamp = now > floor ? now : floor;
    const record = { operation, batchTimestamp, events } as JournalRecord;
    const results =
      operation === 'accounts'
        ? this.state.createAccounts(events as Account[], batchTimestamp)
        : this.state.createTransfers(events as Transfer[], batchTimestamp);
    return { results, record: this.writer === undefined ? emptyRecord : encodeRecord(record) };
  }

  // ------------------------------------------------------------------ reads

  lookupAccounts(ids: readonly bigint[]): Promise<Account[]> {
    return this.read(() => (checkIds(ids), this.state.lookupAccounts(ids)));
  }

  lookupTransfers(ids: readonly bigint[]): Promise<Transfer[]> {
    return this.read(() => (checkIds(ids), this.state.lookupTransfers(ids)));
  }

  getAccountTransfers(filter: AccountFilter): Promise<Transfer[]> {
    return this.read(() => this.state.getAccountTransfers(filter));
  }

  getAccountBalances(filter: AccountFilter): Promise<AccountBalance[]> {
    return this.read(() => this.state.getAccountBalances(filter));
  }

  /** Sums of every account's balances per ledger (for audits, benchmarks and reconcile). */
  totals(): Promise<ReturnType<LedgerState['totals']>> {
    return this.read(() => this.state.totals());
  }

  /** Reads see only durable state: behind queued writes they wait their turn (see flush). */
  private read<T>(run: () => T): Promise<T> {
    return this.guard(() => {
      const now = BigInt(Date.now()) * 1_000_000n;
      if (this.flushing === undefined) return Promise.resolve((this.state.expireDue(now), run()));
      return new Promise<T>((resolve, reject) => {
        const op: Read = {
          operation: 'read',
          reject,
          run: () => {
            try {
              this.state.expireDue(BigInt(Date.now()) * 1_000_000n);
              resolve(run());
            } catch (error) {
              reject(error as Error);
            }
          },
        };
        this.queue.push(op);
      });
    });
  }

  private guard<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new LedgerUnavailableError('embedded ledger is closed'));
    if (this.failure !== undefined) return Promise.reject(this.failure);
    try {
      return run();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing !== undefined) await this.flushing;
    await this.writer?.close();
    this.unlock();
  }
}

const emptyRecord = Buffer.alloc(0);
