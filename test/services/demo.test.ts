import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../services/config.js';
import { runDemo } from '../../services/demo.js';

test('countersign demo walks every step over gRPC and ends with the balances its steps promise', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-demo-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const lines: string[] = [];
  const result = await runDemo({ ...loadConfig({}), dataDir }, (line) => lines.push(line));
  // 200.00 funded − 3.50 croissant − 42.00 cake; the gift box was declined, the wedding cake refused.
  t.is(result.payerBalance, 200_00n - 3_50n - 42_00n);
  // Merchant: 3.50 + 42.00 less its 1 % fee on each (rounded down: 0.03 and 0.42).
  t.is(result.merchantBalance, 3_50n - 3n + 42_00n - 42n);
  const text = lines.join('\n');
  for (const expected of ['SUCCEEDED at once (frictionless)', 'PermissionDenied: wrong second code (4 attempts left)', 'she types the right one → SUCCEEDED', 'she declines it → DECLINED', 'FailedPrecondition: insufficient funds']) {
    t.true(text.includes(expected), expected);
  }
});
