import { idMax } from './model.js';
import { pooledRandomBytes } from './random-pool.js';

/**
 * 128-bit ids, time-ordered like TigerBeetle's recommended ids: 48 bits of milliseconds since
 * the Unix epoch, then 80 bits that are random at the start of each millisecond and advanced
 * within it (monotonic in one process).
 *
 * Every id minted here has its low 4 bits zero, so any id can serve as a payment id: the
 * transfer ids of a payment are derived from it (`paymentTransferIds`) by setting those bits,
 * and mapped back (`paymentIdOf`) without any lookup table: the ledger alone is enough to
 * rebuild payments. The remaining 76 bits of randomness per millisecond keep ids unguessable
 * enough and collisions between processes negligible.
 */

const randomBits = 80n;
const randomMask = (1n << randomBits) - 1n;
const kindBits = 4n;
const kindMask = (1n << kindBits) - 1n;
/** Ids within one millisecond advance by this step, keeping the low 4 (kind) bits zero. */
const step = 1n << kindBits;

let lastMs = 0n;
let lastRandom = 0n;

/** A new time-ordered 128-bit id with its low 4 bits zero (never 0 or 2^128-1). */
export function newId(): bigint {
  const ms = BigInt(Date.now());
  if (ms <= lastMs) {
    lastRandom = (lastRandom + step) & randomMask;
    if (lastRandom === 0n) lastMs += 1n; // 2^76 ids in one millisecond: borrow the next one.
  } else {
    lastMs = ms;
    // 80 random bits from the pooled CSPRNG (`randomBytes(10)` was 3.5 µs of every unary create: one per millisecond).
    const r = pooledRandomBytes(10);
    lastRandom = ((r.readBigUInt64BE(0) << 16n) | BigInt(r.readUInt16BE(8))) & ~kindMask;
    if (lastRandom === 0n) lastRandom = step; // never mint id 0 when the clock reads 0
  }
  return (lastMs << randomBits) | lastRandom;
}

/** A new payment id (any `newId()` is one; this name says what it is for). */
export function newPaymentId(): bigint {
  return newId();
}

/** The kinds of transfer a payment may create, each with its own id derived from the payment id. */
export const PaymentTransferKind = { pending: 1n, post: 2n, void: 3n, fee: 4n, limitPending: 5n, limitPost: 6n, limitVoid: 7n } as const;
export type PaymentTransferKind = keyof typeof PaymentTransferKind;

export interface PaymentTransferIds {
  /** The reservation: a pending transfer from payer to payee. */
  pending: bigint;
  /** Posts the reservation. */
  post: bigint;
  /** Voids the reservation. */
  void: bigint;
  /** The merchant's fee to the platform, linked with the post. */
  fee: bigint;
  /** M3c: the charge against the billable line's period credit (control account), linked with the reservation. */
  limitPending: bigint;
  /** Posts the limit charge, linked with the post. */
  limitPost: bigint;
  /** Voids the limit charge. */
  limitVoid: bigint;
}

export function isPaymentId(id: bigint): boolean {
  return id > 0n && id < idMax && (id & kindMask) === 0n;
}

/** The pending, post, void and fee transfer ids of a payment. Same payment id, same ids: always. */
export function paymentTransferIds(paymentId: bigint): PaymentTransferIds {
  if (!isPaymentId(paymentId)) {
    throw new RangeError('payment id must be a non-zero 128-bit id with its low 4 bits zero');
  }
  return {
    pending: paymentId | PaymentTransferKind.pending,
    post: paymentId | PaymentTransferKind.post,
    void: paymentId | PaymentTransferKind.void,
    fee: paymentId | PaymentTransferKind.fee,
    limitPending: paymentId | PaymentTransferKind.limitPending,
    limitPost: paymentId | PaymentTransferKind.limitPost,
    limitVoid: paymentId | PaymentTransferKind.limitVoid,
  };
}

/** The payment and kind a derived transfer id belongs to, or undefined for any other id. */
export function paymentIdOf(transferId: bigint): { paymentId: bigint; kind: PaymentTransferKind } | undefined {
  const code = transferId & kindMask;
  const kind = (Object.keys(PaymentTransferKind) as PaymentTransferKind[]).find((name) => PaymentTransferKind[name] === code);
  if (kind === undefined) return undefined;
  return { paymentId: transferId & ~kindMask, kind };
}

/** 16 bytes, big-endian. */
export function idToBytes(id: bigint): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeBigUInt64BE(id >> 64n, 0);
  buf.writeBigUInt64BE(id & 0xffff_ffff_ffff_ffffn, 8);
  return buf;
}

export function idFromBytes(bytes: Uint8Array): bigint {
  if (bytes.length !== 16) throw new RangeError(`id must be 16 bytes, got ${bytes.length}`);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, 16);
  return (view.readBigUInt64BE(0) << 64n) | view.readBigUInt64BE(8);
}

/** 32 lowercase hex digits. */
export function idToHex(id: bigint): string {
  return id.toString(16).padStart(32, '0');
}

export function idFromHex(hex: string): bigint {
  if (!/^[0-9a-fA-F]{1,32}$/.test(hex)) throw new RangeError('id must be 1 to 32 hex digits');
  return BigInt(`0x${hex}`);
}
