import { AccountCode, TransferCode, accountFlagsFor, currencies, type Currency } from '../ledger/chart.js';
import { idToHex, idFromHex, newId } from '../ledger/ids.js';
import { account, transfer, u64Max } from '../ledger/model.js';
import type { Ledger } from '../ledger/port.js';
import { isApplied } from '../ledger/results.js';
import { fingerprint } from './fingerprint.js';
import { AuthzError, invalid, notFound, precondition } from './errors.js';
import type { BillableLine, BillingPeriod, LineKind, Merchant, PairedDevice, Payer, PayerPolicy, SimIdentity } from './model.js';
import type { ChallengeStore, Directory } from './ports.js';
import { checkAmount, checkCurrency, checkIdempotencyKey, checkPaymentId, checkPhone, displayNameCharsMax } from './validation.js';

/** The secret-handling operations enrollment needs; services/ wires authz/codes into it. */
export interface EnrollmentKit {
  ocraSuite: string;
  newSecret(): Buffer;
  secretBase32(secret: Buffer): string;
  secretUri(account: string, secret: Buffer): string;
  sealSecret(payerId: string, secret: Buffer): string;
  hashPin(pin: string): Promise<string>;
  /** Keyed digest (HMAC-SHA256 hex) of a value in a context; the same key as the payments' CodeKit.digest. */
  digest(context: string, value: string): string;
  /** A new bearer credential (API key or payer token) and its SHA-256 hex. */
  newCredential(prefix: string): { credential: string; hash: string };
}

export interface PayerEnrollment {
  payer: Payer;
  /** Only on the first call for an idempotency key. */
  secretBase32?: string;
  secretUri?: string;
  payerToken?: string;
}

export interface MerchantEnrollment {
  merchant: Merchant;
  apiKey?: string;
}

/** Deterministic 128-bit id from a name: platform accounts and funding transfers survive restarts. */
export function namedId(name: string): bigint {
  return BigInt('0x' + fingerprint(name).slice(0, 32)) & ~0xfn;
}

export const platformAccountIds = (currency: Currency) => ({
  funding: namedId(`countersign:account:funding:${currency.code}`),
  fees: namedId(`countersign:account:fees:${currency.code}`),
  operatorSettlement: namedId(`countersign:account:operator-settlement:${currency.code}`),
  bankSettlement: namedId(`countersign:account:bank-settlement:${currency.code}`),
});

/** The platform's own accounts per currency code. */
export interface PlatformAccounts {
  fees: Record<string, bigint>;
  /** M3c: the telecom operator's settlement account; grants each billable line its period credit. */
  operatorSettlement: Record<string, bigint>;
  /** M5: the card-issuing bank's settlement account; card payments are paid from it. */
  bankSettlement: Record<string, bigint>;
}

/** Creates the funding, fee, operator and bank settlement accounts of every currency (idempotent). */
export async function ensurePlatformAccounts(ledger: Ledger): Promise<PlatformAccounts> {
  const all = [...currencies.values()];
  const kinds = [
    ['funding', AccountCode.funding],
    ['fees', AccountCode.platformFees],
    ['operatorSettlement', AccountCode.operatorSettlement],
    ['bankSettlement', AccountCode.bankSettlement],
  ] as const;
  const events = all.flatMap((c) => kinds.map(([name, code]) => account({ id: platformAccountIds(c)[name], ledger: c.ledger, code, flags: accountFlagsFor[code] })));
  const results = await ledger.createAccounts(events);
  if (!results.every(isApplied)) throw new Error(`creating platform accounts: ${results.join(', ')}`);
  const byCurrency = (name: 'fees' | 'operatorSettlement' | 'bankSettlement') => Object.fromEntries(all.map((c) => [c.code, platformAccountIds(c)[name]]));
  return { fees: byCurrency('fees'), operatorSettlement: byCurrency('operatorSettlement'), bankSettlement: byCurrency('bankSettlement') };
}

/** Named bounds of enrollment. */
export const pairedDevicesMax = 10;
export const billableLinesMax = 10;
export const labelCharsMax = 64;
/** Pay numbers live this long unless asked otherwise, and at most `payNumberTtlSecondsMax`. */
export const payNumberTtlSecondsDefault = 600;
export const payNumberTtlSecondsMax = 86_400;
/** Digits of a pay number (10^12 numbers). */
export const payNumberDigits = 12;

/** The keyed digest a pay number is stored and looked up under (never the number itself). */
export function payNumberDigest(digest: (context: string, value: string) => string, payNumber: string): string {
  return digest('pay-number', payNumber);
}

/** A policy's thresholds are ordered and its strong factors not empty. */
function checkPolicy(policy: PayerPolicy): void {
  if (policy.oneFactorUpTo < policy.noFactorBelow) throw invalid('one_factor_up_to must be at least no_factor_below');
  if (policy.strongFactors.length === 0) throw invalid('more_factors needs at least one factor');
}

/** A SIM identity: an ICCID or an IMSI (digits), and an E.164 number when given or required. */
export function checkSim(sim: SimIdentity, field: string, msisdnRequired: boolean): void {
  if (sim.iccid === '' && sim.imsi === '') throw invalid(`${field} needs an iccid or an imsi`);
  if (sim.iccid !== '' && !/^\d{18,22}$/.test(sim.iccid)) throw invalid(`${field}.iccid must be 18 to 22 digits`);
  if (sim.imsi !== '' && !/^\d{6,15}$/.test(sim.imsi)) throw invalid(`${field}.imsi must be 6 to 15 digits`);
  if (msisdnRequired || sim.msisdn !== '') {
    if (!/^\+[1-9]\d{6,14}$/.test(sim.msisdn)) throw invalid(`${field}.msisdn must be E.164, e.g. +14155550123`);
  }
}

export function sameSim(a: SimIdentity, b: SimIdentity): boolean {
  return a.iccid === b.iccid && a.imsi === b.imsi && a.msisdn === b.msisdn;
}

/** The billing period containing `atMs`: calendar weeks from Monday or months from the 1st, 00:00 UTC. */
export function billingPeriodOf(period: BillingPeriod, atMs: number): { startMs: number; endMs: number } {
  const d = new Date(atMs);
  if (period === 'MONTHLY') {
    return { startMs: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), endMs: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
  }
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const startMs = day - ((d.getUTCDay() + 6) % 7) * 86_400_000;
  return { startMs, endMs: startMs + 7 * 86_400_000 };
}

/** The control account and grant transfer ids of a line's billing period (deterministic). */
export function linePeriodIds(lineId: string, periodStartMs: number): { control: bigint; grant: bigint } {
  return { control: namedId(`countersign:line-control:${lineId}:${periodStartMs}`), grant: namedId(`countersign:line-grant:${lineId}:${periodStartMs}`) };
}

/**
 * Enrollment and the directory: payers (phone, secret, PIN, policies, prepaid accounts) and
 * merchants (API key, fee, payee accounts), plus admin funding of payer accounts.
 */
export class EnrollmentService {
  constructor(
    private readonly deps: { ledger: Ledger; directory: Directory; challenges: ChallengeStore; kit: EnrollmentKit; now: () => number; idempotencyTtlMs: number },
  ) {}

  async enrollPayer(input: { idempotencyKey: string; phone: string; displayName: string; loginAccount?: string; currencies: string[]; policies: Record<string, PayerPolicy> }): Promise<PayerEnrollment> {
    checkIdempotencyKey(input.idempotencyKey);
    checkPhone(input.phone);
    if (input.loginAccount !== undefined && (input.loginAccount.length === 0 || input.loginAccount.length > 64)) throw invalid('login_account must be 1 to 64 characters');
    if (input.displayName.length > displayNameCharsMax) throw invalid(`display_name must be at most ${displayNameCharsMax} characters`);
    const chosen = this.currenciesOf(input.currencies);
    for (const code of Object.keys(input.policies)) if (!input.currencies.includes(code)) throw invalid(`policy for ${code}, which is not among the payer's currencies`);
    for (const policy of Object.values(input.policies)) checkPolicy(policy);
    const existingId = await this.claim('enroll-payer', input.idempotencyKey, input);
    if (existingId !== undefined) return { payer: await this.payer(existingId) };
    return this.orAbandon('enroll-payer', input.idempotencyKey, () => this.newPayer(input, chosen));
  }

  private async newPayer(input: Parameters<EnrollmentService['enrollPayer']>[0], chosen: Currency[]): Promise<PayerEnrollment> {
    if ((await this.deps.directory.findPayerByPhone(input.phone)) !== undefined) {
      throw new AuthzError('already_exists', 'a payer is already enrolled with that phone number');
    }
    if (input.loginAccount !== undefined && (await this.deps.directory.findPayerByLogin(input.loginAccount)) !== undefined) {
      throw new AuthzError('already_exists', 'that login account is taken');
    }
    const id = idToHex(newId());
    const accounts = await this.openAccounts(chosen, AccountCode.payerPrepaid);
    const secret = this.deps.kit.newSecret();
    const token = this.deps.kit.newCredential('cs_payer_');
    const payer: Payer = {
      id,
      phone: input.phone,
      ...(input.loginAccount ? { loginAccount: input.loginAccount } : {}),
      displayName: input.displayName,
      accounts,
      sealedSecret: this.deps.kit.sealSecret(id, secret),
      secretVersion: 1,
      tokenHash: token.hash,
      policies: input.policies,
      createdAtMs: this.deps.now(),
    };
    await this.deps.directory.putPayer(payer);
    await this.complete('enroll-payer', input.idempotencyKey, input, id);
    return { payer, secretBase32: this.deps.kit.secretBase32(secret), secretUri: this.deps.kit.secretUri(input.phone, secret), payerToken: token.credential };
  }

  async enrollMerchant(input: { idempotencyKey: string; name: string; currencies: string[]; feeBasisPoints: number; perPaymentLimit?: bigint }): Promise<MerchantEnrollment> {
    checkIdempotencyKey(input.idempotencyKey);
    if (input.name.length === 0 || input.name.length > displayNameCharsMax) throw invalid(`name must be 1 to ${displayNameCharsMax} characters`);
    if (!Number.isInteger(input.feeBasisPoints) || input.feeBasisPoints < 0 || input.feeBasisPoints > 10_000) throw invalid('fee_basis_points must be 0 to 10000');
    const chosen = this.currenciesOf(input.currencies);
    const existingId = await this.claim('enroll-merchant', input.idempotencyKey, input);
    if (existingId !== undefined) return { merchant: await this.merchant(existingId) };
    return this.orAbandon('enroll-merchant', input.idempotencyKey, () => this.newMerchant(input, chosen));
  }

  private async newMerchant(input: Parameters<EnrollmentService['enrollMerchant']>[0], chosen: Currency[]): Promise<MerchantEnrollment> {
    const key = this.deps.kit.newCredential('cs_live_');
    const merchant: Merchant = {
      id: idToHex(newId()),
      name: input.name,
      apiKeyHash: key.hash,
      accounts: await this.openAccounts(chosen, AccountCode.merchant),
      feeBasisPoints: input.feeBasisPoints,
      perPaymentLimit: input.perPaymentLimit ?? 0n,
      createdAtMs: this.deps.now(),
    };
    await this.deps.directory.putMerchant(merchant);
    await this.complete('enroll-merchant', input.idempotencyKey, input, merchant.id);
    return { merchant, apiKey: key.credential };
  }

  /**
   * Sets a payer's password, stored only as an argon2id hash: the IVR password (M2 payment
   * password, M3 authorization password: 4 to 12 digits, keyed as DTMF) or the M3
   * authentication password (8 to 128 characters).
   */
  async setPassword(payerId: string, kind: 'IVR' | 'AUTHORIZATION' | 'AUTH', password: string): Promise<Payer> {
    if (kind === 'AUTH' ? password.length < 8 || password.length > 128 : !/^\d{4,12}$/.test(password)) {
      throw invalid(kind === 'AUTH' ? 'an authentication password is 8 to 128 characters' : 'an IVR or authorization password is 4 to 12 digits');
    }
    const payer = await this.payer(payerId);
    const hash = await this.deps.kit.hashPin(password);
    const updated = kind === 'AUTH' ? { ...payer, authPasswordHash: hash } : { ...payer, ivrPasswordHash: hash };
    await this.deps.directory.putPayer(updated);
    return updated;
  }

  /** Sets (or replaces) the payer's verification PIN for M1a; stored only as an argon2id hash. */
  async setPin(payerId: string, pin: string): Promise<void> {
    if (!/^\d{4,12}$/.test(pin)) throw invalid('pin must be 4 to 12 digits');
    const payer = await this.payer(payerId);
    await this.deps.directory.putPayer({ ...payer, pinHash: await this.deps.kit.hashPin(pin) });
  }

  async setPolicy(payerId: string, currency: string, policy: PayerPolicy): Promise<Payer> {
    checkCurrency(currency);
    checkPolicy(policy);
    const payer = await this.payer(payerId);
    if (payer.accounts[currency] === undefined) throw precondition(`the payer has no ${currency} account to set a policy for`, { reason: 'PAYER_CURRENCY' });
    const updated = { ...payer, policies: { ...payer.policies, [currency]: policy } };
    await this.deps.directory.putPayer(updated);
    return updated;
  }

  /**
   * M4: pairs an auxiliary payment device (its SIM) with the payer's main SIM. Payments whose
   * request came through the main SIM can then require the paired device's message.
   */
  async pairDevice(input: { idempotencyKey: string; payerId: string; mainSim: SimIdentity; auxiliarySim: SimIdentity; label: string }): Promise<PairedDevice> {
    checkIdempotencyKey(input.idempotencyKey);
    checkPaymentId(input.payerId, 'payer_id');
    checkSim(input.mainSim, 'main_sim', false);
    checkSim(input.auxiliarySim, 'auxiliary_sim', false);
    if (sameSim(input.mainSim, input.auxiliarySim)) throw invalid('auxiliary_sim must be another SIM than main_sim');
    if (input.label.length > labelCharsMax) throw invalid(`label must be at most ${labelCharsMax} characters`);
    const existingId = await this.claim(`pair-device:${input.payerId}`, input.idempotencyKey, input);
    if (existingId !== undefined) return this.found((await this.payer(input.payerId)).pairedDevices, existingId, 'device');
    return this.orAbandon(`pair-device:${input.payerId}`, input.idempotencyKey, async () => {
      const payer = await this.payer(input.payerId);
      const devices = payer.pairedDevices ?? [];
      if (devices.length >= pairedDevicesMax) throw precondition(`a payer may pair at most ${pairedDevicesMax} devices`, { reason: 'DEVICES_MAX' });
      if (devices.some((d) => sameSim(d.auxiliarySim, input.auxiliarySim))) throw new AuthzError('already_exists', 'that auxiliary SIM is already paired');
      const device: PairedDevice = { id: idToHex(newId()), mainSim: input.mainSim, auxiliarySim: input.auxiliarySim, label: input.label, pairedAtMs: this.deps.now() };
      await this.deps.directory.putPayer({ ...payer, pairedDevices: [...devices, device] });
      await this.complete(`pair-device:${input.payerId}`, input.idempotencyKey, input, device.id);
      return device;
    });
  }

  /**
   * M3c: adds a billable line with its own postpaid ledger account (the line id is that account's
   * id; the account's user_data_128 names the payer). The credit limit per billing period is
   * enforced in the ledger when charges are reserved (see PaymentLedger.openLinePeriod).
   */
  async addBillableLine(input: { idempotencyKey: string; payerId: string; kind: LineKind; number: string; currency: string; creditLimit: bigint; billingPeriod: BillingPeriod }): Promise<BillableLine> {
    checkIdempotencyKey(input.idempotencyKey);
    checkPaymentId(input.payerId, 'payer_id');
    const currency = checkCurrency(input.currency);
    checkAmount(input.creditLimit, 'credit_limit');
    const numberOk = input.kind === 'MODEM' ? /^[0-9A-Za-z-]{4,32}$/.test(input.number) : /^\+[1-9]\d{6,14}$/.test(input.number);
    if (!numberOk) throw invalid(input.kind === 'MODEM' ? 'a modem line number is the operator subscriber id: 4 to 32 letters, digits or dashes' : 'a landline or mobile number must be E.164, e.g. +14155550123');
    const scope = `add-line:${input.payerId}`;
    const existingId = await this.claim(scope, input.idempotencyKey, input);
    if (existingId !== undefined) return this.found((await this.payer(input.payerId)).billableLines, existingId, 'line');
    return this.orAbandon(scope, input.idempotencyKey, async () => {
      const payer = await this.payer(input.payerId);
      const lines = payer.billableLines ?? [];
      if (lines.length >= billableLinesMax) throw precondition(`a payer may have at most ${billableLinesMax} billable lines`, { reason: 'LINES_MAX' });
      const id = newId();
      const [result] = await this.deps.ledger.createAccounts([
        account({ id, ledger: currency.ledger, code: AccountCode.payerPostpaid, flags: accountFlagsFor[AccountCode.payerPostpaid], user_data_128: idFromHex(payer.id) }),
      ]);
      if (result === undefined || !isApplied(result)) throw new Error(`opening a billable line account: ${result}`);
      const line: BillableLine = { id: idToHex(id), kind: input.kind, number: input.number, currency: currency.code, creditLimit: input.creditLimit, billingPeriod: input.billingPeriod, accountId: idToHex(id) };
      await this.deps.directory.putPayer({ ...payer, billableLines: [...lines, line] });
      await this.complete(scope, input.idempotencyKey, input, line.id);
      return line;
    });
  }

  /**
   * M5: a dynamic random pay number standing for the payer, single use, for `ttlSeconds`. The
   * number is derived from the idempotency key with the platform's digest key (so a retry gets the
   * same number without it being stored anywhere); the store keeps only its keyed digest.
   */
  async issuePayNumber(input: { idempotencyKey: string; payerId: string; ttlSeconds: number }): Promise<{ payNumber: string; expiresAtMs: number }> {
    checkIdempotencyKey(input.idempotencyKey);
    checkPaymentId(input.payerId, 'payer_id');
    const ttlSeconds = input.ttlSeconds === 0 ? payNumberTtlSecondsDefault : input.ttlSeconds;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > payNumberTtlSecondsMax) throw invalid(`ttl_seconds must be 0 (${payNumberTtlSecondsDefault}) to ${payNumberTtlSecondsMax}`);
    await this.payer(input.payerId);
    const scope = `pay-number:${input.payerId}`;
    const payNumber = (BigInt('0x' + this.deps.kit.digest(`pay-number-issue:${input.payerId}`, input.idempotencyKey).slice(0, 16)) % 10n ** BigInt(payNumberDigits)).toString().padStart(payNumberDigits, '0');
    const existing = await this.claim(scope, input.idempotencyKey, input);
    if (existing !== undefined) return { payNumber, expiresAtMs: Number(existing) };
    return this.orAbandon(scope, input.idempotencyKey, async () => {
      const expiresAtMs = this.deps.now() + ttlSeconds * 1000;
      await this.deps.challenges.putPayNumber(payNumberDigest(this.deps.kit.digest, payNumber), input.payerId, ttlSeconds * 1000);
      await this.complete(scope, input.idempotencyKey, input, String(expiresAtMs));
      return { payNumber, expiresAtMs };
    });
  }

  /**
   * Replaces the payer's verification secret (version + 1). The new secret is returned once;
   * challenges already issued keep the code they expect.
   */
  async rotateSecret(input: { idempotencyKey: string; payerId: string }): Promise<{ payer: Payer; secretBase32?: string; secretUri?: string }> {
    checkIdempotencyKey(input.idempotencyKey);
    checkPaymentId(input.payerId, 'payer_id');
    const scope = `rotate-secret:${input.payerId}`;
    const existing = await this.claim(scope, input.idempotencyKey, input);
    if (existing !== undefined) return { payer: await this.payer(input.payerId) };
    return this.orAbandon(scope, input.idempotencyKey, async () => {
      const payer = await this.payer(input.payerId);
      const secret = this.deps.kit.newSecret();
      const updated: Payer = { ...payer, sealedSecret: this.deps.kit.sealSecret(payer.id, secret), secretVersion: payer.secretVersion + 1 };
      await this.deps.directory.putPayer(updated);
      await this.complete(scope, input.idempotencyKey, input, String(updated.secretVersion));
      return { payer: updated, secretBase32: this.deps.kit.secretBase32(secret), secretUri: this.deps.kit.secretUri(payer.phone, secret) };
    });
  }

  private found<T extends { id: string }>(items: T[] | undefined, id: string, what: string): T {
    const item = items?.find((i) => i.id === id);
    if (item === undefined) throw notFound(`${what} ${id} not found`);
    return item;
  }

  /** Deposits into a payer's prepaid account from the platform funding account. The key names the deposit. */
  async fund(input: { idempotencyKey: string; accountId: string; amount: bigint; currency: string }): Promise<bigint> {
    checkIdempotencyKey(input.idempotencyKey);
    checkAmount(input.amount);
    const currency = checkCurrency(input.currency);
    if (!/^[0-9a-f]{32}$/.test(input.accountId)) throw invalid('account_id must be 32 lowercase hex digits');
    const [target] = await this.deps.ledger.lookupAccounts([idFromHex(input.accountId)]);
    // Checked before the transfer so a refused deposit does not burn its id: a retry of the same
    // request gets the same answer (the ledger would say id_already_failed).
    if (target === undefined) throw notFound(`account ${input.accountId} not found`);
    if (target.ledger !== currency.ledger) throw precondition(`account ${input.accountId} is not a ${currency.code} account`);
    const id = namedId(`countersign:fund:${input.idempotencyKey}`);
    const [existing] = await this.deps.ledger.lookupTransfers([id]);
    // Balances are reported as uint64: a deposit may not push an account past 2^64 − 1.
    if (existing === undefined && target.credits_posted + input.amount > u64Max) throw precondition('the deposit would take the account past 2^64 − 1 minor units', { reason: 'BALANCE_LIMIT' });
    const deposit = transfer({ id, debit_account_id: platformAccountIds(currency).funding, credit_account_id: idFromHex(input.accountId), amount: input.amount, ledger: currency.ledger, code: TransferCode.funding });
    const [result] = await this.deps.ledger.createTransfers([deposit]);
    if (result === 'ok' || result === 'exists') return id;
    if (result === 'credit_account_not_found') throw notFound(`account ${input.accountId} not found`);
    if (result === 'transfer_must_have_the_same_ledger_as_accounts' || result === 'accounts_must_have_the_same_ledger') throw precondition(`account ${input.accountId} is not a ${currency.code} account`);
    if (result?.startsWith('exists_with_different')) throw new AuthzError('already_exists', 'this idempotency key funded a different deposit');
    throw precondition(`deposit refused by the ledger: ${result}`);
  }

  async payer(id: string): Promise<Payer> {
    checkPaymentId(id, 'payer_id');
    const payer = await this.deps.directory.getPayer(id);
    if (payer === undefined) throw notFound(`payer ${id} not found`);
    return payer;
  }

  private async merchant(id: string): Promise<Merchant> {
    const merchant = await this.deps.directory.getMerchant(id);
    if (merchant === undefined) throw notFound(`merchant ${id} not found`);
    return merchant;
  }

  private currenciesOf(codes: string[]): Currency[] {
    if (codes.length === 0) throw invalid('at least one currency is required');
    if (new Set(codes).size !== codes.length) throw invalid('currencies must not repeat');
    return codes.map(checkCurrency);
  }

  private async openAccounts(chosen: Currency[], code: AccountCode): Promise<Record<string, string>> {
    const ids = chosen.map(() => newId());
    const results = await this.deps.ledger.createAccounts(chosen.map((c, i) => account({ id: ids[i]!, ledger: c.ledger, code, flags: accountFlagsFor[code] })));
    if (!results.every(isApplied)) throw new Error(`opening accounts: ${results.join(', ')}`);
    return Object.fromEntries(chosen.map((c, i) => [c.code, idToHex(ids[i]!)]));
  }

  /** The id enrolled under this key before, if any; ALREADY_EXISTS for a different request. */
  private async claim(scope: string, key: string, request: unknown): Promise<string | undefined> {
    const print = fingerprint(request);
    const outcome = await this.deps.challenges.beginIdempotency(scope, key, print, this.deps.idempotencyTtlMs);
    if (outcome.status === 'conflict') throw new AuthzError('already_exists', 'this idempotency key was used for a different request');
    if (outcome.status === 'in_progress') throw new AuthzError('unavailable', 'a request with this idempotency key is in progress; retry shortly');
    return outcome.status === 'done' ? outcome.result : undefined;
  }

  /** Releases the key when the work fails, so a corrected retry can run. */
  private async orAbandon<T>(scope: string, key: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      await this.deps.challenges.abandonIdempotency(scope, key);
      throw error;
    }
  }

  private complete(scope: string, key: string, request: unknown, id: string): Promise<void> {
    return this.deps.challenges.completeIdempotency(scope, key, fingerprint(request), id, this.deps.idempotencyTtlMs);
  }
}

