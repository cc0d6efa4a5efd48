import test, { type ExecutionContext } from 'ava';
import type { Payment } from '../../authz/model.js';
import { PaymentsService } from '../../authz/payments.js';
import { ChallengeOwners } from '../../authz/steps/challenge-owners.js';
import { balance, key, newMerchant, newPayer, secondCode, startEnv } from '../e2e/harness.js';

function challenged(id: string, state: Payment['state'] = 'CHALLENGED'): Payment {
  return { id, merchantId: 'm', payerId: 'p', state, secretVersion: 3 } as Payment;
}

test('remembers challenged payments only, at most its bound (the oldest forgotten first), and forgets on demand', (t) => {
  const owners = new ChallengeOwners(3);
  owners.remember(challenged('approved', 'APPROVED'));
  t.is(owners.get('approved'), undefined, 'a payment not challenged is not remembered');
  for (const id of ['a', 'b', 'c', 'd']) owners.remember(challenged(id));
  t.is(owners.get('a'), undefined, 'the oldest went first');
  for (const id of ['b', 'c', 'd']) t.deepEqual(owners.get(id), { merchantId: 'm', payerId: 'p', secretVersion: 3 }, `${id} kept`);
  owners.forget('d');
  t.is(owners.get('d'), undefined);
  owners.remember(challenged('e'));
  t.truthy(owners.get('b'), 'a forgotten entry makes room: nothing else goes');
});

/**
 * A server on the memory store with one payer and one merchant; `create` makes a challenged
 * payment of the merchant's through the given service, `rotateInDirectory` is a rotation's
 * directory write without its closing step (the process died in between).
 */
async function merchantAndPayer(t: ExecutionContext) {
  const env = await startEnv('grpc-js', 'memory');
  t.teardown(() => env.close());
  const [payer, shop] = await Promise.all([newPayer(env), newMerchant(env)]);
  const app = env.app;
  const merchant = (await app.directory.getMerchant(shop.id))!;
  const caller = { kind: 'merchant' as const, merchantId: shop.id };
  const create = (service: PaymentsService, amount: bigint) =>
    service.create(merchant, {
      idempotencyKey: key('c'),
      payerId: payer.id,
      payeeAccountId: '',
      amount,
      currency: 'USD',
      description: '',
      channel: 'MERCHANT',
      requestedFactors: [],
    });
  const rotateInDirectory = async () => {
    const record = (await app.directory.getPayer(payer.id))!;
    await app.directory.putPayer({ ...record, secretVersion: record.secretVersion + 1 });
  };
  return { env, app, payer, caller, create, rotateInDirectory };
}

/**
 * The secret-version check on a merchant's second code has two paths: the owner this process
 * remembered at create (no read), and a read of the record (another process made the payment).
 * Both decline a payment challenged under an older secret and accept one under the current.
 */
test('a merchant’s second code is checked against the payer’s secret version whether or not this process challenged the payment', async (t) => {
  const { env, app, payer, caller, create, rotateInDirectory } = await merchantAndPayer(t);
  const confirm = (service: PaymentsService, p: Payment) =>
    service.confirm(caller, p.id, key('k'), { kind: 'second_code', secondCode: secondCode(payer, env.inbox.firstCodeFor(p.id)!, p.amount, p.payeeAccountId) });
  // "Another process": a second service over the same store, ledger and directory, with its own (empty) memory.
  const other = new PaymentsService(app.payments.deps);
  // Which path a confirm took: the store reads it made.
  const store = app.payments.deps.store;
  const get = store.get.bind(store);
  let reads = 0;
  store.get = (ids) => ((reads += ids.length), get(ids));
  const readsBy = async <T>(work: Promise<T>) => {
    const before = reads;
    const value = await work.catch((error: unknown) => error);
    return { value, reads: reads - before };
  };

  const fine = await create(app.payments, 10_00n);
  const viaRead = await readsBy(confirm(other, fine));
  t.deepEqual([(viaRead.value as Payment).state, viaRead.reads], ['SUCCEEDED', 1], 'read path, current secret: accepted');
  const own = await create(app.payments, 11_00n);
  const remembered0 = await readsBy(confirm(app.payments, own));
  t.deepEqual([(remembered0.value as Payment).state, remembered0.reads], ['SUCCEEDED', 0], 'remembered path (no read), current secret: accepted');

  const [remembered, read] = [await create(app.payments, 12_00n), await create(app.payments, 13_00n)];
  await rotateInDirectory();
  for (const [service, p, path] of [
    [app.payments, remembered, 'remembered'],
    [other, read, 'read'],
  ] as const) {
    const refused = await readsBy(confirm(service, p));
    t.is((refused.value as { details?: { reason?: string } }).details?.reason, 'SECRET_ROTATED', `${path} path: refused`);
    t.is(refused.reads, 1, 'a payment challenged under an older secret is read, whichever path, so its state decides');
    t.deepEqual([(await app.payments.get(caller, p.id)).state, (await app.payments.get(caller, p.id)).declineReason], ['DECLINED', 'SECRET_ROTATED']);
  }
  t.is((await balance(env, payer.account)).posted, 500_00n - 21_00n, 'only the two accepted payments moved money');
});

/**
 * Found by the reliability fuzz: a malformed second code on a payment this process challenged
 * under an older secret and that was already closed was answered FAILED_PRECONDITION
 * (SECRET_ROTATED) from the remembered owner, and INVALID_ARGUMENT on its retry (the owner
 * forgotten, the record read). Such a payment is now read first: INVALID_ARGUMENT both times.
 */
test('a malformed second code on a closed payment challenged under an older secret is INVALID_ARGUMENT, and so is its retry', async (t) => {
  const { app, caller, create, rotateInDirectory } = await merchantAndPayer(t);
  const p = await create(app.payments, 5_00n);
  t.is((await app.payments.refuse(caller, p.id, key('cancel'), 'changed my mind')).state, 'CANCELLED');
  await rotateInDirectory();
  const k = key('bad');
  for (const attempt of ['first', 'retry']) {
    const error = await t.throwsAsync(app.payments.confirm(caller, p.id, k, { kind: 'second_code', secondCode: ' 12345678' }));
    t.deepEqual([(error as { kind?: string }).kind, error.message], ['invalid_argument', 'second_code must be 8 digits'], attempt);
  }
});
