import { createHash } from 'node:crypto';

/** SHA-256 (hex) of a request's canonical JSON (bigints as `<n>n`): what an idempotency key is bound to. */
export function fingerprint(value: unknown): string {
  const json = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
  return createHash('sha256').update(json).digest('hex');
}
