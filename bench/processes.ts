import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../services/net.js';
import { IpcClient } from './ipc.js';

/**
 * The bench's child processes: the server, the load generator, the ledger scenario and a private
 * redis-server. Every child is registered here and killed when the bench exits, on success, on
 * an error, on Ctrl-C or SIGTERM.
 */

/** How long a child has to exit after a polite stop before it is killed, milliseconds. */
export const childStopTimeoutMs = 5_000;
/** How long redis-server has to answer PING after it starts, milliseconds. */
export const redisStartTimeoutMs = 10_000;
/** Lines of a child's stderr kept to explain a crash. */
const stderrCharsKept = 8_000;

const children = new Set<ChildProcess>();

function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.stderr.write(`\nbench: ${signal}, child processes stopped\n`);
    process.exit(130);
  });
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The loader children need to run TypeScript (tsx), resolved from this package. */
function tsxLoader(): string {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
}

export interface ForkedChild {
  readonly child: ChildProcess;
  readonly ipc: IpcClient;
  /** The end of its stderr, for error messages. */
  stderrTail(): string;
  /** Asks nicely (`stopRequest` over IPC), then SIGTERM, then SIGKILL. */
  stop(stopRequest?: string): Promise<void>;
}

/**
 * Forks `bench/<file>` under tsx with an IPC channel (structured-clone serialization: bigints
 * travel). Its stdout goes to /dev/null (the server's pino lines are written, and cost what they
 * cost, but are not kept); its stderr is kept.
 */
export function forkBench(file: string, args: string[], options: { name: string; nodeArgs?: string[] }): ForkedChild {
  const path = fileURLToPath(new URL(`./${file}`, import.meta.url));
  const child = track(
    fork(path, args, {
      execArgv: ['--import', tsxLoader(), ...(options.nodeArgs ?? [])],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    }),
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-stderrCharsKept);
  });
  const ipc = new IpcClient(child, options.name);
  return {
    child,
    ipc,
    stderrTail: () => stderr.trim(),
    stop: (stopRequest) => stopChild(child, stopRequest === undefined ? undefined : () => ipc.call(stopRequest, {}, childStopTimeoutMs)),
  };
}

async function stopChild(child: ChildProcess, politely: (() => Promise<unknown>) | undefined): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (politely !== undefined) await politely().catch(() => undefined);
  const term = setTimeout(() => child.kill('SIGTERM'), childStopTimeoutMs);
  const kill = setTimeout(() => child.kill('SIGKILL'), 2 * childStopTimeoutMs);
  await exited;
  clearTimeout(term);
  clearTimeout(kill);
}

export interface PrivateRedis {
  url: string;
  stop(): Promise<void>;
}

/** A private redis-server on a free loopback port, no persistence, deleted on stop. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const binary = found.stdout.trim();
  if (found.status !== 0 || binary === '') throw new Error('redis-server is not installed: apt-get install -y redis-server (or pass --redis-url)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cs-bench-redis-'));
  const child = track(
    spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', '--dir', dir], {
      stdio: 'ignore',
    }),
  );
  const stop = async () => {
    await stopChild(child, undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + redisStartTimeoutMs;
  while (!(await ping(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} did not answer PING within ${redisStartTimeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => (socket.destroy(), resolve(ok));
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false)); // hung up without an answer (a later done() is a no-op)
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => done(chunk.toString('latin1').startsWith('+PONG')));
  });
}
