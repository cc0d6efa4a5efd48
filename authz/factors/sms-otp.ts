import { invalidArgument } from '../errors.js';
import { eightDigits } from '../validation.js';
import { digestAnswer, type FactorModule } from './factor.js';

/** M2's pre-step: the SMS code, replied from the payer's phone (relayed by the telco bridge) or typed on the terminal. */
export const smsOtp: FactorModule<'sms_otp'> = {
  factor: 'SMS_OTP',
  proofKind: 'sms_otp',
  noun: 'SMS code',
  challenged: true,
  usesFirstCode: true,
  after: [],
  provers: new Set(['payer', 'service', 'admin']),
  needs: { record: false, payer: false },
  available: () => true,
  expected: (codes) => codes.firstCode,
  answer(proof, context) {
    if (!eightDigits.test(proof.code)) throw invalidArgument('sms_otp', 'must be the 8-digit code of the SMS');
    return digestAnswer(context, proof.code);
  },
};
