import { EventEmitter } from 'node:events';
import { type Client, Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { EnrollmentService } from '../../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../../../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../../../gen/countersign/v1/payments_pb.js';
import { ErrorInfoSchema } from '../../../services/rpc/status-details.js';

/**
 * gRPC clients (connect-node) of one authz endpoint, sharing one HTTP/2 connection, and the
 * retry discipline of a well-behaved caller: the same request (same idempotency key) again after
 * a transient failure, with bounded attempts and exponential back-off.
 */

/** Deadline of every call the scenarios make, milliseconds. */
export const callDeadlineMs = 5_000;

export interface Clients {
  payments: Client<typeof PaymentService>;
  payer: Client<typeof PayerService>;
  enrollment: Client<typeof EnrollmentService>;
  ledger: Client<typeof LedgerService>;
}

function bearer(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set('authorization', `Bearer ${key}`);
    return next(req);
  };
}

/** One call as a client saw it: when it started, how long it took, how it ended. */
export interface ObservedCall {
  method: string;
  startMs: number;
  durationMs: number;
  /** Code name: 'OK' or Code[...] */
  code: string;
  reason: string | undefined;
  /** The status message (never carries a secret: the server's error table guarantees it). */
  message: string;
}

/**
 * Clients for any key. Each key (a merchant's backend, a payer's terminal, the operator) has its
 * own HTTP/2 connection, as separate callers would, reconnected transparently after a crash.
 */
export class Endpoint {
  private readonly sessions = new Map<string, Http2SessionManager>();
  private readonly cache = new Map<string, Clients>();
  /** Told about every call made through this endpoint while set (outage windows). */
  observer: ((call: ObservedCall) => void) | undefined;

  constructor(readonly baseUrl: string) {}

  clients(key: string): Clients {
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const sessionManager = guardSessions(new Http2SessionManager(this.baseUrl, { pingIntervalMs: 2_000, pingTimeoutMs: 2_000 }));
    this.sessions.set(key, sessionManager);
    const transport = createGrpcTransport({
      baseUrl: this.baseUrl,
      sessionManager,
      interceptors: [this.observe(), bearer(key)],
      defaultTimeoutMs: callDeadlineMs,
    });
    const made = {
      payments: createClient(PaymentService, transport),
      payer: createClient(PayerService, transport),
      enrollment: createClient(EnrollmentService, transport),
      ledger: createClient(LedgerService, transport),
    };
    this.cache.set(key, made);
    return made;
  }

  close(): void {
    for (const sessions of this.sessions.values()) sessions.abort();
  }

  private observe(): Interceptor {
    return (next) => async (req) => {
      const observer = this.observer;
      if (observer === undefined) return next(req);
      const startMs = Date.now();
      const method = req.method.name;
      try {
        const res = await next(req);
        observer({ method, startMs, durationMs: Date.now() - startMs, code: 'OK', reason: undefined, message: '' });
        return res;
      } catch (e) {
        const error = ConnectError.from(e);
        observer({ method, startMs, durationMs: Date.now() - startMs, code: Code[error.code], reason: reasonOf(error), message: error.rawMessage });
        throw e;
      }
    };
  }
}

/**
 * Works around a race in connect-node's Http2SessionManager: a PING timeout destroys the session
 * with an error that Node emits only when the socket closes, and by then the manager may have left
 * that session (its streams failed first) and removed its 'error' listener — the emit then throws
 * as an unhandled 'error' and kills the runner (seen in outages' ledger-frozen case, where every
 * PING to the stopped process times out). Every session the manager makes ready gets a listener
 * that only keeps the emit handled: the calls on it still fail with the manager's own error.
 */
function guardSessions(manager: Http2SessionManager): Http2SessionManager {
  const internals = manager as unknown as { setState(state: { t: string; conn?: unknown }): void };
  const setState = internals.setState.bind(manager);
  internals.setState = (state) => {
    if (state.t === 'ready' && state.conn instanceof EventEmitter) state.conn.on('error', () => undefined);
    setState(state);
  };
  return manager;
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attemptsMax: number;
  /** First pause between attempts, milliseconds; doubles up to `delayMsMax`. */
  delayMsFirst: number;
  delayMsMax: number;
  /**
   * The longest pause one IN_PROGRESS answer buys, milliseconds: the caller waits the answer's
   * `retry_after_ms` (the end of the create's lease) up to this, and at least its own back-off.
   */
  inProgressWaitMsMax: number;
  /** IN_PROGRESS answers in a row after which the caller stops retrying the key (and leaves it to the finish phase). */
  inProgressAnswersMax: number;
}

/**
 * Enough to ride out an authz restart (a few seconds) several times over. A key "in progress"
 * (a create retried within its 30 s lease) is given up after a few answers: the finish phase
 * (finish.ts) retries it after the lease, when the retry finishes the payment itself.
 */
export const crashRetries: RetryPolicy = { attemptsMax: 20, delayMsFirst: 100, delayMsMax: 2_000, inProgressWaitMsMax: 2_000, inProgressAnswersMax: 6 };

/** Codes a caller may retry with the same request: the server did not give a final answer. */
export const transientCodes: ReadonlySet<Code> = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal, Code.Canceled, Code.Aborted]);

/**
 * The server gave no final answer: retry the same request. UNAVAILABLE with reason
 * DELIVERY_FAILED is final (the payment is declined; the contract says retry with a new key).
 */
export function isTransient(error: ConnectError): boolean {
  return transientCodes.has(error.code) && reasonOf(error) !== 'DELIVERY_FAILED';
}

/** UNAVAILABLE because the key's request is still on its way (a create within its lease): reason IN_PROGRESS. */
export function isKeyInProgress(error: ConnectError): boolean {
  return error.code === Code.Unavailable && (reasonOf(error) === 'IN_PROGRESS' || /idempotency key is in progress/.test(error.rawMessage));
}

export type Outcome<T> = { ok: true; value: T; attempts: number } | { ok: false; error: ConnectError; attempts: number };

/** The outcome is the server's final answer (a value, or an error a retry would not change), not a give-up. */
export function isFinal(outcome: Outcome<unknown>): boolean {
  return outcome.ok || !isTransient(outcome.error);
}

/** One attempt of a retried call as its caller saw it. */
export type Attempt<T> = { startMs: number; endMs: number } & ({ ok: true; value: T } | { ok: false; error: ConnectError });

/** Counts of what callers met, by code name (for the report and for outage assertions). */
export class CallStats {
  readonly byCode = new Map<string, number>();
  retries = 0;
  gaveUp = 0;
  /** Calls given up after the server had answered that their idempotency key was "in progress". */
  stuckKeys = 0;
  /** Why calls were given up: final status and message, counted (for the scenario's event log). */
  readonly gaveUpWith = new Map<string, number>();

  count(code: string): void {
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  }

  toJSON(): Record<string, number> {
    return { ...Object.fromEntries(this.byCode), retries: this.retries, gaveUp: this.gaveUp, stuckKeys: this.stuckKeys };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `call` until it gives a final answer (a value or a non-transient error) or the attempts
 * run out. `call` must send the same request every time (same idempotency key). An IN_PROGRESS
 * answer is waited out as the server asks (`retry_after_ms`, within the policy's bound).
 * `observe` sees every attempt.
 */
export async function retried<T>(call: () => Promise<T>, policy: RetryPolicy, stats: CallStats, observe?: (attempt: Attempt<T>) => void): Promise<Outcome<T>> {
  let delayMs = policy.delayMsFirst;
  const trail: string[] = [];
  let keyInProgress = false;
  let inProgressInARow = 0;
  for (let attempt = 1; ; attempt++) {
    const t0 = Date.now();
    try {
      const value = await call();
      stats.count('OK');
      observe?.({ startMs: t0, endMs: Date.now(), ok: true, value });
      return { ok: true, value, attempts: attempt };
    } catch (e) {
      const error = ConnectError.from(e);
      stats.count(Code[error.code]);
      observe?.({ startMs: t0, endMs: Date.now(), ok: false, error });
      const inProgress = isKeyInProgress(error);
      keyInProgress ||= inProgress;
      inProgressInARow = inProgress ? inProgressInARow + 1 : 0;
      if (trail.length < 30) trail.push(`${Code[error.code]}${inProgress ? '(in progress)' : ''}+${Date.now() - t0}ms`);
      if (!isTransient(error)) return { ok: false, error, attempts: attempt };
      if (attempt >= policy.attemptsMax || inProgressInARow >= policy.inProgressAnswersMax) {
        stats.gaveUp += 1;
        if (keyInProgress) stats.stuckKeys += 1;
        const why = inProgress
          ? 'the server kept answering that the idempotency key is in progress'
          : `${Code[error.code]}: ${error.rawMessage.slice(0, 120)} [${trail.join(' ')}]`;
        if (stats.gaveUpWith.size < 50 || stats.gaveUpWith.has(why)) stats.gaveUpWith.set(why, (stats.gaveUpWith.get(why) ?? 0) + 1);
        return { ok: false, error, attempts: attempt };
      }
      stats.retries += 1;
      await sleep(inProgress ? Math.max(delayMs, Math.min(retryAfterMsOf(error) ?? delayMs, policy.inProgressWaitMsMax)) : delayMs);
      delayMs = Math.min(delayMs * 2, policy.delayMsMax);
    }
  }
}

/** One call, its outcome as a value. */
export async function once<T>(call: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call(), attempts: 1 };
  } catch (e) {
    return { ok: false, error: ConnectError.from(e), attempts: 1 };
  }
}

type ErrorInfo = { reason?: string; metadata?: Record<string, string> };

function errorInfoOf(error: ConnectError): ErrorInfo | undefined {
  return error.findDetails(ErrorInfoSchema)[0] as ErrorInfo | undefined;
}

/** The ErrorInfo reason of an error, when the server sent one (e.g. DELIVERY_FAILED, INSUFFICIENT_FUNDS). */
export function reasonOf(error: ConnectError): string | undefined {
  return errorInfoOf(error)?.reason;
}

/** An ErrorInfo metadata value (e.g. `payment_id`, `retry_after_ms`), when the server sent one. */
export function errorMetadata(error: ConnectError, key: string): string | undefined {
  return errorInfoOf(error)?.metadata?.[key];
}

/** How long the server asked the caller to wait (`retry_after_ms`), when it did. */
export function retryAfterMsOf(error: ConnectError): number | undefined {
  const text = errorMetadata(error, 'retry_after_ms');
  const ms = text === undefined ? NaN : Number(text);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}
