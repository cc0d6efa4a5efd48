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

/** Runs the chain: the first DENY wins; the required factors are the union of every REQUIRE and the merchant's requests. */
export async function decide(authorizers: readonly Authorizer[], context: AuthorizationContext): Promise<Decision> {
  const factors = new Set<Factor>(context.requestedFactors);
  const reasons: string[] = [];
  for (const authorizer of authorizers) {
    const decision = await authorizer.decide(context);
    if (decision.kind === 'DENY') return { kind: 'DENY', reason: `${authorizer.name}: ${decision.reason}` };
    if (decision.kind === 'REQUIRE') decision.factors.forEach((f) => factors.add(f));
    reasons.push(`${authorizer.name}: ${decision.reason}`);
  }
  if (factors.size === 0) return { kind: 'ALLOW', reason: reasons.join('; ') };
  return { kind: 'REQUIRE', factors: [...factors], reason: reasons.join('; ') };
}
