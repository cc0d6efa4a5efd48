import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { create, createFileRegistry, type DescService, fromBinary } from '@bufbuild/protobuf';
import { type FileDescriptorProto, FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { ConfirmPaymentRequestSchema, PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { grpcServiceDefinition } from '../../services/rpc/grpc-server.js';
import { type Env, key, newMerchant, newPayer, secondCode, startEnv } from '../e2e/harness.js';
import { reflect } from '../support/reflection.js';

// Issue 15, finding 9: server reflection serves descriptors that protoc-strict clients load
// (the health service's map entry is StatusesEntry), and resolves google.rpc.Status and
// google.rpc.ErrorInfo, so a client that knows only what reflection says can read
// attempts_left. The Python test runs Python's own protobuf (Debian: python3-grpcio,
// python3-protobuf) against a real server; the JavaScript tests check the same facts without it.

/** Bound on the Python client's whole run, milliseconds. */
const pythonRunMsMax = 60_000;
const script = fileURLToPath(new URL('../support/reflection_client.py', import.meta.url));
const countersignServices = [
  'countersign.v1.EnrollmentService',
  'countersign.v1.LedgerService',
  'countersign.v1.PayerService',
  'countersign.v1.PaymentService',
];
const installLine = 'apt-get install -y python3-grpcio python3-protobuf';

/** The first python3 that imports grpc and google.protobuf (a pyenv python3 on PATH may lack Debian's packages). */
function pythonWithGrpc(): string | undefined {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(candidate, ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore', timeout: 20_000 });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

function runPython(python: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), pythonRunMsMax);
    child.once('error', (e) => (clearTimeout(timer), reject(e)));
    child.once('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

/** A wrong second code for a challenged payment: the grpc-status-details-bin bytes the grpc-js port answers with. */
async function wrongCodeDetails(env: Env): Promise<Buffer> {
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const created = await shop.api.payments.createPayment({
    idempotencyKey: key('order'),
    payer: { case: 'payerId', value: payer.id },
    amount: 40_00n,
    currency: 'USD',
    description: 'reflection',
  });
  if (created.payment?.state !== PaymentState.CHALLENGED) throw new Error(`payment not challenged: ${created.payment?.state}`);
  const first = env.inbox.firstCodeFor(created.payment.id);
  if (first === undefined) throw new Error('no first code delivered');
  const right = secondCode(payer, first, 40_00n, shop.account);
  const wrong = right === '12345678' ? '87654321' : '12345678';
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(PayerService as DescService), 'PayerService');
  const client = new Ctor(`127.0.0.1:${env.grpcPort}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...args: unknown[]) => void>;
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${payer.token}`);
  const request = create(ConfirmPaymentRequestSchema, {
    idempotencyKey: key('wrong'),
    paymentId: created.payment.id,
    proof: { case: 'secondCode', value: wrong },
  });
  try {
    const error = await new Promise<grpc.ServiceError>((resolve, reject) =>
      client.confirmPayment!.call(client, request, metadata, { deadline: Date.now() + 15_000 }, (e: grpc.ServiceError | null) =>
        e ? resolve(e) : reject(new Error('a wrong code was accepted')),
      ),
    );
    if (error.code !== grpc.status.PERMISSION_DENIED) throw new Error(`expected PERMISSION_DENIED, got ${error.code} ${error.details}`);
    const bin = error.metadata.get('grpc-status-details-bin')[0];
    if (!(bin instanceof Buffer)) throw new Error('no grpc-status-details-bin');
    return bin;
  } finally {
    client.close();
  }
}

async function filesFor(port: number, request: object): Promise<FileDescriptorProto[]> {
  const res = await reflect(port, 'v1', request);
  if (res.errorResponse !== undefined)
    throw new Error(`reflection ${JSON.stringify(request)}: ${res.errorResponse.errorCode} ${res.errorResponse.errorMessage}`);
  return (res.fileDescriptorResponse?.fileDescriptorProto ?? []).map((b) => fromBinary(FileDescriptorProtoSchema, b));
}

test('reflection resolves google.rpc.Status and google.rpc.ErrorInfo by symbol, each file with its imports', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  for (const symbol of ['google.rpc.Status', 'google.rpc.ErrorInfo']) {
    const [file, ...imports] = await filesFor(env.grpcPort, { fileContainingSymbol: symbol });
    if (file === undefined) return t.fail(`no file for ${symbol}`);
    // A registry builds only if every import resolves within the answer.
    const registry = createFileRegistry(file, (name) => imports.find((f) => f.name === name));
    t.is(registry.getMessage(symbol)?.typeName, symbol);
  }
});

test('reflection describes grpc.health.v1.Health as protoc compiles it: the map entry of HealthListResponse.statuses is StatusesEntry', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const files = await filesFor(env.grpcPort, { fileContainingSymbol: 'grpc.health.v1.Health' });
  const health = files.find((f) => f.package === 'grpc.health.v1');
  t.is(health?.name, 'grpc/health/v1/health.proto');
  const listResponse = health?.messageType.find((m) => m.name === 'HealthListResponse');
  t.deepEqual(
    listResponse?.nestedType.map((n) => ({ name: n.name, mapEntry: n.options?.mapEntry })),
    [{ name: 'StatusesEntry', mapEntry: true }],
  );
  t.is(listResponse?.field[0]?.typeName, '.grpc.health.v1.HealthListResponse.StatusesEntry');
  t.deepEqual(
    health?.service[0]?.method.map((m) => m.name),
    ['Check', 'Watch', 'List'],
  );
});

const python = pythonWithGrpc();
const pythonTitle =
  "Python's grpcio and protobuf load every reflected service, google.rpc.Status and ErrorInfo into a fresh DescriptorPool, and decode attempts_left from a real error";
if (python === undefined) {
  const why = `python3 with the grpc and google.protobuf modules was not found (tried python3 and /usr/bin/python3); install them with: ${installLine}`;
  console.warn(`test/services/reflection.test.ts: NOT RUN: ${pythonTitle}: ${why}`);
  test.skip(`${pythonTitle} (NOT RUN: ${why})`, () => undefined);
} else {
  test(pythonTitle, async (t) => {
    const env = await startEnv('grpc-js', 'memory');
    t.teardown(() => env.close());
    const details = await wrongCodeDetails(env);
    const run = await runPython(python, [
      `127.0.0.1:${env.grpcPort}`,
      '--status-details',
      details.toString('hex'),
      'google.rpc.Status',
      'google.rpc.ErrorInfo',
    ]);
    t.is(run.code, 0, `python exited ${run.code}: ${run.stderr}`);
    const lines = run.stdout.split('\n');
    for (const name of [...countersignServices, 'grpc.health.v1.Health'])
      t.true(lines.includes(`service ${name}`), `service ${name} not resolved:\n${run.stdout}`);
    t.true(lines.includes('method grpc.health.v1.Health/List grpc.health.v1.HealthListRequest grpc.health.v1.HealthListResponse'), run.stdout);
    t.true(
      lines.includes('method countersign.v1.PaymentService/CreatePayment countersign.v1.CreatePaymentRequest countersign.v1.CreatePaymentResponse'),
      run.stdout,
    );
    for (const name of ['google.rpc.Status', 'google.rpc.ErrorInfo']) t.true(lines.includes(`message ${name}`), `${name} not resolved:\n${run.stdout}`);
    t.true(lines.includes('file grpc/health/v1/health.proto'), run.stdout);
    const detail = lines.find((l) => l.startsWith('detail google.rpc.ErrorInfo '));
    t.regex(detail ?? '', /\battempts_left=4\b/, run.stdout);
    t.true(
      lines.some((l) => l.startsWith(`status code=${grpc.status.PERMISSION_DENIED} `)),
      run.stdout,
    );
  });
}
