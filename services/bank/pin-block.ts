import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * ISO 9564-1 PIN block format 4 (AES, 16 bytes), bound to the PAN:
 *
 *   PIN field  (16 bytes = 32 nibbles): 4, PIN length N (4..C), N PIN digits, fill A up to
 *              nibble 16, then 16 random nibbles (8 random bytes).
 *   PAN field  (16 bytes): PAN length − 12 (0..7), the PAN digits left-justified, 0 padding.
 *   block      C = AES(K, AES(K, PIN field) XOR PAN field)
 *
 * Deciphering reverses it and checks the control nibble, the length and the A fill: a key
 * or PAN that does not belong to the block gives `undefined` (with overwhelming probability),
 * never a wrong PIN.
 */

export const pinBlockBytes = 16;
export const pinDigitsMin = 4;
export const pinDigitsMax = 12;
/** PANs this module binds (ISO/IEC 7812 card numbers); the format's short-PAN rule is not used. */
export const panDigitsMin = 12;
export const panDigitsMax = 19;
/** Random fill of the PIN field, bytes (the second half of the field). */
export const pinFillBytes = 8;
/** AES-128, -192 or -256. */
const aesKeyBytes = new Set([16, 24, 32]);

const controlFormat4 = 0x4;
const fillNibble = 0xa;
const pinPattern = new RegExp(`^[0-9]{${pinDigitsMin},${pinDigitsMax}}$`);
const panPattern = new RegExp(`^[0-9]{${panDigitsMin},${panDigitsMax}}$`);

export function pinFormatOk(pin: string): boolean {
  return pinPattern.test(pin);
}

export function panFormatOk(pan: string): boolean {
  return panPattern.test(pan);
}

/** The plain-text PIN field; `fill` is the 8 random bytes (drawn here unless given, for known answers). */
export function pinField(pin: string, fill: Uint8Array = randomBytes(pinFillBytes)): Uint8Array {
  if (!pinFormatOk(pin)) throw new RangeError(`PIN must be ${pinDigitsMin}..${pinDigitsMax} digits`);
  if (fill.length !== pinFillBytes) throw new RangeError(`PIN fill must be ${pinFillBytes} bytes`);
  const nibbles = [controlFormat4, pin.length, ...[...pin].map(Number)];
  while (nibbles.length < 2 * pinFillBytes) nibbles.push(fillNibble);
  const field = new Uint8Array(pinBlockBytes);
  field.set(fromNibbles(nibbles), 0);
  field.set(fill, pinFillBytes);
  return field;
}

/** The plain-text PAN field. */
export function panField(pan: string): Uint8Array {
  if (!panFormatOk(pan)) throw new RangeError(`PAN must be ${panDigitsMin}..${panDigitsMax} digits`);
  const nibbles = [pan.length - panDigitsMin, ...[...pan].map(Number)];
  while (nibbles.length < 2 * pinBlockBytes) nibbles.push(0);
  return fromNibbles(nibbles);
}

/** C = AES(K, AES(K, PIN field) XOR PAN field). */
export function encipherPinBlock(key: Uint8Array, pin: string, pan: string, fill?: Uint8Array): Uint8Array {
  const a = aesBlock(key, pinField(pin, fill), 'encrypt');
  return aesBlock(key, xor(a, panField(pan)), 'encrypt');
}

/** The PIN in a format 4 block, or undefined when the block does not decode (wrong key, wrong PAN, not format 4). */
export function decipherPinBlock(key: Uint8Array, block: Uint8Array, pan: string): string | undefined {
  if (block.length !== pinBlockBytes || !panFormatOk(pan)) return undefined;
  const b = aesBlock(key, block, 'decrypt');
  return pinOfField(aesBlock(key, xor(b, panField(pan)), 'decrypt'));
}

/** Decodes a plain-text PIN field: control 4, length 4..12, digits, A fill (the random half is not checked). */
export function pinOfField(field: Uint8Array): string | undefined {
  const nibbles = toNibbles(field.subarray(0, pinFillBytes));
  const length = nibbles[1]!;
  if (nibbles[0] !== controlFormat4 || length < pinDigitsMin || length > pinDigitsMax) return undefined;
  const digits = nibbles.slice(2, 2 + length);
  if (digits.some((d) => d > 9)) return undefined;
  if (nibbles.slice(2 + length).some((n) => n !== fillNibble)) return undefined;
  return digits.join('');
}

function aesBlock(key: Uint8Array, block: Uint8Array, direction: 'encrypt' | 'decrypt'): Uint8Array {
  if (!aesKeyBytes.has(key.length)) throw new RangeError('PIN block key must be an AES-128, -192 or -256 key');
  const algorithm = `aes-${key.length * 8}-ecb`;
  const cipher = direction === 'encrypt' ? createCipheriv(algorithm, key, null) : createDecipheriv(algorithm, key, null);
  cipher.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([cipher.update(block), cipher.final()]));
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  return a.map((byte, i) => byte ^ b[i]!);
}

function fromNibbles(nibbles: number[]): Uint8Array {
  const out = new Uint8Array(nibbles.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = (nibbles[2 * i]! << 4) | nibbles[2 * i + 1]!;
  return out;
}

function toNibbles(bytes: Uint8Array): number[] {
  return [...bytes].flatMap((b) => [b >> 4, b & 0x0f]);
}
