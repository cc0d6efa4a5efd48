import { createHash, randomInt } from 'node:crypto';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { verifySecret } from '../../authz/codes/pin-hash.js';
import { DomainError, invalidArgument } from '../../authz/errors.js';
import type { SealedEnvelope } from '../../authz/model.js';
import { checkHexId } from '../../authz/validation.js';
import { type AuthorizeCardPaymentRequest, type BankFrontEndService, BankDecision as ProtoBankDecision } from '../../gen/countersign/v1/bank_pb.js';
import type { CardRecord } from './cards.js';
import { currencyFormatOk, type EnvelopePayment, envelopeCiphertextBytesMax, envelopeSuite, keyIdOf, openCard } from './envelope.js';
import { aeadNonceBytes, aeadTagBytes, publicKeyOf, x25519KeyBytes } from './hpke.js';

/**
 * The reference bank front-end (M5): holds the X25519 key terminals seal for, a card table,
 * and decides card payments with ISO 8583 response codes. Decisions are idempotent per
 * idempotency key. Logs name a card by its last 4 digits only; never PAN, PIN or PIN block.
 */

/** How long a fetched public key may be used, milliseconds (GetPublicKey's expires_at = now + this). */
export const bankKeyLifetimeMs = 24 * 60 * 60 * 1000;
/** Wrong PINs in a row before a card answers 75 to every further attempt. */
export const pinTriesMax = 3;
/** Decisions remembered for idempotency; the oldest is forgotten first. */
export const decisionsRememberedMax = 10_000;
export const idempotencyKeyCharsMax = 128;
/** ISO 8583 field 38. */
export const authorizationCodeChars = 6;

/** ISO 8583 response codes the bank uses, with the text it sends (safe for merchant and payer). */
export const responseCodes = {
  approved: { reasonCode: '00', reason: 'approved' },
  invalidTransaction: { reasonCode: '12', reason: 'invalid transaction' },
  unknownCard: { reasonCode: '14', reason: 'invalid card number' },
  insufficientFunds: { reasonCode: '51', reason: 'insufficient funds' },
  expiredCard: { reasonCode: '54', reason: 'expired card' },
  wrongPin: { reasonCode: '55', reason: 'incorrect PIN' },
  restrictedCard: { reasonCode: '62', reason: 'restricted card' },
  pinTriesExceeded: { reasonCode: '75', reason: 'allowable number of PIN tries exceeded' },
} as const;

export type Decision =
  | { decision: 'APPROVED'; reasonCode: string; reason: string; authorizationCode: string }
  | { decision: 'DECLINED'; reasonCode: string; reason: string };

export interface AuthorizeInput {
  idempotencyKey: string;
  payment: EnvelopePayment;
  keyId: string;
  envelope: SealedEnvelope | undefined;
}

interface CardState {
  readonly record: CardRecord;
  readonly available: Map<string, bigint>;
  pinFailures: number;
}

const authorizationAlphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export class BankFrontEnd {
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  private readonly privateKey: Uint8Array;
  private readonly cards = new Map<string, CardState>();
  private readonly decisions = new Map<string, { fingerprint: string; decision: Promise<Decision> }>();
  private readonly cardLocks = new Map<string, Promise<unknown>>();
  private readonly logger: Pick<Logger, 'info' | 'warn'>;
  private readonly now: () => number;

  constructor(opts: { privateKey: Uint8Array; cards: readonly CardRecord[]; logger: Pick<Logger, 'info' | 'warn'>; now: () => number }) {
    this.privateKey = opts.privateKey;
    this.publicKey = publicKeyOf(opts.privateKey);
    this.keyId = keyIdOf(this.publicKey);
    this.logger = opts.logger;
    this.now = opts.now;
    for (const record of opts.cards) {
      if (this.cards.has(record.pan)) throw new Error('assertion failed: a card table lists a PAN twice');
      this.cards.set(record.pan, { record, available: new Map(Object.entries(record.available)), pinFailures: 0 });
    }
  }

  publicKeyInfo(): { keyId: string; suite: string; publicKey: Uint8Array; expiresAtMs: number } {
    return { keyId: this.keyId, suite: envelopeSuite, publicKey: this.publicKey, expiresAtMs: this.now() + bankKeyLifetimeMs };
  }

  /** The amount a card has left in a currency (operators and tests); undefined for an unknown card. */
  availableOf(pan: string, currency: string): bigint | undefined {
    const card = this.cards.get(pan);
    return card === undefined ? undefined : (card.available.get(currency) ?? 0n);
  }

  /**
   * Decides once per idempotency key: the same key and request get the same decision (even
   * concurrently); the same key with another request is ALREADY_EXISTS. Malformed input is
   * INVALID_ARGUMENT, an unknown key id FAILED_PRECONDITION (both thrown as DomainError).
   */
  async authorize(input: AuthorizeInput): Promise<Decision> {
    // No await before the decision is remembered: a concurrent retry finds it.
    const envelope = checkInput(input);
    if (input.keyId !== this.keyId)
      throw new DomainError('failed_precondition', 'unknown bank key id; fetch the public key again', { reason: 'UNKNOWN_KEY_ID' });
    const fingerprint = fingerprintOf(input, envelope);
    const known = this.decisions.get(input.idempotencyKey);
    if (known !== undefined) {
      if (known.fingerprint !== fingerprint) throw new DomainError('already_exists', 'idempotency key already used for another request');
      return known.decision;
    }
    const decision = this.decide(input.payment, envelope);
    const entry = { fingerprint, decision };
    this.remember(input.idempotencyKey, entry);
    decision.catch(() => {
      if (this.decisions.get(input.idempotencyKey) === entry) this.decisions.delete(input.idempotencyKey);
    });
    return decision;
  }

  private remember(key: string, entry: { fingerprint: string; decision: Promise<Decision> }): void {
    this.decisions.set(key, entry);
    if (this.decisions.size > decisionsRememberedMax) this.decisions.delete(this.decisions.keys().next().value!);
  }

  private async decide(payment: EnvelopePayment, envelope: SealedEnvelope): Promise<Decision> {
    const opened = await openCard(this.privateKey, envelope, payment);
    if (!opened.ok) {
      this.logger.info(
        { paymentId: payment.id, envelope: opened.failure, reasonCode: responseCodes.invalidTransaction.reasonCode },
        'card payment declined: envelope does not open',
      );
      return declined('invalidTransaction');
    }
    const { pan, expiry, pin } = opened.value;
    const card = this.cards.get(pan);
    const decision = card === undefined ? declined('unknownCard') : await this.withCard(pan, () => this.decideCard(card, payment, expiry, pin));
    this.logger.info(
      { paymentId: payment.id, merchantId: payment.merchantId, card: `…${pan.slice(-4)}`, decision: decision.decision, reasonCode: decision.reasonCode },
      'card payment decided',
    );
    return decision;
  }

  /** Blocked, PIN tries, PIN, expiry, funds — in that order, one decision per card at a time. */
  private async decideCard(card: CardState, payment: EnvelopePayment, expiry: string, pin: string): Promise<Decision> {
    if (card.record.blocked) return declined('restrictedCard');
    if (card.pinFailures >= pinTriesMax) return declined('pinTriesExceeded');
    if (!(await verifySecret(card.record.pinHash, pin))) {
      card.pinFailures += 1;
      return declined(card.pinFailures >= pinTriesMax ? 'pinTriesExceeded' : 'wrongPin');
    }
    card.pinFailures = 0;
    if (expiry !== card.record.expiry || expired(card.record.expiry, this.now())) return declined('expiredCard');
    const available = card.available.get(payment.currency) ?? 0n;
    if (available < payment.amount) return declined('insufficientFunds');
    card.available.set(payment.currency, available - payment.amount);
    return { decision: 'APPROVED', ...responseCodes.approved, authorizationCode: authorizationCode() };
  }

  /** Runs `fn` after every earlier decision on the same card (PIN tries and funds are read and written together). */
  private withCard<T>(pan: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.cardLocks.get(pan) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.cardLocks.set(pan, settled);
    void settled.then(() => {
      if (this.cardLocks.get(pan) === settled) this.cardLocks.delete(pan);
    });
    return run;
  }
}

function declined(code: Exclude<keyof typeof responseCodes, 'approved'>): Decision {
  return { decision: 'DECLINED', ...responseCodes[code] };
}

/** A card is valid through the last day of its expiry month, UTC. */
function expired(expiry: string, nowMs: number): boolean {
  const year = 2000 + Number(expiry.slice(0, 2));
  const month = Number(expiry.slice(2)); // 1..12; as a 0-based index it names the following month
  return nowMs >= Date.UTC(year, month, 1);
}

function authorizationCode(): string {
  return Array.from({ length: authorizationCodeChars }, () => authorizationAlphabet[randomInt(authorizationAlphabet.length)]).join('');
}

/** The request checks of bank.proto; returns the envelope, present and well-sized. */
function checkInput(input: AuthorizeInput): SealedEnvelope {
  if (input.idempotencyKey.length === 0 || input.idempotencyKey.length > idempotencyKeyCharsMax)
    throw invalidArgument('idempotency_key', `must be 1..${idempotencyKeyCharsMax} characters`);
  checkHexId(input.payment.id, 'payment_id');
  checkHexId(input.payment.merchantId, 'merchant_id');
  if (input.payment.amount <= 0n) throw invalidArgument('amount', 'must be positive');
  if (!currencyFormatOk(input.payment.currency)) throw invalidArgument('currency', 'must be an ISO 4217 code');
  const e = input.envelope;
  if (e === undefined) throw invalidArgument('envelope', 'is required');
  if (input.keyId.length === 0 || input.keyId !== e.keyId) throw invalidArgument('key_id', 'must be set and equal envelope.key_id');
  if (e.suite !== envelopeSuite) throw invalidArgument('envelope.suite', `must be "${envelopeSuite}"`);
  if (e.ephemeralPublicKey.length !== x25519KeyBytes) throw invalidArgument('envelope.ephemeral_public_key', `must be ${x25519KeyBytes} bytes`);
  if (e.nonce.length !== aeadNonceBytes) throw invalidArgument('envelope.nonce', `must be ${aeadNonceBytes} bytes`);
  if (e.ciphertext.length <= aeadTagBytes || e.ciphertext.length > envelopeCiphertextBytesMax)
    throw invalidArgument('envelope.ciphertext', `must be ${aeadTagBytes + 1}..${envelopeCiphertextBytesMax} bytes`);
  return e;
}

/** SHA-256 over every field of the request, length-prefixed. */
function fingerprintOf(input: AuthorizeInput, e: SealedEnvelope): string {
  const hash = createHash('sha256');
  const fields: (string | Uint8Array)[] = [
    input.payment.id,
    input.payment.merchantId,
    input.payment.amount.toString(),
    input.payment.currency,
    input.keyId,
    e.suite,
    e.ephemeralPublicKey,
    e.nonce,
    e.ciphertext,
  ];
  for (const field of fields) {
    const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : field;
    hash.update(`${bytes.length}:`).update(bytes);
  }
  return hash.digest('hex');
}

// ------------------------------------------------------------------------ the gRPC edge

/** BankFrontEndService over a BankFrontEnd: proto converted here, errors through the house table. */
export function bankFrontEndServiceImpl(bank: BankFrontEnd): ServiceImpl<typeof BankFrontEndService> {
  return {
    async authorizeCardPayment(req) {
      const decision = await bank.authorize(toAuthorizeInput(req));
      return {
        decision: decision.decision === 'APPROVED' ? ProtoBankDecision.APPROVED : ProtoBankDecision.DECLINED,
        reasonCode: decision.reasonCode,
        reason: decision.reason,
        authorizationCode: decision.decision === 'APPROVED' ? decision.authorizationCode : '',
      };
    },
    getPublicKey() {
      const key = bank.publicKeyInfo();
      return { keyId: key.keyId, suite: key.suite, publicKey: key.publicKey, expiresAt: timestampFromMs(key.expiresAtMs) };
    },
  };
}

function toAuthorizeInput(req: AuthorizeCardPaymentRequest): AuthorizeInput {
  const e = req.envelope;
  return {
    idempotencyKey: req.idempotencyKey,
    payment: { id: req.paymentId, merchantId: req.merchantId, amount: req.amount, currency: req.currency },
    keyId: req.keyId,
    envelope:
      e === undefined ? undefined : { suite: e.suite, keyId: e.keyId, ephemeralPublicKey: e.ephemeralPublicKey, nonce: e.nonce, ciphertext: e.ciphertext },
  };
}
