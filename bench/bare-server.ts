/**
 * The `bare` scenario's server: a minimal @grpc/grpc-js server that answers the echo scenario's
 * RPC (`countersign.v1.PaymentService/GetPayment`, the same request and response messages) with
 * the response the project's server gave for the echo payment, so the two carry the same bytes.
 * protobuf-es `fromBinary` / `toBinary` as the (de)serializers, on every call; no interceptors,
 * no logging, no authentication, no store; channelz off (as in the project's server). Its own
 * process, forked by bench/main.ts for the bare scenario only, so its CPU is measured the way
 * the project server's is (`process.cpuUsage()` over IPC around the window).
 *
 * Argument: JSON `BareServerOptions`. IPC: `cpu` (`BareServerCpu`) and `stop`.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { type GetPaymentRequest, GetPaymentRequestSchema, type GetPaymentResponse, GetPaymentResponseSchema } from '../gen/countersign/v1/payments_pb.js';
import { announce, serveIpc } from './ipc.js';
import { type LoopStats, LoopWatch } from './stats.js';

export interface BareServerOptions {
  /** The payment id the echo scenario reads. */
  paymentId: string;
  /** The project server's GetPaymentResponse for it, protobuf binary, base64. */
  responseBase64: string;
}

export interface BareServerReady {
  grpcPort: number;
  pid: number;
}

/** This process's CPU since start and its event loop since the previous `cpu` call. */
export interface BareServerCpu {
  userMicros: number;
  systemMicros: number;
  loop: LoopStats;
}

export const bareMethodPath = '/countersign.v1.PaymentService/GetPayment';

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as BareServerOptions;
  const response = fromBinary(GetPaymentResponseSchema, Buffer.from(options.responseBase64, 'base64'));
  if (response.payment?.id !== options.paymentId)
    throw new Error(`assertion failed: the echo response is for payment ${response.payment?.id}, not ${options.paymentId}`);
  const server = new grpc.Server({ 'grpc.enable_channelz': 0 });
  const definition: grpc.ServiceDefinition = {
    getPayment: {
      path: bareMethodPath,
      requestStream: false,
      responseStream: false,
      requestSerialize: (m: GetPaymentRequest) => toBuffer(toBinary(GetPaymentRequestSchema, m)),
      requestDeserialize: (b: Buffer) => fromBinary(GetPaymentRequestSchema, b),
      responseSerialize: (m: GetPaymentResponse) => toBuffer(toBinary(GetPaymentResponseSchema, m)),
      responseDeserialize: (b: Buffer) => fromBinary(GetPaymentResponseSchema, b),
    },
  };
  server.addService(definition, {
    getPayment: (call: grpc.ServerUnaryCall<GetPaymentRequest, GetPaymentResponse>, callback: grpc.sendUnaryData<GetPaymentResponse>) => {
      if (call.request.paymentId === options.paymentId) callback(null, response);
      else callback({ code: grpc.status.NOT_FOUND, details: 'payment not found' });
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
  const loopWatch = new LoopWatch();
  serveIpc({
    cpu: (): BareServerCpu => {
      const cpu = process.cpuUsage();
      const loop = loopWatch.read();
      loopWatch.reset();
      return { userMicros: cpu.user, systemMicros: cpu.system, loop };
    },
    stop: () => {
      server.forceShutdown();
      setImmediate(() => process.exit(0));
      return {};
    },
  });
  announce('ready', { grpcPort, pid: process.pid } satisfies BareServerReady);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench bare server failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
