import test from 'ava';
import { constantTimeEqualHex, responseDigest } from '../../../authz/codes/digest.js';

const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');

test('responseDigest is HMAC-SHA256 over "challengeId\\nresponse"', (t) => {
  // Independently computed: printf 'pay-1\n32385724' | openssl dgst -sha256 -mac HMAC -macopt hexkey:0001..1f
  t.is(responseDigest(key, 'pay-1', '32385724'), 'eb52e736b0280595b0b9c59eb608f0803ec5eb21e3caa189a30f5075c13fe24c');
});

test('the digest changes with the id, the response and the key', (t) => {
  const base = responseDigest(key, 'pay-1', '32385724');
  t.not(responseDigest(key, 'pay-2', '32385724'), base);
  t.not(responseDigest(key, 'pay-1', '32385725'), base);
  t.not(responseDigest(Buffer.alloc(32, 1), 'pay-1', '32385724'), base);
  t.not(responseDigest(key, 'pay-13238572', '4'), base);
});

test('responseDigest refuses short keys and ids with a newline', (t) => {
  t.throws(() => responseDigest(Buffer.alloc(31), 'pay-1', '1'), { instanceOf: RangeError });
  t.throws(() => responseDigest(key, 'pay\n1', '1'), { instanceOf: RangeError });
});

test('constantTimeEqualHex', (t) => {
  const a = responseDigest(key, 'pay-1', '32385724');
  t.true(constantTimeEqualHex(a, a.slice()));
  t.false(constantTimeEqualHex(a, responseDigest(key, 'pay-1', '32385725')));
  t.false(constantTimeEqualHex(a, a.slice(0, 62)));
  t.false(constantTimeEqualHex('abc', 'abc'));
  t.false(constantTimeEqualHex('zz', 'zz'));
  t.false(constantTimeEqualHex('AB', 'ab'));
  t.false(constantTimeEqualHex('', ''));
});
