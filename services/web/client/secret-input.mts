/**
 * Reads what the payer pastes at enrollment: the verification secret as RFC 4648 base32 (as
 * EnrollPayer's `verification_secret_base32`) or the otpauth-style URI
 * (`otpauth://ocra/countersign:<account>?secret=...&ocraSuite=...`, see authz/codes/secret.ts).
 */
import { secondCodeSuite } from './ocra.mjs';

/** RFC 4226 recommends 160 bits; countersign refuses less (authz/codes/secret.ts). */
export const secretBytesMin = 20;
/** Longer input is refused unread (a 32-byte secret is 52 base32 characters; a URI ~200). */
export const secretInputCharsMax = 1024;

export interface SecretInput {
  readonly secret: Uint8Array<ArrayBuffer>;
  readonly suite: string;
}

export class SecretInputError extends Error {
  override readonly name = 'SecretInputError';
}

const base32Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Decodes base32, either case, spaces and '=' padding ignored; throws `SecretInputError`. */
export function base32Decode(text: string): Uint8Array<ArrayBuffer> {
  const chars = text.replace(/\s+/g, '').replace(/=+$/, '').toUpperCase();
  if (!/^[A-Z2-7]+$/.test(chars) || [1, 3, 6].includes(chars.length % 8)) throw new SecretInputError('the secret is not base32');
  const out = new Uint8Array(Math.floor((chars.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (const char of chars) {
    buffer = ((buffer << 5) | base32Alphabet.indexOf(char)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[n++] = (buffer >> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/** The secret and its suite from base32 or an otpauth URI. */
export function parseSecretInput(text: string): SecretInput {
  const trimmed = text.trim();
  if (trimmed.length === 0) throw new SecretInputError('paste the verification secret or its otpauth:// link');
  if (trimmed.length > secretInputCharsMax) throw new SecretInputError('the verification secret is too long');
  const parsed = /^otpauth:/i.test(trimmed) ? fromUri(trimmed) : { secret: base32Decode(trimmed), suite: secondCodeSuite };
  if (parsed.secret.length < secretBytesMin) throw new SecretInputError(`the verification secret must be at least ${secretBytesMin * 8} bits`);
  return parsed;
}

function fromUri(text: string): SecretInput {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SecretInputError('the otpauth link is malformed');
  }
  if (url.host.toLowerCase() !== 'ocra') throw new SecretInputError('the link is not an OCRA (otpauth://ocra/...) enrollment');
  const secret = url.searchParams.get('secret');
  if (secret === null) throw new SecretInputError('the otpauth link has no secret');
  return { secret: base32Decode(secret), suite: url.searchParams.get('ocraSuite') ?? url.searchParams.get('ocrasuite') ?? secondCodeSuite };
}
