/**
 * M5 on the reference card terminal: seals card data and PIN for the payer's bank in the
 * browser, with WebCrypto only, exactly as services/bank/ENVELOPE.md specifies (version 1):
 * HPKE base mode (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), the PIN as
 * an ISO 9564-1 format-4 PIN block under a key exported from the HPKE context, and the
 * payment's id, merchant, amount and currency as associated data. countersign relays the
 * result and cannot open it. Runs in browsers and in Node (both have X25519 in `crypto.subtle`).
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
const hashBytes = 32;
const aeadKeyBytes = 32;
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

/** Known-answer tests only (ENVELOPE.md §9): a fixed ephemeral key pair and PIN fill. */
export interface Deterministic {
  readonly ephemeral: { privateKey: Key; publicKey: Key };
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
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

const i2osp = (value: number, length: number): Bytes => Uint8Array.from({ length }, (_, i) => (value >> (8 * (length - 1 - i))) & 0xff);
const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

// ------------------------------------------------------------------------- HKDF on HMAC

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Bytes> {
  // An empty key equals 32 zero bytes under HMAC (keys are zero-padded), and WebCrypto refuses empty keys.
  const raw = key.length === 0 ? new Uint8Array(hashBytes) : new Uint8Array(key);
  const k = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, new Uint8Array(data)));
}

async function expand(prk: Uint8Array, info: Uint8Array, length: number): Promise<Bytes> {
  const out = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 1, filled = 0; filled < length; i++) {
    previous = await hmac(prk, concat(previous, info, Uint8Array.of(i)));
    out.set(previous.subarray(0, length - filled), filled);
    filled += previous.length;
  }
  return out;
}

const kemSuiteId = concat(text('KEM'), i2osp(0x0020, 2));
const hpkeSuiteId = concat(text('HPKE'), i2osp(0x0020, 2), i2osp(0x0001, 2), i2osp(0x0002, 2));

const labeledExtract = (suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array) => hmac(salt, concat(text('HPKE-v1'), suiteId, text(label), ikm));
const labeledExpand = (suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number) =>
  expand(prk, concat(i2osp(length, 2), text('HPKE-v1'), suiteId, text(label), info), length);

// ------------------------------------------------------------------------- HPKE base mode

interface SenderContext {
  enc: Bytes;
  key: Bytes;
  baseNonce: Bytes;
  exporterSecret: Bytes;
}

async function encap(recipient: Uint8Array, ephemeral: Deterministic['ephemeral'] | undefined): Promise<{ sharedSecret: Bytes; enc: Bytes }> {
  const pair = ephemeral ?? ((await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as unknown as Deterministic['ephemeral']);
  const pkR = await crypto.subtle.importKey('raw', new Uint8Array(recipient), { name: 'X25519' }, false, []);
  const dh = new Uint8Array(await crypto.subtle.deriveBits({ name: 'X25519', public: pkR } as unknown as Parameters<typeof crypto.subtle.deriveBits>[0], pair.privateKey, 8 * x25519KeyBytes));
  const enc = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  const eaePrk = await labeledExtract(kemSuiteId, new Uint8Array(0), 'eae_prk', dh);
  const sharedSecret = await labeledExpand(kemSuiteId, eaePrk, 'shared_secret', concat(enc, recipient), hashBytes);
  dh.fill(0);
  return { sharedSecret, enc };
}

async function setupBaseSender(recipient: Uint8Array, info: Uint8Array, ephemeral: Deterministic['ephemeral'] | undefined): Promise<SenderContext> {
  const { sharedSecret, enc } = await encap(recipient, ephemeral);
  const none = new Uint8Array(0);
  const pskIdHash = await labeledExtract(hpkeSuiteId, none, 'psk_id_hash', none);
  const infoHash = await labeledExtract(hpkeSuiteId, none, 'info_hash', info);
  const context = concat(Uint8Array.of(0x00), pskIdHash, infoHash);
  const secret = await labeledExtract(hpkeSuiteId, sharedSecret, 'secret', none);
  const [key, baseNonce, exporterSecret] = await Promise.all([
    labeledExpand(hpkeSuiteId, secret, 'key', context, aeadKeyBytes),
    labeledExpand(hpkeSuiteId, secret, 'base_nonce', context, nonceBytes),
    labeledExpand(hpkeSuiteId, secret, 'exp', context, hashBytes),
  ]);
  return { enc, key, baseNonce, exporterSecret };
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
  const pinField = concat(Uint8Array.from({ length: 8 }, (_, i) => parseInt(nibbles.slice(2 * i, 2 * i + 2), 16)), pinFill);
  const panNibbles = `${pan.length - 12}${pan}`.padEnd(32, '0');
  const panField = Uint8Array.from({ length: blockBytes }, (_, i) => parseInt(panNibbles.slice(2 * i, 2 * i + 2), 16));
  const key = await crypto.subtle.importKey('raw', new Uint8Array(pinKey), { name: 'AES-CBC' }, false, ['encrypt']);
  const first = await ecbBlock(key, pinField);
  pinField.fill(0);
  return ecbBlock(key, first.map((b, i) => b ^ (panField[i] ?? 0)));
}

// ------------------------------------------------------------------------- the envelope

function checkInput(bankKey: BankKeyInput, card: CardInput, payment: CardPayment): void {
  if (bankKey.suite !== envelopeSuite) throw new CardInputError('the bank key is for a suite this terminal cannot seal for');
  if (bankKey.publicKey.length !== x25519KeyBytes) throw new CardInputError('the bank key is malformed');
  if (!new RegExp(`^[0-9]{${panDigitsMin},${panDigitsMax}}$`).test(card.pan)) throw new CardInputError(`the card number must be ${panDigitsMin} to ${panDigitsMax} digits`);
  if (!/^[0-9]{2}(0[1-9]|1[0-2])$/.test(card.expiry)) throw new CardInputError('the expiry must be a month and a year');
  if (!new RegExp(`^[0-9]{${pinDigitsMin},${pinDigitsMax}}$`).test(card.pin)) throw new CardInputError(`the PIN must be ${pinDigitsMin} to ${pinDigitsMax} digits`);
  if (payment.amount <= 0n || [payment.id, payment.merchantId, payment.currency].some((v) => v === '' || v.includes('\n'))) throw new CardInputError('the payment is malformed');
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
  const context = await setupBaseSender(bankKey.publicKey, text(envelopeInfo), deterministic?.ephemeral);
  const pinKey = await labeledExpand(hpkeSuiteId, context.exporterSecret, 'sec', text(pinKeyExporterContext), pinKeyBytes);
  const block = await pinBlock(pinKey, card.pin, card.pan, deterministic?.pinFill ?? crypto.getRandomValues(new Uint8Array(pinFillBytes)));
  pinKey.fill(0);
  const plaintext = text(JSON.stringify({ v: 1, pan: card.pan, expiry: card.expiry, pinBlock: hex(block) }));
  const aead = await crypto.subtle.importKey('raw', context.key, { name: 'AES-GCM' }, false, ['encrypt']);
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: context.baseNonce, additionalData: associatedData(payment), tagLength: 128 }, aead, plaintext));
  plaintext.fill(0);
  context.key.fill(0);
  return { suite: envelopeSuite, keyId: bankKey.keyId, ephemeralPublicKey: context.enc, nonce: context.baseNonce, ciphertext };
}
