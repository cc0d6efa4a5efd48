import { AccountFlags } from './model.js';

/**
 * countersign's chart of accounts on the ledger: account codes and flags per kind of account,
 * transfer codes, and the mapping from ISO 4217 currencies to TigerBeetle ledgers.
 *
 * A TigerBeetle `ledger` is one currency: transfers never cross ledgers. countersign uses the
 * ISO 4217 numeric code as the ledger number (USD = 840), so a ledger id means the same thing
 * in every deployment.
 */

export const AccountCode = {
  /** A payer's prepaid funds; can never go negative. */
  payerPrepaid: 1,
  /** A payer's postpaid billable line (landline, mobile, modem) with a credit limit. */
  payerPostpaid: 2,
  /** A merchant's (payee's) account. */
  merchant: 3,
  /** Fees the platform earns. */
  platformFees: 4,
  /** The telecom operator's settlement account for carrier billing. */
  operatorSettlement: 5,
  /** The bank settlement account for card payments. */
  bankSettlement: 6,
  /** Where deposits come from (the outside world); the only account allowed to go negative freely. */
  funding: 7,
  /**
   * M3c: a billable line's credit for one billing period (the linked control-account pattern):
   * granted from the operator settlement account at the period's start, debited by every charge
   * with `debits_must_not_exceed_credits`, so the ledger itself refuses a charge over the limit.
   */
  lineControl: 8,
} as const;
export type AccountCode = (typeof AccountCode)[keyof typeof AccountCode];

/** The flags each kind of account is created with. */
export const accountFlagsFor: Record<AccountCode, number> = {
  [AccountCode.payerPrepaid]: AccountFlags.debits_must_not_exceed_credits | AccountFlags.history,
  [AccountCode.payerPostpaid]: AccountFlags.history,
  [AccountCode.merchant]: AccountFlags.history,
  [AccountCode.platformFees]: AccountFlags.none,
  [AccountCode.operatorSettlement]: AccountFlags.none,
  [AccountCode.bankSettlement]: AccountFlags.none,
  [AccountCode.funding]: AccountFlags.none,
  [AccountCode.lineControl]: AccountFlags.debits_must_not_exceed_credits,
};

export const TransferCode = {
  /** A deposit into a payer's account. */
  funding: 1,
  /** A payment from payer to payee (pending reservation, then post or void). */
  payment: 2,
  /** The merchant's fee to the platform, linked with the payment's post. */
  fee: 3,
  /** A carrier-billing charge onto a billable line. */
  carrierCharge: 4,
  /** M3c: a billing period's credit granted to a line's control account (operator settlement → control). */
  lineCredit: 5,
  /** M3c: a charge counted against the period's credit (control → operator settlement), linked with the money. */
  lineLimitCharge: 6,
  /**
   * A payment closed without money: a pending transfer of 0 (operator settlement → platform fees,
   * never a payer's or merchant's account) under the payment's reservation id, voided at once.
   */
  paymentClosed: 7,
} as const;

export interface Currency {
  code: string;
  /** TigerBeetle ledger number: the ISO 4217 numeric code. */
  ledger: number;
  /** Digits after the decimal point in the minor unit (2 for cents). */
  scale: number;
}

/** Currencies countersign accepts. Extend here; never change an existing ledger number. */
export const currencies: ReadonlyMap<string, Currency> = new Map(
  [
    { code: 'USD', ledger: 840, scale: 2 },
    { code: 'EUR', ledger: 978, scale: 2 },
    { code: 'GBP', ledger: 826, scale: 2 },
    { code: 'JPY', ledger: 392, scale: 0 },
    { code: 'CNY', ledger: 156, scale: 2 },
    { code: 'KRW', ledger: 410, scale: 0 },
  ].map((c) => [c.code, c]),
);

/** The currency for an ISO 4217 code, or undefined when countersign does not accept it. */
export function currencyOf(code: string): Currency | undefined {
  return currencies.get(code);
}

/** "USD 123.45" for 12345n USD; an unknown code falls back to "12345 XYZ". */
export function formatMoney(amount: bigint, code: string): string {
  const currency = currencyOf(code);
  return currency === undefined ? `${amount} ${code}` : `${code} ${formatMinor(amount, currency)}`;
}

/** Minor units as a decimal string in major units, without floats: 12345n USD → "123.45". */
export function formatMinor(amount: bigint, currency: Currency): string {
  const negative = amount < 0n;
  const abs = negative ? -amount : amount;
  if (currency.scale === 0) return `${negative ? '-' : ''}${abs}`;
  const unit = 10n ** BigInt(currency.scale);
  const fraction = (abs % unit).toString().padStart(currency.scale, '0');
  return `${negative ? '-' : ''}${abs / unit}.${fraction}`;
}
