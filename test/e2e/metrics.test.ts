import { createSocket } from 'node:dgram';
import test from 'ava';
import { key, newMerchant, newPayer, secondCode, startEnv } from './harness.js';

/** How long to wait for the last UDP packets after the flow, milliseconds. */
const packetWaitMs = 300;

test('StatsD gets RPC latency, backend latency and payment outcomes per state and factor', async (t) => {
  const socket = createSocket('udp4');
  const lines: string[] = [];
  socket.on('message', (m) => lines.push(...m.toString().split('\n')));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => socket.close());
  const env = await startEnv('connect', 'memory', {}, { statsd: `127.0.0.1:${socket.address().port}` });
  t.teardown(() => env.close());

  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const p = (
    await shop.api.payments.createPayment({
      idempotencyKey: key('m'),
      payer: { case: 'payerId', value: payer.id },
      amount: 20_00n,
      currency: 'USD',
      description: '',
    })
  ).payment!;
  const code = secondCode(payer, env.inbox.firstCodeFor(p.id)!, 20_00n, shop.account);
  await payer.api.payer.confirmPayment({ idempotencyKey: key('m'), paymentId: p.id, proof: { case: 'secondCode', value: code } });
  await new Promise((resolve) => setTimeout(resolve, packetWaitMs));

  const has = (re: RegExp) =>
    t.true(
      lines.some((l) => re.test(l)),
      `${re} in ${lines.length} lines`,
    );
  has(/^countersign\.rpc\.latency:[\d.]+\|ms\|#.*method:countersign\.v1\.PaymentService\/CreatePayment.*code:ok/);
  has(/^countersign\.rpc\.count:1\|c\|#.*method:countersign\.v1\.PayerService\/ConfirmPayment/);
  has(/^countersign\.backend\.latency:[\d.]+\|ms\|#backend:embedded-ledger,op:createTransfers,outcome:ok/);
  has(/^countersign\.backend\.latency:[\d.]+\|ms\|#backend:memory,op:confirm,outcome:ok/);
  has(/^countersign\.payment\.state:1\|c\|#state:challenged,factors:second_code,currency:USD/);
  has(/^countersign\.payment\.state:1\|c\|#state:succeeded,factors:second_code,currency:USD/);
  t.false(
    lines.some((l) => l.includes(code)),
    'no code in a metric',
  );
});
