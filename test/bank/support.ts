import { randomBytes } from 'node:crypto';
import { hashSecret } from '../../authz/codes/pin-hash.js';
import type { SealedEnvelope } from '../../authz/model.js';
import type { BankKey, CardPaymentRequest } from '../../authz/ports.js';
import type { CardRecord } from '../../services/bank/cards.js';
import { type EnvelopePayment, sealCard } from '../../services/bank/envelope.js';

/** Test cards (distinctive PINs, so a leak would be found in logs) and helpers to pay with them. */

export const merchantId = '7f3e2d1c0b0a09080706050403020100';

export const testCards = {
  rich: { pan: '4111111111111111', pin: '739184', expiry: '3012', available: { EUR: 100_000n, USD: 50_000n } },
  poor: { pan: '5500005555555559', pin: '739184', expiry: '3012', available: { EUR: 500n } },
  expired: { pan: '4012888888881881', pin: '739184', expiry: '2001', available: { EUR: 100_000n } },
  blocked: { pan: '6011000990139424', pin: '739184', expiry: '3012', available: { EUR: 100_000n }, blocked: true },
  /** PIN tries: its own card so other tests are not locked out. */
  tries: { pan: '4000056655665556', pin: '739184', expiry: '3012', available: { EUR: 100_000n } },
  /** Idempotency: its own balance. */
  idem: { pan: '4000002500003155', pin: '739184', expiry: '3012', available: { EUR: 10_000n } },
  /** 19 digits. */
  long: { pan: '6304000000000000018', pin: '73918402', expiry: '3012', available: { EUR: 100_000n } },
} as const;

export const wrongPin = '602951';
/** A PAN no table lists. */
export const unknownPan = '4000000000009995';

export type TestCard = { pan: string; pin: string; expiry: string; available: Readonly<Record<string, bigint>>; blocked?: boolean };

export async function cardRecords(cards: readonly TestCard[]): Promise<CardRecord[]> {
  return Promise.all(
    cards.map(async (c) => ({ pan: c.pan, expiry: c.expiry, pinHash: await hashSecret(c.pin), available: { ...c.available }, blocked: c.blocked === true })),
  );
}

/** The cards file a `--cards` process reads. */
export async function cardsFileText(cards: readonly TestCard[]): Promise<string> {
  const records = await cardRecords(cards);
  return JSON.stringify(
    records.map((r) => ({ ...r, available: Object.fromEntries(Object.entries(r.available).map(([c, a]) => [c, a.toString()])) })),
    null,
    2,
  );
}

export function paymentId(): string {
  return randomBytes(16).toString('hex');
}

export function payment(amount: bigint, currency = 'EUR'): EnvelopePayment {
  return { id: paymentId(), merchantId, amount, currency };
}

export function seal(key: BankKey, p: EnvelopePayment, card: { pan: string; expiry: string }, pin: string): Promise<SealedEnvelope> {
  return sealCard({ bankKey: key, payment: p, card: { pan: card.pan, expiry: card.expiry }, pin });
}

/** A request for `p` paid with `card` and `pin`, as countersign relays it. */
export async function request(key: BankKey, p: EnvelopePayment, card: { pan: string; expiry: string }, pin: string): Promise<CardPaymentRequest> {
  return { paymentId: p.id, merchantId: p.merchantId, amount: p.amount, currency: p.currency, envelope: await seal(key, p, card, pin) };
}
