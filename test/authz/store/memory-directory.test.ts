import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { StoreFullError } from '../../../authz/store/errors.js';
import { FileDirectory } from '../../../authz/store/file-directory.js';
import { MemoryDirectory } from '../../../authz/store/memory-directory.js';
import { directoryContract, merchant, payer } from './directory.contract.js';

directoryContract('memory directory', { open: async () => new MemoryDirectory() });

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cs-directory-'));
directoryContract('file directory', { open: () => FileDirectory.open({ file: path.join(dataDir, 'contract.json') }) });

test.after.always('remove the directory files', () => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('file directory: everything survives close and reopen, indexes included', async (t) => {
  const own = fs.mkdtempSync(path.join(dataDir, 'reopen-'));
  const file = path.join(own, 'directory.json');
  const first = await FileDirectory.open({ file });
  const [p, m] = [payer({ pinHash: '$argon2id$x' }), merchant()];
  await Promise.all([first.putPayer(p), first.putMerchant(m)]);
  await first.close();
  t.deepEqual(fs.readdirSync(own), ['directory.json'], 'no temp file left behind');

  const second = await FileDirectory.open({ file });
  t.deepEqual(await second.getPayer(p.id), p);
  t.deepEqual(await second.findPayerByPhone(p.phone), p);
  t.deepEqual(await second.findPayerByTokenHash(p.tokenHash), p);
  t.deepEqual(await second.findMerchantByApiKeyHash(m.apiKeyHash), m);
  t.false(fs.readFileSync(file, 'utf8').includes('"noFactorBelow":500n'), 'bigints stored as decimal strings');
  await second.close();
});

test('file directory: a rotated key and token survive a reopen, previous ones with their expiry and index', async (t) => {
  const own = fs.mkdtempSync(path.join(dataDir, 'rotated-'));
  const file = path.join(own, 'directory.json');
  const first = await FileDirectory.open({ file });
  const m = merchant();
  const p = payer();
  const rotated = { ...m, apiKeyHash: 'b'.repeat(64), previousApiKeyHash: m.apiKeyHash, previousApiKeyExpiresAtMs: 1_234 };
  const rotatedPayer = { ...p, tokenHash: 'c'.repeat(64), previousTokenHash: p.tokenHash, previousTokenExpiresAtMs: 5_678 };
  await first.putMerchant(m);
  await first.putMerchant(rotated);
  await first.putPayer(p);
  await first.putPayer(rotatedPayer);
  await first.close();
  const second = await FileDirectory.open({ file });
  t.deepEqual(await second.findMerchantByApiKeyHash(m.apiKeyHash), rotated);
  t.deepEqual(await second.findMerchantByApiKeyHash(rotated.apiKeyHash), rotated);
  t.deepEqual(await second.findPayerByTokenHash(p.tokenHash), rotatedPayer);
  await second.close();
});

test('file directory: a missing file opens empty; the file is written only on a put', async (t) => {
  const file = path.join(dataDir, 'empty.json');
  const dir = await FileDirectory.open({ file });
  t.is(await dir.getPayer(payer().id), undefined);
  t.false(fs.existsSync(file));
  await dir.close();
});

test('memory directory refuses records beyond payersMax and merchantsMax', async (t) => {
  const dir = new MemoryDirectory({ payersMax: 1, merchantsMax: 1 });
  const p = payer();
  await dir.putPayer(p);
  await t.throwsAsync(dir.putPayer(payer()), { instanceOf: StoreFullError, message: /payersMax=1/ });
  await dir.putPayer({ ...p, displayName: 'Ada L.' });
  await dir.putMerchant(merchant());
  await t.throwsAsync(dir.putMerchant(merchant()), { instanceOf: StoreFullError, message: /merchantsMax=1/ });
});
