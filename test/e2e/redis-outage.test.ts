import { Code, ConnectError } from '@connectrpc/connect';
import test from 'ava';
import { startRedis, stopRedis } from '../support/redis.js';
import { key, newMerchant, newPayer, startEnv } from './harness.js';

/** How long the service may take to notice Redis is back (ioredis reconnects with back-off), milliseconds. */
const recoveryWaitMsMax = 15_000;

test('Redis down: calls fail UNAVAILABLE within the command deadline and move no money; the service recovers by itself', async (t) => {
  const env = await startEnv('connect', 'redis');
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const request = { idempotencyKey: key('outage'), payer: { case: 'payerId' as const, value: payer.id }, amount: 10_00n, currency: 'USD', description: '' };

  await stopRedis(env.redis!);
  const started = Date.now();
  const error = ConnectError.from(await t.throwsAsync(shop.api.payments.createPayment(request)));
  t.is(Code[error.code], Code[Code.Unavailable]);
  t.regex(error.rawMessage, /unavailable, retry later/);
  t.log(`UNAVAILABLE after ${Date.now() - started} ms`);
  const [account] = await env.app.ledger.lookupAccounts([BigInt(`0x${payer.account}`)]);
  t.deepEqual([account!.debits_pending, account!.debits_posted], [0n, 0n], 'nothing reserved or paid while Redis was down');

  // Redis comes back (empty: this test server keeps no data), and the same process serves again.
  const restarted = await startRedis({ port: env.redis!.port });
  t.teardown(() => restarted.stop());
  const deadline = Date.now() + recoveryWaitMsMax;
  for (;;) {
    try {
      const r = await env.admin.enrollment.enrollMerchant({ idempotencyKey: key('after'), name: 'Back', currencies: ['USD'], feeBasisPoints: 0 });
      t.is(r.merchantId.length, 32);
      break;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      t.is(Code[ConnectError.from(e).code], Code[Code.Unavailable], 'only UNAVAILABLE while reconnecting');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
});
