import { unreachable } from '../../ledger/assert.js';
import { idFromHex } from '../../ledger/ids.js';
import type { Authorizer } from '../authorizer.js';
import type { PlatformAccounts } from '../enrollment.js';
import type { PaymentEvents } from '../events.js';
import type { Payer, Payment } from '../model.js';
import type { Notifier } from '../notifier.js';
import type { PaymentAccounts, PaymentLedger } from '../payment-ledger.js';
import type { BankGateway, Directory } from '../ports.js';
import type { PaymentRecord, PaymentStore } from '../store/port.js';

/** The code operations the steps need; services/ wires authz/codes into it. */
export interface CodeKit {
  newFirstCode(): string;
  deriveSecondCode(secret: Buffer, fields: { firstCode: string; amount: bigint; currency: string; payeeAccountId: string }): string;
  /** Keyed digest (HMAC-SHA256 hex) of a response in a context: a challenge id, or 'idempotency' (the refuse step's fingerprints, and the fingerprints of versions before 2026-12-06: fingerprint.ts). */
  digest(context: string, response: string): string;
  /**
   * An idempotency fingerprint (64 hex): one SHA-256 over a key of its own and the request's
   * fields (`createFields`, `confirmFields` in fingerprint.ts). Keyed: a confirm carries codes,
   * PINs or passwords, and an unkeyed hash of them could be reversed by trying them all.
   */
  fingerprint(fields: string): string;
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
  /**
   * Whether the reservation carries a ledger timeout (the challenge's lifetime plus the grace), so
   * the ledger releases it by itself even when no countersign process is left to do it. Without
   * one (false) it is released by countersign alone: the expiry sweep (the store's due index) and
   * `reconcile`, as soon as a process runs. README "Holds and their timeout".
   */
  ledgerHoldTimeout: boolean;
  /** How long idempotency keys are remembered, milliseconds (24 h). */
  idempotencyTtlMs: number;
  /**
   * A create's lease, milliseconds: a retry of a create within it sends the challenge's text
   * again, after it the phone call too (the first create may still be placing it within the lease).
   */
  createLeaseMs: number;
  /**
   * The sweeper looks at a payment a step approved, declined or expired this many milliseconds
   * later, unless the caller posted or voided it first (a crash in between leaves it to the sweeper).
   */
  driveLeaseMs: number;
  /** SMS-pumping defence: codes sent to one number per `codeRateWindowMs`. */
  codesPerDestinationMax: number;
  /** Codes sent for one payer per window. */
  codesPerPayerMax: number;
  /** Codes sent to one number prefix (`+` and the first 6 digits) per window. */
  codesPerPrefixMax: number;
  /** The window of the three code-rate limits, milliseconds. */
  codeRateWindowMs: number;
  /**
   * Tenant safety (README "Tenant safety"): creates that name the payer by phone number, per
   * merchant per `phoneLookupWindowMs`, enrolled phones and unknown ones alike (counting only the
   * misses would make the refusal itself say which phones miss). Over it: RESOURCE_EXHAUSTED for
   * that merchant's phone lookups until the window ends; other merchants are not affected.
   */
  phoneLookupsPerMerchantMax: number;
  /** The window of `phoneLookupsPerMerchantMax`, milliseconds (1 h). */
  phoneLookupWindowMs: number;
  /**
   * Tenant safety: challenged payments one merchant may open for one payer per
   * `challengeRateWindowMs`, phantom payers' included (README "Tenant safety"). Over it:
   * RESOURCE_EXHAUSTED (`CHALLENGE_RATE`) for that merchant and payer until the window ends; other
   * merchants and payers are not affected. Payments that need no factor are not counted.
   */
  challengesPerPayerMerchantMax: number;
  /** The window of `challengesPerPayerMerchantMax`, milliseconds (10 min). */
  challengeRateWindowMs: number;
}

export const defaultPaymentLimits: PaymentLimits = {
  codeTtlMs: 300_000,
  attemptsMax: 5,
  reservationGraceSeconds: 60,
  ledgerHoldTimeout: true,
  idempotencyTtlMs: 86_400_000,
  createLeaseMs: 30_000,
  driveLeaseMs: 10_000,
  codesPerDestinationMax: 5,
  codesPerPayerMax: 10,
  codesPerPrefixMax: 100,
  codeRateWindowMs: 600_000,
  phoneLookupsPerMerchantMax: 1_000,
  phoneLookupWindowMs: 3_600_000,
  challengesPerPayerMerchantMax: 30,
  challengeRateWindowMs: 600_000,
};

/** Where the steps report what they repaired or could not (never a secret). */
export interface StepLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface StepDeps {
  store: PaymentStore;
  ledger: PaymentLedger;
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
  log: StepLog;
}

/** One item's outcome in a batch: the payment, or the error the item met. */
export type ItemOutcome = PromiseSettledResult<Payment>;

export const fulfilled = (payment: Payment): ItemOutcome => ({ status: 'fulfilled', value: payment });
export const rejected = (reason: unknown): ItemOutcome => ({ status: 'rejected', reason });

/** Commits a step makes again after a `stale` answer (another process changed the record meanwhile), at most. */
export const casRetriesMax = 3;

/**
 * The ledger accounts a payment moves money between, from its record alone (so any process can
 * drive it): the payer's (or the line's, or the bank settlement) account, the payee, the platform
 * fee account, and for a billable line (M3c) the period's control account and the operator.
 */
export function accountsOf(deps: Pick<StepDeps, 'platform'>, payment: Payment): PaymentAccounts {
  const { fees, operator } = platformOf(deps, payment);
  const accounts: PaymentAccounts = { payer: idFromHex(payment.payerAccountId), payee: idFromHex(payment.payeeAccountId), fees };
  if (payment.lineControlAccountId !== undefined) accounts.limit = { control: idFromHex(payment.lineControlAccountId), grant: 0n, operator };
  return accounts;
}

/** The platform accounts a payment closed without money marks its close between (`PaymentLedger.close`). */
export function closingAccountsOf(deps: Pick<StepDeps, 'platform'>, payment: Payment): { debit: bigint; credit: bigint } {
  const { fees, operator } = platformOf(deps, payment);
  return { debit: operator, credit: fees };
}

function platformOf(deps: Pick<StepDeps, 'platform'>, payment: Payment): { fees: bigint; operator: bigint } {
  const fees = deps.platform.fees[payment.currency];
  const operator = deps.platform.operatorSettlement[payment.currency];
  if (fees === undefined || operator === undefined) unreachable(`payment ${payment.id}: no platform accounts for ${payment.currency}`);
  return { fees, operator };
}

/**
 * The reservation's timeout in seconds: the challenge's lifetime plus the grace, from the record
 * alone, so that every process that makes it (the create, a retry, a confirm finishing a create
 * that crashed) sends the same transfer and meets `exists` — never `exists_with_different_timeout`
 * (except across a change of `ledgerHoldTimeout`, which `PaymentLedger` accepts as made). 0: no ledger timeout.
 */
export function reservationSeconds(deps: Pick<StepDeps, 'limits'>, payment: Payment): number {
  if (!deps.limits.ledgerHoldTimeout) return 0;
  return Math.max(1, Math.ceil((payment.expiresAtMs - payment.createdAtMs) / 1000)) + deps.limits.reservationGraceSeconds;
}

/** Tells watchers (and metrics) about records that changed. */
export function publish(deps: Pick<StepDeps, 'events'>, records: readonly (PaymentRecord | undefined)[]): void {
  for (const r of records) if (r !== undefined) deps.events.publish(r.payment);
}
