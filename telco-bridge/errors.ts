/**
 * The bridge's refusals: operating outcomes its caller handles (a bad field, a reused idempotency
 * key, a rate limit, a provider down). The RPC runtime in services/ maps `kind` to a status code
 * with the house error table (STYLE.md "Error mapping"); the message is sent as is, so it must be
 * safe to show the caller. Anything else a handler throws is INTERNAL with a generic message.
 */

/**
 * The kinds the bridge answers with: a subset of the house's closed set (authz/errors.ts
 * ErrorKind), copied because the bridge imports only gen/. services/rpc/errors.ts maps
 * `kind` straight to the house kind, so the compiler refuses a kind outside that set.
 */
export type TelcoErrorKind = 'invalid_argument' | 'already_exists' | 'resource_exhausted' | 'unavailable';

export class TelcoError extends Error {
  override readonly name = 'TelcoError';
  constructor(
    readonly kind: TelcoErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** INVALID_ARGUMENT, naming the field and what it must be. */
export const invalidArgument = (message: string) => new TelcoError('invalid_argument', message);
