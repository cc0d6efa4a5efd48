import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnrollmentService } from '../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { grpcJsClient } from '../support/grpc-js-client.js';
import { healthCheck } from '../support/reflection.js';

const cli = fileURLToPath(new URL('../../services/cli.ts', import.meta.url));
/** Bounds on the child: start-up, output and shutdown, milliseconds. */
const startMsMax = 30_000;
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
  await ledger.client.fundAccount({ idempotencyKey: 'f', accountId: payer.payer!.prepaidAccountIds['USD']!, amount: 100_00n, currency: 'USD' });
  const shop = grpcJsClient(PaymentService, address, merchant.apiKey);
  await shop.client.createPayment({ idempotencyKey: 'o', payer: { case: 'payerId', value: payer.payer!.id }, amount: 5_00n, currency: 'USD', description: '' });
  // The bridge's console channel is the SMS stand-in: the message names the phone and carries the code.
  const sms = await served.waitFor(/\+14155550199.*code \d{8}/);
  t.truthy(sms[0]);
  [admin, ledger, shop].forEach((c) => c.close());
  await stop(t, served);
});
