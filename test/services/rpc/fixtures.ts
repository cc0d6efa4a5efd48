import * as dgram from 'node:dgram';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type Interceptor, type ServiceImpl } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import StatsD from 'hot-shots';
import pino from 'pino';
import { DomainError } from '../../../authz/errors.js';
import { PaymentService } from '../../../gen/countersign/v1/payments_pb.js';
import { type RunningConnectServer, startConnectServer } from '../../../services/rpc/connect-server.js';
import { type RunningServer, routesOf, startGrpcServer } from '../../../services/rpc/grpc-host.js';
import { type AccessLog, authenticate, deadline, logging, metrics, type Principal, principalKey } from '../../../services/rpc/interceptors.js';

/** Every wait in these tests is bounded by this (ms). */
export const waitMsMax = 5_000;
export const merchantKey = 'k-merchant-0123456789';
export const unaryDeadlineMsTest = 300;

/** Rejects if `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** What the throwaway implementation saw, for assertions. */
export interface Observed {
  aborted: string[];
}

/**
 * A throwaway PaymentService: GetPayment echoes its id (and the caller's id) unless the id asks
 * for an outcome; WatchPayments streams 3 messages (or one then waits for its signal);
 * CancelPayment is NOT_FOUND; CreatePayment throws a plain Error; the rest are UNIMPLEMENTED.
 */
export function paymentImpl(observed: Observed): ServiceImpl<typeof PaymentService> {
  const unimplemented = (): never => {
    throw new ConnectError('not in this fixture', Code.Unimplemented);
  };
  return {
    async getPayment(req, ctx) {
      const principal = ctx.values.get(principalKey);
      ctx.responseHeader.set('x-fixture', 'get-payment');
      if (req.paymentId === 'missing') throw new ConnectError('payment missing not found', Code.NotFound);
      if (req.paymentId === 'boom') throw new Error('boom: redis at 10.1.2.3 said no');
      if (req.paymentId === 'wrong-code') throw new DomainError('permission_denied', 'wrong code', { attemptsLeft: 2 });
      if (req.paymentId.startsWith('sleep-')) {
        try {
          await sleep(Number(req.paymentId.slice('sleep-'.length)), undefined, { signal: ctx.signal });
        } catch (error) {
          observed.aborted.push(req.paymentId);
          throw error;
        }
      }
      return {
        payment: {
          id: req.paymentId,
          merchantId: principal?.id ?? '',
          amount: 12_345_678_901_234_567n,
          currency: 'EUR',
          createdAt: timestampFromMs(1_700_000_000_000),
        },
      };
    },
    async *watchPayments(req, ctx) {
      if (req.paymentId === 'forever') {
        yield { payment: { id: 'first' } };
        try {
          await sleep(60_000, undefined, { signal: ctx.signal });
        } finally {
          observed.aborted.push('forever');
        }
        return;
      }
      for (let i = 0; i < 3; i++) yield { payment: { id: `${req.paymentId}-${i}`, attemptsLeft: i } };
    },
    cancelPayment() {
      throw new ConnectError('payment not found', Code.NotFound);
    },
    createPayment() {
      throw new Error('null pointer in the authorizer chain');
    },
    listPayments: unimplemented,
    batchCreatePayments: unimplemented,
    batchConfirmPayments: unimplemented,
    confirmPaymentAsMerchant: unimplemented,
  };
}

/** A pino logger writing JSON lines into `lines`. */
export function capturingLogger(lines: Record<string, unknown>[]): pino.Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return pino({ level: 'info' }, sink);
}

/** A real statsd collector: a UDP socket on 127.0.0.1 that keeps every packet's lines. */
export async function statsdCollector(): Promise<{ port: number; packets: string[]; close(): Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  const packets: string[] = [];
  socket.on('message', (msg) =>
    packets.push(
      ...msg
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== ''),
    ),
  );
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { port: socket.address().port, packets, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
}

export type ServerKind = 'grpc-js' | 'connect-node';

export interface Harness {
  readonly server: RunningServer | RunningConnectServer;
  readonly port: number;
  readonly logs: Record<string, unknown>[];
  readonly packets: string[];
  readonly observed: Observed;
  /** The chain's access log: `flush()` writes its pending summary now. */
  readonly accessLog: AccessLog;
  close(): Promise<void>;
}

/** The interceptor chain both servers get: same values, same order. */
function interceptorsFor(accessLog: AccessLog, statsd: InstanceType<typeof StatsD>): Interceptor[] {
  const principals = new Map<string, Principal>([[merchantKey, { kind: 'merchant', id: 'merchant-1' }]]);
  return [
    accessLog,
    metrics(statsd),
    authenticate(async (key) => principals.get(key), { publicMethods: ['countersign.v1.PaymentService/ListPayments'] }),
    deadline({ rpcDeadlineMsDefault: unaryDeadlineMsTest, streamDeadlineMsDefault: 60_000 }),
  ];
}

/** Starts a real server of `kind` on 127.0.0.1, port 0, with the fixture and the chain. */
export async function startHarness(kind: ServerKind): Promise<Harness> {
  const logs: Record<string, unknown>[] = [];
  const logger = capturingLogger(logs);
  const collector = await statsdCollector();
  const statsd = new StatsD({ host: '127.0.0.1', port: collector.port, protocol: 'udp', maxBufferSize: 0, errorHandler: () => undefined });
  const observed: Observed = { aborted: [] };
  const services = [{ service: PaymentService, impl: paymentImpl(observed) }] as const;
  const accessLog = logging(logger);
  const interceptors = interceptorsFor(accessLog, statsd);
  const common = { host: '127.0.0.1', port: 0, interceptors, logger, shutdownGraceMs: 2_000 };
  const server =
    kind === 'grpc-js'
      ? await startGrpcServer({ ...common, services, credentials: grpc.ServerCredentials.createInsecure() })
      : await startConnectServer({ ...common, routes: routesOf(services) });
  let closing: Promise<void> | undefined;
  return {
    server,
    port: server.port,
    logs,
    packets: collector.packets,
    observed,
    accessLog,
    close() {
      closing ??= (async () => {
        await within(server.close(), waitMsMax, `${kind} server close`);
        await new Promise<void>((resolve) => statsd.close(() => resolve()));
        await collector.close();
      })();
      return closing;
    },
  };
}

/** TCP handles alive in this process (sockets and listeners). */
export function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
}

/** Waits (bounded) until the TCP handle count is back to `baseline`; returns the last count. */
export async function tcpHandlesSettle(baseline: number): Promise<number> {
  const deadlineAt = Date.now() + waitMsMax;
  while (tcpHandles() > baseline && Date.now() < deadlineAt) await sleep(20);
  return tcpHandles();
}
