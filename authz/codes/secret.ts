import { randomBytes } from 'node:crypto';

/**
 * The payer's verification secret (the OCRA key of M1 variant b): random bytes shown once at
 * enrollment as RFC 4648 base32, inside an otpauth-style URI.
 */

export const secretBytes = 32;
/** RFC 4226 §4 requires at least 128 bits and recommends 160; we refuse less than 160. */
export const secretBytesMin = 20;

const base32Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const base32BlockChars = 8;
const base32Pattern = /^[A-Z2-7]*=*$/;

export class Base32Error extends Error {
  override readonly name = 'Base32Error';
}

export function newVerificationSecret(): Buffer {
  return randomBytes(secretBytes);
}

/** RFC 4648 §6 base32, upper case, with '=' padding to a multiple of 8 characters. */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    for (; bits >= 5; bits -= 5) out += base32Alphabet[(buffer >> (bits - 5)) & 31];
  }
  if (bits > 0) out += base32Alphabet[(buffer << (5 - bits)) & 31];
  const padChars = (base32BlockChars - (out.length % base32BlockChars)) % base32BlockChars;
  return out + '='.repeat(padChars);
}

/** Decodes RFC 4648 base32 with or without padding, either case; throws `Base32Error`. */
export function base32Decode(text: string): Buffer {
  const upper = text.toUpperCase();
  if (!base32Pattern.test(upper)) throw new Base32Error('not base32');
  const chars = upper.replace(/=+$/, '');
  if ([1, 3, 6].includes(chars.length % base32BlockChars)) throw new Base32Error('impossible base32 length');
  const out: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const char of chars) {
    buffer = ((buffer << 5) | base32Alphabet.indexOf(char)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((buffer >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export interface OtpauthUriInput {
  issuer: 'countersign';
  account: string;
  secret: Buffer;
  suite: string;
}

/**
 * An otpauth-style enrollment URI. The type is `ocra`, not `totp`/`hotp`: the token must compute
 * OCRA responses over the suite in `ocraSuite` (see SECOND_CODE.md), and a TOTP app cannot.
 * The secret is base32 without padding; label, issuer and suite are percent-encoded.
 */
export function otpauthUri(input: OtpauthUriInput): string {
  if (input.secret.length < secretBytesMin) throw new RangeError(`secret shorter than ${secretBytesMin} bytes`);
  const label = `${encodeURIComponent(input.issuer)}:${encodeURIComponent(input.account)}`;
  const secret = base32Encode(input.secret).replace(/=+$/, '');
  const query = `secret=${secret}&issuer=${encodeURIComponent(input.issuer)}&ocraSuite=${encodeURIComponent(input.suite)}`;
  return `otpauth://ocra/${label}?${query}`;
}
