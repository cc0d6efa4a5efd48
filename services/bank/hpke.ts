import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';

/**
 * RFC 9180 (HPKE) base mode, single shot, on node:crypto: KEM DHKEM(X25519, HKDF-SHA256)
 * (0x0020), KDF HKDF-SHA256 (0x0001), AEAD AES-128-GCM (0x0001) or AES-256-GCM (0x0002).
 * Keys are raw 32-byte X25519 strings as RFC 7748 writes them; a context is used for sequence
 * number 0 only (one message), so its nonce is `base_nonce`. Checked against RFC 9180 A.1.1.
 */

export type HpkeAead = 'AES-128-GCM' | 'AES-256-GCM';

/** X25519 key, shared secret and `enc` length (Nsk = Npk = Nenc = Nsecret = 32). */
export const x25519KeyBytes = 32;
/** AES-GCM nonce (Nn) and tag (Nt) lengths. */
export const aeadNonceBytes = 12;
export const aeadTagBytes = 16;
/** HKDF-SHA256 output (Nh). */
export const hashBytes = 32;
/** Largest HKDF-Expand output (255 * Nh). */
export const expandBytesMax = 255 * hashBytes;

const kemId = 0x0020;
const kdfId = 0x0001;
const aeadIds: Readonly<Record<HpkeAead, { id: number; keyBytes: number; cipher: 'aes-128-gcm' | 'aes-256-gcm' }>> = {
  'AES-128-GCM': { id: 0x0001, keyBytes: 16, cipher: 'aes-128-gcm' },
  'AES-256-GCM': { id: 0x0002, keyBytes: 32, cipher: 'aes-256-gcm' },
};
const modeBase = 0x00;

/** "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM": the suite's name as the API writes it. */
export function suiteName(aead: HpkeAead): string {
  return `DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ${aead}`;
}

// ------------------------------------------------------------------------ X25519 raw keys

const pkcs8Prefix = Buffer.from('302e020100300506032b656e04220420', 'hex');
const spkiPrefix = Buffer.from('302a300506032b656e032100', 'hex');

export interface X25519KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export function privateKeyObject(raw: Uint8Array): KeyObject {
  assertLength(raw, x25519KeyBytes, 'X25519 private key');
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, raw]), format: 'der', type: 'pkcs8' });
}

export function publicKeyObject(raw: Uint8Array): KeyObject {
  assertLength(raw, x25519KeyBytes, 'X25519 public key');
  return createPublicKey({ key: Buffer.concat([spkiPrefix, raw]), format: 'der', type: 'spki' });
}

/** The raw 32 bytes of an X25519 private KeyObject. */
export function rawPrivateKey(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ format: 'der', type: 'pkcs8' }).subarray(pkcs8Prefix.length));
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spkiPrefix.length));
}

export function generateX25519KeyPair(): X25519KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const raw = rawPrivateKey(privateKey);
  return { privateKey: raw, publicKey: publicKeyOf(raw) };
}

/** RFC 9180 §7.1.3 DeriveKeyPair for X25519: sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", 32). */
export function deriveKeyPair(ikm: Uint8Array): X25519KeyPair {
  const prk = labeledExtract(kemSuiteId, new Uint8Array(), 'dkp_prk', ikm);
  const privateKey = labeledExpand(kemSuiteId, prk, 'sk', new Uint8Array(), x25519KeyBytes);
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = new Uint8Array(diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(publicKey) }));
  } catch (error) {
    throw new HpkeError('X25519 refused the public key', { cause: error });
  }
  // RFC 9180 §7.1.4: an all-zero X25519 output (a small-order public key) must be rejected.
  if (shared.every((b) => b === 0)) throw new HpkeError('X25519 produced the all-zero value');
  return shared;
}

// ------------------------------------------------------------------------------ the KDF

const kemSuiteId = concat(ascii('KEM'), i2osp(kemId, 2));

function hpkeSuiteId(aead: HpkeAead): Uint8Array {
  return concat(ascii('HPKE'), i2osp(kemId, 2), i2osp(kdfId, 2), i2osp(aeadIds[aead].id, 2));
}

function hmac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const mac = createHmac('sha256', key);
  for (const d of data) mac.update(d);
  return new Uint8Array(mac.digest());
}

/** HKDF-Extract (RFC 5869); an empty salt equals Nh zero bytes under HMAC. */
function extract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmac(salt, ikm);
}

/** HKDF-Expand (RFC 5869). */
function expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (length > expandBytesMax) throw new RangeError(`HKDF-Expand length must be at most ${expandBytesMax}`);
  const out = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array();
  for (let i = 1, filled = 0; filled < length; i++) {
    previous = hmac(prk, previous, info, Uint8Array.of(i));
    out.set(previous.subarray(0, length - filled), filled);
    filled += previous.length;
  }
  return out;
}

const versionLabel = ascii('HPKE-v1');

function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(salt, concat(versionLabel, suiteId, ascii(label), ikm));
}

function labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  return expand(prk, concat(i2osp(length, 2), versionLabel, suiteId, ascii(label), info), length);
}

// ---------------------------------------------------------------------- KEM and schedule

function extractAndExpand(dhValue: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const prk = labeledExtract(kemSuiteId, new Uint8Array(), 'eae_prk', dhValue);
  return labeledExpand(kemSuiteId, prk, 'shared_secret', kemContext, x25519KeyBytes);
}

/** The state of a base-mode context, exposed so tests can compare it with the RFC. */
export interface HpkeContext {
  readonly aead: HpkeAead;
  /** The encapsulated key: the sender's ephemeral public key. */
  readonly enc: Uint8Array;
  readonly sharedSecret: Uint8Array;
  readonly key: Uint8Array;
  /** The nonce of sequence number 0 (the only message of a single-shot context). */
  readonly baseNonce: Uint8Array;
  readonly exporterSecret: Uint8Array;
}

function keySchedule(aead: HpkeAead, enc: Uint8Array, sharedSecret: Uint8Array, info: Uint8Array): HpkeContext {
  const suiteId = hpkeSuiteId(aead);
  const empty = new Uint8Array();
  const pskIdHash = labeledExtract(suiteId, empty, 'psk_id_hash', empty);
  const infoHash = labeledExtract(suiteId, empty, 'info_hash', info);
  const context = concat(Uint8Array.of(modeBase), pskIdHash, infoHash);
  const secret = labeledExtract(suiteId, sharedSecret, 'secret', empty);
  return {
    aead,
    enc,
    sharedSecret,
    key: labeledExpand(suiteId, secret, 'key', context, aeadIds[aead].keyBytes),
    baseNonce: labeledExpand(suiteId, secret, 'base_nonce', context, aeadNonceBytes),
    exporterSecret: labeledExpand(suiteId, secret, 'exp', context, hashBytes),
  };
}

/**
 * SetupBaseS. `ephemeralPrivateKey` is for known-answer tests only (RFC vectors, the worked
 * example); left out, a fresh ephemeral key is drawn for every context, as it must be.
 */
export function setupBaseSender(opts: { aead: HpkeAead; recipientPublicKey: Uint8Array; info: Uint8Array; ephemeralPrivateKey?: Uint8Array }): HpkeContext {
  const ephemeral = opts.ephemeralPrivateKey === undefined ? generateX25519KeyPair() : { privateKey: opts.ephemeralPrivateKey, publicKey: publicKeyOf(opts.ephemeralPrivateKey) };
  const enc = ephemeral.publicKey;
  const sharedSecret = extractAndExpand(dh(ephemeral.privateKey, opts.recipientPublicKey), concat(enc, opts.recipientPublicKey));
  return keySchedule(opts.aead, enc, sharedSecret, opts.info);
}

/** SetupBaseR. Throws HpkeError when `enc` is not a usable X25519 public key. */
export function setupBaseRecipient(opts: { aead: HpkeAead; recipientPrivateKey: Uint8Array; enc: Uint8Array; info: Uint8Array }): HpkeContext {
  if (opts.enc.length !== x25519KeyBytes) throw new HpkeError(`enc must be ${x25519KeyBytes} bytes`);
  const recipientPublicKey = publicKeyOf(opts.recipientPrivateKey);
  const sharedSecret = extractAndExpand(dh(opts.recipientPrivateKey, opts.enc), concat(opts.enc, recipientPublicKey));
  return keySchedule(opts.aead, opts.enc, sharedSecret, opts.info);
}

// ------------------------------------------------------------------- seal, open, export

/** ContextS.Seal at sequence number 0: ciphertext || 16-byte tag. */
export function sealAtZero(context: HpkeContext, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const cipher = createCipheriv(aeadIds[context.aead].cipher, context.key, context.baseNonce, { authTagLength: aeadTagBytes });
  cipher.setAAD(aad);
  return new Uint8Array(Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
}

/** ContextR.Open at sequence number 0; undefined when the ciphertext or the associated data fails authentication. */
export function openAtZero(context: HpkeContext, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array | undefined {
  if (ciphertext.length < aeadTagBytes) return undefined;
  const body = ciphertext.subarray(0, ciphertext.length - aeadTagBytes);
  const decipher = createDecipheriv(aeadIds[context.aead].cipher, context.key, context.baseNonce, { authTagLength: aeadTagBytes });
  decipher.setAAD(aad);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - aeadTagBytes));
  try {
    return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
  } catch {
    return undefined;
  }
}

/** Context.Export: LabeledExpand(exporter_secret, "sec", exporter_context, L). */
export function exportSecret(context: HpkeContext, exporterContext: Uint8Array, length: number): Uint8Array {
  return labeledExpand(hpkeSuiteId(context.aead), context.exporterSecret, 'sec', exporterContext, length);
}

/** SealBase: a fresh context, one message. */
export function sealBase(opts: { aead: HpkeAead; recipientPublicKey: Uint8Array; info: Uint8Array; aad: Uint8Array; plaintext: Uint8Array }): { enc: Uint8Array; ciphertext: Uint8Array } {
  const context = setupBaseSender(opts);
  return { enc: context.enc, ciphertext: sealAtZero(context, opts.aad, opts.plaintext) };
}

/** OpenBase; undefined when authentication fails or `enc` is unusable. */
export function openBase(opts: { aead: HpkeAead; recipientPrivateKey: Uint8Array; enc: Uint8Array; info: Uint8Array; aad: Uint8Array; ciphertext: Uint8Array }): Uint8Array | undefined {
  let context: HpkeContext;
  try {
    context = setupBaseRecipient(opts);
  } catch (error) {
    if (error instanceof HpkeError) return undefined;
    throw error;
  }
  return openAtZero(context, opts.aad, opts.ciphertext);
}

/** Constant-time equality of two byte strings of public length. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An input HPKE refuses (a bad `enc`): an operating outcome for whoever received it. */
export class HpkeError extends Error {
  override readonly name = 'HpkeError';
}

// --------------------------------------------------------------------------- helpers

function i2osp(value: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1, v = value; i >= 0; i--, v >>>= 8) out[i] = v & 0xff;
  return out;
}

function ascii(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'latin1'));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function assertLength(bytes: Uint8Array, length: number, what: string): void {
  if (bytes.length !== length) throw new RangeError(`${what} must be ${length} bytes, got ${bytes.length}`);
}
