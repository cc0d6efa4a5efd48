import { assert } from '../assert.js';
import type { Account } from '../model.js';
import { setU64, setU128 } from './codec.js';
import { Column, chunkMask, chunkShift } from './column.js';

/**
 * What the state machine keeps per account besides the `Account` object: a dense index (creation
 * order) into a compact table of the account's id words and timestamp, where its transfers are,
 * and whether it changed since the last checkpoint image.
 */

/** An account as the state machine keeps it. */
export interface AccountEntry extends Account {
  /** Position in creation order (0, 1, …): the account's row in `AccountKeys` and in checkpoints. */
  index: number;
  /** Slot + 1 of the account's oldest transfer; 0 when it has none. */
  firstTransfer: number;
  /** Slot + 1 of the account's newest transfer; 0 when it has none. */
  lastTransfer: number;
  /** Whether the `next` links of its transfers are all set (false after loading: transfer-store.ts `linkForward`). */
  forwardLinked: boolean;
  /** Changed since the last checkpoint image captured it (state.ts `markDirty`). */
  dirty: boolean;
}

/** A new entry; a literal so that every entry shares one compact shape. */
export function accountEntry(
  a: Account,
  timestamp: bigint,
  index: number,
  restored: { firstTransfer: number; lastTransfer: number } | undefined,
): AccountEntry {
  return {
    id: a.id,
    debits_pending: a.debits_pending,
    debits_posted: a.debits_posted,
    credits_pending: a.credits_pending,
    credits_posted: a.credits_posted,
    user_data_128: a.user_data_128,
    user_data_64: a.user_data_64,
    user_data_32: a.user_data_32,
    reserved: a.reserved,
    ledger: a.ledger,
    code: a.code,
    flags: a.flags,
    timestamp,
    index,
    firstTransfer: restored?.firstTransfer ?? 0,
    lastTransfer: restored?.lastTransfer ?? 0,
    forwardLinked: restored === undefined,
    dirty: restored === undefined,
  };
}

/**
 * Per account index: its id as four u32 words (written into its transfers, compared when walking
 * them) and its timestamp (timestamps only grow with the index: a new account's is after every
 * earlier event's, an imported one's must not regress), 24 bytes off the heap.
 */
export class AccountKeys {
  readonly rows = new Column(24);

  get count(): number {
    return this.rows.count;
  }

  push(id: bigint, timestamp: bigint): number {
    const index = this.rows.push();
    const w = this.rows.words[index >>> chunkShift]!;
    const b = (index & chunkMask) * 6;
    setU128(w, b, id);
    setU64(w, b + 4, timestamp);
    return index;
  }

  /** Undoes the newest `push` (a rolled-back account). */
  pop(index: number): void {
    assert(index === this.count - 1, 'only the newest account can be rolled back');
    this.rows.truncate(index);
  }

  idWord(index: number, k: number): number {
    return this.rows.word(index, k);
  }

  /** Whether some account has exactly this timestamp (binary search). */
  hasTimestamp(timestamp: bigint): boolean {
    const hi = Number(timestamp >> 32n);
    const lo = Number(timestamp & 0xffff_ffffn);
    for (let low = 0, high = this.count - 1; low <= high; ) {
      const mid = (low + high) >>> 1;
      const h = this.rows.word(mid, 5);
      const l = this.rows.word(mid, 4);
      if (h === hi && l === lo) return true;
      if (h < hi || (h === hi && l < lo)) low = mid + 1;
      else high = mid - 1;
    }
    return false;
  }
}
