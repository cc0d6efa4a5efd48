import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnrollmentService } from '../../gen/countersign/v1/enrollment_pb.js';
import { grpcJsClient } from '../support/grpc-js-client.js';
import { healthCheck } from '../support/reflection.js';

const cli = fileURLToPath(new URL('../../services/cli.ts', import.meta.url));
/** Bounds on the child: start-up and shutdown, milliseconds. */
const startMsMax = 30_000;
const stopMsMax = 10_000;

test('countersign serve starts on embedded defaults, answers health and RPCs, and stops cleanly on SIGTERM', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-serve-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import=tsx', cli, 'serve'], {
    env: { ...process.env, COUNTERSIGN_DATA_DIR: dataDir, COUNTERSIGN_GRPC_PORT: '0', COUNTERSIGN_CONNECT_PORT: '0', COUNTERSIGN_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let output = '';
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in ${startMsMax} ms: ${output}`)), startMsMax);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      const match = /gRPC \(grpc-js\)\s+127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
  t.deepEqual(await healthCheck(port, ''), { code: 0, status: 'SERVING' });
  const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  const { client, close } = grpcJsClient(EnrollmentService, `127.0.0.1:${port}`, adminKey);
  const merchant = await client.enrollMerchant({ idempotencyKey: 'serve-test', name: 'Shop', currencies: ['USD'], feeBasisPoints: 0 });
  close();
  t.regex(merchant.apiKey, /^cs_live_/);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const code = await Promise.race([exit, new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), stopMsMax))]);
  t.is(code, 0, output);
  t.true(readFileSync(join(dataDir, 'directory.json'), 'utf8').includes(merchant.merchantId), 'the directory was persisted');
});
