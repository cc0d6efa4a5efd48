import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { AuthorizerService, DecideResponseSchema, Decision } from '../../../gen/countersign/v1/authorizer_pb.js';
import { freePort } from '../../../services/net.js';
import { startGrpcServer } from '../../../services/rpc/grpc-host.js';

/**
 * An external authorizer plugin (a real AuthorizerService on grpc-js, 127.0.0.1) that authz is
 * configured with through COUNTERSIGN_AUTHORIZERS. It answers ALLOW at once, until `hang()`:
 * from then on it never answers a Decide — each call is held until `answer()` or until the
 * caller gives up — the way a wedged third-party service behaves.
 */

/** A held call is let go after this long even if nobody cancels it, milliseconds. */
export const holdMsMax = 60_000;

export interface AuthorizerPlugin {
  readonly address: string;
  /** Decide calls received, and how many of them were held without an answer. */
  readonly stats: { decides: number; held: number };
  hang(): void;
  answer(): void;
  close(): Promise<void>;
}

export async function startAuthorizerPlugin(): Promise<AuthorizerPlugin> {
  const stats = { decides: 0, held: 0 };
  let hanging = false;
  let release: (() => void)[] = [];
  const port = await freePort();
  const server = await startGrpcServer({
    host: '127.0.0.1',
    port,
    services: [
      {
        service: AuthorizerService,
        impl: {
          async decide(_request, context) {
            stats.decides += 1;
            if (!hanging) return create(DecideResponseSchema, { decision: Decision.ALLOW, reason: 'reliability plugin: fine' });
            stats.held += 1;
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, holdMsMax);
              const done = () => (clearTimeout(timer), resolve());
              release.push(done);
              context.signal.addEventListener('abort', done, { once: true });
            });
            throw new ConnectError('the plugin was wedged', Code.Unavailable);
          },
        },
      },
    ],
    interceptors: [],
    credentials: grpc.ServerCredentials.createInsecure(),
    logger: pino({ level: 'silent' }),
    shutdownGraceMs: 1_000,
  });
  return {
    address: `127.0.0.1:${server.port}`,
    stats,
    hang: () => void (hanging = true),
    answer: () => {
      hanging = false;
      const held = release;
      release = [];
      held.forEach((done) => done());
    },
    close: async () => {
      hanging = false;
      release.forEach((done) => done());
      await server.close();
    },
  };
}
