import type { Payment } from '../../model.js';
import { assert } from '../checks.js';
import { entrySweepPerCall, MemoryPaymentStore, type MemoryStoreOptions, memoryStateOptions } from '../memory/memory-store.js';
import { MemoryState } from '../memory/state.js';
import { type PaymentQuery, type PaymentRecord, StoreUnavailableError } from '../port.js';
import {
  checkpointJournalBytesMaxDefault,
  checkpointJournalBytesMinDefault,
  checkpointJournalPerCheckpointDefault,
  checkpointLagPerTrigger,
  closedRetentionMsDefault,
  entriesMaxDefault,
  entrySweepPerMutation,
  fullHint,
  idempotencyKeyTtlMsMax,
  paymentsMaxDefault,
  queuedBytesMax,
  retireDropPerPass,
  retireExaminePerPass,
} from './bounds.js';
import { type CheckpointWritten, writeCheckpoint } from './checkpoint.js';
import { Journal } from './journal.js';
import { checkpointName, listDirectory, prepareDirectory, removeFiles, segmentName, syncDirectory } from './layout.js';
import { lockDataDir } from './lock.js';
import { type Recovery, recover } from './recovery.js';
import { Segment } from './segment.js';

export interface JournalStoreOptions extends MemoryStoreOptions {
  /** The store's own directory (the app passes `<COUNTERSIGN_DATA_DIR>/payments`). */
  dataDir: string;
  /** fdatasync every write before answering (default true). False only for benchmarks. */
  fsync?: boolean;
  /** Closed payments' records are dropped this long after their last change, milliseconds (> 24 h). */
  closedRetentionMs?: number;
  checkpointJournalBytesMin?: number;
  checkpointJournalBytesMax?: number;
  checkpointJournalPerCheckpoint?: number;
}

interface Settings {
  dataDir: string;
  fsync: boolean;
  closedRetentionMs: number;
  checkpointJournalBytesMin: number;
  checkpointJournalBytesMax: number;
  checkpointJournalPerCheckpoint: number;
}

/**
 * The durable embedded payment store: `MemoryState`'s semantics, every change journaled to
 * `dataDir` and fdatasync'd before anyone hears of it (see journal.ts, checkpoint.ts,
 * recovery.ts and README.md here).
 *
 * Every operation runs synchronously against the state when it is called, in call order, and
 * its answer waits in one ordered queue until the journal is durable through every pass that
 * ran before it: a step is answered once its own pass is on disk, a read once everything it
 * could have seen is. Retention and expiry run bounded inside each pass; a checkpoint starts
 * after a write once the journal since the last one is large enough, and runs alongside.
 */
export class JournalPaymentStore extends MemoryPaymentStore {
  override readonly describe: string;
  /** Checkpoints written since open (the last few, for tests and the bench). */
  readonly checkpoints: CheckpointWritten[] = [];
  /** Checkpoints written since open, all of them. */
  checkpointsWritten = 0;
  private closed = false;
  private checkpointing: Promise<void> | undefined;
  private lastCheckpointBytes: number;
  /** Journal offset (Journal.offset) where what a crash now would replay begins: the rotation of the newest durable checkpoint. */
  private replayFrom = 0;
  private replayTailMax = 0;

  private constructor(
    options: MemoryStoreOptions,
    state: MemoryState,
    private readonly journal: Journal,
    private readonly settings: Settings,
    /** What open found: checkpoint, replayed tail, torn bytes cut. */
    readonly recovered: Recovery,
    private readonly unlock: () => void,
  ) {
    super(options, state);
    this.describe = `payment store journaled in ${settings.dataDir} (checkpoint + journal${settings.fsync ? '' : ', fsync OFF: not durable'})`;
    this.lastCheckpointBytes = recovered.checkpointBytes;
    state.onMutation((m) => journal.record(m));
    journal.onWritten = () => {
      this.replayTailMax = Math.max(this.replayTailMax, this.replayTailBytes);
      this.maybeCheckpoint();
    };
  }

  static async open(options: JournalStoreOptions): Promise<JournalPaymentStore> {
    const settings = settingsOf(options);
    prepareDirectory(settings.dataDir);
    const unlock = lockDataDir(settings.dataDir);
    try {
      const memory: MemoryStoreOptions = {
        ...(options.lockout === undefined ? {} : { lockout: options.lockout }),
        paymentsMax: options.paymentsMax ?? paymentsMaxDefault(),
        entriesMax: options.entriesMax ?? entriesMaxDefault(),
        ...(options.now === undefined ? {} : { now: options.now }),
      };
      const state = new MemoryState(memoryStateOptions(memory, fullHint));
      const recovered = recover(settings.dataDir, state);
      const segment =
        recovered.lastSegment === undefined
          ? await Segment.create(settings.dataDir, recovered.checkpoint ?? 1, settings.fsync)
          : await Segment.reopen(settings.dataDir, recovered.lastSegment, recovered.lastSegmentBytes, settings.fsync);
      const journal = new Journal(segment, { dataDir: settings.dataDir, fsync: settings.fsync, queuedBytesMax, replayedBytes: recovered.replayedBytes });
      const store = new JournalPaymentStore(memory, state, journal, settings, recovered, unlock);
      store.maybeCheckpoint();
      return store;
    } catch (error) {
      unlock();
      throw error;
    }
  }

  // ---------------------------------------------------------------- the ordered queue

  /** A step's pass (or a sweeper's, a key's…): applied now, answered once durable. */
  protected override run<T>(pass: () => T): Promise<T> {
    const unavailable = this.unavailable();
    if (unavailable !== undefined) return Promise.reject(unavailable);
    try {
      this.journal.beginPass();
    } catch (error) {
      return Promise.reject(error as Error);
    }
    let outcome: { value: T } | { error: unknown };
    try {
      outcome = { value: pass() };
    } catch (error) {
      outcome = { error }; // what the pass applied before it threw is journaled like the rest
    }
    try {
      this.housekeep();
    } catch (error) {
      if ('value' in outcome) outcome = { error };
    }
    const seq = this.journal.endPass();
    return this.journal.durable(seq).then(() => {
      if ('error' in outcome) throw outcome.error;
      return outcome.value;
    });
  }

  /** Expiry (not journaled: an expired entry is dead either way) and retention (journaled drops), both bounded. */
  private housekeep(): void {
    const now = this.now();
    this.state.sweepEntries(now, entrySweepPerCall + entrySweepPerMutation * this.journal.passMutations);
    this.state.retire(now - this.settings.closedRetentionMs, retireDropPerPass, retireExaminePerPass);
  }

  override get(ids: readonly string[]): Promise<(PaymentRecord | undefined)[]> {
    return this.read(() => super.get(ids));
  }

  override list(query: PaymentQuery): Promise<Payment[]> {
    return this.read(() => super.list(query));
  }

  override scan(cursor: string, limit: number): Promise<{ records: PaymentRecord[]; cursor: string }> {
    return this.read(() => super.scan(cursor, limit));
  }

  /** A read answers once every pass applied before it returned its value is durable. */
  private read<T>(run: () => Promise<T>): Promise<T> {
    const unavailable = this.unavailable();
    if (unavailable !== undefined) return Promise.reject(unavailable);
    return run().then((value) => this.journal.durable(this.journal.appliedSeq).then(() => value));
  }

  private unavailable(): StoreUnavailableError | undefined {
    if (this.journal.failure !== undefined) return this.journal.failure;
    if (this.closed) return new StoreUnavailableError(`the payment store in ${this.settings.dataDir} is closed`);
    return undefined;
  }

  // ---------------------------------------------------------------- checkpoints

  /** Journal bytes since the last checkpoint that start the next one (README "Checkpoints"). */
  get checkpointTriggerBytes(): number {
    const s = this.settings;
    return Math.min(s.checkpointJournalBytesMax, Math.max(s.checkpointJournalBytesMin, this.lastCheckpointBytes * s.checkpointJournalPerCheckpoint));
  }

  private maybeCheckpoint(): void {
    if (this.checkpointing !== undefined || this.closed || this.journal.failure !== undefined) return;
    const trigger = this.checkpointTriggerBytes;
    if (this.journal.bytesSinceRotation < trigger) return;
    this.checkpointing = this.checkpoint(Math.max(1, Math.floor(trigger * checkpointLagPerTrigger)))
      .catch((cause: unknown) => this.journal.fail(cause))
      .finally(() => {
        this.checkpointing = undefined;
        this.maybeCheckpoint(); // the journal may have outgrown the bound again meanwhile
      });
  }

  /** Rotates the journal to segment n, writes checkpoint n (its walk done within `lagBytes` of journal), then deletes what it supersedes. */
  private async checkpoint(lagBytes: number): Promise<void> {
    const segment = await this.journal.rotate();
    const rotatedAt = this.journal.rotatedAtOffset;
    const written = await writeCheckpoint({
      dataDir: this.settings.dataDir,
      segment,
      state: this.state,
      nowMs: this.now(),
      fsync: this.settings.fsync,
      pace: { journalBytes: () => this.journal.bytesSinceRotation, lagBytes },
      durable: () => this.journal.durable(this.journal.appliedSeq),
    });
    const listing = listDirectory(this.settings.dataDir);
    removeFiles(this.settings.dataDir, [
      ...listing.segments.filter((n) => n < segment).map(segmentName),
      ...listing.checkpoints.filter((n) => n < segment).map(checkpointName),
    ]);
    if (this.settings.fsync) syncDirectory(this.settings.dataDir);
    this.replayFrom = rotatedAt;
    this.lastCheckpointBytes = written.bytes;
    this.checkpoints.push(written);
    this.checkpointsWritten += 1;
    if (this.checkpoints.length > checkpointsKept) this.checkpoints.shift();
  }

  /**
   * Journal bytes an open after a crash now would replay (from the newest durable checkpoint on),
   * and the most seen after any write since open: the measured replay tail.
   */
  get replayTailBytes(): number {
    return this.journal.offset - this.replayFrom;
  }

  get replayTailBytesMax(): number {
    return Math.max(this.replayTailMax, this.replayTailBytes);
  }

  /** Journal bytes and frames (writes, each one fdatasync) since open. */
  get journalWritten(): { bytes: number; frames: number } {
    return { bytes: this.journal.bytesWritten, frames: this.journal.framesWritten };
  }

  /** True while a checkpoint is being written alongside the traffic. */
  get checkpointInProgress(): boolean {
    return this.checkpointing !== undefined;
  }

  /** Resolves when no checkpoint is being written (for tests and the bench). */
  async checkpointSettled(): Promise<void> {
    while (this.checkpointing !== undefined) await this.checkpointing;
  }

  /** Answers everything already asked, finishes a checkpoint in flight, closes the journal and releases the directory. */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.checkpointSettled();
      await this.journal.close();
    } finally {
      this.unlock();
    }
  }
}

/** Checkpoint reports `checkpoints` keeps. */
const checkpointsKept = 16;

function settingsOf(o: JournalStoreOptions): Settings {
  const s: Settings = {
    dataDir: o.dataDir,
    fsync: o.fsync ?? true,
    closedRetentionMs: o.closedRetentionMs ?? closedRetentionMsDefault,
    checkpointJournalBytesMin: o.checkpointJournalBytesMin ?? checkpointJournalBytesMinDefault,
    checkpointJournalBytesMax: o.checkpointJournalBytesMax ?? checkpointJournalBytesMaxDefault,
    checkpointJournalPerCheckpoint: o.checkpointJournalPerCheckpoint ?? checkpointJournalPerCheckpointDefault,
  };
  assert(typeof s.dataDir === 'string' && s.dataDir !== '', 'dataDir is required');
  assert(
    Number.isSafeInteger(s.closedRetentionMs) && s.closedRetentionMs > idempotencyKeyTtlMsMax,
    `closedRetentionMs must be longer than the idempotency key TTL (${idempotencyKeyTtlMsMax} ms)`,
  );
  assert(Number.isSafeInteger(s.checkpointJournalBytesMin) && s.checkpointJournalBytesMin >= 1, 'checkpointJournalBytesMin must be a positive integer');
  assert(
    Number.isSafeInteger(s.checkpointJournalBytesMax) && s.checkpointJournalBytesMax >= s.checkpointJournalBytesMin,
    'checkpointJournalBytesMax must be ≥ checkpointJournalBytesMin',
  );
  assert(s.checkpointJournalPerCheckpoint > 0, 'checkpointJournalPerCheckpoint must be positive');
  for (const [name, value] of [
    ['paymentsMax', o.paymentsMax],
    ['entriesMax', o.entriesMax],
  ] as const) {
    assert(value === undefined || (Number.isSafeInteger(value) && value >= 1), `${name} must be a positive integer`);
  }
  return s;
}
