import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { secondCodeSuite } from '../../authz/codes/challenge.js';
import { invalidArgument, permissionDenied, precondition } from '../../authz/errors.js';
import type { PaymentEvents } from '../../authz/events.js';
import { isChallenged } from '../../authz/factors/index.js';
import type { Payment } from '../../authz/model.js';
import type { PaymentsService, Proof } from '../../authz/payments.js';
import type { Directory } from '../../authz/ports.js';
import { terminalShowsFirstCode } from '../../authz/steps/create-prepare.js';
import { Channel, PasswordKind } from '../../gen/countersign/v1/common_pb.js';
import type { ConfirmPaymentRequest, PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { envelopeFromProto, factorToProto, paymentToProto, simFromProto } from '../convert.js';
import { callerOf, decodePageToken, encodePageToken, pageSize, payerOf } from './caller.js';

function proofOf(req: ConfirmPaymentRequest): Proof {
  switch (req.proof.case) {
    case 'secondCode':
      return { kind: 'second_code', secondCode: req.proof.value };
    case 'firstCodeAndPin':
      return { kind: 'first_code_and_pin', firstCode: req.proof.value.firstCode, pin: req.proof.value.pin };
    case 'smsOtp':
      return { kind: 'sms_otp', code: req.proof.value };
    case 'password':
      if (req.proof.value.kind === PasswordKind.AUTH) {
        throw precondition('the authentication password is given with CreatePayment (auth_password), not here');
      }
      if (req.proof.value.kind !== PasswordKind.IVR && req.proof.value.kind !== PasswordKind.AUTHORIZATION) {
        throw invalidArgument('password.kind', `must be IVR or AUTHORIZATION, got ${req.proof.value.kind}`);
      }
      return { kind: 'password', password: req.proof.value.password };
    case 'pairedDevice':
      return {
        kind: 'paired_device',
        firstCode: req.proof.value.firstCode,
        auxiliarySim: simFromProto(req.proof.value.auxiliarySim, 'paired_device.auxiliary_sim'),
        deviceId: req.proof.value.deviceId,
      };
    case 'bankCard':
      return { kind: 'bank_card', envelope: envelopeFromProto(req.proof.value) };
    case undefined:
      throw invalidArgument('proof', 'is required: one of second_code, first_code_and_pin, sms_otp, password, paired_device or bank_card');
  }
}

function maskPhone(phone: string): string {
  return phone.length <= 4 ? '****' : `${'*'.repeat(phone.length - 4)}${phone.slice(-4)}`;
}

/** PayerService: the payer's terminal. A payer sees and answers their own payments only. */
export function payerServiceImpl(deps: {
  payments: PaymentsService;
  directory: Directory;
  events: PaymentEvents;
  listPayments: (q: { payerId: string; states: Payment['state'][]; afterId?: string; limit: number }) => Promise<Payment[]>;
  payeeName: (payment: Payment) => Promise<string>;
}): ServiceImpl<typeof PayerService> {
  return {
    async confirmPayment(req, ctx) {
      // The payer's terminal, or the telco bridge relaying the payer's SMS reply or keyed password.
      const caller = callerOf(ctx);
      if (caller.kind === 'merchant') throw permissionDenied('merchants confirm with PaymentService.ConfirmPaymentAsMerchant');
      const payment = await deps.payments.confirm(caller, req.paymentId, req.idempotencyKey, proofOf(req));
      return { payment: paymentToProto(payment) };
    },
    async declinePayment(req, ctx) {
      const payment = await deps.payments.refuse({ kind: 'payer', payerId: payerOf(ctx) }, req.paymentId, req.idempotencyKey, req.reason);
      return { payment: paymentToProto(payment) };
    },
    async listPendingPayments(req, ctx) {
      const payerId = payerOf(ctx);
      if (req.payerId !== '' && req.payerId !== payerId) throw permissionDenied('a payer can list only their own payments');
      const limit = pageSize(req.pageSize);
      const afterId = decodePageToken(req.pageToken);
      const page = await deps.listPayments({ payerId, states: ['CHALLENGED'], ...(afterId === undefined ? {} : { afterId }), limit });
      return { payments: page.map((p) => paymentToProto(p)), nextPageToken: page.length < limit ? '' : encodePageToken(page[page.length - 1]?.id) };
    },
    async *watchPendingPayments(req, ctx) {
      const payerId = payerOf(ctx);
      if (req.payerId !== '' && req.payerId !== payerId) throw permissionDenied('a payer can watch only their own payments');
      const updates = deps.events.subscribe((p) => p.payerId === payerId, ctx.signal, `payer:${payerId}`);
      for (const p of await deps.listPayments({ payerId, states: ['CHALLENGED'], limit: 1000 })) yield { payment: paymentToProto(p) };
      for await (const payment of updates) yield { payment: paymentToProto(payment) };
    },
    async getChallenge(req, ctx) {
      const caller = { kind: 'payer' as const, payerId: payerOf(ctx) };
      const payment = await deps.payments.get(caller, req.paymentId);
      const payer = await deps.directory.getPayer(payment.payerId);
      const pending = payment.requiredFactors.filter((f) => !payment.satisfiedFactors.includes(f));
      const challenged = pending.find(isChallenged);
      // A code for the SMS factor goes by SMS only: never to the terminal (README "Tenant safety").
      const firstCode = terminalShowsFirstCode(payment) ? await deps.payments.firstCodeForTerminal(caller, payment) : undefined;
      const bankKey = await deps.payments.bankKeyFor(payment);
      const bySms = payment.requiredFactors.includes('SMS_OTP');
      const terminal = !bySms && (payment.channel === 'APP' || payment.channel === 'WEB');
      return {
        paymentId: payment.id,
        amount: payment.amount,
        currency: payment.currency,
        payeeAccountId: payment.payeeAccountId,
        payeeName: await deps.payeeName(payment),
        description: payment.description,
        firstCodeDelivery: {
          channel: terminal ? Channel[payment.channel] : bySms ? Channel.SMS : Channel.CONSOLE,
          destinationMasked: terminal ? '' : maskPhone(payer?.phone ?? ''),
          sentAt: timestampFromMs(payment.createdAtMs),
        },
        ocraSuite: secondCodeSuite,
        pendingFactors: pending.map(factorToProto),
        // Attempts belong to factors checked by a challenge; the bank counts PIN tries itself.
        attemptsLeft: challenged === undefined ? 0 : deps.payments.attemptsLeft(payment),
        expiresAt: timestampFromMs(payment.expiresAtMs),
        firstCode: firstCode ?? '',
        ...(bankKey === undefined ? {} : { bankKey: { keyId: bankKey.keyId, suite: bankKey.suite, publicKey: bankKey.publicKey } }),
      };
    },
  };
}
