import { createHash, createHmac } from 'node:crypto';

/**
 * RFC 6287 OCRA (OATH Challenge-Response Algorithm), HOTP-based suites only.
 *
 * The DataInput is built exactly as the RFC 6287 §5.1 / Appendix A reference implementation:
 * `suite | 0x00 | C (8 bytes) | Q (128 bytes) | P (hash length) | S (nnn bytes) | T (8 bytes)`,
 * keyed with HMAC-SHA1/256/512 and shortened by RFC 4226 dynamic truncation. The question is
 * turned into a hex string (QN: the decimal number in hex; QA: the ASCII bytes in hex; QH: as
 * is), left-aligned and right-padded with '0' nibbles to 128 bytes.
 */

export type OcraHash = 'sha1' | 'sha256' | 'sha512';
export type QuestionFormat = 'A' | 'N' | 'H';

export interface OcraSuite {
  /** The suite string as given, part of the DataInput. */
  text: string;
  hash: OcraHash;
  /** Response digits (RFC 6287 also allows 0 = no truncation; not supported here). */
  digits: number;
  counter: boolean;
  questionFormat: QuestionFormat;
  /** The maximum question length in characters (Qxx). */
  questionCharsMax: number;
  /** Hash of the PIN/password input (P), if the suite carries one. */
  passwordHash: OcraHash | null;
  /** Session information length in bytes (Snnn), if the suite carries one. */
  sessionInfoBytes: number | null;
  /** Time step length in seconds (T), if the suite carries one. */
  timeStepSeconds: number | null;
}

export interface OcraInput {
  question: string;
  counter?: bigint;
  passwordHash?: Buffer;
  sessionInfo?: Buffer;
  timeSteps?: bigint;
}

export class OcraSuiteError extends Error {
  override readonly name = 'OcraSuiteError';
}

export class OcraInputError extends Error {
  override readonly name = 'OcraInputError';
}

export const responseDigitsMin = 4;
export const responseDigitsMax = 10;
export const questionCharsMin = 4;
export const questionCharsMax = 64;
export const questionBytes = 128;
export const counterBytes = 8;
export const timeStepsBytes = 8;
export const sessionInfoBytesMax = 999;

const hashBytes: Record<OcraHash, number> = { sha1: 20, sha256: 32, sha512: 64 };
const timeUnitSeconds: Record<string, number> = { S: 1, M: 60, H: 3600 };
const timeStepsMax: Record<string, number> = { S: 59, M: 59, H: 48 };
const uint64Max = (1n << 64n) - 1n;

const cryptoPattern = /^HOTP-SHA(1|256|512)-(\d{1,2})$/;
const questionPattern = /^Q([ANH])(\d{2})$/;
const passwordPattern = /^PSHA(1|256|512)$/;
const sessionPattern = /^S(\d{3})$/;
const timePattern = /^T(\d{1,2})([SMH])$/;

/** Parses `OCRA-1:HOTP-SHAx-d:[C-]QFxx[-PH|-Snnn|-TG]`; throws `OcraSuiteError` when malformed. */
export function parseOcraSuite(text: string): OcraSuite {
  const parts = text.split(':');
  if (parts.length !== 3 || parts[0] !== 'OCRA-1') throw new OcraSuiteError(`not an OCRA-1 suite: ${text}`);
  const crypto = cryptoPattern.exec(parts[1] ?? '');
  if (!crypto) throw new OcraSuiteError(`unsupported crypto function in ${text}`);
  const digits = Number(crypto[2]);
  if (digits < responseDigitsMin || digits > responseDigitsMax) {
    throw new OcraSuiteError(`response digits must be ${responseDigitsMin}..${responseDigitsMax} in ${text}`);
  }
  const suite: OcraSuite = {
    text,
    hash: `sha${crypto[1]}` as OcraHash,
    digits,
    counter: false,
    questionFormat: 'N',
    questionCharsMax: 0,
    passwordHash: null,
    sessionInfoBytes: null,
    timeStepSeconds: null,
  };
  parseDataInput(suite, parts[2] ?? '');
  return suite;
}

function parseDataInput(suite: OcraSuite, dataInput: string): void {
  const fields = dataInput.split('-');
  if (fields[0] === 'C') {
    suite.counter = true;
    fields.shift();
  }
  const question = questionPattern.exec(fields.shift() ?? '');
  if (!question) throw new OcraSuiteError(`missing or malformed question in ${suite.text}`);
  suite.questionFormat = question[1] as QuestionFormat;
  suite.questionCharsMax = Number(question[2]);
  if (suite.questionCharsMax < questionCharsMin || suite.questionCharsMax > questionCharsMax) {
    throw new OcraSuiteError(`question length must be ${questionCharsMin}..${questionCharsMax} in ${suite.text}`);
  }
  for (const field of fields) parseOptionalField(suite, field);
}

function parseOptionalField(suite: OcraSuite, field: string): void {
  const password = passwordPattern.exec(field);
  const session = sessionPattern.exec(field);
  const time = timePattern.exec(field);
  if (password && suite.passwordHash === null && suite.sessionInfoBytes === null && suite.timeStepSeconds === null) {
    suite.passwordHash = `sha${password[1]}` as OcraHash;
  } else if (session && suite.sessionInfoBytes === null && suite.timeStepSeconds === null) {
    suite.sessionInfoBytes = Number(session[1]);
  } else if (time && suite.timeStepSeconds === null) {
    const count = Number(time[1]);
    const unit = time[2] ?? '';
    if (count < 1 || count > (timeStepsMax[unit] ?? 0)) throw new OcraSuiteError(`bad time step in ${suite.text}`);
    suite.timeStepSeconds = count * (timeUnitSeconds[unit] ?? 0);
  } else {
    throw new OcraSuiteError(`unexpected or misplaced field ${field} in ${suite.text}`);
  }
}

/** Parsed suites kept, at most (a deployment uses one or two; a caller's suites beyond these are parsed each time). */
export const parsedSuitesMax = 64;
const parsedSuites = new Map<string, { suite: OcraSuite; prefix: Buffer }>();

/** The suite parsed once and its data-input prefix (the suite text and a zero byte), cached. */
function preparedSuite(text: string): { suite: OcraSuite; prefix: Buffer } {
  let prepared = parsedSuites.get(text);
  if (prepared === undefined) {
    const suite = parseOcraSuite(text);
    prepared = { suite, prefix: Buffer.concat([Buffer.from(suite.text, 'ascii'), Buffer.alloc(1)]) };
    if (parsedSuites.size < parsedSuitesMax) parsedSuites.set(text, prepared);
  }
  return prepared;
}

/** Computes the OCRA response (zero-padded decimal digits). Throws `OcraInputError` on bad input. */
export function ocra(suiteText: string, key: Buffer, input: OcraInput): string {
  const { suite, prefix } = preparedSuite(suiteText);
  const dataInput = Buffer.concat([
    prefix,
    counterField(suite, input.counter),
    questionField(suite, input.question),
    passwordField(suite, input.passwordHash),
    sessionField(suite, input.sessionInfo),
    timeField(suite, input.timeSteps),
  ]);
  const mac = createHmac(suite.hash, key).update(dataInput).digest();
  return truncate(mac, suite.digits);
}

/** SHA-1/256/512 of a PIN, the form RFC 6287 expects for the P input. */
export function ocraPasswordHash(hash: OcraHash, pin: string): Buffer {
  return createHash(hash).update(pin, 'utf8').digest();
}

function counterField(suite: OcraSuite, counter: bigint | undefined): Buffer {
  if (!suite.counter) return rejectUnexpected(counter, 'counter');
  return uint64Field(counter, 'counter');
}

function timeField(suite: OcraSuite, timeSteps: bigint | undefined): Buffer {
  if (suite.timeStepSeconds === null) return rejectUnexpected(timeSteps, 'timeSteps');
  return uint64Field(timeSteps, 'timeSteps');
}

function uint64Field(value: bigint | undefined, name: string): Buffer {
  if (value === undefined) throw new OcraInputError(`the suite requires ${name}`);
  if (value < 0n || value > uint64Max) throw new OcraInputError(`${name} out of the 64-bit range`);
  const field = Buffer.alloc(counterBytes);
  field.writeBigUInt64BE(value);
  return field;
}

function passwordField(suite: OcraSuite, passwordHash: Buffer | undefined): Buffer {
  if (suite.passwordHash === null) return rejectUnexpected(passwordHash, 'passwordHash');
  if (passwordHash === undefined) throw new OcraInputError('the suite requires passwordHash');
  if (passwordHash.length !== hashBytes[suite.passwordHash]) {
    throw new OcraInputError(`passwordHash must be ${hashBytes[suite.passwordHash]} bytes`);
  }
  return passwordHash;
}

/** Session information is left-padded with zero bytes to Snnn, as the reference implementation does. */
function sessionField(suite: OcraSuite, sessionInfo: Buffer | undefined): Buffer {
  if (suite.sessionInfoBytes === null) return rejectUnexpected(sessionInfo, 'sessionInfo');
  if (sessionInfo === undefined) throw new OcraInputError('the suite requires sessionInfo');
  if (sessionInfo.length > suite.sessionInfoBytes) {
    throw new OcraInputError(`sessionInfo longer than ${suite.sessionInfoBytes} bytes`);
  }
  return Buffer.concat([Buffer.alloc(suite.sessionInfoBytes - sessionInfo.length), sessionInfo]);
}

const noField = Buffer.alloc(0);

function rejectUnexpected(value: unknown, name: string): Buffer {
  if (value !== undefined) throw new OcraInputError(`the suite has no ${name}`);
  return noField;
}

const questionCharPatterns: Record<QuestionFormat, RegExp> = {
  N: /^[0-9]+$/,
  A: /^[\x21-\x7e]+$/,
  H: /^[0-9a-fA-F]+$/,
};

/**
 * Q: the question as a hex string, left-aligned and right-padded with '0' nibbles to 128 bytes.
 * Qxx bounds one challenge; mutual mode (RFC 6287 §7.3, Appendix C.2) concatenates the client's
 * and the server's challenges under a QA08 suite, so the only hard bound here is the Q field.
 */
function questionField(suite: OcraSuite, question: string): Buffer {
  if (question.length < questionCharsMin) throw new OcraInputError(`question shorter than ${questionCharsMin}`);
  if (!questionCharPatterns[suite.questionFormat].test(question)) {
    throw new OcraInputError(`question has characters outside format Q${suite.questionFormat}`);
  }
  if (suite.questionFormat === 'A') {
    // The ASCII bytes themselves, zero-padded: what the hex round trip below gives, without it
    // (written as latin1, the same bytes for the printable ASCII checked above, and several times
    // faster than Buffer's 'ascii' writer here: 3.2 µs per second code against 7–8).
    if (question.length > questionBytes) throw new OcraInputError(`question does not fit ${questionBytes} bytes`);
    const field = Buffer.alloc(questionBytes);
    field.write(question, 'latin1');
    return field;
  }
  const hex = questionHex(suite.questionFormat, question);
  if (hex.length > questionBytes * 2) throw new OcraInputError(`question does not fit ${questionBytes} bytes`);
  return Buffer.from(hex.padEnd(questionBytes * 2, '0'), 'hex');
}

function questionHex(format: QuestionFormat, question: string): string {
  if (format === 'N') return BigInt(question).toString(16);
  if (format === 'A') return Buffer.from(question, 'ascii').toString('hex');
  return question;
}

/** RFC 4226 §5.3 dynamic truncation to `digits` decimal digits, zero-padded. */
function truncate(mac: Buffer, digits: number): string {
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  // binary < 2^31 and digits ≤ 10: exact in a double.
  return String(binary % 10 ** digits).padStart(digits, '0');
}
