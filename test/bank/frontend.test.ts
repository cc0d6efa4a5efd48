import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import test from 'ava';
import { pino } from 'pino';
import { type BankKey, BankRequestError, BankUnavailableError, type CardPaymentRequest } from '../../authz/ports.js';
import { BankDecision, BankFrontEndService } from '../../gen/countersign/v1/bank_pb.js';
import { GrpcBankGateway } from '../../services/bank/bank-client.js';
import { startBankServer } from '../../services/bank/bank-server.js';
import { keyIdOf, openEnvelope } from '../../services/bank/envelope.js';
import { BankFrontEnd, bankKeyLifetimeMs } from '../../services/bank/frontend.js';
import { generateX25519KeyPair } from '../../services/bank/hpke.js';
import type { RunningServer } from '../../services/rpc/grpc-host.js';
import { healthCheck, reflect } from '../support/reflection.js';
import { cardRecords, merchantId, payment, paymentId, request, type TestCard, testCards, unknownPan, wrongPin } from './support.js';

/**
 * The bank front-end in process, served on a real gRPC server on port 0, called through the
 * real GrpcBankGateway (and a raw connect client for exact status codes). Serial: the tests
 * read balances.
 */

const keys = generateX25519KeyPair();
const logLines: string[] = [];
const pinBlocksSeen: string[] = [];
let bank: BankFrontEnd;
let server: RunningServer;
let gateway: GrpcBankGateway;
let bankKey: BankKey;

test.before(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  bank = new BankFrontEnd({ privateKey: keys.privateKey, cards: await cardRecords(Object.values(testCards) as TestCard[]), logger, now: Date.now });
  server = await startBankServer({ bank, host: '127.0.0.1', port: 0, logger });
  gateway = new GrpcBankGateway({ address: `127.0.0.1:${server.port}`, bankDeadlineMs: 5_000, now: Date.now });
  bankKey = await gateway.publicKey();
});

test.after.always(async () => {
  await gateway?.close();
  await server?.close();
});

/** Seals and authorizes through the gateway, remembering the PIN block hex for the log check. */
async function pay(p: ReturnType<typeof payment>, card: { pan: string; expiry: string }, pin: string, relayed?: Partial<CardPaymentRequest>) {
  const req = await request(bankKey, p, card, pin);
  await rememberPinBlock(req);
  return gateway.authorize({ ...req, ...relayed });
}

async function rememberPinBlock(req: CardPaymentRequest): Promise<void> {
  const opened = await openEnvelope(keys.privateKey, req.envelope, {
    id: req.paymentId,
    merchantId: req.merchantId,
    amount: req.amount,
    currency: req.currency,
  });
  if (opened.ok) pinBlocksSeen.push(opened.value.plaintext.pinBlock);
}

test.serial('GetPublicKey: key id = SHA-256 prefix of the key, the envelope suite, valid for a day', (t) => {
  t.is(bankKey.keyId, bank.keyId);
  t.is(bankKey.keyId, keyIdOf(keys.publicKey));
  t.deepEqual(bankKey.publicKey, keys.publicKey);
  t.is(bankKey.suite, 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM');
  t.true(bankKey.expiresAtMs > Date.now() + bankKeyLifetimeMs - 60 * 60 * 1000);
  t.true(bankKey.expiresAtMs <= Date.now() + bankKeyLifetimeMs);
});

test.serial('the right PIN is approved with an authorization code and the available amount goes down', async (t) => {
  const decision = await pay(payment(2_500n), testCards.rich, testCards.rich.pin);
  t.like(decision, { decision: 'APPROVED', reasonCode: '00' });
  t.regex(decision.decision === 'APPROVED' ? decision.authorizationCode : '', /^[0-9A-Z]{6}$/);
  t.is(bank.availableOf(testCards.rich.pan, 'EUR'), 97_500n);
  t.is(bank.availableOf(testCards.rich.pan, 'USD'), 50_000n);
});

test.serial('a 19-digit PAN with an 8-digit PIN; a right PIN resets the wrong-PIN count', async (t) => {
  const c = testCards.long;
  t.like(await pay(payment(100n), c, wrongPin), { decision: 'DECLINED', reasonCode: '55' });
  t.like(await pay(payment(100n), c, wrongPin), { decision: 'DECLINED', reasonCode: '55' });
  t.like(await pay(payment(100n), c, c.pin), { decision: 'APPROVED', reasonCode: '00' });
  t.like(await pay(payment(100n), c, wrongPin), { decision: 'DECLINED', reasonCode: '55' });
  t.is(bank.availableOf(c.pan, 'EUR'), 99_900n);
});

test.serial('wrong PIN: 55, 55, then 75 on the third; afterwards even the right PIN gets 75 and no money moves', async (t) => {
  const c = testCards.tries;
  t.like(await pay(payment(1_000n), c, wrongPin), { decision: 'DECLINED', reasonCode: '55', reason: 'incorrect PIN' });
  t.like(await pay(payment(1_000n), c, wrongPin), { decision: 'DECLINED', reasonCode: '55' });
  t.like(await pay(payment(1_000n), c, wrongPin), { decision: 'DECLINED', reasonCode: '75' });
  t.like(await pay(payment(1_000n), c, c.pin), { decision: 'DECLINED', reasonCode: '75' });
  t.is(bank.availableOf(c.pan, 'EUR'), 100_000n);
});

test.serial('an unknown card is 14', async (t) => {
  t.like(await pay(payment(1_000n), { pan: unknownPan, expiry: '3012' }, '1234'), { decision: 'DECLINED', reasonCode: '14' });
});

test.serial('an expired card is 54, and so is an expiry other than the card of record', async (t) => {
  t.like(await pay(payment(1_000n), testCards.expired, testCards.expired.pin), { decision: 'DECLINED', reasonCode: '54', reason: 'expired card' });
  t.like(await pay(payment(1_000n), { pan: testCards.rich.pan, expiry: '2912' }, testCards.rich.pin), { decision: 'DECLINED', reasonCode: '54' });
  t.is(bank.availableOf(testCards.expired.pan, 'EUR'), 100_000n);
});

test.serial('insufficient funds is 51 (also in a currency the card has none of); exactly the available amount is approved', async (t) => {
  const c = testCards.poor;
  t.like(await pay(payment(501n), c, c.pin), { decision: 'DECLINED', reasonCode: '51' });
  t.like(await pay(payment(100n, 'USD'), c, c.pin), { decision: 'DECLINED', reasonCode: '51' });
  t.like(await pay(payment(500n), c, c.pin), { decision: 'APPROVED' });
  t.is(bank.availableOf(c.pan, 'EUR'), 0n);
  t.like(await pay(payment(1n), c, c.pin), { decision: 'DECLINED', reasonCode: '51' });
});

test.serial('a blocked card is 62', async (t) => {
  t.like(await pay(payment(1_000n), testCards.blocked, testCards.blocked.pin), { decision: 'DECLINED', reasonCode: '62' });
});

test.serial('an envelope sealed for another amount, merchant or payment is declined 12 and moves nothing', async (t) => {
  const before = bank.availableOf(testCards.rich.pan, 'EUR')!;
  const p = payment(2_500n);
  t.like(await pay(p, testCards.rich, testCards.rich.pin, { amount: 2_501n }), { decision: 'DECLINED', reasonCode: '12', reason: 'invalid transaction' });
  t.like(await pay(payment(2_500n), testCards.rich, testCards.rich.pin, { merchantId: '00000000000000000000000000000001' }), {
    decision: 'DECLINED',
    reasonCode: '12',
  });
  t.like(await pay(payment(2_500n), testCards.rich, testCards.rich.pin, { paymentId: paymentId() }), { decision: 'DECLINED', reasonCode: '12' });
  t.is(bank.availableOf(testCards.rich.pan, 'EUR'), before);
});

test.serial('the same idempotency key twice (and concurrently) gets the same decision and moves the money once', async (t) => {
  const c = testCards.idem;
  const req = await request(bankKey, payment(6_000n), c, c.pin);
  await rememberPinBlock(req);
  const [first, concurrent] = await Promise.all([gateway.authorize(req), gateway.authorize(req)]);
  const again = await gateway.authorize(req);
  t.like(first, { decision: 'APPROVED' });
  t.deepEqual(concurrent, first);
  t.deepEqual(again, first);
  t.is(bank.availableOf(c.pan, 'EUR'), 4_000n);
  // The same payment with a re-sealed envelope is another request under the same key.
  const resealed = await request(bankKey, { id: req.paymentId, merchantId, amount: 6_000n, currency: 'EUR' }, c, c.pin);
  await t.throwsAsync(gateway.authorize(resealed), { instanceOf: BankRequestError, message: /ALREADY_EXISTS|AlreadyExists/ });
  // A wrong PIN is remembered too: its retry is the same 55, not a second try.
  const wrong = await request(bankKey, payment(1n), c, wrongPin);
  await rememberPinBlock(wrong);
  t.like(await gateway.authorize(wrong), { reasonCode: '55' });
  t.like(await gateway.authorize(wrong), { reasonCode: '55' });
  t.like(await pay(payment(4_000n), c, c.pin), { decision: 'APPROVED' });
  t.is(bank.availableOf(c.pan, 'EUR'), 0n);
});

test.serial('malformed requests are INVALID_ARGUMENT, an unknown key id FAILED_PRECONDITION; the gateway throws BankRequestError', async (t) => {
  const sessions = new Http2SessionManager(`http://127.0.0.1:${server.port}`);
  const raw = createClient(BankFrontEndService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}`, sessionManager: sessions }));
  t.teardown(() => sessions.abort());
  const p = payment(100n);
  const good = await request(bankKey, p, testCards.rich, testCards.rich.pin);
  const wire = { idempotencyKey: p.id, paymentId: p.id, merchantId, amount: p.amount, currency: 'EUR', keyId: bankKey.keyId, envelope: good.envelope };
  const code = async (patch: object) => {
    const error = await t.throwsAsync(raw.authorizeCardPayment({ ...wire, ...patch }, { timeoutMs: 5_000 }));
    return ConnectError.from(error).code;
  };
  t.is(await code({ paymentId: 'not-hex' }), Code.InvalidArgument);
  t.is(await code({ idempotencyKey: '' }), Code.InvalidArgument);
  t.is(await code({ amount: 0n }), Code.InvalidArgument);
  t.is(await code({ currency: 'eur' }), Code.InvalidArgument);
  t.is(await code({ envelope: undefined }), Code.InvalidArgument);
  t.is(await code({ keyId: 'ffffffffffffffff' }), Code.InvalidArgument, 'key_id differs from envelope.key_id');
  t.is(await code({ envelope: { ...good.envelope, nonce: new Uint8Array(11) } }), Code.InvalidArgument);
  t.is(await code({ envelope: { ...good.envelope, ciphertext: new Uint8Array(1025) } }), Code.InvalidArgument);
  t.is(await code({ envelope: { ...good.envelope, suite: 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM' } }), Code.InvalidArgument);
  t.is(await code({ keyId: 'ffffffffffffffff', envelope: { ...good.envelope, keyId: 'ffffffffffffffff' } }), Code.FailedPrecondition);

  await t.throwsAsync(gateway.authorize({ ...good, paymentId: 'not-hex' }), { instanceOf: BankRequestError });
  await t.throwsAsync(gateway.authorize({ ...good, envelope: { ...good.envelope, keyId: 'ffffffffffffffff' } }), { instanceOf: BankRequestError });
  t.is(bank.availableOf(testCards.rich.pan, 'EUR'), 97_500n, 'nothing moved');
});

test.serial('the decision log names cards by their last 4 digits; no PAN, PIN or PIN block anywhere', (t) => {
  const log = logLines.join('');
  t.true(log.includes('…1111'), 'decisions are logged');
  t.true(pinBlocksSeen.length >= 20);
  for (const c of Object.values(testCards)) {
    t.false(log.includes(c.pan), `PAN …${c.pan.slice(-4)} leaked`);
    t.false(log.includes(c.pin), 'a PIN leaked');
  }
  t.false(log.includes(unknownPan));
  t.false(log.includes(wrongPin));
  for (const block of pinBlocksSeen) t.false(log.toLowerCase().includes(block.toLowerCase()), 'a PIN block leaked');
});

test.serial('the decision of an approved payment is on the wire as APPROVED with its code', async (t) => {
  const sessions = new Http2SessionManager(`http://127.0.0.1:${server.port}`);
  t.teardown(() => sessions.abort());
  const raw = createClient(BankFrontEndService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}`, sessionManager: sessions }));
  const p = payment(1n);
  const req = await request(bankKey, p, testCards.rich, testCards.rich.pin);
  const res = await raw.authorizeCardPayment(
    { idempotencyKey: 'k1', paymentId: p.id, merchantId, amount: 1n, currency: 'EUR', keyId: bankKey.keyId, envelope: req.envelope },
    { timeoutMs: 5_000 },
  );
  t.is(res.decision, BankDecision.APPROVED);
  t.is(res.reasonCode, '00');
  t.regex(res.authorizationCode, /^[0-9A-Z]{6}$/);
});

test('the gateway caches the public key; once the bank is gone, calls fail closed with BankUnavailableError', async (t) => {
  const logger = pino({ level: 'silent' });
  const own = new BankFrontEnd({ privateKey: generateX25519KeyPair().privateKey, cards: await cardRecords([testCards.rich]), logger, now: Date.now });
  const ownServer = await startBankServer({ bank: own, host: '127.0.0.1', port: 0, logger });
  const g = new GrpcBankGateway({ address: `127.0.0.1:${ownServer.port}`, bankDeadlineMs: 2_000, now: Date.now });
  t.teardown(() => g.close());
  const key = await g.publicKey();
  await ownServer.close();
  t.is(await g.publicKey(), key, 'served from the cache');
  await t.throwsAsync(g.authorize(await request(key, payment(1n), testCards.rich, testCards.rich.pin)), { instanceOf: BankUnavailableError });
  const fresh = new GrpcBankGateway({ address: `127.0.0.1:${ownServer.port}`, bankDeadlineMs: 2_000, now: Date.now });
  t.teardown(() => fresh.close());
  await t.throwsAsync(fresh.publicKey(), { instanceOf: BankUnavailableError });
  await g.close();
  await t.throwsAsync(g.publicKey(), { instanceOf: BankUnavailableError, message: /closed/ });
});

test('the bank server answers grpc.health.v1 and lists BankFrontEndService through reflection', async (t) => {
  t.deepEqual(await healthCheck(server.port, 'countersign.v1.BankFrontEndService'), { code: 0, status: 'SERVING' });
  const listed = await reflect(server.port, 'v1', { listServices: '' });
  t.true(listed.listServicesResponse?.service.some((s) => s.name === 'countersign.v1.BankFrontEndService'));
});
