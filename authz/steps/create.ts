import { AuthzError, precondition } from '../errors.js';
import type { Merchant, Payment } from '../model.js';
import type { ReserveOutcome } from '../payment-ledger.js';
import type { CreateOutcome, PaymentRecord } from '../store/port.js';
import { accountsOf, fulfilled, publish, rejected, reservationSeconds, type ItemOutcome, type StepDeps } from './context.js';
import { CreatePreparer, isPhantomPayment, type CreatePaymentInput, type PreparedCreate } from './create-prepare.js';
import { challengeMessages, deliverOrDecline, sendChallenge } from './deliver.js';
import { drive } from './drive.js';
import { createRefusal } from './refusals.js';

/**
 * The create step, for one payment or a batch of them (unary calls are coalesced into the
 * store's step by the store decorator; BatchCreatePayments passes its items here at once):
 *
 * 1. prepare: checks, payer, policy, the record to write (create-prepare.ts), no store writes;
 * 2. ONE store step for all items: claims each key and writes its record, counters and due
 *    entry atomically — or answers the payment (or refusal) an earlier identical request made;
 * 3. the ledger: reservations (or reserve-and-post for a payment without factors) of all items
 *    in one request; a refusal for funds declines its payment;
 * 4. the first codes and calls go out.
 *
 * A crash after 2 leaves a record whose reservation the next touch makes (a retry after the
 * create's lease, a confirm's post, the sweeper's expiry): nothing is lost and no key is stuck.
 */
export class CreateStep {
  private readonly preparer: CreatePreparer;
  /**
   * Creates of this process between their store step and their answer, by payment id: a retry
   * (or a concurrent duplicate) meeting one waits for its answer instead of guessing. Bounded by
   * the calls in flight.
   */
  private readonly finishing = new Map<string, Promise<ItemOutcome>>();

  constructor(private readonly deps: StepDeps) {
    this.preparer = new CreatePreparer(deps);
  }

  async run(merchant: Merchant | Promise<Merchant>, inputs: readonly CreatePaymentInput[]): Promise<ItemOutcome[]> {
    const outcomes = new Array<ItemOutcome>(inputs.length);
    const prepared = await Promise.allSettled(inputs.map((input) => this.preparer.prepare(merchant, input)));
    const ready: { index: number; p: PreparedCreate }[] = [];
    prepared.forEach((p, index) => (p.status === 'fulfilled' ? ready.push({ index, p: p.value }) : (outcomes[index] = p)));
    await this.write(merchant, ready, outcomes, true);
    return outcomes;
  }

  /** The store's step for `ready`, then each item's next move. */
  private async write(merchant: Merchant | Promise<Merchant>, ready: { index: number; p: PreparedCreate }[], outcomes: ItemOutcome[], firstTry: boolean): Promise<void> {
    if (ready.length === 0) return;
    let answers: CreateOutcome[];
    try {
      answers = await this.deps.store.create(ready.map((r) => r.p.item));
    } catch (error) {
      for (const r of ready) outcomes[r.index] = rejected(error);
      return;
    }
    const created: { index: number; p: PreparedCreate; record: PaymentRecord }[] = [];
    const later: Promise<void>[] = [];
    const redraft: { index: number; p: PreparedCreate }[] = [];
    answers.forEach((answer, k) => {
      const { index, p } = ready[k]!;
      if (answer.outcome === 'created') created.push({ index, p, record: answer.record });
      else if (answer.outcome === 'replayed') later.push(settle(outcomes, index, this.replay(answer.record)));
      else if (answer.outcome === 'refused') outcomes[index] = rejected(createRefusal(answer.refusal, this.deps.limits, p.item.rateLimits));
      else if (answer.outcome === 'conflict') outcomes[index] = rejected(keyConflict(p.input.idempotencyKey));
      else if (firstTry) later.push(this.preparer.prepare(p.merchant, p.input, answer.paymentId).then((again) => void redraft.push({ index, p: again }), (e: unknown) => void (outcomes[index] = rejected(e))));
      else outcomes[index] = rejected(new AuthzError('unavailable', 'the payment store is recovering this request; retry shortly'));
    });
    publish(this.deps, created.map((c) => c.record));
    await Promise.all([this.finish(created, outcomes), ...later]);
    await this.write(merchant, redraft, outcomes, false);
  }

  /** New payments: reservations (or reserve-and-post) together, refusals for funds recorded, codes sent. */
  private async finish(created: { index: number; p: PreparedCreate; record: PaymentRecord }[], outcomes: ItemOutcome[]): Promise<void> {
    await Promise.all(
      created.map(async ({ index, p, record }) => {
        const id = record.payment.id;
        const finished = this.finishOne(p, record);
        this.finishing.set(id, finished);
        try {
          outcomes[index] = await finished;
        } finally {
          this.finishing.delete(id);
        }
      }),
    );
  }

  private async finishOne(p: PreparedCreate, record: PaymentRecord): Promise<ItemOutcome> {
    if (record.payment.state === 'DECLINED') return outcomeOf(record.payment);
    // An unknown phone's payment: recorded like any, but nothing to reserve and nobody to send to.
    if (isPhantomPayment(record.payment)) return outcomeOf(record.payment);
    try {
      const reserved = await this.reserve(record);
      if (reserved.payment.state !== 'CHALLENGED') return outcomeOf(reserved.payment);
      await deliverOrDecline(this.deps, reserved, () => sendChallenge(this.deps, reserved.payment, challengeMessages(this.deps, reserved.payment, p.firstCode), { payer: p.payer, merchant: p.merchant }));
      return fulfilled(reserved.payment);
    } catch (error) {
      return rejected(error);
    }
  }

  /**
   * The reservation of a CHALLENGED payment (or the reserve-and-post of an APPROVED one); a
   * refusal for funds declines it in the store. Returns the record as it then is.
   */
  private async reserve(record: PaymentRecord): Promise<PaymentRecord> {
    const p = record.payment;
    const now = this.deps.now();
    const seconds = reservationSeconds(this.deps, p);
    if (p.state !== 'APPROVED') {
      const outcome = await this.deps.ledger.reserve(p, accountsOf(this.deps, p), seconds);
      return outcome === 'reserved' ? record : this.declineForFunds(record, outcome);
    }
    const outcome = await this.deps.ledger.reserveAndPost(p, accountsOf(this.deps, p), seconds);
    if (outcome !== 'reserved') return this.declineForFunds(record, outcome);
    return this.record(record, { ...p, state: 'SUCCEEDED', updatedAtMs: now }, null, true);
  }

  /**
   * Commits `payment` over `record` (out of the due index when `dueAtMs` is null; `settle`: the
   * ledger posted it, written without a compare); a stale record is driven on instead.
   */
  private async record(record: PaymentRecord, payment: Payment, dueAtMs: number | null, settle = false): Promise<PaymentRecord> {
    const [answer] = await this.deps.store.commit([{ paymentId: payment.id, expectVersion: record.version, payment, digests: {}, dueAtMs, nowMs: this.deps.now(), ...(settle ? { settle: true as const } : {}) }]);
    if (answer!.outcome === 'committed') {
      publish(this.deps, [answer!.record]);
      return answer!.record;
    }
    if (answer!.outcome === 'stale' && answer!.record !== undefined) return (await drive(this.deps, [answer!.record]))[0]!;
    throw new Error(`assertion failed: recording payment ${payment.id} answered ${answer!.outcome}`);
  }

  private async declineForFunds(record: PaymentRecord, outcome: Exclude<ReserveOutcome, 'reserved'>): Promise<PaymentRecord> {
    const now = this.deps.now();
    const declined: Payment =
      outcome === 'credit_limit_exceeded'
        ? { ...record.payment, state: 'DECLINED', declineReason: 'CREDIT_LIMIT_EXCEEDED', declineDetail: "the charge would exceed the line's credit limit for the billing period", updatedAtMs: now }
        : { ...record.payment, state: 'DECLINED', declineReason: 'INSUFFICIENT_FUNDS', updatedAtMs: now };
    delete declined.sealedFirstCode;
    return this.record(record, declined, null);
  }

  /**
   * A retry of a create: the payment it made, driven on if its create stopped half way, or the
   * same refusal it met. Within the create's lease a payment whose reservation is not in the
   * ledger yet may still be on its way: "in progress". After the lease this call finishes it.
   */
  private async replay(found: PaymentRecord): Promise<Payment> {
    const finishing = this.finishing.get(found.payment.id);
    if (finishing !== undefined) return unwrap(await finishing);
    if (isPhantomPayment(found.payment)) return unwrap(outcomeOf((await drive(this.deps, [found]))[0]!.payment));
    let record = found;
    const now = this.deps.now();
    const unfinished = record.payment.state === 'APPROVED' || (record.payment.state === 'CHALLENGED' && now >= record.payment.expiresAtMs) || (record.payment.state !== 'CHALLENGED' && record.dueAtMs !== undefined);
    if (unfinished) record = (await drive(this.deps, [record]))[0]!;
    const p = record.payment;
    if (p.state !== 'CHALLENGED') return unwrap(outcomeOf(p));
    const leaseEndMs = p.createdAtMs + this.deps.limits.createLeaseMs;
    if (now < leaseEndMs) {
      if (!(await this.deps.ledger.reserved(p))) {
        throw new AuthzError('unavailable', 'a request with this idempotency key is in progress; retry shortly', { reason: 'IN_PROGRESS', retry_after_ms: leaseEndMs - now });
      }
      // Reserved, but whether its code went out is not known here (the call that made it may have
      // died after the reservation): send the code again — the channel de-duplicates by delivery
      // key, and a second copy of the same code is harmless. (A phone call is placed again only
      // after the lease, below: a second call is not harmless.)
      const { code } = challengeMessages(this.deps, p, undefined);
      await deliverOrDecline(this.deps, record, () => sendChallenge(this.deps, p, { code, call: false }));
      return p;
    }
    const reserved = await this.reserve(record);
    if (reserved.payment.state !== 'CHALLENGED') return unwrap(outcomeOf(reserved.payment));
    await deliverOrDecline(this.deps, reserved, () => sendChallenge(this.deps, reserved.payment, challengeMessages(this.deps, reserved.payment, undefined)));
    return reserved.payment;
  }
}

/** Declines a create answers with an error (the payment never got to its payer); other declines are answers (the payer said no). */
const createDeclines: ReadonlySet<string> = new Set(['INSUFFICIENT_FUNDS', 'CREDIT_LIMIT_EXCEEDED', 'DELIVERY_FAILED', 'AUTHORIZER_UNAVAILABLE', 'POLICY_DENIED']);

/** The answer a create gives for its payment as it now is: the payment, or the refusal a decline stands for. */
function outcomeOf(payment: Payment): ItemOutcome {
  return payment.state === 'DECLINED' && createDeclines.has(payment.declineReason ?? '') ? rejected(declinedError(payment)) : fulfilled(payment);
}

function unwrap(outcome: ItemOutcome): Payment {
  if (outcome.status === 'rejected') throw outcome.reason;
  return outcome.value;
}

/** What a create answers for a payment it declined (and every retry of it answers the same). */
function declinedError(p: Payment): AuthzError {
  switch (p.declineReason) {
    case 'INSUFFICIENT_FUNDS':
      return precondition('insufficient funds', { reason: 'INSUFFICIENT_FUNDS', payment_id: p.id });
    case 'CREDIT_LIMIT_EXCEEDED':
      return precondition("credit limit exceeded: the charge would exceed the billable line's credit limit for the billing period", { reason: 'CREDIT_LIMIT_EXCEEDED', payment_id: p.id });
    case 'DELIVERY_FAILED':
      return new AuthzError('unavailable', 'the payer could not be reached; this payment is declined — retry with a new idempotency key', { reason: 'DELIVERY_FAILED', payment_id: p.id });
    case 'AUTHORIZER_UNAVAILABLE':
      return precondition(`payment declined: an authorizer could not be reached in time (fail closed): ${p.declineDetail ?? ''}`, { reason: 'AUTHORIZER_UNAVAILABLE', payment_id: p.id });
    case 'POLICY_DENIED':
      return precondition(`payment declined by policy: ${p.declineDetail ?? ''}`, { reason: 'POLICY_DENIED', payment_id: p.id });
    default:
      throw new Error(`assertion failed: ${p.declineReason} is not a create's decline`);
  }
}

function keyConflict(key: string): AuthzError {
  return new AuthzError('already_exists', 'this idempotency key was used for a different request', { idempotency_key: key });
}

async function settle(outcomes: ItemOutcome[], index: number, work: Promise<Payment>): Promise<void> {
  try {
    outcomes[index] = fulfilled(await work);
  } catch (error) {
    outcomes[index] = rejected(error);
  }
}
