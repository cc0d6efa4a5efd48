import test from 'ava';
import type { CreatePaymentInput } from '../../authz/payments.js';
import { reconcile } from '../../authz/reconcile.js';
import { accountsOf, reservationSeconds } from '../../authz/steps/context.js';
import { CreatePreparer } from '../../authz/steps/create-prepare.js';
import { PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { idFromHex, paymentTransferIds } from '../../ledger/ids.js';
import { balance, type Env, key, type Merchant, newMerchant, newPayer, type Payer, secondCode, startEnv } from '../e2e/harness.js';

/**
 * A create whose process died after the store step (the record and its key written) and before
 * the ledger or the code: the retry of the same request finishes it. Simulated by running the
 * domain's own preparation and store step, then nothing else, exactly as the dead call left it.
 */

/** The request as `CreatePayment` converts it (services/handlers/payment-service.ts): same fields, same order, same fingerprint. */
function inputOf(payer: Payer, idempotencyKey: string, amount: bigint): CreatePaymentInput {
  return { idempotencyKey, payerId: payer.id, payeeAccountId: '', amount, currency: 'USD', description: 'crashed', channel: 'MERCHANT', requestedFactors: [] };
}

async function crashedAfterStoreStep(env: Env, merchant: Merchant, input: CreatePaymentInput) {
  const deps = env.app.payments.deps;
  const prepared = await new CreatePreparer(deps).prepare((await deps.directory.getMerchant(merchant.id))!, input);
  const [outcome] = await deps.store.create([prepared.item]);
  if (outcome!.outcome !== 'created') throw new Error(`setup: ${outcome!.outcome}`);
  return outcome!.record;
}

function request(payer: Payer, idempotencyKey: string, amount: bigint) {
  return { idempotencyKey, payer: { case: 'payerId' as const, value: payer.id }, amount, currency: 'USD', description: 'crashed' };
}

test('a payment without factors recorded APPROVED by a create that died before the ledger: the retry reserves and posts it once', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const k = key('crash-frictionless');
  const record = await crashedAfterStoreStep(env, shop, inputOf(payer, k, 50n));
  t.is(record.payment.state, 'APPROVED');
  const retried = (await shop.api.payments.createPayment(request(payer, k, 50n))).payment!;
  t.is(retried.id, record.payment.id);
  t.is(retried.state, PaymentState.SUCCEEDED);
  t.deepEqual(await balance(env, payer.account), { available: 500_00n - 50n, posted: 500_00n - 50n, reserved: 0n, credited: 500_00n });
  const again = (await shop.api.payments.createPayment(request(payer, k, 50n))).payment!;
  t.deepEqual([again.id, again.state], [record.payment.id, PaymentState.SUCCEEDED], 'a further retry changes nothing');
  t.is((await balance(env, payer.account)).posted, 500_00n - 50n, 'posted once');
});

test('a challenged create an earlier version reserved, dead before sending the code: a retry within the lease sends the code (the same code, the same payment)', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const k = key('crash-unsent');
  const record = await crashedAfterStoreStep(env, shop, inputOf(payer, k, 20_00n));
  const deps = env.app.payments.deps;
  t.is(await deps.ledger.reserve(record.payment, accountsOf(deps, record.payment), reservationSeconds(deps, record.payment)), 'reserved');
  t.is(env.inbox.firstCodeFor(record.payment.id), undefined, 'the dead call sent nothing');
  const retried = (await shop.api.payments.createPayment(request(payer, k, 20_00n))).payment!;
  t.deepEqual([retried.id, retried.state], [record.payment.id, PaymentState.CHALLENGED]);
  t.regex(env.inbox.firstCodeFor(record.payment.id) ?? '', /^\d{8}$/, 'the retry sent the code');
  t.is((await balance(env, payer.account)).reserved, 20_00n, 'reserved once');
});

test('after the create lease a retry finishes the payment itself: the code sent, no money held (a reservation an earlier version made stays the same: no exists_with_different_timeout)', async (t) => {
  const env = await startEnv('grpc-js', 'memory', { createLeaseMs: 1 });
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const deps = env.app.payments.deps;
  // One created by this version (nothing held), one an earlier version had reserved: both finished by their retry.
  const [k1, k2] = [key('lease-unreserved'), key('lease-reserved')];
  const unreserved = await crashedAfterStoreStep(env, shop, inputOf(payer, k1, 10_00n));
  const reserved = await crashedAfterStoreStep(env, shop, inputOf(payer, k2, 11_00n));
  t.is(await deps.ledger.reserve(reserved.payment, accountsOf(deps, reserved.payment), reservationSeconds(deps, reserved.payment)), 'reserved');
  for (const [k, record, amount, held] of [
    [k1, unreserved, 10_00n, undefined],
    [k2, reserved, 11_00n, 11_00n],
  ] as const) {
    const retried = (await shop.api.payments.createPayment(request(payer, k, amount))).payment!;
    t.deepEqual([retried.id, retried.state], [record.payment.id, PaymentState.CHALLENGED]);
    t.regex(env.inbox.firstCodeFor(record.payment.id) ?? '', /^\d{8}$/);
    const [pending] = await deps.ledger.ledger.lookupTransfers([paymentTransferIds(idFromHex(record.payment.id)).pending]);
    t.is(pending?.amount, held);
  }
  t.is((await balance(env, payer.account)).reserved, 11_00n);
});

test('a first code is shown to the payer terminal as soon as the payment is recorded: no money is held before the payer consents', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const k = key('terminal-unreserved');
  const record = await crashedAfterStoreStep(env, shop, { ...inputOf(payer, k, 12_00n), channel: 'APP' });
  t.regex((await payer.api.payer.getChallenge({ paymentId: record.payment.id })).firstCode, /^\d{8}$/);
  t.is((await balance(env, payer.account)).reserved, 0n, 'nothing held');
});

test('a payment an earlier version reserved at create is posted by its confirm (once), and its reservation released by a decline', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const deps = env.app.payments.deps;
  const confirmed = await crashedAfterStoreStep(env, shop, { ...inputOf(payer, key('legacy-confirm'), 15_00n), channel: 'APP' });
  const declined = await crashedAfterStoreStep(env, shop, { ...inputOf(payer, key('legacy-decline'), 16_00n), channel: 'APP' });
  for (const r of [confirmed, declined])
    t.is(await deps.ledger.reserve(r.payment, accountsOf(deps, r.payment), reservationSeconds(deps, r.payment)), 'reserved');
  t.is((await balance(env, payer.account)).reserved, 31_00n);
  const code = (await payer.api.payer.getChallenge({ paymentId: confirmed.payment.id })).firstCode;
  const proof = { case: 'secondCode' as const, value: secondCode(payer, code, 15_00n, shop.account) };
  t.is(
    (await payer.api.payer.confirmPayment({ idempotencyKey: key('legacy'), paymentId: confirmed.payment.id, proof })).payment!.state,
    PaymentState.SUCCEEDED,
  );
  t.is((await payer.api.payer.declinePayment({ idempotencyKey: key('legacy-no'), paymentId: declined.payment.id })).payment!.state, PaymentState.DECLINED);
  t.deepEqual(
    await balance(env, payer.account),
    { available: 500_00n - 15_00n, posted: 500_00n - 15_00n, reserved: 0n, credited: 500_00n },
    'posted once, the other released',
  );
});

test('holds without a ledger timeout (COUNTERSIGN_LEDGER_HOLD_TIMEOUT=off): a new challenge holds nothing; a reservation an earlier version made has timeout 0, and past the challenge reconcile expires the payment and voids it', async (t) => {
  const env = await startEnv('grpc-js', 'memory', { ledgerHoldTimeout: false });
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const deps = env.app.payments.deps;
  const created = (await shop.api.payments.createPayment(request(payer, key('no-timeout'), 13_00n))).payment!;
  t.is(created.state, PaymentState.CHALLENGED);
  t.is((await balance(env, payer.account)).reserved, 0n, 'nothing held by a new challenge');
  const record = (await deps.store.get([created.id]))[0]!;
  t.is(await deps.ledger.reserve(record.payment, accountsOf(deps, record.payment), reservationSeconds(deps, record.payment)), 'reserved');
  const [pending] = await deps.ledger.ledger.lookupTransfers([paymentTransferIds(idFromHex(created.id)).pending]);
  t.deepEqual([pending?.amount, pending?.timeout], [13_00n, 0], 'held, with no ledger timeout');
  t.deepEqual(await reconcile(deps), { examined: 1, changed: {}, anomalies: [] }, 'within the challenge: left alone');
  const later = { ...deps, now: () => Date.now() + 3_600_000 };
  t.deepEqual(await reconcile(later), { examined: 1, changed: { 'CHALLENGED→EXPIRED': 1 }, anomalies: [] });
  t.is((await shop.api.payments.getPayment({ paymentId: created.id })).payment!.state, PaymentState.EXPIRED);
  t.deepEqual(await balance(env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n }, 'released by the void');
});

test('a reservation made by a process with the other hold-timeout setting counts as made (exists_with_different_timeout)', async (t) => {
  const env = await startEnv('grpc-js', 'memory', { ledgerHoldTimeout: false, createLeaseMs: 1 });
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const deps = env.app.payments.deps;
  const k = key('other-setting');
  const record = await crashedAfterStoreStep(env, shop, inputOf(payer, k, 14_00n));
  // The dead process ran with ledger timeouts on.
  t.is(await deps.ledger.reserve(record.payment, accountsOf(deps, record.payment), 360), 'reserved');
  t.is(await deps.ledger.reserve(record.payment, accountsOf(deps, record.payment), reservationSeconds(deps, record.payment)), 'reserved');
  const retried = (await shop.api.payments.createPayment(request(payer, k, 14_00n))).payment!;
  t.deepEqual([retried.id, retried.state], [record.payment.id, PaymentState.CHALLENGED]);
  t.regex(env.inbox.firstCodeFor(record.payment.id) ?? '', /^\d{8}$/, 'the retry sent the code');
  t.is((await balance(env, payer.account)).reserved, 14_00n, 'reserved once');
});
