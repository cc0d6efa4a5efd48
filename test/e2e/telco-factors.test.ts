import { Code, ConnectError } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { DeclineReason, Factor, PasswordKind, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { ErrorInfoSchema } from '../../services/rpc/status-details.js';
import { balance, type Env, key, newMerchant, newPayer, type Payer, startEnv } from './harness.js';

// M2 and M3 factors in authz, with the telco bridge's part played by its service credential
// (the bridge relays SMS replies and keyed passwords through PayerService.ConfirmPayment).

const telcoKey = 'cs_telco_test_key_0123456789';

async function refused(t: ExecutionContext, call: Promise<unknown>, code: Code): Promise<Record<string, string>> {
  const e = ConnectError.from(await t.throwsAsync(call));
  t.is(Code[e.code], Code[code], e.rawMessage);
  const info = e.findDetails(ErrorInfoSchema)[0] as { reason?: string; metadata?: Record<string, string> } | undefined;
  return { ...(info?.metadata ?? {}), reason: info?.reason ?? '' };
}

async function m3Payer(env: Env): Promise<Payer & { login: string }> {
  const payer = await newPayer(env, 500_00n, {
    noFactorBelow: 5_00n,
    oneFactorUpTo: 100_00n,
    oneFactor: Factor.IVR_PASSWORD,
    moreFactors: [Factor.AUTH_PASSWORD, Factor.IVR_PASSWORD],
  });
  const login = `consumer-${payer.id}`;
  await env.app.directory.putPayer({ ...(await env.app.directory.getPayer(payer.id))!, loginAccount: login });
  await env.admin.enrollment.setPassword({ idempotencyKey: key('pw'), payerId: payer.id, kind: PasswordKind.AUTHORIZATION, password: '2468' });
  await env.admin.enrollment.setPassword({ idempotencyKey: key('pw'), payerId: payer.id, kind: PasswordKind.AUTH, password: 'correct horse battery' });
  return { ...payer, login };
}

const keyed = (env: Env, paymentId: string, password: string) =>
  env
    .clients(telcoKey)
    .payer.confirmPayment({ idempotencyKey: key('ivr'), paymentId, proof: { case: 'password', value: { kind: PasswordKind.IVR, password } } });

let shared: Promise<Env> | undefined;
const envOf = () => (shared ??= startEnv('grpc-js', 'memory', {}, { telcoKey }));
test.after.always(async () => shared && (await (await shared).close()));

test('M3: login account + amount; a small amount is frictionless, a middle one needs the authorization password on a call', async (t) => {
  const env = await envOf();
  const [payer, shop] = await Promise.all([m3Payer(env), newMerchant(env)]);
  const create = (amount: bigint, authPassword = '') =>
    shop.api.payments.createPayment({
      idempotencyKey: key('m3'),
      payer: { case: 'loginAccount', value: payer.login },
      amount,
      currency: 'USD',
      description: '',
      authPassword,
    });
  t.is((await create(3_00n)).payment!.state, PaymentState.SUCCEEDED, 'below the no-factor threshold');
  const p = (await create(50_00n)).payment!;
  t.deepEqual([p.state, p.requiredFactors], [PaymentState.CHALLENGED, [Factor.IVR_PASSWORD]]);
  const call = env.inbox.calls.find((c) => c.paymentId === p.id);
  t.deepEqual([call?.phone.startsWith('+1415'), call?.amount], [true, 50_00n], 'the call went out at once');
  t.is((await refused(t, keyed(env, p.id, '1357'), Code.PermissionDenied)).attempts_left, '4');
  t.is((await keyed(env, p.id, '2468')).payment!.state, PaymentState.SUCCEEDED);
  t.is((await balance(env, payer.account)).posted, 500_00n - 3_00n - 50_00n);
});

test('M3: above the threshold both passwords; a wrong authentication password reserves nothing', async (t) => {
  const env = await envOf();
  const [payer, shop] = await Promise.all([m3Payer(env), newMerchant(env)]);
  const create = (authPassword: string) =>
    shop.api.payments.createPayment({
      idempotencyKey: key('m3b'),
      payer: { case: 'loginAccount', value: payer.login },
      amount: 200_00n,
      currency: 'USD',
      description: '',
      authPassword,
    });
  await refused(t, create(''), Code.InvalidArgument);
  t.is((await refused(t, create('wrong password!'), Code.PermissionDenied)).reason, 'WRONG_AUTH_PASSWORD');
  t.is((await balance(env, payer.account)).reserved, 0n);
  const p = (await create('correct horse battery')).payment!;
  t.deepEqual([p.state, p.requiredFactors, p.satisfiedFactors], [PaymentState.CHALLENGED, [Factor.AUTH_PASSWORD, Factor.IVR_PASSWORD], [Factor.AUTH_PASSWORD]]);
  t.is((await keyed(env, p.id, '2468')).payment!.state, PaymentState.SUCCEEDED);
  t.is((await balance(env, payer.account)).posted, 300_00n);
});

test('M2: SMS code first (the reply), then the call for the payment password, then posted', async (t) => {
  const env = await envOf();
  const [payer, shop] = await Promise.all([newPayer(env, 500_00n, { oneFactor: Factor.SMS_OTP, moreFactors: [Factor.SMS_OTP] }), newMerchant(env)]);
  await env.admin.enrollment.setPassword({ idempotencyKey: key('pw'), payerId: payer.id, kind: PasswordKind.IVR, password: '8642' });
  const p = (
    await shop.api.payments.createPayment({
      idempotencyKey: key('m2'),
      payer: { case: 'payerId', value: payer.id },
      amount: 42_00n,
      currency: 'USD',
      description: '',
      requestedFactors: [Factor.IVR_PASSWORD],
    })
  ).payment!;
  t.deepEqual(p.requiredFactors, [Factor.IVR_PASSWORD, Factor.SMS_OTP]);
  t.false(
    env.inbox.calls.some((c) => c.paymentId === p.id),
    'no call before the SMS reply',
  );
  t.is((await refused(t, keyed(env, p.id, '8642'), Code.FailedPrecondition)).reason, 'SMS_OTP_FIRST');
  const smsCode = env.inbox.firstCodeFor(p.id)!;
  const replied = await env.clients(telcoKey).payer.confirmPayment({ idempotencyKey: key('sms'), paymentId: p.id, proof: { case: 'smsOtp', value: smsCode } });
  t.deepEqual([replied.payment!.state, replied.payment!.satisfiedFactors], [PaymentState.CHALLENGED, [Factor.SMS_OTP]]);
  t.true(
    env.inbox.calls.some((c) => c.paymentId === p.id),
    'the call follows the reply',
  );
  t.is((await keyed(env, p.id, '8642')).payment!.state, PaymentState.SUCCEEDED);
  t.is((await balance(env, payer.account)).posted, 458_00n);
});

test('a wrong keyed password until the bound declines the payment and releases the funds', async (t) => {
  const env = await envOf();
  const [payer, shop] = await Promise.all([m3Payer(env), newMerchant(env)]);
  const p = (
    await shop.api.payments.createPayment({
      idempotencyKey: key('m3w'),
      payer: { case: 'loginAccount', value: payer.login },
      amount: 60_00n,
      currency: 'USD',
      description: '',
    })
  ).payment!;
  for (const left of ['4', '3', '2', '1']) t.is((await refused(t, keyed(env, p.id, '0000'), Code.PermissionDenied)).attempts_left, left);
  await refused(t, keyed(env, p.id, '0000'), Code.ResourceExhausted);
  const declined = (await shop.api.payments.getPayment({ paymentId: p.id })).payment!;
  t.deepEqual([declined.state, declined.declineReason], [PaymentState.DECLINED, DeclineReason.ATTEMPTS_EXHAUSTED]);
  t.deepEqual(await balance(env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n });
});

test('only the telco bridge relays keyed passwords: not the payer terminal (nor can it reset them), not merchants or strangers', async (t) => {
  const env = await envOf();
  const [payer, shop] = await Promise.all([m3Payer(env), newMerchant(env)]);
  const p = (
    await shop.api.payments.createPayment({
      idempotencyKey: key('auth'),
      payer: { case: 'loginAccount', value: payer.login },
      amount: 20_00n,
      currency: 'USD',
      description: '',
    })
  ).payment!;
  const proof = { case: 'password' as const, value: { kind: PasswordKind.IVR, password: '2468' } };
  await refused(t, shop.api.payer.confirmPayment({ idempotencyKey: key('x'), paymentId: p.id, proof }), Code.PermissionDenied);
  await refused(t, env.clients('cs_telco_forged').payer.confirmPayment({ idempotencyKey: key('x'), paymentId: p.id, proof }), Code.Unauthenticated);
  await refused(t, env.clients(telcoKey).payments.getPayment({ paymentId: p.id }), Code.PermissionDenied);
  await refused(t, payer.api.payer.confirmPayment({ idempotencyKey: key('x'), paymentId: p.id, proof }), Code.PermissionDenied);
  await refused(
    t,
    payer.api.enrollment.setPassword({ idempotencyKey: key('x'), payerId: payer.id, kind: PasswordKind.AUTHORIZATION, password: '1111' }),
    Code.PermissionDenied,
  );
  t.is((await keyed(env, p.id, '2468')).payment!.state, PaymentState.SUCCEEDED, 'only through the call (the bridge)');
});

test('SMS-pumping defence: each code-rate limit gives RESOURCE_EXHAUSTED and sends and reserves nothing', async (t) => {
  const limited = await startEnv('connect', 'memory', { codesPerDestinationMax: 2, codesPerPayerMax: 100, codesPerPrefixMax: 100 }, { telcoKey });
  t.teardown(() => limited.close());
  const [payer, shop] = await Promise.all([newPayer(limited), newMerchant(limited)]);
  const create = () =>
    shop.api.payments.createPayment({
      idempotencyKey: key('rate'),
      payer: { case: 'payerId', value: payer.id },
      amount: 10_00n,
      currency: 'USD',
      description: '',
    });
  await create();
  await create();
  t.is((await refused(t, create(), Code.ResourceExhausted)).reason, 'CODE_RATE_DESTINATION');
  t.is((await shop.api.payments.listPayments({ payerId: payer.id })).payments.length, 2, 'the refused payment was not recorded');
  const perPayer = await startEnv('connect', 'memory', { codesPerDestinationMax: 100, codesPerPayerMax: 1, codesPerPrefixMax: 100 });
  t.teardown(() => perPayer.close());
  const [p2, s2] = await Promise.all([newPayer(perPayer), newMerchant(perPayer)]);
  const again = () =>
    s2.api.payments.createPayment({ idempotencyKey: key('rate'), payer: { case: 'payerId', value: p2.id }, amount: 10_00n, currency: 'USD', description: '' });
  await again();
  t.is((await refused(t, again(), Code.ResourceExhausted)).reason, 'CODE_RATE_PAYER');
  const perPrefix = await startEnv('connect', 'memory', { codesPerDestinationMax: 100, codesPerPayerMax: 100, codesPerPrefixMax: 1 });
  t.teardown(() => perPrefix.close());
  const [p3, s3] = await Promise.all([newPayer(perPrefix), newMerchant(perPrefix)]);
  const third = () =>
    s3.api.payments.createPayment({ idempotencyKey: key('rate'), payer: { case: 'payerId', value: p3.id }, amount: 10_00n, currency: 'USD', description: '' });
  await third();
  t.is((await refused(t, third(), Code.ResourceExhausted)).reason, 'CODE_RATE_PREFIX');
});
