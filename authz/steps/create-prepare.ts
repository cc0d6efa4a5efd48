import { currencyOf } from '../../ledger/chart.js';
import { idFromHex, idToHex, newPaymentId } from '../../ledger/ids.js';
import { type Decision, decide } from '../authorizer.js';
import { billingPeriodOf, checkSim, linePeriodIds, payNumberDigest, payNumberDigits, sameSim } from '../enrollment.js';
import { DomainError, invalidArgument, notFound, precondition } from '../errors.js';
import { challengeIdOf, factorModule, pathOfChannel, usesFirstCode } from '../factors/index.js';
import { createFields } from '../fingerprint.js';
import type { BillableLine, Channel, Factor, Merchant, Payer, Payment, SimIdentity } from '../model.js';
import { feeOf, type PaymentAccounts } from '../payment-ledger.js';
import { type CreateItem, type RateLimitHit, shardOfPayer, withShard } from '../store/port.js';
import { checkAmount, checkCurrency, checkDescription, checkHexId, checkIdempotencyKey, checkPhone } from '../validation.js';
import type { CodeKit, StepDeps } from './context.js';
import { isPhantomPayerId, phantomAccountId, phantomPayer, phantomPayerId, unanswerable } from './phantom-payer.js';
import { challengeRateKey, phoneLookupKey } from './refusals.js';

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

/** How the first code reaches the payer: by SMS or voice, or fetched by the payer's own terminal. */
export interface ChallengePlan {
  /** Factors still to prove, in required order. */
  pending: Factor[];
  /**
   * Sent by SMS or voice: a pending factor is SMS_OTP (a code for the SMS factor goes by SMS only,
   * whatever the channel), or the channel is not the payer's own terminal and a pending factor needs the code.
   */
  sendsCode: boolean;
}

/** A create checked and drafted, ready for the store's step. */
export interface PreparedCreate {
  input: CreatePaymentInput;
  merchant: Merchant;
  payer: Payer;
  decision: Decision;
  item: CreateItem;
  plan: ChallengePlan;
  /** The plaintext first code, in memory only until it is sent; undefined without a code factor. */
  firstCode: string | undefined;
}

/** Line periods this process remembers as opened (M3c), at most; past it the set starts over. */
export const linePeriodsRememberedMax = 100_000;

/** Channels where the payer's own terminal shows the first code (GetChallenge) instead of SMS or voice. */
export function isTerminalChannel(channel: Channel): boolean {
  return channel === 'APP' || channel === 'WEB';
}

export function planOf(payment: Payment): ChallengePlan {
  const pending = payment.requiredFactors.filter((f) => !payment.satisfiedFactors.includes(f));
  return { pending, sendsCode: pending.includes('SMS_OTP') || (!isTerminalChannel(payment.channel) && pending.some(usesFirstCode)) };
}

/**
 * Whether the payer's terminal may be shown the first code (GetChallenge): on its own channels
 * only, and never for a payment that requires SMS_OTP, whose code proves the phone and so goes by
 * SMS only (README "Tenant safety"). The payer then types the SMS's code into the terminal.
 */
export function terminalShowsFirstCode(payment: Payment): boolean {
  return isTerminalChannel(payment.channel) && !payment.requiredFactors.includes('SMS_OTP');
}

function given(v: string | undefined): boolean {
  return v !== undefined && v !== '';
}

/** Whether a create names its payer by phone number (counted against `phoneLookupsPerMerchantMax`). */
function namesPayerByPhone(input: CreatePaymentInput): boolean {
  return !given(input.payNumber) && !given(input.payerId) && given(input.payerPhone);
}

/** What a challenged factor's expected answer is made of: the first code, and the second code derived only if a factor asks for it. */
class ExpectedCodes {
  constructor(
    private readonly codes: CodeKit,
    private readonly payer: Payer,
    private readonly payment: Payment,
    readonly firstCode: string,
  ) {}

  secondCode(): string {
    const p = this.payment;
    return this.codes.deriveSecondCode(this.codes.openPayerSecret(this.payer), {
      firstCode: this.firstCode,
      amount: p.amount,
      currency: p.currency,
      payeeAccountId: p.payeeAccountId,
    });
  }
}

/**
 * Everything a create checks and decides before the store's step — input, payer, payee, policy,
 * the payer's secrets, the debited account — and the record it would write. Refusals here claim
 * no idempotency key: a corrected retry may reuse it. `forcedId` re-drafts a create whose key
 * already names a payment (Redis Cluster's `missing`).
 */
export class CreatePreparer {
  private readonly openedLinePeriods = new Set<string>();
  /** Phantom payers of this preparer's creates (phantom-payer.ts). */
  private readonly phantoms = new WeakSet<Payer>();

  constructor(private readonly deps: StepDeps) {}

  async prepare(merchantOrLookup: Merchant | Promise<Merchant>, input: CreatePaymentInput, forcedId?: string): Promise<PreparedCreate> {
    const lookup = merchantOrLookup instanceof Promise ? merchantOrLookup : undefined;
    lookup?.catch(() => undefined); // awaited below; an input refused first must not leave it unhandled
    const currency = checkInput(input);
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
    const payee = payeeOf(merchant, currency.code, input.payeeAccountId);
    const decision = await this.decide(merchant, payer, payee, input);
    const factors = decision.kind === 'REQUIRE' ? decision.factors : [];
    // Malformed or unknown input first (INVALID_ARGUMENT, NOT_FOUND), then what the payer lacks.
    const debit = this.debitOf(payer, currency.code, payee, factors, input.billableLineId);
    if (decision.kind === 'REQUIRE') this.checkFactorsPossible(payer, factors, input);
    if (factors.includes('AUTH_PASSWORD')) await this.checkAuthPassword(payer, input.authPassword);
    if (debit.line !== undefined && decision.kind !== 'DENY') await this.openLinePeriod(debit.line, debit.accounts, currency.code);
    return this.draft({ merchant, payer, decision, accounts: debit.accounts, line: debit.line, input, forcedId });
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
    const missing = factors.map((f) => factorModule(f).missingAtCreate?.(payer)).filter((m) => m !== undefined);
    if (missing.length > 0)
      throw precondition(`the payer has not set ${missing.join(', ')} (PIN or password), which this payment needs`, { reason: 'PAYER_SECRET_NOT_SET' });
    const unavailable = factors.filter((f) => !factorModule(f).available({ bank: this.deps.bank !== undefined }));
    if (unavailable.length > 0) throw precondition(`factor not available on this deployment: ${unavailable.join(', ')}`, { reason: 'FACTOR_UNAVAILABLE' });
    if (factors.includes('PAIRED_DEVICE')) {
      if (input.originSim === undefined) throw invalidArgument('origin_sim', 'is required: the payment needs the paired device (FACTOR_PAIRED_DEVICE)');
      if (!(payer.pairedDevices ?? []).some((d) => sameSim(d.mainSim, input.originSim!))) {
        throw precondition('no device is paired with the SIM this request came through', { reason: 'NO_PAIRED_DEVICE' });
      }
    }
  }

  /**
   * M3's authentication password, checked before anything is reserved. A wrong one counts in the
   * payer's failure streak like a wrong code (the same lockout); a locked-out payer costs no argon2 work.
   */
  private async checkAuthPassword(payer: Payer, password: string | undefined): Promise<void> {
    if (password === undefined || password === '') throw invalidArgument('auth_password', "is required by the payer's policy at this amount");
    if (password.length > 128) throw invalidArgument('auth_password', 'must be at most 128 characters');
    const { store, codes } = this.deps;
    const [check] = await store.guard([{ payerId: payer.id, event: 'check', nowMs: this.deps.now() }]);
    if (check!.lockedForMs !== undefined) throw lockedOut(check!.lockedForMs);
    const ok = payer.authPasswordHash !== undefined && (await codes.verifyPin(payer.authPasswordHash, password));
    const [after] = await store.guard([{ payerId: payer.id, event: ok ? 'success' : 'failure', nowMs: this.deps.now() }]);
    if (ok) return;
    if (after!.lockedForMs !== undefined) throw lockedOut(after!.lockedForMs);
    throw new DomainError('permission_denied', 'wrong authentication password', { reason: 'WRONG_AUTH_PASSWORD' });
  }

  private async resolvePayer(input: CreatePaymentInput, claimant: string): Promise<Payer> {
    const { directory } = this.deps;
    if (input.payNumber !== undefined && input.payNumber !== '') {
      if (input.payNumber.length !== payNumberDigits || !/^\d+$/.test(input.payNumber))
        throw invalidArgument('pay_number', `must be the ${payNumberDigits} digits IssuePayNumber gave`);
      const numberDigest = payNumberDigest(this.deps.codes.digest, input.payNumber);
      const payerId = await this.deps.store.takePayNumber({ numberDigest, claimant, nowMs: this.deps.now() });
      const payer = payerId === undefined ? undefined : await directory.getPayer(payerId);
      if (payer === undefined) throw notFound('no such pay number (unknown, expired or already used)');
      return payer;
    }
    if (input.payerId !== undefined && input.payerId !== '') {
      checkHexId(input.payerId, 'payer_id');
      const payer = await directory.getPayer(input.payerId);
      if (payer === undefined && isPhantomPayerId(this.deps.codes, input.payerId)) return this.phantom(input.payerId, '');
      if (payer === undefined) throw notFound(`payer ${input.payerId} not found`);
      return payer;
    }
    if (input.payerPhone !== undefined && input.payerPhone !== '') {
      checkPhone(input.payerPhone);
      const payer = await directory.findPayerByPhone(input.payerPhone);
      // Not NOT_FOUND: an unknown phone is answered like an enrolled payer who has not answered yet.
      return payer ?? this.phantom(phantomPayerId(this.deps.codes, input.payerPhone), input.payerPhone);
    }
    if (input.loginAccount !== undefined && input.loginAccount !== '') {
      if (input.loginAccount.length > 64) throw invalidArgument('login_account', 'must be at most 64 characters');
      const payer = await directory.findPayerByLogin(input.loginAccount);
      if (payer === undefined) throw notFound('no payer has that login account');
      return payer;
    }
    throw invalidArgument('payer', 'is required: one of payer_id, payer_phone, pay_number or login_account');
  }

  private phantom(id: string, phone: string): Payer {
    const payer = phantomPayer(id, phone);
    this.phantoms.add(payer);
    return payer;
  }

  /**
   * The account the payment is paid from: the bank settlement account for a card payment (M5,
   * FACTOR_BANK_CARD_PIN), the chosen billable line (M3c, with its period's control account), or
   * the payer's prepaid account.
   */
  private debitOf(
    payer: Payer,
    currency: string,
    payee: bigint,
    factors: Factor[],
    lineId: string | undefined,
  ): { accounts: PaymentAccounts; line: BillableLine | undefined } {
    const { fees: feeAccounts, bankSettlement, operatorSettlement } = this.deps.platform;
    const fees = feeAccounts[currency];
    if (fees === undefined) throw precondition(`no platform fee account for ${currency}`);
    const card = factors.includes('BANK_CARD_PIN');
    const phantom = this.phantoms.has(payer) && (lineId === undefined || lineId === '');
    if (phantom) return { accounts: { payer: BigInt(`0x${phantomAccountId}`), payee, fees }, line: undefined };
    if (card && lineId !== undefined && lineId !== '') throw invalidArgument('billable_line_id', 'must be empty for a card payment (FACTOR_BANK_CARD_PIN)');
    if (card) return { accounts: { payer: bankSettlement[currency]!, payee, fees }, line: undefined };
    if (lineId !== undefined && lineId !== '') {
      checkHexId(lineId, 'billable_line_id');
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

  /** M3c: the line's control account for the current period exists and holds the period's credit (once per process and period). */
  private async openLinePeriod(line: BillableLine, accounts: PaymentAccounts, currency: string): Promise<void> {
    const limit = accounts.limit!;
    const key = String(limit.control);
    if (this.openedLinePeriods.has(key)) return;
    await this.deps.ledger.openLinePeriod({
      control: limit.control,
      grant: limit.grant,
      operator: limit.operator,
      creditLimit: line.creditLimit,
      ledger: currencyOf(currency)!.ledger,
    });
    if (this.openedLinePeriods.size >= linePeriodsRememberedMax) this.openedLinePeriods.clear();
    this.openedLinePeriods.add(key);
  }

  /** The record the step writes, its challenge digests, and what is counted against the code-rate limits. */
  private draft(d: {
    merchant: Merchant;
    payer: Payer;
    decision: Decision;
    accounts: PaymentAccounts;
    line: BillableLine | undefined;
    input: CreatePaymentInput;
    forcedId: string | undefined;
  }): PreparedCreate {
    const { merchant, payer, decision, accounts, line, input } = d;
    const { codes, limits } = this.deps;
    const now = this.deps.now();
    const id = d.forcedId ?? idToHex(withShard(newPaymentId(), shardOfPayer(payer.id)));
    const factors = decision.kind === 'REQUIRE' ? decision.factors : [];
    const payment: Payment = {
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
      satisfiedFactors: factors.filter((f) => f === 'AUTH_PASSWORD'), // checked above
      attemptsLeft: limits.attemptsMax,
      state: 'CHALLENGED',
      createdAtMs: now,
      updatedAtMs: now,
      expiresAtMs: now + limits.codeTtlMs,
      feeAmount: feeOf(input.amount, merchant.feeBasisPoints),
      ...(input.originSim === undefined ? {} : { originSim: input.originSim }),
      originPath: pathOfChannel(input.channel),
      ...(line === undefined ? {} : { billableLineId: line.id, lineControlAccountId: idToHex(accounts.limit!.control) }),
    };
    const plan = planOf(payment);
    const phantom = this.phantoms.has(payer);
    const { firstCode, digests } = phantom ? this.phantomChallenge(payment, plan) : this.challenge(payment, payer, plan);
    // A phantom has no money: where a real payer's payment would go through at once, it is refused for funds.
    if (phantom && decision.kind !== 'DENY' && plan.pending.length === 0) Object.assign(payment, { state: 'DECLINED', declineReason: 'INSUFFICIENT_FUNDS' });
    else if (decision.kind === 'DENY')
      Object.assign(payment, {
        state: 'DECLINED',
        declineReason: decision.unavailable === true ? 'AUTHORIZER_UNAVAILABLE' : 'POLICY_DENIED',
        declineDetail: decision.reason,
      });
    else if (plan.pending.length === 0) payment.state = 'APPROVED';
    // The secret its second code was derived from: a rotation closes it (confirm.ts, PaymentsService.closeChallenges).
    if (payment.state === 'CHALLENGED' && !phantom) payment.secretVersion = payer.secretVersion;
    const item: CreateItem = {
      scope: merchant.id,
      key: input.idempotencyKey,
      fingerprint: codes.fingerprint(createFields(input)),
      payment,
      digests: payment.state === 'CHALLENGED' ? digests : {},
      dueAtMs: payment.state === 'CHALLENGED' ? payment.expiresAtMs : payment.state === 'APPROVED' ? now + limits.driveLeaseMs : undefined,
      rateLimits: [
        ...(namesPayerByPhone(input)
          ? [{ key: phoneLookupKey(merchant.id), limit: limits.phoneLookupsPerMerchantMax, windowMs: limits.phoneLookupWindowMs }]
          : []),
        ...(payment.state === 'CHALLENGED'
          ? [{ key: challengeRateKey(merchant.id, payer.id), limit: limits.challengesPerPayerMerchantMax, windowMs: limits.challengeRateWindowMs }]
          : []),
        // A phantom counts like the code it stands for (else the code-rate refusals would tell it apart); one by payer_id has no phone to count.
        ...(payment.state === 'CHALLENGED' && plan.sendsCode && payer.phone !== '' ? this.codeRateHits(payer) : []),
      ],
      keyTtlMs: limits.idempotencyTtlMs,
      nowMs: now,
    };
    return { input, merchant, payer, decision, item, plan, firstCode: payment.state === 'CHALLENGED' ? firstCode : undefined };
  }

  /** The first code (sealed into the record so a resumed create can send it again), and the digest of each challenged factor's answer. */
  private challenge(payment: Payment, payer: Payer, plan: ChallengePlan) {
    const { codes } = this.deps;
    const digests: Partial<Record<Factor, string>> = {};
    const challenged = plan.pending.filter((f) => factorModule(f).challenged);
    if (challenged.length === 0) return { firstCode: undefined, digests };
    const firstCode = codes.newFirstCode();
    const expected = new ExpectedCodes(codes, payer, payment, firstCode);
    for (const factor of challenged) digests[factor] = codes.digest(challengeIdOf(payment.id, factor), factorModule(factor).expected!(expected));
    if (plan.pending.some(usesFirstCode)) payment.sealedFirstCode = codes.sealFirstCode(payment.id, firstCode);
    return { firstCode, digests };
  }

  /** A phantom's challenge: each challenged factor expects an answer nobody has; no code exists, none is sent. */
  private phantomChallenge(payment: Payment, plan: ChallengePlan) {
    const digests: Partial<Record<Factor, string>> = {};
    for (const factor of plan.pending.filter((f) => factorModule(f).challenged))
      digests[factor] = unanswerable(this.deps.codes, challengeIdOf(payment.id, factor));
    return { firstCode: undefined, digests };
  }

  /** The SMS-pumping limits a code sent to the payer counts against, in the order of `codeRateNames`. */
  private codeRateHits(payer: Payer): RateLimitHit[] {
    const { limits } = this.deps;
    const windowMs = limits.codeRateWindowMs;
    return [
      { key: `codes:to:${payer.phone}`, limit: limits.codesPerDestinationMax, windowMs },
      { key: `codes:payer:${payer.id}`, limit: limits.codesPerPayerMax, windowMs },
      { key: `codes:prefix:${payer.phone.slice(0, 7)}`, limit: limits.codesPerPrefixMax, windowMs },
    ];
  }
}

function checkInput(input: CreatePaymentInput) {
  checkIdempotencyKey(input.idempotencyKey);
  checkAmount(input.amount);
  const currency = checkCurrency(input.currency);
  checkDescription(input.description);
  if (input.originSim !== undefined) checkSim(input.originSim, 'origin_sim', false);
  return currency;
}

function payeeOf(merchant: Merchant, currency: string, payeeAccountId: string): bigint {
  const merchantAccount = merchant.accounts[currency];
  if (merchantAccount === undefined) throw precondition(`merchant has no ${currency} account`, { reason: 'MERCHANT_CURRENCY' });
  if (payeeAccountId !== '' && payeeAccountId !== merchantAccount)
    throw invalidArgument('payee_account_id', "must be empty or the merchant's own account in the currency");
  return idFromHex(merchantAccount);
}

function lockedOut(retryAfterMs: number): DomainError {
  return new DomainError('resource_exhausted', 'payer is locked out after repeated wrong answers', { retry_after_ms: retryAfterMs, reason: 'LOCKED_OUT' });
}
