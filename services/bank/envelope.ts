import { createHash } from 'node:crypto';
import type { SealedEnvelope } from '../../authz/model.js';
import { assert } from '../../ledger/assert.js';
import { aeadNonceBytes, aeadTagBytes, bytesEqual, type HpkeContext, setupBaseRecipient, setupBaseSender, suiteName, x25519KeyBytes } from './hpke.js';
import {
  decipherPinBlock,
  encipherPinBlock,
  panDigitsMax,
  panDigitsMin,
  panFormatOk,
  pinBlockBytes,
  pinDigitsMax,
  pinDigitsMin,
  pinFormatOk,
} from './pin-block.js';

/**
 * The M5 card envelope (ENVELOPE.md is the specification; keep the two in step): card data and
 * an ISO 9564 format 4 PIN block sealed on the payer's terminal with HPKE base mode to the bank
 * front-end's X25519 key, bound by the associated data to one payment, merchant, amount and
 * currency. countersign relays it; only the bank opens it.
 */

/** The only suite envelopes use. */
export const envelopeSuite = suiteName('AES-256-GCM');
/** HPKE `info`. */
export const envelopeInfo = 'countersign.v1 bank card envelope';
/** Associated data prefix (first line). */
export const associatedDataPrefix = 'countersign.v1.bank-card';
/** HPKE exporter context of the PIN block key K. */
export const pinKeyExporterContext = 'countersign.v1 pin block key';
/** K is AES-128. */
export const pinKeyBytes = 16;
/** Largest envelope ciphertext (plaintext + 16-byte tag) accepted, bytes. */
export const envelopeCiphertextBytesMax = 1024;
/** Plaintext version. */
export const envelopeVersion = 1;
/** Hex digits of a key id (the first 64 bits of SHA-256 of the raw public key). */
export const keyIdHexDigits = 16;
export { panDigitsMax, panDigitsMin, pinDigitsMax, pinDigitsMin };

const expiryPattern = /^[0-9]{2}(0[1-9]|1[0-2])$/;
const pinBlockPattern = new RegExp(`^[0-9a-fA-F]{${2 * pinBlockBytes}}$`);
const currencyPattern = /^[A-Z]{3}$/;
const encoder = new TextEncoder();

export interface EnvelopePayment {
  id: string;
  merchantId: string;
  /** Minor units. */
  amount: bigint;
  /** ISO 4217. */
  currency: string;
}

export interface CardData {
  /** 12..19 digits. */
  pan: string;
  /** YYMM. */
  expiry: string;
}

export interface OpenedCard extends CardData {
  pin: string;
}

/** Why an envelope did not open; none of these carries card data. */
export type EnvelopeFailure =
  /** Not the envelope suite, or not the bank's key. */
  | 'suite'
  /** Field sizes outside the format. */
  | 'malformed'
  /** `nonce` is not the context's seq-0 nonce. */
  | 'nonce'
  /** AEAD authentication failed: another payment, merchant, amount or currency, another key, or tampering. */
  | 'authentication'
  /** The plaintext is not the version-1 JSON object. */
  | 'plaintext'
  /** The PIN block does not decipher with the PAN. */
  | 'pin_block';

export type OpenResult<T> = { ok: true; value: T } | { ok: false; failure: EnvelopeFailure };

/** The plaintext object, as sealed. */
export interface EnvelopePlaintext {
  v: 1;
  pan: string;
  expiry: string;
  /** 32 hex digits. */
  pinBlock: string;
}

/** A bank key id: the first 16 hex digits of SHA-256 of the raw public key. */
export function keyIdOf(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, keyIdHexDigits);
}

/** UTF-8 of "countersign.v1.bank-card\n<payment id>\n<merchant id>\n<amount>\n<currency>". */
export function associatedData(payment: EnvelopePayment): Uint8Array {
  if (payment.amount <= 0n) throw new RangeError('amount must be positive');
  for (const value of [payment.id, payment.merchantId, payment.currency]) {
    if (value.length === 0 || value.includes('\n')) throw new RangeError('payment fields must be non-empty single lines');
  }
  return encoder.encode([associatedDataPrefix, payment.id, payment.merchantId, payment.amount.toString(10), payment.currency].join('\n'));
}

export interface SealCardInput {
  bankKey: { keyId: string; suite: string; publicKey: Uint8Array };
  payment: EnvelopePayment;
  card: CardData;
  pin: string;
  /** Known-answer tests only (the ENVELOPE.md worked example): fixed ephemeral key and PIN fill. */
  deterministic?: { ephemeralPrivateKey: Uint8Array; pinFill: Uint8Array };
}

/**
 * Seals card and PIN for the bank (the terminal's side). Bad card data or an unsupported bank
 * key rejects with RangeError: the terminal checks what the payer typed before it seals.
 */
export async function sealCard(input: SealCardInput): Promise<SealedEnvelope> {
  if (input.bankKey.suite !== envelopeSuite) throw new RangeError(`unsupported bank key suite "${input.bankKey.suite}"`);
  if (!panFormatOk(input.card.pan)) throw new RangeError(`PAN must be ${panDigitsMin}..${panDigitsMax} digits`);
  if (!expiryPattern.test(input.card.expiry)) throw new RangeError('expiry must be YYMM');
  if (!pinFormatOk(input.pin)) throw new RangeError(`PIN must be ${pinDigitsMin}..${pinDigitsMax} digits`);
  const aad = associatedData(input.payment);
  const context = await setupBaseSender({
    aead: 'AES-256-GCM',
    recipientPublicKey: input.bankKey.publicKey,
    info: encoder.encode(envelopeInfo),
    ...(input.deterministic ? { ephemeralPrivateKey: input.deterministic.ephemeralPrivateKey } : {}),
  });
  const pinBlock = encipherPinBlock(await pinKeyOf(context), input.pin, input.card.pan, input.deterministic?.pinFill);
  const plaintext: EnvelopePlaintext = { v: envelopeVersion, pan: input.card.pan, expiry: input.card.expiry, pinBlock: Buffer.from(pinBlock).toString('hex') };
  const ciphertext = await context.seal(aad, encoder.encode(JSON.stringify(plaintext)));
  assert(ciphertext.length <= envelopeCiphertextBytesMax, 'a valid card envelope is within its bound');
  return { suite: envelopeSuite, keyId: input.bankKey.keyId, ephemeralPublicKey: context.enc, nonce: context.baseNonce, ciphertext };
}

/** Opens an envelope for `payment` (the bank's side): card data and the PIN, or why not. */
export async function openCard(privateKey: Uint8Array, envelope: SealedEnvelope, payment: EnvelopePayment): Promise<OpenResult<OpenedCard>> {
  const opened = await openEnvelope(privateKey, envelope, payment);
  if (!opened.ok) return opened;
  const { plaintext, pinKey } = opened.value;
  const pin = decipherPinBlock(pinKey, new Uint8Array(Buffer.from(plaintext.pinBlock, 'hex')), plaintext.pan);
  if (pin === undefined) return { ok: false, failure: 'pin_block' };
  return { ok: true, value: { pan: plaintext.pan, expiry: plaintext.expiry, pin } };
}

/** The decrypted plaintext and the PIN block key (openCard's first half; tests read the PIN block hex from it). */
export async function openEnvelope(
  privateKey: Uint8Array,
  envelope: SealedEnvelope,
  payment: EnvelopePayment,
): Promise<OpenResult<{ plaintext: EnvelopePlaintext; pinKey: Uint8Array }>> {
  if (envelope.suite !== envelopeSuite) return { ok: false, failure: 'suite' };
  const shapeOk =
    envelope.ephemeralPublicKey.length === x25519KeyBytes &&
    envelope.nonce.length === aeadNonceBytes &&
    envelope.ciphertext.length > aeadTagBytes &&
    envelope.ciphertext.length <= envelopeCiphertextBytesMax;
  if (!shapeOk) return { ok: false, failure: 'malformed' };
  const context = await setupBaseRecipient({
    aead: 'AES-256-GCM',
    recipientPrivateKey: privateKey,
    enc: envelope.ephemeralPublicKey,
    info: encoder.encode(envelopeInfo),
  });
  if (context === undefined) return { ok: false, failure: 'malformed' };
  if (!bytesEqual(context.baseNonce, envelope.nonce)) return { ok: false, failure: 'nonce' };
  const bytes = await context.open(associatedData(payment), envelope.ciphertext);
  if (bytes === undefined) return { ok: false, failure: 'authentication' };
  const plaintext = parsePlaintext(bytes);
  if (plaintext === undefined) return { ok: false, failure: 'plaintext' };
  return { ok: true, value: { plaintext, pinKey: await pinKeyOf(context) } };
}

/** K = Export("countersign.v1 pin block key", 16). */
function pinKeyOf(context: HpkeContext): Promise<Uint8Array> {
  return context.export(encoder.encode(pinKeyExporterContext), pinKeyBytes);
}

const plaintextKeys = ['expiry', 'pan', 'pinBlock', 'v'];

function parsePlaintext(bytes: Uint8Array): EnvelopePlaintext | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  if (Object.keys(o).sort().join() !== plaintextKeys.join()) return undefined;
  if (o.v !== envelopeVersion || typeof o.pan !== 'string' || typeof o.expiry !== 'string' || typeof o.pinBlock !== 'string') return undefined;
  if (!panFormatOk(o.pan) || !expiryPattern.test(o.expiry) || !pinBlockPattern.test(o.pinBlock)) return undefined;
  return { v: envelopeVersion, pan: o.pan, expiry: o.expiry, pinBlock: o.pinBlock };
}

/** True for an ISO 4217-shaped code (three capital letters). */
export function currencyFormatOk(currency: string): boolean {
  return currencyPattern.test(currency);
}
