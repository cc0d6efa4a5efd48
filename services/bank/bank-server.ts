import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { BankFrontEndService } from '../../gen/countersign/v1/bank_pb.js';
import { type RunningServer, startGrpcServer } from '../rpc/grpc-host.js';
import { deadline, logging } from '../rpc/interceptors.js';
import { type BankFrontEnd, bankFrontEndServiceImpl } from './frontend.js';

/**
 * Serves a BankFrontEnd over gRPC (grpc-js through services/rpc, with grpc.health.v1 and
 * reflection), plaintext on the given host: the bank front-end sits on a private network next
 * to countersign. `port` 0 picks a free port.
 */
export async function startBankServer(opts: { bank: BankFrontEnd; host: string; port: number; logger: Logger }): Promise<RunningServer> {
  const accessLog = logging(opts.logger);
  const server = await startGrpcServer({
    host: opts.host,
    port: opts.port,
    services: [{ service: BankFrontEndService, impl: bankFrontEndServiceImpl(opts.bank) }],
    interceptors: [accessLog, deadline()],
    credentials: grpc.ServerCredentials.createInsecure(),
    logger: opts.logger,
  });
  return { ...server, close: () => server.close().finally(() => accessLog.flush()) };
}
