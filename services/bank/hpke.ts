import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, timingSafeEqual } from 'node:crypto';
import { Aes128Gcm, Aes256Gcm, CipherSuite, type EncryptionContext, HkdfSha256, HpkeError } from '@hpke/core';
import { DhkemX25519HkdfSha256, X25519 } from '@hpke/dhkem-x25519';
import { assert } from '../../ledger/assert.js';

/**
 * RFC 9180 (HPKE) base mode, single shot, from `@hpke/core` with `@hpke/dhkem-x25519`'s KEM
 * (the same two libraries the browser's sealer uses, services/web/client/card-envelope.mts):
 * KEM DHKEM(X25519, HKDF-SHA256) (0x0020), KDF HKDF-SHA256 (0x0001), AEAD AES-128-GCM (0x0001)
 * or AES-256-GCM (0x0002). Keys are raw 32-byte X25519 strings as RFC 7748 writes them (made and
 * read with node:crypto, for the bank's key file); a context seals or opens one message, at
 * sequence number 0, so its AEAD nonce is `base_nonce`. Checked against RFC 9180 A.1.1
 * (test/bank/hpke.test.ts) and ENVELOPE.md's worked example.
 */

export type HpkeAead = 'AES-128-GCM' | 'AES-256-GCM';

/** X25519 key, shared secret and `enc` length (Nsk = Npk = Nenc = Nsecret = 32). */
export const x25519KeyBytes = 32;
/** AES-GCM nonce (Nn) and tag (Nt) lengths. */
export const aeadNonceBytes = 12;
export const aeadTagBytes = 16;

const suites: Readonly<Record<HpkeAead, CipherSuite>> = {
  'AES-128-GCM': new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() }),
  'AES-256-GCM': new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() }),
};
const x25519 = new X25519(new HkdfSha256());

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

function privateKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== x25519KeyBytes) throw new RangeError(`X25519 private key must be ${x25519KeyBytes} bytes, got ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, raw]), format: 'der', type: 'pkcs8' });
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

/** RFC 9180 §7.1.3 DeriveKeyPair (the KEM's; for known-answer tests). */
export async function deriveKeyPair(ikm: Uint8Array): Promise<X25519KeyPair> {
  const kem = suites['AES-128-GCM'].kem;
  const pair = await kem.deriveKeyPair(ikm);
  return {
    privateKey: new Uint8Array(await kem.serializePrivateKey(pair.privateKey)),
    publicKey: new Uint8Array(await kem.serializePublicKey(pair.publicKey)),
  };
}

// ---------------------------------------------------------------------- one-message contexts

/** A base-mode context for one message (sequence number 0). */
export interface HpkeContext {
  readonly aead: HpkeAead;
  /** The encapsulated key: the sender's ephemeral public key. */
  readonly enc: Uint8Array;
  /** The AEAD nonce of sequence number 0, which the card envelope carries. */
  readonly baseNonce: Uint8Array;
  /** ContextS.Seal at sequence number 0: ciphertext || 16-byte tag. Once per context. */
  seal(aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array>;
  /** ContextR.Open at sequence number 0; undefined when the ciphertext or the associated data fails authentication. */
  open(aad: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array | undefined>;
  /** Context.Export(exporter_context, L). */
  export(exporterContext: Uint8Array, length: number): Promise<Uint8Array>;
}

/**
 * `base_nonce` of a library context. `@hpke/core` keeps it in the context's key info (`_ctx`,
 * a TypeScript-protected field) and has no getter; ENVELOPE.md puts it on the wire, so it is
 * read there. The RFC vectors and the worked example check it on every test run.
 */
export function baseNonceOf(context: EncryptionContext): Uint8Array {
  const nonce = (context as unknown as { _ctx?: { baseNonce?: unknown } })._ctx?.baseNonce;
  assert(nonce instanceof Uint8Array && nonce.length === aeadNonceBytes, '@hpke/core keeps base_nonce in its context');
  return nonce.slice();
}

function oneMessage(aead: HpkeAead, context: EncryptionContext, enc: Uint8Array): HpkeContext {
  return {
    aead,
    enc,
    baseNonce: baseNonceOf(context),
    seal: async (aad, plaintext) => new Uint8Array(await context.seal(plaintext, aad)),
    open: async (aad, ciphertext) => {
      try {
        return new Uint8Array(await context.open(ciphertext, aad));
      } catch (error) {
        if (error instanceof HpkeError) return undefined;
        throw error;
      }
    },
    export: async (exporterContext, length) => new Uint8Array(await context.export(exporterContext, length)),
  };
}

/**
 * SetupBaseS. `ephemeralPrivateKey` is for known-answer tests only (RFC vectors, the worked
 * example); left out, a fresh ephemeral key is drawn for every context, as it must be.
 */
export async function setupBaseSender(opts: {
  aead: HpkeAead;
  recipientPublicKey: Uint8Array;
  info: Uint8Array;
  ephemeralPrivateKey?: Uint8Array;
}): Promise<HpkeContext> {
  const suite = suites[opts.aead];
  const ekm = opts.ephemeralPrivateKey === undefined ? undefined : await ephemeralPair(opts.ephemeralPrivateKey);
  const context = await suite.createSenderContext({
    recipientPublicKey: await suite.kem.deserializePublicKey(opts.recipientPublicKey),
    info: opts.info,
    ...(ekm === undefined ? {} : { ekm }),
  });
  return oneMessage(opts.aead, context, new Uint8Array(context.enc));
}

/** A library key pair from a raw private key (the KEM reads a pair as the ephemeral key). */
async function ephemeralPair(privateKey: Uint8Array): ReturnType<X25519['generateKeyPair']> {
  const sk = await x25519.deserializePrivateKey(privateKey);
  return { privateKey: sk, publicKey: await x25519.derivePublicKey(sk) };
}

/** SetupBaseR; undefined when `enc` is not a usable X25519 public key (wrong length, small order). */
export async function setupBaseRecipient(opts: {
  aead: HpkeAead;
  recipientPrivateKey: Uint8Array;
  enc: Uint8Array;
  info: Uint8Array;
}): Promise<HpkeContext | undefined> {
  if (opts.enc.length !== x25519KeyBytes) return undefined;
  const suite = suites[opts.aead];
  const recipientKey = await suite.kem.deserializePrivateKey(opts.recipientPrivateKey);
  try {
    const context = await suite.createRecipientContext({ recipientKey, enc: opts.enc, info: opts.info });
    return oneMessage(opts.aead, context, opts.enc);
  } catch (error) {
    if (error instanceof HpkeError) return undefined;
    throw error;
  }
}

/** SealBase: a fresh context, one message. */
export async function sealBase(opts: {
  aead: HpkeAead;
  recipientPublicKey: Uint8Array;
  info: Uint8Array;
  aad: Uint8Array;
  plaintext: Uint8Array;
}): Promise<{ enc: Uint8Array; ciphertext: Uint8Array }> {
  const context = await setupBaseSender(opts);
  return { enc: context.enc, ciphertext: await context.seal(opts.aad, opts.plaintext) };
}

/** OpenBase; undefined when authentication fails or `enc` is unusable. */
export async function openBase(opts: {
  aead: HpkeAead;
  recipientPrivateKey: Uint8Array;
  enc: Uint8Array;
  info: Uint8Array;
  aad: Uint8Array;
  ciphertext: Uint8Array;
}): Promise<Uint8Array | undefined> {
  const context = await setupBaseRecipient(opts);
  return context === undefined ? undefined : context.open(opts.aad, opts.ciphertext);
}

/** Constant-time equality of two byte strings of public length. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
