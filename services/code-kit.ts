import { hash, hkdfSync, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { deriveSecondCode, secondCodeSuite } from '../authz/codes/challenge.js';
import { responseDigest } from '../authz/codes/digest.js';
import { newFirstCode } from '../authz/codes/first-code.js';
import { hashSecret, verifySecret } from '../authz/codes/pin-hash.js';
import { base32Encode, newVerificationSecret, otpauthUri } from '../authz/codes/secret.js';
import { open, seal } from '../authz/codes/secret-box.js';
import type { EnrollmentKit } from '../authz/enrollment.js';
import type { CodeKit } from '../authz/payments.js';

/** Separate keys for separate purposes, all derived from the one master key (HKDF-SHA256). */
function subkey(masterKey: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `countersign ${purpose}`, 32));
}

/**
 * SHA-256 hex of a bearer credential: what the directory stores instead of the credential. Every
 * RPC computes it once (one-shot `crypto.hash`: a third of a Hash object's cost).
 */
export function credentialHash(credential: string): string {
  return hash('sha256', credential, 'hex');
}

/** Opened payer secrets kept per process, at most (about 150 bytes each). */
export const openSecretsMax = 10_000;
/** How long an opened payer secret is kept after it was opened, milliseconds. */
export const openSecretTtlMs = 600_000;

/**
 * The code and secret operations of the domain, on authz/codes with keys from the master key.
 *
 * Opened payer secrets are cached (`openSecretsMax` payers, `openSecretTtlMs` each): an AES-GCM
 * open costs about 5 µs, on every challenged create. An entry is used only for the very sealed
 * text it was opened from, so a rotated secret (a new sealed text, from any process) is never
 * answered from the cache; this process's own rotation (`sealSecret`) drops the payer's entry
 * at once. The plaintext then lives in this process's memory for up to the TTL, beside the
 * master key it was sealed under.
 */
export function codeKits(masterKey: Buffer): { codes: CodeKit; enrollment: EnrollmentKit } {
  const sealKey = subkey(masterKey, 'secret sealing');
  const digestKey = subkey(masterKey, 'challenge digests');
  // The secret prefix of the fingerprints' one SHA-256 (as hex text: the fields follow as text).
  const fingerprintKey = subkey(masterKey, 'request fingerprints').toString('hex');
  const opened = new LRUCache<string, { sealed: string; secret: Buffer }>({ max: openSecretsMax, ttl: openSecretTtlMs, ttlAutopurge: false });
  const openPayerSecret = (payer: { id: string; sealedSecret: string }): Buffer => {
    const hit = opened.get(payer.id);
    if (hit !== undefined && hit.sealed === payer.sealedSecret) return hit.secret;
    const secret = open(sealKey, payer.sealedSecret, `payer-secret:${payer.id}`);
    opened.set(payer.id, { sealed: payer.sealedSecret, secret });
    return secret;
  };
  const codes: CodeKit = {
    newFirstCode,
    deriveSecondCode: (secret, f) =>
      deriveSecondCode(secret, { firstCode: f.firstCode, amount: f.amount, currency: f.currency, payeeAccountId: f.payeeAccountId }),
    digest: (challengeId, response) => responseDigest(digestKey, challengeId, response),
    fingerprint: (fields) => hash('sha256', fingerprintKey + fields, 'hex'),
    openPayerSecret,
    sealFirstCode: (paymentId, code) => seal(sealKey, Buffer.from(code), `first-code:${paymentId}`),
    openFirstCode: (paymentId, sealed) => open(sealKey, sealed, `first-code:${paymentId}`).toString(),
    verifyPin: verifySecret,
  };
  const enrollment: EnrollmentKit = {
    ocraSuite: secondCodeSuite,
    newSecret: newVerificationSecret,
    secretBase32: base32Encode,
    secretUri: (account, secret) => otpauthUri({ issuer: 'countersign', account, secret, suite: secondCodeSuite }),
    sealSecret: (payerId, secret) => {
      opened.delete(payerId);
      return seal(sealKey, secret, `payer-secret:${payerId}`);
    },
    hashPin: hashSecret,
    digest: (context, value) => responseDigest(digestKey, context, value),
    newCredential: (prefix) => {
      const credential = prefix + randomBytes(24).toString('base64url');
      return { credential, hash: credentialHash(credential) };
    },
  };
  return { codes, enrollment };
}
