import test from 'ava';
import { JournalCorruptError, encodeFrame } from '../../../authz/store/journal/frame.js';
import { decodeMutation, encodeMutation } from '../../../authz/store/journal/mutation-codec.js';
import type { Mutation } from '../../../authz/store/memory/state.js';
import { digestOf, payment } from './fixtures/journal-items.js';

const t0 = 1_700_000_000_000;

test('every mutation round-trips exactly through one line: bigints beyond 64 bits, unicode and newlines, absent optionals', (t) => {
  const p = payment(t0, { amount: 2n ** 100n + 7n, feeAmount: 0n, description: 'line one\nline two ☕ \u2028 "quoted" \\', declineReason: 'BANK_DECLINED' });
  const mutations: Mutation[] = [
    { op: 'record', record: { payment: p, version: 7, digests: { SECOND_CODE: digestOf('a'), SMS_OTP: digestOf('b') }, dueAtMs: t0 + 5 } },
    { op: 'record', record: { payment: payment(t0), version: 1, digests: {}, dueAtMs: undefined } },
    { op: 'drop', paymentId: p.id },
    { op: 'key', id: `o\u0000payer-x\u0000${p.id}\u0000key`, entry: { fingerprint: digestOf('f'), result: 'mismatch:3', expiresAtMs: t0 + 1 } },
    { op: 'key', id: 'k\u0000enroll\u0000key', entry: { fingerprint: digestOf('g'), value: 'v', leaseUntilMs: t0 + 2, expiresAtMs: t0 + 3 } },
    { op: 'unkey', id: 'k\u0000enroll\u0000key' },
    { op: 'counter', key: 'sms:+447700900001', counter: { count: 3, expiresAtMs: t0 + 60_000 } },
    { op: 'guard', payerId: p.payerId, entry: { streak: 2, lockouts: 1, lockedUntilMs: t0 + 60_000, expiresAtMs: t0 + 86_400_000 } },
    { op: 'payNumber', digest: digestOf('n'), entry: { payerId: p.payerId, claimant: undefined, expiresAtMs: t0 + 9 } },
    { op: 'payNumber', digest: digestOf('n'), entry: { payerId: p.payerId, claimant: 'order-1', expiresAtMs: t0 + 9 } },
    { op: 'due', paymentId: p.id, dueAtMs: t0 + 30_000 },
    { op: 'due', paymentId: p.id, dueAtMs: undefined },
  ];
  for (const m of mutations) {
    const line = encodeMutation(m);
    t.false(line.includes('\n'), 'one line');
    t.deepEqual(decodeMutation(line), m);
  }
});

test('a line of another shape is corruption, never a silently wrong value', (t) => {
  const bad = ['', 'not json', '{"op":"record"}', '["x","a"]', '["c","k","3",1]', '["r",{"id":"a","amount":"1.5","feeAmount":"0"},1,{},null]', '["k","id",{"expiresAtMs":1}]', '["t","id","soon"]'];
  for (const line of bad) t.throws(() => decodeMutation(line), { instanceOf: JournalCorruptError }, line);
});

test('a frame payload is 1..64 MiB', (t) => {
  t.throws(() => encodeFrame(Buffer.alloc(0)), { message: /assertion failed/ });
  t.is(encodeFrame(Buffer.from('x')).length, 17);
});
