import { create } from '@bufbuild/protobuf';
import { type AuthorizationContext, AuthorizerFailure, type Decision } from '../../authz/authorizer.js';
import {
  type DecideRequest,
  DecideRequestSchema,
  type DecideResponse,
  DecideResponseSchema,
  Decision as ProtoDecision,
} from '../../gen/countersign/v1/authorizer_pb.js';
import { Channel } from '../../gen/countersign/v1/common_pb.js';
import { channelFromProto, factorFromProto, factorToProto } from '../convert.js';

/**
 * AuthorizerService messages ↔ the domain's AuthorizationContext and Decision, both ways: the
 * platform's side (toDecideRequest, fromDecideResponse) and a plugin's side (fromDecideRequest,
 * toDecideResponse).
 */

/** Attributes sent to a plugin, at most (the contract's bound). */
export const attributesMax = 64;
/** Longest attribute key and value sent, characters (longer entries are left out). */
export const attributeKeyCharsMax = 64;
export const attributeValueCharsMax = 1024;
/** Longest reason kept from a plugin, characters (the rest is cut). */
export const reasonCharsMax = 200;

/**
 * Words that make an attribute key look like a secret's (`pin`, `second_code`, `cardPan`, ...):
 * such entries are never sent, whatever a caller put there. The contract promises plugins no
 * secret; this is the last line of that promise, not the first.
 */
const secretWords = new Set(['password', 'passwd', 'pwd', 'pin', 'code', 'secret', 'otp', 'card', 'pan', 'cvv', 'cvc', 'token', 'key']);

function looksSecret(key: string): boolean {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/);
  return words.some((w) => secretWords.has(w));
}

/** The non-secret attributes, `request_id` first then in the caller's order, bounded to the contract's limits. */
export function boundedAttributes(attributes: Record<string, string> | undefined): Record<string, string> {
  const entries = Object.entries(attributes ?? {})
    .filter(([k, v]) => k.length > 0 && k.length <= attributeKeyCharsMax && v.length <= attributeValueCharsMax)
    .filter(([k]) => k === 'request_id' || !looksSecret(k))
    .sort(([a], [b]) => Number(b === 'request_id') - Number(a === 'request_id')); // stable: otherwise the caller's order
  return Object.fromEntries(entries.slice(0, attributesMax));
}

/** The domain context as a DecideRequest: ids, money and enums only (never the payer or merchant record). */
export function toDecideRequest(context: AuthorizationContext): DecideRequest {
  return create(DecideRequestSchema, {
    paymentId: context.paymentId,
    merchantId: context.merchantId,
    payerId: context.payerId,
    amount: context.amount,
    currency: context.currency,
    payeeAccountId: context.payeeAccountId,
    channel: Channel[context.channel],
    satisfiedFactors: context.satisfiedFactors.map(factorToProto),
    requestedFactors: context.requestedFactors.map(factorToProto),
    attributes: boundedAttributes(context.attributes),
  });
}

/** A plugin's answer in domain terms; an unusable answer is an AuthorizerFailure (fail closed). */
export function fromDecideResponse(response: DecideResponse): Decision {
  const reason = response.reason.slice(0, reasonCharsMax);
  switch (response.decision) {
    case ProtoDecision.ALLOW:
      return { kind: 'ALLOW', reason };
    case ProtoDecision.DENY:
      return { kind: 'DENY', reason };
    case ProtoDecision.REQUIRE: {
      if (response.requiredFactors.length === 0) throw new AuthorizerFailure('answered REQUIRE without factors');
      const factors = response.requiredFactors.map((f) => {
        try {
          return factorFromProto(f);
        } catch {
          throw new AuthorizerFailure(`answered REQUIRE with an unknown factor ${f}`);
        }
      });
      return { kind: 'REQUIRE', factors: [...new Set(factors)], reason };
    }
    default:
      throw new AuthorizerFailure(`answered decision ${response.decision} (neither ALLOW, DENY nor REQUIRE)`);
  }
}

/** A plugin's view of the request (no payer or merchant record: plugins get ids). */
export function fromDecideRequest(request: DecideRequest): AuthorizationContext {
  return {
    paymentId: request.paymentId,
    merchantId: request.merchantId,
    payerId: request.payerId,
    payeeAccountId: request.payeeAccountId,
    amount: request.amount,
    currency: request.currency,
    channel: channelFromProto(request.channel),
    requestedFactors: request.requestedFactors.map(factorFromProto),
    satisfiedFactors: request.satisfiedFactors.map(factorFromProto),
    attributes: { ...request.attributes },
  };
}

export function toDecideResponse(decision: Decision): DecideResponse {
  const reason = decision.reason.slice(0, reasonCharsMax);
  if (decision.kind === 'REQUIRE')
    return create(DecideResponseSchema, { decision: ProtoDecision.REQUIRE, requiredFactors: decision.factors.map(factorToProto), reason });
  return create(DecideResponseSchema, { decision: decision.kind === 'ALLOW' ? ProtoDecision.ALLOW : ProtoDecision.DENY, reason });
}
