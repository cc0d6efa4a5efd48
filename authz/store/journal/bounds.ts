import { getHeapStatistics } from 'node:v8';

/**
 * The journal store's named bounds and defaults (units in the names). The measured figures come
 * from `bench/store-restart.ts` (see README.md here); re-measure when the record shape changes.
 */

const MiB = 2 ** 20;
const dayMs = 86_400_000;

/** Closed payments' records are kept this long after their last change (30 days), milliseconds. */
export const closedRetentionMsDefault = 30 * dayMs;
/**
 * Idempotency records live at most this long (24 h, `idempotencyTtlMs`), milliseconds. Retention
 * must be longer, so a replayed key never finds its payment's record gone.
 */
export const idempotencyKeyTtlMsMax = dayMs;

/** Payment records examined for retention per pass (a Map walk resumed each pass). */
export const retireExaminePerPass = 256;
/** Payment records dropped by retention per pass at most (each one `drop` mutation in the journal). */
export const retireDropPerPass = 64;
/** Expired entries examined per pass: `entrySweepPerCall` plus this many per mutation the pass made, so sweeping keeps up with batches. */
export const entrySweepPerMutation = 2;

/** No checkpoint before the journal since the last one holds this many bytes. */
export const checkpointJournalBytesMinDefault = 16 * MiB;
/** A checkpoint always starts once the journal since the last one holds this many bytes: the bound on the replayed tail (README "Replay bound"). */
export const checkpointJournalBytesMaxDefault = 64 * MiB;
/**
 * Between the two: a checkpoint starts once the journal holds this many times the last
 * checkpoint's bytes. Lower replays less on open and writes more checkpoints: each journal byte
 * costs `1 / checkpointJournalPerCheckpoint` checkpoint bytes (write amplification).
 */
export const checkpointJournalPerCheckpointDefault = 0.5;
/**
 * A checkpoint's walk must be done by the time the journal has grown by this share of the
 * trigger since its rotation (checkpoint.ts, "Pacing"): it bounds the journal a crash during a
 * checkpoint adds to the replayed tail.
 */
export const checkpointLagPerTrigger = 0.25;
/** Milliseconds a checkpoint's walk runs at least in each turn of the event loop (more while it is behind). */
export const checkpointSliceMs = 10;
/** Bytes of mutations per checkpoint frame. */
export const checkpointChunkBytes = 1 * MiB;
/** A checkpoint being written is fsync'd every this many bytes, so the fsync that ends it (while the journal keeps growing) is short. */
export const checkpointSyncBytes = 16 * MiB;
/** Checkpoint frames written and not yet acknowledged by the file system, at most (bounds the memory a checkpoint holds). */
export const checkpointWritesInFlightMax = 4;
/** Strings a checkpoint's dictionary holds at most (merchant, payer and account ids, states…); beyond, strings are written inline. */
export const checkpointDictionaryEntriesMax = 2 ** 18;

/** Bytes of queued passes one journal frame (one write, one fdatasync) takes at most; it always takes at least one pass. */
export const frameBytesTarget = 4 * MiB;

/**
 * The most journal an open replays after its checkpoint, bytes (README "Replay bound"): the
 * trigger's cap, plus the journal a checkpoint's walk may see written (`checkpointLagPerTrigger`
 * of it), plus three frames: the write that crossed the trigger, the traffic of the walk's last
 * turn, the writes while the checkpoint's end is made durable (its last fsync, the rename). A
 * pass larger than a frame (a step of 1 000 items is ~0.4 MB) adds itself. 92 MiB by default.
 */
export function replayTailBytesBound(checkpointJournalBytesMax: number = checkpointJournalBytesMaxDefault): number {
  return Math.ceil(checkpointJournalBytesMax * (1 + checkpointLagPerTrigger)) + 3 * frameBytesTarget;
}

/** Bytes of passes queued behind the disk at most; beyond, steps are refused (StoreUnavailableError) until it catches up. */
export const queuedBytesMax = 256 * MiB;

/**
 * Heap bytes one payment costs in a running store — its record, its create and confirm
 * idempotency records, its share of counters, guards and indexes — measured after a full GC at
 * 1 M payments: 2 255 (bench/store-restart.ts, "live heap B/payment"; 1 644 right after a
 * reopen, whose objects are more compact). Rounded up.
 */
export const paymentHeapBytesMeasured = 2_300;
/** Heap bytes one further idempotency record (or counter, guard, pay number) costs: 495 measured (200 k keyed claims), rounded up. */
export const entryHeapBytesMeasured = 500;
/**
 * Share of the V8 heap limit the payments may take by default; with `entriesHeapShare` the store
 * stays under half the heap, leaving the rest to the embedded ledger, requests, garbage and a
 * checkpoint in flight.
 */
export const paymentsHeapShare = 0.3;
/** Share of the V8 heap limit further idempotency records, counters, guards and pay numbers may take by default. */
export const entriesHeapShare = 0.15;

export function heapLimitBytes(): number {
  return getHeapStatistics().heap_size_limit;
}

/** Default `paymentsMax`: `paymentsHeapShare` of the heap at the measured bytes per payment (566 k at Node's default 4 144 MiB here). */
export function paymentsMaxDefault(heapBytes: number = heapLimitBytes()): number {
  return Math.floor((heapBytes * paymentsHeapShare) / paymentHeapBytesMeasured);
}

/**
 * Default `entriesMax`: the two idempotency records every payment's figure already includes,
 * plus `entriesHeapShare` of the heap at the measured bytes per entry (2.43 M at 4 144 MiB).
 */
export function entriesMaxDefault(heapBytes: number = heapLimitBytes()): number {
  return 2 * paymentsMaxDefault(heapBytes) + Math.floor((heapBytes * entriesHeapShare) / entryHeapBytesMeasured);
}

export const fullHint =
  'the embedded store is for development and single-node use; move to Redis and TigerBeetle ' +
  '(COUNTERSIGN_REDIS_URL, COUNTERSIGN_TB_ADDRESSES; README "Scale")';
