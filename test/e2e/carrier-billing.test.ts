import { Code, ConnectError } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { DeclineReason, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { BillingPeriod, LineKind } from '../../gen/countersign/v1/enrollment_pb.js';
import { ErrorInfoSchema } from '../../services/rpc/status-details.js';
import { balance, type Env, key, type Merchant, newMerchant, newPayer, type Payer, secondCode, startEnv } from './harness.js';

// M3c over real sockets: a billable line is a postpaid ledger account whose credit per billing
// period is enforced inside the ledger (a control account charged in the same linked request as
// the money), for the memory and the Redis stores.

for (const store of ['memory', 'redis'] as const) {
  let shared: Promise<Env> | undefined;
  const envOf = () => (shared ??= startEnv('grpc-js', store, {}));
  test.after.always(async () => shared && (await (await shared).close()));

  async function lineOwner(env: Env, creditLimit = 100_00n): Promise<{ payer: Payer; shop: Merchant; lineId: string; lineAccount: string }> {
    const [payer, shop] = await Promise.all([
      newPayer(env, 0n, { noFactorBelow: 50_00n, oneFactorUpTo: 1000_00n, oneFactor: Factor.SECOND_CODE }),
      newMerchant(env, 0),
    ]);
    const line = (
      await env.admin.enrollment.addBillableLine({
        idempotencyKey: key('line'),
        payerId: payer.id,
        kind: LineKind.MOBILE,
        number: '+14155550199',
        currency: 'USD',
        creditLimit,
        billingPeriod: BillingPeriod.MONTHLY,
      })
    ).line!;
    return { payer, shop, lineId: line.id, lineAccount: line.accountId };
  }

  const charge = (shop: Merchant, payer: Payer, lineId: string, amount: bigint, description = 'Call credit') =>
    shop.api.payments.createPayment({
      idempotencyKey: key('m3c'),
      payer: { case: 'payerId', value: payer.id },
      amount,
      currency: 'USD',
      description,
      billableLineId: lineId,
    });

  async function refusal(t: ExecutionContext, call: Promise<unknown>, code: Code): Promise<string> {
    const e = ConnectError.from(await t.throwsAsync(call));
    t.is(Code[e.code], Code[code], e.rawMessage);
    return (e.findDetails(ErrorInfoSchema)[0] as { reason?: string } | undefined)?.reason ?? '';
  }

  test(`${store}: charges onto a line post to its postpaid account until the period's credit is used; over it → declined, nothing posted`, async (t) => {
    const env = await envOf();
    const { payer, shop, lineId, lineAccount } = await lineOwner(env);
    const first = (await charge(shop, payer, lineId, 30_00n)).payment!;
    t.deepEqual([first.state, first.billableLineId], [PaymentState.SUCCEEDED, lineId]);
    const big = (await charge(shop, payer, lineId, 60_00n)).payment!;
    t.is(big.state, PaymentState.CHALLENGED, 'above the no-factor threshold');
    const statement = await env.admin.ledger.getLineStatement({ lineId });
    t.deepEqual(
      [statement.creditLimit, statement.chargedTotal, statement.reservedTotal, statement.available],
      [100_00n, 30_00n, 0n, 70_00n],
      'a challenge holds nothing',
    );
    // Another challenged charge that would not fit beside the first once both are confirmed.
    const rival = (await charge(shop, payer, lineId, 55_00n)).payment!;
    t.is(rival.state, PaymentState.CHALLENGED);
    const confirm = async (p: typeof big) =>
      (
        await payer.api.payer.confirmPayment({
          idempotencyKey: key('c'),
          paymentId: p.id,
          proof: { case: 'secondCode', value: secondCode(payer, env.inbox.firstCodeFor(p.id)!, p.amount, shop.account) },
        })
      ).payment!;
    t.is((await confirm(big)).state, PaymentState.SUCCEEDED);
    const late = await confirm(rival);
    t.deepEqual(
      [late.state, late.declineReason],
      [PaymentState.DECLINED, DeclineReason.CREDIT_LIMIT_EXCEEDED],
      'confirmed after the credit was used: declined',
    );
    t.is(await refusal(t, charge(shop, payer, lineId, 20_00n), Code.FailedPrecondition), 'CREDIT_LIMIT_EXCEEDED');
    const line = (await env.admin.ledger.getAccount({ accountId: lineAccount })).account!;
    t.deepEqual([line.debitsPosted, line.debitsPending], [90_00n, 0n], 'the refused charges left nothing on the line');
    const declined = (await shop.api.payments.listPayments({ payerId: payer.id, states: [PaymentState.DECLINED] })).payments;
    t.deepEqual(
      declined.map((p) => [p.amount, p.declineReason]).sort((a, b) => Number(a[0]) - Number(b[0])),
      [
        [20_00n, DeclineReason.CREDIT_LIMIT_EXCEEDED],
        [55_00n, DeclineReason.CREDIT_LIMIT_EXCEEDED],
      ],
    );
    // What is left fits exactly.
    t.is((await charge(shop, payer, lineId, 10_00n, 'Ringtone')).payment!.state, PaymentState.SUCCEEDED);
    const after = await payer.api.ledger.getLineStatement({ lineId });
    t.deepEqual([after.chargedTotal, after.reservedTotal, after.available], [100_00n, 0n, 0n]);
    t.deepEqual(
      after.entries.map((e) => [e.amount, e.description, e.merchantId]),
      [
        [30_00n, 'Call credit', shop.id],
        [60_00n, 'Call credit', shop.id],
        [10_00n, 'Ringtone', shop.id],
      ],
    );
    t.is((await balance(env, shop.account)).posted, 100_00n, 'the merchant was paid what the line was charged');
  });

  test(`${store}: a charge confirmed with the second code posts the line charge and its limit together`, async (t) => {
    const env = await envOf();
    const { payer, shop, lineId, lineAccount } = await lineOwner(env);
    const p = (await charge(shop, payer, lineId, 80_00n)).payment!;
    const code = env.inbox.firstCodeFor(p.id)!;
    const done = (
      await payer.api.payer.confirmPayment({
        idempotencyKey: key('c'),
        paymentId: p.id,
        proof: { case: 'secondCode', value: secondCode(payer, code, 80_00n, shop.account) },
      })
    ).payment!;
    t.is(done.state, PaymentState.SUCCEEDED);
    const st = await env.admin.ledger.getLineStatement({ lineId });
    t.deepEqual([st.chargedTotal, st.reservedTotal, st.available], [80_00n, 0n, 20_00n]);
    t.is((await env.admin.ledger.getAccount({ accountId: lineAccount })).account!.debitsPosted, 80_00n);
  });

  test(`${store}: concurrent charges never exceed the credit: the ledger admits exactly what fits`, async (t) => {
    const env = await envOf();
    const { payer, shop, lineId, lineAccount } = await lineOwner(env, 100_00n);
    const outcomes = await Promise.allSettled(Array.from({ length: 12 }, () => charge(shop, payer, lineId, 15_00n)));
    const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
    const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => ConnectError.from((o as PromiseRejectedResult).reason).code);
    t.is(ok, 6, '6 × 15.00 fit in 100.00');
    t.deepEqual([...new Set(refused)], [Code.FailedPrecondition]);
    t.is((await env.admin.ledger.getAccount({ accountId: lineAccount })).account!.debitsPosted, 90_00n);
    t.is((await env.admin.ledger.getLineStatement({ lineId })).available, 10_00n);
  });

  test(`${store}: lines are the payer's own: another payer's line is NOT_FOUND, bad lines INVALID_ARGUMENT`, async (t) => {
    const env = await envOf();
    const { payer, shop, lineId } = await lineOwner(env);
    const stranger = await newPayer(env);
    await refusal(t, charge(shop, stranger, lineId, 1_00n), Code.NotFound);
    await refusal(t, stranger.api.ledger.getLineStatement({ lineId }), Code.NotFound);
    await refusal(t, shop.api.ledger.getLineStatement({ lineId }), Code.NotFound);
    await refusal(t, charge(shop, payer, 'not-a-line', 1_00n), Code.InvalidArgument);
    await refusal(
      t,
      env.admin.enrollment.addBillableLine({
        idempotencyKey: key('line'),
        payerId: payer.id,
        kind: LineKind.LANDLINE,
        number: '12345',
        currency: 'USD',
        creditLimit: 1n,
        billingPeriod: BillingPeriod.WEEKLY,
      }),
      Code.InvalidArgument,
    );
    await refusal(
      t,
      env.admin.enrollment.addBillableLine({
        idempotencyKey: key('line'),
        payerId: payer.id,
        kind: LineKind.MODEM,
        number: 'modem-1',
        currency: 'USD',
        creditLimit: 0n,
        billingPeriod: BillingPeriod.WEEKLY,
      }),
      Code.InvalidArgument,
    );
    const listed = (await payer.api.enrollment.getPayer({ payerId: payer.id })).payer!.billableLines;
    t.deepEqual(
      listed.map((l) => [l.id, l.kind, l.creditLimit, l.billingPeriod]),
      [[lineId, LineKind.MOBILE, 100_00n, BillingPeriod.MONTHLY]],
    );
  });
}
