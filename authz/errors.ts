/**
 * Domain errors: operating outcomes a caller handles, each with the kind that services/ maps to
 * a status code (STYLE.md's error table). `details` carries machine-readable facts (attempts
 * left, the reason, retry-after); never a secret.
 */
export type AuthzErrorKind =
  | 'invalid_argument'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'permission_denied'
  | 'resource_exhausted'
  | 'unauthenticated'
  | 'unavailable';

export class AuthzError extends Error {
  override readonly name = 'AuthzError';
  constructor(
    readonly kind: AuthzErrorKind,
    message: string,
    readonly details: Record<string, string | number> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const invalid = (message: string, details?: Record<string, string | number>) => new AuthzError('invalid_argument', message, details);
export const notFound = (message: string) => new AuthzError('not_found', message);
export const precondition = (message: string, details?: Record<string, string | number>) =>
  new AuthzError('failed_precondition', message, details);
