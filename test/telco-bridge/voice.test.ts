import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { PasswordKind, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import type { StartCallRequest } from '../../gen/countersign/v1/telco_pb.js';
import { twilioSignature } from '../../telco-bridge/twilio-signature.js';
import { accountSid, authToken, authzKeyOfBridge, linesWith, paymentId, type Rig, startRig, waitMs } from './harness.js';

// Calls through the simulated TwiML provider: the signed Calls.json, the spoken announcement,
// digits relayed to a fake authz and the TwiML that follows each answer, signature checks.

const alice = '+14155550123';
const password = '90817263';
const announcement = 'Payment of forty-two dollars and fifty cents to Corner Bakery.';
const instruction = 'Enter your password followed by the hash key.';

function call(overrides: Partial<StartCallRequest> = {}): Partial<StartCallRequest> {
  return {
    idempotencyKey: 'call-1',
    to: alice,
    reference: paymentId,
    announcement: {
      $typeName: 'countersign.v1.CallAnnouncement',
      payeeName: 'Corner Bakery',
      amount: 4250n,
      currency: 'USD',
      description: '',
      language: '',
      spokenCode: '',
    },
    ...overrides,
  };
}

test('StartCall: a signed Calls.json, TwiML announcing the amount in words and the payee, the password relayed to authz, approval', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({ reference: paymentId });
  t.teardown(() => stream.cancel());
  rig.phone(alice).answerCallsWith(`${password}#`);
  rig.authz.answers.push({ state: PaymentState.SUCCEEDED });
  const { callId } = await rig.client.startCall(call());
  t.regex(callId, /^call_[0-9a-f]{24}$/);
  const heard = await rig.phone(alice).waitForCallEnd(waitMs);
  t.is(rig.voice.unauthorizedRequests, 0);
  t.is(heard.from, '+15005550006');
  t.true(heard.url.startsWith(`${rig.bridge.webhookBaseUrl}/voice/answer?call=${callId}`));
  t.deepEqual(heard.statusCallbackEvents, ['initiated', 'ringing', 'answered', 'completed']);
  t.deepEqual(heard.says, [announcement, instruction, 'Payment approved. Goodbye.']);
  t.is(heard.end, 'hangup');
  t.true(
    heard.requests.every((r) => r.status === 200 || r.status === 204),
    JSON.stringify(heard.requests),
  );

  await rig.authz.waitForRequests(1);
  const [request] = rig.authz.requests;
  t.is(request?.paymentId, paymentId);
  t.is(request?.idempotencyKey, `ivr-${heard.sid}-1`);
  t.deepEqual(request?.proof.case, 'password');
  t.deepEqual(request?.proof.value, { ...(request?.proof.value as object), kind: PasswordKind.IVR, password });
  t.is(rig.authz.authorizations[0], `Bearer ${authzKeyOfBridge}`);

  await stream.waitFor((e) => e.event.case === 'callAnswered', 'CallAnswered');
  const digits = await stream.waitFor((e) => e.event.case === 'callDigits', 'CallDigits');
  t.deepEqual(digits.event.value, { ...digits.event.value, callId, digits: '' }, 'the event says digits came, never which');
  t.deepEqual(linesWith(rig.logs, password), []);
});

test('a wrong password re-prompts with attempts left, the right one then approves; each attempt has its own idempotency key', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  rig.phone(alice).answerCallsWith('11111111#', `${password}#`);
  rig.authz.answers.push({ code: grpc.status.PERMISSION_DENIED, attemptsLeft: 4 }, { state: PaymentState.APPROVED });
  await rig.client.startCall(call());
  const heard = await rig.phone(alice).waitForCallEnd(waitMs);
  t.deepEqual(heard.says, [announcement, instruction, 'That password is not correct.', 'You have 4 attempts left.', instruction, 'Payment approved. Goodbye.']);
  t.deepEqual(
    rig.authz.requests.map((r) => r.idempotencyKey),
    [`ivr-${heard.sid}-1`, `ivr-${heard.sid}-2`],
  );
  t.deepEqual(
    rig.authz.requests.map((r) => (r.proof.value as { password: string }).password),
    ['11111111', password],
  );
  t.deepEqual(linesWith(rig.logs, '11111111'), []);
});

test('wrong passwords beyond passwordRepromptsMax end the call', async (t) => {
  const rig = await startRig({ limits: { passwordRepromptsMax: 1 } });
  t.teardown(() => rig.close());
  rig.phone(alice).answerCallsWith('1111#', '2222#', '3333#');
  rig.authz.answers.push({ code: grpc.status.PERMISSION_DENIED }, { code: grpc.status.PERMISSION_DENIED });
  await rig.client.startCall(call());
  const heard = await rig.phone(alice).waitForCallEnd(waitMs);
  t.deepEqual(heard.says, [announcement, instruction, 'That password is not correct.', instruction, 'That password is not correct. Goodbye.']);
  t.is(rig.authz.requests.length, 2);
});

for (const [name, answer, spoken] of [
  ['RESOURCE_EXHAUSTED', { code: grpc.status.RESOURCE_EXHAUSTED }, 'The payment was declined. Goodbye.'],
  ['FAILED_PRECONDITION', { code: grpc.status.FAILED_PRECONDITION }, 'The payment was declined. Goodbye.'],
  ['UNAVAILABLE', { code: grpc.status.UNAVAILABLE }, 'Sorry, we cannot check your password right now. Please try again later. Goodbye.'],
  ['OK, still CHALLENGED', { state: PaymentState.CHALLENGED }, 'Your password was accepted. The payment needs one more confirmation. Goodbye.'],
  ['OK, DECLINED', { state: PaymentState.DECLINED }, 'The payment was declined. Goodbye.'],
] as const) {
  test(`authz answers ${name}: the call says so and hangs up`, async (t) => {
    const rig = await startRig();
    t.teardown(() => rig.close());
    rig.phone(alice).answerCallsWith(`${password}#`);
    rig.authz.answers.push(answer);
    await rig.client.startCall(call());
    const heard = await rig.phone(alice).waitForCallEnd(waitMs);
    t.deepEqual(heard.says.slice(2), [spoken]);
    t.is(heard.end, 'hangup');
  });
}

test('authz slower than authzDeadlineMs: the call is cut short at the deadline and says authz cannot be asked', async (t) => {
  const rig = await startRig({ limits: { authzDeadlineMs: 150 } });
  t.teardown(() => rig.close());
  rig.phone(alice).answerCallsWith(`${password}#`);
  // Were the deadline not kept, the late answer (a wrong password) would re-prompt instead.
  rig.authz.answers.push({ code: grpc.status.PERMISSION_DENIED, attemptsLeft: 2, delayMs: 3_000 });
  await rig.client.startCall(call());
  const heard = await rig.phone(alice).waitForCallEnd(waitMs);
  t.deepEqual(heard.says.slice(2), ['Sorry, we cannot check your password right now. Please try again later. Goodbye.']);
  t.is(rig.authz.requests.length, 1);
  await rig.waitForLog('ivr password relayed to authz');
  const relayed = rig.logs.map((l) => JSON.parse(l) as { msg?: string; authz?: string }).find((l) => l.msg === 'ivr password relayed to authz');
  t.is(relayed?.authz, 'DEADLINE_EXCEEDED');
});

test('silence re-prompts up to attempts_max, then the call says goodbye and hangs up; nothing goes to authz', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  rig.phone(alice).answerCallsWith('', '', '');
  await rig.client.startCall(call({ gather: { $typeName: 'countersign.v1.GatherSettings', digitsMax: 8, timeoutSeconds: 7, finishKey: '', attemptsMax: 2 } }));
  const heard = await rig.phone(alice).waitForCallEnd(waitMs);
  const prompt = [announcement, instruction];
  t.deepEqual(heard.says, [
    ...prompt,
    'We did not receive any input.',
    ...prompt,
    'We did not receive any input.',
    ...prompt,
    'We did not receive any input. Goodbye.',
  ]);
  t.is(heard.end, 'hangup');
  t.is(rig.authz.requests.length, 0);
});

test('spoken_code: the call reads the code digit by digit twice and hangs up, without a gather', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const code = '58203917';
  rig.phone(alice).answerCallsWith();
  const base = call();
  await rig.client.startCall({ ...base, announcement: { ...base.announcement!, amount: 150n, currency: 'GBP', spokenCode: code } });
  const heard = await rig.phone(alice).waitForCallEnd(waitMs);
  const spelled = '5, 8, 2, 0, 3, 9, 1, 7';
  t.deepEqual(heard.says, [`Payment of one pound and fifty pence to Corner Bakery. Your code is: ${spelled}.`, `Again, your code is: ${spelled}.`, 'Goodbye.']);
  t.is(heard.gathersAnswered, 0);
  t.is(rig.authz.requests.length, 0);
  t.deepEqual(linesWith(rig.logs, code), []);
});

test('payee and description are XML-escaped in the TwiML and spoken intact', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  rig.phone(alice).answerCallsWith('1#');
  const base = call();
  await rig.client.startCall({
    ...base,
    announcement: { ...base.announcement!, payeeName: 'Smith & Sons <Bakery>', amount: 500n, currency: 'JPY', description: 'order "42"' },
  });
  const heard = await rig.phone(alice).waitForCallEnd(waitMs);
  t.is(heard.says[0], 'Payment of five hundred yen to Smith & Sons <Bakery>, for order "42".');
  t.not(heard.end, 'webhook-error');
});

test('status callbacks become CallNoAnswer and CallBusy events', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({});
  t.teardown(() => stream.cancel());
  const bob = '+447700900123';
  rig.phone(alice).refuseCalls('no-answer');
  rig.phone(bob).refuseCalls('busy');
  const first = await rig.client.startCall(call({ reference: 'ref-no-answer' }));
  const second = await rig.client.startCall(call({ idempotencyKey: 'call-2', to: bob, reference: 'ref-busy' }));
  const noAnswer = await stream.waitFor((e) => e.event.case === 'callNoAnswer', 'CallNoAnswer');
  const busy = await stream.waitFor((e) => e.event.case === 'callBusy', 'CallBusy');
  t.deepEqual([noAnswer.reference, (noAnswer.event.value as { callId: string }).callId], ['ref-no-answer', first.callId]);
  t.deepEqual([busy.reference, (busy.event.value as { callId: string }).callId], ['ref-busy', second.callId]);
  t.false(stream.events.some((e) => e.event.case === 'callAnswered'));
});

async function postWebhook(rig: Rig, path: string, params: Record<string, string>, signature: string | undefined, body?: string) {
  const url = `${rig.bridge.webhookBaseUrl}${path}`;
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (signature !== undefined) headers['x-twilio-signature'] = signature;
  return fetch(url, { method: 'POST', headers, body: body ?? new URLSearchParams(params).toString() });
}

test('forged or unsigned webhooks are 403 with no state change and nothing sent to authz; oversized bodies are 413', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({});
  t.teardown(() => stream.cancel());
  rig.phone(alice).answerCallsWith(`${password}#`);
  rig.voice.pauseAnswering();
  const { callId } = await rig.client.startCall(call());
  // The call rings: a forger tries every webhook of it meanwhile.
  const digitsPath = `/voice/digits?call=${callId}&round=1`;
  const params = { AccountSid: accountSid, CallSid: 'CAforged', Digits: '12345678' };
  const forged = twilioSignature('not-the-token', `${rig.bridge.webhookBaseUrl}${digitsPath}`, Object.entries(params));
  t.is((await postWebhook(rig, digitsPath, params, forged)).status, 403);
  t.is((await postWebhook(rig, digitsPath, params, undefined)).status, 403);
  const valid = twilioSignature(authToken, `${rig.bridge.webhookBaseUrl}${digitsPath}`, Object.entries(params));
  t.is((await postWebhook(rig, digitsPath, { ...params, Digits: '00000000' }, valid)).status, 403, 'a signature over other params');
  t.is((await postWebhook(rig, `/voice/answer?call=${callId}`, { CallSid: 'CAforged' }, 'AAAA')).status, 403);
  t.is((await postWebhook(rig, `/voice/status?call=${callId}`, { CallSid: 'CAforged', CallStatus: 'busy' }, 'AAAA')).status, 403);
  t.is((await postWebhook(rig, digitsPath, {}, valid, `Digits=${'1'.repeat(20 * 1024)}`)).status, 413);
  t.is(rig.authz.requests.length, 0);
  t.deepEqual(stream.events, []);
  // The real call then goes as if nothing happened: round 1 is still open, the real digits are attempt 1.
  rig.voice.resumeAnswering();
  const heard = await rig.phone(alice).waitForCallEnd(waitMs);
  t.deepEqual(heard.says, [announcement, instruction, 'Payment approved. Goodbye.']);
  t.deepEqual(
    rig.authz.requests.map((r) => [r.idempotencyKey, (r.proof.value as { password: string }).password]),
    [[`ivr-${heard.sid}-1`, password]],
  );
  t.false(stream.events.some((e) => e.event.case === 'callBusy'));
  // Events are delivered in order: anything the forged webhooks had caused would come before the real answer.
  await stream.waitFor((e) => e.event.case === 'callAnswered', 'CallAnswered of the real call');
  t.is(stream.events[0]?.event.case, 'callAnswered', 'the first event is the real call answering');
  t.deepEqual(linesWith(rig.logs, '12345678'), []);
});

test('StartCall validates its input and is idempotent per key', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  rig.phone(alice).refuseCalls('no-answer');
  const first = await rig.client.startCall(call());
  t.is((await rig.client.startCall(call())).callId, first.callId);
  t.is(rig.voice.calls.length, 1, 'the same key never places a second call');
  const conflict = await t.throwsAsync(rig.client.startCall(call({ reference: 'other' })));
  t.is((conflict as grpc.ServiceError).code, grpc.status.ALREADY_EXISTS);
  const base = call();
  for (const bad of [
    { to: '12345' },
    { announcement: undefined },
    { announcement: { ...base.announcement!, amount: 0n } },
    { announcement: { ...base.announcement!, currency: 'usd' } },
    { announcement: { ...base.announcement!, payeeName: '' } },
    { gather: { $typeName: 'countersign.v1.GatherSettings', digitsMax: 33, timeoutSeconds: 0, finishKey: '', attemptsMax: 0 } },
    { gather: { $typeName: 'countersign.v1.GatherSettings', digitsMax: 0, timeoutSeconds: 0, finishKey: 'x', attemptsMax: 0 } },
    { reference: '' },
  ] as Partial<StartCallRequest>[]) {
    const error = await t.throwsAsync(rig.client.startCall({ ...base, idempotencyKey: 'bad', ...bad }));
    t.is(
      (error as grpc.ServiceError).code,
      grpc.status.INVALID_ARGUMENT,
      JSON.stringify(bad, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
    );
  }
});

test('the provider unreachable is UNAVAILABLE; the provider refusing our credentials is INTERNAL (a misconfiguration)', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  await rig.voice.close();
  const error = await t.throwsAsync(rig.client.startCall(call()));
  t.is((error as grpc.ServiceError).code, grpc.status.UNAVAILABLE);

  const misconfigured = await startRig({ bridgeAuthToken: 'wrong-token' });
  t.teardown(() => misconfigured.close());
  const refused = await t.throwsAsync(misconfigured.client.startCall(call()));
  t.is((refused as grpc.ServiceError).code, grpc.status.INTERNAL);
  t.is((refused as grpc.ServiceError).details, 'internal error', 'the house table: INTERNAL is generic to the caller');
  await misconfigured.waitForLog('rpc failed with an unmapped error');
  t.is(misconfigured.voice.unauthorizedRequests, 1);
  t.deepEqual(linesWith(misconfigured.logs, 'wrong-token'), []);
});
