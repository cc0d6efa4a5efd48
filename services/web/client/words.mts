/**
 * Payment states and API errors in words for the payer. Errors read the machine-readable facts
 * the API sends in `google.rpc.ErrorInfo` (attempts left, retry_after_ms, reason), never parse
 * messages.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { DeclineReason, Factor, type Payment, PaymentState } from '../../../gen/countersign/v1/common_pb.js';
import { ErrorInfoSchema } from '../../rpc/status-details.js';

export type Tone = 'waiting' | 'good' | 'bad' | 'neutral';

export interface Words {
  readonly title: string;
  readonly detail: string;
  readonly tone: Tone;
}

const declineWords: Record<DeclineReason, string> = {
  [DeclineReason.UNSPECIFIED]: 'The payment was refused.',
  [DeclineReason.POLICY_DENIED]: 'The payment was refused by policy.',
  [DeclineReason.PAYER_DECLINED]: 'You declined this payment. Nothing was charged.',
  [DeclineReason.ATTEMPTS_EXHAUSTED]: 'Too many wrong codes: the payment was declined. Nothing was charged.',
  [DeclineReason.INSUFFICIENT_FUNDS]: 'Your account does not hold the amount.',
  [DeclineReason.CREDIT_LIMIT_EXCEEDED]: 'The charge would exceed the line’s credit limit.',
  [DeclineReason.DEVICE_MISMATCH]: 'The paired device did not match.',
  [DeclineReason.BANK_DECLINED]: 'Your bank declined the card payment.',
  [DeclineReason.AUTHORIZER_UNAVAILABLE]: 'The payment could not be checked in time and was declined.',
  [DeclineReason.DELIVERY_FAILED]: 'The code could not be delivered; the payment was declined.',
  [DeclineReason.SECRET_ROTATED]: 'Your verification secret was replaced after this payment asked for a code; it was declined. Nothing was charged.',
};

const factorWords: Record<Factor, string> = {
  [Factor.UNSPECIFIED]: 'an unknown step',
  [Factor.SECOND_CODE]: 'the second code',
  [Factor.FIRST_CODE_AND_PIN]: 'the first code and your PIN',
  [Factor.SMS_OTP]: 'the SMS code',
  [Factor.IVR_PASSWORD]: 'your password on the phone call',
  [Factor.AUTH_PASSWORD]: 'your authentication password',
  [Factor.PAIRED_DEVICE]: 'your paired device',
  [Factor.BANK_CARD_PIN]: 'your bank card and PIN',
};

export function factorsInWords(factors: readonly Factor[]): string {
  return factors.map((f) => factorWords[f] ?? factorWords[Factor.UNSPECIFIED]).join(', ');
}

/** Why it was declined; the API's detail (safe to show) where it names the policy or the bank's answer. */
function declineDetail(payment: Payment): string {
  const words = declineWords[payment.declineReason];
  if (payment.declineDetail === '') return words;
  if (payment.declineReason === DeclineReason.POLICY_DENIED) return `Refused: ${payment.declineDetail}`;
  if (payment.declineReason === DeclineReason.BANK_DECLINED) return `${words} (${payment.declineDetail})`;
  return words;
}

/** The payment's state as the payer reads it. */
export function stateWords(payment: Payment): Words {
  const pending = payment.requiredFactors.filter((f) => !payment.satisfiedFactors.includes(f));
  switch (payment.state) {
    case PaymentState.CHALLENGED:
      return { title: 'Waiting for your approval', detail: `Needs ${factorsInWords(pending)}.`, tone: 'waiting' };
    case PaymentState.APPROVED:
      return { title: 'Approved', detail: 'Approved; the money is being moved.', tone: 'good' };
    case PaymentState.SUCCEEDED:
      return { title: 'Paid', detail: 'The payment succeeded: the money moved.', tone: 'good' };
    case PaymentState.DECLINED:
      return { title: 'Declined', detail: declineDetail(payment), tone: 'bad' };
    case PaymentState.EXPIRED:
      return { title: 'Expired', detail: 'The payment was not approved in time. Nothing was charged.', tone: 'neutral' };
    case PaymentState.CANCELLED:
      return { title: 'Cancelled', detail: 'The merchant cancelled this payment. Nothing was charged.', tone: 'neutral' };
    default:
      return { title: 'Received', detail: 'The payment is being checked.', tone: 'waiting' };
  }
}

interface ErrorFacts {
  readonly reason: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The ErrorInfo the API attached to `error`, if any. */
export function errorFacts(error: ConnectError): ErrorFacts {
  const info = error.findDetails(ErrorInfoSchema)[0] as unknown as Partial<ErrorFacts> | undefined;
  return { reason: info?.reason ?? '', metadata: info?.metadata ?? {} };
}

function seconds(ms: string | undefined): string {
  const s = Math.max(1, Math.ceil(Number(ms ?? '0') / 1000));
  return s >= 120 ? `${Math.ceil(s / 60)} minutes` : `${s} seconds`;
}

/** An error from the API (or the network) in words; never shows internals. */
export function errorWords(error: unknown): string {
  const e = ConnectError.from(error);
  const { reason, metadata } = errorFacts(e);
  if (reason === 'LOCKED_OUT') return `Locked out after repeated wrong answers. Try again in ${seconds(metadata.retry_after_ms)}.`;
  if (reason === 'ATTEMPTS_EXHAUSTED') return 'Too many wrong codes: the payment was declined. Nothing was charged.';
  if (reason === 'EXPIRED') return 'This payment has expired. Nothing was charged.';
  switch (e.code) {
    case Code.PermissionDenied: {
      const left = metadata.attempts_left;
      return left === undefined ? 'Not accepted.' : `Wrong code. ${left} ${left === '1' ? 'attempt' : 'attempts'} left.`;
    }
    case Code.ResourceExhausted:
      return 'Too many attempts. Try again later.';
    case Code.FailedPrecondition:
      return `This payment is no longer waiting for approval (${e.rawMessage}).`;
    case Code.NotFound:
      return 'This payment is not yours or no longer exists.';
    case Code.Unauthenticated:
      return 'The server did not accept this terminal’s token. Enroll the terminal again.';
    case Code.Unknown: // the API never answers UNKNOWN: this is the network (fetch failed)
    case Code.Unavailable:
    case Code.DeadlineExceeded:
    case Code.Canceled:
      return 'The payment service could not be reached. Check the connection and try again.';
    case Code.InvalidArgument:
      return `The request was refused: ${e.rawMessage}`;
    default:
      return 'Something went wrong on the server. Try again.';
  }
}
