import { eventBatchMax } from './model.js';
import { LedgerRequestError } from './port.js';

const linkedFlag = 1; // `linked` is bit 0 in both AccountFlags and TransferFlags.

/**
 * Splits events into requests of at most `max` events without cutting a linked chain, so each
 * chain is sent whole and stays atomic. A chain left open at the very end stays in the last
 * request, where the ledger answers `linked_event_chain_open`, as it would for the whole array.
 *
 * No events, no requests. Throws `LedgerRequestError` for a single chain longer than `max`: no
 * ledger can apply it.
 */
export function chunkEvents<T extends { flags: number }>(events: readonly T[], max = eventBatchMax): T[][] {
  if (events.length === 0) return [];
  if (events.length <= max) return [events as T[]];
  const chunks: T[][] = [];
  let start = 0;
  while (start < events.length) {
    let end = Math.min(start + max, events.length);
    if (end < events.length) {
      // Step back to just after the last event that closes a chain (unlinked) inside the window.
      let cut = end;
      while (cut > start && (events[cut - 1]!.flags & linkedFlag) !== 0) cut -= 1;
      if (cut === start) {
        throw new LedgerRequestError(`a linked chain starting at event ${start} is longer than ${max} events (eventBatchMax)`);
      }
      end = cut;
    }
    chunks.push(events.slice(start, end));
    start = end;
  }
  return chunks;
}

/** Splits ids into lookups of at most `max`. */
export function chunkIds(ids: readonly bigint[], max = eventBatchMax): bigint[][] {
  if (ids.length === 0) return [];
  if (ids.length <= max) return [ids as bigint[]];
  const chunks: bigint[][] = [];
  for (let i = 0; i < ids.length; i += max) chunks.push(ids.slice(i, i + max));
  return chunks;
}
