import { Code, ConnectError } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { reconcile } from '../../authz/reconcile.js';
import { Channel, DeclineReason, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { ErrorInfoSchema } from '../../services/rpc/status-details.js';
import { balance, type ClientKind, type Env, key, newMerchant, newPayer, type Payer, type StoreKind, secondCode, shortCodeTtlMs, startEnv } from './harness.js';

type Scenario = (t: ExecutionContext, env: Env, secrets: Set<string>) => Promise<void>;

/** The call fails with `code`; returns the ErrorInfo metadata (attempts_left, reason, …). */
async function refused(t: ExecutionContext, call: Promise<unknown>, code: Code, message?: RegExp): Promise<Record<string, string>> {
  const error = await t.throwsAsync(call);
  const e = ConnectError.from(error);
  t.is(Code[e.code], Code[code], `expected ${Code[code]}, got ${Code[e.code]}: ${e.rawMessage}`);
  if (message !== undefined) t.regex(e.rawMessage, message);
  const info = e.findDetails(ErrorInfoSchema)[0] as { reason?: string; metadata?: Record<string, string> } | undefined;
  return { ...(info?.metadata ?? {}), ...(info?.reason === undefined ? {} : { reason: info.reason }) };
}

function firstCodeOf(env: Env, paymentId: string, secrets: Set<string>): string {
  const code = env.inbox.firstCodeFor(paymentId);
  if (code === undefined) throw new Error(`no first code delivered for ${paymentId}`);
  secrets.add(code);
  return code;
}

async function challenged(t: ExecutionContext, _env: Env, payer: Payer, merchantKeyed: Awaited<ReturnType<typeof newMerchant>>, amount: bigint) {
  const r = await merchantKeyed.api.payments.createPayment({
    idempotencyKey: key('order'),
    payer: { case: 'payerId', value: payer.id },
    amount,
    currency: 'USD',
    description: 'test',
  });
  t.is(r.payment!.state, PaymentState.CHALLENGED);
  return r.payment!;
}

const scenarios: Record<string, Scenario> = {
  async 'a correct second code approves and posts once; reusing it is refused'(t, env, secrets) {
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const p = await challenged(t, env, payer, shop, 25_00n);
    t.deepEqual(
      await balance(env, payer.account),
      { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n },
      'nothing held before the payer consents',
    );
    const code = secondCode(payer, firstCodeOf(env, p.id, secrets), 25_00n, shop.account);
    secrets.add(code);
    const ok = await payer.api.payer.confirmPayment({ idempotencyKey: key('c'), paymentId: p.id, proof: { case: 'secondCode', value: code } });
    t.is(ok.payment!.state, PaymentState.SUCCEEDED);
    t.deepEqual(ok.payment!.satisfiedFactors, [Factor.SECOND_CODE]);
    await refused(
      t,
      payer.api.payer.confirmPayment({ idempotencyKey: key('c'), paymentId: p.id, proof: { case: 'secondCode', value: code } }),
      Code.FailedPrecondition,
      /SUCCEEDED/,
    );
    t.deepEqual(await balance(env, payer.account), { available: 475_00n, posted: 475_00n, reserved: 0n, credited: 500_00n });
    t.is((await balance(env, shop.account)).posted, 25_00n - 25n, 'merchant got the amount less its 1% fee');
  },

  async '5 wrong codes decline the payment and release the funds; then the payer is locked out'(t, env, secrets) {
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const p = await challenged(t, env, payer, shop, 40_00n);
    const right = secondCode(payer, firstCodeOf(env, p.id, secrets), 40_00n, shop.account);
    const wrong = right === '12345678' ? '87654321' : '12345678';
    for (const left of ['4', '3', '2', '1']) {
      const info = await refused(
        t,
        payer.api.payer.confirmPayment({ idempotencyKey: key('w'), paymentId: p.id, proof: { case: 'secondCode', value: wrong } }),
        Code.PermissionDenied,
      );
      t.is(info.attempts_left, left);
    }
    await refused(
      t,
      payer.api.payer.confirmPayment({ idempotencyKey: key('w'), paymentId: p.id, proof: { case: 'secondCode', value: wrong } }),
      Code.ResourceExhausted,
    );
    const declined = (await shop.api.payments.getPayment({ paymentId: p.id })).payment!;
    t.is(declined.state, PaymentState.DECLINED);
    t.is(declined.declineReason, DeclineReason.ATTEMPTS_EXHAUSTED);
    t.deepEqual(await balance(env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n });
    // Locked out: even the right code for a new payment is refused, and that payment is declined too.
    const q = await challenged(t, env, payer, shop, 10_00n);
    const qCode = secondCode(payer, firstCodeOf(env, q.id, secrets), 10_00n, shop.account);
    const info = await refused(
      t,
      payer.api.payer.confirmPayment({ idempotencyKey: key('l'), paymentId: q.id, proof: { case: 'secondCode', value: qCode } }),
      Code.ResourceExhausted,
      /locked out/,
    );
    t.is(info.reason, 'LOCKED_OUT');
    t.true(Number(info.retry_after_ms) > 0);
    t.is((await shop.api.payments.getPayment({ paymentId: q.id })).payment!.state, PaymentState.DECLINED);
    t.deepEqual(await balance(env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n });
  },

  async 'an expired challenge releases the funds and its code no longer works'(t, shared, secrets) {
    const env = await startEnv(shared.client, shared.store, { codeTtlMs: shortCodeTtlMs });
    t.teardown(() => env.close());
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const p = await challenged(t, env, payer, shop, 15_00n);
    const code = secondCode(payer, firstCodeOf(env, p.id, secrets), 15_00n, shop.account);
    await new Promise((resolve) => setTimeout(resolve, shortCodeTtlMs + 600));
    t.is((await shop.api.payments.getPayment({ paymentId: p.id })).payment!.state, PaymentState.EXPIRED);
    t.deepEqual(await balance(env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n });
    await refused(
      t,
      payer.api.payer.confirmPayment({ idempotencyKey: key('e'), paymentId: p.id, proof: { case: 'secondCode', value: code } }),
      Code.FailedPrecondition,
      /EXPIRED/,
    );
  },

  async 'a code computed for another amount or payee does not approve'(t, env, secrets) {
    const [payer, shop, other] = await Promise.all([newPayer(env), newMerchant(env), newMerchant(env)]);
    const p = await challenged(t, env, payer, shop, 30_00n);
    const first = firstCodeOf(env, p.id, secrets);
    const confirm = (value: string, idempotencyKey = key('a')) =>
      payer.api.payer.confirmPayment({ idempotencyKey, paymentId: p.id, proof: { case: 'secondCode', value } });
    const retried = key('a');
    t.is((await refused(t, confirm(secondCode(payer, first, 30_01n, shop.account), retried), Code.PermissionDenied)).attempts_left, '4');
    t.is(
      (await refused(t, confirm(secondCode(payer, first, 30_01n, shop.account), retried), Code.PermissionDenied)).attempts_left,
      '4',
      'a retry with the same key replays the refusal without counting another attempt',
    );
    t.is((await refused(t, confirm(secondCode(payer, first, 30_00n, other.account)), Code.PermissionDenied)).attempts_left, '3');
    t.is((await refused(t, confirm(secondCode(payer, first, 30_00n, shop.account, 'EUR')), Code.PermissionDenied)).attempts_left, '2');
    t.is((await confirm(secondCode(payer, first, 30_00n, shop.account))).payment!.state, PaymentState.SUCCEEDED);
    t.is((await balance(env, payer.account)).posted, 470_00n);
  },

  async 'the same idempotency key returns the same payment; a different request with it is ALREADY_EXISTS'(t, env) {
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const request = { idempotencyKey: key('idem'), payer: { case: 'payerId' as const, value: payer.id }, amount: 12_00n, currency: 'USD', description: 'once' };
    // Two at once: the key names the payment from its first claim, so both get the same one.
    const [a, b] = await Promise.all([shop.api.payments.createPayment(request), shop.api.payments.createPayment(request)]);
    const c = await shop.api.payments.createPayment(request);
    t.is(b.payment!.id, a.payment!.id);
    t.is(c.payment!.id, a.payment!.id);
    const made = async () => (await shop.api.payments.listPayments({})).payments.map((p) => p.id);
    t.deepEqual(await made(), [a.payment!.id], 'one payment');
    await refused(t, shop.api.payments.createPayment({ ...request, amount: 13_00n }), Code.AlreadyExists);
    t.deepEqual(await made(), [a.payment!.id]);
  },

  async 'M1c: the merchant submitting wrong codes meets the same attempts and lockout as the payer'(t, env, secrets) {
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const p = await challenged(t, env, payer, shop, 30_00n);
    const right = secondCode(payer, firstCodeOf(env, p.id, secrets), 30_00n, shop.account);
    const wrong = right === '12345678' ? '87654321' : '12345678';
    const asMerchant = (paymentId: string, code: string) =>
      shop.api.payments.confirmPaymentAsMerchant({ idempotencyKey: key('m1c'), paymentId, secondCode: code });
    for (const left of ['4', '3', '2', '1']) t.is((await refused(t, asMerchant(p.id, wrong), Code.PermissionDenied)).attempts_left, left);
    await refused(t, asMerchant(p.id, wrong), Code.ResourceExhausted);
    await refused(t, asMerchant(p.id, right), Code.FailedPrecondition, /DECLINED/);
    t.deepEqual(await balance(env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n });
    // The payer is now locked out on every path, the merchant's included.
    const q = await challenged(t, env, payer, shop, 10_00n);
    const qCode = secondCode(payer, firstCodeOf(env, q.id, secrets), 10_00n, shop.account);
    t.is((await refused(t, asMerchant(q.id, qCode), Code.ResourceExhausted)).reason, 'LOCKED_OUT');
    t.is((await balance(env, payer.account)).posted, 500_00n);
  },

  async 'another merchant or payer cannot see or act on a payment'(t, env, secrets) {
    const [payer, stranger, shop, rival] = await Promise.all([newPayer(env), newPayer(env), newMerchant(env), newMerchant(env)]);
    const p = await challenged(t, env, payer, shop, 20_00n);
    const code = secondCode(payer, firstCodeOf(env, p.id, secrets), 20_00n, shop.account);
    await refused(t, rival.api.payments.getPayment({ paymentId: p.id }), Code.NotFound);
    await refused(t, rival.api.payments.cancelPayment({ idempotencyKey: key('x'), paymentId: p.id }), Code.NotFound);
    await refused(t, rival.api.payments.confirmPaymentAsMerchant({ idempotencyKey: key('x'), paymentId: p.id, secondCode: code }), Code.NotFound);
    await refused(
      t,
      stranger.api.payer.confirmPayment({ idempotencyKey: key('x'), paymentId: p.id, proof: { case: 'secondCode', value: code } }),
      Code.NotFound,
    );
    await refused(t, stranger.api.payer.getChallenge({ paymentId: p.id }), Code.NotFound);
    await refused(t, rival.api.ledger.getAccount({ accountId: payer.account }), Code.NotFound);
    t.false((await rival.api.payments.listPayments({})).payments.some((x) => x.id === p.id));
    // M1c: the payment's own merchant may submit the payer's second code.
    const done = await shop.api.payments.confirmPaymentAsMerchant({ idempotencyKey: key('m'), paymentId: p.id, secondCode: code });
    t.is(done.payment!.state, PaymentState.SUCCEEDED);
  },

  async 'first code + PIN (M1a) approves with the right PIN only'(t, env, secrets) {
    const [payer, shop] = await Promise.all([newPayer(env, 500_00n, { oneFactor: Factor.FIRST_CODE_AND_PIN }), newMerchant(env)]);
    await env.admin.enrollment.setPin({ idempotencyKey: key('pin'), payerId: payer.id, pin: '4821' });
    secrets.add('4821');
    const p = await challenged(t, env, payer, shop, 18_00n);
    t.deepEqual(p.requiredFactors, [Factor.FIRST_CODE_AND_PIN]);
    const first = firstCodeOf(env, p.id, secrets);
    const confirm = (firstCode: string, pin: string) =>
      payer.api.payer.confirmPayment({ idempotencyKey: key('p'), paymentId: p.id, proof: { case: 'firstCodeAndPin', value: { firstCode, pin } } });
    t.is((await refused(t, confirm(first, '1111'), Code.PermissionDenied)).attempts_left, '4');
    t.is((await refused(t, confirm(first === '00000000' ? '00000001' : '00000000', '4821'), Code.PermissionDenied)).attempts_left, '3');
    t.is((await confirm(first, '4821')).payment!.state, PaymentState.SUCCEEDED);
    t.is((await balance(env, payer.account)).posted, 482_00n);
  },

  async 'policy thresholds: nothing below X, one factor up to Y, more above'(t, env) {
    const [payer, shop] = await Promise.all([newPayer(env, 5000_00n), newMerchant(env)]);
    const create = (amount: bigint, extra: Factor[] = []) =>
      shop.api.payments.createPayment({
        idempotencyKey: key('pol'),
        payer: { case: 'payerId', value: payer.id },
        amount,
        currency: 'USD',
        description: '',
        requestedFactors: extra,
      });
    const small = (await create(50n)).payment!;
    t.is(small.state, PaymentState.SUCCEEDED);
    t.deepEqual(small.requiredFactors, []);
    t.deepEqual((await create(1000_00n)).payment!.requiredFactors, [Factor.SECOND_CODE]);
    // Above the threshold the PIN is needed too: refused while the payer has none, before anything is reserved.
    t.is((await refused(t, create(1000_01n), Code.FailedPrecondition, /PIN or password/)).reason, 'PAYER_SECRET_NOT_SET');
    await env.admin.enrollment.setPin({ idempotencyKey: key('pin'), payerId: payer.id, pin: '1357' });
    t.deepEqual((await create(1000_01n)).payment!.requiredFactors, [Factor.SECOND_CODE, Factor.FIRST_CODE_AND_PIN]);
    t.deepEqual((await create(60n, [Factor.SECOND_CODE])).payment!.requiredFactors, [Factor.SECOND_CODE], 'a merchant may ask for more');
    const b = await balance(env, payer.account);
    t.deepEqual([b.posted, b.reserved], [5000_00n - 50n, 0n], 'the small one posted; the challenged ones hold nothing');
    // The merchant's per-payment limit: above it, declined by policy before anything is reserved.
    const capped = await newMerchant(env, 0, 100_00n);
    const denied = { idempotencyKey: key('cap'), payer: { case: 'payerId' as const, value: payer.id }, amount: 100_01n, currency: 'USD', description: '' };
    t.is((await refused(t, capped.api.payments.createPayment(denied), Code.FailedPrecondition, /per-payment limit/)).reason, 'POLICY_DENIED');
    t.is((await capped.api.payments.createPayment({ ...denied, idempotencyKey: key('cap'), amount: 100_00n })).payment!.state, PaymentState.CHALLENGED);
    t.is(
      (await shop.api.payments.listPayments({})).payments.length + (await capped.api.payments.listPayments({})).payments.length,
      6,
      'the refused one (PIN missing) recorded nothing',
    );
  },

  async 'batch create and batch confirm report each item on its own'(t, env, secrets) {
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const item = (amount: bigint, payerId = payer.id) => ({
      idempotencyKey: key('b'),
      payer: { case: 'payerId' as const, value: payerId },
      amount,
      currency: 'USD',
      description: '',
    });
    const created = await shop.api.payments.batchCreatePayments({
      idempotencyKey: key('batch'),
      items: [item(50n), item(20_00n), item(5_00n, 'f'.repeat(32)), item(0n)],
    });
    t.deepEqual(
      created.results.map((r) => r.outcome.case),
      ['payment', 'payment', 'error', 'error'],
    );
    const [frictionless, challengedItem, unknown, zero] = created.results;
    t.is(frictionless!.outcome.case === 'payment' && frictionless!.outcome.value.state, PaymentState.SUCCEEDED);
    t.is(unknown!.outcome.case === 'error' && unknown!.outcome.value.code, Code.NotFound);
    t.is(zero!.outcome.case === 'error' && zero!.outcome.value.code, Code.InvalidArgument);
    const id = challengedItem!.outcome.case === 'payment' ? challengedItem!.outcome.value.id : '';
    const code = secondCode(payer, firstCodeOf(env, id, secrets), 20_00n, shop.account);
    const confirmed = await shop.api.payments.batchConfirmPayments({
      idempotencyKey: key('batch'),
      items: [
        { idempotencyKey: key('bc'), paymentId: id, secondCode: code },
        { idempotencyKey: key('bc'), paymentId: '0'.repeat(32), secondCode: code },
      ],
    });
    t.is(confirmed.results[0]!.outcome.case === 'payment' && confirmed.results[0]!.outcome.value.state, PaymentState.SUCCEEDED);
    t.is(confirmed.results[1]!.outcome.case === 'error' && confirmed.results[1]!.outcome.value.code, Code.NotFound);
    t.is((await balance(env, payer.account)).posted, 500_00n - 50n - 20_00n);
    await refused(
      t,
      shop.api.payments.batchCreatePayments({ idempotencyKey: key('batch'), items: Array.from({ length: 1001 }, () => item(1n)) }),
      Code.InvalidArgument,
      /at most 1000/,
    );
    await refused(
      t,
      shop.api.payments.batchConfirmPayments({ idempotencyKey: '', items: [{ idempotencyKey: key('bc'), paymentId: id, secondCode: code }] }),
      Code.InvalidArgument,
      /idempotency_key/,
    );
  },

  async 'a batch of payments without factors is posted together: each succeeds or is declined for funds on its own, and answers the same on retry'(t, env) {
    const [payer, shop] = await Promise.all([newPayer(env, 2_50n), newMerchant(env, 0)]);
    const item = (amount: bigint) => ({
      idempotencyKey: key('fl'),
      payer: { case: 'payerId' as const, value: payer.id },
      amount,
      currency: 'USD',
      description: '',
    });
    // Six of 0.99 (no factor below 1.00) against 2.50 of funds, and one challenged in the same batch.
    const items = [...Array.from({ length: 6 }, () => item(99n)), item(20_00n)];
    const request = { idempotencyKey: key('batch'), items };
    const first = await shop.api.payments.batchCreatePayments(request);
    const summary = (r: typeof first) =>
      r.results.map((x) => (x.outcome.case === 'payment' ? PaymentState[x.outcome.value.state] : `${Code[x.outcome.value!.code]}`));
    const answers = summary(first);
    t.deepEqual(
      [...answers.slice(0, 6)].sort(),
      ['FailedPrecondition', 'FailedPrecondition', 'FailedPrecondition', 'FailedPrecondition', 'SUCCEEDED', 'SUCCEEDED'],
      'two fit in the funds, four are declined for them',
    );
    t.is(answers[6], 'CHALLENGED', 'the challenged one holds nothing and waits for its payer');
    for (const r of first.results.slice(0, 6)) if (r.outcome.case === 'error') t.regex(r.outcome.value.message, /insufficient funds/);
    t.deepEqual(await balance(env, payer.account), { available: 2_50n - 2n * 99n, posted: 2_50n - 2n * 99n, reserved: 0n, credited: 2_50n });
    t.is((await balance(env, shop.account)).posted, 2n * 99n, 'the merchant received the two (no fee)');
    const again = await shop.api.payments.batchCreatePayments(request);
    t.deepEqual(summary(again), answers, 'the retry answers each item as the first call did');
    t.deepEqual(
      again.results.map((r) => (r.outcome.case === 'payment' ? r.outcome.value.id : '')),
      first.results.map((r) => (r.outcome.case === 'payment' ? r.outcome.value.id : '')),
    );
    t.is((await balance(env, payer.account)).posted, 2_50n - 2n * 99n, 'posted once');
  },

  async 'bad input and bad callers get precise statuses and move no money'(t, env, secrets) {
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const base = { idempotencyKey: key('bad'), payer: { case: 'payerId' as const, value: payer.id }, amount: 10_00n, currency: 'USD', description: '' };
    await refused(t, shop.api.payments.createPayment({ ...base, amount: 0n }), Code.InvalidArgument, /amount/);
    await refused(t, shop.api.payments.createPayment({ ...base, currency: 'XXX' }), Code.InvalidArgument, /currency/);
    await refused(t, shop.api.payments.createPayment({ ...base, idempotencyKey: '' }), Code.InvalidArgument, /idempotency_key/);
    await refused(t, shop.api.payments.createPayment({ ...base, description: 'x'.repeat(201) }), Code.InvalidArgument, /description/);
    await refused(t, shop.api.payments.createPayment({ ...base, payer: { case: 'payerPhone', value: '555-1234' } }), Code.InvalidArgument, /E\.164/);
    await refused(t, shop.api.payments.getPayment({ paymentId: 'not-an-id' }), Code.InvalidArgument);
    await refused(t, shop.api.payments.createPayment({ ...base, payer: { case: 'payerId', value: 'e'.repeat(32) } }), Code.NotFound, /payer/);
    await refused(t, shop.api.payments.getPayment({ paymentId: 'e'.repeat(32) }), Code.NotFound);
    // More than the payer has: created (a challenge holds nothing), then declined for funds when the payer consents.
    const tooMuch = await challenged(t, env, payer, shop, 501_00n);
    const code = secondCode(payer, firstCodeOf(env, tooMuch.id, secrets), 501_00n, shop.account);
    secrets.add(code);
    const late = (await payer.api.payer.confirmPayment({ idempotencyKey: key('c'), paymentId: tooMuch.id, proof: { case: 'secondCode', value: code } }))
      .payment!;
    t.deepEqual([late.state, late.declineReason], [PaymentState.DECLINED, DeclineReason.INSUFFICIENT_FUNDS]);
    await refused(t, payer.api.payments.createPayment(base), Code.PermissionDenied, /merchant credentials/);
    await refused(t, env.clients('cs_live_forged').payments.getPayment({ paymentId: 'e'.repeat(32) }), Code.Unauthenticated);
    await refused(t, env.clients('').payments.getPayment({ paymentId: 'e'.repeat(32) }), Code.Unauthenticated);
    const frictionless = await shop.api.payments.createPayment({ ...base, idempotencyKey: key('ok'), amount: 50n });
    await refused(t, shop.api.payments.cancelPayment({ idempotencyKey: key('cx'), paymentId: frictionless.payment!.id }), Code.FailedPrecondition, /SUCCEEDED/);
    t.deepEqual(await balance(env, payer.account), { available: 500_00n - 50n, posted: 500_00n - 50n, reserved: 0n, credited: 500_00n });
  },

  async 'cancel and decline close the payment and move no money'(t, env) {
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const a = await challenged(t, env, payer, shop, 70_00n);
    const b = await challenged(t, env, payer, shop, 80_00n);
    t.is(
      (await shop.api.payments.cancelPayment({ idempotencyKey: key('cancel'), paymentId: a.id, reason: 'out of stock' })).payment!.state,
      PaymentState.CANCELLED,
    );
    const declined = (await payer.api.payer.declinePayment({ idempotencyKey: key('decline'), paymentId: b.id, reason: 'not me' })).payment!;
    t.deepEqual([declined.state, declined.declineReason], [PaymentState.DECLINED, DeclineReason.PAYER_DECLINED]);
    t.deepEqual(await balance(env, payer.account), { available: 500_00n, posted: 500_00n, reserved: 0n, credited: 500_00n });
  },

  async 'the payer terminal fetches its first code (channel APP) and the watch stream follows the payment'(t, env, secrets) {
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const r = await shop.api.payments.createPayment({
      idempotencyKey: key('app'),
      payer: { case: 'payerId', value: payer.id },
      amount: 9_99n,
      currency: 'USD',
      description: 'app',
      channel: Channel.APP,
    });
    const id = r.payment!.id;
    t.is(env.inbox.firstCodeFor(id), undefined, 'not sent to a notifier: the terminal fetches it');
    const controller = new AbortController();
    const seen: PaymentState[] = [];
    const watching = (async () => {
      for await (const m of shop.api.payments.watchPayments({ paymentId: id }, { signal: controller.signal })) {
        seen.push(m.payment!.state);
        if (m.payment!.state === PaymentState.SUCCEEDED) controller.abort();
      }
    })().catch((e: unknown) => (controller.signal.aborted ? undefined : Promise.reject(e)));
    const challenge = await payer.api.payer.getChallenge({ paymentId: id });
    t.is(challenge.firstCode.length, 8);
    secrets.add(challenge.firstCode);
    t.deepEqual([challenge.amount, challenge.currency, challenge.payeeAccountId, challenge.attemptsLeft], [9_99n, 'USD', shop.account, 5]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const code = secondCode(payer, challenge.firstCode, challenge.amount, challenge.payeeAccountId);
    await payer.api.payer.confirmPayment({ idempotencyKey: key('app'), paymentId: id, proof: { case: 'secondCode', value: code } });
    await watching;
    t.deepEqual(seen, [PaymentState.CHALLENGED, PaymentState.APPROVED, PaymentState.SUCCEEDED]);
    t.is((await payer.api.payer.getChallenge({ paymentId: id })).firstCode, '', 'no first code once answered');
  },

  async 'reconcile rebuilds payment states from the ledger'(t, env, secrets) {
    const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
    const paid = await challenged(t, env, payer, shop, 11_00n);
    await payer.api.payer.confirmPayment({
      idempotencyKey: key('r'),
      paymentId: paid.id,
      proof: { case: 'secondCode', value: secondCode(payer, firstCodeOf(env, paid.id, secrets), 11_00n, shop.account) },
    });
    const voided = await challenged(t, env, payer, shop, 12_00n);
    await shop.api.payments.cancelPayment({ idempotencyKey: key('r'), paymentId: voided.id });
    // A crash that lost the last state writes: both records still say CHALLENGED.
    for (const id of [paid.id, voided.id]) {
      const record = (await env.app.payments.record(id))!;
      const [rewound] = await env.app.store.commit([
        { paymentId: id, expectVersion: record.version, payment: { ...record.payment, state: 'CHALLENGED' }, dueAtMs: null, nowMs: Date.now() },
      ]);
      t.is(rewound!.outcome, 'committed');
    }
    const report = await reconcile(env.app.payments.deps);
    t.true((report.changed['CHALLENGED→SUCCEEDED'] ?? 0) >= 1 && (report.changed['CHALLENGED→DECLINED'] ?? 0) >= 1, JSON.stringify(report));
    t.is((await shop.api.payments.getPayment({ paymentId: paid.id })).payment!.state, PaymentState.SUCCEEDED);
    t.is((await shop.api.payments.getPayment({ paymentId: voided.id })).payment!.state, PaymentState.DECLINED);
  },
};

/** Registers every scenario against one environment, plus the final scan of the logs for secrets. */
export function registerScenarios(client: ClientKind, store: StoreKind): void {
  let opened: Promise<Env> | undefined;
  const env = () => (opened ??= startEnv(client, store));
  const secrets = new Set<string>();
  const done: Promise<unknown>[] = [];
  for (const [title, run] of Object.entries(scenarios)) {
    let finish!: () => void;
    done.push(new Promise<void>((resolve) => (finish = resolve)));
    test(`${client} client, ${store} store: ${title}`, async (t) => {
      try {
        await run(t, await env(), secrets);
      } finally {
        finish();
      }
    });
  }
  test(`${client} client, ${store} store: no code, PIN, secret or credential appears in the logs`, async (t) => {
    await Promise.all(done);
    const e = await env();
    t.true(e.logs.length > 50, `the service logged its RPCs (${e.logs.length} lines)`);
    t.true(secrets.size > 10, `secrets were collected (${secrets.size})`);
    const text = e.logs.join('\n');
    // A secret of digits only (a 4-digit PIN, an 8-digit code) counts where it stands as a number of
    // its own: inside a longer number (a timestamp, the decimals of a duration) it is a coincidence.
    const appears = (s: string) => (/^[0-9]+$/.test(s) ? new RegExp(`(?<![0-9.])${s}(?![0-9.])`).test(text) : text.includes(s));
    const leaked = [...secrets].filter(appears);
    t.deepEqual(leaked, []);
    t.false(text.includes(e.app.adminKey));
  });
  test.after.always(async () => {
    if (opened !== undefined) await (await opened).close();
  });
}
