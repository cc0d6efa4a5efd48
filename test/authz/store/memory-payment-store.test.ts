import test from 'ava';
import { MemoryPaymentStore } from '../../../authz/store/memory/memory-store.js';
import { rateCounterKey } from '../../../authz/store/memory/state.js';
import { rateWindowOf, StoreFullError } from '../../../authz/store/port.js';
import { confirmItem, createItem, draft, paymentStoreContract, quietLockout, wrong } from './payment-store.contract.js';

paymentStoreContract('memory store', { open: async ({ lockout }) => new MemoryPaymentStore({ lockout }) });

// The bounds of the embedded store: what a full store refuses, it refuses before changing anything.

test('memory store: a confirm refused by a full store counts no attempt', async (t) => {
  const store = new MemoryPaymentStore({ lockout: quietLockout, entriesMax: 3 });
  const t0 = Date.now();
  const d = draft(t0);
  await store.create([createItem(d)]); // entries: the create's key
  t.is((await store.confirm([confirmItem(d.payment, t0 + 1, { answer: wrong })]))[0]?.outcome, 'mismatch'); // + the payer's guard + the key: full
  const counted = (await store.get([d.payment.id]))[0];
  t.is(counted?.payment.attemptsLeft, 4);
  for (let i = 0; i < 3; i++) await t.throwsAsync(() => store.confirm([confirmItem(d.payment, t0 + 2, { answer: wrong })]), { instanceOf: StoreFullError });
  t.deepEqual(await store.get([d.payment.id]), [counted], 'the refused attempts were not counted');
});

test('memory store: a create refused by a full store counts no rate limit', async (t) => {
  const store = new MemoryPaymentStore({ lockout: quietLockout, paymentsMax: 1 });
  const t0 = Date.now();
  const limits = [{ key: 'rate-full', limit: 5, windowMs: 60_000 }];
  t.is((await store.create([createItem(draft(t0), t0, { rateLimits: limits })]))[0]?.outcome, 'created');
  for (let i = 0; i < 3; i++) await t.throwsAsync(() => store.create([createItem(draft(t0), t0, { rateLimits: limits })]), { instanceOf: StoreFullError });
  t.is(store.state.counters.get(rateCounterKey('rate-full', rateWindowOf(t0, 60_000)))?.count, 1, 'the refused creates did not count');
});
