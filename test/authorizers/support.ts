import { create, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import type { ExecutionContext } from 'ava';
import { pino } from 'pino';
import { AuthorizerService, type DecideRequest, DecideRequestSchema, DecideResponseSchema } from '../../gen/countersign/v1/authorizer_pb.js';
import { startGrpcServer } from '../../services/rpc/grpc-host.js';
import { ErrorInfoSchema } from '../../services/rpc/status-details.js';

/** How long a hanging plugin holds a call at most, milliseconds (it lets go as soon as the caller cancels). */
export const hangMsMax = 10_000;

export type Behaviour = (request: DecideRequest) => MessageInitShape<typeof DecideResponseSchema> | 'hang';

export interface TestPlugin {
  readonly address: string;
  /** Every DecideRequest received, in order. */
  readonly requests: DecideRequest[];
  /** The same requests as wire bytes, for the secret scan. */
  readonly bytes: Buffer[];
}

/** A real AuthorizerService on grpc-js, 127.0.0.1 (port 0 unless given), answering by `behaviour`; closed in teardown. */
export async function startPlugin(t: ExecutionContext, behaviour: Behaviour, port = 0): Promise<TestPlugin> {
  const requests: DecideRequest[] = [];
  const bytes: Buffer[] = [];
  const server = await startGrpcServer({
    host: '127.0.0.1',
    port,
    services: [
      {
        service: AuthorizerService,
        impl: {
          async decide(request, context) {
            requests.push(request);
            bytes.push(Buffer.from(toBinary(DecideRequestSchema, request)));
            const answer = behaviour(request);
            if (answer !== 'hang') return create(DecideResponseSchema, answer);
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, hangMsMax);
              context.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()));
            });
            throw new ConnectError('hung', Code.DeadlineExceeded);
          },
        },
      },
    ],
    interceptors: [],
    credentials: grpc.ServerCredentials.createInsecure(),
    logger: pino({ level: 'silent' }),
    shutdownGraceMs: 1_000,
  });
  t.teardown(() => server.close());
  return { address: `127.0.0.1:${server.port}`, requests, bytes };
}

/** The call fails; returns its code and ErrorInfo (reason + metadata). */
export async function refusal(
  t: ExecutionContext,
  call: Promise<unknown>,
): Promise<{ code: Code; message: string; reason: string; metadata: Record<string, string> }> {
  const e = ConnectError.from(await t.throwsAsync(call));
  const info = e.findDetails(ErrorInfoSchema)[0] as { reason?: string; metadata?: Record<string, string> } | undefined;
  return { code: e.code, message: e.rawMessage, reason: info?.reason ?? '', metadata: info?.metadata ?? {} };
}

/** No secret of `secrets` appears in any request the plugin received. */
export function assertNoSecrets(t: ExecutionContext, plugin: TestPlugin, secrets: string[]): void {
  t.true(plugin.bytes.length > 0, 'the plugin was asked');
  for (const b of plugin.bytes) {
    const text = b.toString('latin1');
    for (const s of secrets) t.false(text.includes(s), `a secret reached the plugin: ${s.slice(0, 2)}…`);
  }
}
