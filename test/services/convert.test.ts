import { create, equals, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import test from 'ava';
import type * as domain from '../../authz/model.js';
import { Channel, DeclineReason, Factor, PaymentSchema, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { paymentToProto } from '../../services/convert.js';

// paymentToProto builds the message object itself (no `create`): it must be the very message `create` would make.

const payment: domain.Payment = {
  id: 'ab'.repeat(16),
  merchantId: 'cd'.repeat(16),
  payerId: 'ef'.repeat(16),
  payeeAccountId: '12'.repeat(16),
  payerAccountId: '34'.repeat(16),
  amount: 1999n,
  currency: 'USD',
  description: 'coffee',
  channel: 'APP',
  requiredFactors: ['SECOND_CODE', 'FIRST_CODE_AND_PIN'],
  satisfiedFactors: ['FIRST_CODE_AND_PIN'],
  attemptsLeft: 2,
  state: 'DECLINED',
  declineReason: 'INSUFFICIENT_FUNDS',
  declineDetail: 'short',
  createdAtMs: 1_795_460_513_632,
  updatedAtMs: 1_795_460_514_001,
  expiresAtMs: 1_795_460_813_632,
  feeAmount: 20n,
  originPath: 'APP',
  billableLineId: '56'.repeat(16),
} as domain.Payment;

test('paymentToProto: the message create() makes from the same fields, the same bytes, and no secret', (t) => {
  const made = paymentToProto(payment, 1);
  const expected = create(PaymentSchema, {
    id: payment.id,
    merchantId: payment.merchantId,
    payerId: payment.payerId,
    payeeAccountId: payment.payeeAccountId,
    amount: 1999n,
    currency: 'USD',
    description: 'coffee',
    channel: Channel.APP,
    requiredFactors: [Factor.SECOND_CODE, Factor.FIRST_CODE_AND_PIN],
    satisfiedFactors: [Factor.FIRST_CODE_AND_PIN],
    attemptsLeft: 1,
    state: PaymentState.DECLINED,
    declineReason: DeclineReason.INSUFFICIENT_FUNDS,
    declineDetail: 'short',
    createdAt: timestampFromMs(payment.createdAtMs),
    updatedAt: timestampFromMs(payment.updatedAtMs),
    expiresAt: timestampFromMs(payment.expiresAtMs),
    billableLineId: payment.billableLineId,
    bankAuthorizationCode: '',
  });
  t.true(equals(PaymentSchema, made, expected));
  t.deepEqual(Object.keys(made).sort(), Object.keys(expected).sort(), 'the same own fields');
  t.deepEqual(Buffer.from(toBinary(PaymentSchema, made)), Buffer.from(toBinary(PaymentSchema, expected)));
  const bare = paymentToProto({
    ...payment,
    declineReason: undefined,
    declineDetail: undefined,
    billableLineId: undefined,
    state: 'CHALLENGED',
    sealedFirstCode: 'sealed',
  } as domain.Payment);
  t.is(bare.declineReason, DeclineReason.UNSPECIFIED);
  t.is(bare.attemptsLeft, 2, 'attempts left default to the payment’s');
  t.false(JSON.stringify(bare, (_k, v) => (typeof v === 'bigint' ? String(v) : v)).includes('sealed'), 'the sealed first code never leaves');
});
