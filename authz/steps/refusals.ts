import { unreachable } from '../../ledger/assert.js';
import { DomainError, precondition } from '../errors.js';
import { factorModule } from '../factors/index.js';
import type { Factor } from '../model.js';
import type { PaymentLimits } from './context.js';

/**
 * The refusals a step stores under an idempotency key, as tokens, and the errors they stand
 * for: the first answer and every replay of it are the same error, and no wrong answer is
 * counted twice.
 */

/** The three code-rate limits (DESIGN §6: per number, per payer, per number prefix), in the order a create counts them (`rate:<index>`). */
export const codeRateNames = ['destination', 'payer', 'prefix'] as const;

export function codeRateLimitOf(limits: PaymentLimits, index: number): number {
  return [limits.codesPerDestinationMax, limits.codesPerPayerMax, limits.codesPerPrefixMax][index]!;
}

/** The key of the per-merchant phone-lookup counter (README "Tenant safety"); counted first in a create. */
export function phoneLookupKey(merchantId: string): string {
  return `lookups:phone:${merchantId}`;
}

/** The key of the per-merchant, per-payer counter of challenged creates (README "Tenant safety"). */
export function challengeRateKey(merchantId: string, payerId: string): string {
  return `challenges:${merchantId}:${payerId}`;
}

/**
 * The error of a refusal token a create stored: `rate:<index>` names the limit of `hits` (the
 * create's own `rateLimits`, the same for every retry of the same request) that refused it.
 */
export function createRefusal(token: string, limits: PaymentLimits, hits: readonly { key: string }[]): DomainError {
  const rate = /^rate:(\d)$/.exec(token);
  const hit = rate === null ? undefined : hits[Number(rate[1])];
  if (hit === undefined) return unreachable(`unknown create refusal ${JSON.stringify(token)}`);
  if (hit.key.startsWith('lookups:phone:')) {
    const limit = limits.phoneLookupsPerMerchantMax;
    return new DomainError(
      'resource_exhausted',
      `too many payer lookups by phone number (limit: ${limit} per ${limits.phoneLookupWindowMs / 1000} s for this merchant); try again later`,
      {
        reason: 'PHONE_LOOKUP_RATE',
        limit,
        window_ms: limits.phoneLookupWindowMs,
      },
    );
  }
  if (hit.key.startsWith('challenges:')) {
    const limit = limits.challengesPerPayerMerchantMax;
    return new DomainError(
      'resource_exhausted',
      `too many payments waiting for this payer's proof from this merchant (limit: ${limit} per ${limits.challengeRateWindowMs / 1000} s); try again later`,
      {
        reason: 'CHALLENGE_RATE',
        limit,
        window_ms: limits.challengeRateWindowMs,
      },
    );
  }
  const index = codeRateKeyPrefixes.findIndex((prefix) => hit.key.startsWith(prefix));
  const name = codeRateNames[index];
  if (name === undefined) return unreachable(`unknown rate limit ${JSON.stringify(hit.key)}`);
  const limit = codeRateLimitOf(limits, index);
  return new DomainError('resource_exhausted', `too many codes sent (${name} limit: ${limit} per ${limits.codeRateWindowMs / 1000} s); try again later`, {
    reason: `CODE_RATE_${name.toUpperCase()}`,
    limit,
    window_ms: limits.codeRateWindowMs,
  });
}

/** The keys of the code-rate limits start with these, in the order of `codeRateNames`. */
export const codeRateKeyPrefixes = ['codes:to:', 'codes:payer:', 'codes:prefix:'] as const;

/** The error of a refusal token a confirm or a refuse stored; undefined for `p` (the payment itself). */
export function operationRefusal(token: string, factor: Factor | undefined): DomainError | undefined {
  if (token === 'p') return undefined;
  const [kind, value] = token.split(':', 2) as [string, string | undefined];
  switch (kind) {
    case 'state':
      return precondition(`payment is ${value}, not waiting for proof`, { reason: value!, state: value! });
    case 'final':
      return precondition(`payment is already ${value}`, { reason: value!, state: value! });
    case 'factor':
      return precondition(`payment is not waiting for ${factor ?? 'that factor'}`, { reason: 'FACTOR_NOT_REQUIRED' });
    case 'order':
      return precondition('reply to the SMS code first; the call for the password follows', { reason: 'SMS_OTP_FIRST' });
    case 'expired':
      return precondition('the payment has expired', { reason: 'EXPIRED' });
    case 'mismatch':
      return new DomainError('permission_denied', `wrong ${factor === undefined ? 'answer' : factorModule(factor).noun}`, { attempts_left: Number(value) });
    case 'exhausted':
      return new DomainError('resource_exhausted', 'attempts exhausted: the payment is declined', { attempts_left: 0, reason: 'ATTEMPTS_EXHAUSTED' });
    case 'locked':
      return new DomainError('resource_exhausted', 'payer is locked out after repeated wrong answers; the payment is declined', {
        retry_after_ms: Number(value),
        reason: 'LOCKED_OUT',
      });
    default:
      return unreachable(`unknown refusal ${JSON.stringify(token)}`);
  }
}
