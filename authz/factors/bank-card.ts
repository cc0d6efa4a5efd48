import { invalidArgument, precondition } from '../errors.js';
import type { SealedEnvelope } from '../model.js';
import { BankRequestError, BankUnavailableError } from '../ports.js';
import type { FactorModule } from './factor.js';

/** Named bounds of a sealed envelope (M5); the bank checks the cryptography. */
export const envelopeBounds = {
  suiteCharsMax: 100,
  keyIdCharsMax: 64,
  ephemeralKeyBytesMax: 133,
  nonceBytes: 12,
  ciphertextBytesMax: 2048,
  ciphertextBytesMin: 17,
} as const;

function checkEnvelope(e: SealedEnvelope): void {
  const b = envelopeBounds;
  if (e.suite === '' || e.suite.length > b.suiteCharsMax) throw invalidArgument('bank_card.suite', `must be 1 to ${b.suiteCharsMax} characters`);
  if (e.keyId === '' || e.keyId.length > b.keyIdCharsMax) throw invalidArgument('bank_card.key_id', `must be 1 to ${b.keyIdCharsMax} characters`);
  if (e.ephemeralPublicKey.length === 0 || e.ephemeralPublicKey.length > b.ephemeralKeyBytesMax)
    throw invalidArgument('bank_card.ephemeral_public_key', `must be 1 to ${b.ephemeralKeyBytesMax} bytes`);
  if (e.nonce.length !== b.nonceBytes) throw invalidArgument('bank_card.nonce', `must be ${b.nonceBytes} bytes`);
  if (e.ciphertext.length < b.ciphertextBytesMin || e.ciphertext.length > b.ciphertextBytesMax)
    throw invalidArgument('bank_card.ciphertext', `must be ${b.ciphertextBytesMin} to ${b.ciphertextBytesMax} bytes`);
}

/** The detail a payment declined because the bank could not be reached carries (the step answers UNAVAILABLE for it). */
export const bankUnreachableDetail = 'the bank front-end could not be reached in time';

/**
 * M5: card and PIN sealed on the payer's terminal for the bank, relayed unopened; the bank alone
 * decides (one decision per payment: the payment id is its idempotency key). An unreachable bank
 * fails closed: the payment is declined and its reservation voided.
 */
export const bankCard: FactorModule<'bank_card'> = {
  factor: 'BANK_CARD_PIN',
  proofKind: 'bank_card',
  noun: 'card or PIN',
  challenged: false,
  usesFirstCode: false,
  after: [],
  provers: new Set(['payer', 'admin']),
  needs: { record: true, payer: false },
  available: (deployment) => deployment.bank,
  async answer(proof, context) {
    const bank = context.bank;
    if (bank === undefined) throw precondition('no bank front-end is configured on this deployment', { reason: 'FACTOR_UNAVAILABLE' });
    checkEnvelope(proof.envelope);
    const payment = context.record?.payment;
    // Only a payment waiting for the card reaches the bank; the step gives the precise refusal otherwise.
    if (
      payment === undefined ||
      payment.state !== 'CHALLENGED' ||
      !payment.requiredFactors.includes('BANK_CARD_PIN') ||
      payment.satisfiedFactors.includes('BANK_CARD_PIN')
    ) {
      return { kind: 'accept' };
    }
    try {
      const answer = await bank.authorize({
        paymentId: payment.id,
        merchantId: payment.merchantId,
        amount: payment.amount,
        currency: payment.currency,
        envelope: proof.envelope,
      });
      if (answer.decision === 'DECLINED') return { kind: 'decline', reason: 'BANK_DECLINED', detail: `bank: ${answer.reasonCode} ${answer.reason}`.trim() };
      return { kind: 'accept', bankAuthorizationCode: answer.authorizationCode };
    } catch (cause) {
      if (cause instanceof BankRequestError) throw invalidArgument('bank_card', 'was refused by the bank front-end as malformed or sealed for an unknown key');
      if (!(cause instanceof BankUnavailableError)) throw cause;
      return { kind: 'decline', reason: 'AUTHORIZER_UNAVAILABLE', detail: bankUnreachableDetail };
    }
  },
};
