/**
 * The one domain error type: an operating outcome a caller handles (STYLE.md), with the kind
 * that services/rpc/errors.ts maps to a status code — the only table, at the edge. Its message
 * is shown to the caller, so it names the field or the state and never an internal; `details`
 * carries machine-readable facts (the reason, attempts left, retry-after), never a secret, and
 * travel as one google.rpc.ErrorInfo whose reason defaults to the kind.
 *
 * Anything in authz/ or services/ that refuses a request throws a DomainError (or one of the
 * helpers below); a new outcome is a new `reason` in details, a new kind only with a new row in
 * STYLE.md's table. Ports' infrastructure errors (a store or the ledger unreachable or full) keep
 * their own classes beside their port and have their rows in the same table.
 */
export type ErrorKind =
  | 'invalid_argument'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'permission_denied'
  | 'resource_exhausted'
  | 'unauthenticated'
  | 'unavailable';

/** Machine-readable facts sent to the caller (reason, attempts left); never a secret. */
export type ErrorDetails = Readonly<Record<string, string | number | bigint>>;

export class DomainError extends Error {
  override readonly name: string = 'DomainError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly details: ErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A malformed request field: INVALID_ARGUMENT "`field` `why`", the field in the details. */
export const invalidArgument = (field: string, why: string) => new DomainError('invalid_argument', `${field} ${why}`, { field });
export const notFound = (message: string) => new DomainError('not_found', message);
export const precondition = (message: string, details?: ErrorDetails) => new DomainError('failed_precondition', message, details);
export const permissionDenied = (message: string, details?: ErrorDetails) => new DomainError('permission_denied', message, details);
export const unauthenticated = (message: string) => new DomainError('unauthenticated', message);
