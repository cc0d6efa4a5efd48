import { unreachable } from '../../ledger/assert.js';
import { DomainError } from '../errors.js';
import type { Caller, Factor } from '../model.js';
import { allFactors } from '../model.js';
import { authPassword } from './auth-password.js';
import { bankCard } from './bank-card.js';
import type { FactorModule } from './factor.js';
import { firstCodeAndPin } from './first-code-pin.js';
import { ivrPassword } from './ivr-password.js';
import { pairedDevice } from './paired-device.js';
import type { Proof, ProofKind } from './proof.js';
import { secondCode } from './second-code.js';
import { smsOtp } from './sms-otp.js';

/**
 * The factor registry: every proof method the platform knows, by factor and by the proof that
 * answers it. Adding a method: one module in this folder, a line here, its `Factor` name in
 * model.ts and its field in the proto.
 */
const modules: readonly FactorModule[] = [secondCode, firstCodeAndPin, smsOtp, ivrPassword, authPassword, pairedDevice, bankCard] as FactorModule[];

const byFactor = new Map<Factor, FactorModule>(modules.map((m) => [m.factor, m]));
/** The factor a confirm's proof answers (the password proof answers the call's password; the authentication password comes with the create). */
const byProof = new Map<ProofKind, FactorModule>(modules.filter((m) => m !== authPassword).map((m) => [m.proofKind, m]));

for (const factor of allFactors) if (!byFactor.has(factor)) unreachable(`factor ${factor} has no module`);

export function factorModule(factor: Factor): FactorModule {
  return byFactor.get(factor)!;
}

export function moduleOfProof(proof: Proof): FactorModule {
  return byProof.get(proof.kind)!;
}

/** Factors whose answer carries the first code. */
export function usesFirstCode(factor: Factor): boolean {
  return factorModule(factor).usesFirstCode;
}

/** Factors the store checks by digest. */
export function isChallenged(factor: Factor): boolean {
  return factorModule(factor).challenged;
}

/** Who may give which proof (PERMISSION_DENIED otherwise). */
export function checkProver(caller: Caller, proof: Proof): FactorModule {
  const module = moduleOfProof(proof);
  if (!module.provers.has(caller.kind)) throw new DomainError('permission_denied', `a ${caller.kind} cannot give a ${proof.kind} proof`);
  return module;
}

/** Factors this deployment can collect. */
export function availableFactors(deployment: { bank: boolean }): ReadonlySet<Factor> {
  return new Set(modules.filter((m) => m.available(deployment)).map((m) => m.factor));
}

export { envelopeBounds } from './bank-card.js';
export { challengeIdOf, type FactorModule, type ProofContext, pendingFactors } from './factor.js';
export { type PathClass, pathOfCaller, pathOfChannel } from './paths.js';
export type { Proof, ProofKind } from './proof.js';
