import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { base32Decode } from '../../authz/codes/secret.js';
import { Channel, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { EnrollmentService } from '../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { grpcJsClient } from '../support/grpc-js-client.js';
import { healthCheck } from '../support/reflection.js';

const cli = fileURLToPath(new URL('../../services/cli.ts', import.meta.url));
/** Bounds on the child: start-up, output and shutdown, milliseconds. */
const startMsMax = 90_000;
const stopMsMax = 10_000;

interface Served {
  child: ChildProcess;
  port: number;
  dataDir: string;
  output: () => string;
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
}

async function serve(t: ExecutionContext, args: string[], env: Record<string, string> = {}): Promise<Served> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-serve-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  return serveIn(t, dataDir, args, env);
}

/** `countersign serve` on an existing data directory (a restart). */
async function serveIn(t: ExecutionContext, dataDir: string, args: string[] = [], env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(process.execPath, ['--import=tsx', cli, 'serve', ...args], {
    env: { ...process.env, COUNTERSIGN_DATA_DIR: dataDir, COUNTERSIGN_GRPC_PORT: '0', COUNTERSIGN_CONNECT_PORT: '0', COUNTERSIGN_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let output = '';
  const listeners = new Set<() => void>();
  const take = (d: Buffer) => {
    output += d.toString();
    listeners.forEach((l) => l());
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(output);
        if (match) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(match);
        }
      };
      const timer = setTimeout(() => reject(new Error(`no ${pattern} in ${startMsMax} ms: ${output}`)), startMsMax);
      listeners.add(check);
      check();
    });
  const port = Number((await waitFor(/gRPC \(grpc-js\)\s+127\.0\.0\.1:(\d+)/))[1]);
  return { child, port, dataDir, output: () => output, waitFor };
}

async function stop(t: ExecutionContext, served: Served): Promise<void> {
  const exit = new Promise<number | null>((resolve) => served.child.once('exit', (code) => resolve(code)));
  served.child.kill('SIGTERM');
  const code = await Promise.race([exit, new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), stopMsMax))]);
  t.is(code, 0, served.output());
}

test('countersign serve starts on embedded defaults, answers health and RPCs, and stops cleanly on SIGTERM', async (t) => {
  const served = await serve(t, []);
  t.deepEqual(await healthCheck(served.port, ''), { code: 0, status: 'SERVING' });
  const adminKey = readFileSync(join(served.dataDir, 'admin.key'), 'utf8').trim();
  const { client, close } = grpcJsClient(EnrollmentService, `127.0.0.1:${served.port}`, adminKey);
  const merchant = await client.enrollMerchant({ idempotencyKey: 'serve-test', name: 'Shop', currencies: ['USD'], feeBasisPoints: 0 });
  close();
  t.regex(merchant.apiKey, /^cs_live_/);
  await stop(t, served);
  t.true(readFileSync(join(served.dataDir, 'directory.json'), 'utf8').includes(merchant.merchantId), 'the directory was persisted');
});

test('countersign serve --with-bridge runs the telco bridge in process: a first code leaves through it', async (t) => {
  const served = await serve(t, ['--with-bridge'], { COUNTERSIGN_TELCO_PORT: '0', COUNTERSIGN_WEBHOOK_PORT: '0' });
  t.regex(served.output(), /telco\s+bridge in process: gRPC 127\.0\.0\.1:\d+/);
  const adminKey = readFileSync(join(served.dataDir, 'admin.key'), 'utf8').trim();
  const address = `127.0.0.1:${served.port}`;
  const admin = grpcJsClient(EnrollmentService, address, adminKey);
  const ledger = grpcJsClient(LedgerService, address, adminKey);
  const merchant = await admin.client.enrollMerchant({ idempotencyKey: 'm', name: 'Shop', currencies: ['USD'], feeBasisPoints: 0 });
  const payer = await admin.client.enrollPayer({ idempotencyKey: 'p', phone: '+14155550199', displayName: 'P', currencies: ['USD'] });
  await ledger.client.fundAccount({ idempotencyKey: 'f', accountId: payer.payer!.prepaidAccountIds.USD!, amount: 100_00n, currency: 'USD' });
  const shop = grpcJsClient(PaymentService, address, merchant.apiKey);
  await shop.client.createPayment({ idempotencyKey: 'o', payer: { case: 'payerId', value: payer.payer!.id }, amount: 5_00n, currency: 'USD', description: '' });
  // The bridge's console channel is the SMS stand-in: the message names the phone and carries the code.
  const sms = await served.waitFor(/\+14155550199.*code \d{8}/);
  t.truthy(sms[0]);
  [admin, ledger, shop].forEach((c) => c.close());
  await stop(t, served);
});

/** Kills the child at once (kill -9): nothing gets to flush or close. */
async function kill9(served: Served): Promise<void> {
  const exit = new Promise<void>((resolve) => served.child.once('exit', () => resolve()));
  served.child.kill('SIGKILL');
  await exit;
}

test('embedded defaults keep every acknowledged payment across kill -9: the same key gives the same payment, both read SUCCEEDED, the payer is debited once', async (t) => {
  const first = await serve(t, []);
  const adminKey = readFileSync(join(first.dataDir, 'admin.key'), 'utf8').trim();
  const connect = (port: number) => {
    const address = `127.0.0.1:${port}`;
    const admin = grpcJsClient(EnrollmentService, address, adminKey);
    const ledger = grpcJsClient(LedgerService, address, adminKey);
    return { address, admin, ledger, close: () => [admin, ledger].forEach((c) => c.close()) };
  };
  const one = connect(first.port);
  const merchant = await one.admin.client.enrollMerchant({ idempotencyKey: 'm', name: 'Shop', currencies: ['USD'], feeBasisPoints: 0 });
  const policy = { currency: 'USD', noFactorBelow: 30_00n, oneFactorUpTo: 1000_00n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] };
  const enrolled = await one.admin.client.enrollPayer({
    idempotencyKey: 'p',
    phone: '+14155550177',
    displayName: 'P',
    currencies: ['USD'],
    policies: [policy],
  });
  const payerAccount = enrolled.payer!.prepaidAccountIds.USD!;
  await one.ledger.client.fundAccount({ idempotencyKey: 'f', accountId: payerAccount, amount: 100_00n, currency: 'USD' });
  const shop = grpcJsClient(PaymentService, one.address, merchant.apiKey);
  const terminal = grpcJsClient(PayerService, one.address, enrolled.payerToken);
  const frictionless = {
    idempotencyKey: 'K',
    payer: { case: 'payerId' as const, value: enrolled.payer!.id },
    amount: 25_00n,
    currency: 'USD',
    description: 'coffee',
    channel: Channel.APP,
  };
  const a = (await shop.client.createPayment(frictionless)).payment!;
  t.is(a.state, PaymentState.SUCCEEDED);
  const b = (await shop.client.createPayment({ ...frictionless, idempotencyKey: 'K2', amount: 40_00n, description: 'lunch' })).payment!;
  t.is(b.state, PaymentState.CHALLENGED);
  const { firstCode, payeeAccountId } = await terminal.client.getChallenge({ paymentId: b.id });
  const secret = base32Decode(enrolled.verificationSecretBase32);
  const secondCode = deriveSecondCode(secret, { firstCode, amount: 40_00n, currency: 'USD', payeeAccountId });
  t.is(
    (await terminal.client.confirmPayment({ idempotencyKey: 'C', paymentId: b.id, proof: { case: 'secondCode', value: secondCode } })).payment!.state,
    PaymentState.SUCCEEDED,
  );
  [shop, terminal].forEach((c) => c.close());
  one.close();
  await kill9(first);

  const second = await serveIn(t, first.dataDir);
  const two = connect(second.port);
  const shop2 = grpcJsClient(PaymentService, two.address, merchant.apiKey);
  const again = (await shop2.client.createPayment(frictionless)).payment!;
  t.is(again.id, a.id, 'the same key returns the same payment after kill -9');
  t.is(again.state, PaymentState.SUCCEEDED);
  t.is((await shop2.client.getPayment({ paymentId: b.id })).payment!.state, PaymentState.SUCCEEDED);
  const listed = (await shop2.client.listPayments({})).payments.map((p) => p.id).sort();
  t.deepEqual(listed, [a.id, b.id].sort());
  const account = (await two.ledger.client.getAccount({ accountId: payerAccount })).account!;
  t.is(account.debitsPosted, 65_00n, 'debited once per payment: 25.00 + 40.00');
  t.is(account.debitsPending, 0n);
  shop2.close();
  two.close();
  await stop(t, second);
});

test('serve --workers refuses embedded data with a message naming the fix', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-serve-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import=tsx', cli, 'serve', '--workers', '2'], {
    env: { ...process.env, COUNTERSIGN_DATA_DIR: dataDir, COUNTERSIGN_REDIS_URL: '', COUNTERSIGN_REDIS_CLUSTER: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.is(code, 1);
  t.regex(output, /--workers needs the payment store in Redis \(COUNTERSIGN_REDIS_URL or COUNTERSIGN_REDIS_CLUSTER\).*one process per data directory/);
  t.notRegex(output, /\n\s+at /, 'a message, not a stack trace');
});
