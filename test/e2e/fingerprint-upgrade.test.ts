import { Code } from '@connectrpc/connect';
import test from 'ava';
import { confirmFields, createFields, legacyConfirmFingerprint, legacyCreateFingerprint } from '../../authz/fingerprint.js';
import type { CreatePaymentInput } from '../../authz/payments.js';
import { CreatePreparer } from '../../authz/steps/create-prepare.js';
import { PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { appPayment, balance, key, newMerchant, newPayer, refusedWith, type StoreKind, startEnv } from './harness.js';

/**
 * Idempotency keys stored by a version before 2026-12-06 hold another fingerprint (HMAC of the
 * request's canonical JSON) than this version computes (one keyed SHA-256 of its fields). Within
 * the keys' lifetime after an upgrade, a retry of the same request must still be answered as a
 * replay, and another request under the same key still refused (fingerprint.ts).
 */

const stores: StoreKind[] = ['memory', 'journal', 'redis'];

/** The create as `CreatePayment` converts it (services/handlers/payment-service.ts): the earlier version's fingerprint depends on the field order. */
function inputOf(payerId: string, idempotencyKey: string, amount: bigint): CreatePaymentInput {
  return { idempotencyKey, payerId, payeeAccountId: '', amount, currency: 'USD', description: 'upgrade', channel: 'MERCHANT', requestedFactors: [] };
}

for (const store of stores) {
  test(`${store}: a create an earlier version stored is replayed by its retry after the upgrade; another request under its key is still refused`, async (t) => {
    const env = await startEnv('grpc-js', store);
    t.teardown(() => env.close());
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const deps = env.app.payments.deps;
    const k = key('upgrade-create');
    const input = inputOf(payer.id, k, 30_00n);
    // What the earlier version wrote: the same record and key, its fingerprint.
    const prepared = await new CreatePreparer(deps).prepare((await deps.directory.getMerchant(shop.id))!, input);
    const legacy = legacyCreateFingerprint(deps.codes, input);
    t.not(prepared.item.fingerprint, legacy, 'this version fingerprints differently');
    t.is(prepared.item.fingerprint, deps.codes.fingerprint(createFields(input)));
    const [written] = await deps.store.create([{ ...prepared.item, fingerprint: legacy }]);
    if (written!.outcome !== 'created') throw new Error(`setup: ${written!.outcome}`);
    const id = written!.record.payment.id;

    const request = { idempotencyKey: k, payer: { case: 'payerId' as const, value: payer.id }, amount: 30_00n, currency: 'USD', description: 'upgrade' };
    const retried = (await shop.api.payments.createPayment(request)).payment!;
    t.is(retried.id, id, 'the retry answers the payment the earlier version made');
    t.is(retried.state, PaymentState.CHALLENGED);
    t.regex(env.inbox.firstCodeFor(id) ?? '', /^\d{8}$/, 'and finishes it: the code is sent');
    const other = await refusedWith(t, shop.api.payments.createPayment({ ...request, amount: 31_00n }), Code.AlreadyExists);
    t.regex(other.message, /different request/);
    const payments = await deps.store.list({ payerId: payer.id, limit: 10 });
    t.deepEqual(
      payments.map((p) => p.id),
      [id],
      'one payment: neither call made another',
    );
    t.is((await balance(env, payer.account)).reserved, 0n, 'no money held before the payer consents');
  });

  test(`${store}: a confirm an earlier version stored is replayed by its retry (no attempt counted); another proof under its key is still refused`, async (t) => {
    const env = await startEnv('grpc-js', store);
    t.teardown(() => env.close());
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const codes = env.app.payments.deps.codes;
    const p = await appPayment(shop, payer, 12_00n);
    const k = key('upgrade-confirm');
    const wrong = { idempotencyKey: k, paymentId: p.id, proof: { case: 'secondCode' as const, value: p.wrongCode } };
    // The earlier version's answer to a wrong code: one attempt counted, its key stored with its fingerprint.
    const proof = { kind: 'second_code' as const, secondCode: p.wrongCode };
    const legacy = legacyConfirmFingerprint(codes, p.id, proof);
    const current = codes.fingerprint;
    codes.fingerprint = (fields) => (fields === confirmFields(p.id, proof) ? legacy : current(fields));
    try {
      await refusedWith(t, payer.api.payer.confirmPayment(wrong), Code.PermissionDenied);
    } finally {
      codes.fingerprint = current;
    }
    const attemptsAfterFirst = (await shop.api.payments.getPayment({ paymentId: p.id })).payment!.attemptsLeft;
    t.is(attemptsAfterFirst, 4);

    const replayed = await refusedWith(t, payer.api.payer.confirmPayment(wrong), Code.PermissionDenied);
    t.regex(replayed.message, /wrong/);
    t.is((await shop.api.payments.getPayment({ paymentId: p.id })).payment!.attemptsLeft, 4, 'the retry is the same answer: no second attempt counted');
    const other = await refusedWith(t, payer.api.payer.confirmPayment({ ...wrong, proof: { case: 'secondCode', value: p.code } }), Code.AlreadyExists);
    t.regex(other.message, /different request/);
    t.is((await shop.api.payments.getPayment({ paymentId: p.id })).payment!.state, PaymentState.CHALLENGED, 'the right code under a used key moved nothing');

    const done = await payer.api.payer.confirmPayment({
      idempotencyKey: key('upgrade-confirm-2'),
      paymentId: p.id,
      proof: { case: 'secondCode', value: p.code },
    });
    t.is(done.payment!.state, PaymentState.SUCCEEDED);
    t.is((await balance(env, payer.account)).posted, 500_00n - 12_00n, 'posted once');
  });
}
