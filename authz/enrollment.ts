import { AccountCode, accountFlagsFor, type Currency, currencies, TransferCode } from '../ledger/chart.js';
import { idFromHex, idToHex, newId } from '../ledger/ids.js';
import { account, transfer, u64Max } from '../ledger/model.js';
import type { Ledger } from '../ledger/port.js';
import { isApplied } from '../ledger/results.js';
import { DomainError, invalidArgument, notFound, precondition } from './errors.js';
import { fingerprint } from './fingerprint.js';
import type { BillableLine, BillingPeriod, LineKind, Merchant, PairedDevice, Payer, PayerPolicy, SimIdentity } from './model.js';
import type { Directory } from './ports.js';
import type { PaymentStore } from './store/port.js';
import { checkAmount, checkCurrency, checkHexId, checkIdempotencyKey, checkPhone, displayNameCharsMax, dtmfPassword, isE164 } from './validation.js';

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

/**
 * A credential reissued (RotateApiKey, RevokeApiKeys, RotatePayerToken, RevokePayerTokens): the
 * record after it, the new credential (only on the first call for an idempotency key), and for a
 * rotation when the previous credential stops being accepted.
 */
export interface Reissued<T> {
  record: T;
  credential?: string;
  previousExpiresAtMs?: number;
}

/** How long a rotated credential keeps working, seconds: 0 asks for the default; at most the max. */
export const credentialOverlapSecondsDefault = 86_400;
export const credentialOverlapSecondsMax = 604_800;

/** Where a kind of record keeps its credential (merchants: API keys, payers: terminal tokens). */
interface CredentialSlot<T> {
  kind: 'api-key' | 'payer-token';
  prefix: string;
  read(id: string): Promise<T>;
  write(record: T): Promise<void>;
  current(record: T): string;
  previousExpiresAtMs(record: T): number | undefined;
  /** The record with `hash` as its credential and `previous` (or none) in its overlap. */
  with(record: T, hash: string, previous: { hash: string; expiresAtMs: number } | undefined): T;
}

/** Deterministic 128-bit id from a name: platform accounts and funding transfers survive restarts. */
export function namedId(name: string): bigint {
  return BigInt(`0x${fingerprint(name).slice(0, 32)}`) & ~0xfn;
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
  const events = all.flatMap((c) =>
    kinds.map(([name, code]) => account({ id: platformAccountIds(c)[name], ledger: c.ledger, code, flags: accountFlagsFor[code] })),
  );
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
  if (policy.oneFactorUpTo < policy.noFactorBelow) throw invalidArgument('one_factor_up_to', 'must be at least no_factor_below');
  if (policy.strongFactors.length === 0) throw invalidArgument('more_factors', 'needs at least one factor');
}

/** A SIM identity: an ICCID or an IMSI (digits), and an E.164 number when given or required. */
export function checkSim(sim: SimIdentity, field: string, msisdnRequired: boolean): void {
  if (sim.iccid === '' && sim.imsi === '') throw invalidArgument(field, 'needs an iccid or an imsi');
  if (sim.iccid !== '' && !/^\d{18,22}$/.test(sim.iccid)) throw invalidArgument(`${field}.iccid`, 'must be 18 to 22 digits');
  if (sim.imsi !== '' && !/^\d{6,15}$/.test(sim.imsi)) throw invalidArgument(`${field}.imsi`, 'must be 6 to 15 digits');
  if (msisdnRequired || sim.msisdn !== '') {
    checkPhone(sim.msisdn, `${field}.msisdn`);
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
/**
 * How long an enrollment call owns its idempotency key, milliseconds: a call that died holding it
 * (its process killed) lets a retry take over after this, resuming with the ids it had minted.
 */
export const enrollmentLeaseMs = 30_000;

/** A claimed key: the result of an earlier identical request (`done`), or the value this call works with. */
type Claimed = { done: string } | { done?: undefined; value: string; takenOver: boolean };

export class EnrollmentService {
  constructor(
    private readonly deps: {
      ledger: Ledger;
      directory: Directory;
      store: PaymentStore;
      kit: EnrollmentKit;
      now: () => number;
      idempotencyTtlMs: number;
      /**
       * Declines the payer's payments still CHALLENGED under a secret version below `secretVersion`
       * (PaymentsService.closeChallenges); RotateSecret calls it after writing the new secret.
       */
      closeChallenges?: (payerId: string, secretVersion: number) => Promise<number>;
    },
  ) {}

  private readonly merchantKeys: CredentialSlot<Merchant> = {
    kind: 'api-key',
    prefix: 'cs_live_',
    read: (id) => this.merchant(id),
    write: (m) => this.deps.directory.putMerchant(m),
    current: (m) => m.apiKeyHash,
    previousExpiresAtMs: (m) => m.previousApiKeyExpiresAtMs,
    with: ({ previousApiKeyHash: _h, previousApiKeyExpiresAtMs: _e, ...m }, hash, previous) => ({
      ...m,
      apiKeyHash: hash,
      ...(previous === undefined ? {} : { previousApiKeyHash: previous.hash, previousApiKeyExpiresAtMs: previous.expiresAtMs }),
    }),
  };

  private readonly payerTokens: CredentialSlot<Payer> = {
    kind: 'payer-token',
    prefix: 'cs_payer_',
    read: (id) => this.payer(id),
    write: (p) => this.deps.directory.putPayer(p),
    current: (p) => p.tokenHash,
    previousExpiresAtMs: (p) => p.previousTokenExpiresAtMs,
    with: ({ previousTokenHash: _h, previousTokenExpiresAtMs: _e, ...p }, hash, previous) => ({
      ...p,
      tokenHash: hash,
      ...(previous === undefined ? {} : { previousTokenHash: previous.hash, previousTokenExpiresAtMs: previous.expiresAtMs }),
    }),
  };

  /**
   * A new API key for the merchant, returned once; the key it had stays valid for the overlap
   * (`overlapSeconds`, 0: `credentialOverlapSecondsDefault`), a key still in an earlier overlap
   * dies now (at most one previous key).
   */
  rotateApiKey(input: { idempotencyKey: string; merchantId: string; overlapSeconds: number }): Promise<Reissued<Merchant>> {
    return this.reissue(this.merchantKeys, 'rotate', { idempotencyKey: input.idempotencyKey, id: input.merchantId, overlapSeconds: input.overlapSeconds });
  }

  /** Every API key of the merchant dies now; a new one is returned once. */
  revokeApiKeys(input: { idempotencyKey: string; merchantId: string }): Promise<Reissued<Merchant>> {
    return this.reissue(this.merchantKeys, 'revoke', { idempotencyKey: input.idempotencyKey, id: input.merchantId });
  }

  /** As `rotateApiKey`, for the payer's terminal token. */
  rotatePayerToken(input: { idempotencyKey: string; payerId: string; overlapSeconds: number }): Promise<Reissued<Payer>> {
    return this.reissue(this.payerTokens, 'rotate', { idempotencyKey: input.idempotencyKey, id: input.payerId, overlapSeconds: input.overlapSeconds });
  }

  /** As `revokeApiKeys`, for the payer's terminal tokens. */
  revokePayerTokens(input: { idempotencyKey: string; payerId: string }): Promise<Reissued<Payer>> {
    return this.reissue(this.payerTokens, 'revoke', { idempotencyKey: input.idempotencyKey, id: input.payerId });
  }

  /**
   * Rotation and revocation of one record's credential, idempotent: the claim's value is the hash
   * of the credential this call issues, so a call taking over from one that died after writing it
   * finishes without issuing another (that credential was shown to nobody: rotate again), and the
   * working credential is never pushed out of its overlap twice. The key's result is the previous
   * credential's expiry (Unix ms; '' for a revocation).
   */
  private async reissue<T>(
    slot: CredentialSlot<T>,
    op: 'rotate' | 'revoke',
    input: { idempotencyKey: string; id: string; overlapSeconds?: number },
  ): Promise<Reissued<T>> {
    checkIdempotencyKey(input.idempotencyKey);
    checkHexId(input.id, slot.kind === 'api-key' ? 'merchant_id' : 'payer_id');
    const overlapSeconds = op === 'revoke' ? 0 : input.overlapSeconds === 0 ? credentialOverlapSecondsDefault : (input.overlapSeconds ?? 0);
    if (op === 'rotate' && (!Number.isInteger(overlapSeconds) || overlapSeconds < 1 || overlapSeconds > credentialOverlapSecondsMax)) {
      throw invalidArgument('overlap_seconds', `must be 0 (${credentialOverlapSecondsDefault}) to ${credentialOverlapSecondsMax}`);
    }
    await slot.read(input.id);
    const issued = this.deps.kit.newCredential(slot.prefix);
    const scope = `${op}-${slot.kind}:${input.id}`;
    const claimed = await this.claim(scope, input.idempotencyKey, input, issued.hash);
    const expiryOf = (result: string) => (result === '' ? undefined : Number(result));
    if (claimed.done !== undefined) return { record: await slot.read(input.id), ...optionalExpiry(expiryOf(claimed.done)) };
    return this.orRelease(scope, input.idempotencyKey, input, async () => {
      const record = await slot.read(input.id);
      if (slot.current(record) === claimed.value) {
        // Taken over from a call that died after writing: finish it without a credential.
        const expiry = op === 'rotate' ? slot.previousExpiresAtMs(record) : undefined;
        await this.complete(scope, input.idempotencyKey, input, expiry === undefined ? '' : String(expiry));
        return { record, ...optionalExpiry(expiry) };
      }
      const previous = op === 'rotate' ? { hash: slot.current(record), expiresAtMs: this.deps.now() + overlapSeconds * 1000 } : undefined;
      const updated = slot.with(record, issued.hash, previous);
      await slot.write(updated);
      await this.complete(scope, input.idempotencyKey, input, previous === undefined ? '' : String(previous.expiresAtMs));
      return { record: updated, credential: issued.credential, ...optionalExpiry(previous?.expiresAtMs) };
    });
  }

  async enrollPayer(input: {
    idempotencyKey: string;
    phone: string;
    displayName: string;
    loginAccount?: string;
    currencies: string[];
    policies: Record<string, PayerPolicy>;
  }): Promise<PayerEnrollment> {
    checkIdempotencyKey(input.idempotencyKey);
    checkPhone(input.phone);
    if (input.loginAccount !== undefined && (input.loginAccount.length === 0 || input.loginAccount.length > 64))
      throw invalidArgument('login_account', 'must be 1 to 64 characters');
    if (input.displayName.length > displayNameCharsMax) throw invalidArgument('display_name', `must be at most ${displayNameCharsMax} characters`);
    const chosen = this.currenciesOf(input.currencies);
    for (const code of Object.keys(input.policies))
      if (!input.currencies.includes(code)) throw invalidArgument('policies', `name ${code}, which is not among the payer's currencies`);
    for (const policy of Object.values(input.policies)) checkPolicy(policy);
    const claimed = await this.claim('enroll-payer', input.idempotencyKey, input, idToHex(newId()));
    if (claimed.done !== undefined) return { payer: await this.payer(claimed.done) };
    return this.orRelease('enroll-payer', input.idempotencyKey, input, () => this.newPayer(input, chosen, claimed.value));
  }

  private async newPayer(input: Parameters<EnrollmentService['enrollPayer']>[0], chosen: Currency[], id: string): Promise<PayerEnrollment> {
    // Taken over from a call that died after writing the payer: finish it (its secret was shown to nobody; RotateSecret issues one).
    const written = await this.deps.directory.getPayer(id);
    if (written !== undefined) {
      await this.complete('enroll-payer', input.idempotencyKey, input, id);
      return { payer: written };
    }
    if ((await this.deps.directory.findPayerByPhone(input.phone)) !== undefined) {
      throw new DomainError('already_exists', 'a payer is already enrolled with that phone number');
    }
    if (input.loginAccount !== undefined && (await this.deps.directory.findPayerByLogin(input.loginAccount)) !== undefined) {
      throw new DomainError('already_exists', 'that login account is taken');
    }
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

  async enrollMerchant(input: {
    idempotencyKey: string;
    name: string;
    currencies: string[];
    feeBasisPoints: number;
    perPaymentLimit?: bigint;
  }): Promise<MerchantEnrollment> {
    checkIdempotencyKey(input.idempotencyKey);
    if (input.name.length === 0 || input.name.length > displayNameCharsMax) throw invalidArgument('name', `must be 1 to ${displayNameCharsMax} characters`);
    if (!Number.isInteger(input.feeBasisPoints) || input.feeBasisPoints < 0 || input.feeBasisPoints > 10_000)
      throw invalidArgument('fee_basis_points', 'must be 0 to 10000');
    const chosen = this.currenciesOf(input.currencies);
    const claimed = await this.claim('enroll-merchant', input.idempotencyKey, input, idToHex(newId()));
    if (claimed.done !== undefined) return { merchant: await this.merchant(claimed.done) };
    return this.orRelease('enroll-merchant', input.idempotencyKey, input, () => this.newMerchant(input, chosen, claimed.value));
  }

  private async newMerchant(input: Parameters<EnrollmentService['enrollMerchant']>[0], chosen: Currency[], id: string): Promise<MerchantEnrollment> {
    const written = await this.deps.directory.getMerchant(id);
    if (written !== undefined) {
      await this.complete('enroll-merchant', input.idempotencyKey, input, id);
      return { merchant: written };
    }
    const key = this.deps.kit.newCredential('cs_live_');
    const merchant: Merchant = {
      id,
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
    if (kind === 'AUTH' ? password.length < 8 || password.length > 128 : !dtmfPassword.test(password)) {
      throw invalidArgument(
        'password',
        kind === 'AUTH' ? 'must be 8 to 128 characters for an authentication password' : 'must be 4 to 12 digits for an IVR or authorization password',
      );
    }
    const payer = await this.payer(payerId);
    const hash = await this.deps.kit.hashPin(password);
    const updated = kind === 'AUTH' ? { ...payer, authPasswordHash: hash } : { ...payer, ivrPasswordHash: hash };
    await this.deps.directory.putPayer(updated);
    return updated;
  }

  /** Sets (or replaces) the payer's verification PIN for M1a; stored only as an argon2id hash. */
  async setPin(payerId: string, pin: string): Promise<void> {
    if (!dtmfPassword.test(pin)) throw invalidArgument('pin', 'must be 4 to 12 digits');
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
    checkHexId(input.payerId, 'payer_id');
    checkSim(input.mainSim, 'main_sim', false);
    checkSim(input.auxiliarySim, 'auxiliary_sim', false);
    if (sameSim(input.mainSim, input.auxiliarySim)) throw invalidArgument('auxiliary_sim', 'must be another SIM than main_sim');
    if (input.label.length > labelCharsMax) throw invalidArgument('label', `must be at most ${labelCharsMax} characters`);
    const scope = `pair-device:${input.payerId}`;
    const claimed = await this.claim(scope, input.idempotencyKey, input, idToHex(newId()));
    if (claimed.done !== undefined) return this.found((await this.payer(input.payerId)).pairedDevices, claimed.done, 'device');
    return this.orRelease(scope, input.idempotencyKey, input, async () => {
      const payer = await this.payer(input.payerId);
      const devices = payer.pairedDevices ?? [];
      const written = devices.find((d) => d.id === claimed.value);
      if (written !== undefined) return (await this.complete(scope, input.idempotencyKey, input, written.id), written);
      if (devices.length >= pairedDevicesMax) throw precondition(`a payer may pair at most ${pairedDevicesMax} devices`, { reason: 'DEVICES_MAX' });
      if (devices.some((d) => sameSim(d.auxiliarySim, input.auxiliarySim))) throw new DomainError('already_exists', 'that auxiliary SIM is already paired');
      const device: PairedDevice = {
        id: claimed.value,
        mainSim: input.mainSim,
        auxiliarySim: input.auxiliarySim,
        label: input.label,
        pairedAtMs: this.deps.now(),
      };
      await this.deps.directory.putPayer({ ...payer, pairedDevices: [...devices, device] });
      await this.complete(scope, input.idempotencyKey, input, device.id);
      return device;
    });
  }

  /**
   * M3c: adds a billable line with its own postpaid ledger account (the line id is that account's
   * id; the account's user_data_128 names the payer). The credit limit per billing period is
   * enforced in the ledger when charges are reserved (see PaymentLedger.openLinePeriod).
   */
  async addBillableLine(input: {
    idempotencyKey: string;
    payerId: string;
    kind: LineKind;
    number: string;
    currency: string;
    creditLimit: bigint;
    billingPeriod: BillingPeriod;
  }): Promise<BillableLine> {
    checkIdempotencyKey(input.idempotencyKey);
    checkHexId(input.payerId, 'payer_id');
    const currency = checkCurrency(input.currency);
    checkAmount(input.creditLimit, 'credit_limit');
    const numberOk = input.kind === 'MODEM' ? /^[0-9A-Za-z-]{4,32}$/.test(input.number) : isE164(input.number);
    if (!numberOk)
      throw invalidArgument(
        'number',
        input.kind === 'MODEM'
          ? "must be the modem's operator subscriber id: 4 to 32 letters, digits or dashes"
          : 'must be E.164 for a landline or mobile, e.g. +14155550123',
      );
    const scope = `add-line:${input.payerId}`;
    const claimed = await this.claim(scope, input.idempotencyKey, input, idToHex(newId()));
    if (claimed.done !== undefined) return this.found((await this.payer(input.payerId)).billableLines, claimed.done, 'line');
    return this.orRelease(scope, input.idempotencyKey, input, async () => {
      const payer = await this.payer(input.payerId);
      const lines = payer.billableLines ?? [];
      const written = lines.find((l) => l.id === claimed.value);
      if (written !== undefined) return (await this.complete(scope, input.idempotencyKey, input, written.id), written);
      if (lines.length >= billableLinesMax) throw precondition(`a payer may have at most ${billableLinesMax} billable lines`, { reason: 'LINES_MAX' });
      // The account id is the claim's: a call taking over after the account was opened meets `exists`.
      const id = idFromHex(claimed.value);
      const [result] = await this.deps.ledger.createAccounts([
        account({
          id,
          ledger: currency.ledger,
          code: AccountCode.payerPostpaid,
          flags: accountFlagsFor[AccountCode.payerPostpaid],
          user_data_128: idFromHex(payer.id),
        }),
      ]);
      if (result === undefined || !isApplied(result)) throw new Error(`opening a billable line account: ${result}`);
      const line: BillableLine = {
        id: idToHex(id),
        kind: input.kind,
        number: input.number,
        currency: currency.code,
        creditLimit: input.creditLimit,
        billingPeriod: input.billingPeriod,
        accountId: idToHex(id),
      };
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
    checkHexId(input.payerId, 'payer_id');
    const ttlSeconds = input.ttlSeconds === 0 ? payNumberTtlSecondsDefault : input.ttlSeconds;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > payNumberTtlSecondsMax)
      throw invalidArgument('ttl_seconds', `must be 0 (${payNumberTtlSecondsDefault}) to ${payNumberTtlSecondsMax}`);
    await this.payer(input.payerId);
    const scope = `pay-number:${input.payerId}`;
    const payNumber = (
      BigInt(`0x${this.deps.kit.digest(`pay-number-issue:${input.payerId}`, input.idempotencyKey).slice(0, 16)}`) %
      10n ** BigInt(payNumberDigits)
    )
      .toString()
      .padStart(payNumberDigits, '0');
    const now = this.deps.now();
    const claimed = await this.claim(scope, input.idempotencyKey, input, String(now + ttlSeconds * 1000));
    if (claimed.done !== undefined) return { payNumber, expiresAtMs: Number(claimed.done) };
    return this.orRelease(scope, input.idempotencyKey, input, async () => {
      const expiresAtMs = Number(claimed.value);
      await this.deps.store.putPayNumber({
        numberDigest: payNumberDigest(this.deps.kit.digest, payNumber),
        payerId: input.payerId,
        ttlMs: Math.max(1, expiresAtMs - now),
        nowMs: now,
      });
      await this.complete(scope, input.idempotencyKey, input, String(expiresAtMs));
      return { payNumber, expiresAtMs };
    });
  }

  /**
   * Replaces the payer's verification secret (version + 1). The new secret is returned once.
   * Then the payer's payments still CHALLENGED under an earlier version are declined
   * (SECRET_ROTATED; `closeChallenges`), also by a call that takes over from one that died after
   * writing the secret; a confirm of one that escaped (a create that read the payer just before)
   * is refused and declines it (confirm.ts).
   */
  async rotateSecret(input: { idempotencyKey: string; payerId: string }): Promise<{ payer: Payer; secretBase32?: string; secretUri?: string }> {
    checkIdempotencyKey(input.idempotencyKey);
    checkHexId(input.payerId, 'payer_id');
    const scope = `rotate-secret:${input.payerId}`;
    const before = await this.payer(input.payerId);
    const claimed = await this.claim(scope, input.idempotencyKey, input, String(before.secretVersion + 1));
    if (claimed.done !== undefined) return { payer: await this.payer(input.payerId) };
    return this.orRelease(scope, input.idempotencyKey, input, async () => {
      const payer = await this.payer(input.payerId);
      // Taken over from a call that died after rotating: finish it (that secret was shown to nobody; rotate again for a new one).
      if (payer.secretVersion >= Number(claimed.value)) {
        await this.deps.closeChallenges?.(payer.id, payer.secretVersion);
        return (await this.complete(scope, input.idempotencyKey, input, String(payer.secretVersion)), { payer });
      }
      const secret = this.deps.kit.newSecret();
      const updated: Payer = { ...payer, sealedSecret: this.deps.kit.sealSecret(payer.id, secret), secretVersion: payer.secretVersion + 1 };
      await this.deps.directory.putPayer(updated);
      await this.deps.closeChallenges?.(payer.id, updated.secretVersion);
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
    checkHexId(input.accountId, 'account_id');
    const [target] = await this.deps.ledger.lookupAccounts([idFromHex(input.accountId)]);
    // Checked before the transfer so a refused deposit does not burn its id: a retry of the same
    // request gets the same answer (the ledger would say id_already_failed).
    if (target === undefined) throw notFound(`account ${input.accountId} not found`);
    if (target.ledger !== currency.ledger) throw precondition(`account ${input.accountId} is not a ${currency.code} account`);
    const id = namedId(`countersign:fund:${input.idempotencyKey}`);
    const [existing] = await this.deps.ledger.lookupTransfers([id]);
    // Balances are reported as uint64: a deposit may not push an account past 2^64 − 1.
    if (existing === undefined && target.credits_posted + input.amount > u64Max)
      throw precondition('the deposit would take the account past 2^64 − 1 minor units', { reason: 'BALANCE_LIMIT' });
    const deposit = transfer({
      id,
      debit_account_id: platformAccountIds(currency).funding,
      credit_account_id: idFromHex(input.accountId),
      amount: input.amount,
      ledger: currency.ledger,
      code: TransferCode.funding,
    });
    const [result] = await this.deps.ledger.createTransfers([deposit]);
    if (result === 'ok' || result === 'exists') return id;
    if (result === 'credit_account_not_found') throw notFound(`account ${input.accountId} not found`);
    if (result === 'transfer_must_have_the_same_ledger_as_accounts' || result === 'accounts_must_have_the_same_ledger')
      throw precondition(`account ${input.accountId} is not a ${currency.code} account`);
    if (result?.startsWith('exists_with_different')) throw new DomainError('already_exists', 'this idempotency key funded a different deposit');
    throw precondition(`deposit refused by the ledger: ${result}`);
  }

  async payer(id: string): Promise<Payer> {
    checkHexId(id, 'payer_id');
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
    if (codes.length === 0) throw invalidArgument('currencies', 'must name at least one currency');
    if (new Set(codes).size !== codes.length) throw invalidArgument('currencies', 'must not repeat');
    return codes.map(checkCurrency);
  }

  private async openAccounts(chosen: Currency[], code: AccountCode): Promise<Record<string, string>> {
    const ids = chosen.map(() => newId());
    const results = await this.deps.ledger.createAccounts(chosen.map((c, i) => account({ id: ids[i]!, ledger: c.ledger, code, flags: accountFlagsFor[code] })));
    if (!results.every(isApplied)) throw new Error(`opening accounts: ${results.join(', ')}`);
    return Object.fromEntries(chosen.map((c, i) => [c.code, idToHex(ids[i]!)]));
  }

  /**
   * Claims the key for this request with a lease: the result of an earlier identical request,
   * or the value to work with (`value`, or the first claimant's when its lease ran out and this
   * call takes over). ALREADY_EXISTS for a different request; UNAVAILABLE while another call holds it.
   */
  private async claim(scope: string, key: string, request: unknown, value: string): Promise<Claimed> {
    const outcome = await this.deps.store.claimKey({
      scope,
      key,
      fingerprint: fingerprint(request),
      value,
      leaseMs: enrollmentLeaseMs,
      keyTtlMs: this.deps.idempotencyTtlMs,
      nowMs: this.deps.now(),
    });
    if (outcome.status === 'conflict') throw new DomainError('already_exists', 'this idempotency key was used for a different request');
    if (outcome.status === 'in_progress')
      throw new DomainError('unavailable', 'a request with this idempotency key is in progress; retry shortly', {
        reason: 'IN_PROGRESS',
        retry_after_ms: outcome.retryAfterMs,
      });
    if (outcome.status === 'done') return { done: outcome.result };
    return { value: outcome.value, takenOver: outcome.takenOver };
  }

  /** Releases the key when the work fails, so a corrected retry can run. */
  private async orRelease<T>(scope: string, key: string, request: unknown, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      await this.deps.store.releaseKey({ scope, key, fingerprint: fingerprint(request) });
      throw error;
    }
  }

  private complete(scope: string, key: string, request: unknown, result: string): Promise<void> {
    return this.deps.store.completeKey({ scope, key, fingerprint: fingerprint(request), result, keyTtlMs: this.deps.idempotencyTtlMs, nowMs: this.deps.now() });
  }
}

function optionalExpiry(expiresAtMs: number | undefined): { previousExpiresAtMs?: number } {
  return expiresAtMs === undefined ? {} : { previousExpiresAtMs: expiresAtMs };
}
