import { randomBytes, randomInt } from 'node:crypto';
import test from 'ava';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { ocra } from '../../authz/codes/ocra.js';
import {
  importOcraKey,
  OcraError,
  ocraResponse,
  parseTerminalSuite,
  secondCode,
  secondCodeQuestion,
  secondCodeSuite,
} from '../../services/web/client/ocra.mjs';
import { example, exampleQuestion, exampleSecretAscii, workedExample } from './worked-example.js';

/**
 * The terminal's WebCrypto OCRA (services/web/client/ocra.mts) against SECOND_CODE.md's worked
 * example, the RFC 6287 vectors it can compute, and the server's node:crypto reference. The
 * same file runs in Chromium in terminal.test.ts.
 */

const exampleKey = new Uint8Array(Buffer.from(exampleSecretAscii, 'ascii'));

test('the terminal reproduces SECOND_CODE.md: question and every code of the table', async (t) => {
  t.is(secondCodeQuestion(example), exampleQuestion);
  const key = await importOcraKey(exampleKey, parseTerminalSuite(secondCodeSuite));
  for (const [change, code] of workedExample)
    t.is(
      await secondCode(key, secondCodeSuite, { ...example, ...change }),
      code,
      String(JSON.stringify(change, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))),
    );
});

test('RFC 6287 appendix C one-way vectors (OCRA-1:HOTP-SHA1-6:QN08)', async (t) => {
  const suite = parseTerminalSuite('OCRA-1:HOTP-SHA1-6:QN08');
  const key = await importOcraKey(new Uint8Array(Buffer.from('12345678901234567890', 'ascii')), suite);
  const expected = ['237653', '243178', '653583', '740991', '608993', '388898', '816933', '224598', '750600', '294470'];
  for (const [i, code] of expected.entries()) t.is(await ocraResponse(key, suite, String(i).repeat(8)), code);
});

test('agrees with the server reference on random keys, suites and questions', async (t) => {
  const hashes = [
    ['1', 20],
    ['256', 32],
    ['512', 64],
  ] as const;
  const charsets = { A: 'ABCXYZabc0123456789-_.~', N: '0123456789', H: '0123456789abcdef' } as const;
  for (let i = 0; i < 120; i++) {
    const [bits, bytes] = hashes[i % 3]!;
    const format = (['A', 'N', 'H'] as const)[Math.floor(i / 3) % 3]!;
    const suiteText = `OCRA-1:HOTP-SHA${bits}-${6 + (i % 5)}:Q${format}64`;
    const secret = randomBytes(bytes);
    const length = randomInt(4, format === 'N' ? 40 : 65);
    const chars = charsets[format];
    const question = Array.from({ length }, (_, k) => chars[k === 0 && format === 'N' ? randomInt(1, 10) : randomInt(chars.length)]).join('');
    const suite = parseTerminalSuite(suiteText);
    t.is(
      await ocraResponse(await importOcraKey(new Uint8Array(secret), suite), suite, question),
      ocra(suiteText, secret, { question }),
      `${suiteText} ${question}`,
    );
  }
});

test('second codes agree with the server (deriveSecondCode) on random payments', async (t) => {
  for (let i = 0; i < 100; i++) {
    const secret = randomBytes(32);
    const fields = {
      firstCode: String(randomInt(0, 100_000_000)).padStart(8, '0'),
      amount: BigInt(randomInt(1, 2 ** 47)) * BigInt(randomInt(1, 1000)),
      currency: ['USD', 'EUR', 'JPY'][i % 3]!,
      payeeAccountId: randomBytes(16).toString('hex'),
    };
    const key = await importOcraKey(new Uint8Array(secret), parseTerminalSuite(secondCodeSuite));
    t.is(await secondCode(key, secondCodeSuite, fields), deriveSecondCode(secret, fields));
  }
});

test('malformed fields and suites it cannot compute are refused', async (t) => {
  t.throws(() => secondCodeQuestion({ ...example, firstCode: '1234567' }), { instanceOf: OcraError });
  t.throws(() => secondCodeQuestion({ ...example, amount: 0n }), { instanceOf: OcraError });
  t.throws(() => secondCodeQuestion({ ...example, amount: 10n ** 21n }), { instanceOf: OcraError });
  t.throws(() => secondCodeQuestion({ ...example, currency: 'eur' }), { instanceOf: OcraError });
  t.throws(() => secondCodeQuestion({ ...example, payeeAccountId: 'xyz' }), { instanceOf: OcraError });
  t.is(secondCodeQuestion({ ...example, payeeAccountId: example.payeeAccountId.toUpperCase() }), secondCodeQuestion(example), 'payee encoded lower case');
  for (const suite of [
    'OCRA-1:HOTP-SHA1-6:C-QN08',
    'OCRA-1:HOTP-SHA256-8:QN08-PSHA1',
    'OCRA-1:HOTP-SHA512-8:QN08-T1M',
    'OCRA-2:HOTP-SHA1-6:QN08',
    'OCRA-1:HOTP-SHA1-3:QN08',
  ]) {
    t.throws(() => parseTerminalSuite(suite), { instanceOf: OcraError }, suite);
  }
});
