/**
 * The terminal's API: PayerService over the Connect protocol (connect-web, fetch) on the page's
 * own origin, authenticated with the terminal token. `watchPayments` follows the payer's
 * payments with the server stream, and polls ListPendingPayments while the stream is down.
 */
import { type Client, Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import type { Payment } from '../../../gen/countersign/v1/common_pb.js';
import { PayerService } from '../../../gen/countersign/v1/payer_pb.js';

/** Deadline of one unary call, milliseconds. */
export const callDeadlineMs = 10_000;
/** How often ListPendingPayments is polled while the stream is down, milliseconds. */
export const pollIntervalMs = 3_000;
/** First wait before reopening a failed stream; doubles up to `reconnectDelayMsMax`. */
export const reconnectDelayMsMin = 1_000;
export const reconnectDelayMsMax = 30_000;

export type PayerClient = Client<typeof PayerService>;

function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set('authorization', `Bearer ${token}`);
    return next(req);
  };
}

/** A PayerService client on `baseUrl` (the page's origin) with the terminal token. */
export function payerClient(baseUrl: string, token: string): PayerClient {
  const transport = createConnectTransport({ baseUrl, interceptors: [bearer(token)], defaultTimeoutMs: callDeadlineMs });
  return createClient(PayerService, transport);
}

export interface WatchHandlers {
  /** A payment as the server last described it (stream update or poll). */
  payment(payment: Payment): void;
  /** Payments pending at the last poll: those missing from it are no longer pending. */
  polled(pendingIds: ReadonlySet<string>): void;
  /** 'stream' while the server stream is requested or open, 'polling' while it is down. */
  mode(mode: 'stream' | 'polling'): void;
  /** A fatal error (the token was refused): watching stops. */
  fatal(error: ConnectError): void;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/** Follows the payer's payments until `signal` aborts or the token is refused. */
export async function watchPayments(client: PayerClient, payerId: string, handlers: WatchHandlers, signal: AbortSignal): Promise<void> {
  let delayMs = reconnectDelayMsMin;
  while (!signal.aborted) {
    try {
      // No deadline: the server ends a stream within an hour and the loop reopens it.
      // connect-node sends the stream's headers with its first message, so "listening" starts
      // with the request; a failure below switches to polling.
      handlers.mode('stream');
      const opened = () => (delayMs = reconnectDelayMsMin);
      for await (const update of client.watchPendingPayments({ payerId }, { signal, timeoutMs: 0, onHeader: opened })) {
        if (update.payment !== undefined) handlers.payment(update.payment);
      }
    } catch (error) {
      const e = ConnectError.from(error);
      if (signal.aborted) return;
      if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied) return handlers.fatal(e);
    }
    handlers.mode('polling');
    await pollFor(client, payerId, handlers, delayMs, signal);
    delayMs = Math.min(delayMs * 2, reconnectDelayMsMax);
  }
}

/** Polls at once and then every `pollIntervalMs` for `durationMs`. */
async function pollFor(client: PayerClient, payerId: string, handlers: WatchHandlers, durationMs: number, signal: AbortSignal): Promise<void> {
  const until = Date.now() + durationMs;
  do {
    try {
      const page = await client.listPendingPayments({ payerId, pageSize: 100 }, { signal });
      page.payments.forEach((p) => handlers.payment(p));
      handlers.polled(new Set(page.payments.map((p) => p.id)));
    } catch (error) {
      const e = ConnectError.from(error);
      if (e.code === Code.Unauthenticated) return handlers.fatal(e);
    }
    await sleep(Math.min(pollIntervalMs, Math.max(0, until - Date.now())), signal);
  } while (!signal.aborted && Date.now() < until);
}

/** A fresh idempotency key for one payer action (one click). */
export function idempotencyKey(action: string): string {
  return `web-${action}-${crypto.randomUUID()}`;
}
