import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test from 'ava';
import { loadOrCreateMasterKey, MasterKeyError, masterKeyFromBase64, masterKeyFromEnv, open, SecretBoxError, seal } from '../../../authz/codes/secret-box.js';

const masterKey = Buffer.alloc(32, 7);
const plaintext = Buffer.from('verification secret 0123456789', 'utf8');
const aad = 'payer:p-42:verification-secret';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'countersign-secret-box-'));
}

test('seal/open round trip, layout and fresh nonces', (t) => {
  const sealed = seal(masterKey, plaintext, aad);
  const raw = Buffer.from(sealed, 'base64');
  t.is(raw[0], 0x01);
  t.is(raw.length, 1 + 12 + plaintext.length + 16);
  t.deepEqual(open(masterKey, sealed, aad), plaintext);
  t.not(seal(masterKey, plaintext, aad), sealed);
});

test('open fails on a wrong key, a wrong aad, tampering and a wrong version', (t) => {
  const sealed = seal(masterKey, plaintext, aad);
  const err = { instanceOf: SecretBoxError };
  t.throws(() => open(Buffer.alloc(32, 8), sealed, aad), err);
  t.throws(() => open(masterKey, sealed, 'payer:p-43:verification-secret'), err);
  const raw = Buffer.from(sealed, 'base64');
  for (const index of [13, raw.length - 1, 5]) {
    const tampered = Buffer.from(raw);
    tampered[index] = (tampered[index] ?? 0) ^ 0x01;
    t.throws(() => open(masterKey, tampered.toString('base64'), aad), err);
  }
  const versioned = Buffer.from(raw);
  versioned[0] = 0x02;
  t.throws(() => open(masterKey, versioned.toString('base64'), aad), err);
  t.throws(() => open(masterKey, raw.subarray(0, 20).toString('base64'), aad), err);
});

test('the error message never includes the plaintext', (t) => {
  const sealed = seal(masterKey, plaintext, aad);
  const error = t.throws(() => open(Buffer.alloc(32, 9), sealed, aad), { instanceOf: SecretBoxError });
  t.false(error?.message.includes('verification secret'));
  t.false(error?.message.includes(plaintext.toString('base64')));
});

test('master keys must be 32 bytes', (t) => {
  t.throws(() => seal(Buffer.alloc(16), plaintext, aad), { instanceOf: MasterKeyError });
  t.throws(() => masterKeyFromBase64(Buffer.alloc(31).toString('base64')), { instanceOf: MasterKeyError });
  t.throws(() => masterKeyFromBase64('not base64 at all!'), { instanceOf: MasterKeyError });
  const key = randomBytes(32);
  t.deepEqual(masterKeyFromBase64(`${key.toString('base64')}\n`), key);
});

test('masterKeyFromEnv reads COUNTERSIGN_MASTER_KEY', (t) => {
  const key = randomBytes(32);
  t.deepEqual(masterKeyFromEnv({ COUNTERSIGN_MASTER_KEY: key.toString('base64') }), key);
  t.throws(() => masterKeyFromEnv({}), { instanceOf: MasterKeyError, message: /COUNTERSIGN_MASTER_KEY is not set/ });
});

test('loadOrCreateMasterKey creates a 0600 base64 key file and reloads the same key', (t) => {
  const dir = tempDir();
  const keyPath = path.join(dir, 'master.key');
  const key = loadOrCreateMasterKey(keyPath);
  t.is(key.length, 32);
  t.is(fs.statSync(keyPath).mode & 0o777, 0o600);
  t.is(fs.readFileSync(keyPath, 'utf8'), `${key.toString('base64')}\n`);
  t.deepEqual(loadOrCreateMasterKey(keyPath), key);
  t.deepEqual(fs.readdirSync(dir), ['master.key']);
  fs.rmSync(dir, { recursive: true });
});

test('loadOrCreateMasterKey refuses a key file readable by group or others', (t) => {
  const dir = tempDir();
  const keyPath = path.join(dir, 'master.key');
  fs.writeFileSync(keyPath, `${randomBytes(32).toString('base64')}\n`);
  fs.chmodSync(keyPath, 0o644);
  t.throws(() => loadOrCreateMasterKey(keyPath), { instanceOf: MasterKeyError, message: /mode 0644.*chmod 600/ });
  fs.chmodSync(keyPath, 0o640);
  t.throws(() => loadOrCreateMasterKey(keyPath), { instanceOf: MasterKeyError, message: /mode 0640/ });
  fs.rmSync(dir, { recursive: true });
});

test('sealed under a loaded key, opened after reload', (t) => {
  const dir = tempDir();
  const keyPath = path.join(dir, 'master.key');
  const sealed = seal(loadOrCreateMasterKey(keyPath), plaintext, aad);
  t.deepEqual(open(loadOrCreateMasterKey(keyPath), sealed, aad), plaintext);
  fs.rmSync(dir, { recursive: true });
});
