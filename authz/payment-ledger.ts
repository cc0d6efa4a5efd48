import { TransferCode, currencyOf } from '../ledger/chart.js';
import { idFromHex, paymentTransferIds } from '../ledger/ids.js';
import { TransferFlags, amountMax, transfer, type Transfer } from '../ledger/model.js';
import type { Ledger } from '../ledger/port.js';
import type { CreateTransferResult } from '../ledger/results.js';
import type { Payment } from './model.js';

/**
 * A payment's money movement on the ledger. Every transfer id is derived from the payment id
 * (`paymentTransferIds`), so each step can be retried any number of times: `exists` is success.
 *
 * - reserve: a pending transfer payer → payee whose timeout covers the challenge lifetime;
 * - post: posts the whole reservation, linked with the merchant's fee (payee → platform fees),
 *   so both land or neither;
 * - void: releases the reservation;
 * - frictionless: reserve and post in one linked request.
 */

export type ReserveOutcome = 'reserved' | 'insufficient_funds';
export type PostOutcome = 'posted' | 'expired' | 'voided';
export type VoidOutcome = 'voided' | 'already_posted' | 'already_released';

export interface PaymentAccounts {
  payer: bigint;
  payee: bigint;
  fees: bigint;
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

export function reservation(payment: Payment, accounts: PaymentAccounts, timeoutSeconds: number, linked = false): Transfer {
  const paymentId = idFromHex(payment.id);
  return transfer({
    id: paymentTransferIds(paymentId).pending,
    debit_account_id: accounts.payer,
    credit_account_id: accounts.payee,
    amount: payment.amount,
    user_data_128: paymentId,
    timeout: timeoutSeconds,
    ledger: ledgerOf(payment),
    code: TransferCode.payment,
    flags: TransferFlags.pending | (linked ? TransferFlags.linked : 0),
  });
}

/** The post of the whole reservation, and the fee transfer linked with it when there is a fee. */
export function settlement(payment: Payment, accounts: PaymentAccounts): Transfer[] {
  const paymentId = idFromHex(payment.id);
  const ids = paymentTransferIds(paymentId);
  const withFee = payment.feeAmount > 0n;
  const post = transfer({
    id: ids.post,
    pending_id: ids.pending,
    amount: amountMax,
    user_data_128: paymentId,
    flags: TransferFlags.post_pending_transfer | (withFee ? TransferFlags.linked : 0),
  });
  if (!withFee) return [post];
  const fee = transfer({
    id: ids.fee,
    debit_account_id: accounts.payee,
    credit_account_id: accounts.fees,
    amount: payment.feeAmount,
    user_data_128: paymentId,
    ledger: ledgerOf(payment),
    code: TransferCode.fee,
  });
  return [post, fee];
}

function unexpected(step: string, payment: Payment, results: CreateTransferResult[]): LedgerInvariantError {
  return new LedgerInvariantError(`${step} of payment ${payment.id}: ledger answered ${results.join(', ')}`);
}

function reserveOutcome(payment: Payment, result: CreateTransferResult | undefined, results: CreateTransferResult[]): ReserveOutcome {
  if (result === 'ok' || result === 'exists') return 'reserved';
  // A reservation refused for funds leaves its id failed for good: a retry sees id_already_failed.
  if (result === 'exceeds_credits' || result === 'id_already_failed') return 'insufficient_funds';
  throw unexpected('reserve', payment, results);
}

export class PaymentLedger {
  constructor(private readonly ledger: Ledger) {}

  async reserve(payment: Payment, accounts: PaymentAccounts, timeoutSeconds: number): Promise<ReserveOutcome> {
    const results = await this.ledger.createTransfers([reservation(payment, accounts, timeoutSeconds)]);
    return reserveOutcome(payment, results[0], results);
  }

  /** Reserve and post in one linked request: the frictionless path. */
  async reserveAndPost(payment: Payment, accounts: PaymentAccounts, timeoutSeconds: number): Promise<ReserveOutcome> {
    const chain = [reservation(payment, accounts, timeoutSeconds, true), ...settlement(payment, accounts)];
    const results = await this.ledger.createTransfers(chain);
    if (results.every((r) => r === 'ok')) return 'reserved';
    if (results[0] === 'exists') return (await this.settled(payment)) ? 'reserved' : this.finishPost(payment, accounts);
    return reserveOutcome(payment, results[0], results);
  }

  private async finishPost(payment: Payment, accounts: PaymentAccounts): Promise<ReserveOutcome> {
    const outcome = await this.post(payment, accounts);
    if (outcome !== 'posted') throw new LedgerInvariantError(`frictionless payment ${payment.id} reserved but ${outcome}`);
    return 'reserved';
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
    throw unexpected('post', payment, results);
  }

  /** Voids the reservation. Idempotent; tells what happened to it otherwise. */
  async void(payment: Payment): Promise<VoidOutcome> {
    const ids = paymentTransferIds(idFromHex(payment.id));
    const voiding = transfer({ id: ids.void, pending_id: ids.pending, user_data_128: idFromHex(payment.id), flags: TransferFlags.void_pending_transfer });
    const results = await this.ledger.createTransfers([voiding]);
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
    const ids = paymentTransferIds(idFromHex(payment.id));
    const wanted = payment.feeAmount > 0n ? [ids.post, ids.fee] : [ids.post];
    return (await this.ledger.lookupTransfers(wanted)).length === wanted.length;
  }
}
