import { type Currency, currencyOf } from '../ledger/chart.js';
import { u64Max } from '../ledger/model.js';
import { invalidArgument } from './errors.js';

/** Named bounds on request fields. */
export const idempotencyKeyCharsMax = 128;
export const descriptionCharsMax = 200;
export const displayNameCharsMax = 100;
export const batchItemsMax = 1000;

const printableAscii = /^[\x21-\x7e]+$/;
const hexId = /^[0-9a-f]{32}$/;
const e164 = /^\+[1-9]\d{6,14}$/;
/** A code the payer types or a phone keys: the first and second codes, an SMS code. */
export const eightDigits = /^\d{8}$/;
/** A PIN or an IVR / authorization password, keyed as DTMF. */
export const dtmfPassword = /^\d{4,12}$/;

/** Whether `text` is a 128-bit id as ids are written everywhere: 32 lowercase hex digits. */
export function isHexId(text: string): boolean {
  return hexId.test(text);
}

export function checkIdempotencyKey(key: string): void {
  if (key.length === 0) throw invalidArgument('idempotency_key', 'is required');
  if (key.length > idempotencyKeyCharsMax) throw invalidArgument('idempotency_key', `must be at most ${idempotencyKeyCharsMax} characters`);
  if (!printableAscii.test(key)) throw invalidArgument('idempotency_key', 'must be printable ASCII without spaces');
}

/** Amounts are u64 minor units, at least 1. */
export function checkAmount(amount: bigint, field = 'amount'): void {
  if (amount <= 0n) throw invalidArgument(field, 'must be at least 1 (minor units)');
  if (amount > u64Max) throw invalidArgument(field, 'must fit in 64 bits');
}

export function checkCurrency(code: string): Currency {
  const currency = currencyOf(code);
  if (currency === undefined) throw invalidArgument('currency', `"${code.slice(0, 8)}" is not supported (ISO 4217 code such as USD)`);
  return currency;
}

export function checkDescription(text: string): void {
  if (text.length > descriptionCharsMax) throw invalidArgument('description', `must be at most ${descriptionCharsMax} characters`);
}

/** A 128-bit id as 32 lowercase hex digits (any id field: payment, payer, account, line). */
export function checkHexId(id: string, field: string): void {
  if (!hexId.test(id)) throw invalidArgument(field, 'must be 32 lowercase hex digits');
}

/** Whether `text` is an E.164 phone number: +, a country code, at most 15 digits. */
export function isE164(text: string): boolean {
  return e164.test(text);
}

export function checkPhone(phone: string, field = 'phone'): void {
  if (!isE164(phone)) throw invalidArgument(field, 'must be E.164, e.g. +14155550123');
}
