import { randomBytes } from 'node:crypto';
import type { Payer, Payment } from '../model.js';
import { isHexId } from '../validation.js';
import type { CodeKit } from './context.js';

/**
 * Tenant safety, payer enumeration (README "Tenant safety"): a create that names a phone number
 * no payer is enrolled with is answered like one for an enrolled payer who has not answered yet.
 * It gets a *phantom* payer: an id that looks like a payer id (48-bit time, random-looking rest)
 * and is the same for the same phone, so two lookups of one unknown phone agree, as they would
 * for an enrolled one. Its payment is recorded CHALLENGED with an answer nobody knows, nothing is
 * reserved or sent, and it expires (or is declined after wrong answers) like any unanswered one.
 * The server recognises its own phantom ids (the low bits are a keyed check of the high ones), so
 * a create by `payer_id` with one answers the same way instead of NOT_FOUND.
 */

/** Phantom ids carry a time in this window (the year 2024, Unix ms), like payers enrolled then. */
const phantomEpochMs = 1_704_067_200_000n;
const phantomSpanMs = 31_536_000_000n;
/** Bits of the keyed check in the low part of a phantom id (above the 4 kind bits, which stay zero). */
const checkBits = 36n;

function hexBits(hex: string, bits: bigint): bigint {
  return BigInt(`0x${hex}`) & ((1n << bits) - 1n);
}

function checkOf(codes: Pick<CodeKit, 'digest'>, high: bigint): bigint {
  return hexBits(codes.digest('phantom-payer-check', high.toString(16)).slice(0, 16), checkBits);
}

/** The phantom payer id of an unknown phone (E.164): stable for the phone, keyed by the deployment's digest key. */
export function phantomPayerId(codes: Pick<CodeKit, 'digest'>, phone: string): string {
  const tag = codes.digest('phantom-payer', phone);
  const ms = phantomEpochMs + (BigInt(`0x${tag.slice(0, 12)}`) % phantomSpanMs);
  const middle = hexBits(tag.slice(12, 24), 40n); // bits 40..79 of the id
  const high = (ms << 40n) | middle;
  const id = (high << 40n) | (checkOf(codes, high) << 4n);
  return id.toString(16).padStart(32, '0');
}

/** Whether `payerId` is a phantom id this deployment minted (a real id passes by chance with probability 2^-36, and real ids are found in the directory first). */
export function isPhantomPayerId(codes: Pick<CodeKit, 'digest'>, payerId: string): boolean {
  if (!isHexId(payerId)) return false;
  const id = BigInt(`0x${payerId}`);
  const high = id >> 40n;
  return (id & ((1n << 40n) - 1n)) === checkOf(codes, high) << 4n;
}

/** The phantom payer standing for an unknown phone or phantom id: no accounts, no secrets, the default policy. */
export function phantomPayer(id: string, phone: string): Payer {
  return {
    id,
    phone,
    displayName: '',
    accounts: {},
    sealedSecret: '',
    secretVersion: 1,
    tokenHash: randomBytes(32).toString('hex'),
    policies: {},
    createdAtMs: 0,
  };
}

/** The ledger account a phantom payment names as debited: 0, which no ledger account has. Never reserved, posted or voided. */
export const phantomAccountId = '0'.repeat(32);

/** An answer digest nobody can give: the keyed digest of 32 random bytes (no 8-digit code or password matches it). */
export function unanswerable(codes: Pick<CodeKit, 'digest'>, challengeId: string): string {
  return codes.digest(challengeId, randomBytes(32).toString('hex'));
}

/** A phantom's payment: nothing of it is ever in the ledger or sent. */
export function isPhantomPayment(payment: Payment): boolean {
  return payment.payerAccountId === phantomAccountId;
}
