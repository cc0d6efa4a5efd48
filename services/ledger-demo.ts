import { AccountCode, accountFlagsFor, type Currency, currencyOf, formatMinor, TransferCode } from '../ledger/chart.js';
import { idToHex, newId, newPaymentId, paymentTransferIds } from '../ledger/ids.js';
import { type Account, account, amountMax, TransferFlags, transfer } from '../ledger/model.js';
import type { Ledger } from '../ledger/port.js';
import { isApplied } from '../ledger/results.js';

/**
 * A walk through the ledger the way the authorization service uses it: fund a payer, reserve a
 * payment as a pending transfer, post it linked with the merchant's fee, void a declined one,
 * refuse one that exceeds the payer's funds, retry idempotently, and let a reservation expire.
 */

const usd = currencyOf('USD')!;
/** Reservation lifetime for the demo's payments, in seconds (the challenge lifetime in production). */
const reservationTimeoutSeconds = 300;
/** A reservation the demo lets expire, in seconds. */
const expiringTimeoutSeconds = 1;

export interface DemoAccounts {
  funding: bigint;
  payer: bigint;
  merchant: bigint;
  fees: bigint;
}

type Print = (line: string) => void;

async function createDemoAccounts(ledger: Ledger, currency: Currency): Promise<DemoAccounts> {
  const ids: DemoAccounts = { funding: newId(), payer: newId(), merchant: newId(), fees: newId() };
  const make = (id: bigint, code: AccountCode): Account => account({ id, ledger: currency.ledger, code, flags: accountFlagsFor[code] });
  const results = await ledger.createAccounts([
    make(ids.funding, AccountCode.funding),
    make(ids.payer, AccountCode.payerPrepaid),
    make(ids.merchant, AccountCode.merchant),
    make(ids.fees, AccountCode.platformFees),
  ]);
  if (!results.every(isApplied)) throw new Error(`creating demo accounts: ${results.join(', ')}`);
  return ids;
}

async function printBalances(ledger: Ledger, ids: DemoAccounts, print: Print): Promise<void> {
  const names: [keyof DemoAccounts, string][] = [
    ['payer', 'payer (prepaid)'],
    ['merchant', 'merchant'],
    ['fees', 'platform fees'],
  ];
  const found = await ledger.lookupAccounts(names.map(([key]) => ids[key]));
  for (const [i, [, label]] of names.entries()) {
    const a = found[i]!;
    const available = a.credits_posted - a.debits_posted - a.debits_pending;
    print(
      `    ${label.padEnd(16)} balance ${formatMinor(a.credits_posted - a.debits_posted, usd).padStart(8)}  reserved ${formatMinor(a.debits_pending, usd).padStart(7)}  available ${formatMinor(available, usd).padStart(8)}`,
    );
  }
}

function reserve(paymentId: bigint, ids: DemoAccounts, amount: bigint, timeout: number) {
  return transfer({
    id: paymentTransferIds(paymentId).pending,
    debit_account_id: ids.payer,
    credit_account_id: ids.merchant,
    amount,
    user_data_128: paymentId,
    timeout,
    ledger: usd.ledger,
    code: TransferCode.payment,
    flags: TransferFlags.pending,
  });
}

/** Post the whole reservation, linked with the fee: both land or neither does. */
function postWithFee(paymentId: bigint, ids: DemoAccounts, fee: bigint) {
  const transferIds = paymentTransferIds(paymentId);
  return [
    transfer({
      id: transferIds.post,
      pending_id: transferIds.pending,
      amount: amountMax,
      user_data_128: paymentId,
      flags: TransferFlags.post_pending_transfer | TransferFlags.linked,
    }),
    transfer({
      id: transferIds.fee,
      debit_account_id: ids.merchant,
      credit_account_id: ids.fees,
      amount: fee,
      user_data_128: paymentId,
      ledger: usd.ledger,
      code: TransferCode.fee,
    }),
  ];
}

/** Runs the walk-through and returns the accounts it made, so callers can audit the outcome. */
export async function runLedgerDemo(ledger: Ledger, print: Print): Promise<DemoAccounts> {
  const ids = await createDemoAccounts(ledger, usd);
  const step = async (title: string, detail: string) => {
    print(`\n${title}\n  ${detail}`);
    await printBalances(ledger, ids, print);
  };

  const deposit = transfer({
    id: newId(),
    debit_account_id: ids.funding,
    credit_account_id: ids.payer,
    amount: 100_00n,
    ledger: usd.ledger,
    code: TransferCode.funding,
  });
  await step('1. Fund the payer with 100.00 USD', `create_transfers → ${await ledger.createTransfers([deposit])}`);

  const paid = newPaymentId();
  await step(
    `2. Reserve payment ${idToHex(paid)} of 25.00 (pending, ${reservationTimeoutSeconds} s timeout)`,
    `create_transfers → ${await ledger.createTransfers([reserve(paid, ids, 25_00n, reservationTimeoutSeconds)])}`,
  );
  await step('3. Approve: post the reservation linked with a 0.75 fee', `create_transfers → ${await ledger.createTransfers(postWithFee(paid, ids, 75n))}`);
  await step(
    '4. Retry the same post (a client that timed out)',
    `create_transfers → ${await ledger.createTransfers(postWithFee(paid, ids, 75n))} (the post exists: already applied in step 3; an exists result breaks the chain, so the fee reports linked_event_failed, and it too was applied in step 3: nothing moves twice)`,
  );

  const declined = newPaymentId();
  await ledger.createTransfers([reserve(declined, ids, 40_00n, reservationTimeoutSeconds)]);
  const voidIt = transfer({
    id: paymentTransferIds(declined).void,
    pending_id: paymentTransferIds(declined).pending,
    flags: TransferFlags.void_pending_transfer,
  });
  await step('5. Reserve 40.00, then decline it: void releases the reservation', `create_transfers → ${await ledger.createTransfers([voidIt])}`);

  const tooMuch = newPaymentId();
  await step(
    '6. Reserve 500.00: more than the payer has',
    `create_transfers → ${await ledger.createTransfers([reserve(tooMuch, ids, 500_00n, reservationTimeoutSeconds)])}`,
  );

  const expiring = newPaymentId();
  const reserved = await ledger.createTransfers([reserve(expiring, ids, 10_00n, expiringTimeoutSeconds)]);
  await step(
    `7. Reserve 10.00 with a ${expiringTimeoutSeconds} s timeout and never answer`,
    `create_transfers → ${reserved}; waiting ${expiringTimeoutSeconds + 1} s`,
  );
  await new Promise((resolve) => setTimeout(resolve, (expiringTimeoutSeconds + 1) * 1000));
  const late = transfer({
    id: paymentTransferIds(expiring).post,
    pending_id: paymentTransferIds(expiring).pending,
    amount: amountMax,
    flags: TransferFlags.post_pending_transfer,
  });
  await step('   then try to post it', `create_transfers → ${await ledger.createTransfers([late])} (the reservation released itself)`);
  return ids;
}
