import { assert } from '../../ledger/assert.js';

export { StoreFullError } from './port.js';

/** Programmer errors are assertions (STYLE.md, `ledger/assert.ts`): a broken precondition stops the caller. */
export { assert };

/** Longest id or key accepted inside a Redis key (ids are 32 hex digits; phones E.164). */
export const keyPartLengthMax = 256;

/** Ids and key parts go inside Redis keys and hash tags: non-empty, bounded, no braces. */
export function assertKeyPart(value: string, what: string): void {
  assert(
    typeof value === 'string' && value.length > 0 && value.length <= keyPartLengthMax && !/[{}]/.test(value),
    `${what} must be 1..${keyPartLengthMax} characters without braces`,
  );
}
