import { createHmac } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import type { PaymentLimits } from '../../authz/payments.js';
import { DeclineReason, Factor, PasswordKind, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { startTelcoBridge, type TelcoBridge } from '../../services/telco.js';
import { Handset } from '../../telco-bridge/simulator/handset.js';
import { type Smsc, startSmsc } from '../../telco-bridge/simulator/smsc.js';
import { startVoiceProvider, type VoiceProvider } from '../../telco-bridge/simulator/voice-provider.js';
import { freePort } from '../support/redis.js';
import { balance, type Env, key, newMerchant, newPayer, type Payer, startEnv } from './harness.js';

// M2 and M3 end to end over real sockets: authz (gRPC) ⇄ telco bridge (gRPC) ⇄ SMSC (SMPP 3.4)
// and voice provider (Calls.json + signed TwiML webhooks), with a simulated handset.

/** Every wait in these tests, milliseconds. */
const waitMs = 15_000;
const telcoKey = 'cs_telco_e2e_shared_key';
const accountSid = 'AC00000000000000000000000000000001';
const authToken = 'voice-provider-auth-token';

interface World {
  env: Env;
  bridge: TelcoBridge;
  smsc: Smsc;
  voice: VoiceProvider;
  bridgeLogs: string[];
  handset(payer: Payer): Promise<Handset>;
}

async function startWorld(t: ExecutionContext, limits: Partial<PaymentLimits> = {}): Promise<World> {
  const smsc = await startSmsc({ systemId: 'countersign', password: 'smpp-pass' });
  const voice = await startVoiceProvider({ accountSid, authToken });
  const bridgePort = await freePort();
  const env = await startEnv('grpc-js', 'memory', limits, { telcoKey, telcoBridge: `127.0.0.1:${bridgePort}` });
  const bridgeLogs: string[] = [];
  const bridge = await startTelcoBridge({
    host: '127.0.0.1',
    grpcPort: bridgePort,
    webhookPort: 0,
    serviceKey: telcoKey,
    sms: {
      kind: 'smpp',
      host: '127.0.0.1',
      port: smsc.port,
      systemId: 'countersign',
      password: 'smpp-pass',
      sourceAddr: 'countersign',
      windowMax: 10,
      ratePerSecondMax: 50,
      reconnectDelayMsMax: 500,
    },
    voice: { kind: 'twilio', baseUrl: voice.baseUrl, accountSid, authToken, from: '+15550001000' },
    authz: { address: `127.0.0.1:${env.grpcPort}`, serviceKey: telcoKey },
    logger: pino({ level: 'debug' }, { write: (line: string) => void bridgeLogs.push(line) }),
  });
  t.teardown(async () => {
    await bridge.close();
    await env.close();
    await voice.close();
    await smsc.close();
  });
  t.true(await bridge.whenSmsReady(waitMs), 'the bridge bound to the SMSC');
  const handset = async (payer: Payer) => new Handset((await env.app.directory.getPayer(payer.id))!.phone, smsc, voice);
  return { env, bridge, smsc, voice, bridgeLogs, handset };
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const stateOf = (_w: World, shop: { api: Env['admin'] }, id: string) => async () => (await shop.api.payments.getPayment({ paymentId: id })).payment!;

function noSecretsIn(t: ExecutionContext, w: World, secrets: string[]): void {
  const logs = [...w.env.logs, ...w.bridgeLogs].join('\n');
  // A digits-only secret counts where it stands alone: a 4-digit password also occurs inside
  // every log line's millisecond timestamp now and then.
  const found = (s: string) => (/^\d+$/.test(s) ? new RegExp(`(?<![0-9])${s}(?![0-9])`).test(logs) : logs.includes(s));
  t.deepEqual(secrets.filter(found), [], 'no code or password in any log line');
}

test('M2: the SMS code, the payer replies, a call asks for the payment password, and the payment is posted', async (t) => {
  const w = await startWorld(t);
  const [payer, shop] = await Promise.all([newPayer(w.env, 500_00n, { oneFactor: Factor.SMS_OTP, moreFactors: [Factor.SMS_OTP] }), newMerchant(w.env)]);
  await w.env.admin.enrollment.setPassword({ idempotencyKey: key('pw'), payerId: payer.id, kind: PasswordKind.IVR, password: '8642' });
  const phone = await w.handset(payer);
  phone.answerCallsWith('8642#');
  const created = await shop.api.payments.createPayment({
    idempotencyKey: key('m2'),
    payer: { case: 'payerId', value: payer.id },
    amount: 42_50n,
    currency: 'USD',
    description: 'cake',
    requestedFactors: [Factor.IVR_PASSWORD],
  });
  const sms = await phone.waitForSms(waitMs);
  const code = /code (\d{8})/.exec(sms.text)?.[1];
  t.truthy(code, sms.text);
  t.is((await balance(w.env, payer.account)).reserved, 0n, 'nothing held before the payer consents');
  await phone.reply(code!);
  const call = await phone.waitForCallEnd(waitMs);
  t.true(
    call.says.some((s) => /forty-two dollars and fifty cents/i.test(s)),
    call.says.join(' | '),
  );
  const done = await eventually(stateOf(w, shop, created.payment!.id), (p) => p.state === PaymentState.SUCCEEDED);
  t.deepEqual([done.state, done.satisfiedFactors.sort()], [PaymentState.SUCCEEDED, [Factor.SMS_OTP, Factor.IVR_PASSWORD].sort()]);
  t.deepEqual(await balance(w.env, payer.account), { available: 457_50n, posted: 457_50n, reserved: 0n, credited: 500_00n });
  noSecretsIn(t, w, [code!, '8642']);
});

test('M3: login + amount + authentication password, a call for the authorization password, posted; a small amount is frictionless', async (t) => {
  const w = await startWorld(t);
  const [payer, shop] = await Promise.all([
    newPayer(w.env, 500_00n, {
      noFactorBelow: 5_00n,
      oneFactorUpTo: 100_00n,
      oneFactor: Factor.IVR_PASSWORD,
      moreFactors: [Factor.AUTH_PASSWORD, Factor.IVR_PASSWORD],
    }),
    newMerchant(w.env),
  ]);
  const login = `consumer-${payer.id}`;
  await w.env.app.directory.putPayer({ ...(await w.env.app.directory.getPayer(payer.id))!, loginAccount: login });
  await w.env.admin.enrollment.setPassword({ idempotencyKey: key('pw'), payerId: payer.id, kind: PasswordKind.AUTHORIZATION, password: '2468' });
  await w.env.admin.enrollment.setPassword({ idempotencyKey: key('pw'), payerId: payer.id, kind: PasswordKind.AUTH, password: 'open sesame 42' });
  const phone = await w.handset(payer);
  const create = (amount: bigint, authPassword = '') =>
    shop.api.payments.createPayment({
      idempotencyKey: key('m3'),
      payer: { case: 'loginAccount', value: login },
      amount,
      currency: 'USD',
      description: '',
      authPassword,
    });
  t.is((await create(2_00n)).payment!.state, PaymentState.SUCCEEDED);
  t.is(phone.inbox().length, 0, 'nothing sent for a frictionless payment');
  phone.answerCallsWith('2468#');
  const big = await create(250_00n, 'open sesame 42');
  await phone.waitForCallEnd(waitMs);
  const done = await eventually(stateOf(w, shop, big.payment!.id), (p) => p.state === PaymentState.SUCCEEDED);
  t.is(done.state, PaymentState.SUCCEEDED);
  t.is((await balance(w.env, payer.account)).posted, 500_00n - 2_00n - 250_00n);
  noSecretsIn(t, w, ['2468', 'open sesame 42']);
});

test('a wrong DTMF password until the bound declines the payment and releases the funds', async (t) => {
  const w = await startWorld(t);
  const [payer, shop] = await Promise.all([
    newPayer(w.env, 500_00n, { oneFactor: Factor.IVR_PASSWORD, moreFactors: [Factor.IVR_PASSWORD] }),
    newMerchant(w.env),
  ]);
  await w.env.admin.enrollment.setPassword({ idempotencyKey: key('pw'), payerId: payer.id, kind: PasswordKind.IVR, password: '1111' });
  const phone = await w.handset(payer);
  phone.answerCallsWith('9999#', '9998#', '9997#', '9996#', '9995#');
  const p = await shop.api.payments.createPayment({
    idempotencyKey: key('dtmf'),
    payer: { case: 'payerId', value: payer.id },
    amount: 30_00n,
    currency: 'USD',
    description: '',
  });
  const call = await phone.waitForCallEnd(waitMs);
  t.true(
    call.says.some((s) => /not correct/i.test(s)),
    call.says.join(' | '),
  );
  t.true(
    call.says.some((s) => /declined/i.test(s)),
    'the call ends with the decline',
  );
  const declined = await eventually(stateOf(w, shop, p.payment!.id), (x) => x.state === PaymentState.DECLINED);
  t.deepEqual([declined.state, declined.declineReason], [PaymentState.DECLINED, DeclineReason.ATTEMPTS_EXHAUSTED]);
  t.deepEqual(await balance(w.env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n });
});

test('the SMSC drops the connection: the bridge reconnects; an undelivered code is read out on a call', async (t) => {
  const w = await startWorld(t, {});
  const [payer, shop] = await Promise.all([newPayer(w.env), newMerchant(w.env)]);
  const phone = await w.handset(payer);
  // While the SMSC is gone the code cannot be sent: the payment is declined (or, sent late, waits); nothing is held either way.
  w.smsc.dropConnections();
  const refusedWhileDown = await shop.api.payments
    .createPayment({ idempotencyKey: key('down'), payer: { case: 'payerId', value: payer.id }, amount: 7_00n, currency: 'USD', description: '' })
    .then(
      () => 'created',
      (e: unknown) => ConnectError.from(e).code,
    );
  t.true(refusedWhileDown === 'created' || refusedWhileDown === Code.Unavailable, String(refusedWhileDown));
  await w.smsc.waitForBinds(2, waitMs);
  t.true(await w.bridge.whenSmsReady(waitMs), 're-bound after the drop');
  t.is((await balance(w.env, payer.account)).reserved, 0n);
  phone.receipts('fail');
  phone.answerCallsWith('');
  const p = await shop.api.payments.createPayment({
    idempotencyKey: key('fb'),
    payer: { case: 'payerId', value: payer.id },
    amount: 12_00n,
    currency: 'USD',
    description: '',
  });
  const sms = await phone.waitForSms(waitMs);
  const code = /code (\d{8})/.exec(sms.text)![1]!;
  const call = await phone.waitForCallEnd(waitMs);
  const spoken = call.says.join(' ').replace(/[^0-9]/g, '');
  t.true(spoken.includes(code), `the call read the code out (${call.says.length} says)`);
  t.is((await shop.api.payments.getPayment({ paymentId: p.payment!.id })).payment!.state, PaymentState.CHALLENGED, 'the live code stays valid');
  noSecretsIn(t, w, [code]);
});

test('a forged voice webhook gets 403 and changes nothing', async (t) => {
  const w = await startWorld(t);
  const [payer, shop] = await Promise.all([
    newPayer(w.env, 500_00n, { oneFactor: Factor.IVR_PASSWORD, moreFactors: [Factor.IVR_PASSWORD] }),
    newMerchant(w.env),
  ]);
  await w.env.admin.enrollment.setPassword({ idempotencyKey: key('pw'), payerId: payer.id, kind: PasswordKind.IVR, password: '1111' });
  (await w.handset(payer)).refuseCalls('no-answer');
  const p = (
    await shop.api.payments.createPayment({
      idempotencyKey: key('forge'),
      payer: { case: 'payerId', value: payer.id },
      amount: 5_00n,
      currency: 'USD',
      description: '',
    })
  ).payment!;
  const url = `${w.bridge.webhookBaseUrl}/voice/digits?ref=${p.id}`;
  const body = new URLSearchParams({ CallSid: 'CAforged', Digits: '1111', From: '+15550001000' });
  const wrongSignature = createHmac('sha1', 'not-the-token').update(url).digest('base64');
  for (const headers of [{}, { 'x-twilio-signature': wrongSignature }] as Record<string, string>[]) {
    const response = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
    t.is(response.status, 403);
  }
  const after = (await shop.api.payments.getPayment({ paymentId: p.id })).payment!;
  t.deepEqual([after.state, after.satisfiedFactors, after.attemptsLeft], [PaymentState.CHALLENGED, [], 5]);
});
