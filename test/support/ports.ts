import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';

/**
 * Ports for servers the tests start as other processes (redis-server, TigerBeetle), drawn below
 * the range the kernel hands out as connections' source ports. A port the kernel handed out to
 * a listen on 0 and that was closed again (`services/net.ts` `freePort`) can be handed out again,
 * as some connection's source port, before the child process binds it — and while a test has a
 * server stopped to restart it on the same port. CI saw that once (2026-12-06: a Redis Cluster
 * node's bus port). Below the range only another listener can take a port: each is checked with
 * a listen of our own, and the helpers draw from ranges of their own.
 *
 * | range | for |
 * |---|---|
 * | `clusterPorts` 12 000–16 000, their bus ports 22 000–26 000 | Redis Cluster nodes (`redis-cluster.ts`) |
 * | `serverPorts` 26 500 to the source-port range's start (32 767 with Linux's default) | single servers: `startRedis`, TigerBeetle replicas |
 */
export const clusterPorts = { low: 12_000, high: 16_000 } as const;
export const serverPortsLow = 26_500;
/** Random ports tried before giving up (each checked with a listen). */
export const quietPortAttemptsMax = 50;
/** Ports a range may hold: above the privileged ones (root-only below 1024), up to the last. */
const unprivilegedPortMin = 1024;
const portMax = 65_535;

const linuxEphemeralPortLow = 32_768;

/** The lowest port the kernel hands out as a source port (Linux's default when /proc says nothing). */
export function ephemeralPortLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : linuxEphemeralPortLow;
  } catch {
    return linuxEphemeralPortLow;
  }
}

/** Whether a listen on `port` succeeds now (closed again at once). */
export function canListen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/**
 * A port in `low..high` (random) that can be listened on now and is not in `avoid`, and for which
 * `alsoFree` (e.g. a cluster node's bus port) holds; `quietPortAttemptsMax` tries.
 */
export async function quietPort(
  options: { low?: number; high?: number; host?: string; avoid?: ReadonlySet<number>; alsoFree?: (port: number) => Promise<boolean> } = {},
): Promise<number> {
  const low = options.low ?? serverPortsLow;
  const high = options.high ?? ephemeralPortLow() - 1;
  if (!(Number.isInteger(low) && Number.isInteger(high) && low >= unprivilegedPortMin && low <= high && high <= portMax)) {
    throw new RangeError(`no ports to draw from in ${low}..${high}`);
  }
  for (let attempt = 0; attempt < quietPortAttemptsMax; attempt++) {
    const port = low + randomInt(high - low + 1);
    if (options.avoid?.has(port)) continue;
    if (!(await canListen(port, options.host))) continue;
    if (options.alsoFree !== undefined && !(await options.alsoFree(port))) continue;
    return port;
  }
  throw new Error(`no free port in ${low}..${high} in ${quietPortAttemptsMax} attempts`);
}
