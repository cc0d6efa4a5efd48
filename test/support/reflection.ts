import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';

/** Bound on one reflection or health call, milliseconds. */
export const probeDeadlineMs = 10_000;

const reflectionProtoRoot = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto');

type Duplex = grpc.ClientDuplexStream<object, ReflectionResponse>;
export interface ReflectionResponse {
  messageResponse: string;
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${probeDeadlineMs} ms`)), probeDeadlineMs)),
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** One request on a ServerReflectionInfo stream of reflection `version` ("v1" or "v1alpha"), as grpcurl sends it. */
export async function reflect(port: number, version: 'v1' | 'v1alpha', request: object): Promise<ReflectionResponse> {
  const pkg = loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [reflectionProtoRoot], oneofs: true });
  const definition = pkg[`grpc.reflection.${version}.ServerReflection`] as grpc.ServiceDefinition;
  const Ctor = grpc.makeGenericClientConstructor(definition, 'ServerReflection');
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, () => Duplex>;
  try {
    const call = client.serverReflectionInfo!.call(client);
    const response = new Promise<ReflectionResponse>((resolve, reject) => {
      call.once('data', resolve);
      call.once('error', reject);
    });
    call.write(request);
    call.end();
    return await bounded(response, 'reflection response');
  } finally {
    client.close();
  }
}

/** grpc.health.v1.Health/Check: the status, or the gRPC error code. */
export async function healthCheck(port: number, service: string): Promise<{ code: number; status?: string }> {
  const Ctor = grpc.makeGenericClientConstructor(healthService as unknown as grpc.ServiceDefinition, 'Health');
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...args: unknown[]) => void>;
  try {
    return await bounded(
      new Promise((resolve) =>
        client.check!.call(client, { service }, { deadline: Date.now() + probeDeadlineMs }, (error: grpc.ServiceError | null, res?: { status: string }) =>
          resolve(error ? { code: error.code } : { code: 0, status: res?.status }),
        ),
      ),
      'health check',
    );
  } finally {
    client.close();
  }
}
