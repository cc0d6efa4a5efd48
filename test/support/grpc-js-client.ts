import { create, type DescService, fromBinary, type Message } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { type Client, type Code, ConnectError } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import { grpcServiceDefinition } from '../../services/rpc/grpc-server.js';
import { ErrorInfoSchema, StatusSchema } from '../../services/rpc/status-details.js';

/** Deadline of every call a test makes, milliseconds: no test waits forever on a server. */
export const callDeadlineMs = 15_000;

/** A grpc-js ServiceError as the ConnectError a connect client would have raised (code, message, ErrorInfo details). */
function toConnectError(error: grpc.ServiceError): ConnectError {
  const details: { desc: typeof ErrorInfoSchema; value: Message }[] = [];
  const bin = error.metadata?.get('grpc-status-details-bin')[0];
  if (bin instanceof Buffer) {
    const status = fromBinary(StatusSchema, bin) as Message & { details: Parameters<typeof anyUnpack>[0][] };
    for (const any of status.details) {
      const info = anyUnpack(any, ErrorInfoSchema);
      if (info !== undefined) details.push({ desc: ErrorInfoSchema, value: info });
    }
  }
  return new ConnectError(error.details, error.code as number as Code, undefined, details as never);
}

/**
 * A client made with @grpc/grpc-js (not connect) that has the same shape as a connect
 * `Client<S>`: unary methods return promises, server-streaming methods async iterables, and
 * failures are ConnectErrors. The same scenario code then runs with both kinds of client.
 */
export function grpcJsClient<S extends DescService>(service: S, address: string, key: string): { client: Client<S>; close(): void } {
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  const raw = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  const metadata = () => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${key}`);
    return md;
  };
  const client: Record<string, unknown> = {};
  for (const method of service.methods) {
    const fn = raw[method.localName]!.bind(raw);
    if (method.methodKind === 'unary') {
      client[method.localName] = (input: object) =>
        new Promise((resolve, reject) => {
          fn(create(method.input, input as never), metadata(), { deadline: Date.now() + callDeadlineMs }, (error: grpc.ServiceError | null, value: unknown) =>
            error ? reject(toConnectError(error)) : resolve(value),
          );
        });
    } else {
      client[method.localName] = (input: object, options: { signal?: AbortSignal } = {}) =>
        streamOf(fn(create(method.input, input as never), metadata(), {}) as grpc.ClientReadableStream<unknown>, options.signal);
    }
  }
  return { client: client as Client<S>, close: () => raw.close() };
}

async function* streamOf(call: grpc.ClientReadableStream<unknown>, signal: AbortSignal | undefined): AsyncGenerator<unknown> {
  signal?.addEventListener('abort', () => call.cancel());
  try {
    for await (const message of call) yield message;
  } catch (error) {
    if ((error as grpc.ServiceError).code === grpc.status.CANCELLED && signal?.aborted) return;
    throw toConnectError(error as grpc.ServiceError);
  } finally {
    call.cancel();
  }
}
