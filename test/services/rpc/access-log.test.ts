import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createContextValues } from '@connectrpc/connect';
import test from 'ava';
import pino from 'pino';
import { GetPaymentRequestSchema, PaymentService } from '../../../gen/countersign/v1/payments_pb.js';
import { logging } from '../../../services/rpc/interceptors.js';
import { capturingLogger } from './fixtures.js';

// The access log interceptor alone, with a real pino logger: what it writes at each level.

type Next = Parameters<ReturnType<typeof logging>>[0];

function request() {
  const method = PaymentService.method.getPayment;
  return {
    service: PaymentService,
    method,
    requestMethod: 'POST',
    url: 'http://test/countersign.v1.PaymentService/GetPayment',
    signal: new AbortController().signal,
    header: new Headers(),
    contextValues: createContextValues(),
    stream: false as const,
    message: create(GetPaymentRequestSchema, { paymentId: 'p' }),
  };
}

const ok: Next = async (req) =>
  ({
    service: req.service,
    method: req.method,
    header: new Headers(),
    trailer: new Headers(),
    stream: false,
    message: create(GetPaymentRequestSchema),
  }) as never;
const refused: Next = async () => {
  throw new ConnectError('no such payment', Code.NotFound);
};

test('at info: successes only in the per-method summary, a failure as it ends', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = logging(capturingLogger(lines), { summaryIntervalMs: 60_000 });
  for (let i = 0; i < 3; i++) await log(ok)(request() as never);
  await t.throwsAsync(log(refused)(request() as never));
  t.deepEqual(
    lines.map((l) => [l.msg, l.code]),
    [['rpc', 'not_found']],
  );
  log.flush();
  t.deepEqual(
    lines.map((l) => [l.msg, l.method, l.code, l.calls]),
    [
      ['rpc', 'countersign.v1.PaymentService/GetPayment', 'not_found', undefined],
      ['rpc summary', 'countersign.v1.PaymentService/GetPayment', 'ok', 3],
    ],
  );
});

test('at debug: every success has its own line too; summaryIntervalMs 0 sums after each RPC', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const logger = capturingLogger(lines);
  logger.level = 'debug';
  const log = logging(logger, { summaryIntervalMs: 0 });
  await log(ok)(request() as never);
  await log(ok)(request() as never);
  t.deepEqual(
    lines.map((l) => [l.msg, l.level, l.calls]),
    [
      ['rpc', pino.levels.values.debug, undefined],
      ['rpc summary', pino.levels.values.info, 1],
      ['rpc', pino.levels.values.debug, undefined],
      ['rpc summary', pino.levels.values.info, 1],
    ],
  );
});
