import { invalidArgument } from '../errors.js';
import { dtmfPassword } from '../validation.js';
import { digestAnswer, type FactorModule } from './factor.js';

/** What the store expects once argon2id has accepted a keyed password (the password itself is never digested). */
export const passwordAccepted = 'password-accepted';

/**
 * M2 / M3: the password keyed as DTMF during the call the platform placed. Accepted only from
 * the telco bridge (the call), never from the payer's terminal token: a stolen token cannot
 * stand in for the phone. M2 asks for it after the SMS code.
 */
export const ivrPassword: FactorModule<'password'> = {
  factor: 'IVR_PASSWORD',
  proofKind: 'password',
  noun: 'password',
  challenged: true,
  usesFirstCode: false,
  after: ['SMS_OTP'],
  provers: new Set(['service', 'admin']),
  needs: { record: true, payer: true },
  available: () => true,
  missingAtCreate: (payer) => (payer.ivrPasswordHash === undefined ? 'an IVR password' : undefined),
  expected: () => passwordAccepted,
  async answer(proof, context) {
    if (!dtmfPassword.test(proof.password)) throw invalidArgument('password', 'keyed on the call must be 4 to 12 digits');
    const hash = context.payer?.ivrPasswordHash;
    const ok = hash !== undefined && (await context.verifySecret(hash, proof.password));
    return ok ? digestAnswer(context, passwordAccepted) : { kind: 'wrong' };
  },
};
