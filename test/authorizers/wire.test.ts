import { create, toBinary } from '@bufbuild/protobuf';
import test from 'ava';
import { type AuthorizationContext, AuthorizerFailure } from '../../authz/authorizer.js';
import { DecideRequestSchema, DecideResponseSchema, Decision } from '../../gen/countersign/v1/authorizer_pb.js';
import { Channel, Factor } from '../../gen/countersign/v1/common_pb.js';
import { attributesMax, fromDecideResponse, reasonCharsMax, toDecideRequest } from '../../services/authorizers/wire.js';
import { ConfigError, loadConfig } from '../../services/config.js';

test('COUNTERSIGN_AUTHORIZERS and friends: parsed with defaults', (t) => {
  const none = loadConfig({});
  t.deepEqual([none.authorizers, none.authorizerDeadlineMs, none.authorizerFailure, none.authorizerStrongestFactors], [[], 200, 'decline', ['SECOND_CODE']]);
  const c = loadConfig({
    COUNTERSIGN_AUTHORIZERS: 'risk=127.0.0.1:9000, 10.0.0.2:9001,v6=[::1]:9002',
    COUNTERSIGN_AUTHORIZER_DEADLINE_MS: '350',
    COUNTERSIGN_AUTHORIZER_FAILURE: 'require-strongest',
    COUNTERSIGN_AUTHORIZER_STRONGEST: 'SECOND_CODE, FIRST_CODE_AND_PIN',
  });
  t.deepEqual(c.authorizers, [
    { name: 'risk', address: '127.0.0.1:9000' },
    { name: '10.0.0.2:9001', address: '10.0.0.2:9001' },
    { name: 'v6', address: '[::1]:9002' },
  ]);
  t.is(c.authorizerDeadlineMs, 350);
  t.is(c.authorizerFailure, 'require-strongest');
  t.deepEqual(c.authorizerStrongestFactors, ['SECOND_CODE', 'FIRST_CODE_AND_PIN']);
});

test('invalid plugin settings are a clear start-up error naming the variable', (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ COUNTERSIGN_AUTHORIZERS: 'risk=localhost' }, /COUNTERSIGN_AUTHORIZERS: "risk=localhost" is not \[name=\]host:port/],
    [{ COUNTERSIGN_AUTHORIZERS: 'risk=h:0' }, /port 1\.\.65535/],
    [{ COUNTERSIGN_AUTHORIZERS: 'risk=h:70000' }, /port 1\.\.65535/],
    [{ COUNTERSIGN_AUTHORIZERS: 'a=h:1,a=h:2' }, /unique/],
    [{ COUNTERSIGN_AUTHORIZERS: 'built-in=h:1' }, /not "built-in"/],
    [{ COUNTERSIGN_AUTHORIZERS: 'bad name=h:1' }, /name "bad name"/],
    [{ COUNTERSIGN_AUTHORIZER_DEADLINE_MS: '0' }, /COUNTERSIGN_AUTHORIZER_DEADLINE_MS must be an integer 1\.\.10000, got "0"/],
    [{ COUNTERSIGN_AUTHORIZER_DEADLINE_MS: '2.5' }, /COUNTERSIGN_AUTHORIZER_DEADLINE_MS/],
    [{ COUNTERSIGN_AUTHORIZER_FAILURE: 'open' }, /COUNTERSIGN_AUTHORIZER_FAILURE must be "decline" or "require-strongest", got "open"/],
    [{ COUNTERSIGN_AUTHORIZER_STRONGEST: 'SECOND_CODE,RETINA' }, /COUNTERSIGN_AUTHORIZER_STRONGEST: unknown factor "RETINA"/],
    [{ COUNTERSIGN_AUTHORIZER_STRONGEST: 'UNSPECIFIED' }, /unknown factor "UNSPECIFIED"/],
    [{ COUNTERSIGN_AUTHORIZER_STRONGEST: ' , ' }, /at least one factor/],
  ];
  for (const [env, message] of cases) {
    const error = t.throws(() => loadConfig(env), { instanceOf: ConfigError }, JSON.stringify(env));
    t.regex(error?.message ?? '', message);
  }
});

const secretPin = '4321';
const context: AuthorizationContext = {
  paymentId: '',
  merchantId: 'a'.repeat(32),
  payerId: 'b'.repeat(32),
  payeeAccountId: 'c'.repeat(32),
  amount: 18_446_744_073_709_551_615n,
  currency: 'USD',
  channel: 'VOICE',
  requestedFactors: ['SMS_OTP'],
  satisfiedFactors: ['SECOND_CODE'],
  attributes: {
    request_id: 'merchant:order-1',
    ip: '192.0.2.1',
    second_code: '12345678',
    cardPan: '4111111111111111',
    auth_password: 'hunter2',
    pin: secretPin,
    shipping: 'express',
    ['k'.repeat(65)]: 'too long a key',
    big: 'v'.repeat(1025),
    ...Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`extra_${String(i).padStart(3, '0')}`, String(i)])),
  },
  // In-process records: never sent.
  payer: { id: 'b'.repeat(32), pinHash: '$argon2id$v=19$secret-hash' } as never,
  merchant: { id: 'a'.repeat(32), apiKeyHash: 'merchant-key-hash' } as never,
};

test('toDecideRequest: ids, money, enums and bounded non-secret attributes only', (t) => {
  const r = toDecideRequest(context);
  t.is(r.amount, 18_446_744_073_709_551_615n);
  t.is(r.channel, Channel.VOICE);
  t.deepEqual(r.requestedFactors, [Factor.SMS_OTP]);
  t.deepEqual(r.satisfiedFactors, [Factor.SECOND_CODE]);
  t.deepEqual([r.paymentId, r.merchantId, r.payerId, r.payeeAccountId, r.currency], ['', 'a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32), 'USD']);
  const keys = Object.keys(r.attributes);
  t.is(keys.length, attributesMax);
  t.is(r.attributes.request_id, 'merchant:order-1');
  t.is(r.attributes.ip, '192.0.2.1');
  t.is(r.attributes.shipping, 'express', "'pin' inside another word is not a secret's key");
  for (const k of ['second_code', 'cardPan', 'auth_password', 'pin', 'k'.repeat(65), 'big']) t.false(k in r.attributes, k);
  const bytes = Buffer.from(toBinary(DecideRequestSchema, r)).toString('latin1');
  for (const secret of ['12345678', '4111111111111111', 'hunter2', 'argon2id', 'merchant-key-hash']) t.false(bytes.includes(secret), secret);
});

test('fromDecideResponse: ALLOW, DENY, REQUIRE map; unusable answers fail closed; the reason is cut to 200 characters', (t) => {
  const r = (v: object) => create(DecideResponseSchema, v);
  t.deepEqual(fromDecideResponse(r({ decision: Decision.ALLOW, reason: 'ok' })), { kind: 'ALLOW', reason: 'ok' });
  t.deepEqual(fromDecideResponse(r({ decision: Decision.DENY, reason: 'x'.repeat(500) })), { kind: 'DENY', reason: 'x'.repeat(reasonCharsMax) });
  t.deepEqual(fromDecideResponse(r({ decision: Decision.REQUIRE, requiredFactors: [Factor.SMS_OTP, Factor.SMS_OTP], reason: 'new device' })), {
    kind: 'REQUIRE',
    factors: ['SMS_OTP'],
    reason: 'new device',
  });
  t.throws(() => fromDecideResponse(r({ decision: Decision.UNSPECIFIED })), { instanceOf: AuthorizerFailure, message: /decision 0/ });
  t.throws(() => fromDecideResponse(r({ decision: 7 })), { instanceOf: AuthorizerFailure });
  t.throws(() => fromDecideResponse(r({ decision: Decision.REQUIRE, reason: 'no factors' })), { instanceOf: AuthorizerFailure, message: /without factors/ });
  t.throws(() => fromDecideResponse(r({ decision: Decision.REQUIRE, requiredFactors: [Factor.UNSPECIFIED] })), {
    instanceOf: AuthorizerFailure,
    message: /unknown factor/,
  });
  t.throws(() => fromDecideResponse(r({ decision: Decision.REQUIRE, requiredFactors: [99] })), { instanceOf: AuthorizerFailure, message: /unknown factor/ });
});
