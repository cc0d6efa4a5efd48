import { Aes256Gcm, CipherSuite, HkdfSha256, type SenderContext } from '@hpke/core';
import { DhkemX25519HkdfSha256, X25519 } from '@hpke/dhkem-x25519';

/**
 * M5 on the reference card terminal: seals card data and PIN for the payer's bank in the
 * browser, exactly as services/bank/ENVELOPE.md specifies (version 1): HPKE base mode (RFC 9180:
 * DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) from `@hpke/core` with
 * `@hpke/dhkem-x25519`'s KEM (the bank's opener uses the same two, services/bank/hpke.ts), the
 * PIN as an ISO 9564-1 format-4 PIN block under a key exported from the HPKE context, and the
 * payment's id, merchant, amount and currency as associated data. countersign relays the
 * result and cannot open it. Runs in browsers (bundled by esbuild, services/web/assets.ts) and
 * in Node; X25519 is the library's own, so it needs no X25519 in `crypto.subtle`.
 */

export const envelopeSuite = 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM';
export const envelopeInfo = 'countersign.v1 bank card envelope';
export const associatedDataPrefix = 'countersign.v1.bank-card';
export const pinKeyExporterContext = 'countersign.v1 pin block key';
export const panDigitsMin = 12;
export const panDigitsMax = 19;
export const pinDigitsMin = 4;
export const pinDigitsMax = 12;
export const keyIdHexDigits = 16;
const x25519KeyBytes = 32;
const nonceBytes = 12;
const pinKeyBytes = 16;
const blockBytes = 16;
const pinFillBytes = 8;

type Bytes = Uint8Array<ArrayBuffer>;
type Key = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

export interface BankKeyInput {
  readonly keyId: string;
  readonly suite: string;
  readonly publicKey: Uint8Array;
}

export interface CardPayment {
  readonly id: string;
  readonly merchantId: string;
  /** Minor units. */
  readonly amount: bigint;
  readonly currency: string;
}

export interface CardInput {
  /** 12..19 digits. */
  readonly pan: string;
  /** YYMM. */
  readonly expiry: string;
  readonly pin: string;
}

/** The fields of `countersign.v1.SealedEnvelope`. */
export interface Envelope {
  suite: string;
  keyId: string;
  ephemeralPublicKey: Bytes;
  nonce: Bytes;
  ciphertext: Bytes;
}

/** Known-answer tests only (ENVELOPE.md §9): a fixed ephemeral private key (raw X25519) and PIN fill. */
export interface Deterministic {
  readonly ephemeralPrivateKey: Uint8Array;
  readonly pinFill: Uint8Array;
}

export class CardInputError extends Error {
  override readonly name = 'CardInputError';
}

const encoder = new TextEncoder();
const text = (s: string): Bytes => encoder.encode(s);

function concat(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

// ------------------------------------------------------------------------- HPKE base mode

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });

async function setupBaseSender(recipient: Uint8Array, info: Uint8Array, ephemeralPrivateKey: Uint8Array | undefined): Promise<SenderContext> {
  const recipientPublicKey = await suite.kem.deserializePublicKey(new Uint8Array(recipient));
  if (ephemeralPrivateKey === undefined) return suite.createSenderContext({ recipientPublicKey, info });
  const x25519 = new X25519(new HkdfSha256());
  const privateKey = await x25519.deserializePrivateKey(new Uint8Array(ephemeralPrivateKey));
  return suite.createSenderContext({ recipientPublicKey, info, ekm: { privateKey, publicKey: await x25519.derivePublicKey(privateKey) } });
}

/**
 * The envelope's `nonce`: base_nonce, which `@hpke/core` keeps in the context's key info (`_ctx`,
 * TypeScript-protected, no getter). ENVELOPE.md's worked example checks it (test/web/card-envelope.test.ts).
 */
function baseNonceOf(context: SenderContext): Bytes {
  const nonce = (context as unknown as { _ctx?: { baseNonce?: unknown } })._ctx?.baseNonce;
  if (!(nonce instanceof Uint8Array && nonce.length === nonceBytes)) throw new Error('assertion failed: @hpke/core keeps base_nonce in its context');
  return new Uint8Array(nonce);
}

// ------------------------------------------------------------------------- PIN block

/** AES-128-ECB of one block: AES-CBC with a zero IV, first block of the output. */
async function ecbBlock(key: Key, block: Uint8Array): Promise<Bytes> {
  const out = await crypto.subtle.encrypt({ name: 'AES-CBC', iv: new Uint8Array(blockBytes) }, key, new Uint8Array(block));
  return new Uint8Array(out, 0, blockBytes).slice();
}

/** ISO 9564-1 format 4 (ENVELOPE.md §4). */
async function pinBlock(pinKey: Uint8Array, pin: string, pan: string, pinFill: Uint8Array): Promise<Bytes> {
  const nibbles = `4${pin.length.toString(16)}${pin}`.padEnd(16, 'a');
  const pinField = concat(
    Uint8Array.from({ length: 8 }, (_, i) => parseInt(nibbles.slice(2 * i, 2 * i + 2), 16)),
    pinFill,
  );
  const panNibbles = `${pan.length - 12}${pan}`.padEnd(32, '0');
  const panField = Uint8Array.from({ length: blockBytes }, (_, i) => parseInt(panNibbles.slice(2 * i, 2 * i + 2), 16));
  const key = await crypto.subtle.importKey('raw', new Uint8Array(pinKey), { name: 'AES-CBC' }, false, ['encrypt']);
  const first = await ecbBlock(key, pinField);
  pinField.fill(0);
  return ecbBlock(
    key,
    first.map((b, i) => b ^ (panField[i] ?? 0)),
  );
}

// ------------------------------------------------------------------------- the envelope

function checkInput(bankKey: BankKeyInput, card: CardInput, payment: CardPayment): void {
  if (bankKey.suite !== envelopeSuite) throw new CardInputError('the bank key is for a suite this terminal cannot seal for');
  if (bankKey.publicKey.length !== x25519KeyBytes) throw new CardInputError('the bank key is malformed');
  if (!new RegExp(`^[0-9]{${panDigitsMin},${panDigitsMax}}$`).test(card.pan))
    throw new CardInputError(`the card number must be ${panDigitsMin} to ${panDigitsMax} digits`);
  if (!/^[0-9]{2}(0[1-9]|1[0-2])$/.test(card.expiry)) throw new CardInputError('the expiry must be a month and a year');
  if (!new RegExp(`^[0-9]{${pinDigitsMin},${pinDigitsMax}}$`).test(card.pin))
    throw new CardInputError(`the PIN must be ${pinDigitsMin} to ${pinDigitsMax} digits`);
  if (payment.amount <= 0n || [payment.id, payment.merchantId, payment.currency].some((v) => v === '' || v.includes('\n')))
    throw new CardInputError('the payment is malformed');
}

/** The bank key's id: the first 16 hex digits of SHA-256 of the raw public key. */
export async function keyIdOf(publicKey: Uint8Array): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(publicKey)))).slice(0, keyIdHexDigits);
}

export function associatedData(payment: CardPayment): Bytes {
  return text([associatedDataPrefix, payment.id, payment.merchantId, payment.amount.toString(10), payment.currency].join('\n'));
}

/** Seals card and PIN for `bankKey` and exactly this payment. Throws `CardInputError` on bad input. */
export async function sealCard(bankKey: BankKeyInput, payment: CardPayment, card: CardInput, deterministic?: Deterministic): Promise<Envelope> {
  checkInput(bankKey, card, payment);
  if ((await keyIdOf(bankKey.publicKey)) !== bankKey.keyId) throw new CardInputError('the bank key id does not match its key');
  const context = await setupBaseSender(bankKey.publicKey, text(envelopeInfo), deterministic?.ephemeralPrivateKey);
  const pinKey = new Uint8Array(await context.export(text(pinKeyExporterContext), pinKeyBytes));
  const block = await pinBlock(pinKey, card.pin, card.pan, deterministic?.pinFill ?? crypto.getRandomValues(new Uint8Array(pinFillBytes)));
  pinKey.fill(0);
  const plaintext = text(JSON.stringify({ v: 1, pan: card.pan, expiry: card.expiry, pinBlock: hex(block) }));
  const ciphertext = new Uint8Array(await context.seal(plaintext, associatedData(payment)));
  plaintext.fill(0);
  return { suite: envelopeSuite, keyId: bankKey.keyId, ephemeralPublicKey: new Uint8Array(context.enc), nonce: baseNonceOf(context), ciphertext };
}
