import test from 'ava';
import { CoalescingLedger } from '../../ledger/coalescing.js';
import { EmbeddedLedger } from '../../ledger/embedded/engine.js';
import { newId } from '../../ledger/ids.js';
import { AccountFlags, account, type Transfer, TransferFlags, transfer } from '../../ledger/model.js';
import type { Ledger } from '../../ledger/port.js';

/** Counts the requests that reach the real engine underneath. */
function counted(inner: Ledger): { ledger: Ledger; requests: number[] } {
  const requests: number[] = [];
  const ledger = Object.create(inner) as Ledger;
  ledger.createTransfers = (events: readonly Transfer[]) => {
    requests.push(events.length);
    return inner.createTransfers(events);
  };
  return { ledger, requests };
}

async function setup() {
  const engine = await EmbeddedLedger.open({});
  const [a, b] = [newId(), newId()];
  await engine.createAccounts([
    account({ id: a, ledger: 1, code: 1 }),
    account({ id: b, ledger: 1, code: 1, flags: AccountFlags.debits_must_not_exceed_credits }),
  ]);
  const { ledger, requests } = counted(engine);
  const move = (from: bigint, to: bigint, amount: bigint, flags = 0) =>
    transfer({ id: newId(), debit_account_id: from, credit_account_id: to, amount, ledger: 1, code: 1, flags });
  return { engine, coalescing: new CoalescingLedger(ledger), requests, a, b, move };
}

test('calls made in the same tick reach the ledger as one request, each caller getting its own results', async (t) => {
  const { engine, coalescing, requests, a, b, move } = await setup();
  t.teardown(() => coalescing.close());
  const calls = [
    coalescing.createTransfers([move(a, b, 10n)]),
    coalescing.createTransfers([move(b, a, 50n)]), // b has 10 at most by then: exceeds_credits
    coalescing.createTransfers([move(a, b, 5n, TransferFlags.linked), move(a, b, 7n)]),
  ];
  t.deepEqual(await Promise.all(calls), [['ok'], ['exceeds_credits'], ['ok', 'ok']]);
  t.deepEqual(requests, [4], 'one request of four events');
  const [accountB] = await engine.lookupAccounts([b]);
  t.is(accountB!.credits_posted, 22n);
});

test('a call that leaves a chain open goes alone and fails alone', async (t) => {
  const { coalescing, requests, a, b, move } = await setup();
  t.teardown(() => coalescing.close());
  const [open, fine] = await Promise.all([coalescing.createTransfers([move(a, b, 1n, TransferFlags.linked)]), coalescing.createTransfers([move(a, b, 2n)])]);
  t.deepEqual(open, ['linked_event_chain_open']);
  t.deepEqual(fine, ['ok']);
  t.deepEqual(requests.sort(), [1, 1]);
});

test('calls in different ticks are separate requests; an error reaches every caller of its request', async (t) => {
  const { engine, coalescing, requests, a, b, move } = await setup();
  t.deepEqual(await coalescing.createTransfers([move(a, b, 1n)]), ['ok']);
  t.deepEqual(await coalescing.createTransfers([move(a, b, 1n)]), ['ok']);
  t.deepEqual(requests, [1, 1]);
  await engine.close();
  const failing = [coalescing.createTransfers([move(a, b, 1n)]), coalescing.createTransfers([move(a, b, 1n)])];
  for (const call of failing) await t.throwsAsync(call, { message: /closed/ });
});
