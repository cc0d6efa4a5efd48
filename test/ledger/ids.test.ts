import test from 'ava';
import {
  idFromBytes,
  idFromHex,
  idToBytes,
  idToHex,
  isPaymentId,
  newId,
  newPaymentId,
  PaymentTransferKind,
  paymentIdOf,
  paymentTransferIds,
} from '../../ledger/ids.js';
import { idMax } from '../../ledger/model.js';

const idsPerCheck = 10_000;

test('payment transfer ids are distinct from each other and from the payment id', (t) => {
  const payment = newPaymentId();
  const ids = paymentTransferIds(payment);
  const all = [payment, ...Object.values(ids)];
  t.is(new Set(all).size, 8);
  t.deepEqual(
    Object.values(ids).map((id) => id & 0xfn),
    [
      PaymentTransferKind.pending,
      PaymentTransferKind.post,
      PaymentTransferKind.void,
      PaymentTransferKind.fee,
      PaymentTransferKind.limitPending,
      PaymentTransferKind.limitPost,
      PaymentTransferKind.limitVoid,
    ],
  );
});

test('payment transfer ids map back to their payment and kind', (t) => {
  const payment = newPaymentId();
  const ids = paymentTransferIds(payment);
  t.deepEqual(paymentIdOf(ids.pending), { paymentId: payment, kind: 'pending' });
  t.deepEqual(paymentIdOf(ids.post), { paymentId: payment, kind: 'post' });
  t.deepEqual(paymentIdOf(ids.void), { paymentId: payment, kind: 'void' });
  t.deepEqual(paymentIdOf(ids.fee), { paymentId: payment, kind: 'fee' });
  t.is(paymentIdOf(payment), undefined, 'a payment id is not a transfer id');
  t.is(paymentIdOf(payment | 0xfn), undefined, 'an unused kind maps to nothing');
});

test('payment transfer ids are stable: same payment, same ids', (t) => {
  const payment = newPaymentId();
  t.deepEqual(paymentTransferIds(payment), paymentTransferIds(payment));
  const fixed = 0x0123_4567_89ab_cdef_0123_4567_89ab_cde0n;
  t.deepEqual(paymentTransferIds(fixed), {
    pending: 0x0123_4567_89ab_cdef_0123_4567_89ab_cde1n,
    post: 0x0123_4567_89ab_cdef_0123_4567_89ab_cde2n,
    void: 0x0123_4567_89ab_cdef_0123_4567_89ab_cde3n,
    fee: 0x0123_4567_89ab_cdef_0123_4567_89ab_cde4n,
    limitPending: 0x0123_4567_89ab_cdef_0123_4567_89ab_cde5n,
    limitPost: 0x0123_4567_89ab_cdef_0123_4567_89ab_cde6n,
    limitVoid: 0x0123_4567_89ab_cdef_0123_4567_89ab_cde7n,
  });
});

test('bad payment ids are rejected', (t) => {
  for (const bad of [0n, idMax, idMax + 1n, -16n, newPaymentId() | 1n, newPaymentId() | 8n]) {
    t.false(isPaymentId(bad), `isPaymentId(${bad})`);
    t.throws(() => paymentTransferIds(bad), { instanceOf: RangeError }, `paymentTransferIds(${bad})`);
  }
  t.true(isPaymentId(newPaymentId()));
});

test('newId is strictly monotonic within a process', (t) => {
  let previous = newId();
  let increasing = 0;
  for (let i = 0; i < idsPerCheck; i++) {
    const id = newId();
    if (id > previous) increasing++;
    previous = id;
  }
  t.is(increasing, idsPerCheck);
});

test('newId is time-ordered: its top 48 bits are the creation millisecond', async (t) => {
  const before = BigInt(Date.now());
  const first = newId();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const second = newId();
  const after = BigInt(Date.now());
  const msOf = (id: bigint) => id >> 80n;
  t.true(msOf(first) >= before && msOf(first) <= after, 'first id carries the current millisecond');
  t.true(msOf(second) > msOf(first), 'a later millisecond gives a larger prefix');
  t.true(second > first);
});

test('each millisecond starts newId at fresh random bits: every one of bits 4..79 varies across 64 milliseconds', (t) => {
  const starts: bigint[] = [];
  for (let i = 0; i < 64; i++) {
    const ms = Date.now();
    while (Date.now() === ms); // the next millisecond: its first id draws new random bits
    starts.push(newId() & ((1n << 80n) - 1n));
  }
  t.is(new Set(starts).size, 64);
  const constant = [];
  for (let bit = 4n; bit < 80n; bit++) {
    const ones = starts.filter((r) => ((r >> bit) & 1n) === 1n).length;
    if (ones === 0 || ones === 64) constant.push(bit);
  }
  t.deepEqual(constant, [], 'a bit the same in all 64 draws (chance 2^-63 each) means it is not drawn');
  t.true(starts.every((r) => (r & 0xfn) === 0n));
});

test('newId never returns 0 or int max, never repeats, and is always a payment id', (t) => {
  const ids = Array.from({ length: idsPerCheck }, () => newId());
  t.is(ids.filter((id) => id <= 0n || id >= idMax).length, 0);
  t.is(new Set(ids).size, idsPerCheck);
  t.is(ids.filter((id) => !isPaymentId(id)).length, 0, 'low 4 bits zero: any minted id can serve as a payment id');
});

test('newPaymentId never repeats, even within one millisecond', (t) => {
  const seen = new Set<bigint>();
  for (let i = 0; i < idsPerCheck; i++) seen.add(newPaymentId());
  t.is(seen.size, idsPerCheck, 'two payments must never share an id (and so their transfer ids)');
});

test('ids from newId never collide with transfer ids derived from a payment', (t) => {
  const derived = new Set<bigint>();
  const plain: bigint[] = [];
  for (let i = 0; i < idsPerCheck / 10; i++) {
    for (const id of Object.values(paymentTransferIds(newPaymentId()))) derived.add(id);
    plain.push(newId(), newId());
  }
  t.is(plain.filter((id) => derived.has(id)).length, 0, 'a plain transfer id must not equal a payment’s transfer id');
});

test('hex round trip: 32 lowercase digits, big-endian', (t) => {
  for (const id of [1n, 0xabcn, newId(), idMax]) {
    const hex = idToHex(id);
    t.regex(hex, /^[0-9a-f]{32}$/);
    t.is(idFromHex(hex), id);
  }
  t.is(idToHex(0xabcn), '00000000000000000000000000000abc');
  t.is(idFromHex('ABC'), 0xabcn);
  for (const bad of ['', 'xyz', '0x12', '1'.repeat(33), '12 34']) {
    t.throws(() => idFromHex(bad), { instanceOf: RangeError }, `idFromHex(${JSON.stringify(bad)})`);
  }
});

test('bytes round trip: 16 bytes, big-endian', (t) => {
  for (const id of [0n, 1n, newId(), idMax, 1n << 64n, (1n << 64n) - 1n]) {
    const bytes = idToBytes(id);
    t.is(bytes.length, 16);
    t.is(idFromBytes(bytes), id);
  }
  t.deepEqual([...idToBytes(0x0102n)], [...Array<number>(14).fill(0), 1, 2]);
  const padded = new Uint8Array(20);
  padded.set(idToBytes(0xfeedn), 4);
  t.is(idFromBytes(padded.subarray(4, 20)), 0xfeedn, 'reads a view at an offset');
  t.throws(() => idFromBytes(new Uint8Array(15)), { instanceOf: RangeError });
  t.throws(() => idFromBytes(new Uint8Array(17)), { instanceOf: RangeError });
});
