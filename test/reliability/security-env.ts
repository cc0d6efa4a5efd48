import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { InboxNotifier } from '../../authz/notifier.js';
import type { PaymentLimits } from '../../authz/payments.js';
import { type App, createApp } from '../../services/app.js';
import { type Config, loadConfig } from '../../services/config.js';
import { type Servers, startServers } from '../../services/server.js';
import { type RedisServer, startRedis } from '../support/redis.js';
import { RpcClients } from './security-rpc.js';

/**
 * A real authz process for the reliability scenarios (shared by fuzz.ts and security.ts): the
 * production wiring (`createApp` + `startServers`, both ports on 127.0.0.1:0), its pino JSON log
 * written line by line to `<logDir>/<name>.log` (ISO timestamps, so a log holds no run of digits
 * a code could hide in by chance), a private redis-server when asked, and the embedded ledger
 * journaled under `<workDir>/<name>/data` when asked (the secret scan reads it).
 */

export interface ReliabilityEnvOptions {
  name: string;
  workDir: string;
  logDir: string;
  store: 'memory' | 'redis';
  /** Journal the embedded ledger (and keep master.key, admin.key) under the data dir. */
  journal: boolean;
  limits?: Partial<PaymentLimits>;
  now?: () => number;
  /** Config overrides (the telco bridge's address and key). */
  config?: Partial<Config>;
}

export interface ReliabilityEnv {
  readonly app: App;
  readonly adminKey: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly redis: RedisServer | undefined;
  readonly grpcPort: number;
  readonly connectPort: number;
  /** Codes delivered when no telco bridge is configured. */
  readonly inbox: InboxNotifier;
  readonly rpc: RpcClients;
  /** Logger for the scenario's own lines into the same directory (`<logDir>/<name>-scenario.log`). */
  readonly logger: Logger;
  close(): Promise<void>;
}

/** A pino logger writing JSON lines to `file`; `flush()` before reading the file. */
export function fileLogger(file: string, service: string): { logger: Logger; flush(): void } {
  const destination = pino.destination({ dest: file, sync: false, mkdir: true });
  const logger = pino({ level: 'debug', base: { service }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return { logger, flush: () => destination.flushSync() };
}

export async function startReliabilityEnv(options: ReliabilityEnvOptions): Promise<ReliabilityEnv> {
  const redis = options.store === 'redis' ? await startRedis() : undefined;
  const dataDir = join(options.workDir, options.name, 'data');
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(options.logDir, `${options.name}.log`);
  const log = fileLogger(logFile, `countersign-authz-${options.name}`);
  const scenarioLog = fileLogger(join(options.logDir, `${options.name}-scenario.log`), `reliability-${options.name}`);
  const inbox = new InboxNotifier();
  const adminKey = `cs_admin_${randomBytes(18).toString('base64url')}`;
  const config: Config = { ...loadConfig({}), dataDir, redisUrl: redis?.url, masterKey: randomBytes(32).toString('base64'), adminKey, ...options.config };
  const app = await createApp({
    config,
    memoryLedger: !options.journal,
    memoryDirectory: options.store === 'memory',
    memoryStore: options.store === 'memory',
    ...(config.telcoBridge === undefined ? { notifier: inbox } : {}),
    logger: log.logger,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const servers: Servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0, tls: null });
  const rpc = new RpcClients(`127.0.0.1:${servers.grpcPort}`, `http://127.0.0.1:${servers.connectPort}`);
  let closed = false;
  return {
    app,
    adminKey,
    dataDir,
    logFile,
    redis,
    grpcPort: servers.grpcPort,
    connectPort: servers.connectPort,
    inbox,
    rpc,
    logger: scenarioLog.logger,
    async close() {
      if (closed) return;
      closed = true;
      rpc.close();
      await servers.close();
      await app.close();
      await redis?.stop().catch(() => undefined);
      log.flush();
      scenarioLog.flush();
    },
  };
}
