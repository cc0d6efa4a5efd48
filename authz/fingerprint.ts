import { createHash } from 'node:crypto';

/** A request's canonical JSON (bigints as `<n>n`): what an idempotency key is bound to. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

/**
 * SHA-256 (hex) of a request's canonical JSON. Only for requests that carry no secret: an
 * unkeyed hash of a PIN or a code could be reversed by trying them all. Requests with secrets
 * are fingerprinted with a keyed HMAC (`CodeKit.digest`).
 */
export function fingerprint(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
