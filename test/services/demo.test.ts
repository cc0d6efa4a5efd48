import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { loadConfig } from '../../services/config.js';
import { demoBanner, runDemo } from '../../services/demo.js';

test('countersign demo walks M1, M2, M3, M4, M3c and M5 over gRPC and the simulated phone network, ending with the balances its steps promise', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-demo-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const lines: string[] = [];
  const result = await runDemo({ ...loadConfig({}), dataDir }, (line) => lines.push(line));
  // The banner: the ledger and stores as the app describes them, then the channels and the bank.
  t.is(lines[0], 'countersign demo: authz, telco bridge and bank in this process on loopback; a merchant and six payers over real gRPC');
  t.regex(lines[1]!, /^ {2}authz \(gRPC\) {13}127\.0\.0\.1:[1-9]\d*$/);
  t.deepEqual(lines.slice(2, 5), [
    '  ledger and stores        embedded ledger (in memory)',
    '                           holds with a ledger timeout',
    '                           payment store in memory (lost on exit), directory in memory',
  ]);
  t.regex(
    lines[5]!,
    /^ {2}SMS and calls {12}telco bridge in process at 127\.0\.0\.1:[1-9]\d*: SMS over SMPP 3\.4 to a simulated SMSC at 127\.0\.0\.1:[1-9]\d*,$/,
  );
  t.regex(lines[6]!, /^ {27}calls over TwiML to a simulated voice provider at http:\/\/127\.0\.0\.1:[1-9]\d*$/);
  t.regex(lines[7]!, /^ {2}bank \(M5\) {16}reference bank front-end in process at 127\.0\.0\.1:[1-9]\d*$/);
  t.is(lines[8], '');
  t.regex(lines[9]!, /^1\. Enrolled merchant "Corner Bakery"/);
  // Alice: 200.00 − 3.50 croissant − 42.00 cake; the gift box was declined, the wedding cake refused.
  t.is(result.payerBalance, 200_00n - 3_50n - 42_00n);
  // Bob (M2): 100.00 − 30.00. Carol (M3): 500.00 − 4.00 − 250.00.
  t.is(result.m2Balance, 70_00n);
  t.is(result.m3Balance, 246_00n);
  // The merchant: each amount less its 1 % fee, rounded up (3.50 pays 0.04).
  // Dave (M4): 80.00 − 18.00 lunch (the snack approved by the wrong SIM was declined).
  t.is(result.m4Balance, 62_00n);
  // Erin (M3c): 30.00 on her line; the 25.00 over her 50.00 credit was refused. Frank (M5): 64.00 by card.
  t.is(result.lineCharged, 30_00n);
  t.is(result.cardPaid, 64_00n);
  t.is(result.merchantBalance, 3_50n - 4n + 42_00n - 42n + 30_00n - 30n + 4_00n - 4n + 250_00n - 2_50n + 18_00n - 18n + 30_00n - 30n + 64_00n - 64n);
  const text = lines.join('\n');
  for (const expected of [
    'SUCCEEDED at once (frictionless)',
    'PermissionDenied: wrong second code (4 attempts left)',
    'she types the right one → SUCCEEDED',
    'she declines it → DECLINED',
    '6. USD 400.00 wedding cake → CHALLENGED (nothing held); she confirms → DECLINED (INSUFFICIENT_FUNDS): more than Alice has, nothing moved',
    '[SMS ← +14155550124] Bob replies with the code',
    'Payment of thirty dollars to Corner Bakery',
    'Payment of two hundred fifty dollars to Corner Bakery',
    'a device with another SIM sends the code of a USD 5.00 snack → DECLINED (DEVICE_MISMATCH)',
    'sends the code over the data network with its own SIM → SUCCEEDED',
    'USD 25.00 concert ticket → FailedPrecondition: credit limit exceeded',
    'available USD 20.00',
    '→ the bank approves',
    'with a mistyped PIN → DECLINED (bank: 55',
  ]) {
    t.true(text.includes(expected), expected);
  }
  // The PINs as tokens of their own: the output also holds random codes, hex ids and ports, which
  // contain any four digits now and then (CI saw one on 2026-12-06).
  const secrets = /(?<![0-9A-Za-z])(?:8642|2468)(?![0-9A-Za-z])|open sesame|4000000000000002/;
  t.deepEqual(
    lines.filter((line) => secrets.test(line)),
    [],
    'passwords and card numbers are never printed (the lines that hold one are shown)',
  );
  t.true(secrets.test('code 1234 pin=8642.'), 'the check finds a PIN printed as a token');
  t.false(secrets.test('code 58642481 id 0a2468ff port 38642'), 'and not the digits inside a code, an id or a port');
});

test("the demo banner prints every line of the app's describe, in order, whatever the ledger and stores are", (t) => {
  const wiring = { authz: '127.0.0.1:1', bridge: '127.0.0.1:2', smsc: '127.0.0.1:3', voice: 'http://127.0.0.1:4', bank: '127.0.0.1:5' };
  const describe = [
    'TigerBeetle cluster 0 at 127.0.0.1:3000,127.0.0.1:3001',
    'holds released by countersign (no ledger timeout)',
    'Redis at redis://***@10.0.0.1:6379',
  ];
  t.deepEqual(demoBanner({ ...wiring, describe }).slice(1, 5), [
    '  authz (gRPC)             127.0.0.1:1',
    '  ledger and stores        TigerBeetle cluster 0 at 127.0.0.1:3000,127.0.0.1:3001',
    '                           holds released by countersign (no ledger timeout)',
    '                           Redis at redis://***@10.0.0.1:6379',
  ]);
});

test('the demo keeps payments and the directory in memory even when Redis is configured, says so, and writes nothing to the data directory', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-demo-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const lines: string[] = [];
  // Nothing listens on port 1: a demo that tried to reach this Redis would fail.
  const config = { ...loadConfig({}), dataDir, redisUrl: 'redis://127.0.0.1:1', redisCluster: [{ host: '127.0.0.1', port: 1 }] };
  const result = await runDemo(config, (line) => lines.push(line));
  t.is(result.payerBalance, 200_00n - 3_50n - 42_00n);
  t.deepEqual(lines.slice(2, 5), [
    '  ledger and stores        embedded ledger (in memory)',
    '                           holds with a ledger timeout',
    '                           payment store in memory (lost on exit), directory in memory',
  ]);
  t.deepEqual(readdirSync(dataDir), []);
});
