import test from 'ava';
import { StoreFullError } from '../../../authz/store/errors.js';
import { MemoryPaymentRepository } from '../../../authz/store/memory-payment-repository.js';
import { payment, paymentRepositoryContract } from './payment-repository.contract.js';

paymentRepositoryContract('memory payments', { open: async () => new MemoryPaymentRepository() });

test('memory payments refuse a new payment beyond paymentsMax, replacing one still works', async (t) => {
  const repo = new MemoryPaymentRepository({ paymentsMax: 2 });
  const [a, b] = [payment(), payment()];
  await repo.putMany([a, b]);
  await t.throwsAsync(repo.put(payment()), { instanceOf: StoreFullError, message: /paymentsMax=2/ });
  await t.throwsAsync(repo.putMany([{ ...a, state: 'SUCCEEDED' }, payment()]), { instanceOf: StoreFullError });
  t.is((await repo.get(a.id))!.state, 'CHALLENGED', 'a refused batch stores nothing');
  await repo.put({ ...a, state: 'SUCCEEDED' });
  t.is((await repo.get(a.id))!.state, 'SUCCEEDED');
});
