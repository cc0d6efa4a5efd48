import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

/**
 * The `countersign` CLI as a child process, for the tests where the behaviour is the process's
 * (exit codes, one-line errors, what --help writes): `node --import=tsx services/cli.ts …` (tsx
 * from this package, so the working directory may be anywhere) or `node bin/countersign.mjs …`,
 * with none of this process's COUNTERSIGN_* settings, a bounded number at once.
 */

const repo = fileURLToPath(new URL('../../', import.meta.url));
const cliTs = join(repo, 'services/cli.ts');
const bin = join(repo, 'bin/countersign.mjs');

/** Longest a child may take to start, answer and exit (tsx compiles on a loaded machine), milliseconds. */
export const cliRunMsMax = 60_000;
/** Children at once, across the test file (ava runs its tests concurrently; the machine has two cores). */
const childrenMax = 2;
let children = 0;
const waiting: (() => void)[] = [];

export type CliEntry = 'cli.ts' | 'bin';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd: string;
  /** The child's COUNTERSIGN_* (and any other) settings, over the parent's environment without its COUNTERSIGN_*. */
  env?: Record<string, string>;
  /** Default 'cli.ts'. */
  entry?: CliEntry;
}

/** Starts the CLI once a slot is free (a finished child hands its slot over); killed at the test's end. */
export async function startCli(t: ExecutionContext, args: readonly string[], options: CliOptions): Promise<ChildProcess> {
  if (children < childrenMax) children += 1;
  else await new Promise<void>((resolve) => waiting.push(resolve));
  const argv = options.entry === 'bin' ? [bin, ...args] : [`--import=${import.meta.resolve('tsx')}`, cliTs, ...args];
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COUNTERSIGN_')));
  const child = spawn(process.execPath, argv, { cwd: options.cwd, env: { ...clean, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.once('close', () => {
    const next = waiting.shift();
    if (next === undefined) children -= 1;
    else next();
  });
  t.teardown(() => void child.kill('SIGKILL'));
  return child;
}

/** Runs the CLI to its exit: the exit code and everything it wrote; rejects after `cliRunMsMax`. */
export async function runCli(t: ExecutionContext, args: readonly string[], options: CliOptions): Promise<CliRun> {
  const child = await startCli(t, args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c))),
    new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error(`countersign ${args.join(' ')}: no exit within ${cliRunMsMax} ms: ${stdout}${stderr}`)), cliRunMsMax)),
    ),
  ]).finally(() => clearTimeout(timer));
  return { code, stdout, stderr };
}

/**
 * The same command line through `runCli` in this process (the code the `countersign` process
 * runs, on captured output and the given environment only), for the cases where the process
 * itself is not the point: without a child's start of ~2 s of CPU.
 */
export async function runCliHere(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  const { runCli: run } = await import('../../services/cli-main.js');
  const out: string[] = [];
  const err: string[] = [];
  const { code } = await run(args, { io: { out: (line) => out.push(`${line}\n`), err: (line) => err.push(`${line}\n`) }, env });
  return { code, stdout: out.join(''), stderr: err.join('') };
}
