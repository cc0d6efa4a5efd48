import { ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { PaymentState } from '../gen/countersign/v1/common_pb.js';
import { type ConfirmPaymentResponse, PayerService } from '../gen/countersign/v1/payer_pb.js';
import { type AuthzAnswer, type AuthzClient, confirmPaymentRequest, outcomeOf } from '../telco-bridge/authz-client.js';
import { ErrorInfoSchema } from './rpc/status-details.js';

/**
 * The telco bridge's AuthzClient port (telco-bridge/authz-client.ts) over gRPC: connect-node's
 * gRPC transport (HTTP/2 plaintext) to authz's PayerService, the bridge's own service key as
 * `authorization: Bearer`, a deadline on every call. Errors become the status code and
 * ErrorInfo's `attempts_left`; the bridge decides what they mean for the payer.
 */

export interface TelcoAuthzClientOptions {
  /** host:port of authz's gRPC server. */
  address: string;
  /** SECRET: the bridge's key at authz. */
  serviceKey: string;
  /** Each ConfirmPayment waits at most this long (a webhook answer depends on it). */
  deadlineMs: number;
}

export function createTelcoAuthzClient(options: TelcoAuthzClientOptions): AuthzClient {
  const baseUrl = `http://${options.address}`;
  const sessions = new Http2SessionManager(baseUrl);
  const bearer: Interceptor = (next) => (req) => {
    req.header.set('authorization', `Bearer ${options.serviceKey}`);
    return next(req);
  };
  const client = createClient(PayerService, createGrpcTransport({ baseUrl, sessionManager: sessions, interceptors: [bearer] }));
  return {
    confirmPayment: async (request) => outcomeOf(await answerOf(client.confirmPayment(confirmPaymentRequest(request), { timeoutMs: options.deadlineMs }))),
    close: () => sessions.abort(),
  };
}

async function answerOf(call: Promise<ConfirmPaymentResponse>): Promise<AuthzAnswer> {
  try {
    const response = await call;
    return { ok: true, state: response.payment?.state ?? PaymentState.UNSPECIFIED };
  } catch (error) {
    const e = ConnectError.from(error);
    const infos = e.findDetails(ErrorInfoSchema) as { metadata?: Record<string, string> }[];
    return { ok: false, code: e.code, attemptsLeft: infos.map((i) => i.metadata?.attempts_left).find((v) => v !== undefined) };
  }
}
