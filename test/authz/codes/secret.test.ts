import test from 'ava';
import { Base32Error, base32Decode, base32Encode, newVerificationSecret, otpauthUri, secretBytesMin } from '../../../authz/codes/secret.js';

// RFC 4648 §10 test vectors.
const vectors: Array<[string, string]> = [
  ['', ''],
  ['f', 'MY======'],
  ['fo', 'MZXQ===='],
  ['foo', 'MZXW6==='],
  ['foob', 'MZXW6YQ='],
  ['fooba', 'MZXW6YTB'],
  ['foobar', 'MZXW6YTBOI======'],
];

test('base32 encodes the RFC 4648 vectors', (t) => {
  for (const [plain, encoded] of vectors) t.is(base32Encode(Buffer.from(plain, 'ascii')), encoded);
});

test('base32 decodes the RFC 4648 vectors, padded, unpadded and lower case', (t) => {
  for (const [plain, encoded] of vectors) {
    t.is(base32Decode(encoded).toString('ascii'), plain);
    t.is(base32Decode(encoded.replace(/=+$/, '')).toString('ascii'), plain);
    t.is(base32Decode(encoded.toLowerCase()).toString('ascii'), plain);
  }
});

test('base32 round-trips random secrets', (t) => {
  for (let i = 0; i < 50; i++) {
    const bytes = newVerificationSecret().subarray(0, i % 33);
    t.deepEqual(base32Decode(base32Encode(bytes)), bytes);
  }
});

test('base32 rejects foreign characters and impossible lengths', (t) => {
  t.throws(() => base32Decode('MZXW1==='), { instanceOf: Base32Error });
  t.throws(() => base32Decode('MZ=XW==='), { instanceOf: Base32Error });
  t.throws(() => base32Decode('MZXW6Y'), { instanceOf: Base32Error });
});

test('verification secrets are 32 random bytes', (t) => {
  const a = newVerificationSecret();
  const b = newVerificationSecret();
  t.is(a.length, 32);
  t.true(a.length >= secretBytesMin);
  t.notDeepEqual(a, b);
});

test('otpauth URI', (t) => {
  const secret = Buffer.from('12345678901234567890', 'ascii');
  t.is(
    otpauthUri({ issuer: 'countersign', account: 'payer 42@example', secret, suite: 'OCRA-1:HOTP-SHA256-8:QA64' }),
    'otpauth://ocra/countersign:payer%2042%40example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' + '&issuer=countersign&ocraSuite=OCRA-1%3AHOTP-SHA256-8%3AQA64',
  );
  t.throws(() => otpauthUri({ issuer: 'countersign', account: 'a', secret: Buffer.alloc(19), suite: 'x' }), { instanceOf: RangeError });
});
