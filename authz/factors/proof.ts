import type { SealedEnvelope, SimIdentity } from '../model.js';

/** What a payer (or the channel relaying them) gives to satisfy one factor. */
export type Proof =
  | { kind: 'second_code'; secondCode: string }
  | { kind: 'first_code_and_pin'; firstCode: string; pin: string }
  | { kind: 'sms_otp'; code: string }
  | { kind: 'password'; password: string }
  /** M4: the paired device's message: the first code it was given on the first path, its SIM, its pairing id. */
  | { kind: 'paired_device'; firstCode: string; auxiliarySim: SimIdentity; deviceId: string }
  /** M5: card data and PIN sealed for the bank front-end; relayed unopened. */
  | { kind: 'bank_card'; envelope: SealedEnvelope };

export type ProofKind = Proof['kind'];
