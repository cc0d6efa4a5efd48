import { hash, hkdfSync, randomBytes } from 'node:crypto';
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

/** The code and secret operations of the domain, on authz/codes with keys from the master key. */
export function codeKits(masterKey: Buffer): { codes: CodeKit; enrollment: EnrollmentKit } {
  const sealKey = subkey(masterKey, 'secret sealing');
  const digestKey = subkey(masterKey, 'challenge digests');
  const codes: CodeKit = {
    newFirstCode,
    deriveSecondCode: (secret, f) =>
      deriveSecondCode(secret, { firstCode: f.firstCode, amount: f.amount, currency: f.currency, payeeAccountId: f.payeeAccountId }),
    digest: (challengeId, response) => responseDigest(digestKey, challengeId, response),
    openPayerSecret: (payer) => open(sealKey, payer.sealedSecret, `payer-secret:${payer.id}`),
    sealFirstCode: (paymentId, code) => seal(sealKey, Buffer.from(code), `first-code:${paymentId}`),
    openFirstCode: (paymentId, sealed) => open(sealKey, sealed, `first-code:${paymentId}`).toString(),
    verifyPin: verifySecret,
  };
  const enrollment: EnrollmentKit = {
    ocraSuite: secondCodeSuite,
    newSecret: newVerificationSecret,
    secretBase32: base32Encode,
    secretUri: (account, secret) => otpauthUri({ issuer: 'countersign', account, secret, suite: secondCodeSuite }),
    sealSecret: (payerId, secret) => seal(sealKey, secret, `payer-secret:${payerId}`),
    hashPin: hashSecret,
    digest: (context, value) => responseDigest(digestKey, context, value),
    newCredential: (prefix) => {
      const credential = prefix + randomBytes(24).toString('base64url');
      return { credential, hash: credentialHash(credential) };
    },
  };
  return { codes, enrollment };
}
