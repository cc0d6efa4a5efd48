import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Scans every file under a log directory for secrets: each registered secret (codes, PINs,
 * passwords, enrolled secrets, tokens, card numbers), an 8-digit code next to the word "code",
 * and PAN-like digit runs (13–19 digits passing Luhn). A finding names the file, the line and
 * the kind of secret — never the secret itself, so the report can be published.
 */

export interface ScanResult {
  files: number;
  bytes: number;
  /** Registered secrets looked for. */
  secretsScanned: number;
  /** Registered secrets not looked for: shorter than `secretCharsMin`, or one character repeated. */
  secretsTooShort: number;
  findings: string[];
}

/** Registered secrets shorter than this are not looked for: they would match ordinary numbers and words. */
export const secretCharsMin = 4;
/** Files read, at most, and bytes read per file, at most. */
export const scanFilesMax = 10_000;
export const scanFileBytesMax = 512 * 1024 * 1024;
/** Findings reported, at most. */
const findingsMax = 200;
const prefixChars = 4;

/** Every regular file under `dir`, depth first, bounded by `scanFilesMax`. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (out.length >= scanFilesMax) return;
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) out.push(path);
    }
  };
  walk(dir);
  return out;
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

function describe(secret: string): string {
  return /^\d+$/.test(secret) ? `a secret of ${secret.length} digits` : `a secret of ${secret.length} characters`;
}

const isAlnum = (c: string | undefined) => c !== undefined && /[0-9A-Za-z]/.test(c);

/**
 * A secret is found where it stands alone: not inside a longer run of letters or digits (a code
 * inside a timestamp or a hex id is chance, not a leak). Secrets that are words of their own
 * (tokens, keys) are found anywhere.
 */
function standsAlone(text: string, at: number, secret: string): boolean {
  if (!/^[0-9A-Za-z]+$/.test(secret) || secret.length > 12) return true;
  return !isAlnum(text[at - 1]) && !isAlnum(text[at + secret.length]);
}

/**
 * Whether a registered secret can be looked for: long enough, and not one character repeated
 * ("00000000" is also every zero-filled field, e.g. redis-server's `commit=00000000` banner).
 */
export function scannable(secret: string): boolean {
  return secret.length >= secretCharsMin && !/^(.)\1*$/.test(secret);
}

/** Index of secrets by their first characters: one pass over the text finds them all. */
function indexSecrets(secrets: Iterable<string>): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const s of secrets) {
    if (!scannable(s)) continue;
    const key = s.slice(0, prefixChars);
    index.set(key, [...(index.get(key) ?? []), s]);
  }
  return index;
}

function lineOf(text: string, at: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < at; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

function scanRegistered(text: string, index: Map<string, string[]>, report: (at: number, what: string) => void): void {
  for (let at = 0; at + prefixChars <= text.length; at++) {
    const candidates = index.get(text.slice(at, at + prefixChars));
    if (candidates === undefined) continue;
    for (const s of candidates) if (text.startsWith(s, at) && standsAlone(text, at, s)) report(at, `${describe(s)} a scenario registered`);
  }
}

/** Keys whose long numbers are times, not card numbers (pino's `time`, `createdAtMs`, …). */
const timeKey = /"(?:time|timestamp|\w*(?:At|Ms|Ns|_ms|_ns|_at))"\s*:\s*"?$/;
/**
 * 13-digit numbers that read as epoch milliseconds from 2020 to 2100 are times (Redis stores
 * expiries and scores as bare numbers). The price: a 13-digit card number from 4000000000000 to
 * 4102444799999 (the old 13-digit Visa range) would be missed.
 */
const epochMsMin = 1_577_836_800_000;
const epochMsMax = 4_102_444_800_000;

function isTime(digits: string, before: string): boolean {
  if (timeKey.test(before)) return true;
  return digits.length === 13 && Number(digits) >= epochMsMin && Number(digits) < epochMsMax;
}

function scanPatterns(text: string, report: (at: number, what: string) => void): void {
  for (const m of text.matchAll(/code[^0-9A-Za-z\n]{0,16}(?<![0-9A-Za-z])(\d{8})(?![0-9A-Za-z])/gi))
    report(m.index!, 'an 8-digit number next to the word "code"');
  for (const m of text.matchAll(/(?<![0-9A-Za-z])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z])/g)) {
    const digits = m[0].replace(/[ -]/g, '');
    if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) continue;
    if (isTime(digits, text.slice(Math.max(0, m.index! - 40), m.index!))) continue;
    report(m.index!, `a ${digits.length}-digit card-number-like run passing Luhn`);
  }
}

export function scanText(text: string, secrets: Iterable<string>): { at: number; what: string }[] {
  const found: { at: number; what: string }[] = [];
  const report = (at: number, what: string) => void (found.length < findingsMax && found.push({ at, what }));
  scanRegistered(text, indexSecrets(secrets), report);
  scanPatterns(text, report);
  return found;
}

/**
 * The data the scenarios' services stored — Redis append-only files and authz data directories
 * (`redis` and `authz-data` folders under the work directory): secrets must not be stored in
 * plaintext either.
 */
export function storesUnder(workDir: string, depthMax = 3): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === 'logs') continue;
      const path = join(d, entry.name);
      if (entry.name === 'redis' || entry.name === 'authz-data') out.push(path);
      else if (depth < depthMax) walk(path, depth + 1);
    }
  };
  walk(workDir, 1);
  return out;
}

/** Scans every file under each of `dirs` (findings named relative to `root`). */
export function scanLogs(root: string, secrets: Set<string>, dirs: string[] = [root]): ScanResult {
  const result: ScanResult = { files: 0, bytes: 0, secretsScanned: 0, secretsTooShort: 0, findings: [] };
  for (const s of secrets) {
    if (scannable(s)) result.secretsScanned++;
    else result.secretsTooShort++;
  }
  for (const file of dirs.flatMap(filesUnder)) {
    const size = statSync(file).size;
    const text = readFileSync(file).subarray(0, scanFileBytesMax).toString('utf8');
    result.files += 1;
    result.bytes += size;
    for (const f of scanText(text, secrets)) {
      if (result.findings.length >= findingsMax) break;
      result.findings.push(`${relative(root, file)}:${lineOf(text, f.at)}: ${f.what}`);
    }
  }
  return result;
}
