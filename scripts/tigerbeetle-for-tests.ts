/**
 * A throwaway TigerBeetle cluster for one test run (scripts/test-all.sh starts it in the
 * background): starts it with test/support/tigerbeetle.ts, prints `KEY=value` lines on stdout
 * once a client's request is answered, then runs until SIGTERM, SIGINT or SIGHUP, when it stops
 * the replicas and removes their data.
 *
 *   node --import tsx scripts/tigerbeetle-for-tests.ts [--replicas 1|3]
 *
 * stdout: `TB_VERSION=0.16.48`, `TB_CLUSTER_ID=0`, `TB_ADDRESS=127.0.0.1:NNNN[,…]`, `TB_START_MS=N`.
 * Exit status: 0 after a signal, 1 when the cluster failed to start or a replica died (its log's
 * tail on stderr), 3 when there is no binary (TB_BIN unset and no ../shared/tigerbeetle/tigerbeetle).
 *
 * Run it with `node --import tsx`, not `npx tsx`: then the pid the shell holds is this process,
 * which gets the shell's SIGTERM itself. If the shell dies without sending one, the parent-pid
 * watch below stops the cluster anyway.
 */
import { parseArgs } from 'node:util';
import { startTigerBeetle, type TigerBeetleCluster, tigerBeetleBinary, tigerBeetleVersion } from '../test/support/tigerbeetle.js';

/** How often the replicas' and the parent's liveness is checked. */
const watchIntervalMs = 1_000;
const exitNoBinary = 3;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { replicas: { type: 'string', default: '1' } }, strict: true });
  const replicas = Number(values.replicas);
  if (replicas !== 1 && replicas !== 3) throw new RangeError(`--replicas must be 1 or 3, got ${values.replicas}`);
  const binary = tigerBeetleBinary();
  if (binary === undefined) {
    console.error('no TigerBeetle binary: TB_BIN is unset and ../shared/tigerbeetle/tigerbeetle (beside the repository) is missing');
    return exitNoBinary;
  }
  const startedAt = Date.now();
  const cluster = await startTigerBeetle({ replicas, binary });
  console.log(`TB_VERSION=${tigerBeetleVersion(binary)}`);
  console.log(`TB_CLUSTER_ID=${cluster.clusterId}`);
  console.log(`TB_ADDRESS=${cluster.addresses.join(',')}`);
  console.log(`TB_START_MS=${Date.now() - startedAt}`);
  return untilStopped(cluster, replicas);
}

/** Resolves with the exit status once a signal came (0), a replica died (1) or the parent went away (0). */
function untilStopped(cluster: TigerBeetleCluster, replicas: number): Promise<number> {
  const parent = process.ppid;
  return new Promise((resolve) => {
    let finished = false;
    const finish = (status: number, why: string) => {
      if (finished) return; // a second signal while stopping: keep stopping (no default death)
      finished = true;
      clearInterval(watch);
      console.error(`tigerbeetle-for-tests: ${why}; stopping the cluster and removing its data`);
      cluster.stop().then(
        () => resolve(status),
        (error: unknown) => (console.error(error), resolve(1)),
      );
    };
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => finish(0, signal));
    const watch = setInterval(() => {
      const dead = Array.from({ length: replicas }, (_, i) => i).find((i) => cluster.replicaPid(i) === undefined);
      if (dead !== undefined) finish(1, `replica ${dead} exited:\n${cluster.logTail(dead)}`);
      else if (process.ppid !== parent) finish(0, `the parent process ${parent} went away`);
    }, watchIntervalMs);
  });
}

main().then(
  (status) => process.exit(status),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
