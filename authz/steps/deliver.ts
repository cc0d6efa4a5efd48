import { unreachable } from '../../ledger/assert.js';
import { DomainError } from '../errors.js';
import type { Merchant, Payer, Payment } from '../model.js';
import type { PaymentRecord } from '../store/port.js';
import { publish, type StepDeps } from './context.js';
import { planOf } from './create-prepare.js';
import { drive } from './drive.js';

/**
 * What reaches the payer after a step: the first code by SMS or voice (not when the payer's own
 * terminal fetches it) and the call for the password once it is that factor's turn (M3 at once,
 * M2 after the SMS code). Nothing here is a log: a notifier is the only place a plaintext first
 * code leaves the service.
 */

/** Names a code for the channel's own de-duplication (a keyed digest, never the code): a resumed create sends the same code again. */
function deliveryKey(deps: StepDeps, paymentId: string, firstCode: string): string {
  return deps.codes.digest(paymentId, `delivery:${firstCode}`).slice(0, 16);
}

/**
 * Sends what `what` asks for: the first code (by SMS or voice; `code` undefined: none) and the
 * call for the password.
 */
export async function sendChallenge(
  deps: StepDeps,
  payment: Payment,
  what: { code: string | undefined; call: boolean },
  parties: { payer?: Payer; merchant?: Merchant } = {},
): Promise<void> {
  if (what.code === undefined && !what.call) return;
  const { payer, merchant } = await partiesOf(deps, payment, parties);
  if (what.code !== undefined) {
    await deps.notifier.deliverFirstCode({
      paymentId: payment.id,
      payerId: payer.id,
      phone: payer.phone,
      firstCode: what.code,
      amount: payment.amount,
      currency: payment.currency,
      payeeName: merchant.name,
      expiresAtMs: payment.expiresAtMs,
      deliveryKey: deliveryKey(deps, payment.id, what.code),
    });
  }
  if (what.call)
    await deps.notifier.callForPassword({
      paymentId: payment.id,
      payerId: payer.id,
      phone: payer.phone,
      amount: payment.amount,
      currency: payment.currency,
      payeeName: merchant.name,
      description: payment.description,
    });
}

/** What a new (or resumed) CHALLENGED payment sends: its code unless the payer's terminal shows it, and M3's call at once. */
export function challengeMessages(deps: StepDeps, payment: Payment, firstCode: string | undefined): { code: string | undefined; call: boolean } {
  const code = firstCode ?? (payment.sealedFirstCode === undefined ? undefined : deps.codes.openFirstCode(payment.id, payment.sealedFirstCode));
  return { code: planOf(payment).sendsCode ? code : undefined, call: callDue(payment) };
}

/** The keyed password's call is due when that factor is pending and nothing it waits for is (M2: the SMS code first). */
export function callDue(payment: Payment): boolean {
  const pending = payment.requiredFactors.filter((f) => !payment.satisfiedFactors.includes(f));
  return pending.includes('IVR_PASSWORD') && !pending.includes('SMS_OTP');
}

async function partiesOf(deps: StepDeps, payment: Payment, known: { payer?: Payer; merchant?: Merchant }): Promise<{ payer: Payer; merchant: Merchant }> {
  const [payer, merchant] = await Promise.all([
    known.payer ?? deps.directory.getPayer(payment.payerId),
    known.merchant ?? deps.directory.getMerchant(payment.merchantId),
  ]);
  if (payer === undefined || merchant === undefined) unreachable(`payment ${payment.id} refers to a missing payer or merchant`);
  return { payer, merchant };
}

/**
 * `send`, and when it fails the payment is declined (DELIVERY_FAILED), nothing stays reserved,
 * and the caller gets UNAVAILABLE: a code or call that cannot reach the payer leaves no hold.
 */
export async function deliverOrDecline(deps: StepDeps, record: PaymentRecord, send: () => Promise<void>): Promise<void> {
  try {
    await send();
  } catch (cause) {
    await declineUndelivered(deps, record);
    throw new DomainError(
      'unavailable',
      'the payer could not be reached (SMS or voice channel unavailable); the payment is declined and nothing is reserved — retry with a new idempotency key',
      { reason: 'DELIVERY_FAILED', payment_id: record.payment.id },
      { cause },
    );
  }
}

async function declineUndelivered(deps: StepDeps, record: PaymentRecord): Promise<void> {
  const now = deps.now();
  const declined: Payment = {
    ...record.payment,
    state: 'DECLINED',
    declineReason: 'DELIVERY_FAILED',
    declineDetail: 'the code or call could not be delivered',
    updatedAtMs: now,
  };
  delete declined.sealedFirstCode;
  const [answer] = await deps.store.commit([
    { paymentId: declined.id, expectVersion: record.version, payment: declined, digests: {}, dueAtMs: now + deps.limits.driveLeaseMs, nowMs: now },
  ]);
  // Stale: the payment moved on meanwhile (answered, expired); it is driven from there.
  const current = answer!.outcome === 'committed' || answer!.outcome === 'stale' ? answer!.record : undefined;
  if (answer!.outcome === 'committed') publish(deps, [answer!.record]);
  if (current !== undefined) await drive(deps, [current]);
}
