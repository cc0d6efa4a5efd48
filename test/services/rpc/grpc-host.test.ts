import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import type { RunningConnectServer } from '../../../services/rpc/connect-server.js';
import { healthCheck, reflect } from '../../support/reflection.js';
import { connectCaller, grpcJsCaller, grpcJsRawUnary } from './callers.js';
import { merchantKey, type ServerKind, startHarness, tcpHandles, tcpHandlesSettle, waitMsMax, within } from './fixtures.js';
import { withServer } from './suite.js';

// grpc-host specifics: health, reflection, undecodable requests, and closing under idle clients.

test.serial('grpc-host: health reports SERVING for the server and each service', (t) =>
  withServer(t, 'grpc-js', grpcJsCaller, async (h) => {
    t.deepEqual(await healthCheck(h.port, ''), { code: 0, status: 'SERVING' });
    t.deepEqual(await healthCheck(h.port, 'countersign.v1.PaymentService'), { code: 0, status: 'SERVING' });
    t.is((await healthCheck(h.port, 'countersign.v1.NoSuchService')).code, grpc.status.NOT_FOUND);
  }),
);

for (const version of ['v1', 'v1alpha'] as const) {
  test.serial(`grpc-host: reflection ${version} lists the served services`, (t) =>
    withServer(t, 'grpc-js', grpcJsCaller, async (h) => {
      const res = await reflect(h.port, version, { listServices: '*' });
      t.deepEqual(res.listServicesResponse?.service.map((s) => s.name).sort(), ['countersign.v1.PaymentService', 'grpc.health.v1.Health']);
    }),
  );
}

test.serial('grpc-host: reflection describes PaymentService with every import, google/protobuf/timestamp.proto included', (t) =>
  withServer(t, 'grpc-js', grpcJsCaller, async (h) => {
    const res = await reflect(h.port, 'v1', { fileContainingSymbol: 'countersign.v1.PaymentService' });
    const files = (res.fileDescriptorResponse?.fileDescriptorProto ?? []).map((b) => fromBinary(FileDescriptorProtoSchema, b));
    const names = files.map((f) => f.name);
    t.true(names.includes('countersign/v1/payments.proto'), names.join());
    t.true(names.includes('google/protobuf/timestamp.proto'), names.join());
    // A registry builds only if every import, transitively, resolves within the answer.
    const payments = files.find((f) => f.name === 'countersign/v1/payments.proto');
    if (payments === undefined) return;
    const registry = createFileRegistry(payments, (name) => files.find((f) => f.name === name));
    const createdAt = registry.getMessage('countersign.v1.Payment')?.fields.find((f) => f.name === 'created_at');
    t.is(createdAt?.message?.typeName, 'google.protobuf.Timestamp');
    t.is(registry.getService('countersign.v1.PaymentService')?.methods.length, 8);
  }),
);

test.serial('grpc-host: undecodable request bytes are INVALID_ARGUMENT, and the server keeps serving', (t) =>
  withServer(t, 'grpc-js', grpcJsCaller, async (h, caller) => {
    const error = await within(
      grpcJsRawUnary(h.port, '/countersign.v1.PaymentService/GetPayment', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), merchantKey),
      waitMsMax,
      'raw call',
    );
    t.is(error?.code, grpc.status.INVALID_ARGUMENT);
    t.is(error?.details, 'payment_id: length 4294967295 runs past the end of its message');
    t.true((await caller.getPayment('after', { key: merchantKey })).ok);
  }),
);

for (const kind of ['grpc-js', 'connect-node'] as const satisfies readonly ServerKind[]) {
  test.serial(`${kind}: close() does not wait for idle clients that keep their connection`, async (t) => {
    const baseline = tcpHandles();
    const h = await startHarness(kind);
    const callers = [connectCaller(h.port, 'grpc'), grpcJsCaller(h.port)];
    if (kind === 'connect-node') callers.push(connectCaller(h.port, 'connect'));
    t.teardown(() => callers.forEach((c) => c.close()));
    for (const caller of callers) t.true((await caller.getPayment('p', { key: merchantKey })).ok);
    const started = performance.now();
    await h.close(); // bounded inside by `within`
    t.true(performance.now() - started < 1_000, `closed in ${Math.round(performance.now() - started)} ms with idle clients connected`);
    if (kind === 'connect-node') t.is((h.server as RunningConnectServer).sessionCount(), 0);
    const after = await callers[0]!.getPayment('p', { key: merchantKey, timeoutMs: 1_000 });
    t.false(after.ok, 'nothing answers after close');
    if (!after.ok) t.is(after.code, Code.Unavailable);
    callers.forEach((c) => c.close());
    t.is(await tcpHandlesSettle(baseline), baseline, 'no TCP socket or listener left behind');
  });
}
