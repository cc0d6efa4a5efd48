import test from 'ava';
import { type AuthorizationContext, type Authorizer, AuthorizerFailure, type ChainOptions, type Decision, decide, failClosed } from '../../authz/authorizer.js';

const context: AuthorizationContext = {
  paymentId: '',
  merchantId: 'm'.repeat(32),
  payerId: 'p'.repeat(32),
  payeeAccountId: 'a'.repeat(32),
  amount: 25_00n,
  currency: 'USD',
  channel: 'MERCHANT',
  requestedFactors: [],
  satisfiedFactors: [],
};

const decline: ChainOptions = { onFailure: 'decline', strongestFactors: ['SECOND_CODE'] };
const strongest: ChainOptions = { onFailure: 'require-strongest', strongestFactors: ['SECOND_CODE', 'FIRST_CODE_AND_PIN'] };

/** An in-process authorizer that answers `decision` and counts its calls. */
function answering(name: string, decision: Decision): Authorizer & { calls: number } {
  const a = { name, calls: 0, decide: async () => (a.calls++, decision) };
  return a;
}

function throwing(name: string, error: unknown): Authorizer {
  return { name, decide: async () => Promise.reject(error) };
}

/** Never answers (a hung plugin); its deadline makes it a failure. Bounded: the pending promise is dropped with the test. */
function hanging(name: string, deadlineMs: number): Authorizer {
  return { name, deadlineMs, decide: () => new Promise<Decision>(() => undefined) };
}

test("ALLOW and REQUIRE unite factors with the merchant's requests, in chain order", async (t) => {
  const chain = [answering('a', { kind: 'ALLOW', reason: 'fine' }), answering('b', { kind: 'REQUIRE', factors: ['SMS_OTP'], reason: 'new device' })];
  const d = await decide(chain, { ...context, requestedFactors: ['SECOND_CODE'] }, decline);
  t.deepEqual(d, { kind: 'REQUIRE', factors: ['SECOND_CODE', 'SMS_OTP'], reason: 'a: fine; b: new device' });
  t.deepEqual(await decide([chain[0]!], context, decline), { kind: 'ALLOW', reason: 'a: fine' });
});

test('DENY short-circuits: later authorizers are not asked, and the DENY is not marked unavailable', async (t) => {
  const later = answering('later', { kind: 'ALLOW', reason: 'ok' });
  const d = await decide([answering('deny-list', { kind: 'DENY', reason: 'payer on the deny list' }), later], context, strongest);
  t.deepEqual(d, { kind: 'DENY', reason: 'deny-list: payer on the deny list' });
  t.is(later.calls, 0);
});

test("'decline': a throwing authorizer declines the payment as unavailable, with a safe reason, and stops the chain", async (t) => {
  const later = answering('later', { kind: 'ALLOW', reason: 'ok' });
  const d = await decide(
    [answering('built-in', { kind: 'ALLOW', reason: 'small' }), throwing('risk', new AuthorizerFailure('call failed: Unavailable')), later],
    context,
    decline,
  );
  t.deepEqual(d, { kind: 'DENY', reason: 'risk: unavailable (call failed: Unavailable)', unavailable: true });
  t.is(later.calls, 0);
  // An unexpected error's own message (it may hold internals) never reaches the reason.
  const other = await decide([throwing('risk', new Error('ECONNREFUSED 10.1.2.3:9000'))], context, decline);
  t.deepEqual(other, { kind: 'DENY', reason: 'risk: unavailable (internal error)', unavailable: true });
});

test("'decline': an authorizer that misses its deadline is a failure", async (t) => {
  const d = await decide([hanging('slow', 30)], context, decline);
  t.deepEqual(d, { kind: 'DENY', reason: 'slow: unavailable (no answer within 30 ms)', unavailable: true });
});

test("'require-strongest': a failed authorizer adds the strongest factors and the chain goes on (a later DENY still wins)", async (t) => {
  const after = answering('after', { kind: 'REQUIRE', factors: ['SMS_OTP'], reason: 'velocity' });
  const d = await decide([answering('built-in', { kind: 'ALLOW', reason: 'small' }), hanging('slow', 30), after], context, strongest);
  t.is(d.kind, 'REQUIRE');
  t.deepEqual(d.kind === 'REQUIRE' ? d.factors : [], ['SECOND_CODE', 'FIRST_CODE_AND_PIN', 'SMS_OTP']);
  t.regex(d.reason, /slow: unavailable \(no answer within 30 ms\), requiring SECOND_CODE, FIRST_CODE_AND_PIN/);
  t.is(after.calls, 1);
  const denied = await decide(
    [throwing('down', new AuthorizerFailure('call failed: Unavailable')), answering('deny-list', { kind: 'DENY', reason: 'blocked' })],
    context,
    strongest,
  );
  t.deepEqual(denied, { kind: 'DENY', reason: 'deny-list: blocked' });
});

test('the two-argument call fails closed by declining', async (t) => {
  t.deepEqual(await decide([throwing('x', new AuthorizerFailure('boom'))], context), { kind: 'DENY', reason: 'x: unavailable (boom)', unavailable: true });
});

test('failClosed applies its options even when the chain runs with the default ones, and keeps `unavailable` through the chain', async (t) => {
  const wrapped = failClosed(hanging('slow', 30), strongest);
  const d = await decide([wrapped], context);
  t.deepEqual(d.kind === 'REQUIRE' ? d.factors : d, ['SECOND_CODE', 'FIRST_CODE_AND_PIN']);
  const declined = await decide([failClosed(throwing('down', new AuthorizerFailure('call failed: Unavailable')), decline)], context, strongest);
  t.deepEqual(declined, { kind: 'DENY', reason: 'down: unavailable (call failed: Unavailable)', unavailable: true });
});
