import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { quietPort } from '../../support/ports.js';
import { ManagedProcess } from './processes.js';

/**
 * A redis-server that keeps its data like a production one: append-only file, fsync on every
 * write (`appendfsync always`), in `<workDir>/redis`. Killed or stopped and started again on the
 * same port and directory, it comes back with everything it acknowledged — so an outage is an
 * outage, not a data wipe (test/support/redis.ts restarts an empty server; that is a different
 * failure). Bound to 127.0.0.1.
 */
export interface DurableRedis {
  readonly url: string;
  readonly port: number;
  readonly process: ManagedProcess;
}

export function redisBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const binary = found.stdout.trim();
  if (found.status !== 0 || binary === '') throw new Error('redis-server is not installed: apt-get update && apt-get install -y redis-server');
  return binary;
}

export async function startDurableRedis(workDir: string, logDir: string): Promise<DurableRedis> {
  // Below the kernel's source-port range (test/support/ports.ts): the outages scenario kills it
  // and restarts it on this port.
  const port = await quietPort();
  const dir = join(workDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
  ];
  const process = new ManagedProcess({ name: 'redis', command: redisBinary(), args, env: {}, logDir, readyPattern: /Ready to accept connections/ });
  await process.start();
  return { url: `redis://127.0.0.1:${port}`, port, process };
}
