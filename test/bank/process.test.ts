import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Code, ConnectError } from '@connectrpc/connect';
import test from 'ava';
import { type BankKey, BankUnavailableError, type CardPaymentRequest } from '../../authz/ports.js';
import { GrpcBankGateway } from '../../services/bank/bank-client.js';
import { keyIdOf, openEnvelope } from '../../services/bank/envelope.js';
import { publicKeyOf } from '../../services/bank/hpke.js';
import { loadKeyFile } from '../../services/bank/key-file.js';
import { cardsFileText, payment, request, type TestCard, testCards, unknownPan, wrongPin } from './support.js';

/**
 * The real `countersign bank-frontend` process (services/cli.ts under tsx), with a cards file
 * and a key file, called through GrpcBankGateway: decisions, idempotency, a stopped bank (the
 * deadline), SIGTERM, a restart on the same key, a killed bank, and the process output checked
 * for PAN, PIN and PIN block.
 */

/** How long a started process has to print its ready line. */
const readyTimeoutMs = 60_000;
/** How long a signalled process has to exit before the test kills it. */
const exitTimeoutMs = 15_000;
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface BankProcess {
  child: ChildProcess;
  port: number;
  keyId: string;
  output(): string;
  exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => running.forEach((c) => c.kill('SIGKILL')));

function startBank(args: string[]): Promise<BankProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli.ts', 'bank-frontend', '--host', '127.0.0.1', '--port', '0', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, COUNTERSIGN_LOG_LEVEL: 'info' },
  });
  running.add(child);
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (running.delete(child), resolve(code))));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`bank-frontend not ready within ${readyTimeoutMs} ms:\n${out}`))), readyTimeoutMs);
    const check = () => {
      const m = /listening on 127\.0\.0\.1:(\d+)\s+key id ([0-9a-f]{16})/.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve({ child, port: Number(m[1]), keyId: m[2]!, output: () => out, exited });
    };
    child.stdout!.on('data', check);
    void exited.then((code) => (clearTimeout(timer), reject(new Error(`bank-frontend exited (${code}) before it was ready:\n${out}`))));
  });
}

async function stop(bank: BankProcess, signal: NodeJS.Signals): Promise<number | null> {
  bank.child.kill(signal);
  const timer = setTimeout(() => bank.child.kill('SIGKILL'), exitTimeoutMs);
  const code = await bank.exited;
  clearTimeout(timer);
  return code;
}

const dir = mkdtempSync(join(tmpdir(), 'cs-bank-'));
const cardsPath = join(dir, 'cards.json');
const keyPath = join(dir, 'bank.key');
const outputs: string[] = [];
const pinBlocks: string[] = [];
let bank: BankProcess;
let gateway: GrpcBankGateway;
let key: BankKey;
let privateKey: Uint8Array;

test.before(async () => {
  writeFileSync(cardsPath, await cardsFileText(Object.values(testCards) as TestCard[]));
  bank = await startBank(['--cards', cardsPath, '--key-file', keyPath]);
  gateway = new GrpcBankGateway({ address: `127.0.0.1:${bank.port}`, bankDeadlineMs: 5_000, now: Date.now });
  key = await gateway.publicKey();
  privateKey = loadKeyFile(keyPath);
});

test.after.always(async () => {
  await gateway?.close();
  if (bank !== undefined && bank.child.exitCode === null) await stop(bank, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function pay(p: ReturnType<typeof payment>, card: { pan: string; expiry: string }, pin: string, relayed: Partial<CardPaymentRequest> = {}) {
  const req = await request(key, p, card, pin);
  const opened = await openEnvelope(privateKey, req.envelope, p);
  if (opened.ok) pinBlocks.push(opened.value.plaintext.pinBlock);
  return gateway.authorize({ ...req, ...relayed });
}

test.serial('the key file is created 0600 and holds the key the process serves', (t) => {
  t.is(statSync(keyPath).mode & 0o777, 0o600);
  t.regex(readFileSync(keyPath, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
  t.is(keyIdOf(publicKeyOf(privateKey)), bank.keyId);
  t.is(key.keyId, bank.keyId);
  t.deepEqual(key.publicKey, publicKeyOf(privateKey));
});

test.serial('approved with the right PIN; the same payment twice is one decision and the money moves once', async (t) => {
  const c = testCards.idem; // 10,000 EUR available
  const p = payment(6_000n);
  const req = await request(key, p, c, c.pin);
  const opened = await openEnvelope(privateKey, req.envelope, p);
  if (opened.ok) pinBlocks.push(opened.value.plaintext.pinBlock);
  const first = await gateway.authorize(req);
  t.like(first, { decision: 'APPROVED', reasonCode: '00' });
  t.regex(first.decision === 'APPROVED' ? first.authorizationCode : '', /^[0-9A-Z]{6}$/);
  t.deepEqual(await gateway.authorize(req), first);
  // 4,000 left exactly: 4,001 is too much, 4,000 is approved, then nothing is left.
  t.like(await pay(payment(4_001n), c, c.pin), { decision: 'DECLINED', reasonCode: '51' });
  t.like(await pay(payment(4_000n), c, c.pin), { decision: 'APPROVED' });
  t.like(await pay(payment(1n), c, c.pin), { decision: 'DECLINED', reasonCode: '51' });
});

test.serial('wrong PINs: 55, 55, 75; then 75 even with the right PIN', async (t) => {
  const c = testCards.tries;
  t.like(await pay(payment(100n), c, wrongPin), { decision: 'DECLINED', reasonCode: '55' });
  t.like(await pay(payment(100n), c, wrongPin), { decision: 'DECLINED', reasonCode: '55' });
  t.like(await pay(payment(100n), c, wrongPin), { decision: 'DECLINED', reasonCode: '75' });
  t.like(await pay(payment(100n), c, c.pin), { decision: 'DECLINED', reasonCode: '75' });
});

test.serial('unknown card 14, expired 54, insufficient funds 51, an envelope for another amount 12', async (t) => {
  t.like(await pay(payment(100n), { pan: unknownPan, expiry: '3012' }, '4821'), { decision: 'DECLINED', reasonCode: '14' });
  t.like(await pay(payment(100n), testCards.expired, testCards.expired.pin), { decision: 'DECLINED', reasonCode: '54' });
  t.like(await pay(payment(501n), testCards.poor, testCards.poor.pin), { decision: 'DECLINED', reasonCode: '51' });
  const p = payment(2_500n);
  t.like(await pay(p, testCards.rich, testCards.rich.pin, { amount: 2_501n }), { decision: 'DECLINED', reasonCode: '12' });
  // The same card and PIN for the sealed amount are fine: only the amount was wrong.
  t.like(await pay(payment(2_500n), testCards.rich, testCards.rich.pin), { decision: 'APPROVED' });
});

test.serial('a stopped bank (SIGSTOP) is cut off by the deadline: BankUnavailableError; it answers again after SIGCONT', async (t) => {
  const impatient = new GrpcBankGateway({ address: `127.0.0.1:${bank.port}`, bankDeadlineMs: 500, now: Date.now });
  t.teardown(() => impatient.close());
  await impatient.publicKey(); // connected before the stop
  bank.child.kill('SIGSTOP');
  try {
    const error = await t.throwsAsync(impatient.authorize(await request(key, payment(1n), testCards.rich, testCards.rich.pin)), {
      instanceOf: BankUnavailableError,
    });
    t.is(ConnectError.from(error?.cause).code, Code.DeadlineExceeded);
  } finally {
    bank.child.kill('SIGCONT');
  }
  t.like(await pay(payment(1n), testCards.rich, testCards.rich.pin), { decision: 'APPROVED' });
});

test.serial('SIGTERM exits 0; restarted on the same key file it serves the same key; killed, it is BankUnavailableError', async (t) => {
  t.is(await stop(bank, 'SIGTERM'), 0);
  outputs.push(bank.output());
  await gateway.close();

  bank = await startBank(['--cards', cardsPath, '--key-file', keyPath]);
  t.regex(bank.output(), /loaded /);
  gateway = new GrpcBankGateway({ address: `127.0.0.1:${bank.port}`, bankDeadlineMs: 2_000, now: Date.now });
  t.is((await gateway.publicKey()).keyId, key.keyId);
  t.like(await pay(payment(100n), testCards.long, testCards.long.pin), { decision: 'APPROVED' });
  await stop(bank, 'SIGKILL');
  outputs.push(bank.output());
  const error = await t.throwsAsync(pay(payment(100n), testCards.long, testCards.long.pin), { instanceOf: BankUnavailableError });
  t.is(ConnectError.from(error?.cause).code, Code.Unavailable);
});

test.serial('the processes printed no PAN, PIN or PIN block; the decisions are logged by last 4 digits', (t) => {
  const all = outputs.join('\n');
  t.true(all.includes('card payment decided'));
  t.true(all.includes('…1111'));
  t.true(pinBlocks.length >= 15);
  for (const c of Object.values(testCards)) {
    t.false(all.includes(c.pan), `PAN …${c.pan.slice(-4)} printed`);
    t.false(all.includes(c.pin), 'a PIN printed');
  }
  t.false(all.includes(unknownPan));
  t.false(all.includes(wrongPin));
  const lower = all.toLowerCase();
  for (const block of pinBlocks) t.false(lower.includes(block.toLowerCase()), 'a PIN block printed');
});

test.serial('a key file others may read is refused', async (t) => {
  chmodSync(keyPath, 0o644);
  await t.throwsAsync(startBank(['--key-file', keyPath]), { message: /exited \(1\)[\s\S]*chmod 600/ });
});

test.serial('without --cards and --key-file: the demo table and a fresh key; 4000000000000002 / 1234 is approved', async (t) => {
  const demo = await startBank([]);
  t.teardown(async () => {
    if (demo.child.exitCode === null) await stop(demo, 'SIGKILL');
  });
  t.regex(demo.output(), /fresh key\)\s+4 cards \(demo table\)/);
  const g = new GrpcBankGateway({ address: `127.0.0.1:${demo.port}`, bankDeadlineMs: 5_000, now: Date.now });
  t.teardown(() => g.close());
  const demoKey = await g.publicKey();
  t.is(demoKey.keyId, demo.keyId);
  t.not(demoKey.keyId, key.keyId);
  t.like(await g.authorize(await request(demoKey, payment(2_500n, 'USD'), { pan: '4000000000000002', expiry: '3012' }, '1234')), {
    decision: 'APPROVED',
    reasonCode: '00',
  });
  t.like(await g.authorize(await request(demoKey, payment(2_500n, 'USD'), { pan: '4000000000000010', expiry: '3012' }, '1234')), {
    decision: 'DECLINED',
    reasonCode: '51',
  });
  t.is(await stop(demo, 'SIGTERM'), 0);
  t.false(demo.output().includes('4000000000000002'));
});
