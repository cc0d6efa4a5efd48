import { PassThrough, Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { pino } from 'pino';
import { PasswordKind, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { startTelcoBridge } from '../../services/telco.js';
import { healthCheck } from '../support/reflection.js';
import { bridgeClient, bridgeKey, paymentId, startFakeAuthz, startRig, textSink, waitMs } from './harness.js';

// The gRPC surface: the service key, StreamEvents replay and filtering; and the console channel.

const alice = '+14155550123';

test('every RPC without the service key, or with another, is UNAUTHENTICATED and has no effect', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  for (const key of [null, 'not-the-key', '']) {
    const client = bridgeClient(rig.bridge.grpcPort, key);
    t.teardown(() => client.close());
    const sms = await t.throwsAsync(client.sendSms({ idempotencyKey: 'k', to: alice, text: 'hello', reference: paymentId }));
    t.is((sms as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED, `key ${String(key)}`);
    const callError = await t.throwsAsync(client.startCall({ idempotencyKey: 'k', to: alice, reference: paymentId }));
    t.is((callError as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
    const stream = client.streamEvents({});
    const streamError = await t.throwsAsync(stream.waitFor(() => true, 'any'));
    t.is((streamError as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
  }
  // Markers with the key: the SMSC captures in submit order, and StartCall answers once the
  // provider has the call, so nothing refused before them can still arrive after.
  const bob = '+14155550124';
  rig.phone(bob).refuseCalls('no-answer');
  await rig.client.sendSms({ idempotencyKey: 'marker', to: bob, text: 'marker', reference: paymentId });
  await rig.phone(bob).waitForSms(waitMs);
  await rig.client.startCall({
    idempotencyKey: 'marker',
    to: bob,
    reference: paymentId,
    announcement: {
      $typeName: 'countersign.v1.CallAnnouncement',
      payeeName: 'Corner Bakery',
      amount: 4200n,
      currency: 'EUR',
      description: '',
      language: '',
      spokenCode: '',
    },
  });
  t.deepEqual(
    rig.smsc.messages.map((m) => m.text),
    ['marker'],
    'no SMS from the refused calls',
  );
  t.deepEqual(
    rig.voice.calls.map((c) => c.to),
    [bob],
    'no call from the refused calls',
  );
});

test('the bridge runs on the house RPC runtime: grpc.health.v1 answers SERVING for TelcoBridgeService without a key', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  t.deepEqual(await healthCheck(rig.bridge.grpcPort, 'countersign.v1.TelcoBridgeService'), { code: grpc.status.OK, status: 'SERVING' });
});

test('StreamEvents replays the events after after_event_id, filters by reference, then follows live events', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const all = rig.client.streamEvents({});
  t.teardown(() => all.cancel());
  await rig.client.sendSms({ idempotencyKey: 'a', to: alice, text: 'first', reference: 'ref-a' });
  await rig.client.sendSms({ idempotencyKey: 'b', to: '+14155550124', text: 'second', reference: 'ref-b' });
  await all.waitFor((e) => e.reference === 'ref-a' && e.event.case === 'smsDelivered', 'a delivered');
  await all.waitFor((e) => e.reference === 'ref-b' && e.event.case === 'smsDelivered', 'b delivered');
  t.is(all.events.length, 4);
  const ids = all.events.map((e) => e.eventId);
  t.deepEqual([...ids].sort(), ids, 'ids increase');
  t.is(new Set(ids).size, 4);

  const resumed = rig.client.streamEvents({ afterEventId: ids[1]! });
  t.teardown(() => resumed.cancel());
  await resumed.waitFor((e) => e.eventId === ids[3], 'the last replayed event');
  t.deepEqual(
    resumed.events.map((e) => e.eventId),
    ids.slice(2),
  );

  const onlyB = rig.client.streamEvents({ reference: 'ref-b' });
  t.teardown(() => onlyB.cancel());
  await onlyB.waitFor((e) => e.event.case === 'smsDelivered', 'b delivered, replayed');
  await rig.client.sendSms({ idempotencyKey: 'c', to: '+14155550125', text: 'third', reference: 'ref-c' });
  await rig.client.sendSms({ idempotencyKey: 'b2', to: '+14155550126', text: 'fourth', reference: 'ref-b' });
  await onlyB.waitFor((e) => e.event.case === 'smsDelivered' && e.eventId > ids[3]!, 'b2 delivered, live');
  t.true(onlyB.events.every((e) => e.reference === 'ref-b'));
  t.is(onlyB.events.length, 4);

  const bad = rig.client.streamEvents({ afterEventId: 'not-an-id' });
  const error = await t.throwsAsync(bad.waitFor(() => true, 'any'));
  t.is((error as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
});

test('console channel: SMS and the call announcement are printed, the password is read from the input and relayed to authz', async (t) => {
  const authz = await startFakeAuthz();
  t.teardown(() => authz.close());
  authz.answers.push({ code: grpc.status.PERMISSION_DENIED, attemptsLeft: 2 }, { state: PaymentState.SUCCEEDED });
  const output = textSink();
  const input = new PassThrough();
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(chunk.toString()), done()) }));
  const bridge = await startTelcoBridge({
    host: '127.0.0.1',
    grpcPort: 0,
    webhookPort: 0,
    serviceKey: bridgeKey,
    sms: { kind: 'console' },
    voice: { kind: 'console' },
    authz: { address: authz.address, serviceKey: 'k' },
    logger,
    console: { output: output.stream, input },
  });
  t.teardown(() => bridge.close());
  const client = bridgeClient(bridge.grpcPort);
  t.teardown(() => client.close());
  const stream = client.streamEvents({});
  t.teardown(() => stream.cancel());

  await client.sendSms({ idempotencyKey: 's', to: alice, text: 'your code is 58203917', reference: paymentId });
  await stream.waitFor((e) => e.event.case === 'smsDelivered', 'SmsDelivered');
  t.true(output.text().includes('[sms → +14155550123] your code is 58203917'), 'the console is the delivery channel: the code is printed');

  input.write('4444\n');
  input.write('90817263#\n');
  await client.startCall({
    idempotencyKey: 'c',
    to: alice,
    reference: paymentId,
    announcement: {
      $typeName: 'countersign.v1.CallAnnouncement',
      payeeName: 'Corner Bakery',
      amount: 4200n,
      currency: 'EUR',
      description: '',
      language: '',
      spokenCode: '',
    },
  });
  await output.waitFor('[call] Payment approved. Goodbye.');
  const printed = output.text();
  t.true(printed.includes('[call] Payment of forty-two euros to Corner Bakery.'), printed);
  t.true(printed.includes('[call] That password is not correct.'));
  t.true(printed.includes('[call] Payment approved. Goodbye.'));
  t.deepEqual(
    authz.requests.map((r) => [r.idempotencyKey.replace(/call_[0-9a-f]+/, 'CALL'), r.proof.value]),
    [
      ['ivr-CALL-1', { ...(authz.requests[0]!.proof.value as object), kind: PasswordKind.IVR, password: '4444' }],
      ['ivr-CALL-2', { ...(authz.requests[1]!.proof.value as object), kind: PasswordKind.IVR, password: '90817263' }],
    ],
  );
  t.false(printed.includes('90817263'), 'keyed digits are not echoed');
  t.deepEqual(
    logs.filter((l) => l.includes('90817263') || l.includes('58203917')),
    [],
  );
  await stream.waitFor((e) => e.event.case === 'callAnswered', 'CallAnswered');
});
