import { Code, ConnectError } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { base32Decode } from '../../authz/codes/secret.js';
import { Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { balance, type Env, key, newMerchant, newPayer, startEnv, testPolicy } from './harness.js';

// Operator RPCs under bad input (found by the reliability fuzzer) and RotateSecret, over real sockets.

let shared: Promise<Env> | undefined;
const envOf = () => (shared ??= startEnv('connect', 'memory'));
test.after.always(async () => shared && (await (await shared).close()));

async function refused(t: ExecutionContext, call: Promise<unknown>, code: Code): Promise<void> {
  const e = ConnectError.from(await t.throwsAsync(call));
  t.is(Code[e.code], Code[code], e.rawMessage);
}

test('malformed payer ids and missing idempotency keys are INVALID_ARGUMENT, not NOT_FOUND or OK', async (t) => {
  const env = await envOf();
  const payer = await newPayer(env);
  const { enrollment } = env.admin;
  await refused(t, enrollment.getPayer({ payerId: 'GGGG' }), Code.InvalidArgument);
  await refused(t, enrollment.setPin({ idempotencyKey: key('pin'), payerId: 'x'.repeat(100_000), pin: '1234' }), Code.InvalidArgument);
  await refused(t, enrollment.rotateSecret({ idempotencyKey: key('rot'), payerId: 'y'.repeat(1000) }), Code.InvalidArgument);
  await refused(t, enrollment.setPin({ idempotencyKey: '', payerId: payer.id, pin: '1234' }), Code.InvalidArgument);
  await refused(t, enrollment.setPassword({ idempotencyKey: 'has space', payerId: payer.id, kind: 1, password: '2468' }), Code.InvalidArgument);
  await refused(t, enrollment.setPayerPolicy({ idempotencyKey: 'k'.repeat(129), payerId: payer.id, policy: testPolicy }), Code.InvalidArgument);
  t.false((await enrollment.getPayer({ payerId: payer.id })).payer!.hasPin, 'nothing was set');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a hostile input, sent as these characters
  await refused(t, env.admin.payments.listPayments({ payerId: '${jndi:ldap://x}' }), Code.InvalidArgument);
});

test('policies: inverted thresholds are refused at enrollment; a policy for a currency the payer lacks is FAILED_PRECONDITION', async (t) => {
  const env = await envOf();
  const inverted = { currency: 'USD', noFactorBelow: 500n, oneFactorUpTo: 100n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] };
  await refused(
    t,
    env.admin.enrollment.enrollPayer({ idempotencyKey: key('p'), phone: '+14155550777', displayName: 'X', currencies: ['USD'], policies: [inverted] }),
    Code.InvalidArgument,
  );
  await refused(
    t,
    env.admin.enrollment.enrollPayer({
      idempotencyKey: key('p'),
      phone: '+14155550778',
      displayName: 'X',
      currencies: ['USD'],
      policies: [testPolicy, { ...testPolicy, noFactorBelow: 0n }],
    }),
    Code.InvalidArgument,
  );
  const payer = await newPayer(env);
  await refused(
    t,
    env.admin.enrollment.setPayerPolicy({ idempotencyKey: key('pol'), payerId: payer.id, policy: { ...testPolicy, currency: 'EUR' } }),
    Code.FailedPrecondition,
  );
});

test('deposits: an unknown account is NOT_FOUND on every retry; past 2^64 − 1 is refused and moves nothing', async (t) => {
  const env = await envOf();
  const k = key('fund');
  const missing = '0123456789abcdef0123456789abcde0';
  await refused(t, env.admin.ledger.fundAccount({ idempotencyKey: k, accountId: missing, amount: 100n, currency: 'USD' }), Code.NotFound);
  await refused(t, env.admin.ledger.fundAccount({ idempotencyKey: k, accountId: missing, amount: 100n, currency: 'USD' }), Code.NotFound);
  const shop = await newMerchant(env);
  await env.admin.ledger.fundAccount({ idempotencyKey: key('fund'), accountId: shop.account, amount: 1000n, currency: 'USD' });
  await refused(
    t,
    env.admin.ledger.fundAccount({ idempotencyKey: key('fund'), accountId: shop.account, amount: (1n << 64n) - 1n, currency: 'USD' }),
    Code.FailedPrecondition,
  );
  t.is((await balance(env, shop.account)).posted, 1000n, 'the account still reads back');
  t.true((await env.admin.ledger.checkBalanced({})).balanced);
  await refused(
    t,
    env.admin.ledger.listAccountTransfers({ accountId: shop.account, createdMin: { seconds: -4611686018427387904n, nanos: 0 } }),
    Code.InvalidArgument,
  );
  await refused(
    t,
    env.admin.ledger.getAccountBalances({ accountId: shop.account, createdMax: { seconds: 4611686018427387904n, nanos: 0 } }),
    Code.InvalidArgument,
  );
});

test('RotateSecret: a new secret once (empty on retry); codes from the old secret stop working for new payments', async (t) => {
  const env = await envOf();
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const k = key('rotate');
  const rotated = await env.admin.enrollment.rotateSecret({ idempotencyKey: k, payerId: payer.id });
  t.is(rotated.secretVersion, 2);
  t.regex(rotated.verificationSecretBase32, /^[A-Z2-7]{32,}=*$/);
  const again = await env.admin.enrollment.rotateSecret({ idempotencyKey: k, payerId: payer.id });
  t.deepEqual([again.secretVersion, again.verificationSecretBase32], [2, ''], 'an idempotent retry returns no secret');
  await refused(t, payer.api.enrollment.rotateSecret({ idempotencyKey: key('rotate'), payerId: payer.id }), Code.PermissionDenied);
  const p = (
    await shop.api.payments.createPayment({
      idempotencyKey: key('pay'),
      payer: { case: 'payerId', value: payer.id },
      amount: 20_00n,
      currency: 'USD',
      description: '',
    })
  ).payment!;
  const firstCode = env.inbox.firstCodeFor(p.id)!;
  const fields = { firstCode, amount: 20_00n, currency: 'USD', payeeAccountId: shop.account };
  await refused(
    t,
    payer.api.payer.confirmPayment({ idempotencyKey: key('c'), paymentId: p.id, proof: { case: 'secondCode', value: deriveSecondCode(payer.secret, fields) } }),
    Code.PermissionDenied,
  );
  const done = await payer.api.payer.confirmPayment({
    idempotencyKey: key('c'),
    paymentId: p.id,
    proof: { case: 'secondCode', value: deriveSecondCode(base32Decode(rotated.verificationSecretBase32), fields) },
  });
  t.is(done.payment!.state, PaymentState.SUCCEEDED);
});
