import type { DescMethod } from '@bufbuild/protobuf';
import { Code, ConnectError, createContextKey, type Interceptor, type StreamResponse, type UnaryResponse } from '@connectrpc/connect';
import type { StatsD } from 'hot-shots';
import type { Logger } from 'pino';
import { abortable, raceAbort } from './abort.js';
import { codeName, toConnectError } from './errors.js';

/**
 * Cross-cutting concerns as connect `Interceptor`s: plain functions wrapping `next`. The same
 * values run on both servers: connect-node applies them itself, grpc-server.ts composes them
 * around the implementation with UnaryRequest/StreamRequest objects it builds from the call.
 * In an array, the first interceptor is the outermost.
 */

type AnyFn = Parameters<Interceptor>[0];
type AnyRequest = Parameters<AnyFn>[0];
type AnyResponse = UnaryResponse | StreamResponse;

/** Server default deadline for a unary RPC whose client sent none. */
export const rpcDeadlineMsDefault = 10_000;
/** Server default deadline for a stream whose client sent none (streams end within an hour). */
export const streamDeadlineMsDefault = 3_600_000;
/** Longest API key read from a header; longer is refused unread. */
export const apiKeyLengthMax = 256;

const methodNames = new WeakMap<DescMethod, string>();

/** "countersign.v1.PaymentService/GetPayment" (built once per method: several interceptors ask on every RPC). */
export function methodName(req: { readonly method: DescMethod }): string {
  let name = methodNames.get(req.method);
  if (name === undefined) methodNames.set(req.method, (name = `${req.method.parent.typeName}/${req.method.name}`));
  return name;
}

// ------------------------------------------------------------------------- observing an RPC

/**
 * Calls `next` and reports once when the RPC ends: a unary RPC when it settles, a stream when
 * its last message went out, it failed, or the consumer stopped early (CANCELED).
 */
function observe(next: AnyFn, req: AnyRequest, report: (code: Code | 0, durationMs: number) => void): Promise<AnyResponse> {
  const rpc = new Observed(report);
  return next(req).then(
    (res) => {
      if (!res.stream) {
        rpc.end(0);
        return res;
      }
      return { ...res, message: observed(res.message, rpc) };
    },
    (error: unknown) => {
      rpc.end(toConnectError(error).code);
      throw error;
    },
  );
}

/** One RPC being observed: reports its end once (a class, not a closure per call: tsx names every closure it makes). */
class Observed {
  private readonly started = performance.now();
  private reported = false;

  constructor(private readonly report: (code: Code | 0, durationMs: number) => void) {}

  end(code: Code | 0): void {
    if (this.reported) return;
    this.reported = true;
    this.report(code, performance.now() - this.started);
  }
}

async function* observed<T>(source: AsyncIterable<T>, rpc: Observed): AsyncGenerator<T> {
  try {
    yield* source;
    rpc.end(0);
  } catch (error) {
    rpc.end(toConnectError(error).code);
    throw error;
  } finally {
    rpc.end(Code.Canceled);
  }
}

/** Replaces errors thrown by `next` (or by its stream) with `map(error)`. */
function mapErrors(next: AnyFn, req: AnyRequest, map: (error: unknown) => ConnectError): Promise<AnyResponse> {
  return next(req).then(
    (res) => (res.stream ? { ...res, message: mappedStream(res.message, map) } : res),
    (error: unknown) => {
      throw map(error);
    },
  );
}

async function* mappedStream<T>(source: AsyncIterable<T>, map: (error: unknown) => ConnectError): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (error) {
    throw map(error);
  }
}

// ------------------------------------------------------------------------------ errors

/**
 * The outermost interceptor of both servers (they add it themselves): every error leaving the
 * chain is a ConnectError from the house table; an unmapped one is logged with its stack here
 * and sent as INTERNAL "internal error".
 */
export function errorBoundary(logger: Pick<Logger, 'error'>, map: (error: unknown) => ConnectError = toConnectError): Interceptor {
  return (next) => (req) =>
    mapErrors(next, req, (error) => {
      const mapped = map(error);
      if (!(error instanceof ConnectError) && mapped.code === Code.Internal) {
        logger.error({ err: error, method: methodName(req) }, 'rpc failed with an unmapped error');
      }
      return deliverable(mapped);
    });
}

/** Longest status message sent, characters: messages may echo a caller's field, which may be huge. */
export const statusMessageCharsMax = 1_000;
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The status message travels percent-encoded in the `grpc-message` header. A message echoing a
 * 100 kB field is a header no client accepts: on the grpc-js port the call and every other call
 * on that connection hang until their deadlines. A lone UTF-16 surrogate (a caller's text cut
 * mid-character) makes grpc-js and connect-node throw URIError while encoding it: the call never
 * ends, and on grpc-js the rejection is unhandled and stops the process. So messages are cut to
 * `statusMessageCharsMax` and lone surrogates become U+FFFD.
 */
function deliverable(error: ConnectError): ConnectError {
  const cut = error.rawMessage.length > statusMessageCharsMax ? `${error.rawMessage.slice(0, statusMessageCharsMax)}…` : error.rawMessage;
  const text = cut.replace(loneSurrogate, '\uFFFD');
  if (text === error.rawMessage) return error;
  const fixed = new ConnectError(text, error.code, error.metadata, undefined, error.cause);
  fixed.details = error.details;
  return fixed;
}

// ---------------------------------------------------------------------- authentication

/** Who called: resolved from an API key. */
export interface Principal {
  readonly kind: 'merchant' | 'payer' | 'operator' | 'service';
  readonly id: string;
}

/** The caller of the current RPC; undefined on public methods. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: 'principal' });

/**
 * Reads `authorization: Bearer <key>` or `x-api-key: <key>`, resolves it and puts the
 * principal into the context values; UNAUTHENTICATED otherwise. `publicMethods` are names as
 * `methodName` gives them ("countersign.v1.EnrollmentService/EnrollMerchant").
 */
export function authenticate(resolve: (apiKey: string) => Promise<Principal | undefined>, opts: { publicMethods: readonly string[] }): Interceptor {
  const publicMethods = new Set(opts.publicMethods.map((m) => m.replace(/^\//, '')));
  return (next) => async (req) => {
    if (publicMethods.has(methodName(req))) return next(req);
    const apiKey = apiKeyOf(req.header);
    const principal = apiKey === undefined ? undefined : await resolve(apiKey);
    if (principal === undefined) throw new ConnectError('missing or invalid API key', Code.Unauthenticated);
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}

function apiKeyOf(header: Headers): string | undefined {
  const authorization = header.get('authorization');
  const bearer = authorization === null ? undefined : /^Bearer +(\S+)\s*$/i.exec(authorization)?.[1];
  const key = bearer ?? header.get('x-api-key')?.trim();
  if (key === undefined || key.length === 0 || key.length > apiKeyLengthMax) return undefined;
  return key;
}

// ------------------------------------------------------------------- metrics and logging

/** `rpc.latency` (timing, ms) and `rpc.count`, both tagged with method and code. */
export function metrics(statsd: Pick<StatsD, 'timing' | 'increment'>): Interceptor {
  return (next) => (req) =>
    observe(next, req, (code, durationMs) => {
      const tags = { method: methodName(req), code: codeName(code) };
      statsd.timing('rpc.latency', durationMs, tags);
      statsd.increment('rpc.count', 1, tags);
    });
}

/** Successful RPCs are summed per method and logged as one `rpc summary` line per method this often, milliseconds. */
export const accessSummaryIntervalMsDefault = 10_000;

/** The access log: an interceptor, and `flush()` to write the pending summary at once (the servers call it on close). */
export type AccessLog = Interceptor & { flush(): void };

interface MethodSummary {
  calls: number;
  totalMs: number;
  maxMs: number;
}

/**
 * The access log, never a message body or a header value. A failed RPC is one `rpc` line (warn)
 * with method, code and duration, as it ends. Successful ones are off the request path: each
 * adds to its method's count, and every `summaryIntervalMs` one `rpc summary` line (info) per
 * method says how many succeeded and their mean and longest duration (a synchronous log line per
 * RPC cost a sixth of a bare RPC's CPU). At log level `debug` every successful RPC also gets its
 * own `rpc` line; `summaryIntervalMs` 0 writes the summary after every RPC (tests).
 */
export function logging(logger: Pick<Logger, 'info' | 'warn' | 'debug' | 'isLevelEnabled'>, opts: { summaryIntervalMs?: number } = {}): AccessLog {
  const intervalMs = opts.summaryIntervalMs ?? accessSummaryIntervalMsDefault;
  const pending = new Map<string, MethodSummary>();
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    for (const [method, s] of pending)
      logger.info({ method, code: 'ok', calls: s.calls, meanMs: round3(s.totalMs / s.calls), maxMs: round3(s.maxMs), intervalMs }, 'rpc summary');
    pending.clear();
  };
  const succeeded = (method: string, durationMs: number): void => {
    const s = pending.get(method);
    if (s === undefined) pending.set(method, { calls: 1, totalMs: durationMs, maxMs: durationMs });
    else {
      s.calls += 1;
      s.totalMs += durationMs;
      if (durationMs > s.maxMs) s.maxMs = durationMs;
    }
    if (intervalMs === 0) flush();
    else if (timer === undefined) (timer = setTimeout(flush, intervalMs)).unref();
  };
  const interceptor: Interceptor = (next) => (req) =>
    observe(next, req, (code, durationMs) => {
      const method = methodName(req);
      if (code !== 0) return logger.warn({ method, code: codeName(code), durationMs: round3(durationMs) }, 'rpc');
      if (logger.isLevelEnabled('debug')) logger.debug({ method, code: 'ok', durationMs: round3(durationMs) }, 'rpc');
      succeeded(method, durationMs);
    });
  return Object.assign(interceptor, { flush });
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

// -------------------------------------------------------------------- deadlines, shutdown

/**
 * Enforces a server-side deadline when the client sent none (no `grpc-timeout` nor
 * `connect-timeout-ms`): the handler's signal aborts, and the RPC fails DEADLINE_EXCEEDED
 * even if the handler ignores its signal. Client deadlines are the servers' own business.
 */
export function deadline(
  opts: { rpcDeadlineMsDefault: number; streamDeadlineMsDefault: number } = { rpcDeadlineMsDefault, streamDeadlineMsDefault },
): Interceptor {
  return (next) => (req) => {
    if (clientTimeoutMs(req.header) !== undefined) return next(req);
    const timeoutMs = req.stream ? opts.streamDeadlineMsDefault : opts.rpcDeadlineMsDefault;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new ConnectError('deadline exceeded', Code.DeadlineExceeded)), timeoutMs);
    timer.unref();
    return abortWith(next, req, controller.signal, () => clearTimeout(timer));
  };
}

/**
 * Ends in-flight streams with UNAVAILABLE (clients reconnect) when `signal` aborts; unary RPCs
 * are left to finish within the server's grace period. Both servers add it for their close().
 */
export function endStreamsOn(signal: AbortSignal): Interceptor {
  return (next) => (req) => (req.stream ? abortWith(next, req, signal, () => undefined) : next(req));
}

/** Runs `next` with `signal` linked into the handler's signal, failing with its reason. */
function abortWith(next: AnyFn, req: AnyRequest, signal: AbortSignal, done: () => void): Promise<AnyResponse> {
  const linked = { ...req, signal: AbortSignal.any([req.signal, signal]) } as AnyRequest;
  return raceAbort(next(linked), signal).then(
    (res) => {
      if (!res.stream) {
        done();
        return res;
      }
      return { ...res, message: finallyDo(abortable(res.message, signal), done) };
    },
    (error: unknown) => {
      done();
      throw error;
    },
  );
}

async function* finallyDo<T>(source: AsyncIterable<T>, done: () => void): AsyncGenerator<T> {
  try {
    yield* source;
  } finally {
    done();
  }
}

/** The client's timeout from `grpc-timeout` (gRPC, gRPC-web) or `connect-timeout-ms`. */
export function clientTimeoutMs(header: Headers): number | undefined {
  const grpc = /^(\d{1,8})([HMSmun])$/.exec(header.get('grpc-timeout') ?? '');
  if (grpc !== null) {
    const msPerUnit = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 }[grpc[2] as 'H'];
    return Number(grpc[1]) * msPerUnit;
  }
  const connect = /^\d{1,10}$/.exec(header.get('connect-timeout-ms') ?? '');
  return connect === null ? undefined : Number(connect[0]);
}
