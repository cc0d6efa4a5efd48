import { randomBytes } from 'node:crypto';
import test from 'ava';
import { decipherPinBlock, encipherPinBlock, panField, pinField, pinOfField } from '../../services/bank/pin-block.js';

const h = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex').toUpperCase();

// Published examples (the psec library's documented format 4 examples; the PAN field of the
// ANSI X9.24-3:2017 supplement's AES PIN block example).
test('PIN field and PAN field as published', (t) => {
  t.is(hex(pinField('1234', h('548ED7FD65495950'))), '441234AAAAAAAAAA548ED7FD65495950');
  t.is(hex(panField('112233445566778899')), '61122334455667788990000000000000');
  t.is(hex(panField('4111111111111111')), '44111111111111111000000000000000');
  t.is(pinOfField(h('441234AAAAAAAAAA548ED7FD65495950')), '1234');
});

test('enciphered PIN block as published, and the published block deciphers', (t) => {
  const key = h('00112233445566778899AABBCCDDEEFF');
  t.is(hex(encipherPinBlock(key, '1234', '1234567890123456', h('1122334455667788'))), '7CDF645C86CAF763AE34637A66997534');
  t.is(decipherPinBlock(key, h('E4BE5B623AF7E006AC319E5B93544564'), '1234567890123456'), '1234');
  t.is(decipherPinBlock(key, h('7CDF645C86CAF763AE34637A66997534'), '1234567890123456'), '1234');
});

test('round trips for PANs of 12..19 digits and PINs of 4..12 digits; another PAN or key does not decode', (t) => {
  const key = randomBytes(16);
  for (let panDigits = 12; panDigits <= 19; panDigits++) {
    for (let pinDigits = 4; pinDigits <= 12; pinDigits++) {
      const pan = digits(panDigits);
      const pin = digits(pinDigits);
      const block = encipherPinBlock(key, pin, pan);
      t.is(block.length, 16);
      t.is(decipherPinBlock(key, block, pan), pin, `PAN ${panDigits} digits, PIN ${pinDigits} digits`);
      const otherPan = pan.slice(0, -1) + String((Number(pan.at(-1)) + 1) % 10);
      t.is(decipherPinBlock(key, block, otherPan), undefined);
      t.is(decipherPinBlock(randomBytes(16), block, pan), undefined);
    }
  }
});

test('the random fill makes each block of the same PIN and PAN different', (t) => {
  const key = randomBytes(16);
  const blocks = new Set(Array.from({ length: 20 }, () => hex(encipherPinBlock(key, '1234', '4000000000000002'))));
  t.is(blocks.size, 20);
});

test('bad inputs are refused', (t) => {
  const key = randomBytes(16);
  t.throws(() => encipherPinBlock(key, '123', '4000000000000002'), { instanceOf: RangeError });
  t.throws(() => encipherPinBlock(key, '1234567890123', '4000000000000002'), { instanceOf: RangeError });
  t.throws(() => encipherPinBlock(key, '12a4', '4000000000000002'), { instanceOf: RangeError });
  t.throws(() => encipherPinBlock(key, '1234', '12345678901'), { instanceOf: RangeError });
  t.throws(() => encipherPinBlock(key, '1234', '12345678901234567890'), { instanceOf: RangeError });
  t.throws(() => encipherPinBlock(randomBytes(15), '1234', '4000000000000002'), { instanceOf: RangeError });
  t.is(decipherPinBlock(key, new Uint8Array(15), '4000000000000002'), undefined);
  t.is(pinOfField(h('541234AAAAAAAAAA548ED7FD65495950')), undefined, 'control nibble 5');
  t.is(pinOfField(h('431234AAAAAAAAAA548ED7FD65495950')), undefined, 'length 3');
  t.is(pinOfField(h('44123BAAAAAAAAAA548ED7FD65495950')), undefined, 'a non-digit');
  t.is(pinOfField(h('441234AAAAAAAAAB548ED7FD65495950')), undefined, 'bad fill');
});

function digits(n: number): string {
  return Array.from(randomBytes(n), (b) => String(b % 10)).join('');
}
