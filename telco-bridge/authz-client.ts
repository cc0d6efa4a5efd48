import { create } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import { PasswordKind, PaymentState } from '../gen/countersign/v1/common_pb.js';
import { type ConfirmPaymentRequest, ConfirmPaymentRequestSchema } from '../gen/countersign/v1/payer_pb.js';
import type { ConfirmOutcome } from './ivr-dialogue.js';

/**
 * The bridge's only way into authz: `PayerService/ConfirmPayment` as the trusted telco channel
 * (its own service key), relaying a keyed password or an SMS reply. This is the port and what
 * authz's answers mean; the gRPC client behind it is services/telco-authz-client.ts (the bridge
 * holds no RPC runtime). Outcomes are values; proofs are never logged.
 */

/** A proof the bridge relays. SECRET values. */
export type RelayedProof = { kind: 'ivr-password'; password: string } | { kind: 'sms-otp'; code: string };

export interface ConfirmRequest {
  /** The payment id (the reference of the SendSms / StartCall). */
  paymentId: string;
  idempotencyKey: string;
  proof: RelayedProof;
}

export interface AuthzClient {
  /** Never rejects: an unreachable authz is `{ kind: 'unavailable' }`. `code` is the status name, for logs. */
  confirmPayment(request: ConfirmRequest): Promise<ConfirmOutcome & { code: string }>;
  close(): void;
}

/** What ConfirmPayment answered: the payment's state, or the status code and ErrorInfo's `attempts_left` (as sent) when any. */
export type AuthzAnswer = { ok: true; state: PaymentState } | { ok: false; code: Code; attemptsLeft: string | undefined };

/** The ConfirmPayment request for a relayed proof. */
export function confirmPaymentRequest(r: ConfirmRequest): ConfirmPaymentRequest {
  const proof: ConfirmPaymentRequest['proof'] =
    r.proof.kind === 'ivr-password'
      ? { case: 'password', value: { $typeName: 'countersign.v1.PasswordProof', kind: PasswordKind.IVR, password: r.proof.password } }
      : { case: 'smsOtp', value: r.proof.code };
  return create(ConfirmPaymentRequestSchema, { idempotencyKey: r.idempotencyKey, paymentId: r.paymentId, proof });
}

/** "PERMISSION_DENIED", as gRPC names the code. */
const statusName = (code: Code) => (Code[code] ?? String(code)).replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();

/** What authz's answer means for the payer on the line. */
export function outcomeOf(answer: AuthzAnswer): ConfirmOutcome & { code: string } {
  if (answer.ok) {
    const state = answer.state;
    if (state === PaymentState.SUCCEEDED || state === PaymentState.APPROVED) return { kind: 'approved', code: 'OK' };
    if (state === PaymentState.CHALLENGED) return { kind: 'accepted-more-needed', code: 'OK' };
    if (state === PaymentState.DECLINED || state === PaymentState.EXPIRED || state === PaymentState.CANCELLED) return { kind: 'declined', code: 'OK' };
    return { kind: 'error', code: 'OK' };
  }
  const code = statusName(answer.code);
  switch (answer.code) {
    case Code.PermissionDenied: {
      const left = answer.attemptsLeft;
      return { kind: 'wrong', attemptsLeft: left !== undefined && /^[0-9]{1,9}$/.test(left) ? Number(left) : undefined, code };
    }
    case Code.ResourceExhausted:
    case Code.FailedPrecondition:
      return { kind: 'declined', code };
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return { kind: 'unavailable', code };
    default:
      return { kind: 'error', code };
  }
}
