import { AuthzError, invalid, precondition } from './errors.js';
import type { Caller, Channel, Factor, Payer, Payment, SealedEnvelope, SimIdentity } from './model.js';

/**
 * The factors a payer proves, and how each proof becomes a response the challenge store can
 * check against its digest. Codes are compared as digests; PINs and passwords are checked with
 * argon2id first, and a wrong one is counted by the store as a failed attempt (`forceMismatch`),
 * so every factor shares the same attempts, single use and lockout.
 */

export type Proof =
  | { kind: 'second_code'; secondCode: string }
  | { kind: 'first_code_and_pin'; firstCode: string; pin: string }
  | { kind: 'sms_otp'; code: string }
  | { kind: 'password'; password: string }
  /** M4: the paired device's message: the first code it was given on the first path, its SIM, its pairing id. */
  | { kind: 'paired_device'; firstCode: string; auxiliarySim: SimIdentity; deviceId: string }
  /** M5: card data and PIN sealed for the bank front-end; relayed unopened. */
  | { kind: 'bank_card'; envelope: SealedEnvelope };

/** Factors every deployment can collect proof for; BANK_CARD_PIN needs a bank front-end configured. */
export const supportedFactors: ReadonlySet<Factor> = new Set(['SECOND_CODE', 'FIRST_CODE_AND_PIN', 'SMS_OTP', 'IVR_PASSWORD', 'AUTH_PASSWORD', 'PAIRED_DEVICE']);

/**
 * Factors whose proof contains the first code, so the code must reach the payer on the request's
 * own path (M4: the paired device must carry back what the first path received).
 */
export const codeFactors: ReadonlySet<Factor> = new Set(['SECOND_CODE', 'FIRST_CODE_AND_PIN', 'SMS_OTP', 'PAIRED_DEVICE']);

/** Factors checked by a challenge in the store (BANK_CARD_PIN is decided by the bank). */
export const challengedFactors: ReadonlySet<Factor> = new Set(['SECOND_CODE', 'FIRST_CODE_AND_PIN', 'SMS_OTP', 'IVR_PASSWORD', 'PAIRED_DEVICE']);

/**
 * M4: the path class a message travels: the data network (apps, web, merchant backends), the
 * cellular network (SMS and the mobile network's own signalling), or a voice call. A paired
 * device's message must take another class than the payment request.
 */
export type PathClass = 'data' | 'cellular' | 'voice';

export function pathOfChannel(channel: Channel): PathClass {
  if (channel === 'SMS' || channel === 'MOBILE_NETWORK') return 'cellular';
  if (channel === 'VOICE') return 'voice';
  return 'data';
}

/** The path a proof arrived on: the telco bridge relays SMS (cellular); payers and operators call over the data network. */
export function pathOfCaller(caller: Caller): PathClass {
  return caller.kind === 'service' ? 'cellular' : 'data';
}

/** The response the challenge store holds for a password factor once argon2id has accepted the password. */
const passwordAccepted = 'password-accepted';

const eightDigits = /^\d{8}$/;
const dtmfPassword = /^\d{4,12}$/;

export function factorOf(proof: Proof): Factor {
  switch (proof.kind) {
    case 'second_code':
      return 'SECOND_CODE';
    case 'first_code_and_pin':
      return 'FIRST_CODE_AND_PIN';
    case 'sms_otp':
      return 'SMS_OTP';
    case 'password':
      return 'IVR_PASSWORD';
    case 'paired_device':
      return 'PAIRED_DEVICE';
    case 'bank_card':
      return 'BANK_CARD_PIN';
  }
}

/**
 * Who may give which proof: the payer any but the keyed password (that is keyed on the call the
 * platform placed, so a stolen terminal token cannot stand in for the phone); the payment's
 * merchant the second code it took from the payer (M1c); the telco bridge the SMS reply and the
 * keyed password it relays.
 */
export function checkProver(caller: Caller, proof: Proof): void {
  const allowed =
    caller.kind === 'admin' ||
    (caller.kind === 'payer' && proof.kind !== 'password') ||
    (caller.kind === 'merchant' && proof.kind === 'second_code') ||
    (caller.kind === 'service' && (proof.kind === 'sms_otp' || proof.kind === 'password' || proof.kind === 'paired_device'));
  if (!allowed) throw new AuthzError('permission_denied', `a ${caller.kind} cannot give a ${proof.kind} proof`);
}

/** The response a factor's challenge expects. */
export function expectedResponse(factor: Factor, firstCode: string, deriveSecond: () => string): string {
  if (factor === 'SECOND_CODE') return deriveSecond();
  if (factor === 'IVR_PASSWORD') return passwordAccepted;
  return firstCode; // FIRST_CODE_AND_PIN, SMS_OTP and PAIRED_DEVICE answer with the first code itself
}

/** The proof as a response for the store, after format checks and any argon2id verification. */
export async function proofResponse(
  proof: Proof,
  payer: Payer | undefined,
  verify: (phc: string, candidate: string) => Promise<boolean>,
): Promise<{ response: string; forceMismatch: boolean }> {
  switch (proof.kind) {
    case 'second_code':
      if (!eightDigits.test(proof.secondCode)) throw invalid('second_code must be 8 digits');
      return { response: proof.secondCode, forceMismatch: false };
    case 'sms_otp':
      if (!eightDigits.test(proof.code)) throw invalid('sms_otp must be the 8-digit code of the SMS');
      return { response: proof.code, forceMismatch: false };
    case 'first_code_and_pin': {
      if (!eightDigits.test(proof.firstCode)) throw invalid('first_code must be 8 digits');
      if (!/^\d{4,12}$/.test(proof.pin)) throw invalid('pin must be 4 to 12 digits');
      const ok = payer?.pinHash !== undefined && (await verify(payer.pinHash, proof.pin));
      return { response: proof.firstCode, forceMismatch: !ok };
    }
    case 'paired_device':
      if (proof.firstCode === '') throw invalid('paired_device.first_code is required: the paired device must carry the first code the request received');
      if (!eightDigits.test(proof.firstCode)) throw invalid('paired_device.first_code must be 8 digits');
      return { response: proof.firstCode, forceMismatch: false };
    case 'bank_card':
      throw new Error('a bank card proof is decided by the bank, not the challenge store');
    case 'password': {
      if (!dtmfPassword.test(proof.password)) throw invalid('the password keyed on the call must be 4 to 12 digits');
      const ok = payer?.ivrPasswordHash !== undefined && (await verify(payer.ivrPasswordHash, proof.password));
      return { response: passwordAccepted, forceMismatch: !ok };
    }
  }
}

/** M2: the SMS code is answered before the call asks for the password. */
export function checkOrder(payment: Payment, factor: Factor): void {
  const pending = payment.requiredFactors.filter((f) => !payment.satisfiedFactors.includes(f));
  if (factor === 'IVR_PASSWORD' && pending.includes('SMS_OTP')) {
    throw precondition('reply to the SMS code first; the call for the password follows', { reason: 'SMS_OTP_FIRST' });
  }
}

/** What a wrong answer is called in messages. */
export function proofName(factor: Factor): string {
  switch (factor) {
    case 'SECOND_CODE':
      return 'second code';
    case 'FIRST_CODE_AND_PIN':
      return 'first code or PIN';
    case 'SMS_OTP':
      return 'SMS code';
    case 'IVR_PASSWORD':
      return 'password';
    case 'PAIRED_DEVICE':
      return 'first code from the paired device';
    default:
      return factor.toLowerCase();
  }
}
