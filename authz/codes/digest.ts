import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Keyed digests for the challenge store, which must never hold a code: the store keeps
 * HMAC-SHA256(key, `${challengeId}\n${response}`) and compares digests whole.
 */

export const digestKeyBytesMin = 32;
export const digestHexChars = 64;

const hexPattern = /^[0-9a-f]*$/;

export function responseDigest(key: Buffer, challengeId: string, response: string): string {
  if (key.length < digestKeyBytesMin) throw new RangeError(`digest key shorter than ${digestKeyBytesMin} bytes`);
  // The newline separates the fields; an id containing one would make the input ambiguous.
  if (challengeId.includes('\n')) throw new RangeError('challengeId must not contain a newline');
  return createHmac('sha256', key).update(`${challengeId}\n${response}`, 'utf8').digest('hex');
}

/**
 * Compares two lower-case hex strings in constant time (for equal lengths). Fails closed: empty,
 * odd-length, upper-case or non-hex input is unequal.
 */
export function constantTimeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length || a.length === 0 || a.length % 2 !== 0) return false;
  if (!hexPattern.test(a) || !hexPattern.test(b)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}
