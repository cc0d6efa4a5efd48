import { unreachable } from '../../ledger/assert.js';
import { DomainError, precondition } from '../errors.js';
import { legacyCreateFingerprint } from '../fingerprint.js';
import type { Merchant, Payment } from '../model.js';
import type { CreateOutcome, PaymentRecord } from '../store/port.js';
import type { ChallengeOwners } from './challenge-owners.js';
import { fulfilled, type ItemOutcome, publish, rejected, type StepDeps } from './context.js';
import { type CreatePaymentInput, CreatePreparer, type PreparedCreate } from './create-prepare.js';
import { challengeMessages, deliverOrDecline, sendChallenge } from './deliver.js';
import { drive } from './drive.js';
import { isPhantomPayment } from './phantom-payer.js';
import { createRefusal } from './refusals.js';

/** An item on its way to the store: `legacy` once asked with an earlier version's fingerprint, `redrafted` once drafted with the id its key names. */
interface Ready {
  index: number;
  p: PreparedCreate;
  legacy?: true;
  redrafted?: true;
}

/** A payment the store step created, with its item's index and preparation. */
interface Created {
  index: number;
  p: PreparedCreate;
  record: PaymentRecord;
}

/**
 * The create step, for one payment or a batch of them (unary calls are coalesced into the
 * store's step by the store decorator; BatchCreatePayments passes its items here at once):
 *
 * 1. prepare: checks, payer, policy, the record to write (create-prepare.ts), no store writes;
 * 2. ONE store step for all items: claims each key and writes its record, counters and due
 *    entry atomically — or answers the payment (or refusal) an earlier identical request made;
 * 3. a payment that needs no factor is approved: reserve-and-post (drive.ts), or declined for
 *    funds; a CHALLENGED one holds no money until its payer consents (README "Tenant safety");
 * 4. the first codes and calls go out.
 *
 * A crash after 2 leaves a record the next touch finishes (a retry of the create sends the code
 * again, the sweeper posts an approved one or expires a challenged one): nothing is lost and no
 * key is stuck.
 */
export class CreateStep {
  private readonly preparer: CreatePreparer;
  /**
   * Creates of this process between their store step and their answer, by payment id: a retry
   * (or a concurrent duplicate) meeting one waits for its answer instead of guessing. Bounded by
   * the calls in flight.
   */
  private readonly finishing = new Map<string, { batch: Promise<ItemOutcome[]>; at: number }>();

  constructor(
    private readonly deps: StepDeps,
    private readonly owners: ChallengeOwners,
  ) {
    this.preparer = new CreatePreparer(deps);
  }

  async run(merchant: Merchant | Promise<Merchant>, inputs: readonly CreatePaymentInput[]): Promise<ItemOutcome[]> {
    const outcomes = new Array<ItemOutcome>(inputs.length);
    const prepared = await Promise.allSettled(inputs.map((input) => this.preparer.prepare(merchant, input)));
    const ready: Ready[] = [];
    prepared.forEach((p, index) => (p.status === 'fulfilled' ? ready.push({ index, p: p.value }) : (outcomes[index] = p)));
    await this.write(merchant, ready, outcomes);
    return outcomes;
  }

  /**
   * The store's step for `ready`, then each item's next move. An item is written at most three
   * times: a `conflict` is asked once more with the fingerprint an earlier version stored
   * (fingerprint.ts), a `missing` once more redrafted with the payment id its key names.
   */
  private async write(merchant: Merchant | Promise<Merchant>, ready: Ready[], outcomes: ItemOutcome[]): Promise<void> {
    if (ready.length === 0) return;
    let answers: CreateOutcome[];
    try {
      answers = await this.deps.store.create(ready.map((r) => r.p.item));
    } catch (error) {
      for (const r of ready) outcomes[r.index] = rejected(error);
      return;
    }
    const created: Created[] = [];
    const later: Promise<void>[] = [];
    const redraft: Ready[] = [];
    answers.forEach((answer, k) => {
      const r = ready[k]!;
      const { index, p } = r;
      if (answer.outcome === 'created') {
        created.push({ index, p, record: answer.record });
        this.owners.remember(answer.record.payment);
      } else if (answer.outcome === 'replayed') later.push(settle(outcomes, index, this.replay(answer.record)));
      else if (answer.outcome === 'refused') outcomes[index] = rejected(createRefusal(answer.refusal, this.deps.limits, p.item.rateLimits));
      else if (answer.outcome === 'conflict' && r.legacy !== true) redraft.push({ ...r, p: this.withLegacyFingerprint(p), legacy: true });
      else if (answer.outcome === 'conflict') outcomes[index] = rejected(keyConflict(p.input.idempotencyKey));
      else if (r.redrafted !== true)
        later.push(
          this.preparer.prepare(p.merchant, p.input, answer.paymentId).then(
            (again) => void redraft.push({ ...r, p: r.legacy === true ? this.withLegacyFingerprint(again) : again, redrafted: true }),
            (e: unknown) => void (outcomes[index] = rejected(e)),
          ),
        );
      else outcomes[index] = rejected(new DomainError('unavailable', 'the payment store is recovering this request; retry shortly'));
    });
    publish(
      this.deps,
      created.map((c) => c.record),
    );
    await Promise.all([this.finish(created, outcomes), ...later]);
    await this.write(merchant, redraft, outcomes);
  }

  /** The same create with the fingerprint an earlier version stored for it (fingerprint.ts). */
  private withLegacyFingerprint(p: PreparedCreate): PreparedCreate {
    return { ...p, item: { ...p.item, fingerprint: legacyCreateFingerprint(this.deps.codes, p.input) } };
  }

  /**
   * New payments, as one batch: the approved ones (no factor needed) posted together — one
   * ledger request and one store step for all of them (drive.ts) — or declined for funds; then
   * the codes and calls of the challenged ones go out (a message each: the notifier's unit).
   */
  private async finish(created: Created[], outcomes: ItemOutcome[]): Promise<void> {
    if (created.length === 0) return;
    const batch = this.finishAll(created);
    for (let i = 0; i < created.length; i++) this.finishing.set(created[i]!.record.payment.id, { batch, at: i });
    try {
      const done = await batch;
      for (let i = 0; i < created.length; i++) outcomes[created[i]!.index] = done[i]!;
    } finally {
      for (const c of created) this.finishing.delete(c.record.payment.id);
    }
  }

  private async finishAll(created: Created[]): Promise<ItemOutcome[]> {
    const done = new Array<ItemOutcome>(created.length);
    const records = created.map((c) => c.record);
    const approved: number[] = [];
    for (let i = 0; i < records.length; i++) {
      const p = records[i]!.payment;
      // An unknown phone's payment: recorded like any, but nobody to send to.
      if (p.state === 'DECLINED' || isPhantomPayment(p)) done[i] = settledOutcome(p);
      else if (p.state === 'APPROVED') approved.push(i);
    }
    if (approved.length > 0) {
      try {
        const driven = await drive(
          this.deps,
          approved.map((i) => records[i]!),
        );
        for (let k = 0; k < approved.length; k++) records[approved[k]!] = driven[k]!;
      } catch (error) {
        for (const i of approved) done[i] = rejected(error);
      }
    }
    const sending: Promise<void>[] = [];
    for (let i = 0; i < records.length; i++) {
      if (done[i] !== undefined) continue;
      const record = records[i]!;
      if (record.payment.state !== 'CHALLENGED') done[i] = settledOutcome(record.payment);
      else sending.push(this.send(created[i]!.p, record, done, i));
    }
    if (sending.length > 0) await Promise.all(sending);
    return done;
  }

  /** A new CHALLENGED payment's code (and call) sent, or the payment declined when it cannot be: `done[i]` says which. */
  private async send(p: PreparedCreate, record: PaymentRecord, done: ItemOutcome[], i: number): Promise<void> {
    try {
      const payment = record.payment;
      await deliverOrDecline(this.deps, record, () =>
        sendChallenge(this.deps, payment, challengeMessages(this.deps, payment, p.firstCode), { payer: p.payer, merchant: p.merchant }),
      );
      done[i] = fulfilled(payment);
    } catch (error) {
      done[i] = rejected(error);
    }
  }

  /**
   * A retry of a create: the payment it made, driven on if its create stopped half way, or the
   * same refusal it met. A CHALLENGED payment's code is sent again (whether the call that made it
   * got that far is not known here): within the create's lease the text only — the channel
   * de-duplicates by delivery key, and a second copy of the same code is harmless — after it the
   * phone call too (a second call is not harmless, so not while the first create may still be
   * placing it).
   */
  private async replay(found: PaymentRecord): Promise<Payment> {
    const finishing = this.finishing.get(found.payment.id);
    if (finishing !== undefined) return unwrap((await finishing.batch)[finishing.at]!);
    if (isPhantomPayment(found.payment)) return unwrap(outcomeOf((await drive(this.deps, [found]))[0]!.payment));
    let record = found;
    const now = this.deps.now();
    const unfinished =
      record.payment.state === 'APPROVED' ||
      (record.payment.state === 'CHALLENGED' && now >= record.payment.expiresAtMs) ||
      (record.payment.state !== 'CHALLENGED' && record.dueAtMs !== undefined);
    if (unfinished) record = (await drive(this.deps, [record]))[0]!;
    const p = record.payment;
    if (p.state !== 'CHALLENGED') return unwrap(outcomeOf(p));
    const withinLease = now < p.createdAtMs + this.deps.limits.createLeaseMs;
    const messages = challengeMessages(this.deps, p, undefined);
    await deliverOrDecline(this.deps, record, () => sendChallenge(this.deps, p, withinLease ? { code: messages.code, call: false } : messages));
    return p;
  }
}

/** Declines a create answers with an error (the payment never got to its payer); other declines are answers (the payer said no). */
const createDeclines: ReadonlySet<string> = new Set([
  'INSUFFICIENT_FUNDS',
  'CREDIT_LIMIT_EXCEEDED',
  'DELIVERY_FAILED',
  'AUTHORIZER_UNAVAILABLE',
  'POLICY_DENIED',
]);

/** The answer a create gives for its payment as it now is: the payment, or the refusal a decline stands for. */
function outcomeOf(payment: Payment): ItemOutcome {
  return payment.state === 'DECLINED' && createDeclines.has(payment.declineReason ?? '') ? rejected(declinedError(payment)) : fulfilled(payment);
}

/** `outcomeOf`, its own failure (a decline no create makes: a bug) that item's outcome only. */
function settledOutcome(payment: Payment): ItemOutcome {
  try {
    return outcomeOf(payment);
  } catch (error) {
    return rejected(error);
  }
}

function unwrap(outcome: ItemOutcome): Payment {
  if (outcome.status === 'rejected') throw outcome.reason;
  return outcome.value;
}

/** What a create answers for a payment it declined (and every retry of it answers the same). */
function declinedError(p: Payment): DomainError {
  switch (p.declineReason) {
    case 'INSUFFICIENT_FUNDS':
      return precondition('insufficient funds', { reason: 'INSUFFICIENT_FUNDS', payment_id: p.id });
    case 'CREDIT_LIMIT_EXCEEDED':
      return precondition("credit limit exceeded: the charge would exceed the billable line's credit limit for the billing period", {
        reason: 'CREDIT_LIMIT_EXCEEDED',
        payment_id: p.id,
      });
    case 'DELIVERY_FAILED':
      return new DomainError('unavailable', 'the payer could not be reached; this payment is declined — retry with a new idempotency key', {
        reason: 'DELIVERY_FAILED',
        payment_id: p.id,
      });
    case 'AUTHORIZER_UNAVAILABLE':
      return precondition(`payment declined: an authorizer could not be reached in time (fail closed): ${p.declineDetail ?? ''}`, {
        reason: 'AUTHORIZER_UNAVAILABLE',
        payment_id: p.id,
      });
    case 'POLICY_DENIED':
      return precondition(`payment declined by policy: ${p.declineDetail ?? ''}`, { reason: 'POLICY_DENIED', payment_id: p.id });
    default:
      return unreachable(`${p.declineReason} is not a create's decline`);
  }
}

function keyConflict(key: string): DomainError {
  return new DomainError('already_exists', 'this idempotency key was used for a different request', { idempotency_key: key });
}

async function settle(outcomes: ItemOutcome[], index: number, work: Promise<Payment>): Promise<void> {
  try {
    outcomes[index] = fulfilled(await work);
  } catch (error) {
    outcomes[index] = rejected(error);
  }
}
