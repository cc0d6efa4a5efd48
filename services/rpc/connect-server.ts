import * as http2 from 'node:http2';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { strictConnectNodeAdapter } from './connect-strict.js';
import { serverShuttingDown } from './errors.js';
import { messageBytesMax, type RunningServer, shutdownGraceMsDefault } from './grpc-host.js';
import { endStreamsOn, errorBoundary } from './interceptors.js';
import { preciseDecodeErrors } from './wire-errors.js';

/**
 * The Connect, gRPC and gRPC-Web server (connect-node) on a cleartext HTTP/2 server, for
 * browsers and Connect clients. Same routes and interceptors as the grpc-js server, and the same
 * strict input (connect-strict.ts).
 */

export interface ConnectServerOptions {
  readonly routes: (router: ConnectRouter) => void;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly interceptors: readonly Interceptor[];
  readonly logger: Pick<Logger, 'error'>;
  readonly shutdownGraceMs?: number;
}

export interface RunningConnectServer extends RunningServer {
  /** HTTP/2 sessions open right now (0 after close: nothing leaked). */
  sessionCount(): number;
}

export async function startConnectServer(opts: ConnectServerOptions): Promise<RunningConnectServer> {
  const shutdown = new AbortController();
  const handler = strictConnectNodeAdapter({
    routes: opts.routes,
    interceptors: [errorBoundary(opts.logger), endStreamsOn(shutdown.signal), ...opts.interceptors],
    readMaxBytes: messageBytesMax,
    logger: opts.logger,
  });
  const server = http2.createServer(preciseDecodeErrors(handler));
  // node's http2 server.close() waits for every session to end, and connect clients keep idle
  // sessions for many minutes: track them so close() can end them.
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('assertion failed: no TCP address');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shutdown.abort(serverShuttingDown());
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close(); // GOAWAY: idle sessions end now, busy ones when done
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), opts.shutdownGraceMs ?? shutdownGraceMsDefault)));
      const graceful = await Promise.race([closed.then(() => true), expired]);
      clearTimeout(timer);
      if (!graceful) {
        for (const session of sessions) session.destroy();
        await closed;
      }
    })();
    return closing;
  };
  return { port: address.port, close, sessionCount: () => sessions.size };
}
