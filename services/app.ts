import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import StatsD, { type StatsD as StatsDClient } from 'hot-shots';
import { type Logger, pino } from 'pino';
import { BuiltInPolicy } from '../authz/authorizer.js';
import { loadOrCreateMasterKey, masterKeyFromBase64 } from '../authz/codes/secret-box.js';
import { CachedDirectory } from '../authz/directory-cache.js';
import { EnrollmentService, ensurePlatformAccounts } from '../authz/enrollment.js';
import { PaymentEvents } from '../authz/events.js';
import { ConsoleNotifier, type Notifier } from '../authz/notifier.js';
import { PaymentLedger } from '../authz/payment-ledger.js';
import { defaultPaymentLimits, type PaymentLimits, PaymentsService } from '../authz/payments.js';
import type { Directory } from '../authz/ports.js';
import { CoalescingStore } from '../authz/store/coalescing-store.js';
import { FileDirectory } from '../authz/store/file-directory.js';
import { JournalPaymentStore } from '../authz/store/journal/journal-store.js';
import { MemoryPaymentStore } from '../authz/store/memory/memory-store.js';
import { MemoryDirectory } from '../authz/store/memory-directory.js';
import type { PaymentStore } from '../authz/store/port.js';
import { openRedisCluster } from '../authz/store/redis/connect.js';
import { RedisPaymentStore } from '../authz/store/redis/redis-store.js';
import { openRedis } from '../authz/store/redis-client.js';
import { RedisDirectory } from '../authz/store/redis-directory.js';
import { TelcoBridgeService } from '../gen/countersign/v1/telco_pb.js';
import { CoalescingLedger } from '../ledger/coalescing.js';
import { makePrivateDir } from '../ledger/embedded/data-dir.js';
import { EmbeddedLedger } from '../ledger/embedded/engine.js';
import type { Ledger } from '../ledger/port.js';
import { openAuthorizerPlugins } from './authorizers/plugins.js';
import { GrpcBankGateway } from './bank/bank-client.js';
import { codeKits, credentialHash } from './code-kit.js';
import { type Config, ConfigError, type TlsFiles } from './config.js';
import { openLedger } from './ledger.js';
import { paymentOutcome, timed } from './metrics.js';
import type { Principal } from './rpc/interceptors.js';
import { TelcoNotifier, telcoNotifierDefaults } from './telco-notifier.js';

export interface AppOptions {
  config: Config;
  /** Keep the embedded ledger in memory (tests, `demo`) instead of journaling it under dataDir. */
  memoryLedger?: boolean;
  /** Keep the directory in memory instead of <dataDir>/directory.json. */
  memoryDirectory?: boolean;
  /** Keep payments, idempotency records and counters in memory instead of journaling them under <dataDir>/payments (tests, bench, demo). */
  memoryStore?: boolean;
  notifier?: Notifier;
  limits?: Partial<PaymentLimits>;
  logger?: Logger;
  now?: () => number;
}

/** Everything a countersign authz process runs, wired once. */
export interface App {
  readonly payments: PaymentsService;
  readonly enrollment: EnrollmentService;
  readonly directory: Directory;
  /** The payment store, its steps coalesced across concurrent calls. */
  readonly store: CoalescingStore;
  readonly ledger: Ledger;
  readonly events: PaymentEvents;
  readonly logger: Logger;
  /** The StatsD client when COUNTERSIGN_STATSD is set (the RPC interceptor uses it too). */
  readonly statsd: StatsDClient | undefined;
  /** Sums per ledger, when the engine can tell (embedded); TigerBeetle balances by construction. */
  readonly totals: (() => ReturnType<EmbeddedLedger['totals']>) | undefined;
  readonly adminKey: string;
  /** The gRPC port's TLS files from the configuration the app was created with (Config.tls). */
  readonly tls: TlsFiles | undefined;
  /** Where the stores and the ledger live, for the start-up banner. */
  readonly describe: string[];
  resolvePrincipal(apiKey: string): Promise<Principal | undefined>;
  close(): Promise<void>;
}

/** A StatsD client for `host:port` (COUNTERSIGN_STATSD), metric names prefixed `countersign.`. */
function statsdClient(config: Config, logger: Logger): StatsDClient | undefined {
  if (config.statsd === undefined) return undefined;
  const [host, port] = config.statsd.split(':');
  return new StatsD({
    host: host || '127.0.0.1',
    port: Number(port || 8125),
    prefix: 'countersign.',
    errorHandler: (err) => logger.warn({ err }, 'statsd send failed'),
  });
}

/** Delivery through a separate telco-bridge process (its gRPC API, authenticated with the shared telco key). */
function telcoNotifier(config: Config, logger: Logger): TelcoNotifier {
  const transport = createGrpcTransport({
    baseUrl: `http://${config.telcoBridge}`,
    interceptors: [(next) => (req) => (req.header.set('authorization', `Bearer ${config.telcoKey}`), next(req))],
  });
  return new TelcoNotifier(createClient(TelcoBridgeService, transport), { ...telcoNotifierDefaults, logger });
}

/**
 * The data directory holds keys, the directory of payers and, on embedded defaults, every payment
 * and transfer: owner-only like the ledger's own (ledger/embedded/data-dir.ts `makePrivateDir`),
 * README "Configuration".
 */
export function privateDataDir(dataDir: string): void {
  try {
    makePrivateDir(dataDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    throw new ConfigError(
      `the data directory ${dataDir} belongs to another user: countersign keeps keys and payments there and makes it owner-only (0700); set COUNTERSIGN_DATA_DIR to a directory of this user`,
    );
  }
}

/**
 * The key files a process needs, created once when the configuration does not name the keys:
 * `serve --workers` makes them in the primary before forking, so no two workers race to create them.
 */
export function prepareKeys(config: Config): void {
  if (config.masterKey === undefined) privateDataDir(config.dataDir), loadOrCreateMasterKey(join(config.dataDir, 'master.key'));
  adminKeyOf(config);
}

/** The operator key: from config, or generated once into <dataDir>/admin.key with mode 0600. */
function adminKeyOf(config: Config): string {
  if (config.adminKey !== undefined) return config.adminKey;
  const path = join(config.dataDir, 'admin.key');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  privateDataDir(config.dataDir);
  const key = `cs_admin_${randomBytes(24).toString('base64url')}`;
  writeFileSync(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return key;
}

/** The payment store and directory the configuration asks for: Redis, a Redis Cluster, or embedded (journaled, or memory by name). */
async function openStores(options: AppOptions, now: () => number): Promise<{ store: PaymentStore; directory: Directory; describe: string }> {
  const { config } = options;
  if (config.redisCluster !== undefined) {
    const cluster = await openRedisCluster({ clusterNodes: config.redisCluster });
    const nodes = config.redisCluster.map((n) => `${n.host}:${n.port}`).join(',');
    return {
      store: new RedisPaymentStore(cluster, { ownsClient: false }),
      directory: new RedisDirectory(cluster, { ownsClient: true }),
      describe: `Redis Cluster at ${nodes}`,
    };
  }
  if (config.redisUrl !== undefined) {
    // One connection for the store and the directory: ioredis pipelines concurrent commands on it.
    const redis = await openRedis({ url: config.redisUrl });
    return {
      store: new RedisPaymentStore(redis, { ownsClient: false }),
      directory: new RedisDirectory(redis, { ownsClient: true }),
      describe: `Redis at ${config.redisUrl.replace(/\/\/[^@]*@/, '//***@')}`,
    };
  }
  const directoryFile = join(config.dataDir, 'directory.json');
  if (options.memoryDirectory !== true || options.memoryStore !== true) privateDataDir(config.dataDir);
  const directory = options.memoryDirectory === true ? new MemoryDirectory() : await FileDirectory.open({ file: directoryFile });
  const store =
    options.memoryStore === true ? new MemoryPaymentStore({ now }) : await JournalPaymentStore.open({ dataDir: join(config.dataDir, 'payments'), now });
  const where = [store.describe, options.memoryDirectory === true ? 'directory in memory' : `directory in ${directoryFile}`];
  return { store, directory, describe: where.join(', ') };
}

export async function createApp(options: AppOptions): Promise<App> {
  const { config } = options;
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'countersign-authz' } });
  const now = options.now ?? Date.now;
  const masterKey =
    config.masterKey !== undefined
      ? masterKeyFromBase64(config.masterKey)
      : (privateDataDir(config.dataDir), loadOrCreateMasterKey(join(config.dataDir, 'master.key')));
  const kits = codeKits(masterKey);
  const statsd = statsdClient(config, logger);
  const opened = await openLedger(config, { memory: options.memoryLedger === true });
  const openedStores = await openStores(options, now);
  const backendName =
    config.redisCluster !== undefined ? 'redis-cluster' : config.redisUrl !== undefined ? 'redis' : options.memoryStore === true ? 'memory' : 'journal';
  // Concurrent transfers (RPCs of one tick, items of a batch) go to the ledger as one request.
  const coalesced = new CoalescingLedger(opened.ledger);
  const ledger = statsd === undefined ? coalesced : timed(coalesced, config.tbAddresses.length > 0 ? 'tigerbeetle' : 'embedded-ledger', statsd);
  // Concurrent steps of one kind go to the store as one operation (one script call on Redis).
  const store = new CoalescingStore(statsd === undefined ? openedStores.store : timed(openedStores.store, backendName, statsd));
  const directory = new CachedDirectory(statsd === undefined ? openedStores.directory : timed(openedStores.directory, backendName, statsd), { now });
  const ledgerDescribe = opened.describe;
  const platform = await ensurePlatformAccounts(ledger);
  const events = new PaymentEvents();
  if (statsd !== undefined) events.listen(paymentOutcome(statsd));
  // README "Holds and their timeout": on TigerBeetle the holds carry no ledger timeout unless asked.
  const limits = { ...defaultPaymentLimits, ledgerHoldTimeout: config.ledgerHoldTimeout ?? config.tbAddresses.length === 0, ...options.limits };
  const plugins = openAuthorizerPlugins(config, logger);
  const telco = options.notifier === undefined && config.telcoBridge !== undefined ? telcoNotifier(config, logger) : undefined;
  const notifier = options.notifier ?? telco ?? new ConsoleNotifier();
  telco?.start();
  const bank = config.bank === undefined ? undefined : new GrpcBankGateway({ address: config.bank, bankDeadlineMs: config.bankDeadlineMs, now });
  const payments = new PaymentsService({
    store,
    ledger: new PaymentLedger(ledger),
    directory,
    // Built-in policy first, then the plugins in configuration order, each failing closed.
    authorizers: [new BuiltInPolicy({ payer: (id) => directory.getPayer(id), merchant: (id) => directory.getMerchant(id) }), ...plugins.authorizers],
    notifier,
    codes: kits.codes,
    events,
    platform,
    ...(bank === undefined ? {} : { bank }),
    limits,
    now,
    log: logger,
  });
  const enrollment = new EnrollmentService({
    ledger,
    directory,
    store,
    kit: kits.enrollment,
    now,
    idempotencyTtlMs: limits.idempotencyTtlMs,
    closeChallenges: (payerId, version) => payments.closeChallenges(payerId, version),
  });
  const adminKey = adminKeyOf(config);
  const adminHash = Buffer.from(credentialHash(adminKey), 'hex');
  const telcoHash = config.telcoKey === undefined ? undefined : Buffer.from(credentialHash(config.telcoKey), 'hex');
  return {
    payments,
    enrollment,
    directory,
    store,
    ledger,
    events,
    logger,
    totals: opened.ledger instanceof EmbeddedLedger ? () => (opened.ledger as EmbeddedLedger).totals() : undefined,
    statsd,
    adminKey,
    tls: options.config.tls,
    describe: [
      ledgerDescribe,
      limits.ledgerHoldTimeout ? 'holds with a ledger timeout' : 'holds released by countersign (no ledger timeout)',
      openedStores.describe,
      ...(plugins.describe === undefined ? [] : [plugins.describe]),
    ],
    // Credentials are resolved through the directory's cache, which forgets a record the moment it changes.
    async resolvePrincipal(apiKey) {
      const hash = credentialHash(apiKey);
      if (timingSafeEqual(Buffer.from(hash, 'hex'), adminHash)) return { kind: 'operator', id: 'admin' };
      if (telcoHash !== undefined && timingSafeEqual(Buffer.from(hash, 'hex'), telcoHash)) return { kind: 'service', id: 'telco-bridge' };
      const cached = directory.cachedCredential(hash);
      if (cached !== undefined) return cached.kind === 'merchant' ? { kind: 'merchant', id: cached.merchant.id } : { kind: 'payer', id: cached.payer.id };
      const merchant = await directory.findMerchantByApiKeyHash(hash);
      if (merchant !== undefined) return { kind: 'merchant', id: merchant.id };
      const payer = await directory.findPayerByTokenHash(hash);
      return payer === undefined ? undefined : { kind: 'payer', id: payer.id };
    },
    async close() {
      plugins.close();
      await telco?.close();
      await bank?.close();
      // The directory owns the shared Redis connection: close it last.
      await Promise.allSettled([store.close()]);
      await directory.close();
      await ledger.close();
      await new Promise<void>((resolve) => (statsd === undefined ? resolve() : statsd.close(() => resolve())));
    },
  };
}
