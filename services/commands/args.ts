import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { isHexId } from '../../authz/validation.js';
import { Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { type FlagOptions, parseFlags, UsageError } from '../cli-errors.js';

/**
 * Command-line values of the client commands, checked before anything is called: a bad one is a
 * UsageError (one line, exit 2), as every `countersign` command does (services/cli-errors.ts).
 */

/** The flags every client command takes. */
export const clientFlags = { server: { type: 'string' }, json: { type: 'boolean', default: false } } as const satisfies FlagOptions;
export const clientFlagHelp: readonly (readonly [string, string])[] = [
  ['--server HOST:PORT', "the server's gRPC address (default COUNTERSIGN_HOST:COUNTERSIGN_GRPC_PORT, as serve binds)"],
  ['--json', 'one JSON object (protobuf JSON, 64-bit numbers as strings) instead of text'],
];

/** Largest uint64: amounts and limits travel as uint64. */
const uint64Max = 2n ** 64n - 1n;
/** Idempotency keys are 1..128 printable ASCII characters (common.proto). */
const idempotencyKeyCharsMax = 128;

/** Flags plus exactly one positional argument (`payment get ID`, `balance ACCOUNT_ID`). */
export function parseWithOperand<const O extends FlagOptions>(command: string, args: readonly string[], options: O, operand: string) {
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });
  const positionals = tokens.filter((t) => t.kind === 'positional');
  const rest = args.filter((_, i) => !positionals.some((p) => p.index === i));
  const values = parseFlags(command, rest, options);
  if (positionals.length === 0) throw new UsageError(command, `needs ${operand}`);
  if (positionals.length > 1) throw new UsageError(command, `takes one ${operand}, got ${positionals.length}`);
  return { values, operand: positionals[0]!.value };
}

/** Every flag in `names` was given. */
export function required<V extends Record<string, unknown>>(command: string, values: V, names: readonly (keyof V & string)[]): void {
  const missing = names.filter((name) => values[name] === undefined);
  if (missing.length > 0) throw new UsageError(command, `needs --${missing.join(', --')}`);
}

/** Minor units, digits only, 1..2^64-1. */
export function amountOf(command: string, flag: string, text: string): bigint {
  if (!/^\d{1,20}$/.test(text)) throw new UsageError(command, `${flag} is in minor units, digits only (2500 for 25.00), got "${text}"`);
  const amount = BigInt(text);
  if (amount === 0n || amount > uint64Max) throw new UsageError(command, `${flag} must be 1..${uint64Max} minor units, got "${text}"`);
  return amount;
}

/** A threshold: like an amount, 0 allowed. */
export function limitOf(command: string, flag: string, text: string): bigint {
  if (!/^\d{1,20}$/.test(text) || BigInt(text) > uint64Max) throw new UsageError(command, `${flag} is in minor units, digits only, got "${text}"`);
  return BigInt(text);
}

export function currencyOfFlag(command: string, text: string): string {
  if (!/^[A-Z]{3}$/.test(text)) throw new UsageError(command, `--currency is a 3-letter upper-case ISO 4217 code (USD), got "${text}"`);
  return text;
}

/** A 128-bit id: 32 lower-case hex digits. */
export function idOf(command: string, what: string, text: string): string {
  if (!isHexId(text)) throw new UsageError(command, `${what} is 32 lower-case hex digits, got "${text}"`);
  return text;
}

export function positiveIntOf(command: string, flag: string, text: string, max: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new UsageError(command, `${flag} must be 1..${max}, got "${text}"`);
  return value;
}

/** `--idempotency-key K`, or a fresh one the output shows, so a retry can reuse it. */
export function idempotencyKeyOf(command: string, text: string | undefined, prefix: string): string {
  if (text === undefined) return `cli-${prefix}-${randomBytes(12).toString('hex')}`;
  if (text.length < 1 || text.length > idempotencyKeyCharsMax || !/^[\x21-\x7e]+$/.test(text)) {
    throw new UsageError(command, `--idempotency-key is 1..${idempotencyKeyCharsMax} printable ASCII characters without spaces, got "${text}"`);
  }
  return text;
}

const factorNames = Object.keys(Factor).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED');

/** A factor by its name (SECOND_CODE). */
export function factorOf(command: string, flag: string, text: string): Factor {
  const name = text.replace(/^FACTOR_/, '');
  if (!factorNames.includes(name)) throw new UsageError(command, `${flag}: unknown factor "${text}" (one of ${factorNames.join(', ')})`);
  return Factor[name as keyof typeof Factor];
}

const stateNames = Object.keys(PaymentState).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED');

/** A payment state by its name (SUCCEEDED). */
export function stateOf(command: string, text: string): PaymentState {
  const name = text.toUpperCase().replace(/^PAYMENT_STATE_/, '');
  if (!stateNames.includes(name)) throw new UsageError(command, `--state: unknown state "${text}" (one of ${stateNames.join(', ')})`);
  return PaymentState[name as keyof typeof PaymentState];
}
