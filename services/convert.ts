import { create } from '@bufbuild/protobuf';
import { type Timestamp, timestampFromMs } from '@bufbuild/protobuf/wkt';
import { invalidArgument } from '../authz/errors.js';
import type * as domain from '../authz/model.js';
import {
  Channel,
  DeclineReason,
  Factor,
  type Payment,
  PaymentState,
  type SealedEnvelope,
  type SimIdentity,
  SimIdentitySchema,
} from '../gen/countersign/v1/common_pb.js';

/**
 * Proto ↔ domain at the edge. Proto enum member names equal the domain's string unions (buf's
 * enum prefixes are stripped by protobuf-es), so each mapping is a checked name lookup.
 */

function toName<E extends Record<string, string | number>>(e: E, value: number, field: string): string {
  const name = e[value];
  if (typeof name !== 'string' || value === 0) throw invalidArgument(field, `has an unknown or unspecified value ${value}`);
  return name;
}

export function factorFromProto(value: Factor): domain.Factor {
  return toName(Factor, value, 'factor') as domain.Factor;
}

export function factorToProto(factor: domain.Factor): Factor {
  return Factor[factor];
}

export function channelFromProto(value: Channel): domain.Channel {
  if (value === Channel.UNSPECIFIED) return 'MERCHANT';
  return toName(Channel, value, 'channel') as domain.Channel;
}

export function stateFromProto(value: PaymentState): domain.PaymentState {
  return toName(PaymentState, value, 'state') as domain.PaymentState;
}

const ts = (ms: number): Timestamp => timestampFromMs(ms);

/**
 * A payment as callers see it: never the sealed first code or any other secret. Built as the
 * message object itself (protobuf-es messages are plain objects) rather than through `create`,
 * which copies every field of an init object into a new one: the response path makes one per
 * payment it answers. `satisfies` keeps it complete: a field added to Payment fails to compile here.
 */
export function paymentToProto(p: domain.Payment, attemptsLeft = p.attemptsLeft): Payment {
  return {
    $typeName: 'countersign.v1.Payment',
    id: p.id,
    merchantId: p.merchantId,
    payerId: p.payerId,
    payeeAccountId: p.payeeAccountId,
    amount: p.amount,
    currency: p.currency,
    description: p.description,
    channel: Channel[p.channel],
    requiredFactors: p.requiredFactors.map(factorToProto),
    satisfiedFactors: p.satisfiedFactors.map(factorToProto),
    attemptsLeft,
    state: PaymentState[p.state],
    declineReason: p.declineReason === undefined ? DeclineReason.UNSPECIFIED : DeclineReason[p.declineReason],
    declineDetail: p.declineDetail ?? '',
    createdAt: ts(p.createdAtMs),
    updatedAt: ts(p.updatedAtMs),
    expiresAt: ts(p.expiresAtMs),
    billableLineId: p.billableLineId ?? '',
    bankAuthorizationCode: p.bankAuthorizationCode ?? '',
  } satisfies Required<Omit<Payment, '$unknown'>>;
}

/** M4: a SIM identity; `field` names it in the error when it is missing. */
export function simFromProto(sim: SimIdentity | undefined, field: string): domain.SimIdentity {
  if (sim === undefined) throw invalidArgument(field, 'is required');
  return { iccid: sim.iccid, imsi: sim.imsi, msisdn: sim.msisdn };
}

export function simToProto(sim: domain.SimIdentity): SimIdentity {
  return create(SimIdentitySchema, sim);
}

/** M5: the sealed envelope, bytes as they came (opaque here). */
export function envelopeFromProto(e: SealedEnvelope): domain.SealedEnvelope {
  return { suite: e.suite, keyId: e.keyId, ephemeralPublicKey: e.ephemeralPublicKey, nonce: e.nonce, ciphertext: e.ciphertext };
}
