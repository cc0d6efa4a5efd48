import { Code, ConnectError } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { Channel, DeclineReason, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { ErrorInfoSchema } from '../../services/rpc/status-details.js';
import { balance, type Env, key, type Merchant, newMerchant, newPayer, type Payer, startEnv } from './harness.js';

// M4 over real sockets: the request comes through the payer's main SIM (the merchant's backend
// reports it), the first code goes back on that path, and the paired device must send it on
// another path (its own authenticated gRPC call over the data network, or the telco bridge's
// SMS relay) with exactly its paired auxiliary SIM.

const telcoKey = 'cs_telco_test_key_m4_0123456789';
const mainSim = { iccid: '8901410321111111111', imsi: '310410111111111', msisdn: '+14155550101' };
const auxSim = { iccid: '8901410322222222222', imsi: '310410222222222', msisdn: '+14155550102' };
const otherSim = { iccid: '8901410323333333333', imsi: '310410333333333', msisdn: '+14155550103' };

let shared: Promise<Env> | undefined;
const envOf = () => (shared ??= startEnv('grpc-js', 'memory', {}, { telcoKey }));
test.after.always(async () => shared && (await (await shared).close()));

async function pairedPayer(env: Env): Promise<Payer & { deviceId: string }> {
  const payer = await newPayer(env, 500_00n, {
    noFactorBelow: 1_00n,
    oneFactorUpTo: 1000_00n,
    oneFactor: Factor.PAIRED_DEVICE,
    moreFactors: [Factor.PAIRED_DEVICE],
  });
  const paired = await env.admin.enrollment.pairDevice({ idempotencyKey: key('pair'), payerId: payer.id, mainSim, auxiliarySim: auxSim, label: 'watch' });
  return { ...payer, deviceId: paired.device!.id };
}

function create(shop: Merchant, payer: Payer, channel: Channel, origin = mainSim) {
  return shop.api.payments.createPayment({
    idempotencyKey: key('m4'),
    payer: { case: 'payerId', value: payer.id },
    amount: 25_00n,
    currency: 'USD',
    description: 'Ticket',
    channel,
    originSim: origin,
  });
}

function deviceMessage(api: Env['admin'], paymentId: string, firstCode: string, deviceId: string, sim = auxSim) {
  return api.payer.confirmPayment({
    idempotencyKey: key('aux'),
    paymentId,
    proof: { case: 'pairedDevice', value: { firstCode, auxiliarySim: sim, deviceId } },
  });
}

async function reason(t: ExecutionContext, call: Promise<unknown>, code: Code): Promise<string> {
  const e = ConnectError.from(await t.throwsAsync(call));
  t.is(Code[e.code], Code[code], e.rawMessage);
  return (e.findDetails(ErrorInfoSchema)[0] as { reason?: string } | undefined)?.reason ?? '';
}

async function setting(env: Env) {
  const [payer, shop] = await Promise.all([pairedPayer(env), newMerchant(env)]);
  return { payer, shop };
}

test('M4: the paired device sends the first code on another path with its paired SIM → SUCCEEDED, money moves once', async (t) => {
  const env = await envOf();
  const { payer, shop } = await setting(env);
  const p = (await create(shop, payer, Channel.MOBILE_NETWORK)).payment!;
  t.deepEqual([p.state, p.requiredFactors], [PaymentState.CHALLENGED, [Factor.PAIRED_DEVICE]]);
  t.is((await balance(env, payer.account)).reserved, 0n, 'nothing held before the payer consents');
  const code = env.inbox.firstCodeFor(p.id)!;
  t.regex(code, /^\d{8}$/, 'the first code went back on the request path');
  const done = (await deviceMessage(payer.api, p.id, code, payer.deviceId)).payment!;
  t.is(done.state, PaymentState.SUCCEEDED);
  t.deepEqual(done.satisfiedFactors, [Factor.PAIRED_DEVICE]);
  t.deepEqual(await balance(env, payer.account), { available: 475_00n, posted: 475_00n, reserved: 0n, credited: 500_00n });
  t.is((await balance(env, shop.account)).posted, 25_00n - 25n, 'the merchant got the amount less its 1 % fee');
});

test('M4: the telco bridge relaying the paired device SMS is another path than an app request', async (t) => {
  const env = await envOf();
  const { payer, shop } = await setting(env);
  const p = (await create(shop, payer, Channel.APP)).payment!;
  const code = (await payer.api.payer.getChallenge({ paymentId: p.id })).firstCode;
  t.regex(code, /^\d{8}$/, "the app's own terminal received the first code");
  const done = (await deviceMessage(env.clients(telcoKey), p.id, code, payer.deviceId)).payment!;
  t.is(done.state, PaymentState.SUCCEEDED);
});

test('M4: a message on the same path as the request is declined and the funds are released', async (t) => {
  const env = await envOf();
  const { payer, shop } = await setting(env);
  const p = (await create(shop, payer, Channel.APP)).payment!;
  const code = (await payer.api.payer.getChallenge({ paymentId: p.id })).firstCode;
  const declined = (await deviceMessage(payer.api, p.id, code, payer.deviceId)).payment!;
  t.deepEqual([declined.state, declined.declineReason], [PaymentState.DECLINED, DeclineReason.DEVICE_MISMATCH]);
  t.regex(declined.declineDetail, /same path/);
  t.deepEqual(await balance(env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n });
});

test('M4: a SIM that is not the paired one, or a request from an unpaired main SIM, never approves', async (t) => {
  const env = await envOf();
  const { payer, shop } = await setting(env);
  const p = (await create(shop, payer, Channel.MOBILE_NETWORK)).payment!;
  const declined = (await deviceMessage(payer.api, p.id, env.inbox.firstCodeFor(p.id)!, payer.deviceId, otherSim)).payment!;
  t.deepEqual([declined.state, declined.declineReason], [PaymentState.DECLINED, DeclineReason.DEVICE_MISMATCH]);
  t.is((await balance(env, payer.account)).reserved, 0n);
  // The right message afterwards cannot revive it.
  t.is(await reason(t, deviceMessage(payer.api, p.id, env.inbox.firstCodeFor(p.id)!, payer.deviceId), Code.FailedPrecondition), 'DECLINED');
  // A request through a SIM no device is paired with reserves nothing.
  t.is(await reason(t, create(shop, payer, Channel.MOBILE_NETWORK, otherSim), Code.FailedPrecondition), 'NO_PAIRED_DEVICE');
  await reason(
    t,
    shop.api.payments.createPayment({
      idempotencyKey: key('m4'),
      payer: { case: 'payerId', value: payer.id },
      amount: 25_00n,
      currency: 'USD',
      description: '',
    }),
    Code.InvalidArgument,
  );
  t.deepEqual(await balance(env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n });
});

test('M4: a bare approval without the first-path secret is refused; a wrong code counts as a wrong answer', async (t) => {
  const env = await envOf();
  const { payer, shop } = await setting(env);
  const p = (await create(shop, payer, Channel.MOBILE_NETWORK)).payment!;
  await reason(t, deviceMessage(payer.api, p.id, '', payer.deviceId), Code.InvalidArgument);
  const code = env.inbox.firstCodeFor(p.id)!;
  const wrong = code === '00000000' ? '11111111' : '00000000';
  const e = ConnectError.from(await t.throwsAsync(deviceMessage(payer.api, p.id, wrong, payer.deviceId)));
  t.is(e.code, Code.PermissionDenied);
  t.is((await shop.api.payments.getPayment({ paymentId: p.id })).payment!.state, PaymentState.CHALLENGED);
  t.is((await balance(env, payer.account)).posted, 500_00n, 'nothing moved while attempts remain');
  t.is((await deviceMessage(payer.api, p.id, code, payer.deviceId)).payment!.state, PaymentState.SUCCEEDED);
});

test('M4: pairing rules — the same SIM twice, bad identities, and only operators pair', async (t) => {
  const env = await envOf();
  const payer = await newPayer(env);
  await reason(
    t,
    env.admin.enrollment.pairDevice({ idempotencyKey: key('pair'), payerId: payer.id, mainSim, auxiliarySim: mainSim, label: '' }),
    Code.InvalidArgument,
  );
  await reason(
    t,
    env.admin.enrollment.pairDevice({
      idempotencyKey: key('pair'),
      payerId: payer.id,
      mainSim,
      auxiliarySim: { iccid: '12', imsi: '', msisdn: '' },
      label: '',
    }),
    Code.InvalidArgument,
  );
  await reason(
    t,
    payer.api.enrollment.pairDevice({ idempotencyKey: key('pair'), payerId: payer.id, mainSim, auxiliarySim: auxSim, label: '' }),
    Code.PermissionDenied,
  );
  const k = key('pair');
  const first = await env.admin.enrollment.pairDevice({ idempotencyKey: k, payerId: payer.id, mainSim, auxiliarySim: auxSim, label: 'watch' });
  const again = await env.admin.enrollment.pairDevice({ idempotencyKey: k, payerId: payer.id, mainSim, auxiliarySim: auxSim, label: 'watch' });
  t.is(again.device!.id, first.device!.id, 'an idempotent retry gives the same pairing');
  await reason(
    t,
    env.admin.enrollment.pairDevice({ idempotencyKey: key('pair'), payerId: payer.id, mainSim, auxiliarySim: auxSim, label: 'again' }),
    Code.AlreadyExists,
  );
  const read = (await env.admin.enrollment.getPayer({ payerId: payer.id })).payer!;
  t.deepEqual(
    read.pairedDevices.map((d) => [d.id, d.auxiliarySim?.imsi, d.label]),
    [[first.device!.id, auxSim.imsi, 'watch']],
  );
});
