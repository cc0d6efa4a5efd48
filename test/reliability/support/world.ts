import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Handset } from '../../../telco-bridge/simulator/handset.js';
import { type Smsc, startSmsc } from '../../../telco-bridge/simulator/smsc.js';
import { startVoiceProvider, type VoiceProvider } from '../../../telco-bridge/simulator/voice-provider.js';
import { quietPort } from '../../support/ports.js';
import { type Clients, Endpoint } from './clients.js';
import { type DurableRedis, startDurableRedis } from './durable-redis.js';
import { countersignCommand, ManagedProcess } from './processes.js';

/**
 * One deployment of countersign as separate processes on loopback: a durable redis-server (or
 * none: the embedded default), an authz process (`countersign serve [--workers N]`, payments in
 * Redis or journaled in its data directory, the ledger embedded and journaled there or in
 * TigerBeetle) and a telco bridge process (`countersign telco-bridge`), with a simulated SMSC
 * (SMPP 3.4) and voice provider (TwiML) in this process standing in for the phone network. Ports
 * are fixed for the world's lifetime so a killed process restarts where its callers expect it.
 */

/** How long a restarted bridge has to bind to the SMSC, milliseconds. */
export const smppBindWaitMs = 15_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface WorldOptions {
  name: string;
  workDir: string;
  logDir: string;
  secrets: Set<string>;
  /** TigerBeetle replica addresses; empty: the embedded ledger in `<workDir>/<name>/authz-data`. */
  tbAddresses?: string[];
  /** More COUNTERSIGN_* settings for authz (plugins, ledger deadline). */
  authzEnv?: Record<string, string>;
  /**
   * Where authz keeps payments, idempotency records and the directory: 'redis' (the world's
   * durable redis-server, the default) or 'embedded' (no Redis at all: the journaled payment store
   * and the file directory in `<workDir>/<name>/authz-data`, as `countersign serve` runs with no configuration).
   */
  store?: 'redis' | 'embedded';
  /** Arguments after `serve` (e.g. `--workers 2`). */
  serveArgs?: string[];
}

export interface World {
  readonly name: string;
  /**
   * Random per world: part of the keys whose effects live in the ledger (deposits), so a run
   * against a TigerBeetle cluster an earlier run used (TB_ADDRESS) never replays that run's keys.
   */
  readonly runId: string;
  /** Undefined when the world runs on the embedded store (no Redis). */
  readonly redis: DurableRedis | undefined;
  readonly smsc: Smsc;
  readonly voice: VoiceProvider;
  readonly authz: ManagedProcess;
  readonly bridge: ManagedProcess;
  readonly grpcPort: number;
  readonly adminKey: string;
  readonly endpoint: Endpoint;
  readonly admin: Clients;
  /** The environment authz runs with (for `countersign reconcile` on the same data). */
  readonly authzEnv: Record<string, string>;
  clients(key: string): Clients;
  handset(phone: string): Handset;
  /** Starts the bridge and waits until it is bound to the SMSC. */
  startBridge(): Promise<void>;
  close(): Promise<void>;
}

export async function startWorld(options: WorldOptions): Promise<World> {
  const dir = join(options.workDir, options.name);
  const logDir = join(options.logDir, options.name);
  mkdirSync(dir, { recursive: true });
  const keys = {
    admin: `cs_admin_${randomBytes(24).toString('base64url')}`,
    master: randomBytes(32).toString('base64'),
    telco: `cs_telco_${randomBytes(24).toString('base64url')}`,
    smpp: randomBytes(8).toString('hex'),
    voice: randomBytes(16).toString('hex'),
  };
  Object.values(keys).forEach((k) => options.secrets.add(k));
  const smsc = await startSmsc({ systemId: 'countersign', password: keys.smpp });
  const voice = await startVoiceProvider({ accountSid: 'ACreliability', authToken: keys.voice });
  const redis = options.store === 'embedded' ? undefined : await startDurableRedis(dir, logDir);
  // Below the kernel's source-port range (test/support/ports.ts): the scenarios kill these
  // processes and restart them on the same ports.
  const taken = new Set<number>();
  const nextPort = async (): Promise<number> => {
    const port = await quietPort({ avoid: taken });
    taken.add(port);
    return port;
  };
  const [grpcPort, connectPort, telcoPort, webhookPort] = [await nextPort(), await nextPort(), await nextPort(), await nextPort()];
  const authzEnv: Record<string, string> = {
    COUNTERSIGN_HOST: '127.0.0.1',
    ...(redis === undefined ? {} : { COUNTERSIGN_REDIS_URL: redis.url }),
    COUNTERSIGN_DATA_DIR: join(dir, 'authz-data'),
    COUNTERSIGN_GRPC_PORT: String(grpcPort),
    COUNTERSIGN_CONNECT_PORT: String(connectPort),
    // The payer web terminal, when this version has one: any free port, never a fixed one two worlds would share.
    COUNTERSIGN_WEB_PORT: '0',
    COUNTERSIGN_ADMIN_KEY: keys.admin,
    COUNTERSIGN_MASTER_KEY: keys.master,
    COUNTERSIGN_TELCO_BRIDGE: `127.0.0.1:${telcoPort}`,
    COUNTERSIGN_TELCO_KEY: keys.telco,
    COUNTERSIGN_LOG_LEVEL: 'debug',
    ...(options.tbAddresses !== undefined && options.tbAddresses.length > 0 ? { COUNTERSIGN_TB_ADDRESSES: options.tbAddresses.join(',') } : {}),
    ...options.authzEnv,
  };
  const serve = countersignCommand(['serve', ...(options.serveArgs ?? [])]);
  const authz = new ManagedProcess({ name: 'authz', ...serve, env: authzEnv, logDir, readyPattern: /countersign serving/ });
  const bridgeCommand = countersignCommand(['telco-bridge']);
  const bridge = new ManagedProcess({
    name: 'telco-bridge',
    ...bridgeCommand,
    env: {
      COUNTERSIGN_HOST: '127.0.0.1',
      COUNTERSIGN_AUTHZ_ADDRESS: `127.0.0.1:${grpcPort}`,
      COUNTERSIGN_TELCO_KEY: keys.telco,
      COUNTERSIGN_TELCO_PORT: String(telcoPort),
      COUNTERSIGN_WEBHOOK_PORT: String(webhookPort),
      COUNTERSIGN_SMPP: `smpp://countersign:${keys.smpp}@127.0.0.1:${smsc.port}?source=countersign`,
      COUNTERSIGN_VOICE: `http://ACreliability:${keys.voice}@${new URL(voice.baseUrl).host}?from=%2B15550001000`,
      COUNTERSIGN_LOG_LEVEL: 'debug',
    },
    logDir,
    readyPattern: /countersign telco-bridge/,
  });
  const startBridge = async (): Promise<void> => {
    await bridge.start();
    const deadline = Date.now() + smppBindWaitMs;
    while (smsc.boundSessions() === 0) {
      if (Date.now() > deadline) throw new Error(`telco bridge did not bind to the SMSC within ${smppBindWaitMs} ms`);
      await sleep(20);
    }
  };
  await Promise.all([authz.start(), startBridge()]);
  const endpoint = new Endpoint(`http://127.0.0.1:${grpcPort}`);
  return {
    name: options.name,
    runId: randomBytes(6).toString('hex'),
    redis,
    smsc,
    voice,
    authz,
    bridge,
    grpcPort,
    adminKey: keys.admin,
    endpoint,
    admin: endpoint.clients(keys.admin),
    authzEnv,
    clients: (key) => endpoint.clients(key),
    handset: (phone) => new Handset(phone, smsc, voice),
    startBridge,
    async close() {
      endpoint.close();
      await Promise.allSettled([bridge.close(), authz.close()]);
      await redis?.process.close();
      await Promise.allSettled([smsc.close(), voice.close()]);
    },
  };
}
