import { currencyOf } from '../ledger/chart.js';
import { MinHeap } from '../ledger/heap.js';
import { idFromHex, idToHex, newPaymentId } from '../ledger/ids.js';
import { decide, type Authorizer, type Decision } from './authorizer.js';
import { canonicalJson } from './fingerprint.js';
import { challengedFactors, checkOrder, checkProver, codeFactors, expectedResponse, factorOf, pathOfCaller, pathOfChannel, proofName, proofResponse, supportedFactors, type Proof } from './factors.js';
import { billingPeriodOf, checkSim, linePeriodIds, payNumberDigest, sameSim, type PlatformAccounts } from './enrollment.js';
import { AuthzError, invalid, notFound, precondition } from './errors.js';
import type { PaymentEvents } from './events.js';
import type { BillableLine, Caller, Channel, Factor, Merchant, Payer, Payment, SealedEnvelope, SimIdentity } from './model.js';
import { terminalStates } from './model.js';
import type { Notifier } from './notifier.js';
import { PaymentLedger, type PaymentAccounts } from './payment-ledger.js';
import { BankRequestError, BankUnavailableError, type BankDecision, type BankGateway, type BankKey, type ChallengeStore, type Directory, type PaymentRepository } from './ports.js';
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
  private readonly expiries = new MinHeap<{ id: string; expiresAtMs: number }>((e) => e.expiresAtMs);
  private readonly expiryTracked = new Set<string>();
  private expirySeeded = false;

  constructor(private readonly deps: PaymentsDeps) {}

  // ------------------------------------------------------------------ create

  async create(merchant: Merchant, input: CreatePaymentInput): Promise<Payment> {
    checkIdempotencyKey(input.idempotencyKey);
    checkAmount(input.amount);
    const currency = checkCurrency(input.currency);
    checkDescription(input.description);
    // Everything that can refuse the request as malformed or unknown runs before the key is
    // claimed: a corrected retry may reuse the key (nothing was started under it).
    if (input.originSim !== undefined) checkSim(input.originSim, 'origin_sim', false);
    const payer = await this.resolvePayer(input, `${merchant.id}:${input.idempotencyKey}`);
    const payee = this.payeeFor(merchant, currency.code, input.payeeAccountId);
    const decision = await this.decide(merchant, payer, payee, input);
    const factors = decision.kind === 'REQUIRE' ? decision.factors : [];
    const { accounts, line } = this.debitFor(payer, currency.code, payee, factors, input.billableLineId);
    const { authPassword, ...request } = input;
    if (decision.kind === 'REQUIRE') this.checkFactorsPossible(payer, decision.factors, input);
    if (decision.kind === 'REQUIRE' && decision.factors.includes('AUTH_PASSWORD')) await this.checkAuthPassword(payer, authPassword);
    const claim = await this.claim(merchant.id, input.idempotencyKey, { op: 'create', ...request });
    return this.serialized(claim, async () => {
      const existing = await this.deps.payments.get(claim);
      return existing === undefined ? this.createNew(claim, merchant, payer, { accounts, line }, input, decision) : replayCreated(existing);
    });
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
    // Keyed: requests may carry codes, PINs or passwords; an unkeyed hash of them could be reversed.
    const print = this.deps.codes.digest('idempotency', canonicalJson(request));
    const outcome = await this.deps.challenges.beginIdempotency(scope, key, print, this.deps.limits.idempotencyTtlMs, resultIfNew);
    if (outcome.status === 'conflict') {
      throw new AuthzError('already_exists', 'this idempotency key was used for a different request', { idempotency_key: key });
    }
    if (outcome.status === 'in_progress') throw new AuthzError('unavailable', 'a request with this idempotency key is in progress; retry shortly');
    return { print, stored: outcome.status === 'done' ? outcome.result : undefined };
  }

  /**
   * Claims the key for a create, naming the payment id in the same round trip: a retry after a
   * crash resumes the same payment.
   */
  private async claim(scope: string, key: string, request: unknown): Promise<string> {
    const id = idToHex(newPaymentId());
    const { stored } = await this.begin(scope, key, request, id);
    return stored ?? id;
  }

  private async createNew(id: string, merchant: Merchant, payer: Payer, debit: { accounts: PaymentAccounts; line: BillableLine | undefined }, input: CreatePaymentInput, decision: Decision): Promise<Payment> {
    const { accounts, line } = debit;
    const currency = input.currency;
    const now = this.deps.now();
    const payment: Payment = {
      id,
      merchantId: merchant.id,
      payerId: payer.id,
      payeeAccountId: idToHex(accounts.payee),
      payerAccountId: idToHex(accounts.payer),
      amount: input.amount,
      currency,
      description: input.description,
      channel: input.channel,
      requiredFactors: [],
      satisfiedFactors: [],
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
    if (decision.kind === 'DENY') {
      const reason = decision.unavailable === true ? 'AUTHORIZER_UNAVAILABLE' : 'POLICY_DENIED';
      await this.save({ ...payment, state: 'DECLINED', declineReason: reason, declineDetail: decision.reason });
      if (reason === 'AUTHORIZER_UNAVAILABLE') {
        throw precondition(`payment declined: an authorizer could not be reached in time (fail closed): ${decision.reason}`, { reason, payment_id: id });
      }
      throw precondition(`payment declined by policy: ${decision.reason}`, { reason: 'POLICY_DENIED', payment_id: id });
    }
    const factors = decision.kind === 'REQUIRE' ? decision.factors : [];
    if (line !== undefined) await this.openLinePeriod(line, accounts, currency);
    const satisfied = factors.filter((f) => f === 'AUTH_PASSWORD'); // checked before the claim
    if (factors.length === satisfied.length) return this.frictionless({ ...payment, requiredFactors: factors, satisfiedFactors: satisfied }, accounts);
    return this.challenge({ ...payment, requiredFactors: factors, satisfiedFactors: satisfied }, payer, accounts, merchant);
  }

  private async resolvePayer(input: CreatePaymentInput, claimant: string): Promise<Payer> {
    const { directory } = this.deps;
    if (input.payNumber !== undefined && input.payNumber !== '') {
      if (!/^\d{12}$/.test(input.payNumber)) throw invalid('pay_number must be the 12 digits IssuePayNumber gave');
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
  private debitFor(payer: Payer, currency: string, payee: bigint, factors: Factor[], lineId: string | undefined): { accounts: PaymentAccounts; line: BillableLine | undefined } {
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
      const period = billingPeriodOf(line.billingPeriod, this.deps.now());
      const limit = { control: linePeriodIds(line.id, period.startMs).control, operator: operatorSettlement[currency]! };
      return { accounts: { payer: idFromHex(line.accountId), payee, fees, limit }, line };
    }
    const payerAccount = payer.accounts[currency];
    if (payerAccount === undefined) throw precondition(`payer has no ${currency} account`, { reason: 'PAYER_CURRENCY' });
    return { accounts: { payer: idFromHex(payerAccount), payee, fees }, line: undefined };
  }

  /** M3c: the line's control account for the current period exists and holds the period's credit. */
  private async openLinePeriod(line: BillableLine, accounts: PaymentAccounts, currency: string): Promise<void> {
    const period = billingPeriodOf(line.billingPeriod, this.deps.now());
    const ids = linePeriodIds(line.id, period.startMs);
    await this.deps.ledger.openLinePeriod({ control: ids.control, grant: ids.grant, operator: accounts.limit!.operator, creditLimit: line.creditLimit, ledger: currencyOf(currency)!.ledger });
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
    const { codes, challenges, limits } = this.deps;
    const pending = payment.requiredFactors.filter((f) => !payment.satisfiedFactors.includes(f));
    const terminal = payment.channel === 'APP' || payment.channel === 'WEB';
    const sendsCode = !terminal && pending.some((f) => codeFactors.has(f));
    if (sendsCode) await this.checkCodeRate(payer);
    const outcome = await this.deps.ledger.reserve(payment, accounts, this.reservationSeconds());
    if (outcome !== 'reserved') return this.declineForFunds(payment, outcome);
    const firstCode = codes.newFirstCode();
    const deriveSecond = () => codes.deriveSecondCode(codes.openPayerSecret(payer), { firstCode, ...payment });
    const challenged: Payment = {
      ...payment,
      state: 'CHALLENGED',
      ...(terminal && pending.some((f) => codeFactors.has(f)) ? { sealedFirstCode: codes.sealFirstCode(payment.id, firstCode) } : {}),
    };
    // The challenges and the record in one pipelined round trip; both are in place before the code leaves.
    await Promise.all([
      ...pending.filter((f) => challengedFactors.has(f)).map((factor) => {
        const challengeId = challengeIdOf(payment.id, factor);
        const response = expectedResponse(factor, firstCode, deriveSecond);
        return challenges.putChallenge({ challengeId, payerId: payer.id, responseDigests: [codes.digest(challengeId, response)], ttlMs: limits.codeTtlMs, attemptsMax: limits.attemptsMax });
      }),
      this.save(challenged),
    ]);
    await this.deliverOrDecline(challenged, async () => {
      if (sendsCode) {
        const deliveryKey = codes.digest(payment.id, `delivery:${firstCode}`).slice(0, 16);
        await this.deps.notifier.deliverFirstCode({ paymentId: payment.id, payerId: payer.id, phone: payer.phone, firstCode, amount: payment.amount, currency: payment.currency, payeeName: merchant.name, expiresAtMs: payment.expiresAtMs, deliveryKey });
      }
      // M3 (no SMS step): the call for the password goes out at once. M2 calls after the SMS reply.
      if (pending.includes('IVR_PASSWORD') && !pending.includes('SMS_OTP')) await this.callForPassword(challenged, payer, merchant);
    });
    return challenged;
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
    const { challenges, limits } = this.deps;
    const window = limits.codeRateWindowMs;
    const checks: [string, string, number][] = [
      ['destination', `codes:to:${payer.phone}`, limits.codesPerDestinationMax],
      ['payer', `codes:payer:${payer.id}`, limits.codesPerPayerMax],
      ['prefix', `codes:prefix:${payer.phone.slice(0, 7)}`, limits.codesPerPrefixMax],
    ];
    // Concurrent: one pipelined round trip. A hit counted under one limit while another refuses is
    // a slightly stricter limit, never a looser one.
    const allowed = await Promise.all(checks.map(([, key, max]) => challenges.hitRateLimit(key, max, window)));
    const refused = checks.find((_, i) => !allowed[i]);
    if (refused !== undefined) {
      const [name, , max] = refused;
      throw new AuthzError('resource_exhausted', `too many codes sent (${name} limit: ${max} per ${window / 1000} s); try again later`, { reason: `CODE_RATE_${name.toUpperCase()}`, limit: max, window_ms: window });
    }
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
    await this.visible(caller, paymentId);
    return this.idempotent(scopeOf(caller), idempotencyKey, { op: 'confirm', paymentId, proof }, () =>
      this.serialized(paymentId, () => this.applyProof(caller, paymentId, proof)),
    );
  }

  /**
   * Runs `work` once per idempotency key: a retry with the same request gets the original
   * outcome — the payment as it is now, or the same refusal (a wrong code is not counted twice).
   * Only an outcome that may change on retry (`unavailable`) releases the key.
   */
  private async idempotent(scope: string, key: string, request: unknown, work: () => Promise<Payment>): Promise<Payment> {
    const { challenges, limits } = this.deps;
    const { print, stored } = await this.begin(scope, key, request);
    if (stored !== undefined) return this.replay(stored);
    let payment: Payment;
    try {
      payment = await work();
    } catch (error) {
      if (!(error instanceof AuthzError) || error.kind === 'unavailable') {
        await challenges.abandonIdempotency(scope, key);
        throw error;
      }
      const refusal: StoredOutcome = { error: { kind: error.kind, message: error.message, details: error.details } };
      await challenges.completeIdempotency(scope, key, print, JSON.stringify(refusal), limits.idempotencyTtlMs);
      throw error;
    }
    await challenges.completeIdempotency(scope, key, print, JSON.stringify({ paymentId: payment.id } satisfies StoredOutcome), limits.idempotencyTtlMs);
    return payment;
  }

  private async replay(stored: string): Promise<Payment> {
    const outcome = JSON.parse(stored) as StoredOutcome;
    if ('error' in outcome) throw new AuthzError(outcome.error.kind, outcome.error.message, outcome.error.details);
    return this.current(outcome.paymentId);
  }

  private async applyProof(caller: Caller, paymentId: string, proof: Proof): Promise<Payment> {
    const payment = await this.current(paymentId);
    // Approved but not yet posted (the post failed, e.g. the ledger was briefly unavailable): finish it.
    if (payment.state === 'APPROVED') return this.settle(payment);
    if (payment.state !== 'CHALLENGED') {
      throw precondition(`payment is ${payment.state}, not waiting for proof`, { reason: payment.state, state: payment.state });
    }
    const factor = factorOf(proof);
    if (!payment.requiredFactors.includes(factor) || payment.satisfiedFactors.includes(factor)) {
      throw precondition(`payment is not waiting for ${factor}`, { reason: 'FACTOR_NOT_REQUIRED' });
    }
    checkOrder(payment, factor);
    if (proof.kind === 'bank_card') return this.askBank(payment, proof.envelope);
    const challengeId = challengeIdOf(paymentId, factor);
    const payer = proof.kind === 'first_code_and_pin' || proof.kind === 'password' || proof.kind === 'paired_device' ? await this.deps.directory.getPayer(payment.payerId) : undefined;
    const { response, forceMismatch } = await proofResponse(proof, payer, this.deps.codes.verifyPin);
    if (proof.kind === 'paired_device') {
      const mismatch = deviceMismatch(payment, payer, proof, caller);
      if (mismatch !== undefined) return this.decline(payment, 'DEVICE_MISMATCH', mismatch);
    }
    const outcome = await this.deps.challenges.verifyAndConsume(challengeId, payment.payerId, this.deps.codes.digest(challengeId, response), forceMismatch);
    switch (outcome.outcome) {
      case 'ok':
        return this.satisfy(payment, factor);
      case 'mismatch':
        await this.save({ ...payment, attemptsLeft: outcome.attemptsLeft, updatedAtMs: this.deps.now() });
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
      const next = await this.save({ ...payment, satisfiedFactors: satisfied, attemptsLeft: this.deps.limits.attemptsMax, updatedAtMs: now });
      // M2: the SMS code was right; now the call for the payment password.
      if (factor === 'SMS_OTP' && !satisfied.includes('IVR_PASSWORD') && payment.requiredFactors.includes('IVR_PASSWORD')) {
        await this.deliverOrDecline(next, () => this.callForPassword(next));
      }
      return next;
    }
    const approved = await this.save({ ...payment, satisfiedFactors: satisfied, state: 'APPROVED', sealedFirstCode: undefined, updatedAtMs: now });
    return this.settle(approved);
  }

  /** Posts an APPROVED payment. Safe to call again after a crash: every step is idempotent. */
  async settle(payment: Payment): Promise<Payment> {
    const fees = this.deps.platform.fees[payment.currency];
    if (fees === undefined) throw new Error(`payment ${payment.id}: no platform fee account for ${payment.currency}`);
    const accounts = { payer: idFromHex(payment.payerAccountId), payee: idFromHex(payment.payeeAccountId), fees };
    const outcome = await this.deps.ledger.post(payment, accounts);
    const now = this.deps.now();
    if (outcome === 'posted') return this.save({ ...payment, state: 'SUCCEEDED', updatedAtMs: now });
    if (outcome === 'expired') return this.save({ ...payment, state: 'EXPIRED', updatedAtMs: now });
    return this.save({ ...payment, state: 'DECLINED', declineReason: payment.declineReason ?? 'PAYER_DECLINED', updatedAtMs: now });
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
    if (outcome === 'already_posted') return this.save({ ...payment, state: 'SUCCEEDED', sealedFirstCode: undefined, updatedAtMs: this.deps.now() });
    return this.save({ ...payment, ...change, sealedFirstCode: undefined, updatedAtMs: this.deps.now() });
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
    const payment = await this.deps.payments.get(paymentId);
    const allowed =
      payment !== undefined &&
      (caller.kind === 'admin' ||
        caller.kind === 'service' ||
        (caller.kind === 'merchant' && payment.merchantId === caller.merchantId) ||
        (caller.kind === 'payer' && payment.payerId === caller.payerId));
    if (!allowed) throw notFound(`payment ${paymentId} not found`);
    return payment;
  }

  private async current(paymentId: string): Promise<Payment> {
    const payment = await this.deps.payments.get(paymentId);
    if (payment === undefined) throw notFound(`payment ${paymentId} not found`);
    return payment;
  }

  private async save(payment: Payment): Promise<Payment> {
    await this.deps.payments.put(payment);
    this.trackExpiry(payment);
    this.deps.events.publish(payment);
    return payment;
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
