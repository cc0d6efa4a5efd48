import { firstCodeFormatOk } from './first-code.js';
import { ocra, questionCharsMax } from './ocra.js';

/**
 * The countersign second-code challenge (M1 variant b, dynamic linking). Specified for tokens in
 * SECOND_CODE.md.
 *
 * Suite `OCRA-1:HOTP-SHA256-8:QA64`: QA (alphanumeric) because the question carries the
 * currency letters and the payee's hex id verbatim, so a token (or a person) can display and
 * check every field; QN would force the fields into one decimal number and hide them. The
 * question is the plain concatenation
 *
 *   firstCode (8 digits) | amount (minor units, decimal, no leading zeros) | currency (3 letters
 *   A-Z, ISO 4217) | payeeAccountId (32 lowercase hex)
 *
 * Three fields have a fixed width, so the split is unambiguous (the amount is whatever lies
 * between character 8 and the last 35) and any change of any field changes the question. The
 * widest question is 8 + 21 + 3 + 32 = 64 characters, exactly QA64, so no hash is needed: the
 * amount is bounded by `amountDigitsMax` = 21 digits (< 10^21 minor units, far above any
 * ledger amount we accept).
 */

export const secondCodeSuite = 'OCRA-1:HOTP-SHA256-8:QA64';
export const currencyChars = 3;
export const payeeHexChars = 32;
export const amountDigitsMax = questionCharsMax - 8 - currencyChars - payeeHexChars;

export interface SecondCodeFields {
  firstCode: string;
  /** Amount in minor units, > 0. */
  amount: bigint;
  /** ISO 4217 alphabetic code, upper case. */
  currency: string;
  /** The payee account id, 32 hex digits (either case; encoded lower case). */
  payeeAccountId: string;
}

export class ChallengeFieldError extends Error {
  override readonly name = 'ChallengeFieldError';
}

const currencyPattern = /^[A-Z]{3}$/;
const payeePattern = /^[0-9a-fA-F]{32}$/;

/** The OCRA question for the second code; throws `ChallengeFieldError` on a malformed field. */
export function secondCodeQuestion(fields: SecondCodeFields): string {
  if (!firstCodeFormatOk(fields.firstCode)) throw new ChallengeFieldError('firstCode must be 8 digits');
  const amount = fields.amount.toString();
  if (fields.amount <= 0n || amount.length > amountDigitsMax) {
    throw new ChallengeFieldError(`amount must be 1..${amountDigitsMax} digits in minor units`);
  }
  if (!currencyPattern.test(fields.currency)) throw new ChallengeFieldError('currency must be 3 letters A-Z');
  if (!payeePattern.test(fields.payeeAccountId)) throw new ChallengeFieldError('payeeAccountId must be 32 hex digits');
  return `${fields.firstCode}${amount}${fields.currency}${fields.payeeAccountId.toLowerCase()}`;
}

/** The 8-digit second code a token computes from the payer's verification secret. */
export function deriveSecondCode(secret: Buffer, fields: SecondCodeFields): string {
  return ocra(secondCodeSuite, secret, { question: secondCodeQuestion(fields) });
}
