import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createClient } from 'tigerbeetle-node';
import { quietPort } from './ports.js';

/**
 * A real TigerBeetle cluster for tests: 1 or 3 replicas of the server binary (see
 * `tigerBeetleBinary`) on free loopback ports, data files and logs in a temp directory.
 * `startTigerBeetle` resolves once a client's request is answered; `stop()` kills the replicas
 * and removes the directory (about 1.1 GB of data file per replica); both happen on process exit
 * too. Cluster id 0 (TigerBeetle reserves it for tests).
 *
 * Measured on a 2-core, 24 GB machine with TigerBeetle 0.16.48 and `tigerBeetleCacheGrid`:
 * format ≈ 3 s per replica (in parallel), then ≈ 5–8 s of replica start (most of it allocating
 * its memory), so 8–11 s until one replica answers on an idle machine and up to 30 s with the
 * cores loaded several times over; 3 replicas 22 s; a restart after SIGKILL 6–9 s (idle) to
 * 23 s. Resident memory per replica: 2077 MiB with the 32MiB grid cache (2108 MiB with 64MiB,
 * 2172 MiB with 128MiB; ../shared/tigerbeetle/README.md gives ≈ 2.3 GB for 256MiB): fixed
 * allocations dominate ("Allocated 2071MiB during replica init", 128MiB of it LSM manifests).
 */
export interface TigerBeetleCluster {
  /** `127.0.0.1:<port>` per replica; replica i is addresses[i] (clients need them in this order). */
  readonly addresses: string[];
  readonly clusterId: bigint;
  /** The last `tigerBeetleLogTailLines` lines replica i wrote (all its starts), for failure messages. */
  logTail(index: number): string;
  /** Replica i's process id while it runs. */
  replicaPid(index: number): number | undefined;
  /** SIGKILLs replica i (a crash) and waits for it to exit. */
  killReplica(index: number): Promise<void>;
  /**
   * Starts the killed replica i again on its data file and address; resolves once it logs that
   * it listens, which it does after opening and recovering its data file. A 1-replica cluster
   * serves from then on (a client reconnects by itself); in 3 replicas it catches up alone.
   */
  restartReplica(index: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Grid cache per replica. 32MiB is the smallest this binary accepts ("Grid cache must be greater
 * than 32MiB" below it); the tests' data is tiny, so a bigger cache only costs memory.
 */
export const tigerBeetleCacheGrid = '32MiB';
/** How long formatting one data file may take (measured ≈ 3 s). */
export const tigerBeetleFormatTimeoutMs = 30_000;
/**
 * How long started (or restarted) replicas have to listen and answer a request. Measured: 8–11 s
 * for one replica on an idle machine, up to 30 s with its 2 cores loaded about 5 times over.
 */
export const tigerBeetleReadyTimeoutMs = 90_000;
/** How long a replica has after SIGTERM before it is SIGKILLed. */
export const tigerBeetleStopTimeoutMs = 5_000;
/** Lines of a replica's log included in errors. */
export const tigerBeetleLogTailLines = 20;
/** How long `<binary> version` may take. */
const versionTimeoutMs = 10_000;
const listenPollIntervalMs = 100;
const host = '127.0.0.1';
const clusterId = 0n;

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The server binary: `TB_BIN` when set (an error if it is not an executable file: a mistyped
 * path must not turn into skipped tests), else `<repository root>/../shared/tigerbeetle/tigerbeetle`
 * when it is executable, else undefined (TigerBeetle tests skip).
 */
export function tigerBeetleBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const configured = env.TB_BIN;
  if (configured !== undefined && configured !== '') {
    if (!isExecutable(configured)) throw new Error(`TB_BIN=${configured} is not an executable file`);
    return path.resolve(configured);
  }
  const shared = path.join(repositoryRoot, '..', 'shared', 'tigerbeetle', 'tigerbeetle');
  return isExecutable(shared) ? shared : undefined;
}

/** The release `<binary> version` reports, e.g. `0.16.48`. */
export function tigerBeetleVersion(binary: string): string {
  const output = execFileSync(binary, ['version'], { encoding: 'utf8', timeout: versionTimeoutMs });
  const version = /TigerBeetle version (\d+\.\d+\.\d+)/.exec(output)?.[1];
  if (version === undefined) throw new Error(`${binary} version printed no version: ${output}`);
  return version;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

interface Replica {
  readonly index: number;
  readonly port: number;
  readonly file: string;
  readonly log: string;
  child: ChildProcess | undefined;
  exited: Promise<string>;
}

const running = new Set<ChildProcess>();
const directories = new Set<string>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of directories) fs.rmSync(dir, { recursive: true, force: true });
});

export async function startTigerBeetle(options: { replicas: 1 | 3; cacheGrid?: string; binary?: string }): Promise<TigerBeetleCluster> {
  const binary = options.binary ?? tigerBeetleBinary();
  if (binary === undefined) throw new Error('no TigerBeetle binary: set TB_BIN or provide ../shared/tigerbeetle/tigerbeetle beside the repository');
  if (options.replicas !== 1 && options.replicas !== 3) throw new RangeError(`replicas must be 1 or 3, got ${String(options.replicas)}`);
  const cacheGrid = options.cacheGrid ?? tigerBeetleCacheGrid;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cs-tigerbeetle-'));
  directories.add(dir);
  const replicas = await replicaSlots(dir, options.replicas);
  const addresses = replicas.map((r) => `${host}:${r.port}`);
  const startArgs = (r: Replica) => ['start', `--addresses=${addresses.join(',')}`, `--cache-grid=${cacheGrid}`, r.file];
  const at = (index: number): Replica => {
    const r = replicas[index];
    if (r === undefined) throw new RangeError(`replica index ${index} is not in 0..${replicas.length - 1}`);
    return r;
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(replicas.map(stopReplica));
      fs.rmSync(dir, { recursive: true, force: true });
      directories.delete(dir);
    })());

  try {
    await Promise.all(replicas.map((r) => format(binary, r, replicas.length)));
    const offsets = replicas.map(logSize);
    for (const r of replicas) spawnReplica(binary, r, startArgs(r));
    // Listening first: a client started earlier logs every refused connection to stderr.
    await Promise.all(replicas.map((r, i) => untilListening(r, offsets[i]!, 'starting')));
    await untilAnswered(addresses, replicas);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    addresses,
    clusterId,
    logTail: (index) => logTail(at(index)),
    replicaPid: (index) => at(index).child?.pid,
    killReplica: async (index) => {
      const r = at(index);
      r.child?.kill('SIGKILL');
      await r.exited;
    },
    restartReplica: async (index) => {
      const r = at(index);
      if (r.child !== undefined) throw new Error(`replica ${index} is running: killReplica(${index}) first`);
      if (stopping !== undefined) throw new Error('the cluster is stopped');
      const offset = logSize(r);
      spawnReplica(binary, r, startArgs(r));
      await untilListening(r, offset, 'restarting');
    },
    stop,
  };
}

/** One data file, log file and distinct free port per replica. */
async function replicaSlots(dir: string, count: number): Promise<Replica[]> {
  // Below the kernel's source-port range (ports.ts): a replica restarted on its port finds it
  // free, and no connection takes it between the check and the start (format comes between).
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await quietPort({ host, avoid: ports }));
  return [...ports].map((port, index) => ({
    index,
    port,
    file: path.join(dir, `${clusterId}_${index}.tigerbeetle`),
    log: path.join(dir, `replica-${index}.log`),
    child: undefined,
    exited: Promise.resolve('not started'),
  }));
}

function format(binary: string, r: Replica, replicaCount: number): Promise<void> {
  const args = ['format', `--cluster=${clusterId}`, `--replica=${r.index}`, `--replica-count=${replicaCount}`, r.file];
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: tigerBeetleFormatTimeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      fs.appendFileSync(r.log, `$ tigerbeetle ${args.join(' ')}\n${stdout}${stderr}`);
      if (error === null) return resolve();
      const why = error.killed ? `did not finish within ${tigerBeetleFormatTimeoutMs} ms` : `failed (${error.message.split('\n')[0]})`;
      reject(new Error(`tigerbeetle format of replica ${r.index} ${why}:\n${logTail(r)}`, { cause: error }));
    });
  });
}

/** Starts the replica with stdout and stderr appended to its log; `r.exited` settles when it exits. */
function spawnReplica(binary: string, r: Replica, args: string[]): void {
  fs.appendFileSync(r.log, `$ tigerbeetle ${args.join(' ')}\n`);
  const fd = fs.openSync(r.log, 'a');
  let child: ChildProcess;
  try {
    child = spawn(binary, args, { stdio: ['ignore', fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
  r.child = child;
  running.add(child);
  r.exited = new Promise((resolve) => {
    const done = (how: string) => {
      running.delete(child);
      if (r.child === child) r.child = undefined;
      resolve(how);
    };
    child.once('exit', (code, signal) => done(signal ?? `status ${code}`));
    child.once('error', (error) => done(error.message));
  });
}

async function stopReplica(r: Replica): Promise<void> {
  if (r.child === undefined) return;
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child?.kill('SIGKILL'), tigerBeetleStopTimeoutMs);
  await r.exited;
  clearTimeout(timer);
}

/** Until a client's `lookup_accounts` is answered; fails at once if a replica exits, or at the deadline. */
async function untilAnswered(addresses: string[], replicas: Replica[]): Promise<void> {
  const client = createClient({ cluster_id: clusterId, replica_addresses: [...addresses] });
  let timer: NodeJS.Timeout | undefined;
  try {
    const answered = client.lookupAccounts([1n]).then(() => undefined);
    answered.catch(() => undefined); // rejected by destroy() below when something else won the race
    const exited = replicas.map((r) => r.exited.then((how) => Promise.reject(new Error(`replica ${r.index} exited (${how}) while starting:\n${logTail(r)}`))));
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the cluster did not answer a request within ${tigerBeetleReadyTimeoutMs} ms:\n${replicas.map(logTail).join('\n')}`)),
        tigerBeetleReadyTimeoutMs,
      );
    });
    await Promise.race([answered, late, ...exited]);
  } finally {
    clearTimeout(timer);
    client.destroy();
  }
}

/**
 * Until the replica logs that it listens on its address (after recovering its data file), read
 * from `fromOffset` of its log; fails if it exits, or at the deadline. Not a TCP probe: a killed
 * replica's listening socket can outlive it briefly (its io_uring is torn down asynchronously)
 * and a new one binds before it has opened its data file, so a connection proves nothing.
 */
async function untilListening(r: Replica, fromOffset: number, what: 'starting' | 'restarting'): Promise<void> {
  const listening = `: listening on ${host}:${r.port}`;
  let exitedHow: string | undefined;
  void r.exited.then((how) => (exitedHow = how));
  const deadline = Date.now() + tigerBeetleReadyTimeoutMs;
  while (!logSince(r, fromOffset).includes(listening)) {
    if (exitedHow !== undefined) throw new Error(`replica ${r.index} exited (${exitedHow}) while ${what}:\n${logTail(r)}`);
    if (Date.now() > deadline) throw new Error(`replica ${r.index} did not listen within ${tigerBeetleReadyTimeoutMs} ms:\n${logTail(r)}`);
    await sleep(listenPollIntervalMs);
  }
}

function logSize(r: Replica): number {
  return fs.statSync(r.log).size;
}

function logSince(r: Replica, offset: number): string {
  const fd = fs.openSync(r.log, 'r');
  try {
    const length = fs.fstatSync(fd).size - offset;
    if (length <= 0) return '';
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, offset);
    return buffer.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function logTail(r: Replica): string {
  let text = '';
  try {
    text = fs.readFileSync(r.log, 'utf8');
  } catch {
    return `(replica ${r.index}: no log)`;
  }
  const lines = text.trimEnd().split('\n').slice(-tigerBeetleLogTailLines);
  return lines.map((line) => `[replica ${r.index}] ${line}`).join('\n');
}
