import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { SmsEncoding, type StreamEventsResponse } from '../../gen/countersign/v1/telco_pb.js';
import { authzKeyOfBridge, linesWith, paymentId, startRig, waitMs } from './harness.js';

// SMS over SMPP against the simulated SMSC on loopback: encodings, receipts, reconnect,
// keep-alive, and the payer's reply relayed to authz.
//
// That something did NOT happen is shown by ordering, never by sleeping: the SMSC answers
// submit_sm in the order they arrive on the one session and sends each receipt right after its
// answer, so once a later marker SMS is captured (or its receipt has become an event), anything
// an earlier SMS would have caused has already arrived.

const alice = '+14155550123';
const code = '58203917';

const messageIdOf = (e: StreamEventsResponse) => (e.event.value as { messageId: string }).messageId;

test('GSM-7 text reaches the SMSC as data_coding 0 with delivery receipts requested; the receipt becomes SmsSent then SmsDelivered', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({ reference: paymentId });
  t.teardown(() => stream.cancel());
  const text = `countersign: your code is ${code} for USD 42.50 to Corner Bakery`;
  const { messageId } = await rig.client.sendSms({ idempotencyKey: 'sms-1', to: alice, text, reference: paymentId });
  t.regex(messageId, /^sms_[0-9a-f]{24}$/);
  const sms = await rig.phone(alice).waitForSms(waitMs);
  t.is(sms.text, text);
  t.is(sms.encoding, 'gsm7');
  t.is(sms.dataCoding, 0);
  t.is(sms.registeredDelivery, 1);
  t.is(sms.from, 'Countersign');
  const sent = await stream.waitFor((e) => e.event.case === 'smsSent', 'SmsSent');
  const delivered = await stream.waitFor((e) => e.event.case === 'smsDelivered', 'SmsDelivered');
  t.deepEqual(sent.event.value, { ...sent.event.value, messageId });
  t.is(delivered.reference, paymentId);
  t.is((delivered.event.value as { messageId: string }).messageId, messageId);
  t.true(delivered.eventId > sent.eventId);
  t.deepEqual(linesWith(rig.logs, code), []);
});

test('GSM-7 extension characters (€) are escaped, and a text outside GSM-7 goes as UCS-2 (data_coding 8)', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const euro = 'Zahlung 42,50 € an Bäckerei';
  await rig.client.sendSms({ idempotencyKey: 'eur-auto', to: alice, text: euro, reference: paymentId });
  const auto = await rig.phone(alice).waitForSms(waitMs, 0);
  t.is(auto.text, euro);
  t.is(auto.encoding, 'gsm7', '€ and ä are in GSM 03.38 (€ through the extension table)');

  await rig.client.sendSms({ idempotencyKey: 'eur-ucs2', to: alice, text: euro, reference: paymentId, encoding: SmsEncoding.UCS2 });
  const explicit = await rig.phone(alice).waitForSms(waitMs, 1);
  t.is(explicit.text, euro);
  t.is(explicit.encoding, 'ucs2');
  t.is(explicit.dataCoding, 8);

  const polish = 'Płatność 42,50 zł dla Piekarni Łódź';
  await rig.client.sendSms({ idempotencyKey: 'pl-auto', to: alice, text: polish, reference: paymentId });
  const ucs2 = await rig.phone(alice).waitForSms(waitMs, 2);
  t.is(ucs2.text, polish);
  t.is(ucs2.encoding, 'ucs2');

  const error = await t.throwsAsync(rig.client.sendSms({ idempotencyKey: 'pl-gsm', to: alice, text: polish, encoding: SmsEncoding.GSM7 }));
  t.is((error as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
});

test('a long text is split into concatenated parts that the SMSC joins; SmsSent and SmsDelivered come once, after every part', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({ reference: paymentId });
  t.teardown(() => stream.cancel());
  const text = 'Ä'.repeat(150) + ' and then some more words '.repeat(10);
  const { messageId } = await rig.client.sendSms({ idempotencyKey: 'long', to: alice, text, reference: paymentId });
  const sms = await rig.phone(alice).waitForSms(waitMs);
  t.is(sms.parts, 3);
  t.is(sms.text, text);
  await stream.waitFor((e) => e.event.case === 'smsDelivered', 'SmsDelivered');
  // Every part was answered before the SMSC joined them; the marker's receipt comes after theirs.
  const marker = await rig.client.sendSms({ idempotencyKey: 'marker', to: '+14155550124', text: 'marker', reference: paymentId });
  await stream.waitFor((e) => e.event.case === 'smsDelivered' && messageIdOf(e) === marker.messageId, 'the marker SmsDelivered');
  t.deepEqual(
    stream.events.map((e) => [e.event.case, messageIdOf(e)]),
    [
      ['smsSent', messageId],
      ['smsDelivered', messageId],
      ['smsSent', marker.messageId],
      ['smsDelivered', marker.messageId],
    ],
  );
});

test('a failure receipt (stat:UNDELIV) becomes SmsFailed with the status, and a refused submit_sm too', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({});
  t.teardown(() => stream.cancel());
  rig.phone(alice).receipts('fail');
  const { messageId } = await rig.client.sendSms({ idempotencyKey: 'f1', to: alice, text: 'hello', reference: 'ref-fail' });
  const failed = await stream.waitFor((e) => e.event.case === 'smsFailed', 'SmsFailed');
  t.is(failed.reference, 'ref-fail');
  t.deepEqual(
    { id: (failed.event.value as { messageId: string }).messageId, reason: (failed.event.value as { reason: string }).reason },
    { id: messageId, reason: 'UNDELIV err:001' },
  );
  t.false(stream.events.some((e) => e.event.case === 'smsDelivered'));

  const bob = '+447700900123';
  rig.phone(bob).receipts('reject');
  const refused = await rig.client.sendSms({ idempotencyKey: 'f2', to: bob, text: 'hello', reference: 'ref-reject' });
  const rejected = await stream.waitFor((e) => e.event.case === 'smsFailed' && e.reference === 'ref-reject', 'SmsFailed for the refused submit');
  t.deepEqual(rejected.event.value, { ...rejected.event.value, messageId: refused.messageId, reason: 'ESME_RINVDSTADR' });
  t.false(stream.events.some((e) => e.event.case === 'smsSent' && e.reference === 'ref-reject'));
});

test('receipts are also matched by the receipted_message_id TLV; a withheld receipt leaves the message at SmsSent', async (t) => {
  const rig = await startRig({ smsc: { receiptTlvs: true } });
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({});
  t.teardown(() => stream.cancel());
  await rig.client.sendSms({ idempotencyKey: 't1', to: alice, text: 'hello', reference: 'ref-tlv' });
  await stream.waitFor((e) => e.event.case === 'smsDelivered' && e.reference === 'ref-tlv', 'SmsDelivered');
  const carol = '+33612345678';
  rig.phone(carol).receipts('withhold');
  await rig.client.sendSms({ idempotencyKey: 't2', to: carol, text: 'hello', reference: 'ref-withheld' });
  await stream.waitFor((e) => e.event.case === 'smsSent' && e.reference === 'ref-withheld', 'SmsSent');
  // A receipt for the withheld SMS would have come before the marker's.
  await rig.client.sendSms({ idempotencyKey: 't3', to: alice, text: 'marker', reference: 'ref-marker' });
  await stream.waitFor((e) => e.event.case === 'smsDelivered' && e.reference === 'ref-marker', 'the marker SmsDelivered');
  t.deepEqual(
    stream.events.filter((e) => e.reference === 'ref-withheld').map((e) => e.event.case),
    ['smsSent'],
  );
});

test('the SMSC drops the connection: the bridge reconnects, binds again, and the next SendSms goes through', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  t.is(rig.smsc.stats.binds, 1);
  rig.smsc.dropConnections();
  await rig.smsc.waitForBinds(2, waitMs);
  t.true(await rig.bridge.whenSmsReady(waitMs));
  t.is(rig.bridge.smppStats?.disconnects, 1);
  await rig.client.sendSms({ idempotencyKey: 'after-drop', to: alice, text: 'after the drop', reference: paymentId });
  t.is((await rig.phone(alice).waitForSms(waitMs)).text, 'after the drop');
});

test('while the SMSC is unreachable SendSms is UNAVAILABLE; the bridge keeps retrying with back-off and recovers', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const port = rig.smsc.port;
  await rig.smsc.close();
  await rig.until(() => rig.bridge.smppStats?.disconnects === 1, 'the bridge saw the connection close');
  const error = await t.throwsAsync(rig.client.sendSms({ idempotencyKey: 'down', to: alice, text: 'x', reference: paymentId }));
  t.is((error as grpc.ServiceError).code, grpc.status.UNAVAILABLE);
  const { startSmsc } = await import('../../telco-bridge/simulator/smsc.js');
  const again = await startSmsc({ systemId: 'countersign', password: 'smpp-pass', port });
  t.teardown(() => again.close());
  await again.waitForBinds(1, waitMs);
  t.true(await rig.bridge.whenSmsReady(waitMs));
  await rig.client.sendSms({ idempotencyKey: 'down', to: alice, text: 'back', reference: paymentId });
  t.is((await again.waitForMessage(alice, waitMs)).text, 'back', 'the failed key was not remembered: the retry sends');
});

test('on a dropped connection the unacknowledged submit fails (never resent: no duplicate SMS) and the queued ones go after the re-bind', async (t) => {
  const rig = await startRig({ smpp: { windowMax: 1 } });
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({});
  t.teardown(() => stream.cancel());
  rig.phone('+14155550001').receipts('stall');
  for (const i of [1, 2, 3]) await rig.client.sendSms({ idempotencyKey: `d${i}`, to: `+1415555000${i}`, text: `m${i}`, reference: `ref-${i}` });
  // SendSms submits at once while the window allows, and only an answer frees a slot: once the
  // three calls are answered, the bridge has sent all it will until m1 is answered.
  t.is(rig.bridge.smppStats?.submitsSent, 1, 'the bridge holds m2 and m3 back');
  await rig.until(() => rig.smsc.stats.submits >= 1, 'm1 at the SMSC');
  t.is(rig.smsc.stats.submits, 1, 'the window (1) is held by the unanswered submit');
  rig.smsc.dropConnections();
  const lost = await stream.waitFor((e) => e.event.case === 'smsFailed', 'SmsFailed');
  t.is(lost.reference, 'ref-1');
  t.is((lost.event.value as { reason: string }).reason, 'SMPP_CONNECTION_LOST');
  await stream.waitFor((e) => e.event.case === 'smsDelivered' && e.reference === 'ref-2', 'ref-2 delivered');
  await stream.waitFor((e) => e.event.case === 'smsDelivered' && e.reference === 'ref-3', 'ref-3 delivered');
  await rig.client.sendSms({ idempotencyKey: 'd4', to: '+14155550004', text: 'm4', reference: 'ref-4' });
  await stream.waitFor((e) => e.event.case === 'smsDelivered' && e.reference === 'ref-4', 'the marker m4 delivered');
  t.is(rig.smsc.stats.submits, 4, 'm1 was not submitted again: m1 once, m2, m3 and the marker m4');
  t.deepEqual(
    rig.smsc.messages.map((m) => m.text),
    ['m2', 'm3', 'm4'],
  );
});

test('a submit_sm left unanswered past submitResponseTimeoutMs fails SUBMIT_TIMEOUT and frees its window slot', async (t) => {
  const rig = await startRig({ smpp: { windowMax: 1, submitResponseTimeoutMs: 200 } });
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({});
  t.teardown(() => stream.cancel());
  rig.phone('+14155550001').receipts('stall');
  await rig.client.sendSms({ idempotencyKey: 's1', to: '+14155550001', text: 'stalled', reference: 'ref-stalled' });
  await rig.client.sendSms({ idempotencyKey: 's2', to: '+14155550002', text: 'next', reference: 'ref-next' });
  const timedOut = await stream.waitFor((e) => e.event.case === 'smsFailed', 'SmsFailed');
  t.deepEqual([timedOut.reference, (timedOut.event.value as { reason: string }).reason], ['ref-stalled', 'SUBMIT_TIMEOUT']);
  // The slot is free: the next one is submitted, and the SMSC answers it. Not waited for: its
  // SmsDelivered, since that answer has the same 200 ms to come back, which a loaded machine
  // misses (it then fails SUBMIT_TIMEOUT too, correctly).
  t.is((await rig.phone('+14155550002').waitForSms(waitMs)).text, 'next');
});

test('an enquire_link left unanswered drops the link; the bridge reconnects', async (t) => {
  const rig = await startRig({ smpp: { enquireLinkIntervalMs: 100, enquireLinkTimeoutMs: 100 }, smsc: { ignoreEnquireLinks: true } });
  t.teardown(() => rig.close());
  await rig.smsc.waitForBinds(2, waitMs);
  t.true((rig.bridge.smppStats?.disconnects ?? 0) >= 1);
  t.is(rig.bridge.smppStats?.enquireLinksAnswered, 0);
});

test('enquire_link keeps the bind alive on the configured period', async (t) => {
  const rig = await startRig({ smpp: { enquireLinkIntervalMs: 100 } });
  t.teardown(() => rig.close());
  await rig.until(() => (rig.bridge.smppStats?.enquireLinksAnswered ?? 0) >= 3, 'three enquire_link answered');
  t.true(rig.smsc.stats.enquireLinks >= 3);
  t.true((rig.bridge.smppStats?.enquireLinksAnswered ?? 0) >= 3);
  t.is(rig.smsc.stats.binds, 1, 'no reconnect while enquire_link is answered');
});

test('a mobile-originated reply is relayed to authz as ConfirmPayment sms_otp with the bridge key; SmsReplied carries no text', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({});
  t.teardown(() => stream.cancel());
  rig.authz.answers.push({ state: PaymentState.APPROVED });
  const { messageId } = await rig.client.sendSms({ idempotencyKey: 'otp', to: alice, text: `Reply with code ${code}`, reference: paymentId });
  await rig.phone(alice).waitForSms(waitMs);
  await rig.phone(alice).reply(`  ${code} \n`);
  const replied = await stream.waitFor((e) => e.event.case === 'smsReplied', 'SmsReplied');
  t.is(replied.reference, paymentId);
  t.deepEqual(replied.event.value, { ...replied.event.value, messageId, from: alice, text: '' });
  await rig.authz.waitForRequests(1);
  const [request] = rig.authz.requests;
  t.is(request?.paymentId, paymentId);
  t.deepEqual(request?.proof, { case: 'smsOtp', value: code });
  t.regex(request?.idempotencyKey ?? '', /^sms-reply-[0-9a-f]{32}$/);
  t.is(rig.authz.authorizations[0], `Bearer ${authzKeyOfBridge}`);
  // The relay's last step is logging authz's answer: every line about this reply is written by then.
  await rig.waitForLog('sms reply relayed to authz');
  t.deepEqual(linesWith(rig.logs, code), []);
});

test('a reply from a number that got no SMS within replyWindowMs is reported without a reference and not relayed', async (t) => {
  let nowMs = 1_767_225_600_000; // the bridge's clock, moved by the test
  const rig = await startRig({ limits: { replyWindowMs: 100 }, now: () => nowMs });
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({});
  t.teardown(() => stream.cancel());
  await rig.client.sendSms({ idempotencyKey: 'old', to: alice, text: 'code 11112222', reference: paymentId });
  await rig.phone(alice).waitForSms(waitMs);
  nowMs += 101; // one millisecond past the reply window
  await rig.phone(alice).reply('11112222');
  await rig.phone('+4915112345678').reply('33334444');
  await stream.waitFor((e) => e.event.case === 'smsReplied' && (e.event.value as { from: string }).from === '+4915112345678', 'second SmsReplied');
  const replies = stream.events.filter((e) => e.event.case === 'smsReplied');
  t.deepEqual(
    replies.map((e) => e.reference),
    ['', ''],
  );
  // The bridge decides on a reply as it arrives: it logs "not relayed" and returns, or starts the
  // ConfirmPayment. Both replies are decided once both lines are written.
  await rig.waitForLog('sms reply not relayed', 2);
  t.deepEqual(
    rig.logs
      .map((line) => JSON.parse(line) as { msg: string; matched?: boolean })
      .filter((l) => l.msg === 'sms reply not relayed')
      .map((l) => l.matched),
    [false, false],
  );
  t.is(rig.authz.requests.length, 0);
});

test('SendSms is idempotent per key, refuses a reused key with another request, validates input, and limits SMS per destination', async (t) => {
  const rig = await startRig({ limits: { smsPerDestinationMax: 2 } });
  t.teardown(() => rig.close());
  const first = await rig.client.sendSms({ idempotencyKey: 'same', to: alice, text: 'one', reference: paymentId });
  const again = await rig.client.sendSms({ idempotencyKey: 'same', to: alice, text: 'one', reference: paymentId });
  t.is(again.messageId, first.messageId);
  const conflict = await t.throwsAsync(rig.client.sendSms({ idempotencyKey: 'same', to: alice, text: 'two', reference: paymentId }));
  t.is((conflict as grpc.ServiceError).code, grpc.status.ALREADY_EXISTS);
  await rig.client.sendSms({ idempotencyKey: 'second', to: alice, text: 'two', reference: paymentId });
  const limited = await t.throwsAsync(rig.client.sendSms({ idempotencyKey: 'third', to: alice, text: 'three', reference: paymentId }));
  t.is((limited as grpc.ServiceError).code, grpc.status.RESOURCE_EXHAUSTED);
  for (const bad of [{ to: '0155512' }, { text: '' }, { text: 'x'.repeat(1001) }, { reference: 'r'.repeat(65) }, { idempotencyKey: '' }]) {
    const error = await t.throwsAsync(rig.client.sendSms({ idempotencyKey: 'bad', to: '+14155550999', text: 'x', ...bad }));
    t.is((error as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT, JSON.stringify(bad));
  }
  await rig.phone(alice).waitForSms(waitMs, 1);
  const marker = '+14155550998';
  await rig.client.sendSms({ idempotencyKey: 'marker', to: marker, text: 'marker', reference: paymentId });
  await rig.phone(marker).waitForSms(waitMs);
  t.is(rig.smsc.messagesTo(alice).length, 2, 'one SMS per accepted key, none for the refused ones');
  t.deepEqual(rig.smsc.messagesTo('+14155550999'), [], 'nothing for the invalid requests');
});

test('the send window and the rate bound submits: a burst waits for the rate clock, never more than smppWindowMax unacknowledged', async (t) => {
  let nowMs = 1_767_225_600_000; // the bridge's clock: the rate's tokens come back only when the test moves it
  const rig = await startRig({ smpp: { windowMax: 2, ratePerSecondMax: 20 }, smsc: { submitResponseDelayMs: 30 }, now: () => nowMs });
  t.teardown(() => rig.close());
  const stream = rig.client.streamEvents({});
  t.teardown(() => stream.cancel());
  for (let i = 0; i < 30; i++) await rig.client.sendSms({ idempotencyKey: `burst-${i}`, to: `+1415555${String(1000 + i)}`, text: `m${i}`, reference: `r${i}` });
  // 20 tokens of burst. SmsSent follows the SMSC's answer, which follows its capture.
  await stream.waitForCount((e) => e.event.case === 'smsSent', 20, '20 SmsSent');
  // The pump waited for a token, looked again with the clock standing still, and waited again:
  // nothing beyond the burst went out meanwhile.
  await rig.until(() => (rig.bridge.smppStats?.rateWaits ?? 0) >= 2, 'the send pump waited twice for the rate');
  t.is(rig.smsc.messages.length, 20);
  nowMs += 250; // 5 tokens at 20 per second
  await stream.waitForCount((e) => e.event.case === 'smsSent', 25, '25 SmsSent');
  await rig.until(() => (rig.bridge.smppStats?.rateWaits ?? 0) >= 4, 'the send pump waited again');
  t.is(rig.smsc.messages.length, 25);
  nowMs += 250;
  await stream.waitForCount((e) => e.event.case === 'smsSent', 30, '30 SmsSent');
  t.is(rig.smsc.messages.length, 30);
  t.is(rig.smsc.stats.unansweredMax, 2);
});

test('the queue is bounded: beyond smsQueueMax parts SendSms is RESOURCE_EXHAUSTED', async (t) => {
  const rig = await startRig({ smpp: { windowMax: 1, queueMax: 3 } });
  t.teardown(() => rig.close());
  const stalled = '+14155556000';
  rig.phone(stalled).receipts('stall'); // the first submit holds the only window slot
  const codes: string[] = [];
  for (let i = 0; i < 6; i++) {
    codes.push(
      await rig.client.sendSms({ idempotencyKey: `q-${i}`, to: stalled, text: `m${i}`, reference: `r${i}` }).then(
        () => 'OK',
        (error: grpc.ServiceError) => grpc.status[error.code],
      ),
    );
  }
  // One in flight, three queued, then full.
  t.deepEqual(codes, ['OK', 'OK', 'OK', 'OK', 'RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED']);
  t.is(rig.bridge.smppStats?.submitsSent, 1);
  await rig.until(() => rig.smsc.stats.submits >= 1, 'the first submit at the SMSC');
  t.is(rig.smsc.stats.submits, 1);
});
