import test from 'ava';
import type { AuthorizationContext } from '../../authz/authorizer.js';
import { VelocityRule, velocityWindowMs } from '../../services/authorizers/velocity.js';

function request(payerId: string, requestId: string): AuthorizationContext {
  return {
    paymentId: '',
    merchantId: 'm',
    payerId,
    payeeAccountId: 'a',
    amount: 1n,
    currency: 'USD',
    channel: 'MERCHANT',
    requestedFactors: [],
    satisfiedFactors: [],
    attributes: { request_id: requestId },
  };
}

function rule(maxPerHour: number, payersMax = 1_000) {
  const clock = { ms: 1_000_000 };
  return { clock, rule: new VelocityRule({ maxPerHour, factor: 'SMS_OTP', payersMax, now: () => clock.ms }) };
}

const kinds = async (r: VelocityRule, payer: string, ids: string[]) => {
  const out: string[] = [];
  for (const id of ids) out.push((await r.decide(request(payer, id))).kind);
  return out;
};

test('more than N distinct requests per payer within the hour require the factor; retries count once and keep their answer', async (t) => {
  const { rule: r } = rule(2);
  t.deepEqual(await kinds(r, 'p1', ['a', 'a', 'b', 'a', 'c', 'b', 'c', 'd']), ['ALLOW', 'ALLOW', 'ALLOW', 'ALLOW', 'REQUIRE', 'ALLOW', 'REQUIRE', 'REQUIRE']);
  const d = await r.decide(request('p1', 'e'));
  t.deepEqual(d, { kind: 'REQUIRE', factors: ['SMS_OTP'], reason: 'more than 2 payment requests within an hour' });
  t.deepEqual(await kinds(r, 'p2', ['a', 'b']), ['ALLOW', 'ALLOW'], 'payers are counted apart');
});

test('the window slides: requests older than an hour no longer count', async (t) => {
  const { rule: r, clock } = rule(2);
  t.deepEqual(await kinds(r, 'p', ['a', 'b', 'c']), ['ALLOW', 'ALLOW', 'REQUIRE']);
  clock.ms += velocityWindowMs - 1;
  t.deepEqual(await kinds(r, 'p', ['d']), ['REQUIRE']);
  clock.ms += 1;
  t.deepEqual(await kinds(r, 'p', ['e', 'f']), ['ALLOW', 'REQUIRE'], 'a, b and c left the window; d and e are in it');
  clock.ms += velocityWindowMs;
  t.deepEqual(await kinds(r, 'p', ['g', 'h', 'i']), ['ALLOW', 'ALLOW', 'REQUIRE']);
});

test('memory is bounded: at most payersMax payers (least recently seen forgotten first)', async (t) => {
  const { rule: r } = rule(1, 3);
  t.deepEqual(await kinds(r, 'old', ['a', 'b']), ['ALLOW', 'REQUIRE']);
  for (const p of ['p1', 'p2', 'p3']) await r.decide(request(p, 'x'));
  t.is(r.payersTracked, 3);
  t.deepEqual(await kinds(r, 'old', ['c']), ['ALLOW'], 'the oldest payer was forgotten');
  t.is(r.payersTracked, 3);
});

test('without request_id the payment id identifies the request; with neither every call counts', async (t) => {
  const { rule: r } = rule(1);
  const byPayment = (id: string): AuthorizationContext => ({ ...request('p', ''), attributes: {}, paymentId: id });
  t.deepEqual([(await r.decide(byPayment('x'))).kind, (await r.decide(byPayment('x'))).kind], ['ALLOW', 'ALLOW']);
  t.is((await r.decide(byPayment(''))).kind, 'REQUIRE');
  await t.throwsAsync(r.decide(request('', 'z')), { message: /payer_id is required/ });
});
