import { chunkEvents } from '../chunk.js';
import type { Account, AccountBalance, AccountFilter, Transfer } from '../model.js';
import { type Ledger, LedgerUnavailableError } from '../port.js';
import type { CreateAccountResult, CreateTransferResult } from '../results.js';
import { capacityError, type EmbeddedBounds, resolveBounds } from './bounds.js';
import { encodeRecord, type JournalRecord, lockDataDir } from './journal.js';
import { type CheckpointStats, Persistence } from './persistence.js';
import type { Recovered } from './recovery.js';
import { LedgerState } from './state.js';
import { checkAccounts, checkIds, checkTransfers } from './validate.js';

export interface EmbeddedLedgerOptions extends Partial<EmbeddedBounds> {
  /** Journal directory. Without one the ledger lives in memory only. */
  dataDir?: string;
  /** fdatasync each group of batches before acknowledging it (default true). Off only for benchmarks. */
  fsync?: boolean;
  /** The engine's clock, ns since the Unix epoch (default `Date.now()` × 10^6). Tests inject one. */
  clockNs?: () => bigint;
}

type Write =
  | { operation: 'accounts'; events: readonly Account[]; resolve: (r: CreateAccountResult[]) => void; reject: (e: Error) => void }
  | { operation: 'transfers'; events: readonly Transfer[]; resolve: (r: CreateTransferResult[]) => void; reject: (e: Error) => void };
/** A read, or a checkpoint: runs after every write queued before it is durable. */
type Barrier = { operation: 'barrier'; run: () => Promise<void> | void; reject: (e: Error) => void };
type Op = Write | Barrier;

function wallClockNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * The embedded ledger engine: TigerBeetle's semantics in process (see state.ts), in memory or
 * journaled to a data directory.
 *
 * Journaled, it acknowledges a create only after its record is fdatasync'd, and it never lets a
 * read see a batch that is not yet durable. Concurrent creates are group-committed: every create
 * queued while a write is in flight shares the next write and fdatasync. Between groups it
 * checkpoints once the journal has grown by `checkpointEveryJournalBytes` (persistence.ts), so
 * opening loads the latest checkpoint and replays a bounded tail.
 *
 * It holds at most `transfersMax` transfers and `accountsMax` accounts (bounds.ts): a create that
 * could pass either is refused whole with `LedgerCapacityError`, before anything is applied.
 *
 * Pending transfers expire by themselves: before every request the engine expires what is due at
 * the current time, so no read or write ever observes a reservation past its timeout.
 */
export class EmbeddedLedger implements Ledger {
  private readonly state = new LedgerState();
  private persistence: Persistence | undefined;
  private unlock: () => void = () => undefined;
  private queue: Op[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private failure: Error | undefined;
  /** Events accepted by `write` but not applied yet, counted against the capacity bounds. */
  private readonly queued = { accounts: 0, transfers: 0 };
  /** What opening the data directory found: checkpoint, replayed journal, torn bytes cut off. */
  readonly recovered: Recovered = {
    records: 0,
    truncatedBytes: 0,
    checkpointTransfers: 0,
    checkpointThrough: 0,
    segments: 0,
    tailBytes: 0,
    loadMs: 0,
    replayMs: 0,
  };

  private constructor(
    private readonly bounds: EmbeddedBounds,
    private readonly clockNs: () => bigint,
  ) {}

  static async open(options: EmbeddedLedgerOptions = {}): Promise<EmbeddedLedger> {
    const { dataDir, fsync, clockNs, ...bounds } = options;
    const ledger = new EmbeddedLedger(resolveBounds(bounds), clockNs ?? wallClockNs);
    if (dataDir !== undefined) {
      ledger.unlock = lockDataDir(dataDir);
      try {
        const opened = await Persistence.open(
          {
            dataDir,
            fsync: fsync ?? true,
            checkpointEveryJournalBytes: ledger.bounds.checkpointEveryJournalBytes,
            onFailure: (cause) => ledger.fail(new LedgerUnavailableError('embedded ledger checkpoint failed; reopen the data directory', { cause })),
          },
          ledger.state,
          (record) => ledger.replay(record),
        );
        ledger.persistence = opened.persistence;
        Object.assign(ledger.recovered, opened.recovered);
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

  /** Checkpoints written since open and what they cost (journaled engines only). */
  get checkpoints(): CheckpointStats | undefined {
    return this.persistence?.stats;
  }

  /** Transfers (and failed transfer ids) and accounts held, against their bounds. */
  get usage(): { transfers: number; accounts: number; bounds: EmbeddedBounds } {
    return { transfers: this.state.transfers.count + this.state.failed.count, accounts: this.state.accounts.size, bounds: this.bounds };
  }

  /**
   * Writes a checkpoint now, after every write queued before this call; resolves once it is
   * durable. The engine also does this by itself (see the class comment); this is for operators
   * and tests. In memory it does nothing.
   */
  checkpoint(): Promise<void> {
    const persistence = this.persistence;
    if (persistence === undefined) return this.guard(() => Promise.resolve());
    return this.guard(
      () =>
        new Promise<void>((resolve, reject) => {
          const run = async (): Promise<void> => {
            const { done } = await persistence.startCheckpoint();
            done.then(resolve, reject);
          };
          this.queue.push({ operation: 'barrier', run, reject });
          this.flushing ??= this.flush();
        }),
    );
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
    this.checkCapacity(operation, events.length);
    const chunks = chunkEvents(events);
    if (this.persistence === undefined) {
      const results: string[] = [];
      for (const chunk of chunks) results.push(...this.apply(operation, chunk).results);
      return Promise.resolve(results);
    }
    this.queued[operation] += events.length;
    return Promise.all(chunks.map((chunk) => this.enqueue(operation, chunk))).then((parts) => parts.flat());
  }

  /** Refuses the whole request if it could take the ledger past a bound (each event adds at most one record). */
  private checkCapacity(operation: Write['operation'], count: number): void {
    const held = operation === 'accounts' ? this.state.accounts.size : this.state.transfers.count + this.state.failed.count;
    const max = operation === 'accounts' ? this.bounds.accountsMax : this.bounds.transfersMax;
    if (held + this.queued[operation] + count > max) throw capacityError(operation, held, max, count);
  }

  private enqueue(operation: Write['operation'], events: readonly (Account | Transfer)[]): Promise<string[]> {
    return new Promise<string[]>((resolve, reject) => {
      this.queue.push({ operation, events, resolve, reject } as Write);
      this.flushing ??= this.flush();
    });
  }

  /**
   * Runs queued operations in arrival order. Consecutive writes form one group: applied, written
   * with one append + fdatasync, then acknowledged. A barrier (read, checkpoint) runs only once
   * every write queued before it is durable, and before any write queued after it is applied.
   * Between groups, the journal may be rotated for a checkpoint.
   */
  private async flush(): Promise<void> {
    while (this.queue.length > 0 && this.failure === undefined) {
      const ops = this.queue;
      this.queue = [];
      let group: Write[] = [];
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        if (op.operation !== 'barrier') {
          group.push(op);
          continue;
        }
        if (group.length > 0 && !(await this.commit(group, ops.slice(i)))) break;
        group = [];
        if (this.failure !== undefined) {
          this.fail(this.failure, ops.slice(i));
          break;
        }
        await this.runBarrier(op);
      }
      if (group.length > 0) await this.commit(group, []);
    }
    this.flushing = undefined;
  }

  private async runBarrier(op: Barrier): Promise<void> {
    try {
      await op.run();
    } catch (error) {
      op.reject(error as Error);
    }
  }

  /** Applies and persists a group of writes. On a journal failure, fails it and everything after. */
  private async commit(group: Write[], rest: Op[]): Promise<boolean> {
    if (this.failure !== undefined) {
      this.fail(this.failure, [...group, ...rest]); // a background checkpoint failed meanwhile
      return false;
    }
    const applied = group.map((w) => this.apply(w.operation, w.events));
    for (const w of group) this.queued[w.operation] -= w.events.length;
    try {
      await this.persistence!.append(applied.map((a) => a.record));
    } catch (cause) {
      // Memory now holds batches the disk does not: stop serving, as TigerBeetle would.
      this.fail(new LedgerUnavailableError('embedded ledger journal write failed; reopen the data directory', { cause }), [...group, ...rest]);
      return false;
    }
    group.forEach((w, i) => (w.resolve as (r: string[]) => void)(applied[i]!.results));
    try {
      await this.persistence!.afterCommit();
    } catch (cause) {
      this.fail(new LedgerUnavailableError('embedded ledger journal rotation failed; reopen the data directory', { cause }), rest);
      return false;
    }
    return true;
  }

  /** Stops serving: rejects `pending` and everything queued with `error`, and every later call. */
  private fail(error: Error, pending: readonly Op[] = []): void {
    this.failure ??= error;
    for (const op of [...pending, ...this.queue]) op.reject(this.failure);
    this.queue = [];
  }

  private apply(operation: Write['operation'], events: readonly (Account | Transfer)[]): { results: string[]; record: Buffer } {
    const n = BigInt(events.length);
    const now = this.clockNs();
    // biome-ignore lint/complexity/useMathMinMax: bigints (Math.max takes numbers)
    const floor = (this.state.commitTimestamp > this.state.expiredThrough ? this.state.commitTimestamp : this.state.expiredThrough) + n;
    const batchTimestamp = now > floor ? now : floor;
    const record = { operation, batchTimestamp, events } as JournalRecord;
    const results =
      operation === 'accounts'
        ? this.state.createAccounts(events as Account[], batchTimestamp)
        : this.state.createTransfers(events as Transfer[], batchTimestamp);
    return { results, record: this.persistence === undefined ? emptyRecord : encodeRecord(record) };
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
      if (this.flushing === undefined) return Promise.resolve((this.state.expireDue(this.clockNs()), run()));
      return new Promise<T>((resolve, reject) => {
        const op: Barrier = {
          operation: 'barrier',
          reject,
          run: () => {
            this.state.expireDue(this.clockNs());
            resolve(run());
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
    await this.persistence?.close();
    this.unlock();
  }
}

const emptyRecord = Buffer.alloc(0);
