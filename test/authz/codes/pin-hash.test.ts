import test from 'ava';
import {
  argon2Iterations,
  argon2MemoryKiB,
  argon2Parallelism,
  hashSecret,
  pinDigitsMax,
  pinDigitsMin,
  pinFormatOk,
  verifySecret,
} from '../../../authz/codes/pin-hash.js';

test('OWASP argon2id minimums', (t) => {
  t.is(argon2MemoryKiB, 19456);
  t.is(argon2Iterations, 2);
  t.is(argon2Parallelism, 1);
});

test('hashSecret gives an argon2id PHC string with the named parameters', async (t) => {
  const phc = await hashSecret('1234');
  t.true(phc.startsWith('$argon2id$'));
  t.regex(phc, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
});

test('verifySecret accepts the secret and rejects others', async (t) => {
  const phc = await hashSecret('482913');
  t.true(await verifySecret(phc, '482913'));
  t.false(await verifySecret(phc, '482914'));
  t.false(await verifySecret(phc, '48291'));
  t.false(await verifySecret(phc, ''));
});

test('hashes of the same PIN differ (salted) and both verify', async (t) => {
  const a = await hashSecret('1234');
  const b = await hashSecret('1234');
  t.not(a, b);
  t.true(await verifySecret(a, '1234'));
  t.true(await verifySecret(b, '1234'));
});

test('passwords hash too, and a non-argon2id stored hash is refused', async (t) => {
  const phc = await hashSecret('correct horse battery staple');
  t.true(await verifySecret(phc, 'correct horse battery staple'));
  t.false(await verifySecret(phc, 'correct horse battery stapler'));
  await t.throwsAsync(verifySecret(phc.replace('$argon2id$', '$argon2i$'), 'x'), { instanceOf: RangeError });
  await t.throwsAsync(hashSecret(''), { instanceOf: RangeError });
  await t.throwsAsync(hashSecret('x'.repeat(129)), { instanceOf: RangeError });
});

test('pinFormatOk: 4..12 digits', (t) => {
  t.is(pinDigitsMin, 4);
  t.is(pinDigitsMax, 12);
  t.true(pinFormatOk('0000'));
  t.true(pinFormatOk('123456789012'));
  t.false(pinFormatOk('123'));
  t.false(pinFormatOk('1234567890123'));
  t.false(pinFormatOk('12a4'));
  t.false(pinFormatOk(' 1234'));
  t.false(pinFormatOk('١٢٣٤'));
});
