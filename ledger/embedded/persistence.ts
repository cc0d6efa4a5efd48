import { closeSync, openSync } from 'node:fs';
import { type FileHandle, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { type AccountsOnDisk, accountsSection } from './checkpoint-accounts.js';
import { encodeCheckpoint } from './checkpoint-format.js';
import { type ColumnOnDisk, fileFlags } from './column-file.js';
import { checkpointName, checkpointTmpName, dataFileNames, fsyncDir, privateFileMode, removeSealedThrough, sealLiveJournal } from './data-dir.js';
import { type JournalRecord, JournalWriter } from './journal.js';
import { type Recovered, recover } from './recovery.js';
import type { LedgerState } from './state.js';
import { captureImage, persistedColumns, type StateImage } from './state-image.js';

/** What the checkpoints written since open cost (for operators, tests and benchmarks). */
export interface CheckpointStats {
  completed: number;
  /** The longest time writes were held up while starting one: image capture + journal rotation. */
  pauseMsMax: number;
  /** The last one's time from start to durable, in the background. */
  lastWriteMs: number;
  /** The last one's bytes: new column records plus the checkpoint file. */
  lastBytes: number;
  /** Bytes in the live journal now: what a restart would replay (plus a sealed segment while one is written). */
  liveJournalBytes: number;
}

export interface PersistenceOptions {
  dataDir: string;
  fsync: boolean;
  checkpointEveryJournalBytes: number;
  /** Called when a background checkpoint fails: the engine stops serving, as for a journal failure. */
  onFailure: (cause: Error) => void;
}

/** What an open data directory holds besides the options. */
interface Files {
  writer: JournalWriter;
  /** The persisted columns' files (state-image.ts `persistedColumns` order). */
  columns: FileHandle[];
  onDisk: ColumnOnDisk[];
  /** The balance history file, open for reading back evicted history. */
  historyFd: number;
  nextSegment: number;
  accountsOnDisk: AccountsOnDisk | undefined;
}

/**
 * The journaled engine's disk side: the live journal, journal rotation and checkpoints.
 *
 * `checkpointEveryJournalBytes` bounds what a restart replays. When the live journal reaches it,
 * the next call to `afterCommit` (always between two batches) captures a state image, seals the
 * live journal as the next segment and opens a new one — the only part that holds writes up —
 * then writes the checkpoint in the background: new column records, the checkpoint file (temp
 * file, fsync, rename, fsync of the directory), and finally deletes the segments it holds and
 * drops the history it wrote from memory. Only one checkpoint is in flight; if the new live
 * journal reaches the bound again before it is done, `afterCommit` waits for it. A restart
 * therefore replays at most the sealed segment of an unfinished checkpoint and the live
 * journal: under 2 × checkpointEveryJournalBytes plus the two last write groups.
 */
export class Persistence {
  private readonly counters = { completed: 0, pauseMsMax: 0, lastWriteMs: 0, lastBytes: 0 };
  /** The checkpoint being written, settled either way (its outcome goes to `done` / `onFailure`). */
  private inFlight: Promise<void> | undefined;
  /** The last written image's statuses buffer, for the next capture (see `captureImage`). */
  private spareStatuses: Buffer | undefined;

  private constructor(
    private readonly options: PersistenceOptions,
    private readonly state: LedgerState,
    private readonly files: Files,
  ) {}

  static async open(
    options: PersistenceOptions,
    state: LedgerState,
    replay: (record: JournalRecord) => void,
  ): Promise<{ persistence: Persistence; recovered: Recovered }> {
    const { recovered, onDisk, nextSegment, accountsOnDisk } = recover(options.dataDir, state, replay);
    const historyName = dataFileNames[persistedColumns(state).indexOf(state.transfers.history)]!;
    const historyFd = openSync(join(options.dataDir, historyName), 'r');
    const columns: FileHandle[] = [];
    try {
      for (const name of dataFileNames) columns.push(await open(join(options.dataDir, name), fileFlags, privateFileMode));
      const writer = await JournalWriter.open(options.dataDir, { fsync: options.fsync });
      state.transfers.historyFile = historyFd;
      const files = { writer, columns, onDisk, historyFd, nextSegment, accountsOnDisk };
      return { persistence: new Persistence(options, state, files), recovered };
    } catch (error) {
      await Promise.all(columns.map((f) => f.close()));
      closeSync(historyFd);
      throw error;
    }
  }

  get stats(): CheckpointStats {
    return { ...this.counters, liveJournalBytes: this.files.writer.bytes };
  }

  append(records: readonly Buffer[]): Promise<void> {
    return this.files.writer.append(records);
  }

  /** Between two batches: starts a checkpoint once the live journal has reached the bound. */
  async afterCommit(): Promise<void> {
    if (this.files.writer.bytes < this.options.checkpointEveryJournalBytes) return;
    await this.startCheckpoint();
  }

  /**
   * Captures the state and rotates the journal now (the caller guarantees no batch is being
   * applied), after any checkpoint already in flight; `done` settles when the background write
   * is durable (or failed: the engine is told through `onFailure` as well).
   */
  async startCheckpoint(): Promise<{ done: Promise<void> }> {
    while (this.inFlight !== undefined) await this.inFlight;
    const started = performance.now();
    const image = captureImage(this.state, this.spareStatuses);
    this.spareStatuses = undefined;
    const segment = this.files.nextSegment++;
    await this.files.writer.close();
    sealLiveJournal(this.options.dataDir, segment);
    this.files.writer = await JournalWriter.open(this.options.dataDir, { fsync: this.options.fsync }); // fsyncs the directory: the rename too
    this.counters.pauseMsMax = Math.max(this.counters.pauseMsMax, performance.now() - started);
    const done = this.write(image, segment).then((bytes) => {
      this.spareStatuses = image.statusesBuffer;
      this.counters.completed += 1;
      this.counters.lastWriteMs = performance.now() - started;
      this.counters.lastBytes = bytes;
    });
    done.catch((cause: Error) => this.options.onFailure(cause));
    this.inFlight = done.then(noop, noop).finally(() => (this.inFlight = undefined));
    return { done };
  }

  /** Writes `image` as the checkpoint through `segment`; returns the bytes written. */
  private async write(image: StateImage, segment: number): Promise<number> {
    const { columns: files, onDisk } = this.files;
    let bytes = 0;
    for (const [i, { column, count }] of image.columns.entries()) bytes += await onDisk[i]!.append(files[i]!, column, count);
    if (this.options.fsync) await Promise.all(files.map((f) => f.datasync()));
    const section = await accountsSection(this.files.accountsOnDisk, image.accountCount, image.changedAccounts);
    const columns = image.columns.map(({ count }, i) => onDisk[i]!.meta(count));
    const { parts, accountsOffset } = encodeCheckpoint({ ...image, through: segment, columns, accountsSection: section });
    bytes += await this.writeCheckpointFile(parts);
    this.files.accountsOnDisk = { path: join(this.options.dataDir, checkpointName), offset: accountsOffset, count: image.accountCount };
    removeSealedThrough(this.options.dataDir, segment);
    const history = this.state.transfers.history;
    for (const [i, { column }] of image.columns.entries()) if (column === history) column.evictBelow(onDisk[i]!.persisted);
    return bytes;
  }

  /** Temp file, write, fdatasync, rename over the old checkpoint, fsync the directory. */
  private async writeCheckpointFile(parts: readonly Buffer[]): Promise<number> {
    const { dataDir, fsync } = this.options;
    const tmp = join(dataDir, checkpointTmpName);
    const file = await open(tmp, 'w', privateFileMode);
    let bytes = 0;
    try {
      for (const part of parts) {
        for (let off = 0; off < part.length; ) off += (await file.write(part, off, part.length - off)).bytesWritten;
        bytes += part.length;
      }
      if (fsync) await file.datasync();
    } finally {
      await file.close();
    }
    await rename(tmp, join(dataDir, checkpointName));
    if (fsync) fsyncDir(dataDir);
    return bytes;
  }

  /** Waits for a checkpoint in flight, then closes the journal and the column files. */
  async close(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
    await this.files.writer.close();
    await Promise.all(this.files.columns.map((f) => f.close()));
    closeSync(this.files.historyFd);
  }
}

function noop(): void {}
