import { setTimeout as sleep } from 'node:timers/promises';
import { Code } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import type { RunningConnectServer } from '../../../services/rpc/connect-server.js';
import type { Outcome, PaymentCaller } from './callers.js';
import { type Harness, merchantKey, type ServerKind, startHarness, tcpHandles, tcpHandlesSettle, waitMsMax, within } from './fixtures.js';

/**
 * The end-to-end behaviour every (server, client) pair must show: a real HTTP/2 server on
 * 127.0.0.1 port 0, the same ServiceImpl and interceptor chain, and a teardown that proves no
 * connection leaked (close() resolves in bounded time, no HTTP/2 session and no TCP handle left).
 */

type MakeCaller = (port: number) => PaymentCaller;

export async function withServer(
  t: ExecutionContext,
  kind: ServerKind,
  makeCaller: MakeCaller,
  body: (h: Harness, caller: PaymentCaller) => Promise<void>,
): Promise<void> {
  const baseline = tcpHandles();
  const h = await startHarness(kind);
  const caller = makeCaller(h.port);
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      caller.close();
      await h.close();
    })());
  t.teardown(cleanup);
  await body(h, caller);
  await cleanup();
  if ('sessionCount' in h.server) t.is((h.server as RunningConnectServer).sessionCount(), 0, 'no HTTP/2 session left open');
  t.is(await tcpHandlesSettle(baseline), baseline, 'no TCP socket or listener left behind');
}

function failure<T>(t: ExecutionContext, outcome: Outcome<T>) {
  if (outcome.ok) {
    t.fail('expected an error status');
    throw new Error('expected an error status');
  }
  return outcome;
}

function success<T>(t: ExecutionContext, outcome: Outcome<T>) {
  if (!outcome.ok) {
    t.fail(`expected OK, got ${outcome.code} ${outcome.message}`);
    throw new Error('expected OK');
  }
  return outcome;
}

/** Waits (bounded) until `check` holds. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadlineAt = Date.now() + waitMsMax;
  while (!check()) {
    if (Date.now() > deadlineAt) throw new Error(`${what}: not within ${waitMsMax} ms`);
    await sleep(10);
  }
}

export function registerSuite(kind: ServerKind, callers: readonly MakeCaller[]): void {
  for (const makeCaller of callers) {
    const name = `${kind} server, ${makeCaller(0).name}`;
    // (makeCaller(0) only reads the name: neither client connects before its first call.)

    test.serial(`${name}: unary call echoes the id, the caller and a bigint amount`, (t) =>
      withServer(t, kind, makeCaller, async (_h, caller) => {
        const res = success(t, await caller.getPayment('0123456789abcdef0123456789abcdef', { key: merchantKey }));
        t.is(res.value.payment?.id, '0123456789abcdef0123456789abcdef');
        t.is(res.value.payment?.merchantId, 'merchant-1', 'the principal reached the implementation');
        t.is(res.value.payment?.amount, 12_345_678_901_234_567n);
        t.is(res.value.payment?.createdAt?.seconds, 1_700_000_000n);
        t.is(res.header.get('x-fixture'), 'get-payment', 'response headers reach the client');
      }),
    );

    test.serial(`${name}: server stream delivers 3 messages then ends`, (t) =>
      withServer(t, kind, makeCaller, async (_h, caller) => {
        const res = success(t, await caller.watchPayments('p', { key: merchantKey }));
        t.deepEqual(
          res.value.map((m) => [m.payment?.id, m.payment?.attemptsLeft]),
          [
            ['p-0', 0],
            ['p-1', 1],
            ['p-2', 2],
          ],
        );
      }),
    );

    test.serial(`${name}: errors keep their code; unmapped ones are INTERNAL "internal error"`, (t) =>
      withServer(t, kind, makeCaller, async (h, caller) => {
        const notFound = failure(t, await caller.cancelPayment('x', { key: merchantKey }));
        t.deepEqual([notFound.code, notFound.message], [Code.NotFound, 'payment not found']);
        const missing = failure(t, await caller.getPayment('missing', { key: merchantKey }));
        t.deepEqual([missing.code, missing.message], [Code.NotFound, 'payment missing not found']);

        const thrown = failure(t, await caller.createPayment({ key: merchantKey }));
        t.deepEqual([thrown.code, thrown.message], [Code.Internal, 'internal error']);
        const boom = failure(t, await caller.getPayment('boom', { key: merchantKey }));
        t.deepEqual([boom.code, boom.message], [Code.Internal, 'internal error']);
        const logged = h.logs.filter((l) => l.msg === 'rpc failed with an unmapped error');
        t.deepEqual(
          logged.map((l) => (l.err as { message: string }).message),
          ['null pointer in the authorizer chain', 'boom: redis at 10.1.2.3 said no'],
          'the originals are logged on the server, once each',
        );

        const denied = failure(t, await caller.getPayment('wrong-code', { key: merchantKey }));
        t.deepEqual([denied.code, denied.message], [Code.PermissionDenied, 'wrong code']);
        t.deepEqual(
          denied.errorInfo.map((i) => [i.reason, i.domain, i.metadata]),
          [['PERMISSION_DENIED', 'countersign.v1', { attemptsLeft: '2' }]],
          'domain details travel as google.rpc.ErrorInfo',
        );
      }),
    );

    test.serial(`${name}: UNAUTHENTICATED without a valid key; public methods need none`, (t) =>
      withServer(t, kind, makeCaller, async (_h, caller) => {
        for (const key of [undefined, 'wrong-key']) {
          const res = failure(t, await caller.getPayment('p', key === undefined ? {} : { key }));
          t.deepEqual([res.code, res.message], [Code.Unauthenticated, 'missing or invalid API key']);
        }
        const stream = failure(t, await caller.watchPayments('p'));
        t.is(stream.code, Code.Unauthenticated);
        const open = failure(t, await caller.listPayments());
        t.is(open.code, Code.Unimplemented, 'the public method passed authentication and reached the fixture');
      }),
    );

    test.serial(`${name}: the server default deadline applies only when the client sent none`, (t) =>
      withServer(t, kind, makeCaller, async (h, caller) => {
        const started = performance.now();
        const late = failure(t, await within(caller.getPayment('sleep-3000', { key: merchantKey, timeoutMs: null }), waitMsMax, 'default deadline'));
        t.is(late.code, Code.DeadlineExceeded);
        t.true(performance.now() - started < 2_000, 'ended by the 300 ms default, not by the 3 s sleep');
        await eventually(() => h.observed.aborted.includes('sleep-3000'), "the handler's signal aborted");

        const own = await caller.getPayment('sleep-600', { key: merchantKey, timeoutMs: 3_000 });
        t.true(own.ok, "a client deadline longer than the default is the client's to keep");

        // The client's own deadline ends the call and aborts the handler's signal (on grpc-js by grpc-js's deadline, no timer of ours).
        const short = failure(t, await within(caller.getPayment('sleep-2500', { key: merchantKey, timeoutMs: 200 }), waitMsMax, 'client deadline'));
        t.is(short.code, Code.DeadlineExceeded);
        await eventually(() => h.observed.aborted.includes('sleep-2500'), "the handler's signal aborted at the client's deadline");
      }),
    );

    test.serial(`${name}: metrics per RPC; the access log: a line per failure, successes summed per method; never the body`, (t) =>
      withServer(t, kind, makeCaller, async (h, caller) => {
        success(t, await caller.getPayment('body-secret-id', { key: merchantKey }));
        success(t, await caller.getPayment('body-secret-id', { key: merchantKey }));
        failure(t, await caller.cancelPayment('body-secret-id', { key: merchantKey }));
        success(t, await caller.watchPayments('body-secret-id', { key: merchantKey }));
        const method = 'countersign.v1.PaymentService';
        await eventually(() => h.packets.filter((p) => p.startsWith('rpc.count')).length === 4, 'statsd packets');
        t.deepEqual(h.packets.filter((p) => p.startsWith('rpc.count')).sort(), [
          `rpc.count:1|c|#method:${method}/CancelPayment,code:not_found`,
          `rpc.count:1|c|#method:${method}/GetPayment,code:ok`,
          `rpc.count:1|c|#method:${method}/GetPayment,code:ok`,
          `rpc.count:1|c|#method:${method}/WatchPayments,code:ok`,
        ]);
        t.is(h.packets.filter((p) => /^rpc\.latency:[\d.]+\|ms\|#method:/.test(p)).length, 4);

        const failures = h.logs.filter((l) => l.msg === 'rpc');
        t.deepEqual(
          failures.map((l) => [l.method, l.code, typeof l.durationMs, l.level]),
          [[`${method}/CancelPayment`, 'not_found', 'number', 40]],
          'the failure was logged as it ended (warn); the successes not yet',
        );
        t.is(h.logs.filter((l) => l.msg === 'rpc summary').length, 0, 'no summary before the interval ends');
        h.accessLog.flush();
        const summaries = h.logs.filter((l) => l.msg === 'rpc summary');
        t.deepEqual(
          summaries.map((l) => [l.method, l.code, l.calls, typeof l.meanMs, typeof l.maxMs, l.level]),
          [
            [`${method}/GetPayment`, 'ok', 2, 'number', 'number', 30],
            [`${method}/WatchPayments`, 'ok', 1, 'number', 'number', 30],
          ],
        );
        h.accessLog.flush();
        t.is(h.logs.filter((l) => l.msg === 'rpc summary').length, 2, 'a flush with nothing pending writes nothing');
        t.false(JSON.stringify(h.logs).includes('body-secret-id'), 'no request body in the logs');
        t.false(JSON.stringify(h.logs).includes(merchantKey), 'no API key in the logs');
      }),
    );

    test.serial(`${name}: a client cancelling a stream stops the handler`, (t) =>
      withServer(t, kind, makeCaller, async (h, caller) => {
        const cancel = new AbortController();
        const res = failure(
          t,
          await within(
            caller.watchPayments('forever', { key: merchantKey, signal: cancel.signal }, () => cancel.abort()),
            waitMsMax,
            'cancelled stream',
          ),
        );
        t.is(res.code, Code.Canceled);
        await eventually(() => h.observed.aborted.includes('forever'), 'the handler saw the cancel');
        t.deepEqual(h.observed.aborted, ['forever']);
      }),
    );

    test.serial(`${name}: close() ends open streams with UNAVAILABLE and returns promptly`, (t) =>
      withServer(t, kind, makeCaller, async (h, caller) => {
        let closed: Promise<void> | undefined;
        const started = performance.now();
        const res = failure(
          t,
          await within(
            caller.watchPayments('forever', { key: merchantKey }, () => (closed = h.close())),
            waitMsMax,
            'stream at shutdown',
          ),
        );
        t.deepEqual([res.code, res.message], [Code.Unavailable, 'server shutting down']);
        await within(closed ?? Promise.reject(new Error('no first message')), waitMsMax, 'close');
        t.true(performance.now() - started < 1_500, 'no grace period spent waiting for the stream');
        await eventually(() => h.observed.aborted.includes('forever'), 'the handler saw the shutdown');
      }),
    );
  }
}
