import type { AuthorizerFailureMode } from '../authz/authorizer.js';
import type { Factor } from '../authz/model.js';
import { authorizerSettings, type AuthorizerEndpoint } from './authorizers/settings.js';

/**
 * Process configuration from the environment. Every setting has an embedded default, so
 * `countersign` runs with no configuration at all (embedded ledger journaled under ./.data).
 */
/** COUNTERSIGN_DATA_DIR when unset. */
export const defaultDataDir = '.data';

export interface Config {
  /** Directory for the embedded ledger's journal (COUNTERSIGN_DATA_DIR, default ./.data). */
  dataDir: string;
  /** TigerBeetle replica addresses; when set, the TigerBeetle engine is used (COUNTERSIGN_TB_ADDRESSES). */
  tbAddresses: string[];
  /** TigerBeetle cluster id (COUNTERSIGN_TB_CLUSTER_ID, default 0). */
  tbClusterId: bigint;
  /** Deadline for one ledger request, in milliseconds (COUNTERSIGN_LEDGER_TIMEOUT_MS, default 5000). */
  ledgerTimeoutMs: number;
  /**
   * Whether a payment's reservation carries a ledger timeout (COUNTERSIGN_LEDGER_HOLD_TIMEOUT:
   * `on`, `off`; unset: on with the embedded ledger, off with TigerBeetle — README "Holds and
   * their timeout"). Off, holds are released by countersign alone (its expiry sweep, reconcile).
   */
  ledgerHoldTimeout: boolean | undefined;
  /** One Redis for payments, idempotency, counters and the directory (COUNTERSIGN_REDIS_URL); unset: embedded (journaled under dataDir). */
  redisUrl: string | undefined;
  /** A Redis Cluster's seed nodes instead (COUNTERSIGN_REDIS_CLUSTER: comma-separated host:port). */
  redisCluster: { host: string; port: number }[] | undefined;
  /** Interface the servers bind (COUNTERSIGN_HOST, default 127.0.0.1). */
  host: string;
  /** gRPC port, grpc-js (COUNTERSIGN_GRPC_PORT, default 50051; 0 picks a free one). */
  grpcPort: number;
  /** Connect / gRPC-Web port for browsers, connect-node (COUNTERSIGN_CONNECT_PORT, default 8080; 0 picks one). */
  connectPort: number;
  /** The payer web terminal, HTTP/1.1 (COUNTERSIGN_WEB_PORT, default 8082 — 8081 is the telco bridge's webhook port; 0 picks a free one). */
  webPort: number;
  /** True when COUNTERSIGN_WEB_PORT was set: a busy port is then fatal, not a warning. */
  webPortRequired: boolean;
  /** Operator API key (COUNTERSIGN_ADMIN_KEY); unset: generated once into <dataDir>/admin.key (mode 0600). */
  adminKey: string | undefined;
  /** The telco bridge's gRPC address (COUNTERSIGN_TELCO_BRIDGE, host:port); unset: codes and calls on the console. */
  telcoBridge: string | undefined;
  /** Key the telco bridge presents when it relays SMS replies and keyed passwords (COUNTERSIGN_TELCO_KEY). */
  telcoKey: string | undefined;
  /** Master key, base64 (COUNTERSIGN_MASTER_KEY); unset: <dataDir>/master.key, created with mode 0600. */
  masterKey: string | undefined;
  /** StatsD host:port for metrics (COUNTERSIGN_STATSD, e.g. 127.0.0.1:8125); unset: metrics off. */
  statsd: string | undefined;
  /** pino level (COUNTERSIGN_LOG_LEVEL, default info). */
  logLevel: string;
  /** Authorizer plugins called in order after the built-in policy (COUNTERSIGN_AUTHORIZERS: comma-separated `name=host:port` or `host:port`); unset: none. */
  authorizers: AuthorizerEndpoint[];
  /** Deadline of one plugin call, milliseconds (COUNTERSIGN_AUTHORIZER_DEADLINE_MS, default 200). */
  authorizerDeadlineMs: number;
  /** When a plugin errs or is late (COUNTERSIGN_AUTHORIZER_FAILURE): decline (default), or require-strongest. */
  authorizerFailure: AuthorizerFailureMode;
  /** Required in a failed plugin's place under require-strongest (COUNTERSIGN_AUTHORIZER_STRONGEST, factor names, default SECOND_CODE). */
  authorizerStrongestFactors: Factor[];
  /**
   * TLS on the gRPC (grpc-js) port: COUNTERSIGN_TLS_CERT and COUNTERSIGN_TLS_KEY (PEM files, both
   * or neither); with COUNTERSIGN_TLS_CLIENT_CA (PEM) every client must present a certificate
   * issued by that CA (mTLS required). Unset: plaintext. The Connect port stays cleartext h2c.
   */
  tls: TlsFiles | undefined;
  /** M5: the bank front-end's gRPC address (COUNTERSIGN_BANK, host:port); unset: FACTOR_BANK_CARD_PIN is unavailable. */
  bank: string | undefined;
  /** Deadline of one bank call, milliseconds (COUNTERSIGN_BANK_DEADLINE_MS, default 2000); past it the payment fails closed. */
  bankDeadlineMs: number;
}

/** PEM file paths for the gRPC port's TLS (see Config.tls). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** Client certificates must chain to this CA (mTLS, required); undefined: no client certificates. */
  clientCaFile: string | undefined;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** COUNTERSIGN_TLS_CERT, COUNTERSIGN_TLS_KEY, COUNTERSIGN_TLS_CLIENT_CA (file paths; read when the server starts). */
export function tlsSettings(env: NodeJS.ProcessEnv): { tls: TlsFiles | undefined } {
  const certFile = env.COUNTERSIGN_TLS_CERT || undefined;
  const keyFile = env.COUNTERSIGN_TLS_KEY || undefined;
  const clientCaFile = env.COUNTERSIGN_TLS_CLIENT_CA || undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError('COUNTERSIGN_TLS_CERT and COUNTERSIGN_TLS_KEY go together (the server certificate chain and its private key, PEM)');
  if (certFile === undefined || keyFile === undefined) {
    if (clientCaFile !== undefined) throw new ConfigError('COUNTERSIGN_TLS_CLIENT_CA (mTLS) needs COUNTERSIGN_TLS_CERT and COUNTERSIGN_TLS_KEY');
    return { tls: undefined };
  }
  return { tls: { certFile, keyFile, clientCaFile } };
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`${name} must be a positive integer, got "${text}"`);
  return value;
}

/** `on` or `off`; unset or empty: undefined (the caller's default). */
function onOff(name: string, text: string | undefined): boolean | undefined {
  if (text === undefined || text === '') return undefined;
  if (text === 'on' || text === 'off') return text === 'on';
  throw new ConfigError(`${name} must be on or off, got "${text}"`);
}

function port(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) throw new ConfigError(`${name} must be a port number 0..65535, got "${text}"`);
  return value;
}

/** COUNTERSIGN_REDIS_CLUSTER: `host:port[,host:port…]`, the cluster's seed nodes. */
function clusterNodes(text: string | undefined): { host: string; port: number }[] | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  return text.split(',').map((part) => {
    const match = /^\s*([^:\s]+):(\d{1,5})\s*$/.exec(part);
    const port = match === null ? NaN : Number(match[2]);
    if (match === null || port < 1 || port > 65_535) throw new ConfigError(`COUNTERSIGN_REDIS_CLUSTER must be host:port[,host:port…], got "${part.trim()}"`);
    return { host: match[1]!, port };
  });
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  if (env.COUNTERSIGN_REDIS_URL && env.COUNTERSIGN_REDIS_CLUSTER) {
    throw new ConfigError('set COUNTERSIGN_REDIS_URL (one Redis) or COUNTERSIGN_REDIS_CLUSTER (a Redis Cluster), not both');
  }
  if (env.COUNTERSIGN_TELCO_BRIDGE && !env.COUNTERSIGN_TELCO_KEY) {
    throw new ConfigError('COUNTERSIGN_TELCO_BRIDGE needs COUNTERSIGN_TELCO_KEY (the key authz and the bridge present to each other)');
  }
  const addresses = (env.COUNTERSIGN_TB_ADDRESSES ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '');
  const clusterText = env.COUNTERSIGN_TB_CLUSTER_ID ?? '0';
  if (!/^\d+$/.test(clusterText)) throw new ConfigError(`COUNTERSIGN_TB_CLUSTER_ID must be an unsigned integer, got "${clusterText}"`);
  return {
    dataDir: env.COUNTERSIGN_DATA_DIR || defaultDataDir,
    tbAddresses: addresses,
    tbClusterId: BigInt(clusterText),
    ledgerTimeoutMs: positiveInt('COUNTERSIGN_LEDGER_TIMEOUT_MS', env.COUNTERSIGN_LEDGER_TIMEOUT_MS, 5000),
    ledgerHoldTimeout: onOff('COUNTERSIGN_LEDGER_HOLD_TIMEOUT', env.COUNTERSIGN_LEDGER_HOLD_TIMEOUT),
    redisUrl: env.COUNTERSIGN_REDIS_URL || undefined,
    redisCluster: clusterNodes(env.COUNTERSIGN_REDIS_CLUSTER),
    host: env.COUNTERSIGN_HOST || '127.0.0.1',
    grpcPort: port('COUNTERSIGN_GRPC_PORT', env.COUNTERSIGN_GRPC_PORT, 50051),
    connectPort: port('COUNTERSIGN_CONNECT_PORT', env.COUNTERSIGN_CONNECT_PORT, 8080),
    webPort: port('COUNTERSIGN_WEB_PORT', env.COUNTERSIGN_WEB_PORT, 8082),
    webPortRequired: (env.COUNTERSIGN_WEB_PORT ?? '') !== '',
    adminKey: env.COUNTERSIGN_ADMIN_KEY || undefined,
    masterKey: env.COUNTERSIGN_MASTER_KEY || undefined,
    telcoKey: env.COUNTERSIGN_TELCO_KEY || undefined,
    telcoBridge: env.COUNTERSIGN_TELCO_BRIDGE || undefined,
    statsd: env.COUNTERSIGN_STATSD || undefined,
    logLevel: env.COUNTERSIGN_LOG_LEVEL || 'info',
    ...authorizerSettings(env),
    ...tlsSettings(env),
    bank: env.COUNTERSIGN_BANK || undefined,
    bankDeadlineMs: positiveInt('COUNTERSIGN_BANK_DEADLINE_MS', env.COUNTERSIGN_BANK_DEADLINE_MS, 2000),
  };
}
