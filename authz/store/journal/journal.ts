import { assert, unreachable } from '../../../ledger/assert.js';
import type { Mutation } from '../memory/state.js';
import { StoreUnavailableError } from '../port.js';
import { frameBytesTarget } from './bounds.js';
import { ByteWriter } from './bytes.js';
import { encodeFrameOf, framePayloadBytesMax } from './frame.js';
import { encodeMutation } from './mutation-codec.js';
import { Segment } from './segment.js';

/** Initial size of the buffer a pass is encoded into (it grows to the largest pass seen). */
const passBufferBytes = 64 * 1024;

interface Pass {
  seq: number;
  bytes: Buffer;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * The write side of the journal: the ordered queue of every pass's mutations and of everyone
 * waiting for them to be durable.
 *
 * A pass is a synchronous run over the state (`beginPass`, the state's mutations arrive through
 * `record`, `endPass`). A pass that changed something gets the next sequence number and joins
 * the queue as one block of encoded mutations. One writer loop drains the queue: everything queued while a
 * write is in flight forms the next frame, written and fdatasync'd together (group commit); a
 * frame holds whole passes only. `durable(seq)` resolves once every pass up to `seq` is on disk,
 * in order, so a step — or a read, which waits for the passes before it — is answered only with
 * durable state. Any write, fsync or encoding failure fails the journal for good: every waiter
 * and every later call gets `failure` (memory is then ahead of the disk and is never served).
 */
export class Journal {
  appliedSeq = 0;
  durableSeq = 0;
  failure: StoreUnavailableError | undefined;
  /** Bytes written since the last rotation (or, on open, replayed since the newest checkpoint). */
  bytesSinceRotation: number;
  /** Bytes and frames written since open. */
  bytesWritten = 0;
  framesWritten = 0;
  /** `offset` when the current segment became current (0: the segment open found). */
  rotatedAtOffset = 0;
  /** Called after each durable write (the store decides on checkpoints there). */
  onWritten: () => void = () => undefined;

  /** The current pass's mutations, encoded as they arrive (undefined between passes). */
  private pass: ByteWriter | undefined;
  private readonly passBuffer = new ByteWriter(passBufferBytes);
  private mutations = 0;
  private queue: Pass[] = [];
  private queuedBytes = 0;
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private rotation: { resolve: (segment: number) => void; reject: (error: Error) => void } | undefined;

  constructor(
    private segment: Segment,
    private readonly options: { dataDir: string; fsync: boolean; queuedBytesMax: number; replayedBytes: number },
  ) {
    this.bytesSinceRotation = options.replayedBytes;
  }

  get segmentNumber(): number {
    return this.segment.number;
  }

  /** Journal bytes since the newest checkpoint open found (its replayed tail, then everything written since). */
  get offset(): number {
    return this.options.replayedBytes + this.bytesWritten;
  }

  /** Mutations the current pass has made so far. */
  get passMutations(): number {
    return this.pass === undefined ? 0 : this.mutations;
  }

  /** Starts capturing a pass. Refused (nothing applied) while the disk is too far behind. */
  beginPass(): void {
    assert(this.pass === undefined, 'passes do not nest');
    if (this.queuedBytes > this.options.queuedBytesMax) {
      throw new StoreUnavailableError(`the payment store journal is ${this.queuedBytes} bytes behind the disk (queuedBytesMax); try again`);
    }
    this.pass = this.passBuffer;
    this.pass.reset();
    this.mutations = 0;
  }

  /** The state's mutation listener. */
  record(m: Mutation): void {
    const pass = this.pass;
    if (pass === undefined) {
      this.fail(new Error('assertion failed: the payment state changed outside a journaled pass'));
      return;
    }
    const at = pass.length;
    try {
      encodeMutation(m, pass);
      this.mutations += 1;
    } catch (cause) {
      pass.truncate(at);
      this.fail(cause);
    }
  }

  /** Ends the pass; returns the sequence number a caller must wait for (`durable`). */
  endPass(): number {
    const pass = this.pass;
    this.pass = undefined;
    assert(pass !== undefined, 'endPass without beginPass');
    if (this.mutations > 0 && this.failure === undefined) {
      this.appliedSeq += 1;
      const bytes = pass.copyFrom(0);
      this.queue.push({ seq: this.appliedSeq, bytes });
      this.queuedBytes += bytes.length;
      this.kick();
    }
    return this.appliedSeq;
  }

  /** Resolves when every pass up to `seq` is durable; rejects with `failure`. */
  durable(seq: number): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (seq <= this.durableSeq) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
  }

  /** Makes the next segment current: frames written after this resolves go to it. Resolves with its number. */
  rotate(): Promise<number> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    assert(this.rotation === undefined, 'one rotation at a time');
    const rotated = new Promise<number>((resolve, reject) => (this.rotation = { resolve, reject }));
    this.kick();
    return rotated;
  }

  fail(cause: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = new StoreUnavailableError(
      `the payment store journal in ${this.options.dataDir} failed; memory may be ahead of the disk, so nothing is served until the store is reopened`,
      { cause },
    );
    for (const w of this.waiters) w.reject(this.failure);
    this.waiters = [];
    this.queue = [];
    this.queuedBytes = 0;
    this.rotation?.reject(this.failure);
    this.rotation = undefined;
  }

  /** Waits for queued passes to be written (or failed), then closes the segment. */
  async close(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
    try {
      await this.segment.close();
    } catch (error) {
      if (this.failure === undefined) throw error; // a failed journal's segment may be gone already
    }
  }

  private kick(): void {
    if (this.flushing === undefined && this.failure === undefined) this.flushing = this.flush();
  }

  private async flush(): Promise<void> {
    await Promise.resolve(); // passes run in this same tick join the first frame
    try {
      while (this.failure === undefined) {
        if (this.rotation !== undefined) await this.rotateNow();
        else if (this.queue.length > 0) await this.writeFrame();
        else break;
      }
    } catch (cause) {
      this.fail(cause);
    } finally {
      this.flushing = undefined;
    }
  }

  private async writeFrame(): Promise<void> {
    let bytes = 0;
    let take = 0;
    while (take < this.queue.length && (take === 0 || bytes + this.queue[take]!.bytes.length <= frameBytesTarget)) bytes += this.queue[take++]!.bytes.length;
    const passes = this.queue.splice(0, take);
    this.queuedBytes -= bytes;
    if (bytes > framePayloadBytesMax) unreachable(`one pass encoded to ${bytes} bytes, more than a frame holds`);
    const frame = encodeFrameOf(passes.map((p) => p.bytes));
    await this.segment.append(frame);
    this.bytesSinceRotation += frame.length;
    this.bytesWritten += frame.length;
    this.framesWritten += 1;
    this.durableSeq = passes[passes.length - 1]!.seq;
    this.release();
    this.onWritten();
  }

  private release(): void {
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.seq <= this.durableSeq) n++;
    const done = this.waiters.splice(0, n);
    for (const w of done) w.resolve();
  }

  private async rotateNow(): Promise<void> {
    const next = await Segment.create(this.options.dataDir, this.segment.number + 1, this.options.fsync);
    const previous = this.segment;
    this.segment = next;
    this.bytesSinceRotation = 0;
    this.rotatedAtOffset = this.offset;
    await previous.close();
    const rotation = this.rotation!;
    this.rotation = undefined;
    rotation.resolve(next.number);
  }
}
