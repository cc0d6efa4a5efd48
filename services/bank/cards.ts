import { hashSecret } from '../../authz/codes/pin-hash.js';
import { currencyFormatOk } from './envelope.js';
import { panFormatOk } from './pin-block.js';

/**
 * The reference bank's card table: loaded from a JSON file (`--cards`) or the built-in demo
 * table (README.md lists its cards and PINs). A PIN is only ever held as an argon2id hash.
 *
 * File format: a JSON array of
 *   { "pan": "4000000000000002", "expiry": "3012", "pinHash": "$argon2id$v=19$...",
 *     "available": { "USD": "100000" }, "blocked": false }
 * amounts in minor units as decimal strings (never floats); `blocked` optional.
 */

export interface CardRecord {
  /** 12..19 digits. */
  pan: string;
  /** YYMM: valid through the last day of that month (UTC). */
  expiry: string;
  /** argon2id PHC string of the PIN. */
  pinHash: string;
  /** Available amount per ISO 4217 currency, minor units. */
  available: Readonly<Record<string, bigint>>;
  blocked: boolean;
}

/** Most cards a table may hold (bounds memory and start-up work). */
export const cardsMax = 100_000;
/** Largest cards file read, bytes. */
export const cardsFileBytesMax = 64 * 1024 * 1024;

const expiryPattern = /^[0-9]{2}(0[1-9]|1[0-2])$/;
const minorUnitsPattern = /^(0|[1-9][0-9]{0,19})$/;
const uint64Max = (1n << 64n) - 1n;

/** A card table file's content, checked; throws CardsFileError naming the first bad entry (never its PAN). */
export function parseCardsFile(text: string): CardRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CardsFileError('cards file is not JSON', { cause: error });
  }
  if (!Array.isArray(value)) throw new CardsFileError('cards file must be a JSON array of cards');
  if (value.length > cardsMax) throw new CardsFileError(`cards file holds more than ${cardsMax} cards`);
  const cards = value.map((entry: unknown, index) => parseCard(entry, index));
  if (new Set(cards.map((c) => c.pan)).size !== cards.length) throw new CardsFileError('cards file lists a PAN twice');
  return cards;
}

function parseCard(entry: unknown, index: number): CardRecord {
  const bad = (what: string) => new CardsFileError(`card #${index + 1}: ${what}`);
  if (typeof entry !== 'object' || entry === null) throw bad('not an object');
  const e = entry as Record<string, unknown>;
  if (typeof e.pan !== 'string' || !panFormatOk(e.pan)) throw bad('pan must be 12..19 digits');
  if (typeof e.expiry !== 'string' || !expiryPattern.test(e.expiry)) throw bad('expiry must be YYMM');
  if (typeof e.pinHash !== 'string' || !e.pinHash.startsWith('$argon2id$')) throw bad('pinHash must be an argon2id PHC string (plain PINs are not accepted)');
  if (e.blocked !== undefined && typeof e.blocked !== 'boolean') throw bad('blocked must be true or false');
  if (typeof e.available !== 'object' || e.available === null || Array.isArray(e.available)) throw bad('available must be an object of currency → minor units');
  const available: Record<string, bigint> = {};
  for (const [currency, amount] of Object.entries(e.available)) {
    if (!currencyFormatOk(currency)) throw bad(`"${currency}" is not an ISO 4217 code`);
    if (typeof amount !== 'string' || !minorUnitsPattern.test(amount) || BigInt(amount) > uint64Max)
      throw bad(`available.${currency} must be minor units as a decimal string`);
    available[currency] = BigInt(amount);
  }
  return { pan: e.pan, expiry: e.expiry, pinHash: e.pinHash, available, blocked: e.blocked === true };
}

export class CardsFileError extends Error {
  override readonly name = 'CardsFileError';
}

/** The demo cards and their PINs, as README.md documents them. */
export const demoCardSpecs = [
  { pan: '4000000000000002', pin: '1234', expiry: '3012', available: { USD: 100_000_000n, EUR: 100_000_000n, GBP: 100_000_000n }, blocked: false },
  { pan: '4000000000000010', pin: '1234', expiry: '3012', available: { USD: 500n, EUR: 500n, GBP: 500n }, blocked: false },
  { pan: '4000000000000028', pin: '1234', expiry: '2001', available: { USD: 100_000_000n, EUR: 100_000_000n, GBP: 100_000_000n }, blocked: false },
  { pan: '4000000000000036', pin: '1234', expiry: '3012', available: { USD: 100_000_000n, EUR: 100_000_000n, GBP: 100_000_000n }, blocked: true },
] as const;

/** The built-in demo table, PINs hashed now (argon2id). */
export async function demoCards(): Promise<CardRecord[]> {
  return Promise.all(
    demoCardSpecs.map(async (c) => ({ pan: c.pan, expiry: c.expiry, pinHash: await hashSecret(c.pin), available: { ...c.available }, blocked: c.blocked })),
  );
}
