import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Real child processes for the reliability scenarios: `countersign serve`, `countersign
 * telco-bridge`, `countersign reconcile` and redis-server. Each appends its stdout and stderr to
 * one log file under the scenario's log directory (across restarts), so the runner can scan
 * every byte any process wrote. Every child is registered and SIGKILLed if the runner exits.
 */

/** The repository root (test/reliability/support → ../../..). */
export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
/** How long a started process has to print its ready line, milliseconds. */
export const readyTimeoutMs = 30_000;
/** How long a politely stopped process has before SIGKILL, milliseconds. */
export const stopTimeoutMs = 10_000;
/** Characters of a child's recent output kept to explain a failed start. */
const tailCharsMax = 4_000;
/**
 * How long a closing process's log waits for the rest of its output after the exit, milliseconds:
 * 'exit' can come before the last bytes of stdout and stderr are read (and a process's own children
 * may hold the pipes open, so the wait is bounded).
 */
export const outputDrainMsMax = 2_000;

/** Resolves when both output streams of `child` have closed, or after `outputDrainMsMax`. */
function outputDrained(child: ChildProcess): Promise<void> {
  const closed = (s: NodeJS.ReadableStream | null) =>
    s === null || (s as NodeJS.ReadableStream & { closed?: boolean }).closed === true
      ? Promise.resolve()
      : new Promise<void>((resolve) => s.once('close', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, outputDrainMsMax)));
  return Promise.race([Promise.all([closed(child.stdout), closed(child.stderr)]).then(() => undefined), bound]).finally(() => clearTimeout(timer));
}

const live = new Set<ChildProcess>();
process.once('exit', () => killAllChildren());

/** SIGKILLs every child this module started that still runs (a scenario that overran its deadline). */
export function killAllChildren(): number {
  let killed = 0;
  for (const child of live) if (child.kill('SIGKILL')) killed++;
  return killed;
}

/** The tsx loader resolved from this package, so children run TypeScript without npx. */
function tsxLoader(): string {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
}

/** `node --import tsx services/cli.ts <args>`: the same program as `npx tsx services/cli.ts`, without npx's start-up. */
export function countersignCommand(args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', tsxLoader(), join(repoRoot, 'services/cli.ts'), ...args] };
}

export interface ProcessSpec {
  /** Short name, also the log file's name (`<logDir>/<name>.log`). */
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  logDir: string;
  /** A line of output that says the process is ready to serve. */
  readyPattern: RegExp;
}

/** A restartable child process with its log. */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private log: WriteStream | undefined;
  private tail = '';
  /** Times started (the first start included). */
  starts = 0;
  /** Exit codes and signals seen, most recent last (at most 100). */
  readonly exits: string[] = [];

  constructor(readonly spec: ProcessSpec) {}

  get logFile(): string {
    return join(this.spec.logDir, `${this.spec.name}.log`);
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process and waits for its ready line (at most `readyTimeoutMs`). */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    mkdirSync(dirname(this.logFile), { recursive: true });
    this.log ??= createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(this.spec.command, this.spec.args, { cwd: repoRoot, env: { ...minimalEnv(), ...this.spec.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.starts += 1;
    live.add(child);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        live.delete(child);
        if (this.exits.length >= 100) this.exits.shift();
        this.exits.push(signal ?? String(code));
        resolve();
      }),
    );
    const ready = this.watchOutput(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), readyTimeoutMs);
    try {
      await Promise.race([ready, this.exited.then(() => Promise.reject(new Error(`${this.spec.name} exited before it was ready:\n${this.tail}`)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  private watchOutput(child: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      let seen = '';
      const onData = (chunk: Buffer): void => {
        // After close() ended the log (output past `outputDrainMsMax`), nothing more can be kept.
        if (this.log?.writable === true) this.log.write(chunk);
        const text = chunk.toString('utf8');
        this.tail = (this.tail + text).slice(-tailCharsMax);
        if (seen !== 'ready') {
          seen = (seen + text).slice(-tailCharsMax);
          if (this.spec.readyPattern.test(seen)) {
            seen = 'ready';
            resolve();
          }
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
    });
  }

  /** Sends `signal` and, unless it only pauses or resumes, waits for the exit. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.kill(signal);
    if (signal !== 'SIGSTOP' && signal !== 'SIGCONT') await this.exited;
  }

  /** SIGKILL: a crash at whatever moment this is. */
  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  pause(): Promise<void> {
    return this.signal('SIGSTOP');
  }

  resume(): Promise<void> {
    return this.signal('SIGCONT');
  }

  /** SIGTERM (resuming a paused process first), then SIGKILL after `stopTimeoutMs`. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Stops the process and closes its log once the process's output has been read to its end. */
  async close(): Promise<void> {
    await this.stop();
    if (this.child !== undefined) await outputDrained(this.child);
    await new Promise<void>((resolve) => (this.log === undefined ? resolve() : this.log.end(() => resolve())));
    this.log = undefined;
  }

  /** The end of the output, for error messages. */
  recentOutput(): string {
    return this.tail;
  }
}

/**
 * Runs a process to its end (bounded by `timeoutMs`), its output appended to `<logDir>/<name>.log`;
 * resolves with its exit code and stdout.
 */
export async function runToEnd(spec: Omit<ProcessSpec, 'readyPattern'>, timeoutMs: number): Promise<{ code: number | null; stdout: string }> {
  mkdirSync(spec.logDir, { recursive: true });
  const log = createWriteStream(join(spec.logDir, `${spec.name}.log`), { flags: 'a' });
  const child = spawn(spec.command, spec.args, { cwd: repoRoot, env: { ...minimalEnv(), ...spec.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    log.write(chunk);
    stdout += chunk.toString('utf8');
  });
  child.stderr!.on('data', (chunk: Buffer) => log.write(chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  await outputDrained(child);
  clearTimeout(timer);
  live.delete(child);
  await new Promise<void>((resolve) => log.end(() => resolve()));
  return { code, stdout };
}

/** What a child inherits: the path and locale, never this process's COUNTERSIGN_* settings. */
function minimalEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'LANG', 'TMPDIR'];
  return Object.fromEntries(keep.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]!]])));
}
