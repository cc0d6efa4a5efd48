import type { Payment } from '../model.js';

/**
 * Challenged payments whose owners a process remembers, at most: 230 bytes an entry with its own
 * three id strings, 11.5 MB full (measured, `node --expose-gc`, 50 000 entries; less in practice,
 * where the merchant and payer ids are the directory's strings).
 */
export const challengeOwnersMax = 50_000;

/** What never changes about a challenged payment and a second code's confirm needs: who owns it, and the secret version it was challenged under. */
export interface ChallengeOwner {
  merchantId: string;
  payerId: string;
  /** The payer's `secretVersion` at create; undefined counts as 1 (`challengedUnderOlderSecret`). */
  secretVersion: number | undefined;
}

/**
 * The owners of the payments this process challenged, by payment id, the oldest forgotten first
 * past `challengeOwnersMax`. A second code's confirm compares the payer's current secret version
 * with the payment's (confirm.ts); with the payment's owner known here it needs no read of the
 * record — a miss (another process made the payment, or it was forgotten) reads it as before.
 * Nothing here can go stale: a payment's merchant, payer and secret version are written once, at
 * create.
 */
export class ChallengeOwners {
  private readonly owners = new Map<string, ChallengeOwner>();

  constructor(private readonly max = challengeOwnersMax) {}

  remember(payment: Payment): void {
    if (payment.state !== 'CHALLENGED') return;
    if (this.owners.size >= this.max) {
      const oldest = this.owners.keys().next();
      if (oldest.done !== true) this.owners.delete(oldest.value);
    }
    this.owners.set(payment.id, { merchantId: payment.merchantId, payerId: payment.payerId, secretVersion: payment.secretVersion });
  }

  get(paymentId: string): ChallengeOwner | undefined {
    return this.owners.get(paymentId);
  }

  /** Once its payment is no longer waiting for a second code, an entry only takes room. */
  forget(paymentId: string): void {
    this.owners.delete(paymentId);
  }
}
