import type { ExecutionContext } from 'ava';
import { type Transfer, TransferFlags } from '../../../ledger/model.js';
import type { Ledger } from '../../../ledger/port.js';
import { again, apply, assertBalances, bal, type Case, funded, idsOf, plainPair, xfer } from './helpers.js';

const { linked } = TransferFlags;

function move(from: bigint, to: bigint, amount: bigint, flags = 0): Transfer {
  return xfer({ debit_account_id: from, credit_account_id: to, amount, flags });
}

async function chainOk(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const chain = [move(x, y, 1n, linked), move(y, x, 2n, linked), move(x, y, 3n)];
  t.deepEqual(await l.createTransfers(chain), ['ok', 'ok', 'ok']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 4n, cpo: 2n }), bal({ dpo: 2n, cpo: 4n })]);
  t.deepEqual(
    (await l.lookupTransfers(chain.map((c) => c.id))).map((s) => s.flags),
    [linked, linked, 0],
  );
}

async function chainRollsBack(t: ExecutionContext, l: Ledger): Promise<void> {
  const { src, a, b } = await funded(l, 10n);
  const [x, y] = await plainPair(l);
  const batch = [move(a, b, 5n, linked), move(a, b, 100n, linked), move(a, b, 1n), move(x, y, 1n)];
  t.deepEqual(await l.createTransfers(batch), ['linked_event_failed', 'exceeds_credits', 'linked_event_failed', 'ok']);
  await assertBalances(t, l, [src, a, b, x, y], [bal({ dpo: 10n }), bal({ cpo: 10n }), bal(), bal({ dpo: 1n }), bal({ cpo: 1n })]);
  t.deepEqual(idsOf(await l.lookupTransfers(batch.map((c) => c.id))), [batch[3]!.id], 'only the unlinked event is stored');
}

async function chainOpen(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const batch = [move(x, y, 1n), move(x, y, 2n, linked), move(x, y, 3n, linked)];
  t.deepEqual(await l.createTransfers(batch), ['ok', 'linked_event_failed', 'linked_event_chain_open']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 1n }), bal({ cpo: 1n })]);
  t.deepEqual(await l.createTransfers([move(x, y, 4n, linked)]), ['linked_event_chain_open']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 1n }), bal({ cpo: 1n })]);
}

async function chainSeesEarlierCredits(t: ExecutionContext, l: Ledger): Promise<void> {
  const { src, a, b } = await funded(l, 0n);
  const batch = [move(src, a, 50n, linked), move(a, b, 50n)];
  t.deepEqual(await l.createTransfers(batch), ['ok', 'ok']);
  await assertBalances(t, l, [src, a, b], [bal({ dpo: 50n }), bal({ dpo: 50n, cpo: 50n }), bal({ cpo: 50n })]);
}

/** The second event fails only because of the first one's effect; both are rolled back. */
async function chainSeesEarlierDebits(t: ExecutionContext, l: Ledger): Promise<void> {
  const { a, b } = await funded(l, 100n);
  const chain = [move(a, b, 60n, linked), move(a, b, 60n)];
  t.deepEqual(await l.createTransfers(chain), ['linked_event_failed', 'exceeds_credits']);
  await assertBalances(t, l, [a, b], [bal({ cpo: 100n }), bal()]);

  // The failed event's id is remembered (transient), the rolled-back one's is not.
  const src = await fundMore(l, a, 20n);
  t.deepEqual(await l.createTransfers(chain), ['linked_event_failed', 'id_already_failed']);
  await assertBalances(t, l, [src, a, b], [bal({ dpo: 20n }), bal({ cpo: 120n }), bal()]);
  t.deepEqual(await l.createTransfers([chain[0]!, again(chain[1]!)]), ['ok', 'ok']);
  await assertBalances(t, l, [a, b], [bal({ dpo: 120n, cpo: 120n }), bal({ cpo: 120n })]);
}

/** A fresh unrestricted account moves `amount` into `to`; returns that account. */
async function fundMore(l: Ledger, to: bigint, amount: bigint): Promise<bigint> {
  const [src] = await plainPair(l);
  await apply(l, [move(src, to, amount)]);
  return src;
}

async function chainRetried(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const chain = [move(x, y, 1n, linked), move(x, y, 2n, linked), move(x, y, 3n)];
  t.deepEqual(await l.createTransfers(chain), ['ok', 'ok', 'ok']);
  t.deepEqual(await l.createTransfers(chain), ['exists', 'linked_event_failed', 'linked_event_failed']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 6n }), bal({ cpo: 6n })]);
}

async function twoChains(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const bad = move(x, x, 1n, linked);
  const batch = [move(x, y, 1n, linked), move(x, y, 2n), bad, move(x, y, 4n), move(x, y, 8n, linked), move(x, y, 16n)];
  t.deepEqual(await l.createTransfers(batch), ['ok', 'ok', 'accounts_must_be_different', 'linked_event_failed', 'ok', 'ok']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 27n }), bal({ cpo: 27n })]);
}

export function linkedCases(c: Case): void {
  c('linked: a chain of ok events applies all', chainOk);
  c('linked: a failure in the middle rolls back the whole chain only', chainRollsBack);
  c('linked: chain open at end of batch → linked_event_chain_open', chainOpen);
  c('linked: a later event sees an earlier event’s credit', chainSeesEarlierCredits);
  c('linked: a later event sees an earlier event’s debit; transient id remembered', chainSeesEarlierDebits);
  c('linked: a retried applied chain → exists then linked_event_failed', chainRetried);
  c('linked: chains in one batch are independent', twoChains);
}
