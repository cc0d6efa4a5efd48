import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { quietPort } from './ports.js';

/**
 * A real `redis-server` for tests, on a free loopback port, with no persistence. `stop()` kills
 * it and removes its directory. For outage tests, `stopRedis(server)` stops it and
 * `startRedis({ port: server.port })` brings a fresh (empty) one back on the same port.
 */
export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** How long a new server has to answer PING. */
export const redisStartTimeoutMs = 10_000;
/** How long a stopped server has to exit before it is killed outright. */
export const redisStopTimeoutMs = 5_000;
const pingIntervalMs = 50;

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * `args` are passed after the defaults (redis-server lets a later option override an earlier
 * one); the server runs in its own directory (`--dir`), so relative file names land there.
 */
export async function startRedis(options: { port?: number; args?: readonly string[] } = {}): Promise<RedisServer> {
  if (options.port !== undefined) return startOn(options.port, options.args);
  // A port below the kernel's source-port range (ports.ts), so that a stopped server can come
  // back on it; another listener may still take it before redis-server binds it: then another
  // port, a bounded number of times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(await quietPort(), options.args);
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt >= redisPortAttemptsMax) throw error;
    }
  }
}

/** Ports tried when `startRedis` picks the port and redis-server finds it taken. */
export const redisPortAttemptsMax = 3;

/** redis-server exited because a port it listens on (client or cluster bus) was taken. */
export class PortTakenError extends Error {}

async function startOn(port: number, extraArgs: readonly string[] | undefined): Promise<RedisServer> {
  const binary = redisBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cs-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'yes',
    '--dir',
    dir,
    ...(extraArgs ?? []),
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), running.delete(child), resolve())));
  // 'close' comes after 'exit' once the output pipes are drained: the last lines say why it exited.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), redisStopTimeoutMs);
      await exit;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + redisStartTimeoutMs;
  while (!(await ping(port))) {
    if (exited || Date.now() > deadline) {
      const early = exited;
      await stop();
      await closed;
      const message = `redis-server on port ${port} did not answer PING within ${redisStartTimeoutMs} ms:\n${output}`;
      throw early && /Address already in use/.test(output) ? new PortTakenError(message) : new Error(message);
    }
    await sleep(pingIntervalMs);
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}

/** Stops a server (an outage); `startRedis({ port: server.port })` restarts one on the same port. */
export async function stopRedis(server: RedisServer): Promise<void> {
  await server.stop();
}

function redisBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const binary = found.stdout.trim();
  if (found.status !== 0 || binary === '') {
    throw new Error('redis-server is not installed: run `apt-get update && apt-get install -y redis-server`');
  }
  return binary;
}

export { freePort } from '../../services/net.js';

/** True when something on the port answers PING with +PONG (within one ping interval × 10). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(pingIntervalMs * 10, () => done(false));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false)); // hung up without an answer (a later done() is a no-op)
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One command as MONITOR reports it: `source` is `lua` for commands run by a script. */
export interface MonitoredCommand {
  source: string;
  args: string[];
}

/**
 * Watches every command the server runs (MONITOR on a raw socket: ioredis's monitor mode trips
 * over busy servers). Resolves once MONITOR is on; `stop()` closes the socket.
 */
export function monitorRedis(port: number, onCommand: (command: MonitoredCommand) => void): Promise<{ stop(): void }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let buffer = '';
    let on = false;
    socket.once('error', reject);
    socket.once('connect', () => socket.write('MONITOR\r\n'));
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let end: number;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!on) {
          on = line === '+OK';
          if (on) resolve({ stop: () => socket.destroy() });
          continue;
        }
        const parsed = parseMonitorLine(line);
        if (parsed !== undefined) onCommand(parsed);
      }
    });
  });
}

function parseMonitorLine(line: string): MonitoredCommand | undefined {
  const header = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] /.exec(line);
  if (header === null) return undefined;
  const args = [...line.slice(header[0].length).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'));
  return { source: header[1]!, args };
}
