import type { AuthorizerFailureMode } from '../authz/authorizer.js';
import type { Factor } from '../authz/model.js';
import type { SmsOptions, VoiceOptions } from '../telco-bridge/bridge.js';
import { type AuthorizerEndpoint, authorizerSettings } from './authorizers/settings.js';
import { ConfigError } from './config-error.js';

export { ConfigError };

/**
 * Process configuration from the environment: the one place a COUNTERSIGN_* variable is read
 * (test/services/config.test.ts checks that no other source does). Every setting has an
 * embedded default, so `countersign` runs with no configuration at all (embedded ledger journaled
 * under ./.data). Every command loads it whole, so a bad value stops any command in one line
 * naming the variable.
 */

/**
 * Every variable countersign reads, with one line of help that says its default: `countersign
 * help` prints this table, README "Configuration" documents the same names, and `read` takes only
 * these names, so a variable cannot be read without being listed.
 */
export const environment = [
  ['COUNTERSIGN_DATA_DIR', 'data directory: ledger journal, payment store, keys (default ./.data)'],
  ['COUNTERSIGN_HOST', 'interface the servers bind (default 127.0.0.1)'],
  ['COUNTERSIGN_GRPC_PORT', 'gRPC port (default 50051; 0 picks a free one)'],
  ['COUNTERSIGN_CONNECT_PORT', 'Connect/gRPC-Web port (default 8080; 0 picks a free one)'],
  ['COUNTERSIGN_WEB_PORT', 'payer web terminal, HTTP/1.1 (default 8082; 0 picks a free one)'],
  ['COUNTERSIGN_TLS_CERT', 'TLS on the gRPC port: certificate chain, PEM file (default: plaintext)'],
  ['COUNTERSIGN_TLS_KEY', "the certificate's private key, PEM file (required with COUNTERSIGN_TLS_CERT)"],
  ['COUNTERSIGN_TLS_CLIENT_CA', 'mTLS: every gRPC client presents a certificate from this CA, PEM file (default: none asked)'],
  ['COUNTERSIGN_REDIS_URL', 'Redis for payments, idempotency, counters and the directory (default: embedded, in the data directory)'],
  ['COUNTERSIGN_REDIS_CLUSTER', 'a Redis Cluster instead: seed nodes host:port,host:port,... (default: none)'],
  ['COUNTERSIGN_TB_ADDRESSES', 'TigerBeetle replica addresses, comma-separated (default: the embedded ledger)'],
  ['COUNTERSIGN_TB_CLUSTER_ID', 'TigerBeetle cluster id (default 0)'],
  ['COUNTERSIGN_LEDGER_TIMEOUT_MS', 'deadline of one ledger request, milliseconds (default 5000)'],
  ['COUNTERSIGN_LEDGER_HOLD_TIMEOUT', 'on | off: reservations lapse by themselves in the ledger (default on embedded, off on TigerBeetle)'],
  ['COUNTERSIGN_ADMIN_KEY', 'operator API key (default: generated into <data dir>/admin.key; client commands read it there)'],
  ['COUNTERSIGN_API_KEY', "client commands: the merchant's API key when --key is not given (default: none)"],
  ['COUNTERSIGN_PAYER_TOKEN', "client commands: the payer's token when --token is not given (default: none)"],
  ['COUNTERSIGN_MASTER_KEY', 'base64 master key (default: <data dir>/master.key, mode 0600)'],
  ['COUNTERSIGN_STATSD', 'StatsD host:port for metrics (default: metrics off)'],
  ['COUNTERSIGN_LOG_LEVEL', 'log level: fatal, error, warn, info, debug, trace, silent (default info)'],
  ['COUNTERSIGN_AUTHORIZERS', 'authorizer plugins after the built-in policy: name=host:port,... (default: none)'],
  ['COUNTERSIGN_AUTHORIZER_DEADLINE_MS', 'deadline of one plugin call, milliseconds (default 200)'],
  ['COUNTERSIGN_AUTHORIZER_FAILURE', 'when a plugin errs or is late: decline | require-strongest (default decline)'],
  ['COUNTERSIGN_AUTHORIZER_STRONGEST', "factors required in a failed plugin's place (default SECOND_CODE)"],
  ['COUNTERSIGN_BANK', 'the bank front-end gRPC host:port, for card + PIN (default: that factor unavailable)'],
  ['COUNTERSIGN_BANK_DEADLINE_MS', 'deadline of one bank call, milliseconds (default 2000)'],
  ['COUNTERSIGN_TELCO_BRIDGE', 'a separate telco bridge gRPC host:port (default: codes and calls on the console)'],
  ['COUNTERSIGN_TELCO_KEY', 'key authz and the bridge present to each other (required with a bridge; --with-bridge makes one)'],
  ['COUNTERSIGN_AUTHZ_ADDRESS', 'telco-bridge: the authz gRPC host:port it relays proofs to (required)'],
  ['COUNTERSIGN_TELCO_PORT', "the bridge's gRPC port (default 50061; 0 picks a free one)"],
  ['COUNTERSIGN_WEBHOOK_PORT', "the bridge's voice webhooks, HTTP port (default 8081; 0 picks a free one)"],
  ['COUNTERSIGN_PUBLIC_WEBHOOK_URL', 'the webhook URL the voice provider calls (default http://HOST:WEBHOOK_PORT)'],
  ['COUNTERSIGN_SMPP', 'SMS over SMPP: smpp://SYSTEM_ID:PASSWORD@HOST:PORT?source=SENDER&window=10&rate=50 (default: console)'],
  ['COUNTERSIGN_VOICE', 'calls over TwiML: https://SID:TOKEN@api.twilio.com?from=+15550001000 (default: console)'],
] as const satisfies readonly (readonly [`COUNTERSIGN_${string}`, string])[];

/** A variable of the table: the only names `read` takes. */
export type VariableName = (typeof environment)[number][0];

/** The environment as loadConfig takes it (process.env, or a test's own). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** One variable's text; empty reads as unset. The only read of a COUNTERSIGN_* variable. */
function read(env: Environment, name: VariableName): string | undefined {
  const text = env[name];
  return text === undefined || text === '' ? undefined : text;
}

/** COUNTERSIGN_DATA_DIR when unset. */
export const defaultDataDir = '.data';

/**
 * The data directory from the environment alone: what loadConfig puts in Config.dataDir, for the
 * CLI's error printer when loadConfig itself failed (it names the directory in a lock error).
 */
export function dataDirOf(env: Environment = process.env): string {
  return read(env, 'COUNTERSIGN_DATA_DIR') ?? defaultDataDir;
}

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
  /** Client commands: the merchant's API key when --key is not given (COUNTERSIGN_API_KEY). */
  apiKey: string | undefined;
  /** Client commands: the payer's bearer token when --token is not given (COUNTERSIGN_PAYER_TOKEN). */
  payerToken: string | undefined;
  /** The telco bridge's gRPC address (COUNTERSIGN_TELCO_BRIDGE, host:port); unset: codes and calls on the console. */
  telcoBridge: string | undefined;
  /**
   * Key the telco bridge and authz present to each other (COUNTERSIGN_TELCO_KEY): required with
   * COUNTERSIGN_TELCO_BRIDGE and by `countersign telco-bridge`; `serve --with-bridge` makes one when unset.
   */
  telcoKey: string | undefined;
  /** The telco bridge's own settings, for `countersign telco-bridge` and `serve --with-bridge`. */
  telco: TelcoConfig;
  /** `countersign telco-bridge`: authz's gRPC host:port the bridge relays proofs to (COUNTERSIGN_AUTHZ_ADDRESS); that command requires it. */
  authzAddress: string | undefined;
  /** Master key, base64 (COUNTERSIGN_MASTER_KEY); unset: <dataDir>/master.key, created with mode 0600. */
  masterKey: string | undefined;
  /** StatsD host:port for metrics (COUNTERSIGN_STATSD, e.g. 127.0.0.1:8125); unset: metrics off. */
  statsd: string | undefined;
  /** pino level, one of logLevels (COUNTERSIGN_LOG_LEVEL, default info). */
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

/** The telco bridge's settings (see Config.telco); its key is Config.telcoKey. Without SMPP or voice settings that medium goes to the console. */
export interface TelcoConfig {
  /** The bridge's gRPC port (COUNTERSIGN_TELCO_PORT, default 50061; 0 picks a free one). */
  grpcPort: number;
  /** The voice webhooks' HTTP port (COUNTERSIGN_WEBHOOK_PORT, default 8081; 0 picks a free one). */
  webhookPort: number;
  /** The base URL the voice provider calls (COUNTERSIGN_PUBLIC_WEBHOOK_URL, http or https); unset: http://HOST:WEBHOOK_PORT. */
  publicWebhookBaseUrl: string | undefined;
  /** SMS over SMPP 3.4 (COUNTERSIGN_SMPP: smpp://SYSTEM_ID:PASSWORD@HOST:PORT?source=SENDER&window=N&rate=N); unset: console. */
  sms: SmsOptions;
  /** Calls through a TwiML provider (COUNTERSIGN_VOICE: https://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+15550001000); unset: console. */
  voice: VoiceOptions;
}

/** pino's levels, as COUNTERSIGN_LOG_LEVEL takes them. */
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export const telcoPortDefault = 50061;
export const webhookPortDefault = 8081;
/** An SMSC's port when COUNTERSIGN_SMPP names none (the SMPP convention). */
const smppPortDefault = 2775;
/** SMPP window (submit_sm sent and not yet answered) and rate (submit_sm per second) when the URL does not say. */
const smppWindowMaxDefault = 10;
const smsPerSecondMaxDefault = 50;

/** COUNTERSIGN_TLS_CERT, COUNTERSIGN_TLS_KEY, COUNTERSIGN_TLS_CLIENT_CA (file paths; read when the server starts). */
export function tlsSettings(env: Environment): { tls: TlsFiles | undefined } {
  const certFile = read(env, 'COUNTERSIGN_TLS_CERT');
  const keyFile = read(env, 'COUNTERSIGN_TLS_KEY');
  const clientCaFile = read(env, 'COUNTERSIGN_TLS_CLIENT_CA');
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new ConfigError('COUNTERSIGN_TLS_CERT and COUNTERSIGN_TLS_KEY go together (the server certificate chain and its private key, PEM)');
  if (certFile === undefined || keyFile === undefined) {
    if (clientCaFile !== undefined) throw new ConfigError('COUNTERSIGN_TLS_CLIENT_CA (mTLS) needs COUNTERSIGN_TLS_CERT and COUNTERSIGN_TLS_KEY');
    return { tls: undefined };
  }
  return { tls: { certFile, keyFile, clientCaFile } };
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`${name} must be a positive integer, got "${text}"`);
  return value;
}

/** `on` or `off`; unset: undefined (the caller's default). */
function onOff(name: string, text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  if (text === 'on' || text === 'off') return text === 'on';
  throw new ConfigError(`${name} must be on or off, got "${text}"`);
}

function port(name: VariableName, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d{1,5}$/.test(text) || value > 65_535) throw new ConfigError(`${name} must be a port number 0..65535, got "${text}"`);
  return value;
}

function logLevel(text: string | undefined): LogLevel {
  if (text === undefined) return 'info';
  const level = logLevels.find((l) => l === text);
  if (level === undefined) throw new ConfigError(`COUNTERSIGN_LOG_LEVEL must be one of ${logLevels.join(', ')}, got "${text}"`);
  return level;
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

/** `host:port` of a gRPC peer (an IPv6 host in brackets), port 1..65535. */
function address(name: VariableName, text: string | undefined, shape: string): string | undefined {
  if (text === undefined) return undefined;
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(text);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || port < 1 || port > 65_535) throw new ConfigError(`${name} must be ${shape}, got "${text}"`);
  return text;
}

/**
 * A URL-shaped setting, or a ConfigError that is `shape` alone: a URL that does not parse (never
 * node's TypeError), or whose credentials are not percent-encoded properly. The value itself is
 * never in the message, it may hold a password.
 */
function credentialsUrl(text: string, shape: string): { url: URL; username: string; password: string; param: (name: string) => string | undefined } {
  try {
    const url = new URL(text);
    return { url, username: decodeURIComponent(url.username), password: decodeURIComponent(url.password), param: (name) => queryParam(url, name) };
  } catch (error) {
    if (error instanceof TypeError || error instanceof URIError) throw new ConfigError(shape, { cause: error });
    throw error;
  }
}

/**
 * One query parameter, percent-decoded and nothing else: `?from=+15550001000` is "+15550001000"
 * (URLSearchParams would read the `+` as a space). Undefined when absent.
 */
function queryParam(url: URL, name: string): string | undefined {
  for (const pair of url.search.slice(1).split('&')) {
    const equals = pair.indexOf('=');
    if ((equals < 0 ? pair : pair.slice(0, equals)) === name) return decodeURIComponent(equals < 0 ? '' : pair.slice(equals + 1));
  }
  return undefined;
}

const smppShape =
  'COUNTERSIGN_SMPP must look like smpp://SYSTEM_ID:PASSWORD@HOST:PORT?source=SENDER (window=N, rate=N optional; percent-encode special characters)';

/** COUNTERSIGN_SMPP. */
function smppFrom(text: string | undefined): SmsOptions {
  if (text === undefined) return { kind: 'console' };
  const { url, username, password, param } = credentialsUrl(text, smppShape);
  const port = url.port === '' ? smppPortDefault : Number(url.port);
  if (url.protocol !== 'smpp:' || url.hostname === '' || port === 0) throw new ConfigError(smppShape);
  return {
    kind: 'smpp',
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    systemId: username,
    password,
    sourceAddr: param('source') ?? 'countersign',
    windowMax: positiveInt('COUNTERSIGN_SMPP ?window=', param('window'), smppWindowMaxDefault),
    ratePerSecondMax: positiveInt('COUNTERSIGN_SMPP ?rate=', param('rate'), smsPerSecondMaxDefault),
  };
}

const voiceShape = 'COUNTERSIGN_VOICE must look like https://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+15550001000';

/** COUNTERSIGN_VOICE: a Twilio-compatible TwiML provider. */
function voiceFrom(text: string | undefined): VoiceOptions {
  if (text === undefined) return { kind: 'console' };
  const { url, username, password, param } = credentialsUrl(text, voiceShape);
  const from = param('from');
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || from === undefined || from === '' || username === '' || password === '')
    throw new ConfigError(voiceShape);
  return { kind: 'twilio', baseUrl: `${url.protocol}//${url.host}`, accountSid: username, authToken: password, from };
}

/** COUNTERSIGN_PUBLIC_WEBHOOK_URL: an http(s) base URL, kept as written (the provider's signatures are computed on it). */
function webhookBaseUrl(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const shape = `COUNTERSIGN_PUBLIC_WEBHOOK_URL must be an http:// or https:// URL the voice provider reaches, e.g. https://hooks.example.com, got "${text}"`;
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new ConfigError(shape);
  return text;
}

function telcoConfig(env: Environment): TelcoConfig {
  return {
    grpcPort: port('COUNTERSIGN_TELCO_PORT', read(env, 'COUNTERSIGN_TELCO_PORT'), telcoPortDefault),
    webhookPort: port('COUNTERSIGN_WEBHOOK_PORT', read(env, 'COUNTERSIGN_WEBHOOK_PORT'), webhookPortDefault),
    publicWebhookBaseUrl: webhookBaseUrl(read(env, 'COUNTERSIGN_PUBLIC_WEBHOOK_URL')),
    sms: smppFrom(read(env, 'COUNTERSIGN_SMPP')),
    voice: voiceFrom(read(env, 'COUNTERSIGN_VOICE')),
  };
}

/** The whole configuration; the first bad value is a ConfigError naming its variable. */
export function loadConfig(env: Environment = process.env): Config {
  const redisUrl = read(env, 'COUNTERSIGN_REDIS_URL');
  if (redisUrl !== undefined && read(env, 'COUNTERSIGN_REDIS_CLUSTER') !== undefined) {
    throw new ConfigError('set COUNTERSIGN_REDIS_URL (one Redis) or COUNTERSIGN_REDIS_CLUSTER (a Redis Cluster), not both');
  }
  const telcoBridge = read(env, 'COUNTERSIGN_TELCO_BRIDGE');
  const telcoKey = read(env, 'COUNTERSIGN_TELCO_KEY');
  if (telcoBridge !== undefined && telcoKey === undefined) {
    throw new ConfigError('COUNTERSIGN_TELCO_BRIDGE needs COUNTERSIGN_TELCO_KEY (the key authz and the bridge present to each other)');
  }
  const addresses = (read(env, 'COUNTERSIGN_TB_ADDRESSES') ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  const clusterText = read(env, 'COUNTERSIGN_TB_CLUSTER_ID') ?? '0';
  if (!/^\d+$/.test(clusterText)) throw new ConfigError(`COUNTERSIGN_TB_CLUSTER_ID must be an unsigned integer, got "${clusterText}"`);
  const webPortText = read(env, 'COUNTERSIGN_WEB_PORT');
  return {
    dataDir: dataDirOf(env),
    tbAddresses: addresses,
    tbClusterId: BigInt(clusterText),
    ledgerTimeoutMs: positiveInt('COUNTERSIGN_LEDGER_TIMEOUT_MS', read(env, 'COUNTERSIGN_LEDGER_TIMEOUT_MS'), 5000),
    ledgerHoldTimeout: onOff('COUNTERSIGN_LEDGER_HOLD_TIMEOUT', read(env, 'COUNTERSIGN_LEDGER_HOLD_TIMEOUT')),
    redisUrl,
    redisCluster: clusterNodes(read(env, 'COUNTERSIGN_REDIS_CLUSTER')),
    host: read(env, 'COUNTERSIGN_HOST') ?? '127.0.0.1',
    grpcPort: port('COUNTERSIGN_GRPC_PORT', read(env, 'COUNTERSIGN_GRPC_PORT'), 50051),
    connectPort: port('COUNTERSIGN_CONNECT_PORT', read(env, 'COUNTERSIGN_CONNECT_PORT'), 8080),
    webPort: port('COUNTERSIGN_WEB_PORT', webPortText, 8082),
    webPortRequired: webPortText !== undefined,
    adminKey: read(env, 'COUNTERSIGN_ADMIN_KEY'),
    apiKey: read(env, 'COUNTERSIGN_API_KEY'),
    payerToken: read(env, 'COUNTERSIGN_PAYER_TOKEN'),
    masterKey: read(env, 'COUNTERSIGN_MASTER_KEY'),
    telcoKey,
    telcoBridge,
    telco: telcoConfig(env),
    authzAddress: address('COUNTERSIGN_AUTHZ_ADDRESS', read(env, 'COUNTERSIGN_AUTHZ_ADDRESS'), "authz's gRPC host:port (e.g. 127.0.0.1:50051)"),
    statsd: read(env, 'COUNTERSIGN_STATSD'),
    logLevel: logLevel(read(env, 'COUNTERSIGN_LOG_LEVEL')),
    ...authorizerSettings({
      authorizers: read(env, 'COUNTERSIGN_AUTHORIZERS'),
      deadlineMs: read(env, 'COUNTERSIGN_AUTHORIZER_DEADLINE_MS'),
      failure: read(env, 'COUNTERSIGN_AUTHORIZER_FAILURE'),
      strongest: read(env, 'COUNTERSIGN_AUTHORIZER_STRONGEST'),
    }),
    ...tlsSettings(env),
    bank: read(env, 'COUNTERSIGN_BANK'),
    bankDeadlineMs: positiveInt('COUNTERSIGN_BANK_DEADLINE_MS', read(env, 'COUNTERSIGN_BANK_DEADLINE_MS'), 2000),
  };
}
