import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { pino } from 'pino';
import { BankRequestError, BankUnavailableError, type CardPaymentRequest } from '../../authz/ports.js';
import { BankDecision, BankFrontEndService } from '../../gen/countersign/v1/bank_pb.js';
import { GrpcBankGateway } from '../../services/bank/bank-client.js';
import { freePort } from '../../services/net.js';
import { type RunningServer, startGrpcServer } from '../../services/rpc/grpc-host.js';

/**
 * GrpcBankGateway against a test-double bank on a real gRPC server: every answer that is not a
 * well-formed decision fails closed (BankUnavailableError), refusals are BankRequestError, and
 * a bank that does not answer is cut off by the gateway's deadline.
 */

/** Longest a hanging handler waits if the client's cancel never arrives (bounded). */
const hangBoundMs = 10_000;
const logger = pino({ level: 'silent' });

type Behaviour = 'approved' | 'approved-without-code' | 'unspecified' | 'declined' | 'internal' | 'unavailable' | 'invalid' | 'precondition' | 'hang';

function fakeBank(keyBytes: number): ServiceImpl<typeof BankFrontEndService> {
  return {
    async authorizeCardPayment(req, context) {
      const behaviour = req.paymentId as Behaviour;
      switch (behaviour) {
        case 'approved':
          return { decision: BankDecision.APPROVED, reasonCode: '00', reason: 'approved', authorizationCode: 'A1B2C3' };
        case 'approved-without-code':
          return { decision: BankDecision.APPROVED, reasonCode: '00', reason: 'approved' };
        case 'unspecified':
          return { reasonCode: '00' };
        case 'declined':
          return { decision: BankDecision.DECLINED, reasonCode: '05', reason: 'do not honour' };
        case 'internal':
          throw new ConnectError('boom', Code.Internal);
        case 'unavailable':
          throw new ConnectError('maintenance', Code.Unavailable);
        case 'invalid':
          throw new ConnectError('bad field', Code.InvalidArgument);
        case 'precondition':
          throw new ConnectError('unknown key', Code.FailedPrecondition);
        case 'hang':
          await new Promise((resolve) => {
            const timer = setTimeout(resolve, hangBoundMs);
            context.signal.addEventListener('abort', () => (clearTimeout(timer), resolve(undefined)));
          });
          return { decision: BankDecision.APPROVED, reasonCode: '00', reason: 'too late', authorizationCode: 'LATE00' };
      }
      throw new Error(`unknown behaviour ${behaviour}`);
    },
    getPublicKey() {
      return {
        keyId: 'k1',
        suite: 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM',
        publicKey: new Uint8Array(keyBytes),
        expiresAt: timestampFromMs(Date.now() + 24 * 60 * 60 * 1000),
      };
    },
  };
}

function serve(keyBytes: number): Promise<RunningServer> {
  return startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    services: [{ service: BankFrontEndService, impl: fakeBank(keyBytes) }],
    interceptors: [],
    credentials: grpc.ServerCredentials.createInsecure(),
    logger,
    shutdownGraceMs: 1_000,
  });
}

let good: RunningServer;
let badKey: RunningServer;
test.before(async () => {
  [good, badKey] = await Promise.all([serve(32), serve(31)]);
});
test.after.always(async () => {
  await Promise.all([good?.close(), badKey?.close()]);
});

function gatewayFor(server: RunningServer | { port: number }, bankDeadlineMs = 2_000): GrpcBankGateway {
  return new GrpcBankGateway({ address: `127.0.0.1:${server.port}`, bankDeadlineMs, now: Date.now });
}

function req(behaviour: Behaviour): CardPaymentRequest {
  const envelope = { suite: 's', keyId: 'k1', ephemeralPublicKey: new Uint8Array(32), nonce: new Uint8Array(12), ciphertext: new Uint8Array(40) };
  return { paymentId: behaviour, merchantId: 'm', amount: 1n, currency: 'EUR', envelope };
}

test('a decision is passed on; an approval without a code or a missing decision fails closed', async (t) => {
  const g = gatewayFor(good);
  t.teardown(() => g.close());
  t.deepEqual(await g.authorize(req('approved')), { decision: 'APPROVED', reasonCode: '00', reason: 'approved', authorizationCode: 'A1B2C3' });
  t.deepEqual(await g.authorize(req('declined')), { decision: 'DECLINED', reasonCode: '05', reason: 'do not honour' });
  await t.throwsAsync(g.authorize(req('approved-without-code')), { instanceOf: BankUnavailableError });
  await t.throwsAsync(g.authorize(req('unspecified')), { instanceOf: BankUnavailableError });
});

test('INTERNAL and UNAVAILABLE fail closed; INVALID_ARGUMENT and FAILED_PRECONDITION are refusals', async (t) => {
  const g = gatewayFor(good);
  t.teardown(() => g.close());
  await t.throwsAsync(g.authorize(req('internal')), { instanceOf: BankUnavailableError });
  await t.throwsAsync(g.authorize(req('unavailable')), { instanceOf: BankUnavailableError });
  await t.throwsAsync(g.authorize(req('invalid')), { instanceOf: BankRequestError, message: /InvalidArgument.*bad field/ });
  await t.throwsAsync(g.authorize(req('precondition')), { instanceOf: BankRequestError, message: /FailedPrecondition/ });
});

test('a bank that does not answer is cut off by the deadline (DEADLINE_EXCEEDED → BankUnavailableError)', async (t) => {
  const g = gatewayFor(good, 200);
  t.teardown(() => g.close());
  const error = await t.throwsAsync(g.authorize(req('hang')), { instanceOf: BankUnavailableError });
  t.is(ConnectError.from(error?.cause).code, Code.DeadlineExceeded);
});

test('a malformed public key fails closed; a refused connection is BankUnavailableError', async (t) => {
  const g = gatewayFor(badKey);
  t.teardown(() => g.close());
  await t.throwsAsync(g.publicKey(), { instanceOf: BankUnavailableError, message: /malformed/ });
  const nobody = gatewayFor({ port: await freePort() });
  t.teardown(() => nobody.close());
  const error = await t.throwsAsync(nobody.authorize(req('approved')), { instanceOf: BankUnavailableError });
  t.is(ConnectError.from(error?.cause).code, Code.Unavailable);
});

test('the public key is fetched once and cached until shortly before it expires', async (t) => {
  let nowMs = Date.now();
  const g = new GrpcBankGateway({ address: `127.0.0.1:${good.port}`, bankDeadlineMs: 2_000, now: () => nowMs });
  t.teardown(() => g.close());
  const [a, b] = await Promise.all([g.publicKey(), g.publicKey()]);
  t.is(a, b);
  t.is(await g.publicKey(), a);
  nowMs = a.expiresAtMs; // past the refresh margin: fetched again
  const c = await g.publicKey();
  t.not(c, a);
  t.deepEqual(c.publicKey, a.publicKey);
});
