import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import { type Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport, Http2SessionManager } from '@connectrpc/connect-node';
import type { ExecutionContext } from 'ava';
import { pino } from 'pino';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { base32Decode } from '../../authz/codes/secret.js';
import { InboxNotifier } from '../../authz/notifier.js';
import type { PaymentLimits } from '../../authz/payments.js';
import { Channel, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { EnrollmentService, type PayerPolicy } from '../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { type App, createApp } from '../../services/app.js';
import type { Clients } from '../../services/commands/connection.js';
import { type Config, loadConfig } from '../../services/config.js';
import { ErrorInfoSchema } from '../../services/rpc/status-details.js';
import { type Servers, startServers } from '../../services/server.js';
import { callDeadlineMs, grpcJsClient } from '../support/grpc-js-client.js';
import { type RedisServer, startRedis, stopRedis } from '../support/redis.js';
import { type RedisCluster, startRedisCluster } from '../support/redis-cluster.js';

export type ClientKind = 'grpc-js' | 'connect';
/**
 * Where payment state lives: `memory` (nothing on disk), `journal` (the embedded default, a
 * journal in the environment's data directory), `redis` (a private redis-server), `redis-cluster`
 * (a private 3-master Redis Cluster).
 */
export type StoreKind = 'memory' | 'journal' | 'redis' | 'redis-cluster';

/** The four services' clients, one key: the same shape the CLI's client commands use. */
export type { Clients } from '../../services/commands/connection.js';

export interface Env {
  readonly name: string;
  readonly client: ClientKind;
  readonly store: StoreKind;
  readonly app: App;
  readonly inbox: InboxNotifier;
  /** Every log line the service wrote (pino JSON), for the secret scan. */
  readonly logs: string[];
  readonly admin: Clients;
  readonly grpcPort: number;
  /** The private redis-server, on the Redis store (outage tests stop and restart it). */
  readonly redis: RedisServer | undefined;
  readonly connectPort: number;
  clients(key: string): Clients;
  close(): Promise<void>;
}

/**
 * Challenge lifetime in the shared test environments, milliseconds: long enough that no scenario
 * expires by accident on a loaded machine. The expiry scenario uses its own environment with
 * `shortCodeTtlMs`.
 */
export const testCodeTtlMs = 30_000;
export const shortCodeTtlMs = 1_500;

function bearer(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set('authorization', `Bearer ${key}`);
    return next(req);
  };
}

export async function startEnv(client: ClientKind, store: StoreKind, limits: Partial<PaymentLimits> = {}, overrides: Partial<Config> = {}): Promise<Env> {
  const redis: RedisServer | undefined = store === 'redis' ? await startRedis() : undefined;
  const cluster: RedisCluster | undefined = store === 'redis-cluster' ? await startRedisCluster({ masters: 3 }) : undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-e2e-'));
  const logs: string[] = [];
  const inbox = new InboxNotifier();
  const config = {
    ...loadConfig({}),
    dataDir,
    redisUrl: redis?.url,
    redisCluster: cluster?.nodes,
    masterKey: randomBytes(32).toString('base64'),
    adminKey: `cs_admin_${randomBytes(12).toString('hex')}`,
    ...overrides,
  };
  const app = await createApp({
    config,
    memoryLedger: true,
    memoryDirectory: true,
    memoryStore: store === 'memory',
    // With a telco bridge configured, codes and calls go through it; otherwise the inbox plays the handset.
    ...(overrides.telcoBridge === undefined ? { notifier: inbox } : {}),
    logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) }),
    limits: { codeTtlMs: testCodeTtlMs, reservationGraceSeconds: 1, ...limits },
  });
  const servers: Servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0 });
  const closers: (() => void)[] = [];
  const clients = (key: string): Clients => {
    if (client === 'grpc-js') {
      const make = <S extends DescService>(s: S) => {
        const c = grpcJsClient(s, `127.0.0.1:${servers.grpcPort}`, key);
        closers.push(c.close);
        return c.client;
      };
      return { payments: make(PaymentService), payer: make(PayerService), enrollment: make(EnrollmentService), ledger: make(LedgerService) };
    }
    const baseUrl = `http://127.0.0.1:${servers.connectPort}`;
    const sessionManager = new Http2SessionManager(baseUrl);
    closers.push(() => sessionManager.abort());
    const transport = createConnectTransport({ baseUrl, httpVersion: '2', sessionManager, interceptors: [bearer(key)], defaultTimeoutMs: callDeadlineMs });
    return {
      payments: createClient(PaymentService, transport),
      payer: createClient(PayerService, transport),
      enrollment: createClient(EnrollmentService, transport),
      ledger: createClient(LedgerService, transport),
    };
  };
  return {
    name: `${client} client, ${store} store`,
    client,
    store,
    app,
    inbox,
    logs,
    admin: clients(app.adminKey),
    grpcPort: servers.grpcPort,
    redis,
    connectPort: servers.connectPort,
    clients,
    async close() {
      closers.forEach((close) => close());
      await servers.close();
      await app.close();
      if (redis !== undefined) await stopRedis(redis).catch(() => undefined);
      await cluster?.stop().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------ actors

export interface Merchant {
  id: string;
  apiKey: string;
  account: string;
  api: Clients;
}

export interface Payer {
  id: string;
  secret: Buffer;
  secretBase32: string;
  token: string;
  account: string;
  api: Clients;
}

let counter = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${++counter}-${randomBytes(3).toString('hex')}`;

export async function newMerchant(env: Env, feeBasisPoints = 100, perPaymentLimit = 0n): Promise<Merchant> {
  const r = await env.admin.enrollment.enrollMerchant({
    idempotencyKey: unique('merchant'),
    name: 'Shop',
    currencies: ['USD'],
    feeBasisPoints,
    perPaymentLimit,
  });
  return { id: r.merchantId, apiKey: r.apiKey, account: r.payeeAccountIds.USD!, api: env.clients(r.apiKey) };
}

/** Default policy: no factor below 1.00, the second code up to 1000.00, second code + PIN above. */
export const testPolicy = {
  currency: 'USD',
  noFactorBelow: 1_00n,
  oneFactorUpTo: 1000_00n,
  oneFactor: Factor.SECOND_CODE,
  moreFactors: [Factor.SECOND_CODE, Factor.FIRST_CODE_AND_PIN],
};

export async function newPayer(env: Env, funds = 500_00n, policy: Partial<PayerPolicy> = {}): Promise<Payer> {
  const phone = `+1415${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
  const r = await env.admin.enrollment.enrollPayer({
    idempotencyKey: unique('payer'),
    phone,
    displayName: 'Payer',
    currencies: ['USD'],
    policies: [{ ...testPolicy, ...policy }],
  });
  const account = r.payer!.prepaidAccountIds.USD!;
  if (funds > 0n) await env.admin.ledger.fundAccount({ idempotencyKey: unique('fund'), accountId: account, amount: funds, currency: 'USD' });
  return {
    id: r.payer!.id,
    secret: base32Decode(r.verificationSecretBase32),
    secretBase32: r.verificationSecretBase32,
    token: r.payerToken,
    account,
    api: env.clients(r.payerToken),
  };
}

export async function balance(env: Env, account: string): Promise<{ available: bigint; posted: bigint; reserved: bigint; credited: bigint }> {
  const a = (await env.admin.ledger.getAccount({ accountId: account })).account!;
  const posted = a.creditsPosted - a.debitsPosted;
  return { available: posted - a.debitsPending, posted, reserved: a.debitsPending, credited: a.creditsPosted };
}

/** What the payer's terminal computes. */
export function secondCode(payer: Payer, firstCode: string, amount: bigint, payeeAccountId: string, currency = 'USD'): string {
  return deriveSecondCode(payer.secret, { firstCode, amount, currency, payeeAccountId });
}

export const key = unique;

/** The call fails with `code`; the error, for its message and details. */
export async function refusedWith(t: ExecutionContext, call: Promise<unknown>, code: Code): Promise<ConnectError> {
  const e = ConnectError.from(await t.throwsAsync(call));
  t.is(e.code, code, e.message);
  return e;
}

/** The ErrorInfo reason of a refusal. */
export function reasonOf(e: ConnectError): string | undefined {
  const [info] = e.findDetails(ErrorInfoSchema) as unknown as { reason: string }[];
  return info?.reason;
}

/**
 * An APP payment of `payer` at `merchant` (it must be CHALLENGED), its first code as the payer's
 * terminal reads it, and the second code the terminal computes from it (and one that is wrong).
 */
export async function appPayment(
  merchant: Merchant,
  payer: Payer,
  amount: bigint,
): Promise<{ id: string; firstCode: string; code: string; wrongCode: string }> {
  const created = await merchant.api.payments.createPayment({
    idempotencyKey: unique('app'),
    payer: { case: 'payerId', value: payer.id },
    amount,
    currency: 'USD',
    description: 'app',
    channel: Channel.APP,
  });
  const p = created.payment!;
  if (p.state !== PaymentState.CHALLENGED) throw new Error(`payment ${p.id} is ${PaymentState[p.state]}, not CHALLENGED`);
  const { firstCode } = await payer.api.payer.getChallenge({ paymentId: p.id });
  const code = secondCode(payer, firstCode, amount, merchant.account);
  return { id: p.id, firstCode, code, wrongCode: code === '12345678' ? '87654321' : '12345678' };
}
