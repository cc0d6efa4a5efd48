import test from 'ava';
import { healthCheck, reflect } from '../support/reflection.js';
import { startEnv } from './harness.js';

// The authz server as off-the-shelf gRPC tools see it (grpcurl list, grpc_health_probe).

const countersignServices = [
  'countersign.v1.EnrollmentService',
  'countersign.v1.LedgerService',
  'countersign.v1.PayerService',
  'countersign.v1.PaymentService',
];

test('the authz gRPC port lists its services through reflection and reports SERVING on health', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const port = env.grpcPort;
  for (const version of ['v1', 'v1alpha'] as const) {
    const listed = (await reflect(port, version, { listServices: '*' })).listServicesResponse?.service.map((s) => s.name).sort();
    t.deepEqual(listed, [...countersignServices, 'grpc.health.v1.Health'], `reflection ${version}`);
  }
  t.deepEqual(await healthCheck(port, ''), { code: 0, status: 'SERVING' });
  for (const service of countersignServices) t.deepEqual(await healthCheck(port, service), { code: 0, status: 'SERVING' }, service);
});
