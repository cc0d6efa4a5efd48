import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { balance, type Merchant, newMerchant, newPayer, type Payer, startEnv } from '../e2e/harness.js';
import { healthCheck } from '../support/reflection.js';

// The example plugin as its own process (`countersign authorizer-velocity`), called by a real
// countersign authz over gRPC.

const repo = fileURLToPath(new URL('../../', import.meta.url));
/**
 * `npx tsx services/cli.ts …` as one process: node with tsx's loader, so SIGTERM reaches the
 * plugin itself (npx does not pass it on, and would leave the server orphaned).
 */
const cli = (args: string[]) =>
  spawn(process.execPath, ['--import=tsx', 'services/cli.ts', 'authorizer-velocity', ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, COUNTERSIGN_LOG_LEVEL: 'warn' },
  });
/** Bounds on the child, milliseconds: start-up (tsx compiles on a loaded machine) and shutdown. */
const startMsMax = 60_000;
const stopMsMax = 15_000;
/** Generous: the plugin answers, a loaded machine must not turn that into a failure. */
const answeringDeadlineMs = 5_000;
const amount = 50n; // below the test policy's no-factor threshold: the built-in policy allows it

interface Plugin {
  child: ChildProcess;
  port: number;
  output: () => string;
}

async function startVelocity(t: ExecutionContext, args: string[]): Promise<Plugin> {
  const child = cli(args);
  t.teardown(() => void child.kill('SIGKILL'));
  let output = '';
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within ${startMsMax} ms: ${output}`)), startMsMax);
    const take = (d: Buffer) => {
      output += d.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`exited ${code} before ready: ${output}`))));
  });
  return { child, port: await ready, output: () => output };
}

async function stop(plugin: Plugin): Promise<number | null | 'timeout'> {
  if (plugin.child.exitCode !== null) return plugin.child.exitCode;
  const exit = new Promise<number | null>((resolve) => plugin.child.once('exit', (code) => resolve(code)));
  plugin.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), stopMsMax)));
  const code = await Promise.race([exit, late]);
  clearTimeout(timer);
  return code;
}

const pay = (shop: Merchant, payer: Payer, idempotencyKey: string) =>
  shop.api.payments.createPayment({ idempotencyKey, payer: { case: 'payerId', value: payer.id }, amount, currency: 'USD', description: 'velocity' });

test('authorizer-velocity: two payments an hour go through without a factor, the third needs the configured one; retries count once', async (t) => {
  const plugin = await startVelocity(t, ['--port', '0', '--max-per-hour', '2', '--factor', 'SMS_OTP']);
  t.deepEqual(await healthCheck(plugin.port, 'countersign.v1.AuthorizerService'), { code: 0, status: 'SERVING' });
  const env = await startEnv(
    'grpc-js',
    'memory',
    {},
    { authorizers: [{ name: 'velocity', address: `127.0.0.1:${plugin.port}` }], authorizerDeadlineMs: answeringDeadlineMs },
  );
  t.teardown(() => env.close());
  const [payer, other, shop] = await Promise.all([newPayer(env), newPayer(env), newMerchant(env)]);

  const first = (await pay(shop, payer, 'order-1')).payment!;
  t.deepEqual([first.state, first.requiredFactors], [PaymentState.SUCCEEDED, []]);
  const retried = (await pay(shop, payer, 'order-1')).payment!;
  t.deepEqual([retried.id, retried.state], [first.id, PaymentState.SUCCEEDED], 'the retry is the same payment');
  const second = (await pay(shop, payer, 'order-2')).payment!;
  t.deepEqual([second.state, second.requiredFactors], [PaymentState.SUCCEEDED, []], 'the retry did not count as a second request');
  const third = (await pay(shop, payer, 'order-3')).payment!;
  t.deepEqual([third.state, third.requiredFactors], [PaymentState.CHALLENGED, [Factor.SMS_OTP]]);
  t.deepEqual(
    await balance(env, payer.account),
    { available: 500_00n - 2n * amount, posted: 500_00n - 2n * amount, reserved: 0n, credited: 500_00n },
    'two posted; the challenged third holds nothing',
  );

  const elsewhere = (await pay(shop, other, 'order-4')).payment!;
  t.deepEqual([elsewhere.state, elsewhere.requiredFactors], [PaymentState.SUCCEEDED, []], 'each payer is counted apart');

  t.is(await stop(plugin), 0, plugin.output());
});

test('authorizer-velocity refuses bad options with a clear message', async (t) => {
  const child = cli(['--max-per-hour', '0']);
  t.teardown(() => void child.kill('SIGKILL'));
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c))),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), startMsMax))),
  ]);
  clearTimeout(timer);
  t.is(code, 2, output);
  t.regex(output, /countersign authorizer-velocity: --max-per-hour must be an integer 1\.\.10000, got "0"; see countersign authorizer-velocity --help/);
});
