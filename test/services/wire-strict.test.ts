import * as http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { create, toBinary } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import test from 'ava';
import { Channel, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { EnrollMerchantRequestSchema } from '../../gen/countersign/v1/enrollment_pb.js';
import { CreatePaymentRequestSchema } from '../../gen/countersign/v1/payments_pb.js';
import { messageBytesMax } from '../../services/rpc/grpc-host.js';
import { balance, type Env, key, type Merchant, newMerchant, newPayer, type Payer, startEnv } from '../e2e/harness.js';
import { envelope } from '../reliability/http2-frames.js';

// Issue 15, finding 6: wire integers out of range and non-decimal JSON numbers are
// INVALID_ARGUMENT naming the field, on the grpc-js port and on the Connect port (gRPC and
// Connect protocols, binary, JSON and gzip), and nothing is created or moved. Requests are
// hand-built bytes on a raw node:http2 client: typed clients cannot send these values.

/** Bound on one raw exchange, milliseconds. */
const exchangeMsMax = 10_000;
const createPaymentPath = '/countersign.v1.PaymentService/CreatePayment';
const enrollMerchantPath = '/countersign.v1.EnrollmentService/EnrollMerchant';
/** The payer's funds; payments below noFactorBelow succeed at once (no code), as in the report. */
const funds = 500_00n;
const noFactorBelow = 100_00n;

interface Answer {
  status: number;
  /** grpc-status and grpc-message from headers or trailers (gRPC); undefined for Connect unary. */
  grpcStatus: number | undefined;
  grpcMessage: string;
  body: Buffer;
}

function post(port: number, path: string, headers: Record<string, string>, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => (session.destroy(), reject(new Error(`no answer from ${path} in ${exchangeMsMax} ms`))), exchangeMsMax);
    session.on('error', (e) => (clearTimeout(timer), reject(e)));
    const stream = session.request({ ':method': 'POST', ':path': path, ...headers });
    const answer: Answer = { status: 0, grpcStatus: undefined, grpcMessage: '', body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h[':status'] !== undefined) answer.status = Number(h[':status']);
      if (h['grpc-status'] !== undefined) answer.grpcStatus = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) answer.grpcMessage = decodeURIComponent(String(h['grpc-message']));
    };
    stream.on('response', take);
    stream.on('trailers', take);
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('error', (e) => (clearTimeout(timer), session.destroy(), reject(e)));
    stream.on('close', () => {
      clearTimeout(timer);
      answer.body = Buffer.concat(chunks);
      session.close();
      resolve(answer);
    });
    stream.end(body);
  });
}

const grpcHeaders = (apiKey: string, extra: Record<string, string> = {}) => ({
  'content-type': 'application/grpc',
  te: 'trailers',
  authorization: `Bearer ${apiKey}`,
  ...extra,
});
const connectHeaders = (apiKey: string, contentType: string, extra: Record<string, string> = {}) => ({
  'content-type': contentType,
  'connect-protocol-version': '1',
  authorization: `Bearer ${apiKey}`,
  ...extra,
});

function varint(value: bigint): number[] {
  const bytes: number[] = [];
  while (value >= 0x80n) {
    bytes.push(Number(value & 0x7fn) | 0x80);
    value >>= 7n;
  }
  bytes.push(Number(value));
  return bytes;
}

/** 11 bytes: ten continuation bytes, then 1. */
const elevenByteVarint = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
const wrapsTo1000 = varint(2n ** 64n + 1000n);

/** A CreatePaymentRequest without its amount, then field 6 (amount, varint) as the given raw bytes. */
function createPaymentBytes(payer: Payer, amountVarint: number[]): Buffer {
  const rest = toBinary(
    CreatePaymentRequestSchema,
    create(CreatePaymentRequestSchema, {
      idempotencyKey: key('raw'),
      payer: { case: 'payerId', value: payer.id },
      currency: 'USD',
      description: 'raw',
      channel: Channel.APP,
    }),
  );
  return Buffer.concat([Buffer.from(rest), Buffer.from([0x30, ...amountVarint])]);
}

function createPaymentJson(payer: Payer, amount: string, channel = '"CHANNEL_APP"'): Buffer {
  return Buffer.from(
    `{"idempotencyKey": ${JSON.stringify(key('json'))}, "payerId": ${JSON.stringify(payer.id)}, "currency": "USD", "description": "json", "channel": ${channel}, "amount": ${amount}}`,
  );
}

interface World {
  env: Env;
  merchant: Merchant;
  payer: Payer;
}

async function world(t: { teardown(fn: () => Promise<void>): void }): Promise<World> {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  return { env, merchant: await newMerchant(env), payer: await newPayer(env, funds, { noFactorBelow }) };
}

/** Every payment the merchant has, by amount; and the payer's balance. */
async function traces(w: World) {
  const payments = (await w.merchant.api.payments.listPayments({ pageSize: 1000 })).payments.map((p) => `${PaymentState[p.state]} ${p.amount}`);
  return { payments, payer: await balance(w.env, w.payer.account) };
}

const untouched = { payments: [], payer: { available: funds, posted: funds, reserved: 0n, credited: funds } };

for (const port of ['grpc-js', 'connect'] as const) {
  test(`gRPC on the ${port} port: a CreatePayment amount varint of 11 bytes or over 64 bits (2^64 + 1000) is INVALID_ARGUMENT naming amount; nothing is created or moved`, async (t) => {
    const w = await world(t);
    const portNumber = port === 'grpc-js' ? w.env.grpcPort : w.env.connectPort;
    for (const [what, amount] of [
      ['11-byte varint', elevenByteVarint],
      ['2^64 + 1000', wrapsTo1000],
    ] as const) {
      const answer = await post(portNumber, createPaymentPath, grpcHeaders(w.merchant.apiKey), envelope(createPaymentBytes(w.payer, [...amount])));
      t.is(answer.grpcStatus, Code.InvalidArgument, `${what}: ${answer.grpcMessage}`);
      t.regex(answer.grpcMessage, /^amount: /, what);
    }
    t.deepEqual(await traces(w), untouched);
    // The same request with a sound amount goes through: only the amount made the difference.
    const control = await post(portNumber, createPaymentPath, grpcHeaders(w.merchant.apiKey), envelope(createPaymentBytes(w.payer, varint(1000n))));
    t.is(control.grpcStatus, 0, control.grpcMessage);
    t.deepEqual((await traces(w)).payments, ['SUCCEEDED 1000']);
  });
}

test('both ports: a uint32 above 2^32 - 1 (fee_basis_points = 2^32 + 100) is INVALID_ARGUMENT naming the field, not a fee of 100', async (t) => {
  const w = await world(t);
  const request = toBinary(EnrollMerchantRequestSchema, create(EnrollMerchantRequestSchema, { idempotencyKey: key('m'), name: 'Wrap', currencies: ['USD'] }));
  const bytes = Buffer.concat([Buffer.from(request), Buffer.from([0x20, ...varint(2n ** 32n + 100n)])]);
  for (const port of [w.env.grpcPort, w.env.connectPort]) {
    const answer = await post(port, enrollMerchantPath, grpcHeaders(w.env.app.adminKey), envelope(bytes));
    t.is(answer.grpcStatus, Code.InvalidArgument, answer.grpcMessage);
    t.is(answer.grpcMessage, 'fee_basis_points: 4294967396 out of range for uint32');
  }
});

test('the Connect port, Connect protocol: binary and gzip bodies with an amount over 64 bits, and gRPC envelopes compressed with gzip, are INVALID_ARGUMENT naming amount', async (t) => {
  const w = await world(t);
  const port = w.env.connectPort;
  const bytes = createPaymentBytes(w.payer, wrapsTo1000);
  const proto = await post(port, createPaymentPath, connectHeaders(w.merchant.apiKey, 'application/proto'), bytes);
  t.is(proto.status, 400);
  t.like(JSON.parse(proto.body.toString('utf8')), {
    code: 'invalid_argument',
    message: 'amount: integer out of range for uint64 (the varint encodes more than 64 bits)',
  });
  const gzipped = await post(port, createPaymentPath, connectHeaders(w.merchant.apiKey, 'application/proto', { 'content-encoding': 'gzip' }), gzipSync(bytes));
  t.is(gzipped.status, 400);
  t.like(JSON.parse(gzipped.body.toString('utf8')), { code: 'invalid_argument' });
  const grpcGzip = await post(
    port,
    createPaymentPath,
    grpcHeaders(w.merchant.apiKey, { 'grpc-encoding': 'gzip' }),
    envelope(gzipSync(bytes), { compressed: true }),
  );
  t.is(grpcGzip.grpcStatus, Code.InvalidArgument, grpcGzip.grpcMessage);
  t.regex(grpcGzip.grpcMessage, /^amount: /);
  t.deepEqual(await traces(w), untouched);
});

test('the Connect port, Connect JSON: amounts that are not an optional - and decimal digits, and an unknown channel name, are 400 invalid_argument naming the field', async (t) => {
  const w = await world(t);
  const port = w.env.connectPort;
  const cases: [string, string, string][] = [
    ['"0x10"', '"CHANNEL_APP"', 'amount: "0x10" is not a decimal integer'],
    ['"0b11"', '"CHANNEL_APP"', 'amount: "0b11" is not a decimal integer'],
    ['" 10"', '"CHANNEL_APP"', 'amount: " 10" is not a decimal integer'],
    ['"1e3"', '"CHANNEL_APP"', 'amount: "1e3" is not a decimal integer'],
    ['"+5"', '"CHANNEL_APP"', 'amount: "+5" is not a decimal integer'],
    ['1e3', '"CHANNEL_APP"', 'amount: 1e3 is not an integer'],
    ['10.0', '"CHANNEL_APP"', 'amount: 10.0 is not an integer'],
    ['"18446744073709552616"', '"CHANNEL_APP"', 'amount: "18446744073709552616" out of range for uint64'],
    ['9007199254740993', '"CHANNEL_APP"', 'amount: 9007199254740993 is beyond 2^53 - 1 as a JSON number'],
    ['"10"', '"CHANNEL_TELEPATHY"', 'channel: unknown countersign.v1.Channel value "CHANNEL_TELEPATHY"'],
    ['"10"', '99', 'channel has an unknown or unspecified value 99'], // carried like proto3's open enums, refused by the handler
  ];
  for (const [amount, channel, message] of cases) {
    const answer = await post(port, createPaymentPath, connectHeaders(w.merchant.apiKey, 'application/json'), createPaymentJson(w.payer, amount, channel));
    const error = JSON.parse(answer.body.toString('utf8')) as { code?: string; message?: string };
    t.is(answer.status, 400, `${amount} ${channel}`);
    t.is(error.code, 'invalid_argument', `${amount} ${channel}`);
    t.true(error.message?.startsWith(message), `${amount} ${channel}: ${error.message}`);
  }
  t.deepEqual(await traces(w), untouched);
  // Decimal digits, as a string or as a number, still work.
  for (const amount of ['"10"', '20']) {
    const answer = await post(port, createPaymentPath, connectHeaders(w.merchant.apiKey, 'application/json'), createPaymentJson(w.payer, amount));
    t.is(answer.status, 200, answer.body.toString('utf8'));
  }
  t.deepEqual((await traces(w)).payments.sort(), ['SUCCEEDED 10', 'SUCCEEDED 20']);
});

test('authentication comes first: a bad key with out-of-range input is UNAUTHENTICATED on every way in, and a body over the read limit is RESOURCE_EXHAUSTED', async (t) => {
  const w = await world(t);
  const bytes = createPaymentBytes(w.payer, wrapsTo1000);
  for (const port of [w.env.grpcPort, w.env.connectPort]) {
    const grpcAnswer = await post(port, createPaymentPath, grpcHeaders('cs_live_not-a-key'), envelope(bytes));
    t.is(grpcAnswer.grpcStatus, Code.Unauthenticated, `gRPC on ${port}: ${grpcAnswer.grpcMessage}`);
    // The same bytes that are not even a message (a length past the end) are no different.
    const garbage = await post(port, createPaymentPath, grpcHeaders('cs_live_not-a-key'), envelope(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])));
    t.is(garbage.grpcStatus, Code.Unauthenticated, `gRPC on ${port}, undecodable: ${garbage.grpcMessage}`);
  }
  for (const [type, body] of [
    ['application/proto', bytes],
    ['application/json', createPaymentJson(w.payer, '"0x10"')],
  ] as const) {
    const answer = await post(w.env.connectPort, createPaymentPath, connectHeaders('cs_live_not-a-key', type), body);
    t.is(answer.status, 401, type);
    t.like(JSON.parse(answer.body.toString('utf8')), { code: 'unauthenticated' });
    // With the merchant's key the same body is refused for what it is.
    const keyed = await post(w.env.connectPort, createPaymentPath, connectHeaders(w.merchant.apiKey, type), body);
    t.like(JSON.parse(keyed.body.toString('utf8')), { code: 'invalid_argument' });
  }
  for (const bytes of [messageBytesMax + 1, messageBytesMax + 1024]) {
    const oversize = await post(w.env.connectPort, createPaymentPath, connectHeaders(w.merchant.apiKey, 'application/proto'), Buffer.alloc(bytes));
    t.like(JSON.parse(oversize.body.toString('utf8')), { code: 'resource_exhausted' }, `${bytes} bytes`);
  }
  t.deepEqual(await traces(w), untouched);
});
