import { currencyOf } from '../ledger/chart.js';
import { MinHeap } from '../ledger/heap.js';
import { idFromHex, idToHex, newPaymentId } from '../ledger/ids.js';
import { decide, type Authorizer, type Decision } from './authorizer.js';
import { canonicalJson } from './fingerprint.js';
import { challengedFactors, checkOrder, checkProver, codeFactors, expectedResponse, factorOf, pathOfCaller, pathOfChannel, proofName, proofResponse, supportedFactors, type Proof } from './factors.js';
import { billingPeriodOf, checkSim, linePeriodIds, payNumberDigest, payNumberDigits, sameSim, type PlatformAccounts } from './enrollment.js';
import { AuthzError, invalid, notFound, precondition } from './errors.js';
import type { PaymentEvents } from './events.js';
import type { BillableLine, Caller, Channel, Factor, Merchant, Payer, Payment, SealedEnvelope, SimIdentity } from './model.js';
import { terminalStates } from './model.js';
import type { Notifier } from './notifier.js';
import { PaymentLedger, type PaymentAccounts, type PostOutcome } from './payment-ledger.js';
import { PaymentsBatch, type ArmedChallenge, type ChallengePlan, type CodeRateCheck, type ConfirmItem, type Debit, type HeldLocks, type ItemOutcome, type PreparedCreate } from './payments-batch.js';
import {
  BankRequestError,
  BankUnavailableError,
  type BankDecision,
  type BankGateway,
  type BankKey,
  type ChallengeInput,
  type ChallengeStore,
  type Directory,
  type IdempotencyOutcome,
  type PaymentRepository,
  type PutOptions,
  type VerifyOutcome,
} from './ports.js';
import { checkAmount, checkCurrency, checkDescription, checkIdempotencyKey, checkPaymentId, checkPhone } from './validation.js';

/** The code operations the service needs; services/ wires authz/codes into it. */
export interface CodeKit {
  newFirstCode(): string;
  deriveSecondCode(secret: Buffer, fields: { firstCode: string; amount: bigint; currency: string; payeeAccountId: string }): string;
  /** Keyed digest of a response for the challenge store. */
  digest(challengeId: string, response: string): string;
  openPayerSecret(payer: Payer): Buffer;
  sealFirstCode(paymentId: string, firstCode: string): string;
  openFirstCode(paymentId: string, sealed: string): string;
  verifyPin(phc: string, pin: string): Promise<boolean>;
}

export interface PaymentLimits {
  /** Lifetime of a challenge and its first code, milliseconds (default 5 minutes). */
  codeTtlMs: number;
  /** Wrong answers allowed per challenge before the payment is declined (5). */
  attemptsMax: number;
  /** The reservation outlives the challenge by this many seconds, so a last-moment answer can still post. */
  reservationGraceSeconds: number;
  /** How long idempotency keys are remembered, milliseconds (24 h). */
  idempotencyTtlMs: number;
  /** SMS-pumping defence: codes sent to one number per `codeRateWindowMs`. */
  codesPerDestinationMax: number;
  /** Codes sent for one payer per window. */
  codesPerPayerMax: number;
  /** Codes sent to one number prefix (`+` and the first 6 digits) per window. */
  codesPerPrefixMax: number;
  /** The window of the three code-rate limits, milliseconds. */
  codeRateWindowMs: number;
}

export const defaultPaymentLimits: PaymentLimits = {
  codeTtlMs: 300_000,
  attemptsMax: 5,
  reservationGraceSeconds: 60,
  idempotencyTtlMs: 86_400_000,
  codesPerDestinationMax: 5,
  codesPerPayerMax: 10,
  codesPerPrefixMax: 100,
  codeRateWindowMs: 600_000,
};

export { supportedFactors, type Proof } from './factors.js';
export type { ConfirmItem, ItemOutcome } from './payments-batch.js';

export interface CreatePaymentInput {
  idempotencyKey: string;
  payerId?: string;
  payerPhone?: string;
  /** M3: the consumer's login account. */
  loginAccount?: string;
  /** M5: a dynamic pay number from IssuePayNumber (single use). */
  payNumber?: string;
  /** M3c: charge this billable line of the payer instead of the prepaid account. */
  billableLineId?: string;
  /** M4: the main SIM the request came through. */
  originSim?: SimIdentity;
  /** M3: the authentication password given with the payment (a secret: never stored or fingerprinted). */
  authPassword?: string;
  /** Empty: the merchant's own account in the currency. */
  payeeAccountId: string;
  amount: bigint;
  currency: string;
  description: string;
  channel: Channel;
  requestedFactors: Factor[];
}


export interface PaymentsDeps {
  ledger: PaymentLedger;
  challenges: ChallengeStore;
  payments: PaymentRepository;
  directory: Directory;
  authorizers: Authorizer[];
  notifier: Notifier;
  codes: CodeKit;
  events: PaymentEvents;
  /** The platform's fee, operator settlement and bank settlement accounts per currency code. */
  platform: PlatformAccounts;
  /** M5: the payers' bank front-end; without it FACTOR_BANK_CARD_PIN is unavailable. */
  bank?: BankGateway;
  limits: PaymentLimits;
  now: () => number;
}


/** What an idempotency key remembers: the payment the request produced, or its refusal. */
type StoredOutcome = { paymentId: string } | { error: { kind: AuthzError['kind']; message: string; details: Record<string, string | number> } };

/** The stored result of a claimed idempotency key (undefined: the caller now owns the key), or the refusal. */
function storedResult(key: string, outcome: IdempotencyOutcome): string | undefined {
  if (outcome.status === 'conflict') {
    throw new AuthzError('already_exists', 'this idempotency key was used for a different request', { idempotency_key: key });
  }
  if (outcome.status === 'in_progress') throw new AuthzError('unavailable', 'a request with this idempotency key is in progress; retry shortly');
  return outcome.status === 'done' ? outcome.result : undefined;
}

/** What a key remembers of a failed request; undefined when the key must be released (the outcome may change on retry). */
function refusalOf(error: unknown): string | undefined {
  if (!(error instanceof AuthzError) || error.kind === 'unavailable') return undefined;
  return JSON.stringify({ error: { kind: error.kind, message: error.message, details: error.details } } satisfies StoredOutcome);
}

function resultOf(payment: Payment): string {
  return JSON.stringify({ paymentId: payment.id } satisfies StoredOutcome);
}

/** The factors still to prove, and whether the first code is sent (SMS or voice) rather than shown on the payer's own terminal. */
function challengePlan(payment: Payment): ChallengePlan {
  const pending = payment.requiredFactors.filter((f) => !payment.satisfiedFactors.includes(f));
  const terminal = payment.channel === 'APP' || payment.channel === 'WEB';
  return { pending, terminal, sendsCode: !terminal && pending.some((f) => codeFactors.has(f)) };
}

/** The first code-rate limit the answers refused, as the refusal. */
function codeRateRefusal(checks: CodeRateCheck[], allowed: boolean[]): AuthzError | undefined {
  const refused = checks.find((_, i) => !allowed[i]);
  if (refused === undefined) return undefined;
  const { name, hit } = refused;
  return new AuthzError('resource_exhausted', `too many codes sent (${name} limit: ${hit.limit} per ${hit.windowMs / 1000} s); try again later`, {
    reason: `CODE_RATE_${name.toUpperCase()}`,
    limit: hit.limit,
    window_ms: hit.windowMs,
  });
}

/** The factor `proof` answers, when the payment is CHALLENGED and waits for it; the precise refusal otherwise. */
function checkProofFits(payment: Payment, proof: Proof): Factor {
  if (payment.state !== 'CHALLENGED') {
    throw precondition(`payment is ${payment.state}, not waiting for proof`, { reason: payment.state, state: payment.state });
  }
  const factor = factorOf(proof);
  if (!payment.requiredFactors.includes(factor) || payment.satisfiedFactors.includes(factor)) {
    throw precondition(`payment is not waiting for ${factor}`, { reason: 'FACTOR_NOT_REQUIRED' });
  }
  checkOrder(payment, factor);
  return factor;
}

/** The payment if the caller may see it; NOT_FOUND otherwise (no existence leak). */
function seenBy(caller: Caller, paymentId: string, payment: Payment | undefined): Payment {
  const allowed =
    payment !== undefined &&
    (caller.kind === 'admin' ||
      caller.kind === 'service' ||
      (caller.kind === 'merchant' && payment.merchantId === caller.merchantId) ||
      (caller.kind === 'payer' && payment.payerId === caller.payerId));
  if (!allowed) throw notFound(`payment ${paymentId} not found`);
  return payment;
}

/** A create retried with the same key: the same payment, or the same refusal it met. */
function replayCreated(payment: Payment): Payment {
  if (payment.state === 'DECLINED' && payment.declineReason === 'INSUFFICIENT_FUNDS') {
    throw precondition('insufficient funds', { reason: 'INSUFFICIENT_FUNDS', payment_id: payment.id });
  }
  if (payment.state === 'DECLINED' && payment.declineReason === 'DELIVERY_FAILED') {
    throw new AuthzError('unavailable', 'the payer could not be reached; this payment is declined — retry with a new idempotency key', { reason: 'DELIVERY_FAILED', payment_id: payment.id });
  }
  if (payment.state === 'DECLINED' && payment.declineReason === 'POLICY_DENIED') {
    throw precondition(`payment declined by policy: ${payment.declineDetail ?? ''}`, { reason: 'POLICY_DENIED', payment_id: payment.id });
  }
  return payment;
}

/** A factor that needs a PIN or password the payer never set could only fail: refuse before reserving. */
function checkSecretsSet(payer: Payer, factors: Factor[]): void {
  const missing = factors.filter(
    (f) => (f === 'FIRST_CODE_AND_PIN' && payer.pinHash === undefined) || (f === 'IVR_PASSWORD' && payer.ivrPasswordHash === undefined) || (f === 'AUTH_PASSWORD' && payer.authPasswordHash === undefined),
  );
  if (missing.length > 0) throw precondition(`the payer has not set what ${missing.join(', ')} needs (PIN or password)`, { reason: 'PAYER_SECRET_NOT_SET' });
}

/** Named bounds of a sealed envelope (M5); the bank checks the cryptography. */
export const envelopeBounds = { suiteCharsMax: 100, keyIdCharsMax: 64, ephemeralKeyBytesMax: 133, nonceBytes: 12, ciphertextBytesMax: 2048, ciphertextBytesMin: 17 } as const;

function checkEnvelope(e: SealedEnvelope): void {
  const b = envelopeBounds;
  if (e.suite === '' || e.suite.length > b.suiteCharsMax) throw invalid(`bank_card.suite must be 1 to ${b.suiteCharsMax} characters`);
  if (e.keyId === '' || e.keyId.length > b.keyIdCharsMax) throw invalid(`bank_card.key_id must be 1 to ${b.keyIdCharsMax} characters`);
  if (e.ephemeralPublicKey.length === 0 || e.ephemeralPublicKey.length > b.ephemeralKeyBytesMax) throw invalid(`bank_card.ephemeral_public_key must be 1 to ${b.ephemeralKeyBytesMax} bytes`);
  if (e.nonce.length !== b.nonceBytes) throw invalid(`bank_card.nonce must be ${b.nonceBytes} bytes`);
  if (e.ciphertext.length < b.ciphertextBytesMin || e.ciphertext.length > b.ciphertextBytesMax) throw invalid(`bank_card.ciphertext must be ${b.ciphertextBytesMin} to ${b.ciphertextBytesMax} bytes`);
}

/**
 * M4: why a paired device's message cannot approve the payment, or undefined when it may: it
 * must come on another path than the request, from a device paired with the request's main SIM,
 * carrying exactly that device's auxiliary SIM.
 */
function deviceMismatch(payment: Payment, payer: Payer | undefined, proof: Extract<Proof, { kind: 'paired_device' }>, caller: Caller): string | undefined {
  if (payment.originPath !== undefined && pathOfCaller(caller) === payment.originPath) return `the paired device's message came on the same path (${payment.originPath}) as the payment request`;
  const device = payer?.pairedDevices?.find((d) => d.id === proof.deviceId);
  if (device === undefined) return 'no such paired device';
  if (payment.originSim === undefined || !sameSim(device.mainSim, payment.originSim)) return 'the device is not paired with the SIM the request came through';
  if (!sameSim(device.auxiliarySim, proof.auxiliarySim)) return "the message's SIM is not the paired auxiliary SIM";
  return undefined;
}

/** Line periods this process remembers as opened (M3c), at most; past it the set starts over. */
export const linePeriodsRememberedMax = 100_000;

/** Challenged payments this process keeps in its expiry heap, at most. */
export const expiryTrackedMax = 1_000_000;

/** Idempotency keys are scoped to the caller. */
function scopeOf(caller: Caller): string {
  if (caller.kind === 'merchant') return caller.merchantId;
  if (caller.kind === 'payer') return caller.payerId;
  return caller.kind;
}

function challengeIdOf(paymentId: string, factor: Factor): string {
  return `${paymentId}:${factor}`;
}

/**
 * Payments: the state machine of DESIGN.md §3 for methods M1a/M1b.
 *
 * CREATED → (policy) → reserve → SUCCEEDED at once when no factor is needed, else CHALLENGED;
 * a correct answer for every required factor → APPROVED → post (linked with the fee) →
 * SUCCEEDED. Decline, cancel, exhausted attempts and lockout void the reservation; an expired
 * challenge leaves nothing reserved (the reservation's own timeout releases it even if nothing
 * here runs). Every ledger step uses ids derived from the payment id: retries never move money
 * twice, and the ledger can always tell the truth (see reconcile.ts).
 */
export class PaymentsService {
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly openedLinePeriods = new Set<string>();
  private readonly expiries = new MinHeap<{ id: string; expiresAtMs: number }>((e) => e.expiresAtMs);
  private readonly expiryTracked = new Set<string>();
  private expirySeeded = false;
  private readonly batch: PaymentsBatch;

  constructor(private readonly deps: PaymentsDeps) {
    this.batch = new PaymentsBatch(deps, {
      prepareCreate: (merchant, input) => this.prepareCreate(merchant, input),
      createClaimed: (id, merchant, input, prepared, existing) => this.createClaimed(id, merchant, input, prepared, existing),
      createSerialized: (id, merchant, input, prepared) => this.serialized(id, async () => this.createClaimed(id, merchant, input, prepared, await deps.payments.get(id))),
      draft: (id, merchant, payer, debit, input, decision) => this.draft(id, merchant, payer, debit, input, decision),
      plan: challengePlan,
      codeRateChecks: (payer) => this.codeRateChecks(payer),
      codeRateRefusal,
      reservationSeconds: () => this.reservationSeconds(),
      declineForFunds: (payment, outcome) => this.declineForFunds(payment, outcome),
      arm: (payment, payer, plan) => this.arm(payment, payer, plan),
      deliver: (armed, payer, merchant) => this.deliverOrDecline(armed.challenged, () => this.sendChallenge(armed, payer, merchant)),
      fingerprint: (request) => this.fingerprint(request),
      storedResult,
      lockFree: (ids) => this.lockFree(ids),
      saveMany: (payments, options) => this.saveMany(payments, options),
      confirmOne: (caller, item) => this.confirm(caller, item.paymentId, item.idempotencyKey, item.proof),
      seenBy,
      scopeOf,
      replay: (stored) => this.replay(stored),
      checkProofFits,
      challengeIdOf,
      proveOn: (caller, payment, proof) => this.proveOn(caller, payment, proof),
      verified: (payment, factor, outcome) => this.verified(payment, factor, outcome),
      satisfy: (payment, factor) => this.satisfy(payment, factor),
      approved: (payment, factor) => this.approved(payment, factor),
      settlementAccounts: (payment) => this.settlementAccounts(payment),
      posted: (payment, outcome) => this.posted(payment, outcome),
      refusalOf,
      resultOf,
    });
  }

  // ------------------------------------------------------------------ create

  /**
   * `merchant` may still be being read (the handler's directory lookup): a payer named by id, phone
   * or login is read at the same time, one round trip instead of two.
   */
  async create(merchantOrLookup: Merchant | Promise<Merchant>, input: CreatePaymentInput): Promise<Payment> {
    const prepared = await this.prepareCreate(merchantOrLookup, input);
    const { merchant } = prepared;
    const { id, fresh } = await this.claim(merchant.id, input.idempotencyKey, { op: 'create', ...prepared.request });
    // A fresh id was minted here and its lock is taken before any other caller can learn it: no payment has it yet.
    return this.serialized(id, async () => this.createClaimed(id, merchant, input, prepared, fresh ? undefined : await this.deps.payments.get(id)));
  }

  /** Several creates of one merchant at once (BatchCreatePayments): each item's outcome as `create` gives it. */
  createMany(merchant: Merchant, inputs: CreatePaymentInput[]): Promise<ItemOutcome[]> {
    return this.batch.create(merchant, inputs);
  }

  /**
   * Everything that can refuse the request as malformed or unknown, before the key is claimed: a
   * corrected retry may reuse the key (nothing was started under it).
   */
  private async prepareCreate(merchantOrLookup: Merchant | Promise<Merchant>, input: CreatePaymentInput): Promise<PreparedCreate & { merchant: Merchant }> {
    const lookup = merchantOrLookup instanceof Promise ? merchantOrLookup : undefined;
    lookup?.catch(() => undefined); // awaited below; an input refused first must not leave it unhandled
    checkIdempotencyKey(input.idempotencyKey);
    checkAmount(input.amount);
    const currency = checkCurrency(input.currency);
    checkDescription(input.description);
    if (input.originSim !== undefined) checkSim(input.originSim, 'origin_sim', false);
    const byPayNumber = input.payNumber !== undefined && input.payNumber !== '';
    let merchant: Merchant;
    let payer: Payer;
    if (lookup !== undefined && !byPayNumber) {
      [merchant, payer] = await Promise.all([lookup, this.resolvePayer(input, '')]);
    } else {
      // A pay number is spent by the read: only once the merchant is known.
      merchant = lookup === undefined ? (merchantOrLookup as Merchant) : await lookup;
      payer = await this.resolvePayer(input, `${merchant.id}:${input.idempotencyKey}`);
    }
    const payee = this.payeeFor(merchant, currency.code, input.payeeAccountId);
    const decision = await this.decide(merchant, payer, payee, input);
    const factors = decision.kind === 'REQUIRE' ? decision.factors : [];
    const debit = this.debitFor(payer, currency.code, payee, factors, input.billableLineId);
    const { authPassword, ...request } = input;
    if (decision.kind === 'REQUIRE') this.checkFactorsPossible(payer, decision.factors, input);
    if (decision.kind === 'REQUIRE' && decision.factors.includes('AUTH_PASSWORD')) await this.checkAuthPassword(payer, authPassword);
    return { merchant, payer, decision, debit, request };
  }

  /** Under the payment's lock: the payment the claimed key names, replayed, or made now. */
  private async createClaimed(id: string, merchant: Merchant, input: CreatePaymentInput, prepared: PreparedCreate, existing: Payment | undefined): Promise<Payment> {
    if (existing !== undefined) return replayCreated(existing);
    return this.createNew(id, merchant, prepared.payer, prepared.debit, input, prepared.decision);
  }

  private decide(merchant: Merchant, payer: Payer, payee: bigint, input: CreatePaymentInput): Promise<Decision> {
    return decide(this.deps.authorizers, {
      paymentId: '',
      merchantId: merchant.id,
      payerId: payer.id,
      payeeAccountId: idToHex(payee),
      amount: input.amount,
      currency: input.currency,
      channel: input.channel,
      requestedFactors: input.requestedFactors,
      satisfiedFactors: [],
      attributes: { request_id: `${merchant.id}:${input.idempotencyKey}` },
      payer,
      merchant,
    });
  }

  /** Refuses, before anything is reserved, factors this payment could never satisfy. */
  private checkFactorsPossible(payer: Payer, factors: Factor[], input: CreatePaymentInput): void {
    checkSecretsSet(payer, factors);
    const unsupported = factors.filter((f) => !supportedFactors.has(f) && !(f === 'BANK_CARD_PIN' && this.deps.bank !== undefined));
    if (unsupported.length > 0) throw precondition(`factor not available on this deployment: ${unsupported.join(', ')}`, { reason: 'FACTOR_UNAVAILABLE' });
    if (factors.includes('PAIRED_DEVICE')) {
      if (input.originSim === undefined) throw invalid('origin_sim is required: the payment needs the paired device (FACTOR_PAIRED_DEVICE)');
      if (!(payer.pairedDevices ?? []).some((d) => sameSim(d.mainSim, input.originSim!))) {
        throw precondition('no device is paired with the SIM this request came through', { reason: 'NO_PAIRED_DEVICE' });
      }
    }
  }

  /**
   * M3's authentication password, checked before anything is reserved. Failures count in the
   * payer's failure streak like wrong codes (the same lockout), through a one-off challenge.
   */
  private async checkAuthPassword(payer: Payer, password: string | undefined): Promise<void> {
    if (password === undefined || password === '') throw invalid("auth_password is required by the payer's policy at this amount");
    if (password.length > 128) throw invalid('auth_password must be at most 128 characters');
    const { challenges, codes, limits } = this.deps;
    // A locked-out payer costs no argon2 work.
    const lockedMs = await challenges.lockedFor(payer.id);
    if (lockedMs !== undefined) throw new AuthzError('resource_exhausted', 'payer is locked out after repeated wrong answers', { retry_after_ms: lockedMs, reason: 'LOCKED_OUT' });
    const challengeId = `auth:${idToHex(newPaymentId())}`;
    const ok = payer.authPasswordHash !== undefined && (await codes.verifyPin(payer.authPasswordHash, password));
    await challenges.putChallenge({ challengeId, payerId: payer.id, responseDigests: [codes.digest(challengeId, 'ok')], ttlMs: limits.codeTtlMs, attemptsMax: 1 });
    const outcome = await challenges.verifyAndConsume(challengeId, payer.id, codes.digest(challengeId, 'ok'), !ok);
    if (outcome.outcome === 'ok') return;
    if (outcome.outcome === 'locked') throw new AuthzError('resource_exhausted', 'payer is locked out after repeated wrong answers', { retry_after_ms: outcome.retryAfterMs, reason: 'LOCKED_OUT' });
    throw new AuthzError('permission_denied', 'wrong authentication password', { reason: 'WRONG_AUTH_PASSWORD' });
  }

  /**
   * Claims an idempotency key for a request: the stored result when the same request ran
   * before, undefined when the caller now owns the key. ALREADY_EXISTS for a different request
   * under the key; UNAVAILABLE while another call still holds it.
   */
  private async begin(scope: string, key: string, request: unknown, resultIfNew?: string): Promise<{ print: string; stored: string | undefined }> {
    const print = this.fingerprint(request);
    const outcome = await this.deps.challenges.beginIdempotency(scope, key, print, this.deps.limits.idempotencyTtlMs, resultIfNew);
    return { print, stored: storedResult(key, outcome) };
  }

  /** Keyed: requests may carry codes, PINs or passwords; an unkeyed hash of them could be reversed. */
  private fingerprint(request: unknown): string {
    return this.deps.codes.digest('idempotency', canonicalJson(request));
  }

  /**
   * Claims the key for a create, naming the payment id in the same round trip: a retry after a
   * crash resumes the same payment.
   */
  private async claim(scope: string, key: string, request: unknown): Promise<{ id: string; fresh: boolean }> {
    const id = idToHex(newPaymentId());
    const { stored } = await this.begin(scope, key, request, id);
    return stored === undefined ? { id, fresh: true } : { id: stored, fresh: false };
  }

  private async createNew(id: string, merchant: Merchant, payer: Payer, debit: Debit, input: CreatePaymentInput, decision: Decision): Promise<Payment> {
    const { accounts, line } = debit;
    const currency = input.currency;
    const payment = this.draft(id, merchant, payer, debit, input, decision);
    if (decision.kind === 'DENY') {
      const reason = decision.unavailable === true ? 'AUTHORIZER_UNAVAILABLE' : 'POLICY_DENIED';
      await this.save({ ...payment, state: 'DECLINED', declineReason: reason, declineDetail: decision.reason });
      if (reason === 'AUTHORIZER_UNAVAILABLE') {
        throw precondition(`payment declined: an authorizer could not be reached in time (fail closed): ${decision.reason}`, { reason, payment_id: id });
      }
      throw precondition(`payment declined by policy: ${decision.reason}`, { reason: 'POLICY_DENIED', payment_id: id });
    }
    if (line !== undefined) await this.openLinePeriod(line, accounts, currency);
    if (payment.requiredFactors.length === payment.satisfiedFactors.length) return this.frictionless(payment, accounts);
    return this.challenge(payment, payer, accounts, merchant);
  }

  /** The CREATED record of a new payment, with the factors the decision requires (AUTH_PASSWORD already checked). */
  private draft(id: string, merchant: Merchant, payer: Payer, debit: Debit, input: CreatePaymentInput, decision: Decision): Payment {
    const { accounts, line } = debit;
    const now = this.deps.now();
    const factors = decision.kind === 'REQUIRE' ? decision.factors : [];
    return {
      id,
      merchantId: merchant.id,
      payerId: payer.id,
      payeeAccountId: idToHex(accounts.payee),
      payerAccountId: idToHex(accounts.payer),
      amount: input.amount,
      currency: input.currency,
      description: input.description,
      channel: input.channel,
      requiredFactors: factors,
      satisfiedFactors: factors.filter((f) => f === 'AUTH_PASSWORD'), // checked before the claim
      attemptsLeft: this.deps.limits.attemptsMax,
      state: 'CREATED',
      createdAtMs: now,
      updatedAtMs: now,
      expiresAtMs: now + this.deps.limits.codeTtlMs,
      feeAmount: (input.amount * BigInt(merchant.feeBasisPoints)) / 10_000n,
      ...(input.originSim === undefined ? {} : { originSim: input.originSim }),
      originPath: pathOfChannel(input.channel),
      ...(line === undefined ? {} : { billableLineId: line.id, lineControlAccountId: idToHex(accounts.limit!.control) }),
    };
  }

  private async resolvePayer(input: CreatePaymentInput, claimant: string): Promise<Payer> {
    const { directory } = this.deps;
    if (input.payNumber !== undefined && input.payNumber !== '') {
      if (input.payNumber.length !== payNumberDigits || !/^\d+$/.test(input.payNumber)) throw invalid(`pay_number must be the ${payNumberDigits} digits IssuePayNumber gave`);
      const payerId = await this.deps.challenges.takePayNumber(payNumberDigest(this.deps.codes.digest, input.payNumber), claimant);
      const payer = payerId === undefined ? undefined : await directory.getPayer(payerId);
      if (payer === undefined) throw notFound('no such pay number (unknown, expired or already used)');
      return payer;
    }
    if (input.payerId !== undefined && input.payerId !== '') {
      checkPaymentId(input.payerId, 'payer_id');
      const payer = await directory.getPayer(input.payerId);
      if (payer === undefined) throw notFound(`payer ${input.payerId} not found`);
      return payer;
    }
    if (input.payerPhone !== undefined && input.payerPhone !== '') {
      checkPhone(input.payerPhone);
      const payer = await directory.findPayerByPhone(input.payerPhone);
      if (payer === undefined) throw notFound('no payer is enrolled with that phone number');
      return payer;
    }
    if (input.loginAccount !== undefined && input.loginAccount !== '') {
      if (input.loginAccount.length > 64) throw invalid('login_account must be at most 64 characters');
      const payer = await directory.findPayerByLogin(input.loginAccount);
      if (payer === undefined) throw notFound('no payer has that login account');
      return payer;
    }
    throw invalid('one of payer_id, payer_phone, pay_number or login_account is required');
  }

  private payeeFor(merchant: Merchant, currency: string, payeeAccountId: string): bigint {
    const merchantAccount = merchant.accounts[currency];
    if (merchantAccount === undefined) throw precondition(`merchant has no ${currency} account`, { reason: 'MERCHANT_CURRENCY' });
    if (payeeAccountId !== '' && payeeAccountId !== merchantAccount) {
      throw invalid('payee_account_id must be empty or the merchant\'s own account in the currency');
    }
    return idFromHex(merchantAccount);
  }

  /**
   * The account the payment is paid from: the bank settlement account for a card payment (M5,
   * FACTOR_BANK_CARD_PIN), the chosen billable line (M3c, with its period's control account), or
   * the payer's prepaid account.
   */
  private debitFor(payer: Payer, currency: string, payee: bigint, factors: Factor[], lineId: string | undefined): Debit {
    const { fees: feeAccounts, bankSettlement, operatorSettlement } = this.deps.platform;
    const fees = feeAccounts[currency];
    if (fees === undefined) throw precondition(`no platform fee account for ${currency}`);
    const card = factors.includes('BANK_CARD_PIN');
    if (card && lineId !== undefined && lineId !== '') throw invalid('a card payment (FACTOR_BANK_CARD_PIN) cannot also charge a billable line');
    if (card) return { accounts: { payer: bankSettlement[currency]!, payee, fees }, line: undefined };
    if (lineId !== undefined && lineId !== '') {
      checkPaymentId(lineId, 'billable_line_id');
      const line = (payer.billableLines ?? []).find((l) => l.id === lineId);
      if (line === undefined) throw notFound(`billable line ${lineId} not found`);
      if (line.currency !== currency) throw precondition(`billable line ${lineId} is billed in ${line.currency}, not ${currency}`, { reason: 'LINE_CURRENCY' });
      // The period is fixed once, here: the control account charged is the one opened.
      const period = billingPeriodOf(line.billingPeriod, this.deps.now());
      const limit = { ...linePeriodIds(line.id, period.startMs), operator: operatorSettlement[currency]! };
      return { accounts: { payer: idFromHex(line.accountId), payee, fees, limit }, line };
    }
    const payerAccount = payer.accounts[currency];
    if (payerAccount === undefined) throw precondition(`payer has no ${currency} account`, { reason: 'PAYER_CURRENCY' });
    return { accounts: { payer: idFromHex(payerAccount), payee, fees }, line: undefined };
  }

  /** M3c: the line's control account for the current period exists and holds the period's credit. */
  private async openLinePeriod(line: BillableLine, accounts: PaymentAccounts, currency: string): Promise<void> {
    const limit = accounts.limit!;
    const key = String(limit.control);
    // Opened once per process and period: a line's charges after the first cost no extra ledger round trips.
    if (this.openedLinePeriods.has(key)) return;
    await this.deps.ledger.openLinePeriod({ control: limit.control, grant: limit.grant, operator: limit.operator, creditLimit: line.creditLimit, ledger: currencyOf(currency)!.ledger });
    if (this.openedLinePeriods.size >= linePeriodsRememberedMax) this.openedLinePeriods.clear();
    this.openedLinePeriods.add(key);
  }

  private reservationSeconds(): number {
    return Math.ceil(this.deps.limits.codeTtlMs / 1000) + this.deps.limits.reservationGraceSeconds;
  }

  private async frictionless(payment: Payment, accounts: PaymentAccounts): Promise<Payment> {
    const outcome = await this.deps.ledger.reserveAndPost(payment, accounts, this.reservationSeconds());
    if (outcome !== 'reserved') return this.declineForFunds(payment, outcome);
    return this.save({ ...payment, state: 'SUCCEEDED', updatedAtMs: this.deps.now() });
  }

  private async declineForFunds(payment: Payment, outcome: 'insufficient_funds' | 'credit_limit_exceeded'): Promise<never> {
    if (outcome === 'credit_limit_exceeded') {
      await this.save({ ...payment, state: 'DECLINED', declineReason: 'CREDIT_LIMIT_EXCEEDED', declineDetail: "the charge would exceed the line's credit limit for the billing period", updatedAtMs: this.deps.now() });
      throw precondition("credit limit exceeded: the charge would exceed the billable line's credit limit for the billing period", { reason: 'CREDIT_LIMIT_EXCEEDED', payment_id: payment.id });
    }
    await this.save({ ...payment, state: 'DECLINED', declineReason: 'INSUFFICIENT_FUNDS', updatedAtMs: this.deps.now() });
    throw precondition('insufficient funds', { reason: 'INSUFFICIENT_FUNDS', payment_id: payment.id });
  }

  private async challenge(payment: Payment, payer: Payer, accounts: PaymentAccounts, merchant: Merchant): Promise<Payment> {
    const plan = challengePlan(payment);
    if (plan.sendsCode) await this.checkCodeRate(payer);
    const outcome = await this.deps.ledger.reserve(payment, accounts, this.reservationSeconds());
    if (outcome !== 'reserved') return this.declineForFunds(payment, outcome);
    const armed = this.arm(payment, payer, plan);
    // The challenges and the record in one pipelined round trip; both are in place before the code leaves.
    await Promise.all([this.deps.challenges.putChallenges(armed.challenges), this.save(armed.challenged)]);
    await this.deliverOrDecline(armed.challenged, () => this.sendChallenge(armed, payer, merchant));
    return armed.challenged;
  }

  /** A reserved payment made CHALLENGED: its first code, the challenges to store, the record to save. */
  private arm(payment: Payment, payer: Payer, plan: ChallengePlan): ArmedChallenge {
    const { codes, limits } = this.deps;
    const firstCode = codes.newFirstCode();
    const deriveSecond = () => codes.deriveSecondCode(codes.openPayerSecret(payer), { firstCode, ...payment });
    const challenged: Payment = {
      ...payment,
      state: 'CHALLENGED',
      ...(plan.terminal && plan.pending.some((f) => codeFactors.has(f)) ? { sealedFirstCode: codes.sealFirstCode(payment.id, firstCode) } : {}),
    };
    const challenges = plan.pending.filter((f) => challengedFactors.has(f)).map((factor): ChallengeInput => {
      const challengeId = challengeIdOf(payment.id, factor);
      const response = expectedResponse(factor, firstCode, deriveSecond);
      return { challengeId, payerId: payer.id, responseDigests: [codes.digest(challengeId, response)], ttlMs: limits.codeTtlMs, attemptsMax: limits.attemptsMax };
    });
    return { firstCode, challenged, challenges, plan };
  }

  /** The first code to the payer (by SMS or voice, not to the payer's own terminal), and M3's call. */
  private async sendChallenge(armed: ArmedChallenge, payer: Payer, merchant: Merchant): Promise<void> {
    const { challenged: payment, firstCode, plan } = armed;
    if (plan.sendsCode) {
      const deliveryKey = this.deps.codes.digest(payment.id, `delivery:${firstCode}`).slice(0, 16);
      await this.deps.notifier.deliverFirstCode({ paymentId: payment.id, payerId: payer.id, phone: payer.phone, firstCode, amount: payment.amount, currency: payment.currency, payeeName: merchant.name, expiresAtMs: payment.expiresAtMs, deliveryKey });
    }
    // M3 (no SMS step): the call for the password goes out at once. M2 calls after the SMS reply.
    if (plan.pending.includes('IVR_PASSWORD') && !plan.pending.includes('SMS_OTP')) await this.callForPassword(payment, payer, merchant);
  }

  /**
   * A code or call that cannot reach the payer leaves nothing reserved: the payment is declined
   * (DELIVERY_FAILED), its reservation voided, and the caller gets UNAVAILABLE.
   */
  private async deliverOrDecline(payment: Payment, send: () => Promise<void>): Promise<void> {
    try {
      await send();
    } catch (cause) {
      await this.finish(payment, { state: 'DECLINED', declineReason: 'DELIVERY_FAILED', declineDetail: 'the code or call could not be delivered' });
      throw new AuthzError('unavailable', 'the payer could not be reached (SMS or voice channel unavailable); the payment is declined and nothing is reserved — retry with a new idempotency key', { reason: 'DELIVERY_FAILED', payment_id: payment.id }, { cause });
    }
  }

  /** SMS-pumping defence: per number, per payer and per number prefix; over a limit nothing is sent or reserved. */
  private async checkCodeRate(payer: Payer): Promise<void> {
    const checks = this.codeRateChecks(payer);
    // One call (one script on Redis). A hit counted under one limit while another refuses is a
    // slightly stricter limit, never a looser one.
    const allowed = await this.deps.challenges.hitRateLimits(checks.map((c) => c.hit));
    const refusal = codeRateRefusal(checks, allowed);
    if (refusal !== undefined) throw refusal;
  }

  private codeRateChecks(payer: Payer): CodeRateCheck[] {
    const { limits } = this.deps;
    const windowMs = limits.codeRateWindowMs;
    return [
      { name: 'destination', hit: { key: `codes:to:${payer.phone}`, limit: limits.codesPerDestinationMax, windowMs } },
      { name: 'payer', hit: { key: `codes:payer:${payer.id}`, limit: limits.codesPerPayerMax, windowMs } },
      { name: 'prefix', hit: { key: `codes:prefix:${payer.phone.slice(0, 7)}`, limit: limits.codesPerPrefixMax, windowMs } },
    ];
  }

  private async callForPassword(payment: Payment, payer?: Payer, merchant?: Merchant): Promise<void> {
    const p = payer ?? (await this.deps.directory.getPayer(payment.payerId));
    const m = merchant ?? (await this.deps.directory.getMerchant(payment.merchantId));
    if (p === undefined || m === undefined) throw new Error(`payment ${payment.id} refers to a missing payer or merchant`);
    await this.deps.notifier.callForPassword({ paymentId: payment.id, payerId: p.id, phone: p.phone, amount: payment.amount, currency: payment.currency, payeeName: m.name, description: payment.description });
  }

  // ------------------------------------------------------------------ confirm

  /** Proof for one factor of a CHALLENGED payment, by its payer or (M1c) by its merchant. */
  async confirm(caller: Caller, paymentId: string, idempotencyKey: string, proof: Proof): Promise<Payment> {
    checkIdempotencyKey(idempotencyKey);
    checkProver(caller, proof);
    checkPaymentId(paymentId, 'payment_id');
    // Under the payment's lock from the start: the one read serves the visibility check and the
    // proof, and goes out with the key's claim (one round trip). A key claimed for a payment the
    // caller cannot see is released again, so the refusal is NOT_FOUND as if it had never been claimed.
    return this.serialized(paymentId, async () => {
      const scope = scopeOf(caller);
      const request = { op: 'confirm', paymentId, proof };
      const begun = this.begin(scope, idempotencyKey, request);
      begun.catch(() => undefined); // awaited below, or released on a refusal
      let payment: Payment;
      try {
        payment = seenBy(caller, paymentId, await this.deps.payments.get(paymentId));
      } catch (error) {
        const claimed = await begun.then((b) => b.stored === undefined, () => false);
        if (claimed) await this.deps.challenges.abandonIdempotency(scope, idempotencyKey);
        throw error;
      }
      return this.idempotent(scope, idempotencyKey, request, () => this.proveOn(caller, payment, proof), begun);
    });
  }

  /** Several confirms by one caller at once (BatchConfirmPayments): each item's outcome as `confirm` gives it. */
  confirmMany(caller: Caller, items: ConfirmItem[]): Promise<ItemOutcome[]> {
    return this.batch.confirm(caller, items);
  }

  /**
   * Runs `work` once per idempotency key: a retry with the same request gets the original
   * outcome — the payment as it is now, or the same refusal (a wrong code is not counted twice).
   * Only an outcome that may change on retry (`unavailable`) releases the key.
   */
  private async idempotent(scope: string, key: string, request: unknown, work: () => Promise<Payment>, begun?: Promise<{ print: string; stored: string | undefined }>): Promise<Payment> {
    const { challenges, limits } = this.deps;
    const { print, stored } = await (begun ?? this.begin(scope, key, request));
    if (stored !== undefined) return this.replay(stored);
    let payment: Payment;
    try {
      payment = await work();
    } catch (error) {
      const refusal = refusalOf(error);
      if (refusal === undefined) await challenges.abandonIdempotency(scope, key);
      else await challenges.completeIdempotency(scope, key, print, refusal, limits.idempotencyTtlMs);
      throw error;
    }
    await challenges.completeIdempotency(scope, key, print, resultOf(payment), limits.idempotencyTtlMs);
    return payment;
  }

  private async replay(stored: string): Promise<Payment> {
    const outcome = JSON.parse(stored) as StoredOutcome;
    if ('error' in outcome) throw new AuthzError(outcome.error.kind, outcome.error.message, outcome.error.details);
    return this.current(outcome.paymentId);
  }

  /** A proof for `payment`, as read under its lock. */
  private async proveOn(caller: Caller, payment: Payment, proof: Proof): Promise<Payment> {
    const paymentId = payment.id;
    // Approved but not yet posted (the post failed, e.g. the ledger was briefly unavailable): finish it.
    if (payment.state === 'APPROVED') return this.settle(payment);
    const factor = checkProofFits(payment, proof);
    if (proof.kind === 'bank_card') return this.askBank(payment, proof.envelope);
    const challengeId = challengeIdOf(paymentId, factor);
    const payer = proof.kind === 'first_code_and_pin' || proof.kind === 'password' || proof.kind === 'paired_device' ? await this.deps.directory.getPayer(payment.payerId) : undefined;
    const { response, forceMismatch } = await proofResponse(proof, payer, this.deps.codes.verifyPin);
    if (proof.kind === 'paired_device') {
      const mismatch = deviceMismatch(payment, payer, proof, caller);
      if (mismatch !== undefined) return this.decline(payment, 'DEVICE_MISMATCH', mismatch);
    }
    const outcome = await this.deps.challenges.verifyAndConsume(challengeId, payment.payerId, this.deps.codes.digest(challengeId, response), forceMismatch);
    return this.verified(payment, factor, outcome);
  }

  /** What the store's answer to a proof makes of the payment: the next state, or the refusal. */
  private async verified(payment: Payment, factor: Factor, outcome: VerifyOutcome): Promise<Payment> {
    switch (outcome.outcome) {
      case 'ok':
        return this.satisfy(payment, factor);
      case 'mismatch':
        await this.update({ ...payment, attemptsLeft: outcome.attemptsLeft, updatedAtMs: this.deps.now() });
        throw new AuthzError('permission_denied', `wrong ${proofName(factor)}`, { attempts_left: outcome.attemptsLeft });
      case 'exhausted':
        await this.decline(payment, 'ATTEMPTS_EXHAUSTED', 'too many wrong answers');
        throw new AuthzError('resource_exhausted', 'attempts exhausted: the payment is declined', { attempts_left: 0, reason: 'ATTEMPTS_EXHAUSTED' });
      case 'locked':
        await this.decline(payment, 'ATTEMPTS_EXHAUSTED', 'payer locked out');
        throw new AuthzError('resource_exhausted', 'payer is locked out after repeated wrong answers; the payment is declined', { retry_after_ms: outcome.retryAfterMs, reason: 'LOCKED_OUT' });
      case 'not_found':
        return this.challengeGone(payment);
    }
  }

  private async satisfy(payment: Payment, factor: Factor): Promise<Payment> {
    const satisfied = [...payment.satisfiedFactors, factor];
    const now = this.deps.now();
    if (!payment.requiredFactors.every((f) => satisfied.includes(f))) {
      const next = await this.update({ ...payment, satisfiedFactors: satisfied, attemptsLeft: this.deps.limits.attemptsMax, updatedAtMs: now });
      // M2: the SMS code was right; now the call for the payment password.
      if (factor === 'SMS_OTP' && !satisfied.includes('IVR_PASSWORD') && payment.requiredFactors.includes('IVR_PASSWORD')) {
        await this.deliverOrDecline(next, () => this.callForPassword(next));
      }
      return next;
    }
    const approved = await this.update(this.approved(payment, factor));
    return this.settle(approved);
  }

  /** The APPROVED record once `factor`, the last one missing, is satisfied. */
  private approved(payment: Payment, factor: Factor): Payment {
    return { ...payment, satisfiedFactors: [...payment.satisfiedFactors, factor], state: 'APPROVED', sealedFirstCode: undefined, updatedAtMs: this.deps.now() };
  }

  /** Posts an APPROVED payment. Safe to call again after a crash: every step is idempotent. */
  async settle(payment: Payment): Promise<Payment> {
    const outcome = await this.deps.ledger.post(payment, this.settlementAccounts(payment));
    return this.update(this.posted(payment, outcome));
  }

  private settlementAccounts(payment: Payment): PaymentAccounts {
    const fees = this.deps.platform.fees[payment.currency];
    if (fees === undefined) throw new Error(`payment ${payment.id}: no platform fee account for ${payment.currency}`);
    return { payer: idFromHex(payment.payerAccountId), payee: idFromHex(payment.payeeAccountId), fees };
  }

  /** The record after the post of an APPROVED payment. */
  private posted(payment: Payment, outcome: PostOutcome): Payment {
    const now = this.deps.now();
    if (outcome === 'posted') return { ...payment, state: 'SUCCEEDED', updatedAtMs: now };
    if (outcome === 'expired') return { ...payment, state: 'EXPIRED', updatedAtMs: now };
    return { ...payment, state: 'DECLINED', declineReason: payment.declineReason ?? 'PAYER_DECLINED', updatedAtMs: now };
  }

  /**
   * M5: the bank decides. It alone opens the envelope (countersign relays it); one decision per
   * payment (the payment id is the bank's idempotency key). A decline is a DECLINED payment; an
   * unreachable bank fails closed: the payment is declined, the reservation voided, UNAVAILABLE.
   */
  private async askBank(payment: Payment, envelope: SealedEnvelope): Promise<Payment> {
    const bank = this.deps.bank;
    if (bank === undefined) throw precondition('no bank front-end is configured on this deployment', { reason: 'FACTOR_UNAVAILABLE' });
    checkEnvelope(envelope);
    let answer: BankDecision;
    try {
      answer = await bank.authorize({ paymentId: payment.id, merchantId: payment.merchantId, amount: payment.amount, currency: payment.currency, envelope });
    } catch (cause) {
      if (cause instanceof BankRequestError) throw invalid('the bank front-end refused the envelope as malformed or sealed for an unknown key');
      if (!(cause instanceof BankUnavailableError)) throw cause;
      await this.finish(payment, { state: 'DECLINED', declineReason: 'AUTHORIZER_UNAVAILABLE', declineDetail: 'the bank front-end could not be reached in time' });
      throw new AuthzError('unavailable', 'the bank front-end could not be reached; the payment is declined and nothing stays reserved', { reason: 'AUTHORIZER_UNAVAILABLE', payment_id: payment.id }, { cause });
    }
    if (answer.decision === 'DECLINED') return this.decline(payment, 'BANK_DECLINED', `bank: ${answer.reasonCode} ${answer.reason}`.trim());
    return this.satisfy({ ...payment, bankAuthorizationCode: answer.authorizationCode }, 'BANK_CARD_PIN');
  }

  /** M5: the bank key terminals seal for, while the payment waits for FACTOR_BANK_CARD_PIN. */
  async bankKeyFor(payment: Payment): Promise<BankKey | undefined> {
    const waiting = payment.state === 'CHALLENGED' && payment.requiredFactors.includes('BANK_CARD_PIN') && !payment.satisfiedFactors.includes('BANK_CARD_PIN');
    if (!waiting || this.deps.bank === undefined) return undefined;
    try {
      return await this.deps.bank.publicKey();
    } catch (cause) {
      throw new AuthzError('unavailable', 'the bank front-end could not be reached for its key; retry shortly', { reason: 'BANK_UNAVAILABLE' }, { cause });
    }
  }

  /** The challenge vanished: expired, or consumed by a concurrent answer. */
  private async challengeGone(payment: Payment): Promise<never> {
    if (this.deps.now() >= payment.expiresAtMs) {
      await this.expire(payment);
      throw precondition('the payment has expired', { reason: 'EXPIRED' });
    }
    throw precondition('no live challenge for this payment (already answered)', { reason: 'NO_CHALLENGE' });
  }

  // ------------------------------------------------------------------ cancel, decline, expire

  /** A merchant cancels its own payment, or a payer declines one of theirs. */
  async refuse(caller: Caller, paymentId: string, idempotencyKey: string, reason: string): Promise<Payment> {
    checkIdempotencyKey(idempotencyKey);
    if (reason.length > 500) throw invalid('reason must be at most 500 characters');
    await this.visible(caller, paymentId);
    return this.idempotent(scopeOf(caller), idempotencyKey, { op: 'refuse', paymentId, reason }, () => this.serialized(paymentId, async () => {
      const payment = await this.current(paymentId);
      if (payment.state === 'CANCELLED' || (payment.state === 'DECLINED' && payment.declineReason === 'PAYER_DECLINED')) return payment;
      if (terminalStates.has(payment.state)) throw precondition(`payment is already ${payment.state}`, { reason: payment.state, state: payment.state });
      if (caller.kind === 'payer') return this.decline(payment, 'PAYER_DECLINED', reason);
      return this.finish(payment, { state: 'CANCELLED', declineDetail: reason });
    }));
  }

  private decline(payment: Payment, reason: Payment['declineReason'] & string, detail: string): Promise<Payment> {
    return this.finish(payment, { state: 'DECLINED', declineReason: reason, declineDetail: detail });
  }

  private expire(payment: Payment): Promise<Payment> {
    return this.finish(payment, { state: 'EXPIRED' });
  }

  /** Voids the reservation, drops the challenges and records the final state. */
  private async finish(payment: Payment, change: Partial<Payment>): Promise<Payment> {
    const outcome = await this.deps.ledger.void(payment);
    await Promise.all(payment.requiredFactors.map((f) => this.deps.challenges.dropChallenge(challengeIdOf(payment.id, f))));
    if (outcome === 'already_posted') return this.update({ ...payment, state: 'SUCCEEDED', sealedFirstCode: undefined, updatedAtMs: this.deps.now() });
    return this.update({ ...payment, ...change, sealedFirstCode: undefined, updatedAtMs: this.deps.now() });
  }

  /**
   * Expires CHALLENGED payments whose time is up, at most `limit` per call; returns how many.
   * Due payments come from an in-process heap of the challenges this process saved (seeded once
   * from the repository), so a sweep costs nothing when nothing is due. Payments another process
   * challenged expire there, on any read here, or by the ledger's own reservation timeout.
   */
  async expireDue(limit: number): Promise<number> {
    if (!this.expirySeeded) await this.seedExpiries();
    const now = this.deps.now();
    let expired = 0;
    while (expired < limit) {
      const next = this.expiries.peek();
      if (next === undefined || next.expiresAtMs > now) break;
      this.expiries.pop();
      this.expiryTracked.delete(next.id);
      expired += 1;
      await this.serialized(next.id, async () => {
        const fresh = await this.deps.payments.get(next.id);
        if (fresh !== undefined && (fresh.state === 'CHALLENGED' || fresh.state === 'CREATED') && now >= fresh.expiresAtMs) await this.expire(fresh);
      });
    }
    return expired;
  }

  private async seedExpiries(): Promise<void> {
    this.expirySeeded = true;
    let afterId: string | undefined;
    while (this.expiryTracked.size < expiryTrackedMax) {
      const page = await this.deps.payments.list({ states: ['CHALLENGED'], limit: 1000, ...(afterId === undefined ? {} : { afterId }) });
      page.forEach((p) => this.trackExpiry(p));
      if (page.length < 1000) return;
      afterId = page[page.length - 1]!.id;
    }
  }

  private trackExpiry(payment: Payment): void {
    if (payment.state !== 'CHALLENGED' || this.expiryTracked.has(payment.id) || this.expiryTracked.size >= expiryTrackedMax) return;
    this.expiryTracked.add(payment.id);
    this.expiries.push({ id: payment.id, expiresAtMs: payment.expiresAtMs });
  }

  /**
   * Read-modify-write of one payment under this process's per-payment lock, on a fresh read:
   * `change` returns the new record, or undefined to leave it. For maintenance (reconcile) that
   * must not overwrite a concurrent transition with a stale copy.
   */
  async revise(paymentId: string, change: (fresh: Payment) => Promise<Payment | undefined>): Promise<Payment> {
    return this.serialized(paymentId, async () => {
      const fresh = await this.current(paymentId);
      const next = await change(fresh);
      return next === undefined || next === fresh ? fresh : this.save(next);
    });
  }

  // ------------------------------------------------------------------ reads

  /** The payment if the caller may see it (NOT_FOUND otherwise: no existence leak). */
  async get(caller: Caller, paymentId: string): Promise<Payment> {
    const payment = await this.visible(caller, paymentId);
    if (payment.state === 'APPROVED') {
      return this.serialized(paymentId, async () => {
        const fresh = await this.current(paymentId);
        return fresh.state === 'APPROVED' ? this.settle(fresh) : fresh;
      });
    }
    if (payment.state === 'CHALLENGED' && this.deps.now() >= payment.expiresAtMs) {
      return this.serialized(paymentId, async () => {
        const fresh = await this.current(paymentId);
        return fresh.state === 'CHALLENGED' && this.deps.now() >= fresh.expiresAtMs ? this.expire(fresh) : fresh;
      });
    }
    return payment;
  }

  /** The first code for the payer's own terminal (channel APP/WEB), while the payment is CHALLENGED. */
  async firstCodeForTerminal(caller: Caller, payment: Payment): Promise<string | undefined> {
    if (caller.kind !== 'payer' || caller.payerId !== payment.payerId) return undefined;
    if (payment.state !== 'CHALLENGED' || payment.sealedFirstCode === undefined) return undefined;
    return this.deps.codes.openFirstCode(payment.id, payment.sealedFirstCode);
  }

  async attemptsLeft(payment: Payment, factor: Factor): Promise<number> {
    return (await this.deps.challenges.attemptsLeft(challengeIdOf(payment.id, factor))) ?? 0;
  }

  private async visible(caller: Caller, paymentId: string): Promise<Payment> {
    checkPaymentId(paymentId, 'payment_id');
    return seenBy(caller, paymentId, await this.deps.payments.get(paymentId));
  }

  private async current(paymentId: string): Promise<Payment> {
    const payment = await this.deps.payments.get(paymentId);
    if (payment === undefined) throw notFound(`payment ${paymentId} not found`);
    return payment;
  }

  /** Writes a new payment's first record, or one of unknown origin (the repository maintains its indexes). */
  private async save(payment: Payment): Promise<Payment> {
    await this.deps.payments.put(payment);
    this.saved(payment);
    return payment;
  }

  /** Writes the next record of a payment read from the repository (merchant and payer never change: its indexes stay). */
  private async update(payment: Payment): Promise<Payment> {
    await this.deps.payments.put(payment, { replacing: true });
    this.saved(payment);
    return payment;
  }

  /** `save` (or with `replacing`, `update`) of many records: one repository call. */
  private async saveMany(payments: Payment[], options: PutOptions = {}): Promise<void> {
    if (payments.length === 0) return;
    await this.deps.payments.putMany(payments, options);
    payments.forEach((p) => this.saved(p));
  }

  private saved(payment: Payment): void {
    this.trackExpiry(payment);
    this.deps.events.publish(payment);
  }

  /**
   * Takes, in one step, this process's lock of every id in `ids` that no operation holds now (each
   * id once); `serialized` callers of those ids queue behind `release`. For the batches: ids held
   * elsewhere, or repeated, take the one-at-a-time path and so wait their turn.
   */
  private lockFree(ids: string[]): HeldLocks {
    let open!: () => void;
    const held = new Promise<void>((resolve) => (open = resolve));
    const locked = new Set<string>();
    for (const id of ids) {
      if (this.inFlight.has(id)) continue;
      locked.add(id);
      this.inFlight.set(id, held);
    }
    const release = () => {
      open();
      for (const id of locked) if (this.inFlight.get(id) === held) this.inFlight.delete(id);
    };
    return { locked, release };
  }

  /** Runs one operation per payment at a time in this process (concurrent answers to one challenge queue up). */
  private async serialized<T>(key: string, run: () => Promise<T>): Promise<T> {
    const previous = this.inFlight.get(key) ?? Promise.resolve();
    const next = previous.then(run, run);
    const settled = next.catch(() => undefined);
    this.inFlight.set(key, settled);
    try {
      return await next;
    } finally {
      if (this.inFlight.get(key) === settled) this.inFlight.delete(key);
    }
  }
}
