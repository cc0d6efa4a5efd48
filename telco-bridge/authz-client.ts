import { create, type Message } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { PaymentState, PasswordKind } from '../gen/countersign/v1/common_pb.js';
import { ConfirmPaymentRequestSchema, PayerService, type ConfirmPaymentRequest, type ConfirmPaymentResponse } from '../gen/countersign/v1/payer_pb.js';
import { grpcServiceDefinition } from './grpc-codec.js';
import type { ConfirmOutcome } from './ivr-dialogue.js';
import { errorInfosOf } from './rpc-status.js';

/**
 * The bridge's only way into authz: `PayerService/ConfirmPayment` over gRPC (grpc-js), as the
 * trusted telco channel (its own service key), relaying a keyed password or an SMS reply.
 * Outcomes are values; proofs are never logged.
 */

export interface AuthzClientOptions {
  /** host:port of authz's gRPC server. */
  address: string;
  /** The bridge's key at authz, sent as `authorization: Bearer <key>`. */
  serviceKey: string;
  /** Each ConfirmPayment waits at most this long (a webhook answer depends on it). */
  deadlineMs: number;
}

/** A proof the bridge relays. SECRET values. */
export type RelayedProof = { kind: 'ivr-password'; password: string } | { kind: 'sms-otp'; code: string };

export interface ConfirmRequest {
  /** The payment id (the reference of the SendSms / StartCall). */
  paymentId: string;
  idempotencyKey: string;
  proof: RelayedProof;
}

export interface AuthzClient {
  confirmPayment(request: ConfirmRequest): Promise<ConfirmOutcome & { code: string }>;
  close(): void;
}

type UnaryFn = (request: Message, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, value?: ConfirmPaymentResponse) => void) => void;

function requestOf(r: ConfirmRequest): ConfirmPaymentRequest {
  const proof: ConfirmPaymentRequest['proof'] =
    r.proof.kind === 'ivr-password'
      ? { case: 'password', value: { $typeName: 'countersign.v1.PasswordProof', kind: PasswordKind.IVR, password: r.proof.password } }
      : { case: 'smsOtp', value: r.proof.code };
  return create(ConfirmPaymentRequestSchema, { idempotencyKey: r.idempotencyKey, paymentId: r.paymentId, proof });
}

/** What authz's answer means for the payer on the line. */
export function outcomeOf(error: grpc.ServiceError | null, response: ConfirmPaymentResponse | undefined): ConfirmOutcome & { code: string } {
  if (error === null) {
    const state = response?.payment?.state ?? PaymentState.UNSPECIFIED;
    if (state === PaymentState.SUCCEEDED || state === PaymentState.APPROVED) return { kind: 'approved', code: 'OK' };
    if (state === PaymentState.CHALLENGED) return { kind: 'accepted-more-needed', code: 'OK' };
    if (state === PaymentState.DECLINED || state === PaymentState.EXPIRED || state === PaymentState.CANCELLED) return { kind: 'declined', code: 'OK' };
    return { kind: 'error', code: 'OK' };
  }
  const code = grpc.status[error.code] ?? String(error.code);
  switch (error.code) {
    case grpc.status.PERMISSION_DENIED: {
      const bin = error.metadata?.get('grpc-status-details-bin')[0];
      const infos = errorInfosOf(bin instanceof Buffer ? bin : undefined);
      const left = infos.map((i) => i.metadata['attempts_left']).find((v) => v !== undefined);
      const attemptsLeft = left !== undefined && /^[0-9]{1,9}$/.test(left) ? Number(left) : undefined;
      return { kind: 'wrong', attemptsLeft, code };
    }
    case grpc.status.RESOURCE_EXHAUSTED:
    case grpc.status.FAILED_PRECONDITION:
      return { kind: 'declined', code };
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
      return { kind: 'unavailable', code };
    default:
      return { kind: 'error', code };
  }
}

export function createAuthzClient(options: AuthzClientOptions): AuthzClient {
  const Client = grpc.makeGenericClientConstructor(grpcServiceDefinition(PayerService), PayerService.name);
  const client = new Client(options.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { confirmPayment: UnaryFn };
  return {
    confirmPayment: (request) =>
      new Promise((resolve) => {
        const metadata = new grpc.Metadata();
        metadata.set('authorization', `Bearer ${options.serviceKey}`);
        client.confirmPayment(requestOf(request), metadata, { deadline: Date.now() + options.deadlineMs }, (error, value) => resolve(outcomeOf(error, value)));
      }),
    close: () => client.close(),
  };
}
