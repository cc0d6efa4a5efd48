import { DomainError } from '../errors.js';
import type { FactorModule } from './factor.js';

/**
 * M3's authentication password: given with CreatePayment and checked there, before anything is
 * reserved (steps/create.ts), so it is satisfied from the start and never confirmed later.
 */
export const authPassword: FactorModule<'password'> = {
  factor: 'AUTH_PASSWORD',
  proofKind: 'password',
  noun: 'authentication password',
  challenged: false,
  usesFirstCode: false,
  after: [],
  provers: new Set(),
  needs: { record: false, payer: false },
  available: () => true,
  missingAtCreate: (payer) => (payer.authPasswordHash === undefined ? 'an authentication password' : undefined),
  async answer() {
    throw new DomainError('failed_precondition', 'the authentication password is given with CreatePayment (auth_password), not here');
  },
};
