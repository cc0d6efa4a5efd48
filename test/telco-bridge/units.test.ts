import test from 'ava';
import { SmsEncoding } from '../../gen/countersign/v1/telco_pb.js';
import { parseDeliveryReceipt, smscIdVariants } from '../../telco-bridge/delivery-receipt.js';
import { EventLog } from '../../telco-bridge/events.js';
import { decodeGsm7, encodeGsm7, fitsGsm7 } from '../../telco-bridge/gsm7.js';
import { amountWords, integerWords } from '../../telco-bridge/money-words.js';
import { parseXml, textOf } from '../../telco-bridge/simulator/xml.js';
import { chooseAlphabet, smsParts } from '../../telco-bridge/sms-encoding.js';
import { twilioSignature, validTwilioSignature } from '../../telco-bridge/twilio-signature.js';
import { renderTwiml } from '../../telco-bridge/twiml.js';

// Pure pieces of the bridge: alphabets, words, signatures, receipts, TwiML, the event log.

test('amounts in words for USD, EUR, GBP, JPY, and a fallback through ICU names', (t) => {
  t.is(amountWords(4250n, 'USD'), 'forty-two dollars and fifty cents');
  t.is(amountWords(4200n, 'USD'), 'forty-two dollars');
  t.is(amountWords(101n, 'USD'), 'one dollar and one cent');
  t.is(amountWords(7n, 'EUR'), 'seven cents');
  t.is(amountWords(123456n, 'EUR'), 'one thousand two hundred thirty-four euros and fifty-six cents');
  t.is(amountWords(150n, 'GBP'), 'one pound and fifty pence');
  t.is(amountWords(1n, 'GBP'), 'one penny');
  t.is(amountWords(500n, 'JPY'), 'five hundred yen');
  t.is(amountWords(1234n, 'SEK'), 'twelve point three four Swedish Krona');
  t.is(amountWords(1500n, 'KWD'), 'one point five zero zero Kuwaiti Dinar');
  t.is(
    integerWords(18_446_744_073_709_551_615n),
    'eighteen quintillion four hundred forty-six quadrillion seven hundred forty-four trillion seventy-three billion seven hundred nine million five hundred fifty-one thousand six hundred fifteen',
  );
  t.is(integerWords(1_000_010n), 'one million ten');
});

test("Twilio's signature: the documented example, repeated params, constant-time validation", (t) => {
  const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
  const params = Object.entries({ CallSid: 'CA1234567890ABCDE', Caller: '+14158675310', Digits: '1234', From: '+14158675310', To: '+18005551212' });
  t.is(twilioSignature('12345', url, params), 'GvWf1cFY/Q7PnoempGyD5oXAezc=');
  t.true(validTwilioSignature('12345', url, params, 'GvWf1cFY/Q7PnoempGyD5oXAezc='));
  t.false(validTwilioSignature('12345', url, params, 'GvWf1cFY/Q7PnoempGyD5oXAezd='));
  t.false(validTwilioSignature('12345', `${url}&x=1`, params, 'GvWf1cFY/Q7PnoempGyD5oXAezc='));
  t.false(validTwilioSignature('12345', url, params, undefined));
  const repeated: [string, string][] = [
    ['E', 'b'],
    ['A', '1'],
    ['E', 'a'],
  ];
  t.is(
    twilioSignature('k', 'u', repeated),
    twilioSignature('k', 'u', [
      ['A', '1'],
      ['E', 'a'],
      ['E', 'b'],
    ]),
  );
});

test('GSM-7: basic and extension characters round-trip; others do not fit', (t) => {
  const text = 'Zahlung 42,50 € an Bäckerei [ok] {x} ~|^\\ @£$¥';
  t.true(fitsGsm7(text));
  t.is(decodeGsm7(encodeGsm7(text)), text);
  t.is(encodeGsm7('€').toString('hex'), '1b65');
  t.false(fitsGsm7('Łódź'));
  t.false(fitsGsm7('emoji 🙂'));
});

test('alphabet choice follows the hint, and long texts split into UDH parts without breaking escapes or surrogates', (t) => {
  t.deepEqual(chooseAlphabet('hello', SmsEncoding.UNSPECIFIED), { ok: true, alphabet: 'gsm7' });
  t.deepEqual(chooseAlphabet('hello', SmsEncoding.UCS2), { ok: true, alphabet: 'ucs2' });
  t.deepEqual(chooseAlphabet('Łódź', SmsEncoding.UNSPECIFIED), { ok: true, alphabet: 'ucs2' });
  t.false(chooseAlphabet('Łódź', SmsEncoding.GSM7).ok);

  t.is(smsParts('x'.repeat(160), 'gsm7', 1).length, 1);
  const gsm = smsParts(`${'x'.repeat(152)}€${'y'.repeat(10)}`, 'gsm7', 7);
  t.is(gsm.length, 2);
  t.deepEqual([...gsm[0]!.bytes.subarray(0, 6)], [5, 0, 3, 7, 2, 1]);
  t.is(gsm[0]!.bytes.length, 6 + 152, 'the escape pair does not straddle parts');
  t.is(gsm[0]!.esmClass, 0x40);
  t.is(smsParts('ß'.repeat(70), 'ucs2', 1).length, 1);
  const ucs2 = smsParts(`${'a'.repeat(66)}🙂${'b'.repeat(5)}`, 'ucs2', 9);
  t.is(ucs2.length, 2);
  t.is(ucs2[0]!.bytes.length, 6 + 66 * 2, 'the surrogate pair moves to the next part whole');
  t.is(ucs2[0]!.dataCoding, 8);
});

test('delivery receipts: text form, TLVs, intermediate states, id forms', (t) => {
  const text = 'id:5a0001 sub:001 dlvrd:001 submit date:2405011200 done date:2405011201 stat:DELIVRD err:000 text:your code is 1234';
  t.deepEqual(parseDeliveryReceipt(text, {}), { smscMessageId: '5a0001', stat: 'DELIVRD', err: '000', fate: 'delivered' });
  t.is(parseDeliveryReceipt('id:1 stat:UNDELIV err:001', {})?.fate, 'failed');
  t.is(parseDeliveryReceipt('id:1 stat:EXPIRED', {})?.fate, 'failed');
  t.is(parseDeliveryReceipt('id:1 stat:REJECTD', {})?.fate, 'failed');
  t.is(parseDeliveryReceipt('id:1 stat:ENROUTE', {})?.fate, 'pending');
  t.deepEqual(parseDeliveryReceipt('', { receiptedMessageId: 'abc', messageState: 2 }), { smscMessageId: 'abc', stat: 'DELIVRD', err: '', fate: 'delivered' });
  t.is(parseDeliveryReceipt('stat:DELIVRD', {}), undefined);
  t.true(smscIdVariants('255').includes('ff'));
  t.true(smscIdVariants('00FF').includes('255'));
});

test('TwiML: escaped text and attributes, the gather, re-prompt redirect and hangup', (t) => {
  const xml = renderTwiml(
    [
      { kind: 'gather', round: 2, spec: { digitsMax: 8, timeoutSeconds: 5, finishKey: '#', attemptsMax: 2 }, say: ['Pay <Smith & "Sons">'] },
      { kind: 'say', text: 'We did not receive any input.' },
      { kind: 'redirect', afterRound: 2 },
      { kind: 'hangup' },
    ],
    'en-US',
    { digits: (r) => `https://b.example/voice/digits?call=c1&round=${r}`, prompt: (r) => `https://b.example/voice/prompt?call=c1&after=${r}` },
  );
  t.true(
    xml.includes('<Gather input="dtmf" finishOnKey="#" timeout="5" numDigits="8" action="https://b.example/voice/digits?call=c1&amp;round=2" method="POST">'),
    xml,
  );
  t.true(xml.includes('Pay &lt;Smith &amp; &quot;Sons&quot;&gt;'));
  const root = parseXml(xml);
  t.is(root.name, 'Response');
  t.deepEqual(
    root.children.map((c) => (typeof c === 'string' ? c : c.name)),
    ['Gather', 'Say', 'Redirect', 'Hangup'],
  );
  const gather = root.children[0];
  t.is(typeof gather === 'string' ? '' : textOf(gather!), 'Pay <Smith & "Sons">');
  t.is(typeof gather === 'string' ? '' : gather!.attributes.action, 'https://b.example/voice/digits?call=c1&round=2');
});

test('event log: increasing fixed-width ids, replay after an id, bounded by eventsMax', (t) => {
  let now = 1_700_000_000_000;
  const log = new EventLog(128, () => now);
  const seen: string[] = [];
  log.subscribe((e) => seen.push(e.eventId));
  for (let i = 0; i < 200; i++) {
    now++;
    log.append(i % 2 === 0 ? 'even' : 'odd', { case: 'smsSent', value: { $typeName: 'countersign.v1.SmsSent', messageId: `m${i}` } });
  }
  t.is(seen.length, 200);
  t.true(log.size <= 128);
  t.deepEqual([...seen].sort(), seen);
  t.true(seen.every((id) => id.length === 20));
  const after = log.after(seen[190]!, '');
  t.deepEqual(
    after.map((e) => e.eventId),
    seen.slice(191),
  );
  t.true(log.after('', 'odd').every((e) => e.reference === 'odd'));
  const restarted = new EventLog(8, () => now + 1);
  t.true(
    restarted.append('', { case: 'smsSent', value: { $typeName: 'countersign.v1.SmsSent', messageId: 'x' } }).eventId > seen.at(-1)!,
    'a restarted bridge issues larger ids',
  );
});
