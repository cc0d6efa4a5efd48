import { type Algorithm, hash, verify } from '@node-rs/argon2';

/**
 * argon2id hashes of short PINs and passwords (M1a verification code, M2/M3 passwords), as PHC
 * strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Parameters are OWASP's argon2id
 * minimums; the salt is 16 random bytes per hash, drawn by the library.
 */

export const argon2MemoryKiB = 19_456;
export const argon2Iterations = 2;
export const argon2Parallelism = 1;
export const argon2HashBytes = 32;
export const pinDigitsMin = 4;
export const pinDigitsMax = 12;
/** Longest secret we hash: bounds the work an attacker can make us do per attempt. */
export const secretCharsMax = 128;

/** `Algorithm.Argon2id` is an ambient const enum the per-file transpiler cannot inline. */
const argon2id = 2 as Algorithm;
const phcPrefix = '$argon2id$';
const pinPattern = new RegExp(`^[0-9]{${pinDigitsMin},${pinDigitsMax}}$`);

export function pinFormatOk(pin: string): boolean {
  return pinPattern.test(pin);
}

export async function hashSecret(secret: string): Promise<string> {
  if (secret.length === 0 || secret.length > secretCharsMax) {
    throw new RangeError(`secret must be 1..${secretCharsMax} characters`);
  }
  return hash(secret, {
    algorithm: argon2id,
    memoryCost: argon2MemoryKiB,
    timeCost: argon2Iterations,
    parallelism: argon2Parallelism,
    outputLen: argon2HashBytes,
  });
}

/**
 * Verifies `candidate` against a stored argon2id PHC string with the library's constant-time
 * comparison. A wrong candidate is `false`; a stored value that is not argon2id throws (a data
 * error, never a silent downgrade to a weaker algorithm).
 */
export async function verifySecret(phc: string, candidate: string): Promise<boolean> {
  if (!phc.startsWith(phcPrefix)) throw new RangeError('stored hash is not an argon2id PHC string');
  if (candidate.length === 0 || candidate.length > secretCharsMax) return false;
  return verify(phc, candidate);
}
