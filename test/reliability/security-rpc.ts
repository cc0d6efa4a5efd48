import { create, type DescMethod, type DescService, fromBinary, type Message } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { type Client, Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, Http2SessionManager } from '@connectrpc/connect-node';
import * as grpc from '@grpc/grpc-js';
import { grpcServiceDefinition } from '../../services/rpc/grpc-server.js';
import { ErrorInfoSchema, StatusSchema } from '../../services/rpc/status-details.js';

/**
 * RPCs as values for the reliability scenarios (shared by fuzz.ts and security.ts): one grpc-js
 * channel per service on the gRPC port and one Connect-protocol client per service on the
 * Connect port; the caller's key is per call, so thousands of payers share the channels. Every
 * call has a deadline and ends as an Outcome, never a throw: the scenarios judge statuses.
 */

export type Wire = 'grpc-js' | 'connect';

/** An RPC's end: the response, or the status with its ErrorInfo (reason, metadata such as attempts_left). */
export type Outcome =
  | { ok: true; value: Message }
  | { ok: false; code: Code; message: string; reason: string | undefined; meta: Readonly<Record<string, string>> };

/** Every unary call's deadline, milliseconds. */
export const rpcDeadlineMs = 20_000;
/** How long a server stream is read before the client cancels it, milliseconds. */
export const streamReadMs = 250;
/** How long a stream expected to be refused is given to say so, milliseconds. */
export const streamRefusalMs = 5_000;

/** `authorization: Bearer <key>`, or the given raw headers (credential tests), or none. */
export type Credential = { key: string } | { headers: Record<string, string> } | undefined;

function headersOf(credential: Credential): Record<string, string> {
  if (credential === undefined) return {};
  if ('key' in credential) return { authorization: `Bearer ${credential.key}` };
  return credential.headers;
}

/** google.rpc.ErrorInfo as status-details.ts declares it (a runtime descriptor, so typed here). */
type ErrorInfo = { reason: string; metadata: Record<string, string> };

function fromConnect(error: unknown): Outcome {
  const e = ConnectError.from(error);
  const info = e.findDetails(ErrorInfoSchema)[0] as ErrorInfo | undefined;
  return { ok: false, code: e.code, message: e.rawMessage, reason: info?.reason, meta: info?.metadata ?? {} };
}

function fromGrpc(error: grpc.ServiceError): Outcome {
  let reason: string | undefined;
  let meta: Record<string, string> = {};
  const bin = error.metadata?.get('grpc-status-details-bin')[0];
  if (bin instanceof Buffer) {
    const status = fromBinary(StatusSchema, bin) as Message & { details: Parameters<typeof anyUnpack>[0][] };
    for (const any of status.details) {
      const info = anyUnpack(any, ErrorInfoSchema) as ErrorInfo | undefined;
      if (info !== undefined) ({ reason, metadata: meta } = info);
    }
  }
  return { ok: false, code: error.code as number as Code, message: error.details, reason, meta };
}

type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** The fuzz clients' HTTP/2 session memory, MB: room for the oversize messages in flight. */
export const clientSessionMemoryMb = 256;

export class RpcClients {
  private readonly grpcClients = new Map<string, RawClient>();
  private readonly connectClients = new Map<string, Client<DescService>>();
  private readonly sessions: Http2SessionManager;

  constructor(
    private readonly grpcAddress: string,
    private readonly connectBaseUrl: string,
    private readonly grpcCredentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  ) {
    // Node's http2 client buffers a session's outgoing data up to maxSessionMemory (10 MB by
    // default) and resets its own streams with ENHANCE_YOUR_CALM past it: several 4 MiB messages
    // in flight on one connection would fail the client's other calls, not the server's.
    this.sessions = new Http2SessionManager(connectBaseUrl, undefined, { maxSessionMemory: clientSessionMemoryMb });
  }

  /** One unary call; `method` is the local name ("createPayment"). */
  unary(wire: Wire, service: DescService, method: string, input: object, credential: Credential): Promise<Outcome> {
    const desc = methodOf(service, method);
    return wire === 'grpc-js' ? this.grpcUnary(service, desc, input, credential) : this.connectUnary(service, desc, input, credential);
  }

  /**
   * A server stream: reads for at most `readMs` (default `streamReadMs`), then cancels; OK when it
   * ended or was still open. A caller expecting a refusal waits longer, so a late one is not taken for OK.
   */
  async stream(
    wire: Wire,
    service: DescService,
    method: string,
    input: object,
    credential: Credential,
    readMs = streamReadMs,
  ): Promise<Outcome & { messages?: number }> {
    const desc = methodOf(service, method);
    return wire === 'grpc-js' ? this.grpcStream(service, desc, input, credential, readMs) : this.connectStream(service, desc, input, credential, readMs);
  }

  /** New clients on connections of their own (close them after use). */
  isolated(): RpcClients {
    return new RpcClients(this.grpcAddress, this.connectBaseUrl, this.grpcCredentials);
  }

  close(): void {
    for (const c of this.grpcClients.values()) c.close();
    this.sessions.abort();
  }

  private grpcClient(service: DescService): RawClient {
    let client = this.grpcClients.get(service.typeName);
    if (client === undefined) {
      const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
      client = new Ctor(this.grpcAddress, this.grpcCredentials, {
        'grpc.max_send_message_length': -1,
        'grpc.max_receive_message_length': -1,
      }) as unknown as RawClient;
      this.grpcClients.set(service.typeName, client);
    }
    return client;
  }

  private connectClient(service: DescService): Client<DescService> {
    let client = this.connectClients.get(service.typeName);
    if (client === undefined) {
      const transport = createConnectTransport({
        baseUrl: this.connectBaseUrl,
        httpVersion: '2',
        sessionManager: this.sessions,
        writeMaxBytes: 64 * 1024 * 1024,
      });
      client = createClient(service, transport);
      this.connectClients.set(service.typeName, client);
    }
    return client;
  }

  private grpcMetadata(credential: Credential): grpc.Metadata {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(headersOf(credential))) metadata.set(k, v);
    return metadata;
  }

  private grpcUnary(service: DescService, method: DescMethod, input: object, credential: Credential): Promise<Outcome> {
    const client = this.grpcClient(service);
    return new Promise((resolve) => {
      client[method.localName]!.call(
        client,
        create(method.input, input as never),
        this.grpcMetadata(credential),
        { deadline: Date.now() + rpcDeadlineMs },
        (error: grpc.ServiceError | null, value: Message) => resolve(error ? fromGrpc(error) : { ok: true, value }),
      );
    });
  }

  private async connectUnary(service: DescService, method: DescMethod, input: object, credential: Credential): Promise<Outcome> {
    const fn = (this.connectClient(service) as unknown as Record<string, (i: object, o: object) => Promise<Message>>)[method.localName]!;
    try {
      return { ok: true, value: await fn(create(method.input, input as never), { headers: headersOf(credential), timeoutMs: rpcDeadlineMs }) };
    } catch (error) {
      return fromConnect(error);
    }
  }

  private grpcStream(
    service: DescService,
    method: DescMethod,
    input: object,
    credential: Credential,
    readMs: number,
  ): Promise<Outcome & { messages?: number }> {
    const client = this.grpcClient(service);
    const call = client[method.localName]!.call(client, create(method.input, input as never), this.grpcMetadata(credential), {
      deadline: Date.now() + rpcDeadlineMs,
    }) as grpc.ClientReadableStream<Message>;
    return new Promise((resolve) => {
      let messages = 0;
      let done = false;
      const finish = (outcome: Outcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        call.cancel();
        resolve({ ...outcome, messages });
      };
      const timer = setTimeout(() => finish({ ok: true, value: create(method.output) }), readMs);
      call.on('data', () => (messages += 1));
      call.on('error', (error: grpc.ServiceError) =>
        finish(error.code === grpc.status.CANCELLED && done ? { ok: true, value: create(method.output) } : fromGrpc(error)),
      );
      call.on('end', () => finish({ ok: true, value: create(method.output) }));
    });
  }

  private async connectStream(
    service: DescService,
    method: DescMethod,
    input: object,
    credential: Credential,
    readMs: number,
  ): Promise<Outcome & { messages?: number }> {
    const fn = (this.connectClient(service) as unknown as Record<string, (i: object, o: object) => AsyncIterable<Message>>)[method.localName]!;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), readMs);
    let messages = 0;
    try {
      for await (const _ of fn(create(method.input, input as never), { headers: headersOf(credential), signal: controller.signal, timeoutMs: rpcDeadlineMs }))
        messages += 1;
      return { ok: true, value: create(method.output), messages };
    } catch (error) {
      if (controller.signal.aborted) return { ok: true, value: create(method.output), messages };
      return { ...fromConnect(error), messages };
    } finally {
      clearTimeout(timer);
    }
  }
}

function methodOf(service: DescService, localName: string): DescMethod {
  const method = service.methods.find((m) => m.localName === localName);
  if (method === undefined) throw new Error(`assertion failed: ${service.typeName} has no method ${localName}`);
  return method;
}

/** "OK" or the status name ("NOT_FOUND"), for reports. */
export function statusName(outcome: Outcome): string {
  return outcome.ok ? 'OK' : codeLabel(outcome.code);
}

export function codeLabel(code: Code | 0): string {
  return code === 0 ? 'OK' : Code[code].replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
}
