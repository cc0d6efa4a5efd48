import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../services/config.js';
import { runDemo } from '../../services/demo.js';

test('countersign demo walks M1, M2, M3, M4, M3c and M5 over gRPC and the simulated phone network, ending with the balances its steps promise', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-demo-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const lines: string[] = [];
  const result = await runDemo({ ...loadConfig({}), dataDir }, (line) => lines.push(line));
  // Alice: 200.00 − 3.50 croissant − 42.00 cake; the gift box was declined, the wedding cake refused.
  t.is(result.payerBalance, 200_00n - 3_50n - 42_00n);
  // Bob (M2): 100.00 − 30.00. Carol (M3): 500.00 − 4.00 − 250.00.
  t.is(result.m2Balance, 70_00n);
  t.is(result.m3Balance, 246_00n);
  // The merchant: each amount less its 1 % fee, rounded down.
  // Dave (M4): 80.00 − 18.00 lunch (the snack approved by the wrong SIM was declined).
  t.is(result.m4Balance, 62_00n);
  // Erin (M3c): 30.00 on her line; the 25.00 over her 50.00 credit was refused. Frank (M5): 64.00 by card.
  t.is(result.lineCharged, 30_00n);
  t.is(result.cardPaid, 64_00n);
  t.is(result.merchantBalance, 3_50n - 3n + 42_00n - 42n + 30_00n - 30n + 4_00n - 4n + 250_00n - 2_50n + 18_00n - 18n + 30_00n - 30n + 64_00n - 64n);
  const text = lines.join('\n');
  for (const expected of [
    'SUCCEEDED at once (frictionless)',
    'PermissionDenied: wrong second code (4 attempts left)',
    'she types the right one → SUCCEEDED',
    'she declines it → DECLINED',
    'FailedPrecondition: insufficient funds',
    '[SMS ← +14155550124] Bob replies with the code',
    'Payment of thirty dollars to Corner Bakery',
    'Payment of two hundred fifty dollars to Corner Bakery',
    'a device with another SIM sends the code of a USD 5.00 snack → DECLINED (DEVICE_MISMATCH)',
    "sends the code over the data network with its own SIM → SUCCEEDED",
    'USD 25.00 concert ticket → FailedPrecondition: credit limit exceeded',
    'available USD 20.00',
    '→ the bank approves',
    'with a mistyped PIN → DECLINED (bank: 55',
  ]) {
    t.true(text.includes(expected), expected);
  }
  t.false(/8642|2468|open sesame|4000000000000002/.test(text), 'passwords and card numbers are never printed');
});
