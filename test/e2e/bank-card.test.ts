import { Code, ConnectError } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { DeclineReason, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { startBankServer } from '../../services/bank/bank-server.js';
import { demoCards } from '../../services/bank/cards.js';
import { sealCard } from '../../services/bank/envelope.js';
import { BankFrontEnd } from '../../services/bank/frontend.js';
import { generateX25519KeyPair } from '../../services/bank/hpke.js';
import type { RunningServer } from '../../services/rpc/grpc-host.js';
import { ErrorInfoSchema } from '../../services/rpc/status-details.js';
import { balance, type Env, key, type Merchant, newMerchant, newPayer, type Payer, startEnv } from './harness.js';

// M5 over real sockets: merchant → countersign (pay number or phone) → the payer's terminal
// fetches the challenge with the bank's key, seals card + PIN for the bank, countersign relays
// the envelope unopened to the reference bank front-end (gRPC), which decides. Money comes from
// the bank settlement account. Demo cards: services/bank/README.md.

const goodCard = { pan: '4000000000000002', expiry: '3012' };
const poorCard = { pan: '4000000000000010', expiry: '3012' };
const pin = '1234';

interface World {
  env: Env;
  bank: RunningServer;
  bankLogs: string[];
  bankAddress: string;
}

async function startWorld(): Promise<World> {
  const bankLogs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void bankLogs.push(line) });
  const bankFrontEnd = new BankFrontEnd({ privateKey: generateX25519KeyPair().privateKey, cards: await demoCards(), logger, now: Date.now });
  const bank = await startBankServer({ bank: bankFrontEnd, host: '127.0.0.1', port: 0, logger });
  const bankAddress = `127.0.0.1:${bank.port}`;
  const env = await startEnv('grpc-js', 'redis', {}, { bank: bankAddress, bankDeadlineMs: 1_000 });
  return { env, bank, bankLogs, bankAddress };
}

let shared: Promise<World> | undefined;
const worldOf = () => (shared ??= startWorld());
test.after.always(async () => {
  if (shared === undefined) return;
  const w = await shared;
  await w.env.close();
  await w.bank.close();
});

async function parties(env: Env): Promise<{ payer: Payer; shop: Merchant }> {
  // The payer's own policy asks nothing up to 1000.00: the card and PIN are the whole proof.
  const [payer, shop] = await Promise.all([newPayer(env, 0n, { noFactorBelow: 1000_00n, oneFactorUpTo: 1000_00n }), newMerchant(env)]);
  return { payer, shop };
}

/** The payer's terminal: reads the challenge (with the bank key) and seals the card for exactly this payment. */
async function sealFor(payer: Payer, paymentId: string, card = goodCard, cardPin = pin) {
  const challenge = await payer.api.payer.getChallenge({ paymentId });
  const bankKey = challenge.bankKey!;
  const payment = (await payer.api.payer.listPendingPayments({ payerId: payer.id })).payments.find((p) => p.id === paymentId)!;
  return sealCard({
    bankKey,
    payment: { id: paymentId, merchantId: payment.merchantId, amount: challenge.amount, currency: challenge.currency },
    card,
    pin: cardPin,
  });
}

const cardPayment = (shop: Merchant, payer: { case: 'payNumber' | 'payerPhone' | 'payerId'; value: string }, amount = 120_00n) =>
  shop.api.payments.createPayment({
    idempotencyKey: key('m5'),
    payer,
    amount,
    currency: 'USD',
    description: 'Headphones',
    requestedFactors: [Factor.BANK_CARD_PIN],
  });

const confirmCard = (payer: Payer, paymentId: string, envelope: Awaited<ReturnType<typeof sealFor>>) =>
  payer.api.payer.confirmPayment({ idempotencyKey: key('card'), paymentId, proof: { case: 'bankCard', value: envelope } });

/** Every key and value in the Redis the test environment uses, as text. */
async function dumpRedis(url: string): Promise<string> {
  const redis = new Redis(url);
  try {
    const keys = await redis.keys('*');
    const values = await Promise.all(
      keys.map(async (k) => {
        const type = await redis.type(k);
        if (type === 'string') return (await redis.get(k)) ?? '';
        if (type === 'hash') return JSON.stringify(await redis.hgetall(k));
        if (type === 'zset') return JSON.stringify(await redis.zrange(k, '0', '-1'));
        if (type === 'set') return JSON.stringify(await redis.smembers(k));
        if (type === 'list') return JSON.stringify(await redis.lrange(k, 0, -1));
        return type;
      }),
    );
    return keys.map((k, i) => `${k} ${values[i]}`).join('\n');
  } finally {
    redis.disconnect();
  }
}

async function reason(t: ExecutionContext, call: Promise<unknown>, code: Code): Promise<string> {
  const e = ConnectError.from(await t.throwsAsync(call));
  t.is(Code[e.code], Code[code], e.rawMessage);
  return (e.findDetails(ErrorInfoSchema)[0] as { reason?: string } | undefined)?.reason ?? '';
}

test('M5: a pay number → the bank approves the right PIN → SUCCEEDED, paid from the bank settlement account, seen on the watch stream', async (t) => {
  const { env } = await worldOf();
  const { payer, shop } = await parties(env);
  const issued = await payer.api.enrollment.issuePayNumber({ idempotencyKey: key('pn'), payerId: payer.id, ttlSeconds: 60 });
  t.regex(issued.payNumber, /^\d{12}$/);
  const watch = shop.api.payments.watchPayments({}, { signal: AbortSignal.timeout(20_000) });
  const p = (await cardPayment(shop, { case: 'payNumber', value: issued.payNumber })).payment!;
  t.deepEqual([p.state, p.requiredFactors], [PaymentState.CHALLENGED, [Factor.BANK_CARD_PIN]]);
  const done = (await confirmCard(payer, p.id, await sealFor(payer, p.id))).payment!;
  t.is(done.state, PaymentState.SUCCEEDED);
  t.regex(done.bankAuthorizationCode, /^\w{6}$/);
  for await (const update of watch) if (update.payment?.id === p.id && update.payment.state === PaymentState.SUCCEEDED) break;
  t.is((await balance(env, shop.account)).posted, 120_00n - 1_20n, 'the merchant got the amount less its fee');
  t.deepEqual(await balance(env, payer.account), { available: 0n, posted: 0n, reserved: 0n, credited: 0n }, "the payer's prepaid account is untouched");
  // Single use: the number is spent, for this merchant and any other.
  t.is(await reason(t, cardPayment(shop, { case: 'payNumber', value: issued.payNumber }), Code.NotFound), 'NOT_FOUND');
});

test('M5: a wrong PIN is declined by the bank, and no money moved or was held', async (t) => {
  const { env } = await worldOf();
  const { payer, shop } = await parties(env);
  const p = (await cardPayment(shop, { case: 'payerId', value: payer.id })).payment!;
  const envelope = await sealFor(payer, p.id, goodCard, '9999');
  const declined = (await confirmCard(payer, p.id, envelope)).payment!;
  t.deepEqual([declined.state, declined.declineReason], [PaymentState.DECLINED, DeclineReason.BANK_DECLINED]);
  t.regex(declined.declineDetail, /^bank: 55 /);
  t.is((await balance(env, shop.account)).posted, 0n);
  const settlement = (await env.admin.ledger.listAccountTransfers({ accountId: shop.account })).transfers;
  t.deepEqual(settlement, [], 'nothing reserved (no money is held before consent) and nothing posted');
});

test("M5: an envelope sealed for another amount does not open at the bank; insufficient funds on the card is the bank's decline", async (t) => {
  const { env } = await worldOf();
  const { payer, shop } = await parties(env);
  const a = (await cardPayment(shop, { case: 'payerId', value: payer.id }, 10_00n)).payment!;
  const b = (await cardPayment(shop, { case: 'payerId', value: payer.id }, 11_00n)).payment!;
  const forA = await sealFor(payer, a.id);
  const replayed = (await confirmCard(payer, b.id, forA)).payment!;
  t.deepEqual(
    [replayed.state, replayed.declineReason],
    [PaymentState.DECLINED, DeclineReason.BANK_DECLINED],
    'an envelope of payment A never approves payment B',
  );
  const c = (await cardPayment(shop, { case: 'payerId', value: payer.id }, 10_00n)).payment!;
  const poor = (await confirmCard(payer, c.id, await sealFor(payer, c.id, poorCard))).payment!;
  t.deepEqual([poor.state, poor.declineReason], [PaymentState.DECLINED, DeclineReason.BANK_DECLINED]);
  t.regex(poor.declineDetail, /^bank: 51 /);
});

test('M5: malformed envelopes are INVALID_ARGUMENT and leave the payment waiting; no bank configured → the factor is unavailable', async (t) => {
  const { env } = await worldOf();
  const { payer, shop } = await parties(env);
  const p = (await cardPayment(shop, { case: 'payerId', value: payer.id })).payment!;
  const good = await sealFor(payer, p.id);
  await reason(t, confirmCard(payer, p.id, { ...good, nonce: new Uint8Array(3) }), Code.InvalidArgument);
  await reason(t, confirmCard(payer, p.id, { ...good, ciphertext: new Uint8Array(5000) }), Code.InvalidArgument);
  t.is((await shop.api.payments.getPayment({ paymentId: p.id })).payment!.state, PaymentState.CHALLENGED);
  t.is((await confirmCard(payer, p.id, good)).payment!.state, PaymentState.SUCCEEDED);
  const plain = await startEnv('grpc-js', 'memory');
  t.teardown(() => plain.close());
  const other = await parties(plain);
  t.is(await reason(t, cardPayment(other.shop, { case: 'payerId', value: other.payer.id }), Code.FailedPrecondition), 'FACTOR_UNAVAILABLE');
});

test('M5: no PAN, PIN or PIN block reaches countersign logs, Redis or the ledger', async (t) => {
  const { env, bankLogs } = await worldOf();
  const { payer, shop } = await parties(env);
  const p = (await cardPayment(shop, { case: 'payerPhone', value: (await payer.api.enrollment.getPayer({ payerId: payer.id })).payer!.phone })).payment!;
  t.is((await confirmCard(payer, p.id, await sealFor(payer, p.id))).payment!.state, PaymentState.SUCCEEDED);
  const dump = await dumpRedis(env.redis!.url);
  const everything = [
    env.logs.join('\n'),
    dump,
    JSON.stringify((await env.admin.ledger.listAccountTransfers({ accountId: shop.account })).transfers, (_, v) => (typeof v === 'bigint' ? String(v) : v)),
  ].join('\n');
  for (const secret of [goodCard.pan, poorCard.pan, goodCard.pan.slice(-10)]) t.false(everything.includes(secret), 'no card number');
  t.false(/"pin"|pinBlock/i.test(everything), 'no PIN fields');
  t.false(bankLogs.join('\n').includes(goodCard.pan), "the bank's own logs mask the card number too");
});

test('M5: the bank front-end down → UNAVAILABLE and nothing held; the payment is declined, not left hanging', async (t) => {
  const logger = pino({ level: 'silent' });
  const bankFrontEnd = new BankFrontEnd({ privateKey: generateX25519KeyPair().privateKey, cards: await demoCards(), logger, now: Date.now });
  const bank = await startBankServer({ bank: bankFrontEnd, host: '127.0.0.1', port: 0, logger });
  const env = await startEnv('grpc-js', 'memory', {}, { bank: `127.0.0.1:${bank.port}`, bankDeadlineMs: 500 });
  t.teardown(() => env.close());
  const { payer, shop } = await parties(env);
  const p = (await cardPayment(shop, { case: 'payerId', value: payer.id })).payment!;
  const envelope = await sealFor(payer, p.id);
  await bank.close();
  t.is(await reason(t, confirmCard(payer, p.id, envelope), Code.Unavailable), 'AUTHORIZER_UNAVAILABLE');
  const after = (await shop.api.payments.getPayment({ paymentId: p.id })).payment!;
  t.deepEqual([after.state, after.declineReason], [PaymentState.DECLINED, DeclineReason.AUTHORIZER_UNAVAILABLE]);
  const transfers = (await env.admin.ledger.listAccountTransfers({ accountId: shop.account })).transfers;
  t.deepEqual(transfers, [], 'no transfer: nothing was held, nothing moved');
});
