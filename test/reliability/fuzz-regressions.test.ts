import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { type EnrollMerchantResponse, EnrollmentService } from '../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { type BatchCreatePaymentsResponse, PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { createApp } from '../../services/app.js';
import { loadConfig } from '../../services/config.js';
import { errorBoundary, statusMessageCharsMax } from '../../services/rpc/interceptors.js';
import { ErrorInfoSchema } from '../../services/rpc/status-details.js';
import { startServers } from '../../services/server.js';
import { type Outcome, RpcClients } from './security-rpc.js';

// What the fuzzer found, kept fixed: each of these once stopped the process or hung every call
// on a connection. Real servers on port 0; the three ways in: grpc-js on the gRPC port, a
// grpc-js client on the Connect port (gRPC protocol), and the Connect protocol.

interface Served {
  adminKey: string;
  ways: [string, RpcClients, 'grpc-js' | 'connect'][];
}

async function serve(t: ExecutionContext): Promise<Served> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-fuzz-regress-'));
  const adminKey = `cs_admin_${randomBytes(12).toString('hex')}`;
  const app = await createApp({
    config: { ...loadConfig({}), dataDir, masterKey: randomBytes(32).toString('base64'), adminKey },
    memoryLedger: true,
    memoryDirectory: true,
    memoryStore: true,
    logger: pino({ level: 'silent' }),
  });
  const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0, tls: null });
  const grpcPort = new RpcClients(`127.0.0.1:${servers.grpcPort}`, `http://127.0.0.1:${servers.connectPort}`);
  const connectPortGrpc = new RpcClients(`127.0.0.1:${servers.connectPort}`, `http://127.0.0.1:${servers.connectPort}`);
  t.teardown(async () => {
    grpcPort.close();
    connectPortGrpc.close();
    await servers.close();
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    adminKey,
    ways: [
      ['gRPC port', grpcPort, 'grpc-js'],
      ['Connect port, gRPC protocol', connectPortGrpc, 'grpc-js'],
      ['Connect port, Connect protocol', grpcPort, 'connect'],
    ],
  };
}

const codeOf = (o: Outcome) => (o.ok ? 0 : o.code);

test('a batch whose later item is malformed answers every item and leaves no rejection unhandled', async (t) => {
  const s = await serve(t);
  const [, rpc] = s.ways[0]!;
  const shop = (await rpc.unary(
    'grpc-js',
    EnrollmentService,
    'enrollMerchant',
    { idempotencyKey: 'shop', name: 'Shop', currencies: ['USD'] },
    { key: s.adminKey },
  )) as Outcome & { ok: true };
  const key = (shop.value as EnrollMerchantResponse).apiKey;
  for (const [way, clients, wire] of s.ways) {
    // Item 0 fails asynchronously (no idempotency key); item 1 throws while its request is read (an unknown channel).
    const o = await clients.unary(
      wire,
      PaymentService,
      'batchCreatePayments',
      { idempotencyKey: 'batch', items: [{}, { idempotencyKey: 'i1', channel: 99 }] },
      { key },
    );
    t.true(o.ok, `${way}: ${o.ok ? '' : o.message}`);
    const results = (o as Outcome & { ok: true }).value as BatchCreatePaymentsResponse;
    t.deepEqual(
      results.results.map((r) => [r.index, r.outcome.case, r.outcome.case === 'error' ? r.outcome.value.code : 0]),
      [
        [0, 'error', Code.InvalidArgument],
        [1, 'error', Code.InvalidArgument],
      ],
      way,
    );
  }
});

test('a status message echoing text cut inside a surrogate pair is delivered (U+FFFD), on every way in', async (t) => {
  const s = await serve(t);
  const [, rpc] = s.ways[0]!;
  const shop = (await rpc.unary(
    'grpc-js',
    EnrollmentService,
    'enrollMerchant',
    { idempotencyKey: 'shop', name: 'Shop', currencies: ['USD'] },
    { key: s.adminKey },
  )) as Outcome & { ok: true };
  const key = (shop.value as EnrollMerchantResponse).apiKey;
  for (const [way, clients, wire] of s.ways) {
    // The currency is echoed cut to 8 UTF-16 units: "a" + three 𝒜 + half of the fourth.
    const o = await clients.unary(
      wire,
      PaymentService,
      'createPayment',
      { idempotencyKey: 'c', payer: { case: 'payerId', value: '0'.repeat(32) }, amount: 1n, currency: 'a\u{1D49C}\u{1D49C}\u{1D49C}\u{1D49C}' },
      { key },
    );
    t.is(codeOf(o), Code.InvalidArgument, way);
    t.true(!o.ok && o.message.includes('\uFFFD'), `${way}: ${o.ok ? '' : o.message}`);
  }
});

test('a request with a 100 kB id is refused with a short message, and the connection keeps serving', async (t) => {
  const s = await serve(t);
  for (const [way, clients, wire] of s.ways) {
    const [huge, beside] = await Promise.all([
      clients.unary(wire, EnrollmentService, 'getPayer', { payerId: 'y'.repeat(100_000) }, { key: s.adminKey }),
      clients.unary(wire, LedgerService, 'checkBalanced', {}, { key: s.adminKey }),
    ]);
    t.true([Code.NotFound, Code.InvalidArgument].includes(codeOf(huge) as Code), `${way}: ${codeOf(huge)}`);
    t.true(!huge.ok && huge.message.length <= statusMessageCharsMax + 1, `${way}: ${huge.ok ? '' : huge.message.length} characters`);
    t.is(codeOf(beside), 0, `${way}: a call on the same connection`);
  }
});

test('the error boundary cuts a status message to statusMessageCharsMax and keeps code and details', async (t) => {
  const details = [{ desc: ErrorInfoSchema, value: { reason: 'X', domain: 'countersign.v1', metadata: {} } }];
  const next = async (): Promise<never> => {
    throw new ConnectError(`payer ${'y'.repeat(100_000)} not found`, Code.NotFound, undefined, details as never);
  };
  const req = { method: { name: 'GetPayer', parent: { typeName: 'countersign.v1.EnrollmentService' } } } as never;
  const error = await t.throwsAsync(errorBoundary(pino({ level: 'silent' }))(next as never)(req));
  const mapped = ConnectError.from(error);
  t.is(mapped.code, Code.NotFound);
  t.is(mapped.rawMessage.length, statusMessageCharsMax + 1);
  t.true(mapped.rawMessage.endsWith('…'));
  t.is(mapped.details.length, 1, 'the ErrorInfo detail is kept');
});
