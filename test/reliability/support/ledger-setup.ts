import { readFileSync } from 'node:fs';
import { startTigerBeetle, type TigerBeetleCluster } from '../../support/tigerbeetle.js';

/**
 * The ledger a crash scenario runs on: embedded (in authz's data directory), a TigerBeetle cluster
 * someone else runs (TB_ADDRESS), or one the scenario starts for itself (test/support/tigerbeetle.ts).
 * A TigerBeetle cluster is watched while the scenario runs: if it goes away by itself (a replica
 * that exits unasked; for a given cluster on loopback, no socket listening on any of its ports
 * for `unreachableMsMax`), the run is void — countersign cannot be judged without its ledger —
 * and `lost` says why, so the scenario stops at once with that reason instead of retrying into
 * its deadline. A replica of the scenario's own cluster that exits unasked is restarted on its
 * data file instead (TigerBeetle recovers from it, as after the chaos's own kills) and the exit is
 * kept in `incidents` with its log's end; only a failed restart loses the ledger. The watch never connects: this TigerBeetle build has been seen to panic when a
 * connection closes ("reached unreachable code" right after "orderly shutdown"), and a probe
 * connecting every second made that much likelier.
 */
export interface LedgerSetup {
  /** TigerBeetle replica addresses; empty: the embedded ledger. */
  addresses: string[];
  clusterId: string | undefined;
  /** The cluster when the scenario started it (its replicas can be killed and restarted). */
  cluster: TigerBeetleCluster | undefined;
  /** Why the ledger went away by itself (with a replica's log end when known); empty while it is there. */
  lost: string[];
  /** Replicas of the scenario's own cluster that exited unasked and were restarted: when, and why as far as their logs say. */
  incidents: { atMs: number; what: string }[];
  /** The scenario is killing replica i (true) or has restarted it (false): its exit is not a loss. */
  expectDown(index: number, down: boolean): void;
  close(): Promise<void>;
}

/** How often a cluster is checked, milliseconds. */
export const ledgerWatchMs = 1_000;
/** A given cluster none of whose ports has a listening socket this long is gone, milliseconds. */
export const unreachableMsMax = 10_000;

const voidRun = 'not a countersign violation: the run is void';

export function embeddedLedger(): LedgerSetup {
  return { addresses: [], clusterId: undefined, cluster: undefined, lost: [], incidents: [], expectDown: () => undefined, close: async () => undefined };
}

/** The addresses in TB_ADDRESS (host:port, comma-separated); empty when unset. */
export function givenAddresses(env: NodeJS.ProcessEnv): string[] {
  return (env.TB_ADDRESS ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
}

/** TCP ports with a listening socket on this machine (/proc/net/tcp and tcp6; empty where there is no /proc). */
function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    // `sl local_address rem_address st …`: local `HEXADDR:HEXPORT`, state 0A = LISTEN.
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '0A' && local !== undefined) ports.add(parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  return ports;
}

const isLoopback = (address: string) => /^(127\.|localhost:|\[::1\]:)/.test(address);

/**
 * The cluster at TB_ADDRESS, watched (when all its addresses are on this machine's loopback) by
 * its listening sockets; undefined when TB_ADDRESS is unset.
 */
export function givenCluster(env: NodeJS.ProcessEnv): LedgerSetup | undefined {
  const addresses = givenAddresses(env);
  if (addresses.length === 0) return undefined;
  const lost: string[] = [];
  const ports = addresses.map((a) => Number(a.slice(a.lastIndexOf(':') + 1)));
  let listeningAtMs = Date.now();
  const watch = setInterval(() => {
    if (lost.length > 0 || !addresses.every(isLoopback)) return;
    const listening = listeningPorts();
    if (listening.size === 0 || ports.some((p) => listening.has(p))) listeningAtMs = Date.now();
    else if (Date.now() - listeningAtMs > unreachableMsMax)
      lost.push(
        `TigerBeetle at ${addresses.join(',')} has had no listening socket for ${unreachableMsMax / 1000} s since ${new Date(listeningAtMs).toISOString()}: its server went away (see its log; ${voidRun})`,
      );
  }, ledgerWatchMs);
  const clusterId = env.TB_CLUSTER_ID === undefined || env.TB_CLUSTER_ID === '' ? undefined : env.TB_CLUSTER_ID;
  return { addresses, clusterId, cluster: undefined, lost, incidents: [], expectDown: () => undefined, close: async () => clearInterval(watch) };
}

/** The last lines of a replica's log that say why it stopped (its panic), at most this many. */
const panicLinesMax = 3;
/** Unasked exits restarted at most: a replica that keeps exiting (a crash loop) loses the ledger. */
export const unaskedRestartsMax = 3;

/**
 * A cluster of the scenario's own, watched: a replica that exits unasked is restarted on its data
 * file and the exit kept as an incident; a replica that cannot be restarted loses the ledger.
 */
export async function privateCluster(replicas: 1 | 3, log: (line: string) => void): Promise<LedgerSetup> {
  const cluster = await startTigerBeetle({ replicas });
  const down = new Set<number>();
  const lost: string[] = [];
  const incidents: LedgerSetup['incidents'] = [];
  const recover = async (i: number): Promise<void> => {
    const tail = cluster.logTail(i).split('\n');
    if (incidents.length >= unaskedRestartsMax) {
      lost.push(
        `TigerBeetle replica ${i} of the scenario's own cluster exited unasked ${incidents.length + 1} times (a crash loop; ${voidRun}); its log ends:\n${tail.join('\n')}`,
      );
      log(`${new Date().toISOString()} TigerBeetle replica ${i} exited unasked again: not restarted (${unaskedRestartsMax} restarts already)`);
      return;
    }
    const what = `TigerBeetle replica ${i} exited unasked and was restarted on its data file; its log ended: ${tail.slice(-panicLinesMax).join(' / ')}`;
    incidents.push({ atMs: Date.now(), what });
    log(`${new Date().toISOString()} ${what}`);
    try {
      await cluster.restartReplica(i);
      down.delete(i);
      log(`${new Date().toISOString()} TigerBeetle replica ${i}: restarted`);
    } catch (error) {
      lost.push(`TigerBeetle replica ${i} of the scenario's own cluster exited unasked and did not restart (${voidRun}): ${(error as Error).message}`);
      log(`${new Date().toISOString()} TigerBeetle replica ${i}: restart failed: ${(error as Error).message}`);
    }
  };
  const watch = setInterval(() => {
    for (let i = 0; i < replicas; i++) {
      if (down.has(i) || lost.length > 0 || cluster.replicaPid(i) !== undefined) continue;
      down.add(i);
      void recover(i);
    }
  }, ledgerWatchMs);
  return {
    addresses: cluster.addresses,
    clusterId: String(cluster.clusterId),
    cluster,
    lost,
    incidents,
    expectDown: (i, isDown) => void (isDown ? down.add(i) : down.delete(i)),
    close: async () => {
      clearInterval(watch);
      await cluster.stop();
    },
  };
}
