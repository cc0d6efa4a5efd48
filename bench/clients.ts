import { create, type DescService } from '@bufbuild/protobuf';
import { type CallOptions, type Client, type Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import * as grpc from '@grpc/grpc-js';
import { EnrollmentService } from '../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../gen/countersign/v1/payments_pb.js';
import { grpcServiceDefinition } from '../services/rpc/grpc-server.js';
import type { ClientKind } from './options.js';

/**
 * The load generator's clients, one HTTP/2 connection to the server's grpc-js port, with the
 * caller's key per call (`auth(key)`): either @grpc/grpc-js (with the protobuf-es codec the
 * server uses) or connect-node's gRPC transport. Both have connect's `Client<S>` shape, unary
 * methods only, and fail with a ConnectError carrying the gRPC status code.
 */

export interface Clients {
  payments: Client<typeof PaymentService>;
  payer: Client<typeof PayerService>;
  enrollment: Client<typeof EnrollmentService>;
  ledger: Client<typeof LedgerService>;
  close(): void;
}

/** Deadline of every bench call, milliseconds: a stuck server fails calls, it never hangs the bench. */
export const callDeadlineMs = 15_000;

/** Per-call options carrying the caller's bearer key. */
export function auth(key: string): CallOptions {
  return { headers: { authorization: `Bearer ${key}` }, timeoutMs: callDeadlineMs };
}

export function openClients(kind: ClientKind, port: number): Clients {
  return kind === 'grpc-js' ? grpcJsClients(port) : connectClients(port);
}

function connectClients(port: number): Clients {
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  return {
    payments: createClient(PaymentService, transport),
    payer: createClient(PayerService, transport),
    enrollment: createClient(EnrollmentService, transport),
    ledger: createClient(LedgerService, transport),
    // connect-node's session manager closes idle connections by itself; the process exits after.
    close: () => undefined,
  };
}

function grpcJsClients(port: number): Clients {
  // Its own connection (a local subchannel pool): grpc-js would otherwise share one connection
  // between channels to the same target, and `--workers N` opens N to reach every worker.
  const channel = new grpc.Channel(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.enable_channelz': 0,
    'grpc.enable_retries': 0,
    'grpc.use_local_subchannel_pool': 1,
  });
  const made: grpc.Client[] = [];
  const of = <S extends DescService>(service: S): Client<S> => {
    const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
    const raw = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { channelOverride: channel });
    made.push(raw);
    return grpcJsClient(service, raw as unknown as grpc.Client & Record<string, UnaryFn>);
  };
  return {
    payments: of(PaymentService),
    payer: of(PayerService),
    enrollment: of(EnrollmentService),
    ledger: of(LedgerService),
    close: () => {
      for (const c of made) c.close();
      channel.close();
    },
  };
}

type UnaryFn = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, value?: unknown) => void,
) => unknown;

function grpcJsClient<S extends DescService>(service: S, raw: grpc.Client & Record<string, UnaryFn>): Client<S> {
  const client: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind !== 'unary') continue;
    const fn = raw[method.localName]!.bind(raw);
    client[method.localName] = (input: object, options: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        const metadata = new grpc.Metadata();
        for (const [key, value] of Object.entries((options.headers ?? {}) as Record<string, string>)) metadata.set(key, value);
        const deadline = Date.now() + (options.timeoutMs ?? callDeadlineMs);
        fn(create(method.input, input as never), metadata, { deadline }, (error, value) =>
          error ? reject(new ConnectError(error.details, error.code as number as Code)) : resolve(value),
        );
      });
  }
  return client as Client<S>;
}

/** gRPC status names, as the report shows them (errors are counted by status). */
export function statusName(error: unknown): string {
  if (error instanceof ConnectError) return grpcStatusName(error.code);
  return error instanceof Error && /first code/.test(error.message) ? 'NO_FIRST_CODE' : 'CLIENT_ERROR';
}

export function grpcStatusName(code: number): string {
  return grpcNames[code] ?? `CODE_${code}`;
}

const grpcNames: Record<number, string> = {
  1: 'CANCELLED',
  2: 'UNKNOWN',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  10: 'ABORTED',
  11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  15: 'DATA_LOSS',
  16: 'UNAUTHENTICATED',
};
