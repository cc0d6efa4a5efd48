import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import { secondCodeSuite } from '../../authz/codes/challenge.js';
import type { EnrollmentService as Enrollment } from '../../authz/enrollment.js';
import type { Payer, PayerPolicy } from '../../authz/model.js';
import {
  EnrollmentService,
  PayerPolicySchema,
  PayerSchema,
  type PayerPolicy as ProtoPolicy,
  type Payer as ProtoPayer,
} from '../../gen/countersign/v1/enrollment_pb.js';
import { factorFromProto, factorToProto } from '../convert.js';
import { PasswordKind } from '../../gen/countersign/v1/common_pb.js';
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
    createdAt: timestampFromMs(p.createdAtMs),
  });
}

function later(what: string, issue: string): never {
  throw new ConnectError(`${what} is not available on this deployment yet (${issue})`, Code.Unimplemented);
}

/** EnrollmentService: operators enroll payers and merchants; a payer may read their own entry. */
export function enrollmentServiceImpl(deps: { enrollment: Enrollment }): ServiceImpl<typeof EnrollmentService> {
  const { enrollment } = deps;
  return {
    async enrollPayer(req, ctx) {
      requireAdmin(ctx);
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
      const result = await enrollment.enrollMerchant({ idempotencyKey: req.idempotencyKey, name: req.name, currencies: req.currencies, feeBasisPoints: req.feeBasisPoints, perPaymentLimit: req.perPaymentLimit });
      return { merchantId: result.merchant.id, apiKey: result.apiKey ?? '', payeeAccountIds: result.merchant.accounts, feeBasisPoints: result.merchant.feeBasisPoints };
    },
    async getPayer(req, ctx) {
      const caller = callerOf(ctx);
      if (caller.kind === 'merchant' || caller.kind === 'service' || (caller.kind === 'payer' && caller.payerId !== req.payerId)) {
        throw new ConnectError(`payer ${req.payerId} not found`, Code.NotFound);
      }
      return { payer: payerToProto(await enrollment.payer(req.payerId)) };
    },
    async setPayerPolicy(req, ctx) {
      requireAdmin(ctx);
      if (req.policy === undefined) throw new ConnectError('policy is required', Code.InvalidArgument);
      return { payer: payerToProto(await enrollment.setPolicy(req.payerId, req.policy.currency, policyFromProto(req.policy))) };
    },
    async setPin(req, ctx) {
      requireAdmin(ctx);
      await enrollment.setPin(req.payerId, req.pin);
      return { payer: payerToProto(await enrollment.payer(req.payerId)) };
    },
    // Operators only: a payer terminal's token alone must not be able to replace the secrets that
    // are meant to be a second proof next to it.
    async setPassword(req, ctx) {
      requireAdmin(ctx);
      const kind = req.kind === PasswordKind.IVR ? 'IVR' : req.kind === PasswordKind.AUTHORIZATION ? 'AUTHORIZATION' : req.kind === PasswordKind.AUTH ? 'AUTH' : undefined;
      if (kind === undefined) throw new ConnectError('kind is required (IVR, AUTH or AUTHORIZATION)', Code.InvalidArgument);
      return { payer: payerToProto(await enrollment.setPassword(req.payerId, kind, req.password)) };
    },
    pairDevice: () => later('PairDevice (M4)', 'paired device issue'),
    addBillableLine: () => later('AddBillableLine (M3c)', 'carrier billing issue'),
    issuePayNumber: () => later('IssuePayNumber (M5)', 'bank card issue'),
    rotateSecret: () => later('RotateSecret', 'a later issue'),
  };
}
