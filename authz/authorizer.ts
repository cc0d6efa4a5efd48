import { unreachable } from '../ledger/assert.js';
import type { Channel, Factor, Merchant, Payer, PayerPolicy } from './model.js';

/**
 * The authorizer plugin contract (proto: countersign.v1.AuthorizerService/Decide), in domain
 * terms. The built-in policy implements it in process; external plugins implement it over gRPC.
 * Authorizers run in order: DENY stops the chain, REQUIRE adds factors, ALLOW adds nothing.
 */
export interface AuthorizationContext {
  paymentId: string;
  merchantId: string;
  payerId: string;
  payeeAccountId: string;
  amount: bigint;
  currency: string;
  channel: Channel;
  /** Factors the merchant asked for on top of policy. */
  requestedFactors: Factor[];
  satisfiedFactors: Factor[];
  /**
   * Non-secret context for plugins (proto DecideRequest.attributes): at most 64 entries. Always
   * carries `request_id` (`<merchant id>:<idempotency key>`), stable across retries of one
   * request, so a plugin can count requests without counting retries twice.
   */
  attributes?: Record<string, string>;
  /** In process only: the records the caller already loaded (plugins get ids). */
  payer?: Payer;
  merchant?: Merchant;
}

export type Decision =
  | { kind: 'ALLOW'; reason: string }
  /** `unavailable`: an authorizer could not answer in time and the chain failed closed (DECLINE_REASON_AUTHORIZER_UNAVAILABLE). */
  | { kind: 'DENY'; reason: string; unavailable?: boolean }
  | { kind: 'REQUIRE'; factors: Factor[]; reason: string };

export interface Authorizer {
  readonly name: string;
  /** An answer later than this counts as a failure (the chain stops waiting); unset: no deadline (in process). */
  readonly deadlineMs?: number;
  /** Throws (preferably an AuthorizerFailure) when it cannot answer; the chain then fails closed. */
  decide(context: AuthorizationContext): Promise<Decision>;
}

/** Without a policy for the payment's currency, every payment needs the second code. */
export const defaultPolicy: PayerPolicy = {
  noFactorBelow: 0n,
  oneFactorUpTo: 0n,
  defaultFactor: 'SECOND_CODE',
  strongFactors: ['SECOND_CODE'],
};

/**
 * The built-in policy: the merchant's per-payment limit, then the payer's thresholds for the
 * currency (M3b): nothing below `noFactorBelow`, one factor up to `oneFactorUpTo`, the strong
 * factors above.
 */
export class BuiltInPolicy implements Authorizer {
  readonly name = 'built-in';

  constructor(
    private readonly lookup: {
      payer(id: string): Promise<Payer | undefined>;
      merchant(id: string): Promise<Merchant | undefined>;
    },
  ) {}

  async decide(context: AuthorizationContext): Promise<Decision> {
    const merchant = context.merchant ?? (await this.lookup.merchant(context.merchantId));
    if (merchant === undefined) return { kind: 'DENY', reason: 'unknown merchant' };
    if (merchant.perPaymentLimit > 0n && context.amount > merchant.perPaymentLimit) {
      return { kind: 'DENY', reason: `amount above the merchant's per-payment limit of ${merchant.perPaymentLimit}` };
    }
    const payer = context.payer ?? (await this.lookup.payer(context.payerId));
    if (payer === undefined) return { kind: 'DENY', reason: 'unknown payer' };
    return policyDecision(payer.policies[context.currency] ?? defaultPolicy, context.amount);
  }
}

export function policyDecision(policy: PayerPolicy, amount: bigint): Decision {
  if (amount < policy.noFactorBelow) return { kind: 'ALLOW', reason: `below the no-factor threshold of ${policy.noFactorBelow}` };
  if (amount <= policy.oneFactorUpTo) {
    return { kind: 'REQUIRE', factors: [policy.defaultFactor], reason: `up to the one-factor threshold of ${policy.oneFactorUpTo}` };
  }
  return { kind: 'REQUIRE', factors: [...policy.strongFactors], reason: `above the one-factor threshold of ${policy.oneFactorUpTo}` };
}

/** What the chain does when an authorizer fails (throws, or misses its deadline). */
export type AuthorizerFailureMode = 'decline' | 'require-strongest';

export interface ChainOptions {
  /** 'decline': the payment is declined (DENY, `unavailable`); 'require-strongest': `strongestFactors` are added and the chain goes on. */
  onFailure: AuthorizerFailureMode;
  /** The factors a failed authorizer is replaced by under 'require-strongest' (at least one). */
  strongestFactors: Factor[];
}

/** Fail closed by declining: the default when a caller passes no options. */
export const defaultChainOptions: ChainOptions = { onFailure: 'decline', strongestFactors: ['SECOND_CODE'] };

/**
 * An authorizer could not give a usable answer (unreachable, late, malformed). Its message is
 * short and safe to show to the merchant: it ends up in the decline detail.
 */
export class AuthorizerFailure extends Error {
  override readonly name = 'AuthorizerFailure';
}

/** Why an authorizer failed, in words safe for the decline detail (never an internal message). */
function failureText(error: unknown): string {
  return error instanceof AuthorizerFailure ? error.message : 'internal error';
}

/** The authorizer's answer, or a rejection with an AuthorizerFailure once its `deadlineMs` has passed. */
async function withinDeadline(authorizer: Authorizer, context: AuthorizationContext): Promise<Decision> {
  const deadlineMs = authorizer.deadlineMs;
  if (deadlineMs === undefined) return authorizer.decide(context);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AuthorizerFailure(`no answer within ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    return await Promise.race([authorizer.decide(context), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The decision that stands in for a failed authorizer under `options`. */
export function failureDecision(name: string, error: unknown, options: ChainOptions): Decision {
  const why = `unavailable (${failureText(error)})`;
  if (options.onFailure === 'decline') return { kind: 'DENY', reason: why, unavailable: true };
  if (options.strongestFactors.length === 0) unreachable(`${name}: require-strongest without strongest factors`);
  return { kind: 'REQUIRE', factors: [...options.strongestFactors], reason: `${why}, requiring ${options.strongestFactors.join(', ')}` };
}

/** One authorizer's decision; a throw or a late answer becomes the failure decision (fail closed). */
async function guardedDecision(authorizer: Authorizer, context: AuthorizationContext, options: ChainOptions): Promise<Decision> {
  try {
    return await withinDeadline(authorizer, context);
  } catch (error) {
    return failureDecision(authorizer.name, error, options);
  }
}

/**
 * `authorizer` with its failures handled under `options`: its decide never throws. For callers
 * that run the chain without options (the configured failure mode then still applies).
 */
export function failClosed(authorizer: Authorizer, options: ChainOptions): Authorizer {
  return { name: authorizer.name, decide: (context) => guardedDecision(authorizer, context, options) };
}

/**
 * Runs the chain in order: the first DENY wins (it keeps `unavailable`); the required factors
 * are the union of every REQUIRE and the merchant's requests. An authorizer that throws or
 * misses its deadline fails closed as `options.onFailure` says.
 */
export async function decide(
  authorizers: readonly Authorizer[],
  context: AuthorizationContext,
  options: ChainOptions = defaultChainOptions,
): Promise<Decision> {
  const factors = new Set<Factor>(context.requestedFactors);
  const reasons: string[] = [];
  for (const authorizer of authorizers) {
    const decision = await guardedDecision(authorizer, context, options);
    if (decision.kind === 'DENY') {
      const reason = `${authorizer.name}: ${decision.reason}`;
      return decision.unavailable === true ? { kind: 'DENY', reason, unavailable: true } : { kind: 'DENY', reason };
    }
    if (decision.kind === 'REQUIRE') decision.factors.forEach((f) => factors.add(f));
    reasons.push(`${authorizer.name}: ${decision.reason}`);
  }
  if (factors.size === 0) return { kind: 'ALLOW', reason: reasons.join('; ') };
  return { kind: 'REQUIRE', factors: [...factors], reason: reasons.join('; ') };
}
