import * as http from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Logger } from 'pino';
import { serverShuttingDown } from '../rpc/errors.js';
import { messageBytesMax, type RunningServer, shutdownGraceMsDefault } from '../rpc/grpc-host.js';
import { endStreamsOn, errorBoundary } from '../rpc/interceptors.js';
import { preciseDecodeErrors } from '../rpc/wire-errors.js';
import { type Asset, terminalAssets } from './assets.js';
import { securityHeaders } from './security-headers.js';

/**
 * The payer web terminal's origin: the page and its script, and the Connect API it calls, over
 * HTTP/1.1 (browsers cannot speak h2c, which is all services/rpc/connect-server.ts offers).
 * Same origin, so no CORS; the API is the payer's only (PayerService) with the same
 * implementations and interceptors as the other servers — the caller authenticates with the
 * terminal token as a bearer key. Connect server streaming works over HTTP/1.1 with fetch.
 */

/** Simultaneous connections accepted; more are refused by the kernel backlog. */
export const webConnectionsMax = 1_000;
/** How often close() retires connections that went idle while it waits, milliseconds. */
export const idleSweepIntervalMs = 50;
/** Longest request path served; longer is 414. */
export const requestPathCharsMax = 256;

export interface WebTerminalOptions {
  readonly routes: (router: ConnectRouter) => void;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly interceptors: readonly Interceptor[];
  readonly logger: Pick<Logger, 'error'>;
  readonly shutdownGraceMs?: number;
}

export interface RunningWebTerminal extends RunningServer {
  /** The terminal's address, e.g. "http://127.0.0.1:8082/". */
  readonly url: string;
  /** TCP connections open right now (0 after close: nothing leaked). */
  connectionCount(): number;
}

function plain(res: http.ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...extra });
  res.end(text);
}

/** Unknown paths (an RPC this origin does not serve, too) are 404, which Connect clients read as UNIMPLEMENTED. */
function serveAsset(assets: ReadonlyMap<string, Asset>, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  if (url.length > requestPathCharsMax) return plain(res, 414, 'URI too long\n');
  const asset = assets.get(url.split('?')[0] ?? '/');
  if (asset === undefined) return plain(res, 404, 'not found\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
  res.writeHead(200, { 'content-type': asset.contentType, 'content-length': String(asset.body.length) });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('assertion failed: no TCP address'));
      resolve(address.port);
    });
  });
}

export async function startWebTerminal(opts: WebTerminalOptions): Promise<RunningWebTerminal> {
  const assets = await terminalAssets();
  const shutdown = new AbortController();
  const api = preciseDecodeErrors(
    connectNodeAdapter({
      routes: opts.routes,
      interceptors: [errorBoundary(opts.logger), endStreamsOn(shutdown.signal), ...opts.interceptors],
      readMaxBytes: messageBytesMax,
      fallback: (req, res) => serveAsset(assets, req as http.IncomingMessage, res as http.ServerResponse),
    }),
  );
  const server = http.createServer((req, res) => {
    for (const [name, value] of Object.entries(securityHeaders)) res.setHeader(name, value);
    api(req, res);
  });
  server.maxConnections = webConnectionsMax;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const port = await listen(server, opts.port, opts.host);
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shutdown.abort(serverShuttingDown()); // ends watch streams
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const sweep = setInterval(() => server.closeIdleConnections(), idleSweepIntervalMs);
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, opts.shutdownGraceMs ?? shutdownGraceMsDefault)));
      await Promise.race([closed, expired]);
      clearInterval(sweep);
      clearTimeout(timer);
      server.closeAllConnections();
      await closed;
    })();
    return closing;
  };
  const connectionCount = () => [...sockets].filter((s) => !s.destroyed).length;
  return { port, url: `http://${host}:${port}/`, close, connectionCount };
}
