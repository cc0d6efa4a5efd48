import { sameSim } from '../enrollment.js';
import { invalidArgument } from '../errors.js';
import type { Caller, Payer, Payment } from '../model.js';
import { eightDigits } from '../validation.js';
import { digestAnswer, type FactorModule } from './factor.js';
import { pathOfCaller } from './paths.js';
import type { Proof } from './proof.js';

/**
 * M4: why a paired device's message cannot approve the payment, or undefined when it may: it
 * must come on another path than the request, from a device paired with the request's main SIM,
 * carrying exactly that device's auxiliary SIM.
 */
export function deviceMismatch(
  payment: Payment,
  payer: Payer | undefined,
  proof: Extract<Proof, { kind: 'paired_device' }>,
  caller: Caller,
): string | undefined {
  if (payment.originPath !== undefined && pathOfCaller(caller) === payment.originPath)
    return `the paired device's message came on the same path (${payment.originPath}) as the payment request`;
  const device = payer?.pairedDevices?.find((d) => d.id === proof.deviceId);
  if (device === undefined) return 'no such paired device';
  if (payment.originSim === undefined || !sameSim(device.mainSim, payment.originSim)) return 'the device is not paired with the SIM the request came through';
  if (!sameSim(device.auxiliarySim, proof.auxiliarySim)) return "the message's SIM is not the paired auxiliary SIM";
  return undefined;
}

/** M4: the paired device's message, on another path, carrying the first code the request received. */
export const pairedDevice: FactorModule<'paired_device'> = {
  factor: 'PAIRED_DEVICE',
  proofKind: 'paired_device',
  noun: 'first code from the paired device',
  challenged: true,
  usesFirstCode: true,
  after: [],
  provers: new Set(['payer', 'service', 'admin']),
  needs: { record: true, payer: true },
  available: () => true,
  expected: (codes) => codes.firstCode,
  answer(proof, context) {
    if (proof.firstCode === '')
      throw invalidArgument('paired_device.first_code', 'is required: the paired device must carry the first code the request received');
    if (!eightDigits.test(proof.firstCode)) throw invalidArgument('paired_device.first_code', 'must be 8 digits');
    const payment = context.record?.payment;
    const mismatch = payment === undefined ? undefined : deviceMismatch(payment, context.payer, proof, context.caller);
    if (mismatch !== undefined) return { kind: 'decline', reason: 'DEVICE_MISMATCH', detail: mismatch };
    return digestAnswer(context, proof.firstCode);
  },
};
