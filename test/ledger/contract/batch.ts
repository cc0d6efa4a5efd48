import type { ExecutionContext } from 'ava';
import { eventBatchMax, type Transfer, TransferFlags } from '../../../ledger/model.js';
import type { Ledger } from '../../../ledger/port.js';
import { LedgerRequestError } from '../../../ledger/port.js';
import type { CreateTransferResult } from '../../../ledger/results.js';
import { assertBalances, bal, type Case, idsOf, plainPair, xfer } from './helpers.js';

const { linked } = TransferFlags;

/** `count` transfers x → y of 1 each; events whose index is in `linkedAt` carry `linked`. */
function ones(x: bigint, y: bigint, count: number, linkedAt: (i: number) => boolean = () => false): Transfer[] {
  return Array.from({ length: count }, (_, i) => xfer({ debit_account_id: x, credit_account_id: y, amount: 1n, flags: linkedAt(i) ? linked : 0 }));
}

function inRange(i: number, from: number, toExclusive: number): boolean {
  return i >= from && i < toExclusive;
}

/** More than two requests' worth, with chains straddling both request boundaries. */
async function largeBatch(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const count = eventBatchMax * 2 + 5;
  const first = eventBatchMax - 9; // chain [first, first + 20) crosses index eventBatchMax
  const second = eventBatchMax * 2 - 20; // chain [second, second + 16) crosses the next boundary
  const events = ones(x, y, count, (i) => inRange(i, first, first + 19) || inRange(i, second, second + 15));
  const results = await l.createTransfers(events);
  t.is(results.length, count);
  t.deepEqual(results, Array<CreateTransferResult>(count).fill('ok'));
  await assertBalances(t, l, [x, y], [bal({ dpo: BigInt(count) }), bal({ cpo: BigInt(count) })]);
  const straddling = events.slice(first - 1, first + 21);
  t.deepEqual(idsOf(await l.lookupTransfers(idsOf(straddling))), idsOf(straddling));
}

async function chainTooLong(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const before = ones(x, y, 3);
  const chain = ones(x, y, eventBatchMax + 1, (i) => i < eventBatchMax);
  await t.throwsAsync(l.createTransfers([...before, ...chain]), { instanceOf: LedgerRequestError });
  await assertBalances(t, l, [x, y], [bal(), bal()]);
  t.deepEqual(await l.lookupTransfers(idsOf([...before, chain[0]!])), [], 'nothing applied');
}

async function chainExactlyMax(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const before = ones(x, y, 5);
  const chain = ones(x, y, eventBatchMax, (i) => i < eventBatchMax - 1);
  const count = before.length + chain.length;
  t.deepEqual(await l.createTransfers([...before, ...chain]), Array<CreateTransferResult>(count).fill('ok'));
  await assertBalances(t, l, [x, y], [bal({ dpo: BigInt(count) }), bal({ cpo: BigInt(count) })]);
}

/** A chain left open at the end of a split array is answered as for the whole array. */
async function chainOpenAfterSplit(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const count = eventBatchMax + 3;
  const events = ones(x, y, count, (i) => i >= count - 2);
  const expected = Array<CreateTransferResult>(count).fill('ok');
  expected[count - 2] = 'linked_event_failed';
  expected[count - 1] = 'linked_event_chain_open';
  t.deepEqual(await l.createTransfers(events), expected);
  await assertBalances(t, l, [x, y], [bal({ dpo: BigInt(count - 2) }), bal({ cpo: BigInt(count - 2) })]);
}

export function batchCases(c: Case): void {
  c(`batch: ${eventBatchMax * 2 + 5} transfers with chains across request bounds all apply`, largeBatch);
  c(`batch: a linked chain longer than ${eventBatchMax} throws LedgerRequestError, nothing applied`, chainTooLong);
  c(`batch: a linked chain of exactly ${eventBatchMax} after other events applies whole`, chainExactlyMax);
  c('batch: a chain open at the end of a split array → linked_event_chain_open', chainOpenAfterSplit);
}
