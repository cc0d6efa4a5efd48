import test from 'ava';
import { EmbeddedLedger } from '../../ledger/embedded/engine.js';
import { type Expiry, ExpiryQueue } from '../../ledger/embedded/expiry-queue.js';
import { account, TransferFlags, transfer } from '../../ledger/model.js';
import { manualClock, prng } from './fixtures/workload.js';

test('the expiry queue pops in expiry order and compaction keeps only live entries', (t) => {
  const live = new Set<number>();
  const queue = new ExpiryQueue((e) => live.has(e.slot));
  const random = prng(5);
  const pushed: Expiry[] = [];
  for (let slot = 0; slot < 20_000; slot++) {
    const e = { expiresAt: (1n << 62n) + BigInt(Math.floor(random() * 1e12)), slot };
    queue.push(e);
    pushed.push(e);
    if (slot % 10 === 0) live.add(slot); // the other nine in ten were resolved meanwhile
    if (slot % 1000 === 999) queue.compactIfDoubled();
  }
  t.true(queue.size < 2 * live.size + 4096, `${queue.size} entries for ${live.size} live`);
  const popped: Expiry[] = [];
  for (let e = queue.pop(); e !== undefined; e = queue.pop()) popped.push(e);
  const expected = pushed.filter((e) => live.has(e.slot)).sort((a, b) => (a.expiresAt < b.expiresAt ? -1 : a.expiresAt > b.expiresAt ? 1 : 0));
  t.deepEqual(
    popped.filter((e) => live.has(e.slot)),
    expected,
  );
  t.true(popped.every((e, i) => i === 0 || popped[i - 1]!.expiresAt <= e.expiresAt));
});

test('a pending transfer whose void was rolled back with its chain still expires on time', async (t) => {
  const clock = manualClock();
  const ledger = await EmbeddedLedger.open({ clockNs: clock.now });
  t.teardown(() => ledger.close());
  await ledger.createAccounts([account({ id: 1n, ledger: 1, code: 1 }), account({ id: 2n, ledger: 1, code: 1 })]);
  const hold = (id: bigint, timeout: number) =>
    transfer({ id, debit_account_id: 1n, credit_account_id: 2n, amount: 1n, ledger: 1, code: 1, flags: TransferFlags.pending, timeout });
  // 4096 entries, then a chain that pushes as many again: were the queue compacted inside the
  // chain, the voided hold's entry would be dropped, and the rollback would leave it pending forever.
  const holds = [hold(10n, 5), ...Array.from({ length: 4095 }, (_, i) => hold(1000n + BigInt(i), 3600))];
  t.true((await ledger.createTransfers(holds)).every((r) => r === 'ok'));
  const chain = [
    transfer({ id: 20n, pending_id: 10n, flags: TransferFlags.void_pending_transfer | TransferFlags.linked }),
    ...Array.from({ length: 4100 }, (_, i) => ({ ...hold(10_000n + BigInt(i), 3600), flags: TransferFlags.pending | TransferFlags.linked })),
    transfer({ id: 22n, debit_account_id: 1n, credit_account_id: 99n, amount: 1n, ledger: 1, code: 1 }),
  ];
  const results = await ledger.createTransfers(chain);
  t.deepEqual([results.length, results.at(-1)], [chain.length, 'credit_account_not_found']);
  t.true(results.slice(0, -1).every((r) => r === 'linked_event_failed'));
  clock.advanceMs(6_000);
  t.is((await ledger.lookupAccounts([1n]))[0]!.debits_pending, 4095n, 'the 5 s hold expired');
  t.deepEqual(await ledger.createTransfers([transfer({ id: 23n, pending_id: 10n, flags: TransferFlags.post_pending_transfer })]), ['pending_transfer_expired']);
});
