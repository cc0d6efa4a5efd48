import type { Account, Transfer } from '../model.js';

/**
 * TigerBeetle's 128-byte little-endian layout for accounts and transfers, used by the journal.
 *
 * Transfer: id@0 debit_account_id@16 credit_account_id@32 amount@48 pending_id@64
 *   user_data_128@80 user_data_64@96 user_data_32@104 timeout@108 ledger@112 code@116 flags@118
 *   timestamp@120.
 * Account: id@0 debits_pending@16 debits_posted@32 credits_pending@48 credits_posted@64
 *   user_data_128@80 user_data_64@96 user_data_32@104 reserved@108 ledger@112 code@116 flags@118
 *   timestamp@120.
 */
export const eventSize = 128;

const mask64 = 0xffff_ffff_ffff_ffffn;

function writeU128(buf: Buffer, offset: number, value: bigint): void {
  buf.writeBigUInt64LE(value & mask64, offset);
  buf.writeBigUInt64LE(value >> 64n, offset + 8);
}

function readU128(buf: Buffer, offset: number): bigint {
  return buf.readBigUInt64LE(offset) | (buf.readBigUInt64LE(offset + 8) << 64n);
}

export function encodeTransfer(buf: Buffer, offset: number, t: Transfer): void {
  writeU128(buf, offset, t.id);
  writeU128(buf, offset + 16, t.debit_account_id);
  writeU128(buf, offset + 32, t.credit_account_id);
  writeU128(buf, offset + 48, t.amount);
  writeU128(buf, offset + 64, t.pending_id);
  writeU128(buf, offset + 80, t.user_data_128);
  buf.writeBigUInt64LE(t.user_data_64, offset + 96);
  buf.writeUInt32LE(t.user_data_32, offset + 104);
  buf.writeUInt32LE(t.timeout, offset + 108);
  buf.writeUInt32LE(t.ledger, offset + 112);
  buf.writeUInt16LE(t.code, offset + 116);
  buf.writeUInt16LE(t.flags, offset + 118);
  buf.writeBigUInt64LE(t.timestamp, offset + 120);
}

export function decodeTransfer(buf: Buffer, offset: number): Transfer {
  return {
    id: readU128(buf, offset),
    debit_account_id: readU128(buf, offset + 16),
    credit_account_id: readU128(buf, offset + 32),
    amount: readU128(buf, offset + 48),
    pending_id: readU128(buf, offset + 64),
    user_data_128: readU128(buf, offset + 80),
    user_data_64: buf.readBigUInt64LE(offset + 96),
    user_data_32: buf.readUInt32LE(offset + 104),
    timeout: buf.readUInt32LE(offset + 108),
    ledger: buf.readUInt32LE(offset + 112),
    code: buf.readUInt16LE(offset + 116),
    flags: buf.readUInt16LE(offset + 118),
    timestamp: buf.readBigUInt64LE(offset + 120),
  };
}

export function encodeAccount(buf: Buffer, offset: number, a: Account): void {
  writeU128(buf, offset, a.id);
  writeU128(buf, offset + 16, a.debits_pending);
  writeU128(buf, offset + 32, a.debits_posted);
  writeU128(buf, offset + 48, a.credits_pending);
  writeU128(buf, offset + 64, a.credits_posted);
  writeU128(buf, offset + 80, a.user_data_128);
  buf.writeBigUInt64LE(a.user_data_64, offset + 96);
  buf.writeUInt32LE(a.user_data_32, offset + 104);
  buf.writeUInt32LE(a.reserved, offset + 108);
  buf.writeUInt32LE(a.ledger, offset + 112);
  buf.writeUInt16LE(a.code, offset + 116);
  buf.writeUInt16LE(a.flags, offset + 118);
  buf.writeBigUInt64LE(a.timestamp, offset + 120);
}

export function decodeAccount(buf: Buffer, offset: number): Account {
  return {
    id: readU128(buf, offset),
    debits_pending: readU128(buf, offset + 16),
    debits_posted: readU128(buf, offset + 32),
    credits_pending: readU128(buf, offset + 48),
    credits_posted: readU128(buf, offset + 64),
    user_data_128: readU128(buf, offset + 80),
    user_data_64: buf.readBigUInt64LE(offset + 96),
    user_data_32: buf.readUInt32LE(offset + 104),
    reserved: buf.readUInt32LE(offset + 108),
    ledger: buf.readUInt32LE(offset + 112),
    code: buf.readUInt16LE(offset + 116),
    flags: buf.readUInt16LE(offset + 118),
    timestamp: buf.readBigUInt64LE(offset + 120),
  };
}
