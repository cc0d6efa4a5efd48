import { readFileSync } from 'node:fs';
import { type DescFile, type DescService, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type ConnectRouter, type Interceptor, type ServiceImpl } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatusMap } from 'grpc-health-check';
import type { Logger } from 'pino';
import { ConfigError, type TlsFiles } from '../config.js';
import { addConnectService } from './grpc-server.js';
import { healthDescFile, healthServiceName } from './health-descriptor.js';
import { googleRpcDescFile } from './status-details.js';

/**
 * A grpc-js server for the API: the given services (the same ServiceImpl objects connect-node
 * serves), plus grpc.health.v1.Health and server reflection (v1 and v1alpha) for grpcurl-style
 * tools.
 */

/** Largest request message accepted, on both servers (bytes). */
export const messageBytesMax = 4 * 1024 * 1024;
/** How long close() lets unary calls finish before it cuts connections. */
export const shutdownGraceMsDefault = 5_000;

/**
 * Services with their implementations, each pair checked by the compiler: `impl` must be a
 * full `ServiceImpl<typeof service>` (every method), whatever the mix of services.
 */
export type ServiceEntries<T extends readonly DescService[]> = {
  readonly [K in keyof T]: { readonly service: T[K]; readonly impl: ServiceImpl<T[K]> };
};

/** One connect `routes` function over the same entries, for startConnectServer. */
export function routesOf<const T extends readonly DescService[]>(services: ServiceEntries<T>): (router: ConnectRouter) => void {
  const entries = services as readonly { service: DescService; impl: ServiceImpl<DescService> }[];
  return (router) => entries.forEach((e) => router.service(e.service, e.impl));
}

export interface GrpcServerOptions<T extends readonly DescService[]> {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly services: ServiceEntries<T>;
  readonly interceptors: readonly Interceptor[];
  readonly credentials: grpc.ServerCredentials;
  readonly logger: Pick<Logger, 'error'>;
  readonly shutdownGraceMs?: number;
}

export interface RunningServer {
  readonly port: number;
  /** Stops accepting, ends streams (UNAVAILABLE), lets unary calls finish within the grace
   * period, then cuts what is left. Resolves when every connection is closed. Idempotent. */
  close(): Promise<void>;
}

export async function startGrpcServer<const T extends readonly DescService[]>(opts: GrpcServerOptions<T>): Promise<RunningServer> {
  const entries = opts.services as readonly { service: DescService; impl: ServiceImpl<DescService> }[];
  const server = new grpc.Server({
    'grpc.max_receive_message_length': messageBytesMax,
    'grpc.max_send_message_length': messageBytesMax,
    // No channelz service is served; its per-call tracking (a wrapper, listeners and counters on
    // every RPC) was 1.5 % of the server's allocations under unary load (heap sampling profile).
    'grpc.enable_channelz': 0,
  });
  const shutdown = new AbortController();
  for (const entry of entries) {
    addConnectService(server, entry.service, entry.impl, opts.interceptors, {
      logger: opts.logger,
      shutdownSignal: shutdown.signal,
    });
  }
  const names = entries.map((e) => e.service.typeName);
  const health = new HealthImplementation(Object.fromEntries(['', ...names].map((n) => [n, 'SERVING'])) as ServingStatusMap);
  health.addToServer(server);
  new ReflectionService(reflectionPackage(entries.map((e) => e.service)), { services: [...names, healthServiceName] }).addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${opts.host}:${opts.port}`, opts.credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const name of ['', ...names]) health.setStatus(name, 'NOT_SERVING');
      shutdown.abort(new ConnectError('server shutting down', Code.Unavailable));
      await shutdownWithin(server, opts.shutdownGraceMs ?? shutdownGraceMsDefault);
    })();
    return closing;
  };
  return { port, close };
}

/**
 * The gRPC port's credentials (Config.tls): plaintext when `tls` is undefined; TLS with the
 * certificate chain and key; with `clientCaFile`, mutual TLS where a client certificate issued
 * by that CA is required (grpc-js verifies it in the handshake; a connection without one, or
 * with one from another CA, never reaches a handler). API keys are still required on top: the
 * certificate admits the channel, the key names the caller.
 */
export function grpcServerCredentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  const cert = readPem(tls.certFile, 'COUNTERSIGN_TLS_CERT', 'CERTIFICATE');
  const key = readPem(tls.keyFile, 'COUNTERSIGN_TLS_KEY', 'PRIVATE KEY');
  const clientCa = tls.clientCaFile === undefined ? null : readPem(tls.clientCaFile, 'COUNTERSIGN_TLS_CLIENT_CA', 'CERTIFICATE');
  return grpc.ServerCredentials.createSsl(clientCa, [{ cert_chain: cert, private_key: key }], clientCa !== null);
}

/** A PEM file's bytes; a clear ConfigError when it is missing or holds no `label` block. */
function readPem(path: string, variable: string, label: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!bytes.toString('latin1').includes(`-----BEGIN `) || !bytes.toString('latin1').includes(`${label}-----`)) {
    throw new ConfigError(`${variable}: ${path} holds no PEM ${label}`);
  }
  return bytes;
}

/** tryShutdown, and forceShutdown if it has not finished within `graceMs`. */
function shutdownWithin(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * The package definition @grpc/reflection reads (it only uses `fileDescriptorProtos`), built
 * from protobuf-es descriptors, never from proto-loader's (whose map entries protoc and
 * Python's protobuf refuse): the generated files the servers run on under their real names
 * (countersign/v1/payments.proto, google/protobuf/timestamp.proto, ...) with every import, so
 * reflection can never drift from the code; grpc/health/v1/health.proto as protoc compiles it
 * (health-descriptor.ts); and google.rpc.Status and ErrorInfo, the error details every error
 * may carry (status-details.ts), so a reflection-only client can read `attempts_left`.
 */
function reflectionPackage(services: readonly DescService[]): ReflectionPackage {
  const files = new Map<string, Buffer>();
  const add = (file: DescFile): void => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
    file.dependencies.forEach(add);
  };
  [...services.map((s) => s.file), healthDescFile, googleRpcDescFile].forEach(add);
  return { countersign: { fileDescriptorProtos: [...files.values()] } } as object as ReflectionPackage;
}

/** ReflectionService's parameter: typed as proto-loader's whole definition, read for its files only. */
type ReflectionPackage = ConstructorParameters<typeof ReflectionService>[0];
