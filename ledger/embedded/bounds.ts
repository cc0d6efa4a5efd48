import { assert } from '../assert.js';
import { LedgerCapacityError } from '../port.js';

/**
 * The embedded engine's named bounds (see README.md in this directory for how they were chosen
 * and what they cost).
 */
export interface EmbeddedBounds {
  /**
   * Most transfers the engine holds, counting ids remembered as failed (`id_already_failed`).
   * Transfers live off the JS heap at ~160 bytes each, ~290 with balance history on both sides.
   */
  transfersMax: number;
  /** Most accounts the engine holds. Accounts are JS objects on the heap: ~0.5 KiB each. */
  accountsMax: number;
  /**
   * Bytes of live journal after which the journaled engine writes a checkpoint and starts a new
   * journal segment. A restart replays at most about twice this (see persistence.ts).
   */
  checkpointEveryJournalBytes: number;
}

export const embeddedBoundsDefault: EmbeddedBounds = {
  transfersMax: 16_000_000,
  accountsMax: 1_000_000,
  checkpointEveryJournalBytes: 8 * 1024 * 1024,
};

/** The defaults with `overrides` (undefined ones ignored); every bound must be a positive integer. */
export function resolveBounds(overrides: Partial<EmbeddedBounds>): EmbeddedBounds {
  const bounds = { ...embeddedBoundsDefault };
  for (const key of Object.keys(bounds) as (keyof EmbeddedBounds)[]) {
    const value = overrides[key];
    if (value === undefined) continue;
    assert(Number.isSafeInteger(value) && value > 0, `${key} must be a positive integer, got ${value}`);
    bounds[key] = value;
  }
  return bounds;
}

/** The refusal of a create that could take the engine past `max` (nothing of it was applied). */
export function capacityError(operation: 'accounts' | 'transfers', held: number, max: number, adding: number): LedgerCapacityError {
  const what = operation === 'accounts' ? 'accounts' : 'transfers (and failed transfer ids)';
  const bound = operation === 'accounts' ? 'accountsMax' : 'transfersMax';
  return new LedgerCapacityError(
    `the embedded ledger holds ${held} ${what}, its limit is ${max} (${bound}): refused ${adding} more; ` +
      'move to TigerBeetle (set COUNTERSIGN_TB_ADDRESSES, see README "Scale")',
  );
}
