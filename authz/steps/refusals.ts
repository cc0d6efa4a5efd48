import { AuthzError, precondition } from '../errors.js';
import { factorModule } from '../factors/index.js';
import type { Factor } from '../model.js';
import type { PaymentLimits } from './context.js';

/**
 * The refusals a step stores under an idempotency key, as tokens, and the errors they stand
 * for: the first answer and every replay of it are the same error, and no wrong answer is
 * counted twice.
 */

/**
 * The code-rate counters, in the order a create counts them (`rate:<index>`): the payer's number
 * (the per-number and per-payer limits, the stricter one applying, see create-prepare.ts) and the
 * number's prefix.
 */
export function codeRateCounters(limits: PaymentLimits): { name: 'destination' | 'payer' | 'prefix'; limit: number }[] {
  const number = limits.codesPerDestinationMax <= limits.codesPerPayerMax ? { name: 'destination' as const, limit: limits.codesPerDestinationMax } : { name: 'payer' as const, limit: limits.codesPerPayerMax };
  return [number, { name: 'prefix', limit: limits.codesPerPrefixMax }];
}

/** The error of a refusal token a create stored. */
export function createRefusal(token: string, limits: PaymentLimits): AuthzError {
  const rate = /^rate:(\d)$/.exec(token);
  const counter = rate === null ? undefined : codeRateCounters(limits)[Number(rate[1])];
  if (counter === undefined) throw new Error(`assertion failed: unknown create refusal ${JSON.stringify(token)}`);
  const { name, limit } = counter;
  return new AuthzError('resource_exhausted', `too many codes sent (${name} limit: ${limit} per ${limits.codeRateWindowMs / 1000} s); try again later`, {
    reason: `CODE_RATE_${name.toUpperCase()}`,
    limit,
    window_ms: limits.codeRateWindowMs,
  });
}

/** The error of a refusal token a confirm or a refuse stored; undefined for `p` (the payment itself). */
export function operationRefusal(token: string, factor: Factor | undefined): AuthzError | undefined {
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
      return new AuthzError('permission_denied', `wrong ${factor === undefined ? 'answer' : factorModule(factor).noun}`, { attempts_left: Number(value) });
    case 'exhausted':
      return new AuthzError('resource_exhausted', 'attempts exhausted: the payment is declined', { attempts_left: 0, reason: 'ATTEMPTS_EXHAUSTED' });
    case 'locked':
      return new AuthzError('resource_exhausted', 'payer is locked out after repeated wrong answers; the payment is declined', { retry_after_ms: Number(value), reason: 'LOCKED_OUT' });
    default:
      throw new Error(`assertion failed: unknown refusal ${JSON.stringify(token)}`);
  }
}
