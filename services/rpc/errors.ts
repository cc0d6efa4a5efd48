import { Code, ConnectError } from '@connectrpc/connect';
import { DomainError, type ErrorDetails, type ErrorKind } from '../../authz/errors.js';
import { StoreUnavailableError } from '../../authz/ports.js';
import { StoreFullError } from '../../authz/store/port.js';
import { LedgerCapacityError, LedgerUnavailableError } from '../../ledger/port.js';
import { TelcoError } from '../../telco-bridge/errors.js';
import { ErrorInfoSchema, errorDomain } from './status-details.js';

/**
 * The house error table (STYLE.md "Error mapping"), in one place for every service and both
 * servers, and with the rest of services/rpc/ the only place that builds a ConnectError. Handlers
 * and the domain throw `DomainError` (authz/errors.ts: a kind from the closed set, a safe
 * message, details) or a port's infrastructure error (a row below); anything unmapped becomes
 * INTERNAL with a generic message, the original kept as `cause` for the logs and never sent.
 * A new outcome: throw a DomainError with a `reason` in its details; a new error class of a
 * port or channel that may not import authz/: one `errorRule` row here, nowhere else.
 */

export const codeOfKind: Readonly<Record<ErrorKind, Code>> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  permission_denied: Code.PermissionDenied,
  resource_exhausted: Code.ResourceExhausted,
  unauthenticated: Code.Unauthenticated,
  unavailable: Code.Unavailable,
};

/** The generic message of every unmapped error. */
export const internalErrorMessage = 'internal error';

/** What a matched error becomes on the wire. `message` must be safe to show the caller. */
export interface ErrorOutcome {
  readonly kind: ErrorKind;
  readonly message: string;
  readonly details?: ErrorDetails | undefined;
}

/** One row of the table: errors of class `type` (and its subclasses) become `outcome(e)`. */
export interface ErrorRule {
  readonly matches: (error: Error) => boolean;
  readonly outcome: (error: Error) => ErrorOutcome;
}

/** A typed row: `errorRule(LedgerUnavailableError, () => ({ kind: 'unavailable', message }))`. */
export function errorRule<E extends Error>(type: abstract new (...args: never[]) => E, outcome: (error: E) => ErrorOutcome): ErrorRule {
  return { matches: (e) => e instanceof type, outcome: (e) => outcome(e as E) };
}

/** The table, first match wins: put subclasses before their base classes. */
export const houseErrorRules: readonly ErrorRule[] = [
  errorRule(DomainError, (e) => ({ kind: e.kind, message: e.message, details: e.details })),
  // The telco bridge's refusals (it may not import authz/): its kinds are a subset of ErrorKind, no details.
  errorRule(TelcoError, (e) => ({ kind: e.kind, message: e.message })),
  // A full embedded store or ledger: retrying will not help, the message names the bound and the fix.
  errorRule(StoreFullError, (e) => ({ kind: 'unavailable', message: e.message, details: { reason: 'CAPACITY' } })),
  errorRule(LedgerCapacityError, (e) => ({ kind: 'unavailable', message: e.message, details: { reason: 'CAPACITY' } })),
  errorRule(StoreUnavailableError, () => ({ kind: 'unavailable', message: 'store unavailable, retry later' })),
  errorRule(LedgerUnavailableError, () => ({ kind: 'unavailable', message: 'ledger unavailable, retry later' })),
];

/** Builds a mapper over `rules`; extend with `createErrorMapper([myRule, ...houseErrorRules])`. */
export function createErrorMapper(rules: readonly ErrorRule[]): (error: unknown) => ConnectError {
  return (error) => {
    if (error instanceof ConnectError) return error;
    if (error instanceof Error) {
      if (error.name === 'AbortError' && error.cause instanceof ConnectError) return error.cause;
      if (error.name === 'AbortError') return new ConnectError('request cancelled', Code.Canceled, undefined, undefined, error);
      if (error.name === 'TimeoutError') return new ConnectError('deadline exceeded', Code.DeadlineExceeded, undefined, undefined, error);
      const rule = rules.find((r) => r.matches(error));
      if (rule !== undefined) return fromOutcome(rule.outcome(error), error);
    }
    return new ConnectError(internalErrorMessage, Code.Internal, undefined, undefined, error);
  };
}

/** The house mapping: ConnectError as is, the table's rows, else INTERNAL "internal error". */
export const toConnectError: (error: unknown) => ConnectError = createErrorMapper(houseErrorRules);

/** The reason a closing server aborts its streams with: UNAVAILABLE, so clients reconnect elsewhere. */
export function serverShuttingDown(): ConnectError {
  return new ConnectError('server shutting down', Code.Unavailable);
}

function fromOutcome(outcome: ErrorOutcome, cause: Error): ConnectError {
  const code = codeOfKind[outcome.kind];
  const details = outcome.details === undefined ? [] : [errorInfo(outcome.kind, outcome.details)];
  return new ConnectError(outcome.message, code, undefined, details, cause);
}

/** details → google.rpc.ErrorInfo: `reason` (upper snake case) defaults to the kind. */
function errorInfo(kind: ErrorKind, details: ErrorDetails) {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(details)) {
    if (key !== 'reason') metadata[key] = String(value);
  }
  const reason = String(details.reason ?? kind).toUpperCase();
  return { desc: ErrorInfoSchema, value: { reason, domain: errorDomain, metadata } };
}

/** Connect's lower snake case name of a code ("not_found"), for logs and metric tags. */
export function codeName(code: Code | 0): string {
  if (code === 0) return 'ok';
  return Code[code].replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}
