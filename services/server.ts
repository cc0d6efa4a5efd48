import type { Interceptor } from '@connectrpc/connect';
import type * as grpc from '@grpc/grpc-js';
import type { StatsD as StatsDClient } from 'hot-shots';
import type { Payment } from '../authz/model.js';
import { EnrollmentService } from '../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../gen/countersign/v1/payments_pb.js';
import type { App } from './app.js';
import type { TlsFiles } from './config.js';
import { enrollmentServiceImpl } from './handlers/enrollment-service.js';
import { ledgerServiceImpl } from './handlers/ledger-service.js';
import { payerServiceImpl } from './handlers/payer-service.js';
import { paymentServiceImpl } from './handlers/payment-service.js';
import { startConnectServer } from './rpc/connect-server.js';
import { grpcServerCredentials, routesOf, startGrpcServer } from './rpc/grpc-host.js';
import { type AccessLog, authenticate, deadline, logging, metrics } from './rpc/interceptors.js';
import { type RunningWebTerminal, startWebTerminal } from './web/web-terminal.js';

/**
 * How often the sweeper claims payments whose due time has come (expiries, posts and voids a
 * crashed call left), milliseconds. Any number of processes may sweep: claims are atomic.
 */
export const expirySweepIntervalMs = 1_000;
/** Payments claimed per sweep. */
export const expirySweepBatchMax = 500;

export interface Servers {
  grpcPort: number;
  connectPort: number;
  /** The payer web terminal's URL, when it was asked for (`webPort`). */
  webUrl: string | undefined;
  close(): Promise<void>;
}

/** The four authz services with their implementations, one list for both servers. */
export function serviceEntries(app: App) {
  const listPayments = (q: { merchantId?: string; payerId?: string; states: Payment['state'][]; afterId?: string; limit: number }) =>
    app.payments.list({ ...q, ...(q.states.length === 0 ? { states: undefined } : {}) });
  const payeeName = async (p: Payment) => (await app.directory.getMerchant(p.merchantId))?.name ?? '';
  return [
    { service: PaymentService, impl: paymentServiceImpl({ payments: app.payments, directory: app.directory, events: app.events, listPayments }) },
    { service: PayerService, impl: payerServiceImpl({ payments: app.payments, directory: app.directory, events: app.events, listPayments, payeeName }) },
    { service: EnrollmentService, impl: enrollmentServiceImpl({ enrollment: app.enrollment }) },
    {
      service: LedgerService,
      impl: ledgerServiceImpl({
        ledger: app.ledger,
        directory: app.directory,
        payments: app.store,
        enrollment: app.enrollment,
        ...(app.totals ? { totals: app.totals } : {}),
      }),
    },
  ] as const;
}

/** One access log per app, shared by its servers (one summary per method and process), flushed when they close. */
const accessLogs = new WeakMap<App, AccessLog>();
function accessLogOf(app: App): AccessLog {
  let log = accessLogs.get(app);
  if (log === undefined) accessLogs.set(app, (log = logging(app.logger)));
  return log;
}

function interceptorsFor(app: App, statsd: StatsDClient | undefined): Interceptor[] {
  return [
    accessLogOf(app),
    ...(statsd === undefined ? [] : [metrics(statsd)]),
    deadline(),
    authenticate((key) => app.resolvePrincipal(key), { publicMethods: [] }),
  ];
}

export interface ServerOptions {
  host: string;
  grpcPort: number;
  connectPort: number;
  /** Credentials for the gRPC port; when given, `tls` is not read. */
  grpcCredentials?: grpc.ServerCredentials;
  /**
   * TLS (and mTLS) for the gRPC port (Config.tls); null: plaintext. Left out, the app's
   * configuration decides (`app.tls`, its COUNTERSIGN_TLS_* settings), so a server is never
   * plaintext when TLS is configured.
   */
  tls?: TlsFiles | null;
  /** The payer web terminal's port (HTTP/1.1; 0 picks a free one); left out: no web terminal. */
  webPort?: number;
  /**
   * False: a busy `webPort` (the default 8082, say, with several local processes) only logs a
   * warning and the other servers run without the web terminal. Default true.
   */
  webPortRequired?: boolean;
}

/**
 * The payer web terminal (services/web): the page and PayerService over HTTP/1.1 for browsers,
 * with the same implementation and interceptors as the other servers.
 */
export function startPayerWebTerminal(app: App, opts: { host: string; port: number }): Promise<RunningWebTerminal> {
  const payer = serviceEntries(app)[1];
  if (payer.service !== PayerService) throw new Error('assertion failed: serviceEntries()[1] is not PayerService');
  return startWebTerminal({ routes: routesOf([payer]), host: opts.host, port: opts.port, interceptors: interceptorsFor(app, app.statsd), logger: app.logger });
}

/** The gRPC port's credentials: explicit ones, else `tls`, else the app's configuration. */
function grpcCredentialsOf(app: App, opts: ServerOptions): grpc.ServerCredentials {
  if (opts.grpcCredentials !== undefined) return opts.grpcCredentials;
  const tls = opts.tls === undefined ? app.tls : (opts.tls ?? undefined);
  return grpcServerCredentials(tls);
}

async function startWebTerminalIfAsked(app: App, opts: ServerOptions): Promise<RunningWebTerminal | undefined> {
  if (opts.webPort === undefined) return undefined;
  try {
    return await startPayerWebTerminal(app, { host: opts.host, port: opts.webPort });
  } catch (error) {
    if (opts.webPortRequired !== false || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    app.logger.warn({ port: opts.webPort }, 'payer web terminal not started: its port is in use (set COUNTERSIGN_WEB_PORT)');
    return undefined;
  }
}

/**
 * Serves the authz services over gRPC (grpc-js, with health and reflection; TLS or mTLS when
 * configured) and over Connect/gRPC-Web (connect-node, cleartext h2c), from the same
 * implementations and interceptors, and runs the expiry sweeper.
 */
export async function startServers(app: App, opts: ServerOptions): Promise<Servers> {
  const statsd = app.statsd;
  const services = serviceEntries(app);
  const interceptors = interceptorsFor(app, statsd);
  // First: the web terminal's port is the one most likely busy, and nothing is running yet to undo.
  const webTerminal = await startWebTerminalIfAsked(app, opts);
  const grpcServer = await startGrpcServer({
    host: opts.host,
    port: opts.grpcPort,
    services,
    interceptors,
    credentials: grpcCredentialsOf(app, opts),
    logger: app.logger,
  });
  const connectServer = await startConnectServer({ routes: routesOf(services), host: opts.host, port: opts.connectPort, interceptors, logger: app.logger });
  let sweeping = false; // a slow sweep (a slow ledger) is never overlapped by the next tick
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    app.payments
      .sweep(expirySweepBatchMax)
      .catch((err: unknown) => app.logger.warn({ err }, 'expiry sweep failed'))
      .finally(() => (sweeping = false));
  }, expirySweepIntervalMs);
  sweeper.unref();
  return {
    grpcPort: grpcServer.port,
    connectPort: connectServer.port,
    webUrl: webTerminal?.url,
    async close() {
      clearInterval(sweeper);
      await Promise.all([grpcServer.close(), connectServer.close(), webTerminal?.close()]);
      accessLogOf(app).flush();
    },
  };
}
