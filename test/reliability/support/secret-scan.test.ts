import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { type RunReport, table } from './report.js';
import { luhnValid, scanLogs, scanText } from './secret-scan.js';

// The reliability runner's log scan: it must find what leaked, say where and what kind, never
// repeat the secret, and not cry wolf over timestamps, ids and durations.

const pinoLine = (fields: string) => `{"level":30,"time":1795460513632,"service":"countersign-authz",${fields},"msg":"rpc"}`;

test('Luhn: known card numbers pass, a changed digit fails', (t) => {
  t.deepEqual(['4111111111111111', '5500005555555559', '378282246310005', '4111111111111112'].map(luhnValid), [true, true, true, false]);
});

test('a registered secret is found where it stands, and the finding does not repeat it', (t) => {
  const token = 'cs_payer_Q2hhbmdlIG1lIHBsZWFzZQ';
  const found = scanText(`${pinoLine('"method":"GetPayment"')}\n${pinoLine(`"authorization":"Bearer ${token}"`)}\n`, [token]);
  t.is(found.length, 1);
  t.regex(found[0]!.what, /registered/);
  t.false(found[0]!.what.includes(token));
});

test('an 8-digit code is found standing alone, not inside a timestamp, an id or a longer number', (t) => {
  const code = '48213570';
  const quiet = [pinoLine(`"paymentId":"0193a4${code}c6d7e8f90a1b2c3d4e5f60"`), pinoLine(`"durationMs":1${code}`), `${code}9`].join('\n');
  t.deepEqual(scanText(quiet, [code]), []);
  const leaked = scanText(pinoLine(`"note":"first ${code} sent"`), [code]);
  t.is(leaked.length, 1);
});

test('patterns: an 8-digit number next to "code", and a card-number-like run passing Luhn', (t) => {
  const found = scanText(
    [pinoLine('"msg2":"your code: 12345678"'), pinoLine('"pan":"4111 1111 1111 1111"'), pinoLine('"pan2":"5500005555555559"')].join('\n'),
    [],
  );
  t.deepEqual(found.map((f) => f.what).sort(), [
    'a 16-digit card-number-like run passing Luhn',
    'a 16-digit card-number-like run passing Luhn',
    'an 8-digit number next to the word "code"',
  ]);
});

test('no false alarm on pino times, epoch milliseconds under time keys, gRPC codes and 13-digit ids that fail Luhn', (t) => {
  const lines = [
    pinoLine('"code":14,"createdAtMs":1795460513632,"expiresAt":"1795460813632"'),
    pinoLine('"count":1234567890123'),
    pinoLine('"codeTtlMs":300000'),
  ];
  t.deepEqual(scanText(lines.join('\n'), ['12345']), []);
});

test('scanLogs walks every file under the directory, names file and line, and skips secrets of one repeated character', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-scan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'world'), { recursive: true });
  writeFileSync(join(dir, 'world', 'authz.log'), `${pinoLine('"a":1')}\n${pinoLine('"secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"')}\n`);
  writeFileSync(join(dir, 'bridge.log'), `${pinoLine('"b":2')}\n`);
  writeFileSync(join(dir, 'redis.log'), '17722:C 23 Nov 2026 19:57:02.098 # Redis version=7.0.15, bits=64, commit=00000000, modified=0\n');
  const result = scanLogs(dir, new Set(['JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'ab', '00000000']));
  t.is(result.files, 3);
  t.is(result.secretsScanned, 1);
  t.is(result.secretsTooShort, 2);
  t.deepEqual(result.findings, ['world/authz.log:2: a secret of 32 characters a scenario registered']);
});

test('the table has one row per scenario, the scan row and totals', (t) => {
  const report: RunReport = {
    mode: 'short',
    seed: 1,
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 1,
    node: 'Node',
    notes: [],
    scan: { files: 1, bytes: 1, secretsScanned: 1, secretsTooShort: 0, findings: ['x.log:1: a secret of 8 digits a scenario registered'] },
    scenarios: [
      { name: 'crash', counts: { payments: 10, kills: 2 }, violations: [], durationMs: 1 },
      { name: 'fuzz', counts: { fuzzed: 5, guesses: 3 }, violations: ['boom'], durationMs: 1 },
    ],
  };
  const lines = table(report).split('\n');
  t.is(lines[0], '| scenario | payments | kills | outages | fuzzed | guesses | violations |');
  t.is(lines[2], '| crash | 10 | 2 | 0 | 0 | 0 | 0 |');
  t.is(lines[3], '| fuzz | 0 | 0 | 0 | 5 | 3 | 1 |');
  t.is(lines[4], '| secret scan | — | — | — | — | — | 1 |');
  t.is(lines[5], '| **total** | 10 | 2 | 0 | 5 | 3 | 2 |');
});

test('a scenario key whose random part happens to be decimal reads as a card number unless a letter breaks the run (why the scenarios’ keys carry one)', (t) => {
  t.true(luhnValid('8602667222967'));
  t.deepEqual(
    scanText('ps:{m:1}:c:32:1:tenant-rate-b-8-602667222967', []).map((f) => f.what),
    ['a 13-digit card-number-like run passing Luhn'],
  );
  t.deepEqual(scanText('ps:{m:1}:c:32:1:tenant-rate-b-8-r602667222967', []), []);
});
