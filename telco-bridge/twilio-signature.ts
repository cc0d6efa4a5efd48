import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Twilio's webhook signature (X-Twilio-Signature): base64 HMAC-SHA1, keyed with the account's
 * auth token, over the full URL the provider requested followed by every POST parameter sorted
 * by name, each name immediately followed by its value (a repeated name contributes each of its
 * values, sorted). Pure functions.
 */

export type FormParams = ReadonlyArray<readonly [string, string]>;

/** The string Twilio signs: URL + sorted name/value pairs. */
export function signedPayload(url: string, params: FormParams): string {
  const byName = new Map<string, string[]>();
  for (const [name, value] of params) byName.set(name, [...(byName.get(name) ?? []), value]);
  let payload = url;
  for (const name of [...byName.keys()].sort()) {
    for (const value of [...new Set(byName.get(name))].sort()) payload += name + value;
  }
  return payload;
}

/** The X-Twilio-Signature value for a request to `url` with form `params`. */
export function twilioSignature(authToken: string, url: string, params: FormParams): string {
  return createHmac('sha1', authToken)
    .update(Buffer.from(signedPayload(url, params), 'utf8'))
    .digest('base64');
}

/** True when `signature` is the valid one; compared in constant time (over digests of equal length). */
export function validTwilioSignature(authToken: string, url: string, params: FormParams, signature: string | undefined): boolean {
  if (signature === undefined || signature === '') return false;
  const expected = createHash('sha256')
    .update(twilioSignature(authToken, url, params))
    .digest();
  const given = createHash('sha256').update(signature).digest();
  return timingSafeEqual(expected, given);
}
