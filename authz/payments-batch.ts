import { idToHex, newPaymentId } from '../ledger/ids.js';
import type { Decision } from './authorizer.js';
import type { AuthzError } from './errors.js';
import { checkProver, proofResponse, type Proof } from './factors.js';
import type { BillableLine, Caller, Factor, Merchant, Payer, Payment } from './model.js';
import type { PaymentAccounts, PostOutcome, ReserveOutcome } from './payment-ledger.js';
import type { CreatePaymentInput, PaymentsDeps } from './payments.js';
import { challengeStoreBatchMax, type ChallengeInput, type IdempotencyOutcome, type IdempotencyResult, type PutOptions, type RateLimitHit, type VerifyOutcome, type VerifyRequest } from './ports.js';
import { batchItemsMax, checkIdempotencyKey, checkPaymentId } from './validation.js';

/**
 * The batch RPCs (BatchCreatePayments, BatchConfirmPayments) as batches all the way down: the
 * items' idempotency keys claimed in one store call, their challenges stored, their rate limits
 * counted and their proofs verified in one call each, their records written in one repository
 * call, their reservations and posts made in one turn of the event loop (the coalescing ledger
 * sends them as one request). Each item's outcome is the one `PaymentsService.create` /
 * `confirm` would give it, with the same statuses and messages: every step is PaymentsService's
 * own (`BatchSteps`), and an item off the common path (a frictionless or declined create, a
 * billable line, a payment already being worked on, an id twice in one batch, a wrong code) runs
 * that item through the one-at-a-time path.
 */

/** One item's outcome: the payment, or the error the one-at-a-time call would have thrown. */
export type ItemOutcome = PromiseSettledResult<Payment>;

export interface ConfirmItem {
  paymentId: string;
  idempotencyKey: string;
  proof: Proof;
}

/** The account debited and, for M3c, the billable line. */
export interface Debit {
  accounts: PaymentAccounts;
  line: BillableLine | undefined;
}

/** What a create settles before its idempotency key is claimed. */
export interface PreparedCreate {
  payer: Payer;
  decision: Decision;
  debit: Debit;
  /** The request as its key is bound to (without the authentication password). */
  request: Omit<CreatePaymentInput, 'authPassword'>;
}

/** The factors still to prove, and whether the first code goes out by SMS or voice. */
export interface ChallengePlan {
  pending: Factor[];
  terminal: boolean;
  sendsCode: boolean;
}

/** A reserved payment made CHALLENGED, before anything is stored or sent. */
export interface ArmedChallenge {
  firstCode: string;
  challenged: Payment;
  challenges: ChallengeInput[];
  plan: ChallengePlan;
}

/** One of the three code-rate limits of a payer. */
export interface CodeRateCheck {
  name: 'destination' | 'payer' | 'prefix';
  hit: RateLimitHit;
}

/** Per-payment locks taken at once (PaymentsService.lockFree). */
export interface HeldLocks {
  locked: Set<string>;
  release(): void;
}

/** The steps of PaymentsService the batches are made of; payments.ts builds it over its own methods. */
export interface BatchSteps {
  prepareCreate(merchant: Merchant, input: CreatePaymentInput): Promise<PreparedCreate>;
  /** Under the payment's lock: replays `existing`, or makes the payment. */
  createClaimed(id: string, merchant: Merchant, input: CreatePaymentInput, prepared: PreparedCreate, existing: Payment | undefined): Promise<Payment>;
  /** `createClaimed` under the payment's lock, on a fresh read: the one-at-a-time path of a claimed create. */
  createSerialized(id: string, merchant: Merchant, input: CreatePaymentInput, prepared: PreparedCreate): Promise<Payment>;
  draft(id: string, merchant: Merchant, payer: Payer, debit: Debit, input: CreatePaymentInput, decision: Decision): Payment;
  plan(payment: Payment): ChallengePlan;
  codeRateChecks(payer: Payer): CodeRateCheck[];
  codeRateRefusal(checks: CodeRateCheck[], allowed: boolean[]): AuthzError | undefined;
  reservationSeconds(): number;
  declineForFunds(payment: Payment, outcome: Exclude<ReserveOutcome, 'reserved'>): Promise<never>;
  arm(payment: Payment, payer: Payer, plan: ChallengePlan): ArmedChallenge;
  /** Sends the code (and M3's call); a failed delivery declines the payment and throws UNAVAILABLE. */
  deliver(armed: ArmedChallenge, payer: Payer, merchant: Merchant): Promise<void>;
  fingerprint(request: unknown): string;
  storedResult(key: string, outcome: IdempotencyOutcome): string | undefined;
  lockFree(ids: string[]): HeldLocks;
  /** Writes records (`replacing`: of payments read from the repository) and publishes them. */
  saveMany(payments: Payment[], options?: PutOptions): Promise<void>;
  /** The one-at-a-time confirm. */
  confirmOne(caller: Caller, item: ConfirmItem): Promise<Payment>;
  seenBy(caller: Caller, paymentId: string, payment: Payment | undefined): Payment;
  scopeOf(caller: Caller): string;
  replay(stored: string): Promise<Payment>;
  checkProofFits(payment: Payment, proof: Proof): Factor;
  challengeIdOf(paymentId: string, factor: Factor): string;
  /** The one-at-a-time proof for a payment read under its lock, which the caller holds. */
  proveOn(caller: Caller, payment: Payment, proof: Proof): Promise<Payment>;
  verified(payment: Payment, factor: Factor, outcome: VerifyOutcome): Promise<Payment>;
  satisfy(payment: Payment, factor: Factor): Promise<Payment>;
  approved(payment: Payment, factor: Factor): Payment;
  settlementAccounts(payment: Payment): PaymentAccounts;
  posted(payment: Payment, outcome: PostOutcome): Payment;
  refusalOf(error: unknown): string | undefined;
  resultOf(payment: Payment): string;
}

type Deps = Pick<PaymentsDeps, 'challenges' | 'payments' | 'ledger' | 'codes' | 'limits'>;

interface CreateItem {
  index: number;
  input: CreatePaymentInput;
  prepared: PreparedCreate;
  /** The payment id: fresh, or the one a claimed key names. */
  id: string;
}

interface Drafted {
  item: CreateItem;
  payment: Payment;
  plan: ChallengePlan;
}

interface ConfirmWork {
  index: number;
  item: ConfirmItem;
}

interface OwnedConfirm extends ConfirmWork {
  payment: Payment;
  fingerprint: string;
}

interface Verifying {
  owned: OwnedConfirm;
  factor: Factor;
  request: VerifyRequest;
}

const fulfilled = (payment: Payment): ItemOutcome => ({ status: 'fulfilled', value: payment });
const rejected = (reason: unknown): ItemOutcome => ({ status: 'rejected', reason });

/** Every item in `items` gets `reason` as its outcome. */
function failAll(outcomes: ItemOutcome[], items: readonly { index: number }[], reason: unknown): void {
  for (const item of items) outcomes[item.index] = rejected(reason);
}

/** `run` over `items` in slices of at most `challengeStoreBatchMax`, one call after another; the answers in order. */
async function inSlices<T, R>(items: T[], run: (slice: T[]) => Promise<R[]>): Promise<R[]> {
  const answers: R[] = [];
  for (let start = 0; start < items.length; start += challengeStoreBatchMax) answers.push(...(await run(items.slice(start, start + challengeStoreBatchMax))));
  return answers;
}

export class PaymentsBatch {
  constructor(
    private readonly deps: Deps,
    private readonly steps: BatchSteps,
  ) {}

  // ------------------------------------------------------------------ create

  async create(merchant: Merchant, inputs: CreatePaymentInput[]): Promise<ItemOutcome[]> {
    if (inputs.length > batchItemsMax) throw new Error(`assertion failed: a batch holds at most ${batchItemsMax} items`);
    const outcomes = new Array<ItemOutcome>(inputs.length);
    const prepared = await Promise.allSettled(inputs.map((input) => this.steps.prepareCreate(merchant, input)));
    const claimable: CreateItem[] = [];
    prepared.forEach((p, index) => {
      if (p.status === 'rejected') outcomes[index] = p;
      else claimable.push({ index, input: inputs[index]!, prepared: p.value, id: idToHex(newPaymentId()) });
    });
    const { fresh, resumed } = await this.claimCreates(merchant, claimable, outcomes);
    const lock = this.steps.lockFree(fresh.map((item) => item.id));
    const queued = [...resumed, ...fresh.filter((item) => !lock.locked.has(item.id))];
    // Started once the locks are held: a key this batch claimed twice waits for its first item.
    const others = Promise.allSettled(queued.map((item) => this.steps.createSerialized(item.id, merchant, item.input, item.prepared)));
    try {
      await this.createLocked(merchant, fresh.filter((item) => lock.locked.has(item.id)), outcomes);
    } finally {
      lock.release();
    }
    (await others).forEach((outcome, i) => (outcomes[queued[i]!.index] = outcome));
    return outcomes;
  }

  /** One claim call for every item: `fresh` now own their key; `resumed` name the payment an earlier request made. */
  private async claimCreates(merchant: Merchant, items: CreateItem[], outcomes: ItemOutcome[]): Promise<{ fresh: CreateItem[]; resumed: CreateItem[] }> {
    const fresh: CreateItem[] = [];
    const resumed: CreateItem[] = [];
    if (items.length === 0) return { fresh, resumed };
    const claims = items.map((item) => ({ key: item.input.idempotencyKey, fingerprint: this.steps.fingerprint({ op: 'create', ...item.prepared.request }), resultIfNew: item.id }));
    let answers: IdempotencyOutcome[];
    try {
      answers = await this.deps.challenges.beginIdempotencyMany(merchant.id, claims, this.deps.limits.idempotencyTtlMs);
    } catch (error) {
      failAll(outcomes, items, error);
      return { fresh, resumed };
    }
    items.forEach((item, i) => {
      try {
        const stored = this.steps.storedResult(item.input.idempotencyKey, answers[i]!);
        if (stored === undefined) fresh.push(item);
        else resumed.push({ ...item, id: stored });
      } catch (error) {
        outcomes[item.index] = rejected(error);
      }
    });
    return { fresh, resumed };
  }

  /**
   * Under the items' locks (fresh ids, minted here and locked before anyone could learn them: no
   * payment has them yet): challenged payments in bulk, anything else one at a time.
   */
  private async createLocked(merchant: Merchant, items: CreateItem[], outcomes: ItemOutcome[]): Promise<void> {
    const bulk: Drafted[] = [];
    const single: CreateItem[] = [];
    for (const item of items) {
      const drafted = this.challengeDraft(merchant, item);
      if (drafted === undefined) single.push(item);
      else bulk.push(drafted);
    }
    const singles = Promise.allSettled(single.map((item) => this.steps.createClaimed(item.id, merchant, item.input, item.prepared, undefined)));
    await this.challengeMany(merchant, bulk, outcomes);
    (await singles).forEach((outcome, i) => (outcomes[single[i]!.index] = outcome));
  }

  /** The new payment's record when it is to be challenged without a billable line (the common path); undefined otherwise. */
  private challengeDraft(merchant: Merchant, item: CreateItem): Drafted | undefined {
    const { decision, debit, payer } = item.prepared;
    if (decision.kind !== 'REQUIRE' || debit.line !== undefined) return undefined;
    const payment = this.steps.draft(item.id, merchant, payer, debit, item.input, decision);
    if (payment.requiredFactors.length === payment.satisfiedFactors.length) return undefined;
    return { item, payment, plan: this.steps.plan(payment) };
  }

  /** PaymentsService.challenge for many payments: rate limits, reservations, challenges and records, then the codes. */
  private async challengeMany(merchant: Merchant, drafted: Drafted[], outcomes: ItemOutcome[]): Promise<void> {
    if (drafted.length === 0) return;
    const reserved = await this.reserve(await this.checkCodeRates(drafted, outcomes), outcomes);
    const armed: { d: Drafted; armed: ArmedChallenge }[] = [];
    for (const d of reserved) {
      try {
        armed.push({ d, armed: this.steps.arm(d.payment, d.item.prepared.payer, d.plan) });
      } catch (error) {
        outcomes[d.item.index] = rejected(error);
      }
    }
    if (armed.length === 0) return;
    try {
      await Promise.all([
        inSlices(armed.flatMap((a) => a.armed.challenges), async (slice) => (await this.deps.challenges.putChallenges(slice), [])),
        this.steps.saveMany(armed.map((a) => a.armed.challenged)),
      ]);
    } catch (error) {
      failAll(outcomes, armed.map((a) => a.d.item), error);
      return;
    }
    const delivered = await Promise.allSettled(armed.map((a) => this.steps.deliver(a.armed, a.d.item.prepared.payer, merchant)));
    delivered.forEach((sent, i) => {
      const { d, armed: a } = armed[i]!;
      outcomes[d.item.index] = sent.status === 'fulfilled' ? fulfilled(a.challenged) : rejected(sent.reason);
    });
  }

  /** The three code-rate limits of every payment that sends a code, counted in one call; those within them. */
  private async checkCodeRates(drafted: Drafted[], outcomes: ItemOutcome[]): Promise<Drafted[]> {
    const sending = drafted.filter((d) => d.plan.sendsCode);
    if (sending.length === 0) return drafted;
    const checks = sending.map((d) => this.steps.codeRateChecks(d.item.prepared.payer));
    let allowed: boolean[];
    try {
      allowed = await inSlices(checks.flat().map((c) => c.hit), (slice) => this.deps.challenges.hitRateLimits(slice));
    } catch (error) {
      failAll(outcomes, sending.map((d) => d.item), error);
      return drafted.filter((d) => !d.plan.sendsCode);
    }
    const refused = new Set<Drafted>();
    let offset = 0;
    sending.forEach((d, i) => {
      const mine = checks[i]!;
      const refusal = this.steps.codeRateRefusal(mine, allowed.slice(offset, offset + mine.length));
      offset += mine.length;
      if (refusal === undefined) return;
      outcomes[d.item.index] = rejected(refusal);
      refused.add(d);
    });
    return drafted.filter((d) => !refused.has(d));
  }

  /** Every reservation in one turn of the event loop (one ledger request); a refusal declines its payment. */
  private async reserve(drafted: Drafted[], outcomes: ItemOutcome[]): Promise<Drafted[]> {
    const seconds = this.steps.reservationSeconds();
    const answers = await Promise.allSettled(drafted.map((d) => this.deps.ledger.reserve(d.payment, d.item.prepared.debit.accounts, seconds)));
    const reserved: Drafted[] = [];
    const declines: Promise<void>[] = [];
    answers.forEach((answer, i) => {
      const d = drafted[i]!;
      if (answer.status === 'rejected') outcomes[d.item.index] = rejected(answer.reason);
      else if (answer.value === 'reserved') reserved.push(d);
      else declines.push(this.steps.declineForFunds(d.payment, answer.value).catch((error: unknown) => void (outcomes[d.item.index] = rejected(error))));
    });
    await Promise.all(declines);
    return reserved;
  }

  // ------------------------------------------------------------------ confirm

  async confirm(caller: Caller, items: ConfirmItem[]): Promise<ItemOutcome[]> {
    if (items.length > batchItemsMax) throw new Error(`assertion failed: a batch holds at most ${batchItemsMax} items`);
    const outcomes = new Array<ItemOutcome>(items.length);
    const valid: ConfirmWork[] = [];
    items.forEach((item, index) => {
      try {
        checkIdempotencyKey(item.idempotencyKey);
        checkProver(caller, item.proof);
        checkPaymentId(item.paymentId, 'payment_id');
        valid.push({ index, item });
      } catch (error) {
        outcomes[index] = rejected(error);
      }
    });
    const lock = this.steps.lockFree(valid.map((w) => w.item.paymentId));
    const mine: ConfirmWork[] = [];
    const queued: ConfirmWork[] = [];
    const taken = new Set<string>();
    for (const w of valid) {
      const own = lock.locked.has(w.item.paymentId) && !taken.has(w.item.paymentId);
      if (own) taken.add(w.item.paymentId);
      (own ? mine : queued).push(w);
    }
    // Started once the locks are held: a payment named twice waits for its first item.
    const others = Promise.allSettled(queued.map((w) => this.steps.confirmOne(caller, w.item)));
    let owned: { owned: OwnedConfirm; outcome: ItemOutcome }[];
    try {
      owned = await this.confirmLocked(caller, mine, outcomes);
    } finally {
      lock.release();
    }
    await this.completeConfirms(caller, owned, outcomes);
    (await others).forEach((outcome, i) => (outcomes[queued[i]!.index] = outcome));
    return outcomes;
  }

  /** Under the payments' locks: read, check visibility, claim the keys; proofs for the keys now owned, replays for the others. */
  private async confirmLocked(caller: Caller, work: ConfirmWork[], outcomes: ItemOutcome[]): Promise<{ owned: OwnedConfirm; outcome: ItemOutcome }[]> {
    if (work.length === 0) return [];
    let found: (Payment | undefined)[];
    try {
      found = await this.deps.payments.getMany(work.map((w) => w.item.paymentId));
    } catch (error) {
      failAll(outcomes, work, error);
      return [];
    }
    const visible: { w: ConfirmWork; payment: Payment }[] = [];
    work.forEach((w, i) => {
      try {
        visible.push({ w, payment: this.steps.seenBy(caller, w.item.paymentId, found[i]) });
      } catch (error) {
        outcomes[w.index] = rejected(error);
      }
    });
    const { owned, replays } = await this.claimConfirms(caller, visible, outcomes);
    const replayed = Promise.allSettled(replays.map((r) => this.steps.replay(r.stored)));
    const proved = await this.prove(caller, owned);
    (await replayed).forEach((outcome, i) => (outcomes[replays[i]!.w.index] = outcome));
    return owned.map((o, i) => ({ owned: o, outcome: proved[i]! }));
  }

  private async claimConfirms(caller: Caller, visible: { w: ConfirmWork; payment: Payment }[], outcomes: ItemOutcome[]) {
    const owned: OwnedConfirm[] = [];
    const replays: { w: ConfirmWork; stored: string }[] = [];
    if (visible.length === 0) return { owned, replays };
    const claims = visible.map(({ w }) => ({ key: w.item.idempotencyKey, fingerprint: this.steps.fingerprint({ op: 'confirm', paymentId: w.item.paymentId, proof: w.item.proof }) }));
    let answers: IdempotencyOutcome[];
    try {
      answers = await this.deps.challenges.beginIdempotencyMany(this.steps.scopeOf(caller), claims, this.deps.limits.idempotencyTtlMs);
    } catch (error) {
      failAll(outcomes, visible.map((v) => v.w), error);
      return { owned, replays };
    }
    visible.forEach(({ w, payment }, i) => {
      try {
        const stored = this.steps.storedResult(w.item.idempotencyKey, answers[i]!);
        if (stored === undefined) owned.push({ ...w, payment, fingerprint: claims[i]!.fingerprint });
        else replays.push({ w, stored });
      } catch (error) {
        outcomes[w.index] = rejected(error);
      }
    });
    return { owned, replays };
  }

  /** PaymentsService.proveOn for many: second codes verified in one call, approvals posted together; the rest one at a time. */
  private async prove(caller: Caller, owned: OwnedConfirm[]): Promise<ItemOutcome[]> {
    const results = new Array<ItemOutcome>(owned.length);
    const at = new Map(owned.map((o, i) => [o, i]));
    const single: Promise<void>[] = [];
    const verifying: Verifying[] = [];
    await Promise.all(
      owned.map(async (o) => {
        if (o.payment.state === 'APPROVED' || o.item.proof.kind !== 'second_code') {
          single.push(settleInto(results, at.get(o)!, this.steps.proveOn(caller, o.payment, o.item.proof)));
          return;
        }
        try {
          verifying.push(await this.verifyRequest(o));
        } catch (error) {
          results[at.get(o)!] = rejected(error);
        }
      }),
    );
    // In item order: answers of one payer count toward its lockout in the order the items came.
    verifying.sort((a, b) => at.get(a.owned)! - at.get(b.owned)!);
    await this.verifyMany(verifying, results, at);
    await Promise.all(single);
    return results;
  }

  /** The checks of proveOn for a second code, in its order; the request for the store. */
  private async verifyRequest(o: OwnedConfirm): Promise<Verifying> {
    const factor = this.steps.checkProofFits(o.payment, o.item.proof);
    const { response, forceMismatch } = await proofResponse(o.item.proof, undefined, this.deps.codes.verifyPin);
    const challengeId = this.steps.challengeIdOf(o.payment.id, factor);
    return { owned: o, factor, request: { challengeId, payerId: o.payment.payerId, digest: this.deps.codes.digest(challengeId, response), forceMismatch } };
  }

  private async verifyMany(verifying: Verifying[], results: ItemOutcome[], at: Map<OwnedConfirm, number>): Promise<void> {
    if (verifying.length === 0) return;
    let answers: VerifyOutcome[];
    try {
      answers = await inSlices(verifying.map((v) => v.request), (slice) => this.deps.challenges.verifyAndConsumeMany(slice));
    } catch (error) {
      for (const v of verifying) results[at.get(v.owned)!] = rejected(error);
      return;
    }
    const approving: Verifying[] = [];
    const single: Promise<void>[] = [];
    verifying.forEach((v, i) => {
      const answer = answers[i]!;
      const { payment } = v.owned;
      const last = payment.requiredFactors.every((f) => f === v.factor || payment.satisfiedFactors.includes(f));
      if (answer.outcome === 'ok' && last) approving.push(v);
      else if (answer.outcome === 'ok') single.push(settleInto(results, at.get(v.owned)!, this.steps.satisfy(payment, v.factor)));
      else single.push(settleInto(results, at.get(v.owned)!, this.steps.verified(payment, v.factor, answer)));
    });
    await this.approveMany(approving, results, at);
    await Promise.all(single);
  }

  /** PaymentsService.satisfy + settle for many: APPROVED records, the posts in one turn of the event loop, the final records. */
  private async approveMany(approving: Verifying[], results: ItemOutcome[], at: Map<OwnedConfirm, number>): Promise<void> {
    if (approving.length === 0) return;
    const approved = approving.map((v) => this.steps.approved(v.owned.payment, v.factor));
    const fail = (i: number, error: unknown) => (results[at.get(approving[i]!.owned)!] = rejected(error));
    try {
      await this.steps.saveMany(approved, { replacing: true });
    } catch (error) {
      approved.forEach((_, i) => fail(i, error));
      return;
    }
    const posts = await Promise.allSettled(approved.map(async (p) => this.deps.ledger.post(p, this.steps.settlementAccounts(p))));
    const finals: { i: number; payment: Payment }[] = [];
    posts.forEach((post, i) => {
      if (post.status === 'rejected') fail(i, post.reason);
      else finals.push({ i, payment: this.steps.posted(approved[i]!, post.value) });
    });
    try {
      await this.steps.saveMany(finals.map((f) => f.payment), { replacing: true });
    } catch (error) {
      finals.forEach((f) => fail(f.i, error));
      return;
    }
    for (const f of finals) results[at.get(approving[f.i]!.owned)!] = fulfilled(f.payment);
  }

  /** What each owned key remembers: the payment, the refusal, or nothing (released) for an outcome that may change on retry. */
  private async completeConfirms(caller: Caller, done: { owned: OwnedConfirm; outcome: ItemOutcome }[], outcomes: ItemOutcome[]): Promise<void> {
    if (done.length === 0) return;
    const scope = this.steps.scopeOf(caller);
    const results: IdempotencyResult[] = [];
    const recorded: typeof done = [];
    const released: typeof done = [];
    for (const d of done) {
      const remembered = d.outcome.status === 'fulfilled' ? this.steps.resultOf(d.outcome.value) : this.steps.refusalOf(d.outcome.reason);
      if (remembered === undefined) {
        released.push(d);
        continue;
      }
      results.push({ key: d.owned.item.idempotencyKey, fingerprint: d.owned.fingerprint, result: remembered });
      recorded.push(d);
    }
    const [completed, ...abandoned] = await Promise.allSettled([
      results.length === 0 ? Promise.resolve() : this.deps.challenges.completeIdempotencyMany(scope, results, this.deps.limits.idempotencyTtlMs),
      ...released.map((d) => this.deps.challenges.abandonIdempotency(scope, d.owned.item.idempotencyKey)),
    ]);
    for (const d of recorded) outcomes[d.owned.index] = completed!.status === 'rejected' ? rejected(completed!.reason) : d.outcome;
    released.forEach((d, i) => {
      const abandon = abandoned[i]!;
      outcomes[d.owned.index] = abandon.status === 'rejected' ? rejected(abandon.reason) : d.outcome;
    });
  }
}

/** Waits for `work` and records its outcome at `results[i]`. */
async function settleInto(results: ItemOutcome[], i: number, work: Promise<Payment>): Promise<void> {
  try {
    results[i] = fulfilled(await work);
  } catch (error) {
    results[i] = rejected(error);
  }
}
