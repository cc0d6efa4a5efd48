import { create, type DescService, type Message } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { grpcServiceDefinition } from '../../services/rpc/grpc-server.js';

/** Deadline of each call, milliseconds. */
export const tlsCallDeadlineMs = 10_000;

/** The server certificate names localhost and 127.0.0.1; SNI may not carry an IP address (RFC 6066). */
const tlsChannelOptions = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };

/** A unary outcome: the response, or the status code and details grpc-js reported. */
export type CallOutcome = { ok: true; value: Message } | { ok: false; code: grpc.status; details: string };

/**
 * One unary call with a grpc-js client built on `credentials` (plaintext, TLS, or TLS with a
 * client certificate), authenticated with `key`. The channel is closed afterwards.
 */
export function callOnce<S extends DescService>(
  service: S,
  address: string,
  credentials: grpc.ChannelCredentials,
  key: string,
  method: string,
  input: object,
): Promise<CallOutcome> {
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  const client = new Ctor(address, credentials, tlsChannelOptions) as unknown as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  const desc = service.methods.find((m) => m.localName === method);
  if (desc === undefined) throw new Error(`assertion failed: ${service.typeName} has no ${method}`);
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  return new Promise<CallOutcome>((resolve) => {
    client[method]!.call(
      client,
      create(desc.input, input as never),
      metadata,
      { deadline: Date.now() + tlsCallDeadlineMs },
      (error: grpc.ServiceError | null, value: Message) => resolve(error ? { ok: false, code: error.code, details: error.details } : { ok: true, value }),
    );
  }).finally(() => client.close());
}

/** Client credentials: TLS trusting `ca`, with a client certificate when `cert` and `key` are given. */
export function tlsCredentials(ca: Buffer, client?: { key: Buffer; cert: Buffer }): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(ca, client?.key ?? null, client?.cert ?? null);
}
