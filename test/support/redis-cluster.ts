import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Redis } from 'ioredis';
import { clusterSlots } from '../../authz/store/redis/slot.js';
import { canListen, clusterPorts, ephemeralPortLow, quietPort } from './ports.js';
import { PortTakenError, type RedisServer, sleep, startRedis } from './redis.js';

/**
 * A real Redis Cluster for tests: `masters` private `redis-server`s in cluster mode on free
 * loopback ports (no replicas, no persistence), joined with `redis-cli --cluster create`, every
 * node agreeing that all 16384 slots are served before it resolves. `stop()` kills the nodes
 * and removes their directories; they are killed on process exit too (as `startRedis` does).
 *
 * Measured on a 2-core machine (5 runs): 2.1–3.2 s from the call to a ready 3-master cluster.
 * Starting the three servers takes about 0.1 s; the rest is `redis-cli --cluster create`, whose
 * "Waiting for the cluster to join" checks once a second, so it ends on a whole second or two.
 */
export interface RedisCluster {
  nodes: { host: string; port: number }[];
  /** `redis://127.0.0.1:<port>` per node, in `nodes` order. */
  urls: string[];
  stop(): Promise<void>;
}

/** A node's cluster bus listens on its client port plus this. */
export const clusterBusPortOffset = 10_000;
/** `redis-cli --cluster create` needs at least three masters. */
export const clusterMastersMin = 3;
export const clusterMastersMax = 16;
/** How long `redis-cli --cluster create` may take (it waits for the join itself). */
export const clusterCreateTimeoutMs = 20_000;
/** How long, after create, every node has to report `cluster_state:ok` with all slots served. */
export const clusterReadyTimeoutMs = 10_000;
/** Whole cluster starts tried when a node finds its port or bus port taken (ports: `ports.ts`). */
export const clusterStartAttemptsMax = 3;
const readyPollIntervalMs = 50;

const host = '127.0.0.1';

export async function startRedisCluster(options: { masters: number }): Promise<RedisCluster> {
  const { masters } = options;
  if (!Number.isInteger(masters) || masters < clusterMastersMin || masters > clusterMastersMax) {
    throw new RangeError(`masters must be an integer in ${clusterMastersMin}..${clusterMastersMax}, got ${masters}`);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(masters);
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt >= clusterStartAttemptsMax) throw error;
    }
  }
}

async function startOnce(masters: number): Promise<RedisCluster> {
  const ports = await clusterNodePorts(masters);
  const started = await Promise.allSettled(
    ports.map((port) => startRedis({ port, args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'] })),
  );
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((server: RedisServer) => server.stop()));
  };
  try {
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    await createCluster(ports);
    await waitUntilReady(ports);
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes: ports.map((port) => ({ host, port })), urls: ports.map((port) => `redis://${host}:${port}`), stop };
}

/**
 * `count` distinct client ports whose bus ports are free as well, both below the source-port
 * range (`ports.ts` `clusterPorts`): a port checked free can still be taken by another listener
 * before the node binds it, and the start then begins again on other ports.
 */
async function clusterNodePorts(count: number): Promise<number[]> {
  assert(clusterPorts.high + clusterBusPortOffset < ephemeralPortLow(), 'cluster bus ports must lie below the source-port range');
  const taken = new Set<number>();
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await quietPort({ ...clusterPorts, host, avoid: taken, alsoFree: busPortFree });
    taken.add(port);
    ports.push(port);
  }
  return ports;
}

/** Whether the bus port of a node on `port` can be listened on now. */
function busPortFree(port: number): Promise<boolean> {
  return canListen(port + clusterBusPortOffset, host);
}

function createCluster(ports: number[]): Promise<void> {
  const args = ['--cluster', 'create', ...ports.map((port) => `${host}:${port}`), '--cluster-replicas', '0', '--cluster-yes'];
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: clusterCreateTimeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      // redis-cli reports some failures ("[ERR] ...") with exit status 0.
      if (error === null && !/\[ERR\]/.test(stdout)) return resolve();
      const why = error?.killed === true ? `did not finish within ${clusterCreateTimeoutMs} ms` : 'failed';
      reject(new Error(`redis-cli ${args.join(' ')} ${why}:\n${stdout}${stderr}`.trimEnd(), { cause: error ?? undefined }));
    });
  });
}

/** Until every node reports the cluster ok, all slots served and every node known, or the deadline. */
async function waitUntilReady(ports: number[]): Promise<void> {
  const clients = ports.map((port) => new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: true }));
  try {
    const deadline = Date.now() + clusterReadyTimeoutMs;
    let last: string[] = [];
    for (;;) {
      last = await Promise.all(clients.map((client) => client.call('CLUSTER', 'INFO').then(String, (e: unknown) => `error: ${String(e)}`)));
      if (last.every((info) => clusterReady(info, ports.length))) return;
      if (Date.now() > deadline) {
        const states = last.map(
          (info, i) =>
            `${host}:${ports[i]}: ${info
              .split(/\r?\n/)
              .filter((l) => /^cluster_(state|slots_ok|known_nodes)|^error/.test(l))
              .join(' ')}`,
        );
        throw new Error(`the cluster was not ready within ${clusterReadyTimeoutMs} ms:\n${states.join('\n')}`);
      }
      await sleep(readyPollIntervalMs);
    }
  } finally {
    clients.forEach((client) => client.disconnect());
  }
}

function clusterReady(info: string, masters: number): boolean {
  const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
  return field('cluster_state') === 'ok' && field('cluster_slots_ok') === String(clusterSlots) && field('cluster_known_nodes') === String(masters);
}
