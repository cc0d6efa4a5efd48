import { parseArgs } from 'node:util';
import { StoreLockedError } from '../authz/store/journal/lock.js';
import { JournalLockedError } from '../ledger/embedded/journal.js';
import { ConfigError } from './config-error.js';

/**
 * The command line's conventions, shared by every `countersign` command: `--help` and `-h`, strict
 * flags, and one line (not a stack trace) for the mistakes a user makes. Exit codes: 0 done,
 * 1 an operating error (configuration, a busy port, a locked data directory), 2 a command line
 * the command cannot run (unknown flag, bad value, unexpected argument).
 */

/** A command line a command cannot run: `countersign <command>: <what>; see countersign <command> --help`, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    readonly command: string,
    what: string,
  ) {
    super(what);
  }
}

/**
 * An operating failure a client command reports in one line, `countersign <command>: <what>`,
 * and exit 1: the server's answer (`<gRPC code>: <message>`), or what the command found (a
 * payment that does not wait for a second code).
 */
export class CommandFailure extends Error {
  override readonly name = 'CommandFailure';
  constructor(
    readonly command: string,
    what: string,
    options?: ErrorOptions,
  ) {
    super(what, options);
  }
}

/** A command's help: `usage: countersign <name> <synopsis>`, what it does, one line per flag. */
export interface CommandHelp {
  /** As typed: `serve`, `payer derive`. */
  name: string;
  /** The flags, as in the usage line: `[--with-bridge] [--workers N]`; '' for none. */
  synopsis: string;
  /** What the command does, lines of at most about 72 characters. */
  summary: readonly string[];
  /** `[flag, what it does]`; `-h, --help` is added. */
  flags: readonly (readonly [string, string])[];
}

/** Flags as node:util parseArgs takes them (strings and booleans, no short forms). */
export type FlagOptions = Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>;

const helpColumn = 24;

/** `countersign <command> --help`. */
export function commandHelpText(help: CommandHelp): string {
  const flags = [...help.flags, ['-h, --help', 'this text'] as const];
  const lines = [
    `usage: countersign ${help.name}${help.synopsis === '' ? '' : ` ${help.synopsis}`}`,
    '',
    ...help.summary,
    '',
    help.flags.length === 0 ? 'options (takes no arguments):' : 'options:',
  ];
  for (const [flag, what] of flags)
    lines.push(flag.length + 2 < helpColumn - 1 ? `  ${flag.padEnd(helpColumn - 2)}${what}` : `  ${flag}\n${' '.repeat(helpColumn)}${what}`);
  lines.push('', 'environment variables: see countersign help');
  return lines.join('\n');
}

/** `--help` or `-h` anywhere before a `--`: checked before anything is loaded or opened. */
export function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/**
 * The command's flags, strictly: an unknown flag, a flag without its value (or with a value it
 * does not take), a flag given twice or any positional argument is a UsageError.
 */
export function parseFlags<const O extends FlagOptions>(command: string, args: readonly string[], options: O) {
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') throw new UsageError(command, `unexpected argument "${token.value}"`);
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (option === undefined || token.rawName.length === 2) throw new UsageError(command, `unknown option ${token.rawName}`);
    if (option.type === 'boolean' && token.value !== undefined) throw new UsageError(command, `${token.rawName} takes no value`);
    if (option.type === 'string' && (token.value === undefined || (!token.inlineValue && token.value.length > 1 && token.value.startsWith('-')))) {
      throw new UsageError(command, `${token.rawName} needs a value`);
    }
    if (seen.has(token.name)) throw new UsageError(command, `${token.rawName} given twice`);
    seen.add(token.name);
  }
  return parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
}

/** A listening socket's port was taken: node's EADDRINUSE, or grpc-js's "No address added" wrapping it. */
export function portInUse(error: unknown): { port: number; grpcJs: boolean } | undefined {
  if (!(error instanceof Error)) return undefined;
  const errno = error as NodeJS.ErrnoException & { port?: unknown };
  if (errno.code === 'EADDRINUSE' && typeof errno.port === 'number') return { port: errno.port, grpcJs: false };
  const grpcJs = /^No address added out of total \d+ resolved errors: \[.*EADDRINUSE[^\]]*:(\d+)\]/.exec(error.message);
  return grpcJs === null ? undefined : { port: Number(grpcJs[1]), grpcJs: true };
}

/** A known operating error as one line for the console, or undefined for an unexpected one (a bug: print its stack). */
export function knownFailure(error: unknown, dataDir: string): { line: string; exitCode: 1 | 2 } | undefined {
  if (error instanceof UsageError) return { line: `countersign ${error.command}: ${error.message}; see countersign ${error.command} --help`, exitCode: 2 };
  if (error instanceof CommandFailure) return { line: `countersign ${error.command}: ${error.message}`, exitCode: 1 };
  if (error instanceof ConfigError) return { line: `countersign: ${error.message}`, exitCode: 1 };
  if (error instanceof StoreLockedError || error instanceof JournalLockedError) {
    return { line: `countersign: ${error.message}: stop that process, or set COUNTERSIGN_DATA_DIR to another directory (now ${dataDir})`, exitCode: 1 };
  }
  return undefined;
}

/** `grpc-js` logs a failed bind itself ("E No address added…") before rejecting: dropped, the CLI reports it in one line. */
export function isGrpcBindFailureLog(message: unknown): boolean {
  return typeof message === 'string' && message.startsWith('No address added out of total');
}

/**
 * Prints a process's "listening" banner and waits for SIGINT or SIGTERM, with the handlers
 * installed before the banner is written: whoever reads the banner (a test, a supervisor) may
 * signal at once, and a signal with no handler yet would kill the process uncleanly.
 */
export function announceUntilStopSignal(banner: string): Promise<NodeJS.Signals> {
  const stopped = untilStopSignal();
  console.log(banner);
  return stopped;
}

/**
 * Resolves on the first SIGINT or SIGTERM. The handlers stay installed until the process ends: a
 * second signal while the command stops (a second Ctrl-C, a supervisor repeating SIGTERM) is
 * ignored instead of killing it half-way through closing its data, and no other handler in the
 * process (tsx's signal relay) ever finds itself the last listener and re-raises the signal.
 */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
