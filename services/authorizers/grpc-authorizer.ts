import { type Client, Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import type { Logger } from 'pino';
import { type AuthorizationContext, type Authorizer, AuthorizerFailure, type Decision } from '../../authz/authorizer.js';
import { AuthorizerService } from '../../gen/countersign/v1/authorizer_pb.js';
import { fromDecideResponse, toDecideRequest } from './wire.js';

/** Largest DecideResponse accepted from a plugin, bytes. */
export const decideResponseBytesMax = 64 * 1024;

/** A failed call in words safe for a decline detail (no address, no internal message). */
function callFailure(error: unknown, deadlineMs: number): AuthorizerFailure {
  if (error instanceof AuthorizerFailure) return error;
  const code = ConnectError.from(error).code;
  if (code === Code.DeadlineExceeded) return new AuthorizerFailure(`no answer within ${deadlineMs} ms`);
  return new AuthorizerFailure(`call failed: ${Code[code]}`);
}

export interface GrpcAuthorizerOptions {
  name: string;
  /** host:port of the plugin's gRPC server (plaintext HTTP/2). */
  address: string;
  deadlineMs: number;
  logger: Pick<Logger, 'warn'>;
}

/**
 * An external authorizer plugin: countersign.v1.AuthorizerService/Decide over gRPC (connect's
 * gRPC transport, one HTTP/2 session), within `deadlineMs`. Any failure is thrown as an
 * AuthorizerFailure for the chain to fail closed.
 */
export class GrpcAuthorizer implements Authorizer {
  readonly name: string;
  readonly deadlineMs: number;
  private readonly sessions: Http2SessionManager;
  private readonly client: Client<typeof AuthorizerService>;

  constructor(private readonly options: GrpcAuthorizerOptions) {
    this.name = options.name;
    this.deadlineMs = options.deadlineMs;
    const baseUrl = `http://${options.address}`;
    this.sessions = new Http2SessionManager(baseUrl);
    const transport = createGrpcTransport({ baseUrl, sessionManager: this.sessions, readMaxBytes: decideResponseBytesMax });
    this.client = createClient(AuthorizerService, transport);
  }

  async decide(context: AuthorizationContext): Promise<Decision> {
    try {
      return fromDecideResponse(await this.client.decide(toDecideRequest(context), { timeoutMs: this.deadlineMs }));
    } catch (error) {
      const failure = callFailure(error, this.deadlineMs);
      this.options.logger.warn({ authorizer: this.name, address: this.options.address, err: error, failure: failure.message }, 'authorizer plugin failed');
      throw failure;
    }
  }

  /** Closes the HTTP/2 session; calls after this fail (closed). */
  close(): void {
    this.sessions.abort();
  }
}
