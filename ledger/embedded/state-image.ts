import type { AccountEntry } from './account-table.js';
import type { CheckpointIn } from './checkpoint-format.js';
import type { Column } from './column.js';
import type { Expiry } from './expiry-queue.js';
import type { LedgerState } from './state.js';

/**
 * A point-in-time image of the state machine, taken between two batches, for a checkpoint.
 *
 * Capturing it is synchronous and cheap: the mutable parts are copied (accounts shallowly — their
 * bigints are immutable —, the pending statuses as bytes, the expiry heap's entries), while the
 * append-only columns are referenced with their lengths at that moment: records below those
 * lengths never change (a rolled-back chain only ever removes records appended after the image),
 * so they can be written to disk afterwards, while the engine goes on.
 */
export interface StateImage {
  commitTimestamp: bigint;
  expiredThrough: bigint;
  lastTransferTimestamp: bigint;
  lastAccountTimestamp: bigint;
  /** How many accounts the image holds (indexes 0 .. accountCount - 1). */
  accountCount: number;
  /** Shallow copies of the accounts changed since the previous image (all of them, after opening). */
  changedAccounts: AccountEntry[];
  /** The expiry heap's entries in heap order. */
  expiries: Expiry[];
  /** `PendingStatus` of every transfer slot. */
  statuses: Buffer;
  /** The buffer `statuses` lies at the start of, for the next capture to reuse once this image is written. */
  statusesBuffer: Buffer;
  /** The append-only columns and how many of their records the image holds. */
  columns: { column: Column; count: number }[];
}

/** The append-only columns a checkpoint persists, in file order (see data-dir.ts `dataFiles`). */
export function persistedColumns(state: LedgerState): Column[] {
  return [state.transfers.records, state.transfers.links, state.transfers.history, state.failed.ids];
}

/**
 * Captures the image. `spare` is a buffer the statuses may be copied into (the previous image's,
 * once that checkpoint is written): reusing it spares faulting in fresh pages during the pause.
 */
export function captureImage(state: LedgerState, spare?: Buffer): StateImage {
  const status = state.transfers.status;
  const buffer = spare !== undefined && spare.length >= status.count ? spare : Buffer.allocUnsafe(status.count + (status.count >>> 2));
  const statuses = buffer.subarray(0, status.count);
  for (let from = 0; from < status.count; ) {
    const bytes = status.bytes(from, status.count);
    bytes.copy(statuses, from);
    from += bytes.length;
  }
  return {
    commitTimestamp: state.commitTimestamp,
    expiredThrough: state.expiredThrough,
    lastTransferTimestamp: state.lastTransferTimestamp,
    lastAccountTimestamp: state.lastAccountTimestamp,
    accountCount: state.accounts.size,
    changedAccounts: takeChangedAccounts(state),
    expiries: state.expiries.toArray(),
    statuses,
    statusesBuffer: buffer,
    columns: persistedColumns(state).map((column) => ({ column, count: column.count })),
  };
}

/** Copies of the accounts changed since the last image, marking them clean. */
function takeChangedAccounts(state: LedgerState): AccountEntry[] {
  const changed: AccountEntry[] = [];
  for (const a of state.dirtyAccounts) {
    if (!a.dirty || state.accounts.get(a.id) !== a) continue; // changed back, or rolled back
    changed.push({ ...a });
    a.dirty = false;
  }
  state.dirtyAccounts = [];
  return changed;
}

/**
 * Puts an image back into an empty state whose persisted columns were already loaded (to the
 * image's lengths), then rebuilds the id indexes (the account lists' `next` links are rebuilt
 * per account when first needed: transfer-store.ts `linkForward`).
 */
export function restoreImage(state: LedgerState, image: CheckpointIn): void {
  const status = state.transfers.status;
  status.resize(image.statuses.length);
  for (let from = 0; from < status.count; ) {
    const target = status.bytes(from, status.count);
    image.statuses.copy(target, 0, from, from + target.length);
    from += target.length;
  }
  for (const a of image.accounts) state.addAccount(a);
  state.expiries.restore(image.expiries);
  state.transfers.rebuildIndex();
  state.failed.rebuildIndex();
  state.commitTimestamp = image.commitTimestamp;
  state.expiredThrough = image.expiredThrough;
  state.lastTransferTimestamp = image.lastTransferTimestamp;
  state.lastAccountTimestamp = image.lastAccountTimestamp;
}
