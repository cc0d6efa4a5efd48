/**
 * RFC 6287 OCRA in WebCrypto, for the payer's terminal: the same second code as the server's
 * `authz/codes/ocra.ts` and `authz/codes/challenge.ts` (spec: `authz/codes/SECOND_CODE.md`).
 * Runs in browsers and in Node (both have `crypto.subtle`). Only the suites a terminal needs
 * are supported: `OCRA-1:HOTP-SHA{1,256,512}-d:Q{A,N,H}xx`, no counter, PIN, session or time.
 * The key is a non-extractable HMAC `CryptoKey`: the secret's bytes are not kept once imported.
 */

/** The countersign second-code suite (SECOND_CODE.md). */
export const secondCodeSuite = 'OCRA-1:HOTP-SHA256-8:QA64';
/** Q is always 128 bytes in the DataInput, the question left-aligned and zero-padded. */
export const questionBytes = 128;
export const questionCharsMin = 4;
export const questionCharsMax = 64;
export const firstCodeDigits = 8;
export const currencyChars = 3;
export const payeeHexChars = 32;
/** The widest amount that still fits QA64: 64 - 8 - 3 - 32 = 21 digits. */
export const amountDigitsMax = questionCharsMax - firstCodeDigits - currencyChars - payeeHexChars;

export type OcraHashName = 'SHA-1' | 'SHA-256' | 'SHA-512';

export interface TerminalSuite {
  readonly text: string;
  readonly hash: OcraHashName;
  readonly digits: number;
  readonly questionFormat: 'A' | 'N' | 'H';
  readonly questionCharsMax: number;
}

/** A non-extractable HMAC key (WebCrypto's CryptoKey, in browsers and in Node). */
export type OcraKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

export class OcraError extends Error {
  override readonly name = 'OcraError';
}

const suitePattern = /^OCRA-1:HOTP-SHA(1|256|512)-(\d{1,2}):Q([ANH])(\d{2})$/;
const questionPatterns = { A: /^[\x21-\x7e]+$/, N: /^[0-9]+$/, H: /^[0-9a-fA-F]+$/ } as const;

/** Parses a suite this terminal can compute; throws `OcraError` for any other. */
export function parseTerminalSuite(text: string): TerminalSuite {
  const m = suitePattern.exec(text);
  if (m === null) throw new OcraError(`this terminal cannot compute OCRA suite ${text}`);
  const digits = Number(m[2]);
  const charsMax = Number(m[4]);
  if (digits < 4 || digits > 10) throw new OcraError(`response digits must be 4..10 in ${text}`);
  if (charsMax < questionCharsMin || charsMax > questionCharsMax) throw new OcraError(`question length must be 4..64 in ${text}`);
  return { text, hash: `SHA-${m[1]}` as OcraHashName, digits, questionFormat: m[3] as 'A' | 'N' | 'H', questionCharsMax: charsMax };
}

/** Imports the verification secret as a non-extractable HMAC key for `suite`'s hash. */
export function importOcraKey(secret: Uint8Array<ArrayBuffer>, suite: TerminalSuite): Promise<OcraKey> {
  return crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: suite.hash }, false, ['sign']);
}

/** The OCRA response: HMAC over `suite | 0x00 | Q(128)`, RFC 4226 truncation, zero-padded. */
export async function ocraResponse(key: OcraKey, suite: TerminalSuite, question: string): Promise<string> {
  const suiteBytes = new TextEncoder().encode(suite.text);
  const dataInput = new Uint8Array(suiteBytes.length + 1 + questionBytes);
  dataInput.set(suiteBytes, 0);
  dataInput.set(questionField(suite, question), suiteBytes.length + 1);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, dataInput));
  return truncate(mac, suite.digits);
}

function questionField(suite: TerminalSuite, question: string): Uint8Array {
  if (question.length < questionCharsMin || question.length > suite.questionCharsMax) {
    throw new OcraError(`question must be ${questionCharsMin}..${suite.questionCharsMax} characters`);
  }
  if (!questionPatterns[suite.questionFormat].test(question)) throw new OcraError(`question has characters outside format Q${suite.questionFormat}`);
  const hex = suite.questionFormat === 'A' ? asciiHex(question) : suite.questionFormat === 'N' ? BigInt(question).toString(16) : question;
  if (hex.length > questionBytes * 2) throw new OcraError(`question does not fit ${questionBytes} bytes`);
  const padded = hex.padEnd(questionBytes * 2, '0');
  const field = new Uint8Array(questionBytes);
  for (let i = 0; i < questionBytes; i++) field[i] = parseInt(padded.slice(i * 2, i * 2 + 2), 16);
  return field;
}

function asciiHex(text: string): string {
  let hex = '';
  for (let i = 0; i < text.length; i++) hex += text.charCodeAt(i).toString(16).padStart(2, '0');
  return hex;
}

/** RFC 4226 §5.3 dynamic truncation to `digits` decimal digits, zero-padded. */
function truncate(mac: Uint8Array, digits: number): string {
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const binary = new DataView(mac.buffer, mac.byteOffset, mac.byteLength).getUint32(offset) & 0x7fffffff;
  return (BigInt(binary) % 10n ** BigInt(digits)).toString().padStart(digits, '0');
}

/** What a second code is bound to (SECOND_CODE.md "Question"). */
export interface SecondCodeFields {
  readonly firstCode: string;
  /** Minor units, > 0. */
  readonly amount: bigint;
  readonly currency: string;
  readonly payeeAccountId: string;
}

/** `firstCode | amount | currency | payee (lower case)`; throws `OcraError` on a malformed field. */
export function secondCodeQuestion(fields: SecondCodeFields): string {
  if (!/^\d{8}$/.test(fields.firstCode)) throw new OcraError('the first code must be 8 digits');
  const amount = fields.amount.toString();
  if (fields.amount <= 0n || amount.length > amountDigitsMax) throw new OcraError(`the amount must be 1..${amountDigitsMax} digits in minor units`);
  if (!/^[A-Z]{3}$/.test(fields.currency)) throw new OcraError('the currency must be 3 letters A-Z');
  if (!/^[0-9a-fA-F]{32}$/.test(fields.payeeAccountId)) throw new OcraError('the payee account must be 32 hex digits');
  return `${fields.firstCode}${amount}${fields.currency}${fields.payeeAccountId.toLowerCase()}`;
}

/** The 8-digit second code for `fields`, keyed with the terminal's secret. */
export function secondCode(key: OcraKey, suiteText: string, fields: SecondCodeFields): Promise<string> {
  return ocraResponse(key, parseTerminalSuite(suiteText), secondCodeQuestion(fields));
}
