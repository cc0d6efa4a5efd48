import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import StatsD, { type StatsD as StatsDClient } from 'hot-shots';
import { pino, type Logger } from 'pino';
import { BuiltInPolicy } from '../authz/authorizer.js';
import { loadOrCreateMasterKey, masterKeyFromBase64 } from '../authz/codes/secret-box.js';
import { EnrollmentService, ensurePlatformAccounts } from '../authz/enrollment.js';
import { PaymentEvents } from '../authz/events.js';
import { ConsoleNotifier, type Notifier } from '../authz/notifier.js';
import { PaymentLedger } from '../authz/payment-ledger.js';
import { PaymentsService, defaultPaymentLimits, type PaymentLimits } from '../authz/payments.js';
import type { ChallengeStore, Directory, PaymentRepository } from '../authz/ports.js';
import { FileDirectory } from '../authz/store/file-directory.js';
import { MemoryChallengeStore } from '../authz/store/memory-challenge-store.js';
import { MemoryDirectory } from '../authz/store/memory-directory.js';
import { MemoryPaymentRepository } from '../authz/store/memory-payment-repository.js';
import { RedisChallengeStore } from '../authz/store/redis-challenge-store.js';
import { RedisDirectory } from '../authz/store/redis-directory.js';
import { RedisPaymentRepository } from '../authz/store/redis-payment-repository.js';
import { openRedis } from '../authz/store/redis-client.js';
import { CoalescingLedger } from '../ledger/coalescing.js';
import { EmbeddedLedger } from '../ledger/embedded/engine.js';
import type { Ledger } from '../ledger/port.js';
import { codeKits, credentialHash } from './code-kit.js';
import { paymentOutcome, timed } from './metrics.js';
import { TelcoNotifier, telcoNotifierDefaults } from './telco-notifier.js';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { TelcoBridgeService } from '../gen/countersign/v1/telco_pb.js';
import type { Config } from './config.js';
import { GrpcBankGateway } from './bank/bank-client.js';
import { openLedger } from './ledger.js';
import { openAuthorizerPlugins } from './authorizers/plugins.js';
import type { Principal } from './rpc/interceptors.js';

export interface AppOptions {
  config: Config;
  /** Keep the embedded ledger in memory (tests, `demo`) instead of journaling it under dataDir. */
  memoryLedger?: boolean;
  /** Keep the directory in memory instead of <dataDir>/directory.json. */
  memoryDirectory?: boolean;
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
  readonly repository: PaymentRepository;
  readonly challenges: ChallengeStore;
  readonly ledger: Ledger;
  readonly events: PaymentEvents;
  readonly logger: Logger;
  /** The StatsD client when COUNTERSIGN_STATSD is set (the RPC interceptor uses it too). */
  readonly statsd: StatsDClient | undefined;
  /** Sums per ledger, when the engine can tell (embedded); TigerBeetle balances by construction. */
  readonly totals: (() => ReturnType<EmbeddedLedger['totals']>) | undefined;
  readonly adminKey: string;
  /** Where the stores and the ledger live, for the start-up banner. */
  readonly describe: string[];
  resolvePrincipal(apiKey: string): Promise<Principal | undefined>;
  close(): Promise<void>;
}

/** A StatsD client for `host:port` (COUNTERSIGN_STATSD), metric names prefixed `countersign.`. */
function statsdClient(config: Config, logger: Logger): StatsDClient | undefined {
  if (config.statsd === undefined) return undefined;
  const [host, port] = config.statsd.split(':');
  return new StatsD({ host: host || '127.0.0.1', port: Number(port || 8125), prefix: 'countersign.', errorHandler: (err) => logger.warn({ err }, 'statsd send failed') });
}

/** Delivery through a separate telco-bridge process (its gRPC API, authenticated with the shared telco key). */
function telcoNotifier(config: Config, logger: Logger): TelcoNotifier {
  const transport = createGrpcTransport({
    baseUrl: `http://${config.telcoBridge}`,
    interceptors: [(next) => (req) => (req.header.set('authorization', `Bearer ${config.telcoKey}`), next(req))],
  });
  return new TelcoNotifier(createClient(TelcoBridgeService, transport), { ...telcoNotifierDefaults, logger });
}

/** How long a resolved credential is trusted without asking the directory again, milliseconds. */
export const principalCacheTtlMs = 5_000;
/** Credentials remembered at most (unknown keys are never cached, so guessing cannot fill it). */
export const principalCacheMax = 10_000;

/**
 * Every RPC resolves its caller's key; with Redis that is two round trips. Known keys are
 * remembered for `principalCacheTtlMs`, so a revoked key keeps working at most that long.
 */
function cachedPrincipals(resolve: (credentialHash: string) => Promise<Principal | undefined>, now: () => number): (apiKey: string) => Promise<Principal | undefined> {
  const cache = new Map<string, { principal: Principal; expiresAtMs: number }>(); // by SHA-256, never the key itself
  return async (apiKey) => {
    const hash = credentialHash(apiKey);
    const hit = cache.get(hash);
    if (hit !== undefined && hit.expiresAtMs > now()) return hit.principal;
    const principal = await resolve(hash);
    cache.delete(hash);
    if (principal !== undefined) {
      if (cache.size >= principalCacheMax) cache.delete(cache.keys().next().value!);
      cache.set(hash, { principal, expiresAtMs: now() + principalCacheTtlMs });
    }
    return principal;
  };
}

/** The operator key: from config, or generated once into <dataDir>/admin.key with mode 0600. */
function adminKeyOf(config: Config): string {
  if (config.adminKey !== undefined) return config.adminKey;
  const path = join(config.dataDir, 'admin.key');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  mkdirSync(config.dataDir, { recursive: true });
  const key = `cs_admin_${randomBytes(24).toString('base64url')}`;
  writeFileSync(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return key;
}

async function openStores(options: AppOptions): Promise<{ challenges: ChallengeStore; repository: PaymentRepository; directory: Directory; describe: string }> {
  const { config } = options;
  if (config.redisUrl !== undefined) {
    // One connection for the three stores: ioredis pipelines concurrent commands on it.
    const redis = await openRedis({ url: config.redisUrl });
    const challenges = new RedisChallengeStore(redis, { ownsClient: false });
    const repository = new RedisPaymentRepository(redis, { ownsClient: false });
    const directory = new RedisDirectory(redis, { ownsClient: true });
    return { challenges, repository, directory, describe: `Redis at ${config.redisUrl.replace(/\/\/[^@]*@/, '//***@')}` };
  }
  const now = options.now ?? Date.now;
  const directory = options.memoryDirectory === true ? new MemoryDirectory() : await FileDirectory.open({ file: join(config.dataDir, 'directory.json') });
  return {
    challenges: new MemoryChallengeStore({ now }),
    repository: new MemoryPaymentRepository(),
    directory,
    describe: options.memoryDirectory === true ? 'in-process stores' : `in-process stores, directory in ${join(config.dataDir, 'directory.json')}`,
  };
}

export async function createApp(options: AppOptions): Promise<App> {
  const { config } = options;
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'countersign-authz' } });
  const now = options.now ?? Date.now;
  const masterKey = config.masterKey !== undefined ? masterKeyFromBase64(config.masterKey) : (mkdirSync(config.dataDir, { recursive: true }), loadOrCreateMasterKey(join(config.dataDir, 'master.key')));
  const kits = codeKits(masterKey);
  const statsd = statsdClient(config, logger);
  const opened = await openLedger(config, { memory: options.memoryLedger === true });
  const rawStores = await openStores(options);
  const backendName = config.redisUrl === undefined ? 'memory' : 'redis';
  // Concurrent transfers (RPCs of one tick, items of a batch) go to the ledger as one request.
  const coalesced = new CoalescingLedger(opened.ledger);
  const ledger = statsd === undefined ? coalesced : timed(coalesced, config.tbAddresses.length > 0 ? 'tigerbeetle' : 'embedded-ledger', statsd);
  const stores = statsd === undefined ? rawStores : {
    ...rawStores,
    challenges: timed(rawStores.challenges, backendName, statsd),
    repository: timed(rawStores.repository, backendName, statsd),
    directory: timed(rawStores.directory, backendName, statsd),
  };
  const ledgerDescribe = opened.describe;
  const platform = await ensurePlatformAccounts(ledger);
  const events = new PaymentEvents();
  if (statsd !== undefined) events.listen(paymentOutcome(statsd));
  const limits = { ...defaultPaymentLimits, ...options.limits };
  const plugins = openAuthorizerPlugins(config, logger);
  const telco = options.notifier === undefined && config.telcoBridge !== undefined ? telcoNotifier(config, logger) : undefined;
  const notifier = options.notifier ?? telco ?? new ConsoleNotifier();
  telco?.start();
  const bank = config.bank === undefined ? undefined : new GrpcBankGateway({ address: config.bank, bankDeadlineMs: config.bankDeadlineMs, now });
  const payments = new PaymentsService({
    ledger: new PaymentLedger(ledger),
    challenges: stores.challenges,
    payments: stores.repository,
    directory: stores.directory,
    // Built-in policy first, then the plugins in configuration order, each failing closed.
    authorizers: [new BuiltInPolicy({ payer: (id) => stores.directory.getPayer(id), merchant: (id) => stores.directory.getMerchant(id) }), ...plugins.authorizers],
    notifier,
    codes: kits.codes,
    events,
    platform,
    ...(bank === undefined ? {} : { bank }),
    limits,
    now,
  });
  const enrollment = new EnrollmentService({ ledger, directory: stores.directory, challenges: stores.challenges, kit: kits.enrollment, now, idempotencyTtlMs: limits.idempotencyTtlMs });
  const adminKey = adminKeyOf(config);
  const adminHash = Buffer.from(credentialHash(adminKey), 'hex');
  const telcoHash = config.telcoKey === undefined ? undefined : Buffer.from(credentialHash(config.telcoKey), 'hex');
  return {
    payments,
    enrollment,
    directory: stores.directory,
    repository: stores.repository,
    challenges: stores.challenges,
    ledger,
    events,
    logger,
    totals: opened.ledger instanceof EmbeddedLedger ? () => (opened.ledger as EmbeddedLedger).totals() : undefined,
    statsd,
    adminKey,
    describe: [ledgerDescribe, stores.describe, ...(plugins.describe === undefined ? [] : [plugins.describe])],
    resolvePrincipal: cachedPrincipals(async (hash) => {
      if (timingSafeEqual(Buffer.from(hash, 'hex'), adminHash)) return { kind: 'operator', id: 'admin' };
      if (telcoHash !== undefined && timingSafeEqual(Buffer.from(hash, 'hex'), telcoHash)) return { kind: 'service', id: 'telco-bridge' };
      const merchant = await stores.directory.findMerchantByApiKeyHash(hash);
      if (merchant !== undefined) return { kind: 'merchant', id: merchant.id };
      const payer = await stores.directory.findPayerByTokenHash(hash);
      return payer === undefined ? undefined : { kind: 'payer', id: payer.id };
    }, now),
    async close() {
      plugins.close();
      await telco?.close();
      await bank?.close();
      // The directory owns the shared Redis connection: close it last.
      await Promise.allSettled([stores.challenges.close(), stores.repository.close()]);
      await stores.directory.close();
      await ledger.close();
      await new Promise<void>((resolve) => (statsd === undefined ? resolve() : statsd.close(() => resolve())));
    },
  };
}
