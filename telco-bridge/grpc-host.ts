import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { create, fromBinary, toBinary, type DescMethod, type DescService, type Message } from '@bufbuild/protobuf';
import { ConnectError, createHandlerContext, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { methodPath } from './grpc-codec.js';

/**
 * A small grpc-js host for one protobuf-es `ServiceImpl` (unary and server-streaming methods),
 * behind one shared service key (`authorization: Bearer <key>` or `x-api-key`). Handler errors
 * that are ConnectErrors keep their code and message; anything else is INTERNAL with a generic
 * message (the original goes to the log).
 */

export interface GrpcHostOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  serviceKey: string;
  logger: Logger;
  /** On close, in-flight calls get this long to finish before the server is forced down. */
  shutdownGraceMs: number;
}

export interface GrpcHost {
  port: number;
  close(): Promise<void>;
}

type Decoded = { ok: true; message: Message } | { ok: false };

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const digest = (value: string) => createHash('sha256').update(value).digest();

/** True when the metadata carries the service key (compared in constant time). */
export function hasServiceKey(metadata: grpc.Metadata, serviceKey: string): boolean {
  const authorization = metadata.get('authorization')[0];
  const apiKey = metadata.get('x-api-key')[0];
  const given = typeof authorization === 'string' && /^Bearer /i.test(authorization) ? authorization.slice(7).trim() : typeof apiKey === 'string' ? apiKey : undefined;
  return given !== undefined && given !== '' && timingSafeEqual(digest(given), digest(serviceKey));
}

function definitionOf(method: DescMethod): grpc.MethodDefinition<Decoded, Message> {
  return {
    path: methodPath(method),
    requestStream: false,
    responseStream: method.methodKind === 'server_streaming',
    requestSerialize: (d: Decoded) => toBuffer(d.ok ? toBinary(method.input, d.message) : new Uint8Array()),
    requestDeserialize: (bytes: Buffer): Decoded => {
      try {
        return { ok: true, message: fromBinary(method.input, bytes) };
      } catch {
        return { ok: false };
      }
    },
    responseSerialize: (m: Message) => toBuffer(toBinary(method.output, create(method.output, m as never))),
    responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    originalName: method.localName,
  };
}

function headersOf(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(metadata.getMap())) if (typeof value === 'string') headers.set(key, value);
  return headers;
}

export async function hostService<S extends DescService>(service: S, impl: ServiceImpl<S>, options: GrpcHostOptions): Promise<GrpcHost> {
  const server = new grpc.Server();
  const shutdown = new AbortController();
  const definition: Record<string, grpc.MethodDefinition<Decoded, Message>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};

  const toStatus = (method: DescMethod, error: unknown): Partial<grpc.StatusObject> => {
    if (error instanceof ConnectError) return { code: error.code as number as grpc.status, details: error.rawMessage };
    options.logger.error({ err: error, method: methodPath(method) }, 'telco bridge handler failed');
    return { code: grpc.status.INTERNAL, details: 'internal error' };
  };
  /** The request if the caller may make it, else the status to answer with. */
  const admit = (method: DescMethod, call: { metadata: grpc.Metadata; request: Decoded }): Message | Partial<grpc.StatusObject> => {
    if (!hasServiceKey(call.metadata, options.serviceKey)) return { code: grpc.status.UNAUTHENTICATED, details: 'missing or bad service key' };
    if (!call.request.ok) return { code: grpc.status.INVALID_ARGUMENT, details: `cannot decode ${method.input.typeName}` };
    return call.request.message;
  };
  const contextFor = (method: DescMethod, call: grpc.ServerUnaryCall<Decoded, Message> | grpc.ServerWritableStream<Decoded, Message>) => {
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    const context = createHandlerContext({
      service,
      method,
      protocolName: 'grpc',
      requestMethod: 'POST',
      url: methodPath(method),
      requestHeader: headersOf(call.metadata),
      shutdownSignal: shutdown.signal,
      ...(Number.isFinite(deadlineMs) ? { timeoutMs: Math.max(0, deadlineMs - Date.now()) } : {}),
    });
    call.on('cancelled', () => context.abort());
    return context;
  };

  for (const method of service.methods) {
    const fn = (impl as Record<string, (request: Message, context: HandlerContext) => unknown>)[method.localName]!.bind(impl);
    definition[method.localName] = definitionOf(method);
    if (method.methodKind === 'unary') {
      handlers[method.localName] = (call: grpc.ServerUnaryCall<Decoded, Message>, callback: grpc.sendUnaryData<Message>) => {
        const admitted = admit(method, call);
        if (!('$typeName' in admitted)) return callback(admitted);
        const context = contextFor(method, call);
        Promise.resolve(fn(admitted, context)).then(
          (out) => callback(null, create(method.output, out as never)),
          (error: unknown) => callback(toStatus(method, error)),
        ).finally(() => context.abort());
      };
    } else if (method.methodKind === 'server_streaming') {
      handlers[method.localName] = (call: grpc.ServerWritableStream<Decoded, Message>) => {
        const admitted = admit(method, call);
        if (!('$typeName' in admitted)) return void call.emit('error', admitted);
        const context = contextFor(method, call);
        void serveStream(call, fn(admitted, context) as AsyncIterable<Message>, context.signal).then(
          () => call.end(),
          (error: unknown) => (context.signal.aborted && !(error instanceof ConnectError) ? call.end() : call.emit('error', toStatus(method, error))),
        ).finally(() => context.abort());
      };
    } else {
      throw new Error(`assertion failed: ${methodPath(method)} is ${method.methodKind}; the host serves unary and server streaming`);
    }
  }
  server.addService(definition, handlers);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    port,
    close: async () => {
      shutdown.abort();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, options.shutdownGraceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/** Writes every message of `messages` to `call`, honouring back-pressure, until done or aborted. */
async function serveStream(call: grpc.ServerWritableStream<Decoded, Message>, messages: AsyncIterable<Message>, signal: AbortSignal): Promise<void> {
  const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  for await (const message of messages) {
    if (signal.aborted) return;
    if (!call.write(message)) await Promise.race([once(call, 'drain'), aborted]);
  }
}
