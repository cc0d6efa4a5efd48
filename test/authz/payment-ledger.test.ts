import test from 'ava';
import type { Payment } from '../../authz/model.js';
import { type PaymentAccounts, reservation, settlement } from '../../authz/payment-ledger.js';

/**
 * The transfers of a payment's reserve-and-post, field by field, written out here (not derived
 * from the code under test): ids from the payment id with its kind in the low 4 bits (1 pending,
 * 2 post, 4 fee, 5 limit pending, 6 limit post), USD = ledger 840, codes payment 2, fee 3,
 * carrier charge 4, line limit charge 6; flags linked 1, pending 2, post 4.
 */
const paymentHex = 'a1b2c3d4e5f60718293a4b5c6d7e8f00';
const pid = 0xa1b2c3d4e5f60718293a4b5c6d7e8f00n;
const amountMax = (1n << 128n) - 1n;
const zero = { user_data_64: 0n, user_data_32: 0, timestamp: 0n };

function payment(fields: Partial<Payment>): Payment {
  return { id: paymentHex, amount: 1_234n, feeAmount: 0n, currency: 'USD', ...fields } as Payment;
}

const accounts: PaymentAccounts = { payer: 10n, payee: 20n, fees: 30n };

/** The money reservation of `payment({})` with `accounts`, as `reservation(…, 360)` makes it. */
const money = {
  id: pid | 1n,
  debit_account_id: 10n,
  credit_account_id: 20n,
  amount: 1_234n,
  pending_id: 0n,
  user_data_128: pid,
  timeout: 360,
  ledger: 840,
  code: 2,
  flags: 2,
  ...zero,
};

test('reservation: the pending money transfer, linked when asked; with a billable line the linked limit charge after it', (t) => {
  t.deepEqual(reservation(payment({}), accounts, 360), [money]);
  t.is(reservation(payment({}), accounts, 0, true)[0]!.flags, 2 | 1);
  const line = { ...accounts, limit: { control: 40n, grant: 0n, operator: 50n } };
  t.deepEqual(reservation(payment({ lineControlAccountId: 'ab' }), line, 0, true), [
    { ...money, timeout: 0, code: 4, flags: 3 },
    { ...money, id: pid | 5n, debit_account_id: 40n, credit_account_id: 50n, timeout: 0, code: 6, flags: 3 },
  ]);
  t.is(reservation(payment({ lineControlAccountId: 'ab' }), line, 0, false)[1]!.flags, 2, 'the chain ends unlinked');
});

test('settlement: the post of the whole reservation, linked with the fee when there is one (and with the limit post on a billable line)', (t) => {
  const post = {
    id: pid | 2n,
    debit_account_id: 0n,
    credit_account_id: 0n,
    amount: amountMax,
    pending_id: pid | 1n,
    user_data_128: pid,
    timeout: 0,
    ledger: 0,
    code: 0,
  };
  t.deepEqual(settlement(payment({}), accounts), [{ ...post, flags: 4, ...zero }]);
  const fee = {
    id: pid | 4n,
    debit_account_id: 20n,
    credit_account_id: 30n,
    amount: 12n,
    pending_id: 0n,
    user_data_128: pid,
    timeout: 0,
    ledger: 840,
    code: 3,
    flags: 0,
    ...zero,
  };
  t.deepEqual(settlement(payment({ feeAmount: 12n }), accounts), [{ ...post, flags: 4 | 1, ...zero }, fee]);
  const limitPost = { ...post, id: pid | 6n, pending_id: pid | 5n };
  t.deepEqual(settlement(payment({ feeAmount: 12n, lineControlAccountId: 'ab' }), accounts), [
    { ...post, flags: 5, ...zero },
    { ...limitPost, flags: 5, ...zero },
    fee,
  ]);
  t.deepEqual(settlement(payment({ lineControlAccountId: 'ab' }), accounts), [
    { ...post, flags: 5, ...zero },
    { ...limitPost, flags: 4, ...zero },
  ]);
});
