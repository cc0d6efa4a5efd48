import { setMaxListeners } from 'node:events';
import { Code } from '@connectrpc/connect';
import test from 'ava';
import { watchersPerCallerMax } from '../../authz/events.js';
import { feeMinMinorUnits, feeOf } from '../../authz/payment-ledger.js';
import { drive } from '../../authz/steps/drive.js';
import { Channel, DeclineReason, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { idFromHex, idToHex, paymentTransferIds } from '../../ledger/ids.js';
import { appPayment, balance, type Env, key, type Merchant, newMerchant, newPayer, type Payer, reasonOf, refusedWith, startEnv } from '../e2e/harness.js';

/**
 * Issue 15, "Tenant safety" (README): findings 1, 2, 3, 4, 5 and 7 against a real server on
 * 127.0.0.1 port 0 (grpc-js client, memory store). Each test failed on the code before the fix.
 */

test("finding 1: merchant B's wrong codes for a payer lock the payer at B only; the payer's right code at merchant A still succeeds", async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shopA, shopB] = await Promise.all([newPayer(env), newMerchant(env), newMerchant(env)]);
  // B: 5 wrong codes (the default lockout's failuresMax) on its own APP payments, unary and batched.
  const b1 = await appPayment(shopB, payer, 2_00n);
  for (let i = 0; i < 3; i++)
    await refusedWith(
      t,
      shopB.api.payments.confirmPaymentAsMerchant({ idempotencyKey: key('b1'), paymentId: b1.id, secondCode: b1.wrongCode }),
      Code.PermissionDenied,
    );
  const b2 = await appPayment(shopB, payer, 2_00n);
  const batch = await shopB.api.payments.batchConfirmPayments({
    idempotencyKey: key('b2'),
    items: [0, 1].map(() => ({ idempotencyKey: key('b2i'), paymentId: b2.id, secondCode: b2.wrongCode })),
  });
  t.deepEqual(
    batch.results.map((r) => (r.outcome.case === 'error' ? r.outcome.value.code : -1)),
    [Code.PermissionDenied, Code.PermissionDenied],
  );
  // B itself is now refused for this payer, even with the right code.
  const b3 = await appPayment(shopB, payer, 2_00n);
  t.regex(
    (
      await refusedWith(
        t,
        shopB.api.payments.confirmPaymentAsMerchant({ idempotencyKey: key('b3'), paymentId: b3.id, secondCode: b3.code }),
        Code.ResourceExhausted,
      )
    ).rawMessage,
    /locked out/,
  );

  // A's payment for the same payer: the right code through A succeeds, and through the payer's own terminal too.
  const a1 = await appPayment(shopA, payer, 20_00n);
  const doneA = (await shopA.api.payments.confirmPaymentAsMerchant({ idempotencyKey: key('a1'), paymentId: a1.id, secondCode: a1.code })).payment!;
  t.is(doneA.state, PaymentState.SUCCEEDED);
  const a2 = await appPayment(shopA, payer, 30_00n);
  const doneByPayer = (await payer.api.payer.confirmPayment({ idempotencyKey: key('a2'), paymentId: a2.id, proof: { case: 'secondCode', value: a2.code } }))
    .payment!;
  t.is(doneByPayer.state, PaymentState.SUCCEEDED);
  t.is((await balance(env, payer.account)).posted, 500_00n - 50_00n, 'only the payments at A were charged');
});

test("finding 2: merchant B's unconfirmed payment for the payer's whole balance holds nothing: A's payment is created and confirmed; B's, answered later, is declined for funds", async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shopA, shopB] = await Promise.all([newPayer(env, 100_00n), newMerchant(env), newMerchant(env)]);
  const hog = await appPayment(shopB, payer, 100_00n);
  t.deepEqual(await balance(env, payer.account), { available: 100_00n, posted: 100_00n, reserved: 0n, credited: 100_00n }, "B's challenge holds nothing");
  const a = await appPayment(shopA, payer, 60_00n);
  const doneA = (await payer.api.payer.confirmPayment({ idempotencyKey: key('a'), paymentId: a.id, proof: { case: 'secondCode', value: a.code } })).payment!;
  t.is(doneA.state, PaymentState.SUCCEEDED);
  t.deepEqual(await balance(env, payer.account), { available: 40_00n, posted: 40_00n, reserved: 0n, credited: 100_00n }, "exactly A's amount moved");
  t.is((await shopB.api.payments.getPayment({ paymentId: hog.id })).payment!.state, PaymentState.CHALLENGED, "B's payment still waits");
  // The payer consents to B's after all: the money is no longer there, so it is declined, and nothing moves.
  const late = (await payer.api.payer.confirmPayment({ idempotencyKey: key('b'), paymentId: hog.id, proof: { case: 'secondCode', value: hog.code } })).payment!;
  t.deepEqual([late.state, late.declineReason], [PaymentState.DECLINED, DeclineReason.INSUFFICIENT_FUNDS]);
  t.deepEqual(await balance(env, payer.account), { available: 40_00n, posted: 40_00n, reserved: 0n, credited: 100_00n });
  t.is((await balance(env, shopB.account)).posted, 0n, 'B received nothing');
});

test('finding 2: one merchant opens at most challengesPerPayerMerchantMax challenges per payer per window; other merchants and payers are not affected, frictionless payments not counted', async (t) => {
  const challengesMax = 3;
  const env = await startEnv('grpc-js', 'memory', { challengesPerPayerMerchantMax: challengesMax });
  t.teardown(() => env.close());
  const [payer, otherPayer, shopA, shopB] = await Promise.all([newPayer(env), newPayer(env), newMerchant(env), newMerchant(env)]);
  for (let i = 0; i < challengesMax; i++) await appPayment(shopB, payer, 1_00n);
  const refused = await refusedWith(t, appPayment(shopB, payer, 1_00n), Code.ResourceExhausted);
  t.regex(refused.rawMessage, /too many payments waiting for this payer's proof from this merchant \(limit: 3 per 600 s\)/);
  t.is(reasonOf(refused), 'CHALLENGE_RATE');
  const frictionless = (
    await shopB.api.payments.createPayment({
      idempotencyKey: key('small'),
      payer: { case: 'payerId', value: payer.id },
      amount: 50n,
      currency: 'USD',
      description: 'small',
    })
  ).payment!;
  t.is(frictionless.state, PaymentState.SUCCEEDED, 'below the no-factor threshold: not a challenge, not limited');
  await appPayment(shopA, payer, 1_00n);
  await appPayment(shopB, otherPayer, 1_00n);
  t.pass();
});

const byPhone = (phone: string, idempotencyKey: string, amount = 20_00n) => ({
  idempotencyKey,
  payer: { case: 'payerPhone' as const, value: phone },
  amount,
  currency: 'USD',
  description: 'by phone',
});
const phoneOf = async (env: Env, payer: Payer) => (await env.app.directory.getPayer(payer.id))!.phone;

test('finding 3: an unknown phone is answered like an enrolled one (CHALLENGED, then it expires); phone lookups are limited per merchant', async (t) => {
  const lookupsMax = 4;
  const env = await startEnv('grpc-js', 'memory', { phoneLookupsPerMerchantMax: lookupsMax });
  t.teardown(() => env.close());
  const [payer, shopA, shopB] = await Promise.all([newPayer(env), newMerchant(env), newMerchant(env)]);
  const enrolledPhone = await phoneOf(env, payer);
  const unknownPhone = '+14155550123';
  t.is(await env.app.directory.findPayerByPhone(unknownPhone), undefined);

  const known = (await shopB.api.payments.createPayment(byPhone(enrolledPhone, key('known')))).payment!;
  const unknownKey = key('unknown');
  const unknown = (await shopB.api.payments.createPayment(byPhone(unknownPhone, unknownKey))).payment!;
  const shape = (p: typeof known) => ({
    state: p.state,
    factors: p.requiredFactors,
    attemptsLeft: p.attemptsLeft,
    amount: p.amount,
    lifetime: p.expiresAt!.seconds - p.createdAt!.seconds,
    idLength: p.payerId.length,
  });
  t.deepEqual(shape(unknown), shape(known), 'the same answer for an unknown phone as for an enrolled one');
  t.is(unknown.state, PaymentState.CHALLENGED);
  t.deepEqual(shape((await shopB.api.payments.getPayment({ paymentId: unknown.id })).payment!), shape(known));
  // A retry of the same request, and a create by the payer id it showed, answer alike too.
  t.is((await shopB.api.payments.createPayment(byPhone(unknownPhone, unknownKey))).payment!.id, unknown.id);
  const byId = (
    await shopB.api.payments.createPayment({
      idempotencyKey: key('by-id'),
      payer: { case: 'payerId', value: unknown.payerId },
      amount: 20_00n,
      currency: 'USD',
      description: 'by id',
    })
  ).payment!;
  t.is(byId.state, PaymentState.CHALLENGED, 'its payer id is not an oracle either');
  t.is(byId.payerId, unknown.payerId);
  t.is(
    (await shopB.api.payments.createPayment(byPhone(unknownPhone, key('again')))).payment!.payerId,
    unknown.payerId,
    'the same unknown phone, the same payer id',
  );
  // A random unknown payer id is still NOT_FOUND (ids are 128-bit: nothing to enumerate).
  await refusedWith(
    t,
    shopB.api.payments.createPayment({
      idempotencyKey: key('random-id'),
      payer: { case: 'payerId', value: '0123456789abcdef0123456789abcdef' },
      amount: 20_00n,
      currency: 'USD',
      description: 'x',
    }),
    Code.NotFound,
  );

  // Nothing of it is reserved or sent, and it expires like an unanswered payment.
  const deps = env.app.payments.deps;
  t.is(env.inbox.firstCodeFor(unknown.id), undefined);
  const [record] = await deps.store.get([unknown.id]);
  const later = record!.payment.expiresAtMs + 1;
  const [expired] = await drive({ ...deps, now: () => later }, [record!]);
  t.is(expired!.payment.state, 'EXPIRED');
  // In the ledger it ends as an enrolled payer's unanswered payment does: a voided marker of 0 between platform accounts.
  const [knownRecord] = await deps.store.get([known.id]);
  await drive({ ...deps, now: () => later }, [knownRecord!]);
  const ledgerShape = async (paymentId: string) => {
    const ids = paymentTransferIds(idFromHex(paymentId));
    const found = await deps.ledger.ledger.lookupTransfers([ids.pending, ids.post, ids.void]);
    return found.map((x) => ({ amount: x.amount, code: x.code, flags: x.flags, debit: x.debit_account_id, credit: x.credit_account_id }));
  };
  const shapeOfUnknown = await ledgerShape(unknown.id);
  t.deepEqual(shapeOfUnknown, await ledgerShape(known.id));
  t.deepEqual(
    shapeOfUnknown.map((x) => x.amount),
    [0n, 0n],
    'the marker and its void',
  );
  t.false(
    shapeOfUnknown.some((x) => [x.debit, x.credit].includes(idFromHex(shopB.account))),
    "never on the merchant's account",
  );

  // B has made `lookupsMax` phone lookups (known, unknown, again; the retry was not a new one): one more is allowed, then none.
  await shopB.api.payments.createPayment(byPhone(enrolledPhone, key('fourth')));
  const over = await refusedWith(t, shopB.api.payments.createPayment(byPhone('+14155550124', key('fifth'))), Code.ResourceExhausted);
  t.regex(over.message, /too many payer lookups by phone number/);
  await refusedWith(t, shopB.api.payments.createPayment(byPhone(enrolledPhone, key('sixth'))), Code.ResourceExhausted);
  // Other merchants are not affected.
  t.is((await shopA.api.payments.createPayment(byPhone(enrolledPhone, key('a')))).payment!.state, PaymentState.CHALLENGED);
});

/** Opens a watch on `paymentId` and reads its first message (the snapshot), so the server holds the subscription. */
async function openWatch(merchant: Merchant, paymentId: string, controller: AbortController) {
  const stream = merchant.api.payments.watchPayments({ paymentId }, { signal: controller.signal, timeoutMs: 20_000 })[Symbol.asyncIterator]();
  const first = await stream.next();
  return { stream, first };
}

test('finding 4: one merchant over its watch cap gets RESOURCE_EXHAUSTED; another merchant and the payer still watch and receive events', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shopA, shopB] = await Promise.all([newPayer(env), newMerchant(env), newMerchant(env)]);
  const paymentB = (
    await shopB.api.payments.createPayment({
      idempotencyKey: key('b'),
      payer: { case: 'payerId', value: payer.id },
      amount: 20_00n,
      currency: 'USD',
      description: 'b',
    })
  ).payment!;
  const controller = new AbortController();
  setMaxListeners(4 * watchersPerCallerMax, controller.signal); // one signal for all the test's streams
  t.teardown(() => controller.abort());
  for (let i = 0; i < watchersPerCallerMax; i++) {
    const { first } = await openWatch(shopB, paymentB.id, controller);
    t.is(first.value?.payment?.id, paymentB.id);
  }
  const extra = shopB.api.payments.watchPayments({ paymentId: paymentB.id }, { signal: controller.signal, timeoutMs: 10_000 })[Symbol.asyncIterator]();
  await refusedWith(t, extra.next(), Code.ResourceExhausted);

  // Merchant A and the payer still get their streams, and events on them.
  const watchA = shopA.api.payments.watchPayments({}, { signal: controller.signal, timeoutMs: 20_000 })[Symbol.asyncIterator]();
  const watchPayer = payer.api.payer.watchPendingPayments({}, { signal: controller.signal, timeoutMs: 20_000 })[Symbol.asyncIterator]();
  const payerSnapshot = await watchPayer.next(); // the pending payment of B: the stream is subscribed
  t.is(payerSnapshot.value?.payment?.id, paymentB.id);
  // A's stream sends nothing until a change: wait until the server holds it (its count, not the clock).
  const events = env.app.events;
  const nextA = watchA.next();
  const wanted = watchersPerCallerMax + 2;
  while (events.subscriberCount < wanted) await new Promise<void>((resolve) => setImmediate(resolve));
  const paymentA = (
    await shopA.api.payments.createPayment({
      idempotencyKey: key('a'),
      payer: { case: 'payerId', value: payer.id },
      amount: 20_00n,
      currency: 'USD',
      description: 'a',
    })
  ).payment!;
  t.is((await nextA).value?.payment?.id, paymentA.id, "merchant A's watch received its payment");
  t.is((await watchPayer.next()).value?.payment?.id, paymentA.id, "the payer's watch received it");
});

test('finding 5: a payment that requires SMS_OTP on channel APP sends the code by SMS, and GetChallenge never gives it to the terminal', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env, 500_00n, { oneFactor: Factor.SMS_OTP }), newMerchant(env)]);
  const p = (
    await shop.api.payments.createPayment({
      idempotencyKey: key('app-sms'),
      payer: { case: 'payerId', value: payer.id },
      amount: 20_00n,
      currency: 'USD',
      description: 'app',
      channel: Channel.APP,
    })
  ).payment!;
  t.deepEqual([p.state, p.requiredFactors], [PaymentState.CHALLENGED, [Factor.SMS_OTP]]);
  const sms = env.inbox.firstCodeFor(p.id);
  t.regex(sms ?? '', /^\d{8}$/, 'the code went by SMS');
  const challenge = await payer.api.payer.getChallenge({ paymentId: p.id });
  t.is(challenge.firstCode, '', 'the terminal token cannot obtain the SMS code');
  t.is(challenge.firstCodeDelivery!.channel, Channel.SMS);
  t.regex(challenge.firstCodeDelivery!.destinationMasked, /^\*+\d{4}$/);
  // The payer, who has the phone, types the SMS's code: the payment goes through.
  const done = (await payer.api.payer.confirmPayment({ idempotencyKey: key('otp'), paymentId: p.id, proof: { case: 'smsOtp', value: sms! } })).payment!;
  t.is(done.state, PaymentState.SUCCEEDED);
});

test('finding 7: fees round up with a minimum and never exceed the amount (feeOf)', (t) => {
  t.is(feeOf(66n, 150), 1n, '⌈0.99⌉');
  t.is(feeOf(6600n, 150), 99n);
  t.is(feeOf(6601n, 150), 100n, '⌈99.015⌉');
  t.is(feeOf(1n, 1), feeMinMinorUnits, 'the minimum, clamped to the amount');
  t.is(feeOf(1n, 10_000), 1n, 'never more than the amount');
  t.is(feeOf(3n, 9_999), 3n, '⌈2.9997⌉ = 3 = the amount');
  t.is(feeOf(1_000_000n, 0), 0n, '0 bp: no fee, no minimum');
  t.is(feeOf(2n ** 64n, 1), 2n ** 64n / 10_000n + 1n);
});

test('finding 7: 100 payments of 66 at 150 bp pay 1 each, one of 6600 pays 99; the fee account sums to 199', async (t) => {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env, 500_00n, { noFactorBelow: 1000_00n }), newMerchant(env, 150)]);
  const feeAccount = idToHex(env.app.payments.deps.platform.fees.USD!);
  const feesBefore = (await balance(env, feeAccount)).posted;
  const create = (amount: bigint, k: string) =>
    shop.api.payments.createPayment({ idempotencyKey: k, payer: { case: 'payerId', value: payer.id }, amount, currency: 'USD', description: 'fee' });
  const small = await Promise.all(Array.from({ length: 100 }, (_, i) => create(66n, key(`small-${i}`))));
  t.true(small.every((r) => r.payment!.state === PaymentState.SUCCEEDED));
  t.is((await create(6600n, key('large'))).payment!.state, PaymentState.SUCCEEDED);
  t.is((await balance(env, feeAccount)).posted - feesBefore, 100n * 1n + 99n, 'the platform fee account received 199');
  t.is((await balance(env, shop.account)).posted, 100n * 66n + 6600n - 199n, 'the merchant received the amounts less the fees');
  t.is((await balance(env, payer.account)).posted, 500_00n - (100n * 66n + 6600n), 'the payer paid the amounts only');
});
