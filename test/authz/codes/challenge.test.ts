import { createHmac } from 'node:crypto';
import test from 'ava';
import {
  amountDigitsMax,
  ChallengeFieldError,
  deriveSecondCode,
  type SecondCodeFields,
  secondCodeQuestion,
  secondCodeSuite,
} from '../../../authz/codes/challenge.js';
import { ocra } from '../../../authz/codes/ocra.js';

// The worked example of SECOND_CODE.md.
const secret = Buffer.from('12345678901234567890123456789012', 'ascii');
const example: SecondCodeFields = {
  firstCode: '04921735',
  amount: 12550n,
  currency: 'EUR',
  payeeAccountId: '3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c90',
};

test('worked example: question and second code', (t) => {
  t.is(secondCodeSuite, 'OCRA-1:HOTP-SHA256-8:QA64');
  t.is(secondCodeQuestion(example), '0492173512550EUR3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c90');
  t.is(deriveSecondCode(secret, example), '32385724');
});

test('worked example equals a hand-built RFC 6287 DataInput', (t) => {
  const question = Buffer.alloc(128);
  question.write('0492173512550EUR3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c90', 'ascii');
  const dataInput = Buffer.concat([Buffer.from(secondCodeSuite, 'ascii'), Buffer.alloc(1), question]);
  const mac = createHmac('sha256', secret).update(dataInput).digest();
  const offset = (mac[31] ?? 0) & 0x0f;
  const code = String((mac.readUInt32BE(offset) & 0x7fffffff) % 100_000_000).padStart(8, '0');
  t.is(code, '32385724');
});

test('every field change changes the question and the code', (t) => {
  const variants: Array<[SecondCodeFields, string, string]> = [
    [{ ...example, firstCode: '04921736' }, '0492173612550EUR3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c90', '16162867'],
    [{ ...example, amount: 12551n }, '0492173512551EUR3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c90', '65149742'],
    [{ ...example, amount: 12549n }, '0492173512549EUR3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c90', '95916947'],
    [{ ...example, currency: 'USD' }, '0492173512550USD3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c90', '19753349'],
    [{ ...example, payeeAccountId: '3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c91' }, '0492173512550EUR3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c91', '74012444'],
  ];
  for (const [fields, question, code] of variants) {
    t.is(secondCodeQuestion(fields), question);
    t.is(deriveSecondCode(secret, fields), code);
    t.not(code, '32385724');
  }
});

test('the payee id is encoded lower case', (t) => {
  t.is(deriveSecondCode(secret, { ...example, payeeAccountId: example.payeeAccountId.toUpperCase() }), '32385724');
});

test('the widest question is exactly 64 characters and the token computes it', (t) => {
  const amount = 10n ** BigInt(amountDigitsMax) - 1n;
  const question = secondCodeQuestion({ ...example, amount });
  t.is(amountDigitsMax, 21);
  t.is(question.length, 64);
  t.is(deriveSecondCode(secret, { ...example, amount }), ocra(secondCodeSuite, secret, { question }));
  t.throws(() => secondCodeQuestion({ ...example, amount: amount + 1n }), { instanceOf: ChallengeFieldError });
});

test('malformed fields are rejected', (t) => {
  const err = { instanceOf: ChallengeFieldError };
  t.throws(() => secondCodeQuestion({ ...example, firstCode: '4921735' }), err);
  t.throws(() => secondCodeQuestion({ ...example, firstCode: '0492173a' }), err);
  t.throws(() => secondCodeQuestion({ ...example, amount: 0n }), err);
  t.throws(() => secondCodeQuestion({ ...example, amount: -5n }), err);
  t.throws(() => secondCodeQuestion({ ...example, currency: 'eur' }), err);
  t.throws(() => secondCodeQuestion({ ...example, currency: 'EURO' }), err);
  t.throws(() => secondCodeQuestion({ ...example, payeeAccountId: '3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c9' }), err);
  t.throws(() => secondCodeQuestion({ ...example, payeeAccountId: '3f2a9c1e7b5d4a8e9f0c6b2d1a4e7c9g' }), err);
});
