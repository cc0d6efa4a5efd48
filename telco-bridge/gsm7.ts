/**
 * The GSM 03.38 7-bit default alphabet and its extension table, as unpacked septets (one per
 * octet): the form SMPP carries with data_coding 0. Pure functions, no I/O.
 */

/** The basic table: index = septet value. */
const basicTable =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' + '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';

/** The extension table: character → septet that follows the escape (0x1B). */
const extensionTable: ReadonlyMap<string, number> = new Map([
  ['\f', 0x0a],
  ['^', 0x14],
  ['{', 0x28],
  ['}', 0x29],
  ['\\', 0x2f],
  ['[', 0x3c],
  ['~', 0x3d],
  [']', 0x3e],
  ['|', 0x40],
  ['€', 0x65],
]);

export const gsm7Escape = 0x1b;

const basicEncode = new Map<string, number>();
for (let i = 0; i < basicTable.length; i++) if (i !== gsm7Escape) basicEncode.set(basicTable[i]!, i);
const extensionDecode = new Map<number, string>([...extensionTable].map(([c, s]) => [s, c]));

/** Septets of one character (1 basic, 2 extension), or undefined when GSM-7 cannot carry it. */
export function gsm7CharSeptets(char: string): 1 | 2 | undefined {
  if (basicEncode.has(char)) return 1;
  if (extensionTable.has(char)) return 2;
  return undefined;
}

/** True when every character of `text` is in the GSM-7 basic or extension table. */
export function fitsGsm7(text: string): boolean {
  for (const char of text) if (gsm7CharSeptets(char) === undefined) return false;
  return true;
}

/** Unpacked septets of `text` (extension characters escaped). Asserts that the text fits. */
export function encodeGsm7(text: string): Buffer {
  const out: number[] = [];
  for (const char of text) {
    const basic = basicEncode.get(char);
    if (basic !== undefined) {
      out.push(basic);
      continue;
    }
    const ext = extensionTable.get(char);
    if (ext === undefined) throw new Error('assertion failed: encodeGsm7 called with a character outside GSM-7');
    out.push(gsm7Escape, ext);
  }
  return Buffer.from(out);
}

/** Text of unpacked septets; unknown septets decode as a space (as handsets do). */
export function decodeGsm7(septets: Uint8Array): string {
  let text = '';
  for (let i = 0; i < septets.length; i++) {
    const septet = septets[i]! & 0x7f;
    if (septet === gsm7Escape && i + 1 < septets.length) {
      text += extensionDecode.get(septets[++i]! & 0x7f) ?? ' ';
      continue;
    }
    text += septet === gsm7Escape ? ' ' : basicTable[septet]!;
  }
  return text;
}
