import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type FormParams, validTwilioSignature } from './twilio-signature.js';

/**
 * The HTTP server the voice provider calls (node:http). Every request must be a form POST of
 * bounded size carrying a valid X-Twilio-Signature over the public URL it was sent to; anything
 * else is answered before a handler sees it (403 forged or unsigned, 413 too large, 405, 415),
 * so a forged request changes nothing and reaches nobody.
 */

export interface WebhookLimits {
  /** webhookBodyBytesMax: request bodies larger than this are 413. */
  bodyBytesMax: number;
  /** A request must arrive completely within this (slow clients are cut off). */
  requestTimeoutMs: number;
}

export const webhookLimitsDefault: WebhookLimits = { bodyBytesMax: 16 * 1024, requestTimeoutMs: 10_000 };

export interface WebhookRequest {
  /** Path without the query, e.g. "/voice/answer". */
  path: string;
  query: URLSearchParams;
  /** The form parameters, signature already checked. */
  params: URLSearchParams;
}

export interface WebhookResponse {
  status: number;
  contentType?: string;
  body?: string;
}

export type WebhookHandler = (request: WebhookRequest) => Promise<WebhookResponse>;

export interface WebhookServerOptions {
  host: string;
  port: number;
  /** What the provider calls (scheme://host[:port]), the base of the signed URL. */
  publicBaseUrl: () => string;
  /** The provider's auth token (HMAC key); undefined when no provider is configured (every request is 404). */
  authToken: string | undefined;
  handler: WebhookHandler | undefined;
  limits: WebhookLimits;
  logger: Logger;
}

export interface WebhookServer {
  port: number;
  close(): Promise<void>;
}

type Body = { ok: true; text: string } | { ok: false; status: number };

function readBody(req: IncomingMessage, bytesMax: number): Promise<Body> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > bytesMax) return Promise.resolve({ ok: false, status: 413 });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > bytesMax) {
        req.removeAllListeners('data');
        req.resume();
        resolve({ ok: false, status: 413 });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve({ ok: true, text: Buffer.concat(chunks).toString('utf8') }));
    req.on('error', () => resolve({ ok: false, status: 400 }));
  });
}

function send(res: ServerResponse, response: WebhookResponse): void {
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (response.contentType !== undefined) headers['content-type'] = response.contentType;
  res.writeHead(response.status, headers);
  res.end(response.body ?? '');
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://webhook.invalid');
    if (options.handler === undefined || options.authToken === undefined) return send(res, { status: 404 });
    if (req.method !== 'POST') return send(res, { status: 405 });
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return send(res, { status: 415 });
    const body = await readBody(req, options.limits.bodyBytesMax);
    if (!body.ok) {
      res.setHeader('connection', 'close');
      return send(res, { status: body.status });
    }
    const params = new URLSearchParams(body.text);
    const signedUrl = options.publicBaseUrl().replace(/\/+$/, '') + (req.url ?? '/');
    const signature = req.headers['x-twilio-signature'];
    if (!validTwilioSignature(options.authToken, signedUrl, [...params] as FormParams, typeof signature === 'string' ? signature : undefined)) {
      options.logger.warn({ path: url.pathname }, 'voice webhook with a missing or invalid signature refused');
      return send(res, { status: 403 });
    }
    send(res, await options.handler({ path: url.pathname, query: url.searchParams, params }));
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      options.logger.error({ err: error }, 'voice webhook failed');
      if (!res.headersSent) send(res, { status: 500 });
      else res.destroy();
    });
  });
  server.requestTimeout = options.limits.requestTimeoutMs;
  server.headersTimeout = options.limits.requestTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
