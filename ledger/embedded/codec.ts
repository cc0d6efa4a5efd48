import { endianness } from 'node:os';
import { assert } from '../assert.js';
import type { Account, Transfer } from '../model.js';

/**
 * TigerBeetle's 128-byte little-endian layout for accounts and transfers, used by the journal,
 * the checkpoint and the in-memory transfer store.
 *
 * Transfer: id@0 debit_account_id@16 credit_account_id@32 amount@48 pending_id@64
 *   user_data_128@80 user_data_64@96 user_data_32@104 timeout@108 ledger@112 code@116 flags@118
 *   timestamp@120.
 * Account: id@0 debits_pending@16 debits_posted@32 credits_pending@48 credits_posted@64
 *   user_data_128@80 user_data_64@96 user_data_32@104 reserved@108 ledger@112 code@116 flags@118
 *   timestamp@120.
 *
 * The codec works on u32 words (a `Uint32Array` over the bytes, `base` = byte offset / 4): a
 * typed-array store is several times cheaper than Buffer's checked `write*` methods, and this is
 * the engine's hot path. Words are in the host's byte order, so the host must be little-endian
 * (x86-64 and arm64 are), which is asserted once here.
 */
export const eventSize = 128;
export const eventWords = eventSize / 4;

assert(endianness() === 'LE', 'the embedded ledger codec needs a little-endian host');

const mask32 = 0xffff_ffffn;
const mask64 = 0xffff_ffff_ffff_ffffn;

/** u32 words over a Buffer (its offset and length must be multiples of 4). */
export function wordsOf(buf: Buffer): Uint32Array {
  assert(buf.byteOffset % 4 === 0 && buf.length % 4 === 0, 'buffer not word-aligned');
  return new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
}

export function setU128(w: Uint32Array, i: number, value: bigint): void {
  if (value <= mask32) {
    w[i] = Number(value);
    w[i + 1] = w[i + 2] = w[i + 3] = 0;
    return;
  }
  setU64(w, i, BigInt.asUintN(64, value));
  if (value <= mask64) {
    w[i + 2] = w[i + 3] = 0;
    return;
  }
  setU64(w, i + 2, value >> 64n);
}

export function getU128(w: Uint32Array, i: number): bigint {
  if (w[i + 2] === 0 && w[i + 3] === 0) return getU64(w, i);
  return getU64(w, i) | (getU64(w, i + 2) << 64n);
}

export function setU64(w: Uint32Array, i: number, value: bigint): void {
  if (value <= mask32) {
    w[i] = Number(value);
    w[i + 1] = 0;
    return;
  }
  w[i] = Number(value & mask32);
  w[i + 1] = Number(value >> 32n);
}

export function getU64(w: Uint32Array, i: number): bigint {
  const hi = w[i + 1]!;
  if (hi === 0) return BigInt(w[i]!);
  // hi * 2^32 + lo stays exact in a double below 2^53; beyond, combine as bigints.
  if (hi < 0x20_0000) return BigInt(hi * 0x1_0000_0000 + w[i]!);
  return (BigInt(hi) << 32n) | BigInt(w[i]!);
}

/** Writes the fields shared by both layouts from word 26 (user_data_32) to the end. */
function setTail(w: Uint32Array, b: number, userData32: number, word27: number, ledger: number, code: number, flags: number, timestamp: bigint): void {
  w[b + 26] = userData32;
  w[b + 27] = word27;
  w[b + 28] = ledger;
  w[b + 29] = code | (flags << 16);
  setU64(w, b + 30, timestamp);
}

export function encodeTransferWords(w: Uint32Array, b: number, t: Transfer): void {
  setU128(w, b, t.id);
  setU128(w, b + 4, t.debit_account_id);
  setU128(w, b + 8, t.credit_account_id);
  encodeTransferBody(w, b, t);
}

/** Every field but the three ids (words 0..11), for callers that have the ids as words already. */
export function encodeTransferBody(w: Uint32Array, b: number, t: Transfer): void {
  setU128(w, b + 12, t.amount);
  setU128(w, b + 16, t.pending_id);
  setU128(w, b + 20, t.user_data_128);
  setU64(w, b + 24, t.user_data_64);
  setTail(w, b, t.user_data_32, t.timeout, t.ledger, t.code, t.flags, t.timestamp);
}

export function decodeTransferWords(w: Uint32Array, b: number): Transfer {
  return {
    id: getU128(w, b),
    debit_account_id: getU128(w, b + 4),
    credit_account_id: getU128(w, b + 8),
    amount: getU128(w, b + 12),
    pending_id: getU128(w, b + 16),
    user_data_128: getU128(w, b + 20),
    user_data_64: getU64(w, b + 24),
    user_data_32: w[b + 26]!,
    timeout: w[b + 27]!,
    ledger: w[b + 28]!,
    code: w[b + 29]! & 0xffff,
    flags: w[b + 29]! >>> 16,
    timestamp: getU64(w, b + 30),
  };
}

export function encodeAccountWords(w: Uint32Array, b: number, a: Account): void {
  setU128(w, b, a.id);
  setU128(w, b + 4, a.debits_pending);
  setU128(w, b + 8, a.debits_posted);
  setU128(w, b + 12, a.credits_pending);
  setU128(w, b + 16, a.credits_posted);
  setU128(w, b + 20, a.user_data_128);
  setU64(w, b + 24, a.user_data_64);
  setTail(w, b, a.user_data_32, a.reserved, a.ledger, a.code, a.flags, a.timestamp);
}

export function decodeAccountWords(w: Uint32Array, b: number): Account {
  return {
    id: getU128(w, b),
    debits_pending: getU128(w, b + 4),
    debits_posted: getU128(w, b + 8),
    credits_pending: getU128(w, b + 12),
    credits_posted: getU128(w, b + 16),
    user_data_128: getU128(w, b + 20),
    user_data_64: getU64(w, b + 24),
    user_data_32: w[b + 26]!,
    reserved: w[b + 27]!,
    ledger: w[b + 28]!,
    code: w[b + 29]! & 0xffff,
    flags: w[b + 29]! >>> 16,
    timestamp: getU64(w, b + 30),
  };
}
