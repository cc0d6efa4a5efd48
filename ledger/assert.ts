/**
 * The one assertion (TigerStyle): a broken invariant is a programmer error, never an operating
 * outcome. It throws a plain `Error` whose message starts with "assertion failed: ", which the
 * RPC tier's error table answers, like every unmapped error, with INTERNAL and a generic message
 * (the original kept as the cause for the log). It replaces `node:assert` and the hand-written
 * `throw new Error('assertion failed: …')`, with the same effect on the caller.
 *
 * It lives in `ledger/`, the lowest folder with code, so that `ledger/`, `authz/`, `services/`,
 * `bench/` and `test/` may all import it without breaking the downward import rule.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/**
 * The same failure where the code has already decided it (the end of an exhaustive switch, an
 * unknown reply), and on hot paths whose message names a value: `if (!ok) unreachable(`… ${n}`)`
 * builds the message only when it fails (`assert`'s argument is built on every call).
 */
export function unreachable(message: string): never {
  throw new Error(`assertion failed: ${message}`);
}
