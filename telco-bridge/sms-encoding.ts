import { SmsEncoding } from '../gen/countersign/v1/telco_pb.js';
import { encodeGsm7, fitsGsm7, gsm7CharSeptets } from './gsm7.js';

/**
 * Choosing the air-interface alphabet of an SMS and splitting it into SMPP `short_message`
 * parts (concatenated with a UDH when it does not fit one). Pure functions.
 */

export type SmsAlphabet = 'gsm7' | 'ucs2';

/** SMPP data_coding of each alphabet: 0 = SMSC default (GSM 03.38), 8 = UCS-2. */
export const dataCodingOf = { gsm7: 0, ucs2: 8 } as const satisfies Record<SmsAlphabet, number>;

/** One part fits at most this many septets (GSM-7) or UTF-16 units (UCS-2). */
export const gsm7SingleSeptetsMax = 160;
export const ucs2SingleUnitsMax = 70;
/** With the 6-octet concatenation UDH each part carries at most this many. */
export const gsm7PartSeptetsMax = 153;
export const ucs2PartUnitsMax = 67;
/** A text of at most `smsTextCharsMax` characters never needs more parts than this. */
export const smsPartsMax = 16;
/** esm_class bit: short_message starts with a user data header. */
export const esmClassUdhIndicator = 0x40;

export interface SmsPart {
  /** The short_message octets, UDH included. */
  bytes: Buffer;
  dataCoding: number;
  esmClass: number;
}

export type AlphabetChoice = { ok: true; alphabet: SmsAlphabet } | { ok: false; message: string };

/** The alphabet for `text` under the caller's hint: GSM-7 when it fits (or asked for and fits), else UCS-2. */
export function chooseAlphabet(text: string, hint: SmsEncoding): AlphabetChoice {
  const fits = fitsGsm7(text);
  if (hint === SmsEncoding.GSM7 && !fits)
    return { ok: false, message: 'text has characters outside the GSM 03.38 alphabet; use SMS_ENCODING_UCS2 or UNSPECIFIED' };
  if (hint === SmsEncoding.UCS2) return { ok: true, alphabet: 'ucs2' };
  return { ok: true, alphabet: fits ? 'gsm7' : 'ucs2' };
}

/** Splits `text` into chunks of at most `limit` units, never inside an escape or a surrogate pair. */
function chunks(text: string, alphabet: SmsAlphabet, limit: number): string[] {
  const out: string[] = [];
  let current = '';
  let used = 0;
  for (const char of text) {
    const cost = alphabet === 'gsm7' ? gsm7CharSeptets(char)! : char.length;
    if (used + cost > limit) {
      out.push(current);
      current = '';
      used = 0;
    }
    current += char;
    used += cost;
  }
  if (current !== '' || out.length === 0) out.push(current);
  return out;
}

function encodeText(text: string, alphabet: SmsAlphabet): Buffer {
  return alphabet === 'gsm7' ? encodeGsm7(text) : Buffer.from(text, 'utf16le').swap16();
}

/**
 * The SMPP parts of `text`: one part without UDH when it fits, else parts with the 8-bit
 * concatenation UDH (IEI 0x00) carrying `concatReference` (0..255).
 */
export function smsParts(text: string, alphabet: SmsAlphabet, concatReference: number): SmsPart[] {
  const dataCoding = dataCodingOf[alphabet];
  const single = chunks(text, alphabet, alphabet === 'gsm7' ? gsm7SingleSeptetsMax : ucs2SingleUnitsMax);
  if (single.length === 1) return [{ bytes: encodeText(text, alphabet), dataCoding, esmClass: 0 }];
  const pieces = chunks(text, alphabet, alphabet === 'gsm7' ? gsm7PartSeptetsMax : ucs2PartUnitsMax);
  if (pieces.length > smsPartsMax) throw new Error(`assertion failed: ${pieces.length} parts exceed smsPartsMax`);
  return pieces.map((piece, i) => ({
    bytes: Buffer.concat([Buffer.from([0x05, 0x00, 0x03, concatReference & 0xff, pieces.length, i + 1]), encodeText(piece, alphabet)]),
    dataCoding,
    esmClass: esmClassUdhIndicator,
  }));
}
