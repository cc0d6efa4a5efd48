import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Client, createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { EnrollmentService } from '../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { UsageError } from '../cli-errors.js';
import { type Config, ConfigError, loadConfig, type VariableName } from '../config.js';

/**
 * How a client command reaches a running `countersign serve`: its gRPC port (the address serve
 * binds, from the same settings, or `--server HOST:PORT`), over connect-node's gRPC transport,
 * with the caller's key as `authorization: Bearer`. The operator key is the one serve uses
 * (COUNTERSIGN_ADMIN_KEY, or <data dir>/admin.key, read and never created here).
 */

/** Deadline of one call, milliseconds: a command never waits forever on a server. */
export const callDeadlineMs = 15_000;

/** The variable a merchant's API key may come from instead of `--key`. */
export const apiKeyVariable: VariableName = 'COUNTERSIGN_API_KEY';
/** The variable a payer's token may come from instead of `--token`. */
export const payerTokenVariable: VariableName = 'COUNTERSIGN_PAYER_TOKEN';

export interface Clients {
  enrollment: Client<typeof EnrollmentService>;
  ledger: Client<typeof LedgerService>;
  payments: Client<typeof PaymentService>;
  payer: Client<typeof PayerService>;
}

/** A server to call: the gRPC base URL, and what a failure message calls it. */
export interface Server {
  baseUrl: string;
  /** host:port, as the user would type it. */
  address: string;
  /** PEM of the certificate to trust when serve runs TLS on its gRPC port (COUNTERSIGN_TLS_CERT). */
  ca: Buffer | undefined;
}

const serverPattern = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/;

/** `--server HOST:PORT`, or COUNTERSIGN_HOST and COUNTERSIGN_GRPC_PORT as serve reads them. */
export function serverOf(command: string, flag: string | undefined, config: Config): Server {
  const tls = config.tls;
  const ca = tls === undefined ? undefined : readFileSync(tls.certFile);
  const scheme = tls === undefined ? 'http' : 'https';
  if (flag !== undefined) {
    const match = serverPattern.exec(flag);
    const port = match === null ? NaN : Number(match[2]);
    if (match === null || port < 1 || port > 65_535) throw new UsageError(command, `--server is HOST:PORT (the gRPC address serve printed), got "${flag}"`);
    return { baseUrl: `${scheme}://${flag}`, address: flag, ca };
  }
  if (config.grpcPort === 0)
    throw new ConfigError('COUNTERSIGN_GRPC_PORT is 0 (serve picked a free port): give the command --server HOST:PORT as serve printed it');
  const host = connectableHost(config.host);
  const address = `${host.includes(':') ? `[${host}]` : host}:${config.grpcPort}`;
  return { baseUrl: `${scheme}://${address}`, address, ca };
}

/** A wildcard bind address is reached on loopback. */
function connectableHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host.replace(/^\[(.*)\]$/, '$1');
}

/** The operator key serve uses: COUNTERSIGN_ADMIN_KEY, or <data dir>/admin.key (never created here). */
export function operatorKey(config: Config): string {
  if (config.adminKey !== undefined) return config.adminKey;
  const path = join(config.dataDir, 'admin.key');
  if (!existsSync(path)) {
    throw new ConfigError(`no operator key: ${path} does not exist; set COUNTERSIGN_DATA_DIR to the data directory serve uses, or COUNTERSIGN_ADMIN_KEY`);
  }
  return readFileSync(path, 'utf8').trim();
}

/** `--key`, else COUNTERSIGN_API_KEY (Config.apiKey): the merchant's API key. */
export function merchantKey(command: string, flag: string | undefined, config: Pick<Config, 'apiKey'>): string {
  const key = flag ?? config.apiKey;
  if (key === undefined) throw new UsageError(command, `needs the merchant's API key: --key KEY or ${apiKeyVariable}`);
  return credential(command, key, `the merchant's API key (--key or ${apiKeyVariable})`);
}

/** `--token`, else COUNTERSIGN_PAYER_TOKEN (Config.payerToken): the payer's bearer token. */
export function payerToken(command: string, flag: string | undefined, config: Pick<Config, 'payerToken'>): string {
  const token = flag ?? config.payerToken;
  if (token === undefined) throw new UsageError(command, `needs the payer's token: --token TOKEN or ${payerTokenVariable}`);
  return credential(command, token, `the payer's token (--token or ${payerTokenVariable})`);
}

/** The longest API key or payer token accepted on the command line, characters (ours are about 40). */
const credentialCharsMax = 512;

/** Keys and tokens are one printable word; anything else (a pasted second line, a space) is refused before a call, never echoed. */
function credential(command: string, value: string, what: string): string {
  const trimmed = value.trim();
  if (trimmed.length > credentialCharsMax || !/^[\x21-\x7e]+$/.test(trimmed))
    throw new UsageError(command, `${what} is not one word of printable characters (a copied line too many?)`);
  return trimmed;
}

/** The configuration every command reads (services/config.ts), from `env`. */
export function configOf(env: NodeJS.ProcessEnv): Config {
  return loadConfig(env);
}

function bearer(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set('authorization', `Bearer ${key}`);
    return next(req);
  };
}

/** Clients for one key, for the duration of `use`; the HTTP/2 connection is closed after. */
export async function withClients<T>(server: Server, key: string, use: (clients: Clients) => Promise<T>): Promise<T> {
  const sessionManager = new Http2SessionManager(server.baseUrl, undefined, server.ca === undefined ? undefined : { ca: server.ca });
  const transport = createGrpcTransport({ baseUrl: server.baseUrl, sessionManager, interceptors: [bearer(key)], defaultTimeoutMs: callDeadlineMs });
  try {
    return await use({
      enrollment: createClient(EnrollmentService, transport),
      ledger: createClient(LedgerService, transport),
      payments: createClient(PaymentService, transport),
      payer: createClient(PayerService, transport),
    });
  } finally {
    sessionManager.abort();
  }
}
