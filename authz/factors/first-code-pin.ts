import { invalidArgument } from '../errors.js';
import { dtmfPassword, eightDigits } from '../validation.js';
import { digestAnswer, type FactorModule } from './factor.js';

/** M1a: the first code plus the payer's verification PIN (argon2id hash only). */
export const firstCodeAndPin: FactorModule<'first_code_and_pin'> = {
  factor: 'FIRST_CODE_AND_PIN',
  proofKind: 'first_code_and_pin',
  noun: 'first code or PIN',
  challenged: true,
  usesFirstCode: true,
  after: [],
  provers: new Set(['payer', 'admin']),
  needs: { record: true, payer: true },
  available: () => true,
  missingAtCreate: (payer) => (payer.pinHash === undefined ? 'a verification PIN' : undefined),
  expected: (codes) => codes.firstCode,
  async answer(proof, context) {
    if (!eightDigits.test(proof.firstCode)) throw invalidArgument('first_code', 'must be 8 digits');
    if (!dtmfPassword.test(proof.pin)) throw invalidArgument('pin', 'must be 4 to 12 digits');
    const hash = context.payer?.pinHash;
    // A wrong PIN counts as a wrong answer: the same attempts, single use and lockout.
    const pinOk = hash !== undefined && (await context.verifySecret(hash, proof.pin));
    return pinOk ? digestAnswer(context, proof.firstCode) : { kind: 'wrong' };
  },
};
