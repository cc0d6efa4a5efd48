import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { secondCodeSuite } from '../../authz/codes/challenge.js';
import type { EnrollmentService as Enrollment } from '../../authz/enrollment.js';
import { invalidArgument, notFound } from '../../authz/errors.js';
import type { BillableLine, Caller, PairedDevice, Payer, PayerPolicy } from '../../authz/model.js';
import { checkIdempotencyKey } from '../../authz/validation.js';
import { PasswordKind } from '../../gen/countersign/v1/common_pb.js';
import {
  BillableLineSchema,
  BillingPeriod,
  type EnrollmentService,
  LineKind,
  PairedDeviceSchema,
  PayerPolicySchema,
  PayerSchema,
  type BillableLine as ProtoLine,
  type PairedDevice as ProtoPairedDevice,
  type Payer as ProtoPayer,
  type PayerPolicy as ProtoPolicy,
} from '../../gen/countersign/v1/enrollment_pb.js';
import { factorFromProto, factorToProto, simFromProto, simToProto } from '../convert.js';
import { callerOf, requireAdmin } from './caller.js';

function policyFromProto(p: ProtoPolicy): PayerPolicy {
  return {
    noFactorBelow: p.noFactorBelow,
    oneFactorUpTo: p.oneFactorUpTo,
    defaultFactor: factorFromProto(p.oneFactor),
    strongFactors: p.moreFactors.map(factorFromProto),
  };
}

export function payerToProto(p: Payer): ProtoPayer {
  return create(PayerSchema, {
    id: p.id,
    phone: p.phone,
    loginAccount: p.loginAccount ?? '',
    displayName: p.displayName,
    prepaidAccountIds: p.accounts,
    policies: Object.entries(p.policies).map(([currency, policy]) =>
      create(PayerPolicySchema, {
        currency,
        noFactorBelow: policy.noFactorBelow,
        oneFactorUpTo: policy.oneFactorUpTo,
        oneFactor: factorToProto(policy.defaultFactor),
        moreFactors: policy.strongFactors.map(factorToProto),
      }),
    ),
    hasPin: p.pinHash !== undefined,
    passwordsSet: [...(p.ivrPasswordHash === undefined ? [] : [PasswordKind.IVR]), ...(p.authPasswordHash === undefined ? [] : [PasswordKind.AUTH])],
    ocraSuite: secondCodeSuite,
    secretVersion: p.secretVersion,
    pairedDevices: (p.pairedDevices ?? []).map(deviceToProto),
    billableLines: (p.billableLines ?? []).map(lineToProto),
    createdAt: timestampFromMs(p.createdAtMs),
  });
}

function deviceToProto(d: PairedDevice): ProtoPairedDevice {
  return create(PairedDeviceSchema, {
    id: d.id,
    mainSim: simToProto(d.mainSim),
    auxiliarySim: simToProto(d.auxiliarySim),
    label: d.label,
    pairedAt: timestampFromMs(d.pairedAtMs),
  });
}

function lineToProto(l: BillableLine): ProtoLine {
  return create(BillableLineSchema, {
    id: l.id,
    kind: LineKind[l.kind],
    number: l.number,
    currency: l.currency,
    creditLimit: l.creditLimit,
    billingPeriod: BillingPeriod[l.billingPeriod],
    accountId: l.accountId,
  });
}

/** EnrollmentService: operators enroll payers and merchants; a payer may read their own entry. */
export function enrollmentServiceImpl(deps: { enrollment: Enrollment }): ServiceImpl<typeof EnrollmentService> {
  const { enrollment } = deps;
  return {
    async enrollPayer(req, ctx) {
      requireAdmin(ctx);
      if (new Set(req.policies.map((p) => p.currency)).size !== req.policies.length)
        throw invalidArgument('policies', 'must hold at most one policy per currency');
      const policies = Object.fromEntries(req.policies.map((p) => [p.currency, policyFromProto(p)]));
      const result = await enrollment.enrollPayer({
        idempotencyKey: req.idempotencyKey,
        phone: req.phone,
        displayName: req.displayName,
        ...(req.loginAccount === '' ? {} : { loginAccount: req.loginAccount }),
        currencies: req.currencies,
        policies,
      });
      return {
        payer: payerToProto(result.payer),
        verificationSecretBase32: result.secretBase32 ?? '',
        verificationSecretUri: result.secretUri ?? '',
        ocraSuite: secondCodeSuite,
        payerToken: result.payerToken ?? '',
      };
    },
    async enrollMerchant(req, ctx) {
      requireAdmin(ctx);
      const result = await enrollment.enrollMerchant({
        idempotencyKey: req.idempotencyKey,
        name: req.name,
        currencies: req.currencies,
        feeBasisPoints: req.feeBasisPoints,
        perPaymentLimit: req.perPaymentLimit,
      });
      return {
        merchantId: result.merchant.id,
        apiKey: result.apiKey ?? '',
        payeeAccountIds: result.merchant.accounts,
        feeBasisPoints: result.merchant.feeBasisPoints,
      };
    },
    async getPayer(req, ctx) {
      const caller = callerOf(ctx);
      if (caller.kind === 'merchant' || caller.kind === 'service' || (caller.kind === 'payer' && caller.payerId !== req.payerId)) {
        throw notFound(`payer ${req.payerId} not found`);
      }
      return { payer: payerToProto(await enrollment.payer(req.payerId)) };
    },
    async setPayerPolicy(req, ctx) {
      requireAdmin(ctx);
      checkIdempotencyKey(req.idempotencyKey);
      if (req.policy === undefined) throw invalidArgument('policy', 'is required');
      return { payer: payerToProto(await enrollment.setPolicy(req.payerId, req.policy.currency, policyFromProto(req.policy))) };
    },
    async setPin(req, ctx) {
      requireAdmin(ctx);
      checkIdempotencyKey(req.idempotencyKey);
      await enrollment.setPin(req.payerId, req.pin);
      return { payer: payerToProto(await enrollment.payer(req.payerId)) };
    },
    // Operators only: a payer terminal's token alone must not be able to replace the secrets that
    // are meant to be a second proof next to it.
    async setPassword(req, ctx) {
      requireAdmin(ctx);
      checkIdempotencyKey(req.idempotencyKey);
      const kind =
        req.kind === PasswordKind.IVR ? 'IVR' : req.kind === PasswordKind.AUTHORIZATION ? 'AUTHORIZATION' : req.kind === PasswordKind.AUTH ? 'AUTH' : undefined;
      if (kind === undefined) throw invalidArgument('kind', 'is required (IVR, AUTH or AUTHORIZATION)');
      return { payer: payerToProto(await enrollment.setPassword(req.payerId, kind, req.password)) };
    },
    // Operators only: pairing decides which device may approve the payer's payments.
    async pairDevice(req, ctx) {
      requireAdmin(ctx);
      const device = await enrollment.pairDevice({
        idempotencyKey: req.idempotencyKey,
        payerId: req.payerId,
        mainSim: simFromProto(req.mainSim, 'main_sim'),
        auxiliarySim: simFromProto(req.auxiliarySim, 'auxiliary_sim'),
        label: req.label,
      });
      return { device: deviceToProto(device) };
    },
    async addBillableLine(req, ctx) {
      requireAdmin(ctx);
      const kind = LineKind[req.kind] as 'LANDLINE' | 'MOBILE' | 'MODEM' | undefined;
      const period = BillingPeriod[req.billingPeriod] as 'WEEKLY' | 'MONTHLY' | undefined;
      if (req.kind === LineKind.UNSPECIFIED || kind === undefined) throw invalidArgument('kind', 'is required (LANDLINE, MOBILE or MODEM)');
      if (req.billingPeriod === BillingPeriod.UNSPECIFIED || period === undefined) throw invalidArgument('billing_period', 'is required (WEEKLY or MONTHLY)');
      const line = await enrollment.addBillableLine({
        idempotencyKey: req.idempotencyKey,
        payerId: req.payerId,
        kind,
        number: req.number,
        currency: req.currency,
        creditLimit: req.creditLimit,
        billingPeriod: period,
      });
      return { line: lineToProto(line) };
    },
    // The payer's own terminal (or an operator) asks for a number to hand to a merchant.
    async issuePayNumber(req, ctx) {
      const caller = callerOf(ctx);
      if (!(caller.kind === 'admin' || (caller.kind === 'payer' && caller.payerId === req.payerId))) throw notFound(`payer ${req.payerId} not found`);
      const issued = await enrollment.issuePayNumber({ idempotencyKey: req.idempotencyKey, payerId: req.payerId, ttlSeconds: req.ttlSeconds });
      return { payNumber: issued.payNumber, expiresAt: timestampFromMs(issued.expiresAtMs) };
    },
    // Operators only: a stolen terminal token must not be able to replace the second proof.
    async rotateSecret(req, ctx) {
      requireAdmin(ctx);
      const rotated = await enrollment.rotateSecret({ idempotencyKey: req.idempotencyKey, payerId: req.payerId });
      return {
        verificationSecretBase32: rotated.secretBase32 ?? '',
        verificationSecretUri: rotated.secretUri ?? '',
        ocraSuite: secondCodeSuite,
        secretVersion: rotated.payer.secretVersion,
      };
    },
    // Keys have a lifecycle (README "Tenant safety"): an operator for anyone, a merchant or payer for itself.
    async rotateApiKey(req, ctx) {
      const merchantId = ownOrAdmin(callerOf(ctx), 'merchant', req.merchantId);
      const r = await enrollment.rotateApiKey({ idempotencyKey: req.idempotencyKey, merchantId, overlapSeconds: req.overlapSeconds });
      return { merchantId, apiKey: r.credential ?? '', ...expiry('previousKeyExpiresAt', r.previousExpiresAtMs) };
    },
    async revokeApiKeys(req, ctx) {
      const merchantId = ownOrAdmin(callerOf(ctx), 'merchant', req.merchantId);
      const r = await enrollment.revokeApiKeys({ idempotencyKey: req.idempotencyKey, merchantId });
      return { merchantId, apiKey: r.credential ?? '' };
    },
    async rotatePayerToken(req, ctx) {
      const payerId = ownOrAdmin(callerOf(ctx), 'payer', req.payerId);
      const r = await enrollment.rotatePayerToken({ idempotencyKey: req.idempotencyKey, payerId, overlapSeconds: req.overlapSeconds });
      return { payerId, payerToken: r.credential ?? '', ...expiry('previousTokenExpiresAt', r.previousExpiresAtMs) };
    },
    async revokePayerTokens(req, ctx) {
      const payerId = ownOrAdmin(callerOf(ctx), 'payer', req.payerId);
      const r = await enrollment.revokePayerTokens({ idempotencyKey: req.idempotencyKey, payerId });
      return { payerId, payerToken: r.credential ?? '' };
    },
  };
}

/**
 * The record whose credential a caller may reissue: an operator names any (required); a merchant
 * or payer its own (empty: itself). Another's id, or a caller of another kind, is NOT_FOUND, as
 * GetPayer answers: nobody learns which ids exist.
 */
function ownOrAdmin(caller: Caller, kind: 'merchant' | 'payer', id: string): string {
  const field = kind === 'merchant' ? 'merchant_id' : 'payer_id';
  if (caller.kind === 'admin') {
    if (id === '') throw invalidArgument(field, 'is required');
    return id;
  }
  const own = caller.kind === 'merchant' && kind === 'merchant' ? caller.merchantId : caller.kind === 'payer' && kind === 'payer' ? caller.payerId : undefined;
  if (own === undefined || (id !== '' && id !== own)) throw notFound(`${kind} ${id} not found`);
  return own;
}

function expiry<K extends string>(field: K, ms: number | undefined): Partial<Record<K, ReturnType<typeof timestampFromMs>>> {
  return ms === undefined ? {} : ({ [field]: timestampFromMs(ms) } as Record<K, ReturnType<typeof timestampFromMs>>);
}
