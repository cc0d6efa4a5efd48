import { create, fromBinary, type Message } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { type Client, ConnectError, createClient, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from '@connectrpc/connect-node';
import * as grpc from '@grpc/grpc-js';
import {
  CancelPaymentRequestSchema,
  CreatePaymentRequestSchema,
  GetPaymentRequestSchema,
  type GetPaymentResponse,
  ListPaymentsRequestSchema,
  PaymentService,
  WatchPaymentsRequestSchema,
  type WatchPaymentsResponse,
} from '../../../gen/countersign/v1/payments_pb.js';
import { grpcServiceDefinition } from '../../../services/rpc/grpc-server.js';
import { ErrorInfoSchema, StatusSchema } from '../../../services/rpc/status-details.js';
import { waitMsMax } from './fixtures.js';

/**
 * One face for the three kinds of client the tests drive (grpc-js, connect-node over gRPC,
 * Connect or gRPC-Web), so the same assertions run against every client × server pair.
 */

export interface CallOptions {
  readonly key?: string;
  /** The client's deadline; `null` sends none (the server default applies). */
  readonly timeoutMs?: number | null;
  readonly signal?: AbortSignal;
}

export interface ErrorInfo {
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Record<string, string>;
}

export type Outcome<T> =
  | { readonly ok: true; readonly value: T; readonly header: Headers }
  | { readonly ok: false; readonly code: number; readonly message: string; readonly errorInfo: ErrorInfo[] };

export interface PaymentCaller {
  readonly name: string;
  getPayment(paymentId: string, opts?: CallOptions): Promise<Outcome<GetPaymentResponse>>;
  cancelPayment(paymentId: string, opts?: CallOptions): Promise<Outcome<unknown>>;
  createPayment(opts?: CallOptions): Promise<Outcome<unknown>>;
  listPayments(opts?: CallOptions): Promise<Outcome<unknown>>;
  /** Collects the stream; `onFirst` runs after the first message arrives. */
  watchPayments(paymentId: string, opts?: CallOptions, onFirst?: () => void): Promise<Outcome<WatchPaymentsResponse[]>>;
  close(): void;
}

// ----------------------------------------------------------------------------- grpc-js

type GrpcUnaryFn = (
  req: Message,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, value?: Message) => void,
) => grpc.ClientUnaryCall;
type GrpcStreamFn = (req: Message, md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<Message>;

export function grpcJsCaller(port: number): PaymentCaller {
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(PaymentService), 'PaymentService');
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, unknown>;
  const unary = <O>(method: string, req: Message, opts: CallOptions = {}) =>
    new Promise<Outcome<O>>((resolve) => {
      let header = new Headers();
      const fn = client[method] as GrpcUnaryFn;
      const call = fn.call(client, req, metadataOf(opts), callOptionsOf(opts), (error, value) => {
        if (error) resolve(grpcFailure(error));
        else resolve({ ok: true, value: value as O, header });
      });
      call.on('metadata', (md: grpc.Metadata) => (header = headersOf(md)));
      opts.signal?.addEventListener('abort', () => call.cancel());
    });
  return {
    name: 'grpc-js client',
    getPayment: (paymentId, opts) => unary('getPayment', create(GetPaymentRequestSchema, { paymentId }), opts),
    cancelPayment: (paymentId, opts) => unary('cancelPayment', create(CancelPaymentRequestSchema, { paymentId }), opts),
    createPayment: (opts) => unary('createPayment', create(CreatePaymentRequestSchema, { amount: 1n }), opts),
    listPayments: (opts) => unary('listPayments', create(ListPaymentsRequestSchema), opts),
    watchPayments: (paymentId, opts = {}, onFirst) =>
      new Promise((resolve) => {
        const messages: WatchPaymentsResponse[] = [];
        let header = new Headers();
        const fn = client.watchPayments as GrpcStreamFn;
        const call = fn.call(client, create(WatchPaymentsRequestSchema, { paymentId }), metadataOf(opts), callOptionsOf(opts));
        call.on('metadata', (md: grpc.Metadata) => (header = headersOf(md)));
        call.on('data', (m: WatchPaymentsResponse) => {
          messages.push(m);
          if (messages.length === 1) onFirst?.();
        });
        call.on('error', (error: grpc.ServiceError) => resolve(grpcFailure(error)));
        call.on('end', () => resolve({ ok: true, value: messages, header }));
        opts.signal?.addEventListener('abort', () => call.cancel());
      }),
    close: () => client.close(),
  };
}

/** A raw unary call whose request bytes are `bytes` (for the undecodable-request test). */
export function grpcJsRawUnary(port: number, path: string, bytes: Buffer, key: string): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${key}`);
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      md,
      { deadline: Date.now() + waitMsMax },
      (error) => {
        client.close();
        resolve(error);
      },
    );
  });
}

function metadataOf(opts: CallOptions): grpc.Metadata {
  const md = new grpc.Metadata();
  if (opts.key !== undefined) md.set('authorization', `Bearer ${opts.key}`);
  return md;
}

function callOptionsOf(opts: CallOptions): grpc.CallOptions {
  // Without a deadline of its own the test still bounds the wait: see suite's `within`.
  return opts.timeoutMs === null ? {} : { deadline: Date.now() + (opts.timeoutMs ?? waitMsMax) };
}

function headersOf(md: grpc.Metadata): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(md.getMap())) h.set(k, typeof v === 'string' ? v : v.toString('base64'));
  return h;
}

function grpcFailure(error: grpc.ServiceError): Outcome<never> {
  const bin = error.metadata?.get('grpc-status-details-bin')[0];
  const errorInfo: ErrorInfo[] = [];
  if (bin instanceof Buffer) {
    const status = fromBinary(StatusSchema, bin) as Message & { details: Parameters<typeof anyUnpack>[0][] };
    for (const any of status.details) {
      const info = anyUnpack(any, ErrorInfoSchema);
      if (info !== undefined) errorInfo.push(info as unknown as ErrorInfo);
    }
  }
  return { ok: false, code: error.code, message: error.details, errorInfo };
}

// ---------------------------------------------------------------------------- connect-node

export type ConnectProtocol = 'grpc' | 'connect' | 'grpc-web';

export function connectCaller(port: number, protocol: ConnectProtocol): PaymentCaller {
  const baseUrl = `http://127.0.0.1:${port}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  const options = { baseUrl, httpVersion: '2' as const, sessionManager };
  const transport: Transport =
    protocol === 'grpc' ? createGrpcTransport(options) : protocol === 'connect' ? createConnectTransport(options) : createGrpcWebTransport(options);
  const client: Client<typeof PaymentService> = createClient(PaymentService, transport);
  const call = async <T>(run: (o: object) => Promise<T>, opts: CallOptions = {}): Promise<Outcome<T>> => {
    let header = new Headers();
    try {
      const value = await run({
        headers: opts.key === undefined ? {} : { authorization: `Bearer ${opts.key}` },
        timeoutMs: opts.timeoutMs === null ? undefined : (opts.timeoutMs ?? waitMsMax),
        signal: opts.signal,
        onHeader: (h: Headers) => (header = h),
      });
      return { ok: true, value, header };
    } catch (error) {
      const e = ConnectError.from(error);
      const errorInfo = e.findDetails(ErrorInfoSchema) as unknown as ErrorInfo[];
      return { ok: false, code: e.code, message: e.rawMessage, errorInfo };
    }
  };
  return {
    name: `connect ${protocol} client`,
    getPayment: (paymentId, opts) => call((o) => client.getPayment({ paymentId }, o), opts),
    cancelPayment: (paymentId, opts) => call((o) => client.cancelPayment({ paymentId }, o), opts),
    createPayment: (opts) => call((o) => client.createPayment({ amount: 1n }, o), opts),
    listPayments: (opts) => call((o) => client.listPayments({}, o), opts),
    watchPayments: (paymentId, opts, onFirst) =>
      call(async (o) => {
        const messages: WatchPaymentsResponse[] = [];
        for await (const m of client.watchPayments({ paymentId }, o)) {
          messages.push(m);
          if (messages.length === 1) onFirst?.();
        }
        return messages;
      }, opts),
    close: () => sessionManager.abort(),
  };
}
