import test from 'ava';
import { OcraInputError, OcraSuiteError, ocra, ocraPasswordHash, parseOcraSuite } from '../../../authz/codes/ocra.js';

// RFC 6287 Appendix C standard keys and inputs.
const key20 = Buffer.from('12345678901234567890', 'ascii');
const key32 = Buffer.from('12345678901234567890123456789012', 'ascii');
const key64 = Buffer.from('1234567890123456789012345678901234567890123456789012345678901234', 'ascii');
const pinSha1 = Buffer.from('7110eda4d09e062aa5e4a390b0a572ac0d2c0220', 'hex'); // SHA1("1234")
const timeSteps = 0x132d0b6n;
const repeat8 = (i: number): string => String(i).repeat(8);

test('the PIN hash is SHA1("1234") as in Appendix C', (t) => {
  t.deepEqual(ocraPasswordHash('sha1', '1234'), pinSha1);
});

test('C.1 OCRA-1:HOTP-SHA1-6:QN08, 20-byte key', (t) => {
  const expected = ['237653', '243178', '653583', '740991', '608993', '388898', '816933', '224598', '750600', '294470'];
  expected.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA1-6:QN08', key20, { question: repeat8(i) }), r));
});

test('C.1 OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1, counters 0..9', (t) => {
  const expected = ['65347737', '86775851', '78192410', '71565254', '10104329', '65983500', '70069104', '91771096', '75011558', '08522129'];
  expected.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1', key32, { question: '12345678', counter: BigInt(i), passwordHash: pinSha1 }), r));
});

test('C.1 OCRA-1:HOTP-SHA256-8:QN08-PSHA1', (t) => {
  const expected = ['83238735', '01501458', '17957585', '86776967', '86807031'];
  expected.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA256-8:QN08-PSHA1', key32, { question: repeat8(i), passwordHash: pinSha1 }), r));
});

test('C.1 OCRA-1:HOTP-SHA512-8:C-QN08, 64-byte key', (t) => {
  const expected = ['07016083', '63947962', '70123924', '25341727', '33203315', '34205738', '44343969', '51946085', '20403879', '31409299'];
  expected.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA512-8:C-QN08', key64, { question: repeat8(i), counter: BigInt(i) }), r));
});

test('C.1 OCRA-1:HOTP-SHA512-8:QN08-T1M, time 132d0b6', (t) => {
  const expected = ['95209754', '55907591', '22048402', '24218844', '36209546'];
  expected.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA512-8:QN08-T1M', key64, { question: repeat8(i), timeSteps }), r));
});

test('C.2 mutual OCRA-1:HOTP-SHA256-8:QA08 server and client computations', (t) => {
  const server = ['28247970', '01984843', '65387857', '03351211', '83412541'];
  const client = ['15510767', '90175646', '33777207', '95285278', '28934924'];
  server.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA256-8:QA08', key32, { question: `CLI2222${i}SRV1111${i}` }), r));
  client.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA256-8:QA08', key32, { question: `SRV1111${i}CLI2222${i}` }), r));
});

test('C.2 mutual OCRA-1:HOTP-SHA512-8:QA08 server, QA08-PSHA1 client', (t) => {
  const server = ['79496648', '76831980', '12250499', '90856481', '12761449'];
  const client = ['18806276', '70020315', '01600026', '18951020', '32528969'];
  server.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA512-8:QA08', key64, { question: `CLI2222${i}SRV1111${i}` }), r));
  client.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA512-8:QA08-PSHA1', key64, { question: `SRV1111${i}CLI2222${i}`, passwordHash: pinSha1 }), r));
});

test('C.3 plain signature OCRA-1:HOTP-SHA256-8:QA08', (t) => {
  const expected = ['53095496', '04110475', '31331128', '76028668', '46554205'];
  expected.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA256-8:QA08', key32, { question: `SIG1${i}000` }), r));
});

test('C.3 plain signature OCRA-1:HOTP-SHA512-8:QA10-T1M', (t) => {
  const expected = ['77537423', '31970405', '10235557', '95213541', '65360607'];
  expected.forEach((r, i) => t.is(ocra('OCRA-1:HOTP-SHA512-8:QA10-T1M', key64, { question: `SIG1${i}00000`, timeSteps }), r));
});

test('QH takes hex case-insensitively; the suite string is part of the DataInput', (t) => {
  // 12345678 = 0xBC614E: the QN vector equals the QH computation on its hex form.
  const viaNumeric = ocra('OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1', key32, { question: '12345678', counter: 0n, passwordHash: pinSha1 });
  const viaHex = ocra('OCRA-1:HOTP-SHA256-8:C-QH08-PSHA1', key32, { question: 'BC614E', counter: 0n, passwordHash: pinSha1 });
  t.is(viaNumeric, '65347737');
  // The suite string is part of the DataInput, so a different suite gives a different response.
  t.not(viaHex, viaNumeric);
  t.is(viaHex, ocra('OCRA-1:HOTP-SHA256-8:C-QH08-PSHA1', key32, { question: 'bc614e', counter: 0n, passwordHash: pinSha1 }));
});

test('parseOcraSuite reads every field', (t) => {
  t.deepEqual(parseOcraSuite('OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1'), {
    text: 'OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1',
    hash: 'sha256',
    digits: 8,
    counter: true,
    questionFormat: 'N',
    questionCharsMax: 8,
    passwordHash: 'sha1',
    sessionInfoBytes: null,
    timeStepSeconds: null,
  });
  const timed = parseOcraSuite('OCRA-1:HOTP-SHA512-8:QN08-T1M');
  t.is(timed.timeStepSeconds, 60);
  t.is(timed.hash, 'sha512');
  const session = parseOcraSuite('OCRA-1:HOTP-SHA1-6:QH10-S128');
  t.is(session.sessionInfoBytes, 128);
  t.is(session.questionFormat, 'H');
  t.is(parseOcraSuite('OCRA-1:HOTP-SHA256-6:QA10-T2H').timeStepSeconds, 7200);
});

test('parseOcraSuite rejects malformed suites', (t) => {
  for (const bad of [
    'OCRA-2:HOTP-SHA1-6:QN08',
    'OCRA-1:TOTP-SHA1-6:QN08',
    'OCRA-1:HOTP-SHA3-6:QN08',
    'OCRA-1:HOTP-SHA1-3:QN08',
    'OCRA-1:HOTP-SHA1-6:QX08',
    'OCRA-1:HOTP-SHA1-6:QN03',
    'OCRA-1:HOTP-SHA1-6:QN65',
    'OCRA-1:HOTP-SHA1-6:X-QN08',
    'OCRA-1:HOTP-SHA1-6:QN08-PSHA3',
    'OCRA-1:HOTP-SHA1-6:QN08-T60M',
    'OCRA-1:HOTP-SHA1-6:QN08-T1M-PSHA1',
    'OCRA-1:HOTP-SHA1-6:QN08-S12',
    'OCRA-1:HOTP-SHA1-6',
    'OCRA-1:HOTP-SHA1-6:C',
  ]) {
    t.throws(() => parseOcraSuite(bad), { instanceOf: OcraSuiteError }, bad);
  }
});

test('ocra rejects missing, extra or malformed inputs', (t) => {
  const err = { instanceOf: OcraInputError };
  t.throws(() => ocra('OCRA-1:HOTP-SHA512-8:C-QN08', key64, { question: '12345678' }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA1-6:QN08', key20, { question: '12345678', counter: 1n }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA1-6:QN08', key20, { question: '1234567a' }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA1-6:QN08', key20, { question: '123' }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA1-6:QA08', key20, { question: 'x'.repeat(129) }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA1-6:QA08', key20, { question: 'SIG 1000' }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA1-6:QH08', key20, { question: 'ABCDEFGZ' }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA256-8:QN08-PSHA1', key32, { question: '12345678', passwordHash: Buffer.alloc(32) }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA512-8:QN08-T1M', key64, { question: '12345678' }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA512-8:C-QN08', key64, { question: '12345678', counter: -1n }), err);
  t.throws(() => ocra('OCRA-1:HOTP-SHA1-6:QH10-S004', key20, { question: 'ABCD', sessionInfo: Buffer.alloc(5) }), err);
});

test('session information is left-padded with zero bytes to Snnn', (t) => {
  const suite = 'OCRA-1:HOTP-SHA1-6:QH10-S004';
  const short = ocra(suite, key20, { question: 'ABCD', sessionInfo: Buffer.from([1, 2]) });
  t.is(short, ocra(suite, key20, { question: 'ABCD', sessionInfo: Buffer.from([0, 0, 1, 2]) }));
  t.not(short, ocra(suite, key20, { question: 'ABCD', sessionInfo: Buffer.from([1, 2, 0, 0]) }));
  t.regex(short, /^\d{6}$/);
});
