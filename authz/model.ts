/**
 * The authorization domain's types. No transport in here: services/ converts proto messages to
 * and from these at the edge. Ids are 32-hex-digit strings of 128-bit ids (see ledger/ids.ts);
 * money is bigint minor units.
 */

/** Every factor, in a fixed order (stores may encode a set of factors as bits in this order). */
export const allFactors = ['SECOND_CODE', 'FIRST_CODE_AND_PIN', 'SMS_OTP', 'IVR_PASSWORD', 'AUTH_PASSWORD', 'PAIRED_DEVICE', 'BANK_CARD_PIN'] as const;

export type Factor = (typeof allFactors)[number];

export type PaymentState = 'CREATED' | 'CHALLENGED' | 'APPROVED' | 'SUCCEEDED' | 'DECLINED' | 'EXPIRED' | 'CANCELLED';

export type DeclineReason =
  | 'POLICY_DENIED'
  | 'PAYER_DECLINED'
  | 'ATTEMPTS_EXHAUSTED'
  | 'INSUFFICIENT_FUNDS'
  | 'CREDIT_LIMIT_EXCEEDED'
  | 'DEVICE_MISMATCH'
  | 'BANK_DECLINED'
  | 'AUTHORIZER_UNAVAILABLE'
  | 'DELIVERY_FAILED'
  /** The payer's verification secret was rotated after the payment was challenged. */
  | 'SECRET_ROTATED';

export type Channel = 'APP' | 'WEB' | 'INSTANT_MESSAGING' | 'SMS' | 'VOICE' | 'MERCHANT' | 'MOBILE_NETWORK' | 'CONSOLE';

export interface Payment {
  id: string;
  merchantId: string;
  payerId: string;
  /** The ledger account credited (the merchant's own account unless the merchant named another). */
  payeeAccountId: string;
  /** The payer's ledger account debited (hex), so settling needs no directory read. */
  payerAccountId: string;
  amount: bigint;
  currency: string;
  description: string;
  channel: Channel;
  requiredFactors: Factor[];
  satisfiedFactors: Factor[];
  attemptsLeft: number;
  state: PaymentState;
  declineReason?: DeclineReason;
  declineDetail?: string;
  /** Unix milliseconds. */
  createdAtMs: number;
  updatedAtMs: number;
  /** When the challenge (and the reservation) lapse, Unix milliseconds. */
  expiresAtMs: number;
  /** The merchant's fee in minor units, posted linked with the payment. */
  feeAmount: bigint;
  /**
   * The first code, sealed (AES-256-GCM) for the payer's own terminal to fetch (channel APP or
   * WEB). Never a plaintext code; cleared once the payment leaves CHALLENGED.
   */
  sealedFirstCode?: string;
  /** M4: the main SIM the request came through, as reported by the mobile network. */
  originSim?: SimIdentity;
  /** M4: the path the request arrived on (see factors.ts `pathOf`), so the paired device's message must take another. */
  originPath?: string;
  /** M3c: the billable line charged instead of the prepaid account. */
  billableLineId?: string;
  /** M3c: the line's control account for the billing period the charge counts against (hex). */
  lineControlAccountId?: string;
  /** M5: the bank's authorization code once it approved. */
  bankAuthorizationCode?: string;
  /**
   * The payer's `secretVersion` the payment was challenged under (set on every CHALLENGED payment
   * of an enrolled payer). A record without it (written before the field existed) counts as
   * version 1. A second code for a payment challenged under another version than the payer's
   * current one is refused and the payment declined (SECRET_ROTATED).
   */
  secretVersion?: number;
}

/** A SIM's identity as known to the mobile network (M4); fields are compared exactly. */
export interface SimIdentity {
  iccid: string;
  imsi: string;
  /** E.164. */
  msisdn: string;
}

/** M4: an auxiliary payment device paired with the payer's main SIM. */
export interface PairedDevice {
  id: string;
  mainSim: SimIdentity;
  auxiliarySim: SimIdentity;
  label: string;
  pairedAtMs: number;
}

export type LineKind = 'LANDLINE' | 'MOBILE' | 'MODEM';
export type BillingPeriod = 'WEEKLY' | 'MONTHLY';

/** M3c: a billable line with a postpaid ledger account and a credit limit per billing period. */
export interface BillableLine {
  id: string;
  kind: LineKind;
  /** E.164 for landlines and mobiles; the operator's subscriber id for modems. */
  number: string;
  currency: string;
  /** Minor units per billing period. */
  creditLimit: bigint;
  billingPeriod: BillingPeriod;
  /** The line's postpaid ledger account (hex). */
  accountId: string;
}

/** M5: an envelope sealed on the payer's terminal for the bank front-end; opaque here. */
export interface SealedEnvelope {
  suite: string;
  keyId: string;
  ephemeralPublicKey: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** Who is calling: decides what a request may see and do. */
export type Caller =
  | { kind: 'merchant'; merchantId: string }
  | { kind: 'payer'; payerId: string }
  /** A trusted internal channel (the telco bridge) relaying a payer's SMS reply or keyed password. */
  | { kind: 'service' }
  | { kind: 'admin' };

export const terminalStates: ReadonlySet<PaymentState> = new Set(['SUCCEEDED', 'DECLINED', 'EXPIRED', 'CANCELLED']);

export interface PayerPolicy {
  /** Below this amount (minor units) no factor is required. 0 = every payment needs a factor. */
  noFactorBelow: bigint;
  /** Up to and including this amount one factor is enough; above it, more are required. */
  oneFactorUpTo: bigint;
  /** The factor used when one factor is enough. */
  defaultFactor: Factor;
  /** Factors required above `oneFactorUpTo`. */
  strongFactors: Factor[];
}

export interface Payer {
  id: string;
  /** E.164. */
  phone: string;
  /** Optional login account for checkouts (M3), unique. */
  loginAccount?: string;
  displayName: string;
  /** The payer's prepaid ledger account (hex id) per currency code. */
  accounts: Record<string, string>;
  /** The verification secret, AES-256-GCM sealed under the master key (see authz/codes/secret-box.ts). */
  sealedSecret: string;
  /** Incremented on each rotation; starts at 1. */
  secretVersion: number;
  /** argon2id hash (PHC string) of the short verification PIN, if one is set. */
  pinHash?: string;
  /** argon2id hash of the DTMF password keyed during a call: M2 payment password / M3 authorization password. */
  ivrPasswordHash?: string;
  /** argon2id hash of the M3 authentication password given with the payment at checkout. */
  authPasswordHash?: string;
  /** SHA-256 (hex) of the payer terminal's bearer token. */
  tokenHash: string;
  /** SHA-256 (hex) of the token before the last rotation, accepted until `previousTokenExpiresAtMs` (see `credentialLive`). */
  previousTokenHash?: string;
  previousTokenExpiresAtMs?: number;
  /** Policy per currency code; a currency without one requires SECOND_CODE for every payment. */
  policies: Record<string, PayerPolicy>;
  /** M4: paired auxiliary devices. */
  pairedDevices?: PairedDevice[];
  /** M3c: billable lines. */
  billableLines?: BillableLine[];
  createdAtMs: number;
}

export interface Merchant {
  id: string;
  name: string;
  /** SHA-256 of the API key, hex. The key itself is shown once at enrollment. */
  apiKeyHash: string;
  /** SHA-256 (hex) of the key before the last rotation, accepted until `previousApiKeyExpiresAtMs` (see `credentialLive`). */
  previousApiKeyHash?: string;
  previousApiKeyExpiresAtMs?: number;
  /** The merchant's payee ledger account (hex id) per currency code. */
  accounts: Record<string, string>;
  /**
   * Fee in basis points of each payment (1 bp = 0.01 %): rounded up, at least 1 minor unit when
   * not 0, never more than the payment (payment-ledger.ts `feeOf`; README "Tenant safety").
   */
  feeBasisPoints: number;
  /** Largest single payment this merchant may create, minor units; 0 = no limit. */
  perPaymentLimit: bigint;
  createdAtMs: number;
}

/**
 * Whether a credential hash is one of the record's live credentials at `nowMs`: the current one,
 * or the previous one before the end of its overlap (README "Tenant safety", keys have a lifecycle).
 */
export function credentialLive(record: Merchant | Payer, hash: string, nowMs: number): boolean {
  if ('apiKeyHash' in record) {
    return record.apiKeyHash === hash || (record.previousApiKeyHash === hash && nowMs < (record.previousApiKeyExpiresAtMs ?? 0));
  }
  return record.tokenHash === hash || (record.previousTokenHash === hash && nowMs < (record.previousTokenExpiresAtMs ?? 0));
}
