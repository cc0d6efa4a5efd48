import { randomInt } from 'node:crypto';

/** The first transaction code (M1): 8 uniformly random decimal digits, leading zeros allowed. */

export const firstCodeDigits = 8;
/** Default lifetime of a first code (and of the challenge it belongs to). */
export const codeTtlMsDefault = 300_000;

const firstCodeSpace = 10 ** firstCodeDigits;
const firstCodePattern = new RegExp(`^\\d{${firstCodeDigits}}$`);

/** A new first code from the CSPRNG; `randomInt` is uniform over [0, 10^8) (rejection sampling). */
export function newFirstCode(): string {
  return String(randomInt(0, firstCodeSpace)).padStart(firstCodeDigits, '0');
}

/** True when `code` has the shape of a first code (exactly 8 ASCII digits). */
export function firstCodeFormatOk(code: string): boolean {
  return firstCodePattern.test(code);
}
