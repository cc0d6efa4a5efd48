import test from 'ava';
import type { Payment } from '../../../authz/model.js';
import { ByteReader, ByteWriter, StringDictionary } from '../../../authz/store/journal/bytes.js';
import { encodeFrame, JournalCorruptError } from '../../../authz/store/journal/frame.js';
import { decodeMutation, encodeMutation } from '../../../authz/store/journal/mutation-codec.js';
import type { Mutation } from '../../../authz/store/memory/state.js';
import { digestOf, payment } from './fixtures/journal-items.js';

const t0 = 1_700_000_000_000;

function mutations(): Mutation[] {
  const p = payment(t0, {
    amount: 2n ** 100n + 7n,
    feeAmount: 0n,
    description: 'line one\nline two ☕ \u2028 "quoted" \\ \u0000',
    declineReason: 'BANK_DECLINED',
    declineDetail: 'issuer said no',
  });
  const everything: Payment = {
    ...payment(t0 - 5),
    satisfiedFactors: ['SECOND_CODE'],
    requiredFactors: ['SMS_OTP', 'SECOND_CODE'],
    originSim: { iccid: '8944000000000000001', imsi: '234150000000001', msisdn: '+447700900001' },
    originPath: 'sim:main',
    billableLineId: 'LINE-1',
    lineControlAccountId: 'ab'.repeat(16),
    bankAuthorizationCode: 'A1B2C3',
    attemptsLeft: -1,
    createdAtMs: -5,
    updatedAtMs: 2 ** 52 - 6,
    expiresAtMs: 0,
    amount: 2n ** 52n - 1n,
    feeAmount: 2n ** 52n,
  };
  return [
    { op: 'record', record: { payment: p, version: 7, digests: { SECOND_CODE: digestOf('a'), SMS_OTP: digestOf('b') }, dueAtMs: t0 + 5 } },
    { op: 'record', record: { payment: payment(t0), version: 1, digests: {}, dueAtMs: undefined } },
    { op: 'record', record: { payment: everything, version: 2 ** 40, digests: { SECOND_CODE: 'NOT HEX' }, dueAtMs: -1 } },
    { op: 'record', record: { payment: { ...payment(t0), id: 'not-a-hex-id', merchantId: 'ABCDEF', currency: '' }, version: 1, digests: {}, dueAtMs: 0 } },
    {
      op: 'record',
      record: {
        payment: { ...payment(t0), description: 'a lone surrogate \ud800 here', state: 'DECLINED', declineDetail: 'lone \udc00' },
        version: 1,
        digests: {},
        dueAtMs: 0,
      },
    },
    { op: 'drop', paymentId: p.id },
    { op: 'key', id: `o\u0000payer-x\u0000${p.id}\u0000key`, entry: { fingerprint: digestOf('f'), result: 'mismatch:3', expiresAtMs: t0 + 1 } },
    { op: 'key', id: `c\u0000scope\u0000order-1`, entry: { fingerprint: digestOf('c'), result: `p:${p.id}`, expiresAtMs: t0 + 1 } },
    { op: 'key', id: 'k\u0000enroll\u0000key', entry: { fingerprint: digestOf('g'), value: 'v', leaseUntilMs: t0 + 2, expiresAtMs: t0 + 3 } },
    { op: 'key', id: 'k\u0000enroll\u0000done', entry: { fingerprint: 'odd-fingerprint', result: '', value: '☕', leaseUntilMs: 0, expiresAtMs: t0 } },
    { op: 'unkey', id: 'k\u0000enroll\u0000key' },
    { op: 'counter', key: 'sms:+447700900001:123', counter: { count: 3, expiresAtMs: t0 + 60_000 } },
    { op: 'guard', payerId: p.payerId, entry: { streak: 2, lockouts: 1, lockedUntilMs: t0 + 60_000, expiresAtMs: t0 + 86_400_000 } },
    { op: 'payNumber', digest: digestOf('n'), entry: { payerId: p.payerId, claimant: undefined, expiresAtMs: t0 + 9 } },
    { op: 'payNumber', digest: digestOf('n'), entry: { payerId: p.payerId, claimant: 'order-1', expiresAtMs: t0 + 9 } },
    { op: 'due', paymentId: p.id, dueAtMs: t0 + 30_000 },
    { op: 'due', paymentId: p.id, dueAtMs: undefined },
  ];
}

function roundTrip(list: readonly Mutation[], dictionary: boolean): Mutation[] {
  const w = new ByteWriter(16, dictionary ? new StringDictionary(1_000) : undefined);
  for (const m of list) encodeMutation(m, w);
  const r = new ByteReader(w.copyFrom(0), dictionary ? [] : undefined);
  const out: Mutation[] = [];
  while (!r.done) out.push(decodeMutation(r));
  return out;
}

test('every mutation round-trips exactly, with and without a dictionary: bigints beyond 64 bits, unicode, lone surrogates, NUL and newlines, negative and 2^52 numbers, absent optionals, non-hex ids', (t) => {
  const list = mutations();
  t.deepEqual(roundTrip(list, false), list);
  t.deepEqual(roundTrip(list, true), list);
  const [decoded] = roundTrip(list.slice(1, 2), false);
  const record = decoded!.op === 'record' ? decoded!.record : undefined;
  t.false('sealedFirstCode' in record!.payment && record!.payment.sealedFirstCode === undefined, 'an absent optional field is absent, not undefined');
  t.true(Object.isFrozen(record!.digests) && Object.isFrozen(record!.payment.satisfiedFactors), 'the shared empty digests and factor lists are frozen');
});

test('a field the codec does not know round-trips (carried as JSON); a bigint one throws, as does a field of the wrong type', (t) => {
  const p = { ...payment(t0), futureField: { nested: ['x', 1, true, null] }, futureFlag: false } as Payment;
  const m: Mutation = { op: 'record', record: { payment: p, version: 1, digests: {}, dueAtMs: undefined } };
  t.deepEqual(roundTrip([m], true), [m]);
  const w = new ByteWriter(16);
  t.throws(() => encodeMutation({ op: 'record', record: { ...m.record, payment: { ...p, futureAmount: 5n } as Payment } }, w), {
    instanceOf: TypeError,
    message: /BigInt/,
  });
  t.throws(() => encodeMutation({ op: 'record', record: { ...m.record, payment: { ...p, attemptsLeft: 1.5 } } }, w), { message: /assertion failed/ });
  t.throws(() => encodeMutation({ op: 'record', record: { ...m.record, payment: { ...p, expiresAtMs: 2 ** 53 } } }, w), {
    message: /assertion failed: a journal int/,
  });
  t.throws(() => encodeMutation({ op: 'record', record: { ...m.record, payment: { ...p, amount: -1n } } }, w), { message: /assertion failed/ });
  t.throws(() => encodeMutation({ op: 'record', record: { ...m.record, payment: { ...p, description: 7 as unknown as string } } }, w), {
    message: /assertion failed/,
  });
});

test('a dictionary makes a checkpoint smaller: repeated ids and states are written once', (t) => {
  const merchantId = digestOf('m').slice(0, 32);
  const list: Mutation[] = Array.from({ length: 100 }, () => ({
    op: 'record',
    record: { payment: payment(t0, { merchantId, payerId: merchantId }), version: 1, digests: {}, dueAtMs: undefined },
  }));
  const size = (dictionary: StringDictionary | undefined): number => {
    const w = new ByteWriter(16, dictionary);
    for (const m of list) encodeMutation(m, w);
    return w.length;
  };
  t.true(size(new StringDictionary(1_000)) < size(undefined) - 100 * 30, `${size(new StringDictionary(1_000))} vs ${size(undefined)} bytes`);
  t.true(size(new StringDictionary(0)) === size(undefined), 'a full dictionary writes inline');
  const decoded = roundTrip(list, true);
  const ids = decoded.map((m) => (m.op === 'record' ? m.record.payment.merchantId : ''));
  t.true(ids.every((id) => id === merchantId));
});

test('malformed bytes are corruption, never a silently wrong value', (t) => {
  const w = new ByteWriter(16);
  for (const m of mutations()) encodeMutation(m, w);
  const good = w.copyFrom(0);
  const decodeAll = (bytes: Buffer, dictionary?: string[]): void => {
    const r = new ByteReader(bytes, dictionary);
    while (!r.done) decodeMutation(r);
  };
  t.notThrows(() => decodeAll(good));
  const cases: [string, Buffer][] = [
    ['unknown op', Buffer.from([0x2a])],
    ['JSON (format 1)', Buffer.from('["d","abc"]')],
    ['cut short', good.subarray(0, good.length - 3)],
    ['cut inside the first record', good.subarray(0, 40)],
    ['dictionary ref in a journal frame', Buffer.from([2, (0 << 3) | 2])],
    ['dictionary define in a journal frame', Buffer.from([2, (1 << 3) | 3, 0x61])],
    ['string of unknown kind', Buffer.from([2, 7])],
    ['varint beyond 53 bits', Buffer.from([2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])],
  ];
  for (const [what, bytes] of cases) t.throws(() => decodeAll(bytes), { instanceOf: JournalCorruptError }, what);
  t.throws(() => decodeAll(Buffer.from([2, (5 << 3) | 2]), ['only-one']), { instanceOf: JournalCorruptError, message: /dictionary entry 5/ });
});

test('a frame payload is 1..64 MiB', (t) => {
  t.throws(() => encodeFrame(Buffer.alloc(0)), { message: /assertion failed/ });
  t.is(encodeFrame(Buffer.from('x')).length, 17);
});

test('secretVersion (issue 15, finding 8) is a field of its own after the JSON object: round-trips with and without other fields; a record without it stays without', (t) => {
  const plain: Mutation = {
    op: 'record',
    record: { payment: { ...payment(t0), secretVersion: 3 }, version: 2, digests: { SECOND_CODE: digestOf('s') }, dueAtMs: t0 },
  };
  const withOthers: Mutation = { op: 'record', record: { ...plain.record, payment: { ...plain.record.payment, futureField: 'x' } as Payment } };
  const legacy: Mutation = { op: 'record', record: { ...plain.record, payment: payment(t0) } };
  t.deepEqual(roundTrip([plain, withOthers, legacy], true), [plain, withOthers, legacy]);
  t.deepEqual(roundTrip([plain, withOthers, legacy], false), [plain, withOthers, legacy]);
  const w = new ByteWriter(16);
  encodeMutation(plain, w);
  t.false(Buffer.from(w.copyFrom(0)).toString('latin1').includes('secretVersion'), 'not carried in the JSON of unknown fields');
  t.false('secretVersion' in (roundTrip([legacy], true)[0] as Extract<Mutation, { op: 'record' }>).record.payment);
});
