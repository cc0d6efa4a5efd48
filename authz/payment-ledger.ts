import { assert, unreachable } from '../ledger/assert.js';
import { AccountCode, accountFlagsFor, currencyOf, TransferCode } from '../ledger/chart.js';
import { idFromHex, PaymentTransferKind, paymentTransferIds } from '../ledger/ids.js';
import { account, amountMax, type Transfer, TransferFlags, transfer } from '../ledger/model.js';
import type { Ledger } from '../ledger/port.js';
import { type CreateTransferResult, isApplied } from '../ledger/results.js';
import type { Payment } from './model.js';

/**
 * A payment's money movement on the ledger. Every transfer id is derived from the payment id
 * (`paymentTransferIds`), so each step can be retried any number of times: `exists` is success.
 *
 * - reserveAndPost: once a payment is approved (at once when it needs no factor, after the
 *   payer's proof otherwise), a pending transfer payer → payee and its post, linked with the
 *   merchant's fee (payee → platform fees), in one request: all land or none. No money is held
 *   before the payer consents (README "Tenant safety"), so the pending transfer lives only inside
 *   that request;
 * - close: a payment that ends without money leaves a voided pending transfer of 0 under its
 *   reservation id, so the ledger itself refuses its money afterwards (and reconcile sees it closed);
 * - reserve, post, void: the steps one at a time, for reservations made at create by earlier
 *   versions (and `reconcile`, which meets them).
 */

/**
 * The merchant's fee on a payment, in minor units: `amount × feeBasisPoints / 10 000` rounded up
 * (in the platform's favour), at least `feeMinMinorUnits` when the merchant pays any fee at all,
 * and never more than the amount (the fee is paid from what the payee receives in the same linked
 * post, so the payee's side of a payment can never go negative). Bigint only.
 * 100 payments of 66 at 150 bp pay 1 each (⌈0.99⌉); one of 6600 pays 99.
 */
export function feeOf(amount: bigint, feeBasisPoints: number): bigint {
  if (!Number.isInteger(feeBasisPoints) || feeBasisPoints < 0 || feeBasisPoints > feeBasisPointsMax)
    unreachable(`fee basis points ${feeBasisPoints} outside 0..${feeBasisPointsMax}`);
  assert(amount > 0n, 'a fee is charged on a positive amount');
  if (feeBasisPoints === 0) return 0n;
  const bp = BigInt(feeBasisPoints);
  const rounded = (amount * bp + (feeBasisPointsMax_ - 1n)) / feeBasisPointsMax_;
  const fee = rounded < feeMinMinorUnits ? feeMinMinorUnits : rounded;
  return fee > amount ? amount : fee;
}

/** The smallest fee a payment pays when its merchant's fee is not 0 basis points, minor units. */
export const feeMinMinorUnits = 1n;
/** 10 000 basis points = 100 %: the largest fee a merchant may have. */
export const feeBasisPointsMax = 10_000;
const feeBasisPointsMax_ = BigInt(feeBasisPointsMax);

export type ReserveOutcome = 'reserved' | 'insufficient_funds' | 'credit_limit_exceeded';
/** `not_reserved`: there is no reservation to post (yet: a create still on its way, or never made). */
export type PostOutcome = 'posted' | 'expired' | 'voided' | 'not_reserved';
export type VoidOutcome = 'voided' | 'already_posted' | 'already_released';
/** What became of an approved payment's money: posted, refused for funds, or (a reservation made before) expired or voided. */
export type SettleOutcome = Exclude<PostOutcome, 'not_reserved'> | Exclude<ReserveOutcome, 'reserved'>;

export interface PaymentAccounts {
  /** The account debited: the payer's prepaid account, a billable line (M3c) or the bank settlement account (M5). */
  payer: bigint;
  payee: bigint;
  fees: bigint;
  /**
   * M3c: the line's control account for the billing period and the operator settlement account.
   * The reservation then carries a linked pending charge control → operator of the same amount;
   * the control account may not go below zero, so the ledger itself refuses a charge over the
   * period's credit, atomically with the money.
   */
  /** `grant`: the transfer that gave the control account the period's credit (see openLinePeriod). */
  limit?: { control: bigint; grant: bigint; operator: bigint };
}

/** A broken invariant between the domain and the ledger (an account missing, a malformed id). */
export class LedgerInvariantError extends Error {
  override readonly name = 'LedgerInvariantError';
}

function ledgerOf(payment: Payment): number {
  const currency = currencyOf(payment.currency);
  if (currency === undefined) throw new LedgerInvariantError(`payment ${payment.id} has unknown currency ${payment.currency}`);
  return currency.ledger;
}

/**
 * One of a payment's transfers, every field given (no defaults spread in: these are built for every
 * authorization, and `transfer()`'s spread of a fields object cost ~0.2 µs each; a whole
 * reserve-and-post chain was 7 µs, tight loop).
 */
function paymentTransfer(
  id: bigint,
  debit: bigint,
  credit: bigint,
  amount: bigint,
  pendingId: bigint,
  paymentId: bigint,
  timeout: number,
  ledger: number,
  code: number,
  flags: number,
): Transfer {
  return {
    id,
    debit_account_id: debit,
    credit_account_id: credit,
    amount,
    pending_id: pendingId,
    user_data_128: paymentId,
    user_data_64: 0n,
    user_data_32: 0,
    timeout,
    ledger,
    code,
    flags,
    timestamp: 0n,
  };
}

/** The reservation, and with a line limit the linked limit charge after it. The last event is linked when `linked`. */
export function reservation(payment: Payment, accounts: PaymentAccounts, timeoutSeconds: number, linked = false): Transfer[] {
  const chain: Transfer[] = [];
  pushReservation(chain, payment, idFromHex(payment.id), accounts, timeoutSeconds, linked);
  return chain;
}

function pushReservation(chain: Transfer[], payment: Payment, paymentId: bigint, accounts: PaymentAccounts, timeoutSeconds: number, linked: boolean): void {
  const ledger = ledgerOf(payment);
  const limit = accounts.limit;
  chain.push(
    paymentTransfer(
      paymentId | PaymentTransferKind.pending,
      accounts.payer,
      accounts.payee,
      payment.amount,
      0n,
      paymentId,
      timeoutSeconds,
      ledger,
      limit === undefined ? TransferCode.payment : TransferCode.carrierCharge,
      TransferFlags.pending | (linked || limit !== undefined ? TransferFlags.linked : 0),
    ),
  );
  if (limit === undefined) return;
  chain.push(
    paymentTransfer(
      paymentId | PaymentTransferKind.limitPending,
      limit.control,
      limit.operator,
      payment.amount,
      0n,
      paymentId,
      timeoutSeconds,
      ledger,
      TransferCode.lineLimitCharge,
      TransferFlags.pending | (linked ? TransferFlags.linked : 0),
    ),
  );
}

/** The post of the whole reservation, and the fee transfer linked with it when there is a fee. */
export function settlement(payment: Payment, accounts: PaymentAccounts): Transfer[] {
  const chain: Transfer[] = [];
  pushSettlement(chain, payment, idFromHex(payment.id), accounts);
  return chain;
}

/** The post of pending transfer `pendingId` (its whole amount), linked to the next transfer or not. */
function postOf(id: bigint, pendingId: bigint, paymentId: bigint, linked: boolean): Transfer {
  return paymentTransfer(id, 0n, 0n, amountMax, pendingId, paymentId, 0, 0, 0, TransferFlags.post_pending_transfer | (linked ? TransferFlags.linked : 0));
}

function pushSettlement(chain: Transfer[], payment: Payment, paymentId: bigint, accounts: PaymentAccounts): void {
  const withFee = payment.feeAmount > 0n;
  const withLimit = payment.lineControlAccountId !== undefined;
  chain.push(postOf(paymentId | PaymentTransferKind.post, paymentId | PaymentTransferKind.pending, paymentId, withFee || withLimit));
  if (withLimit) chain.push(postOf(paymentId | PaymentTransferKind.limitPost, paymentId | PaymentTransferKind.limitPending, paymentId, withFee));
  if (withFee)
    chain.push(
      paymentTransfer(
        paymentId | PaymentTransferKind.fee,
        accounts.payee,
        accounts.fees,
        payment.feeAmount,
        0n,
        paymentId,
        0,
        ledgerOf(payment),
        TransferCode.fee,
        0,
      ),
    );
}

/** The void of a payment's money reservation (or the close marker under its id), or of its M3c limit charge. */
function voidOf(paymentId: bigint, which: 'money' | 'limit'): Transfer {
  const ids = paymentTransferIds(paymentId);
  const [id, pendingId] = which === 'money' ? [ids.void, ids.pending] : [ids.limitVoid, ids.limitPending];
  return transfer({ id, pending_id: pendingId, user_data_128: paymentId, flags: TransferFlags.void_pending_transfer });
}

/** The transfers a settled payment has in the ledger: the post, the limit post (M3c) and the fee. */
function settledIds(payment: Payment): bigint[] {
  const ids = paymentTransferIds(idFromHex(payment.id));
  return [ids.post, ...(payment.lineControlAccountId === undefined ? [] : [ids.limitPost]), ...(payment.feeAmount > 0n ? [ids.fee] : [])];
}

/**
 * The reservation was made before: by this payment's earlier attempt (`exists`), or by a process
 * running with the other COUNTERSIGN_LEDGER_HOLD_TIMEOUT (same transfer, another timeout). Either
 * way the money is held under this payment's deterministic id.
 */
function madeBefore(result: CreateTransferResult | undefined): boolean {
  return result === 'exists' || result === 'exists_with_different_timeout';
}

function unexpected(step: string, payment: Payment, results: CreateTransferResult[]): LedgerInvariantError {
  return new LedgerInvariantError(`${step} of payment ${payment.id}: ledger answered ${results.join(', ')}`);
}

/** Why the ledger refused a reservation (`results[0]` is its money's result): funds, or an M3c line's credit. */
function refusal(payment: Payment, results: CreateTransferResult[]): Exclude<ReserveOutcome, 'reserved'> {
  const result = results[0];
  // M3c: the limit charge (second event) refused by the control account's balance flag.
  if (
    payment.lineControlAccountId !== undefined &&
    result === 'linked_event_failed' &&
    (results[1] === 'exceeds_credits' || results[1] === 'id_already_failed')
  ) {
    return 'credit_limit_exceeded';
  }
  // A reservation refused for funds leaves its id failed for good: a retry sees id_already_failed.
  if (result === 'exceeds_credits' || result === 'id_already_failed') return 'insufficient_funds';
  throw unexpected('reserve', payment, results);
}

export class PaymentLedger {
  constructor(readonly ledger: Ledger) {}

  /**
   * A reservation alone, as versions before issue 15 made one at create. This version calls it
   * nowhere (it holds nothing before consent); tests make such reservations with it, to prove
   * that a confirm, a decline, the sweeper and reconcile still finish them.
   */
  async reserve(payment: Payment, accounts: PaymentAccounts, timeoutSeconds: number): Promise<ReserveOutcome> {
    const results = await this.ledger.createTransfers(reservation(payment, accounts, timeoutSeconds));
    return results[0] === 'ok' || madeBefore(results[0]) ? 'reserved' : refusal(payment, results);
  }

  /**
   * M3c: opens a line's control account for a billing period and grants it the period's credit
   * from the operator settlement account. Ids are derived from line and period, so this is
   * idempotent; a grant that exists with another amount (the limit changed mid-period) keeps the
   * first one.
   */
  async openLinePeriod(input: { control: bigint; grant: bigint; operator: bigint; creditLimit: bigint; ledger: number }): Promise<void> {
    const [created] = await this.ledger.createAccounts([
      account({ id: input.control, ledger: input.ledger, code: AccountCode.lineControl, flags: accountFlagsFor[AccountCode.lineControl] }),
    ]);
    if (created !== undefined && !isApplied(created)) throw new LedgerInvariantError(`opening line control account: ${created}`);
    const grant = transfer({
      id: input.grant,
      debit_account_id: input.operator,
      credit_account_id: input.control,
      amount: input.creditLimit,
      ledger: input.ledger,
      code: TransferCode.lineCredit,
    });
    const [granted] = await this.ledger.createTransfers([grant]);
    if (granted !== 'ok' && granted !== 'exists' && granted !== 'exists_with_different_amount')
      throw new LedgerInvariantError(`granting a line's period credit: ${granted}`);
  }

  /**
   * Reserve and post in one linked request: how every payment moves its money once it is approved
   * (no money is held before the payer consents, README "Tenant safety"). A reservation made before
   * (by a process of an earlier version, which held the money at create) is posted instead; one
   * that expired or was voided meanwhile says so.
   */
  async reserveAndPost(payment: Payment, accounts: PaymentAccounts, timeoutSeconds: number): Promise<SettleOutcome> {
    const paymentId = idFromHex(payment.id);
    const chain: Transfer[] = [];
    pushReservation(chain, payment, paymentId, accounts, timeoutSeconds, true);
    pushSettlement(chain, payment, paymentId, accounts);
    const results = await this.ledger.createTransfers(chain);
    if (results.every((r) => r === 'ok')) return 'posted';
    // Its pending transfer is there already: made by this request before (`exists`), alone by
    // `reserve` at create (an earlier version: no `linked` flag, maybe another timeout), or the
    // zero-amount marker of a payment closed without money (`close`). Whichever: post what is there.
    if (results[0]?.startsWith('exists') === true) return (await this.settled(payment)) ? 'posted' : this.postMadeBefore(payment, accounts);
    return refusal(payment, results);
  }

  private async postMadeBefore(payment: Payment, accounts: PaymentAccounts): Promise<SettleOutcome> {
    const outcome = await this.post(payment, accounts);
    if (outcome === 'not_reserved') throw new LedgerInvariantError(`payment ${payment.id}: its reservation exists but its post found none`);
    return outcome;
  }

  /** Posts the reservation (with the fee). Idempotent. */
  async post(payment: Payment, accounts: PaymentAccounts): Promise<PostOutcome> {
    const results = await this.ledger.createTransfers(settlement(payment, accounts));
    const [post] = results;
    if (post === 'ok') return 'posted';
    // `exists` breaks a linked chain: the fee then reports linked_event_failed. Confirm it landed.
    if (post === 'exists') {
      if (await this.settled(payment)) return 'posted';
      throw unexpected('post (fee missing after retry)', payment, results);
    }
    if (post === 'pending_transfer_expired') return 'expired';
    if (post === 'pending_transfer_already_voided') return 'voided';
    if (post === 'pending_transfer_not_found') return 'not_reserved';
    throw unexpected('post', payment, results);
  }

  /**
   * Closes a payment that moved no money (declined, cancelled, expired) in the ledger too: a
   * pending transfer of 0 under the payment's reservation id and its void, linked. The ledger then
   * refuses that payment's money for good (a later reserve-and-post meets the voided marker), so
   * even a store that lost the closing write cannot post it, and `reconcile` reads it as closed.
   * The marker runs between two platform accounts (`closing`: operator settlement → fees), never
   * the payer's or the merchant's, so nobody who can read those learns anything from it (a
   * phantom payer's payment is closed alike). No timeout: nothing lapses, and a void never touches
   * TigerBeetle's expiry index (README "Holds and their timeout"). A reservation an earlier
   * version made is voided instead. Idempotent.
   */
  async close(payment: Payment, closing: { debit: bigint; credit: bigint }): Promise<VoidOutcome> {
    const paymentId = idFromHex(payment.id);
    const ids = paymentTransferIds(paymentId);
    const marker = transfer({
      id: ids.pending,
      debit_account_id: closing.debit,
      credit_account_id: closing.credit,
      amount: 0n,
      user_data_128: paymentId,
      ledger: ledgerOf(payment),
      code: TransferCode.paymentClosed,
      flags: TransferFlags.pending | TransferFlags.linked,
    });
    const results = await this.ledger.createTransfers([marker, voidOf(paymentId, 'money')]);
    if (results[0] === 'ok' && results[1] === 'ok') return 'voided';
    // The marker made before (a retry), or a real reservation under that id: void what is there.
    if (results[0]?.startsWith('exists') === true) return this.void(payment);
    throw unexpected('close', payment, results);
  }

  /** Voids the reservation. Idempotent; tells what happened to it otherwise. */
  async void(payment: Payment): Promise<VoidOutcome> {
    const paymentId = idFromHex(payment.id);
    // The limit charge is voided in the same request but not linked: each void is idempotent on its own.
    const voids = payment.lineControlAccountId === undefined ? [voidOf(paymentId, 'money')] : [voidOf(paymentId, 'money'), voidOf(paymentId, 'limit')];
    const results = await this.ledger.createTransfers(voids);
    const [result] = results;
    if (result === 'ok' || result === 'exists') return 'voided';
    if (result === 'pending_transfer_already_posted') return 'already_posted';
    // Expired by itself, never reserved (refused for funds), or voided under another id.
    if (result === 'pending_transfer_expired' || result === 'pending_transfer_not_found' || result === 'pending_transfer_already_voided') {
      return 'already_released';
    }
    throw unexpected('void', payment, results);
  }

  /** True when the post (and the fee, if any) are in the ledger. */
  async settled(payment: Payment): Promise<boolean> {
    const wanted = settledIds(payment);
    return (await this.ledger.lookupTransfers(wanted)).length === wanted.length;
  }
}
