import { invalidArgument } from '../errors.js';
import { eightDigits } from '../validation.js';
import { digestAnswer, type FactorModule } from './factor.js';

/** M1b: the second code the payer's terminal derives (OCRA over the first code, amount, currency and payee). */
export const secondCode: FactorModule<'second_code'> = {
  factor: 'SECOND_CODE',
  proofKind: 'second_code',
  noun: 'second code',
  challenged: true,
  usesFirstCode: true,
  after: [],
  // M1c: the merchant may submit the second code it took from the payer.
  provers: new Set(['payer', 'merchant', 'admin']),
  needs: { record: false, payer: false },
  available: () => true,
  expected: (codes) => codes.secondCode(),
  answer(proof, context) {
    if (!eightDigits.test(proof.secondCode)) throw invalidArgument('second_code', 'must be 8 digits');
    return digestAnswer(context, proof.secondCode);
  },
};
