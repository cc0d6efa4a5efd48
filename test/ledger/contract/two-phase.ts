import type { ExecutionContext } from 'ava';
import { newId } from '../../../ledger/ids.js';
import { amountMax, type Transfer, TransferFlags } from '../../../ledger/model.js';
import type { Ledger } from '../../../ledger/port.js';
import type { CreateTransferResult } from '../../../ledger/results.js';
import { assertBalances, bal, type Case, codeMain, ledgerOther, plainPair, stored, xfer } from './helpers.js';

const { pending, post_pending_transfer: post, void_pending_transfer: voidFlag } = TransferFlags;

interface Held {
  x: bigint;
  y: bigint;
  p: Transfer;
}

/** x → y pending of 100 (user_data_128 7, never expires), asserted ok. */
async function hold(t: ExecutionContext, l: Ledger, amount = 100n): Promise<Held> {
  const [x, y] = await plainPair(l);
  const p = xfer({ debit_account_id: x, credit_account_id: y, amount, flags: pending, user_data_128: 7n });
  t.deepEqual(await l.createTransfers([p]), ['ok']);
  await assertBalances(t, l, [x, y], [bal({ dp: amount }), bal({ cp: amount })]);
  return { x, y, p };
}

/** A post (or void) of `p` naming only the pending id: accounts, ledger and code left 0. */
function resolve(p: Transfer, flags: number, amount: bigint, fields: Partial<Transfer> = {}): Transfer {
  return xfer({ flags, pending_id: p.id, amount, ledger: 0, code: 0, ...fields });
}

async function postFull(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  const ps = resolve(p, post, amountMax, { user_data_64: 5n });
  t.deepEqual(await l.createTransfers([ps]), ['ok']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 100n }), bal({ cpo: 100n })]);
  const s = await stored(l, ps.id);
  const expected = { ...ps, debit_account_id: x, credit_account_id: y, amount: 100n, ledger: p.ledger, code: p.code, user_data_128: 7n };
  t.deepEqual({ ...s, timestamp: 0n }, expected, 'accounts, ledger, code and unset user data come from the pending transfer');
  t.deepEqual({ ...(await stored(l, p.id)), timestamp: 0n }, p, 'the pending transfer itself is unchanged');
}

async function postPartial(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  const ps = resolve(p, post, 30n);
  t.deepEqual(await l.createTransfers([ps]), ['ok']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 30n }), bal({ cpo: 30n })]);
  t.is((await stored(l, ps.id)).amount, 30n);
}

async function postZero(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  const ps = resolve(p, post, 0n);
  t.deepEqual(await l.createTransfers([ps]), ['ok']);
  await assertBalances(t, l, [x, y], [bal(), bal()]);
  t.is((await stored(l, ps.id)).amount, 0n, 'amount 0 posts 0 (only amountMax means the whole amount)');
}

async function postTooMuch(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  const results = await l.createTransfers([resolve(p, post, 101n), resolve(p, voidFlag, 101n)]);
  t.deepEqual(results, ['exceeds_pending_transfer_amount', 'exceeds_pending_transfer_amount']);
  await assertBalances(t, l, [x, y], [bal({ dp: 100n }), bal({ cp: 100n })]);
}

async function voidFull(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  const v = resolve(p, voidFlag, 0n);
  t.deepEqual(await l.createTransfers([v]), ['ok']);
  await assertBalances(t, l, [x, y], [bal(), bal()]);
  t.is((await stored(l, v.id)).amount, 100n, 'void of amount 0 voids (and records) the full amount');
}

async function voidAmounts(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  const results = await l.createTransfers([resolve(p, voidFlag, 50n), resolve(p, voidFlag, 100n)]);
  t.deepEqual(results, ['pending_transfer_has_different_amount', 'ok']);
  await assertBalances(t, l, [x, y], [bal(), bal()]);
}

async function alreadyPosted(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  t.deepEqual(await l.createTransfers([resolve(p, post, amountMax)]), ['ok']);
  const results = await l.createTransfers([resolve(p, post, amountMax), resolve(p, voidFlag, 0n), resolve(p, post, 1n)]);
  t.deepEqual(results, ['pending_transfer_already_posted', 'pending_transfer_already_posted', 'pending_transfer_already_posted']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 100n }), bal({ cpo: 100n })]);
}

async function alreadyVoided(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  t.deepEqual(await l.createTransfers([resolve(p, voidFlag, 0n)]), ['ok']);
  const results = await l.createTransfers([resolve(p, voidFlag, 0n), resolve(p, post, amountMax)]);
  t.deepEqual(results, ['pending_transfer_already_voided', 'pending_transfer_already_voided']);
  await assertBalances(t, l, [x, y], [bal(), bal()]);
}

async function notFound(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const ghost = xfer({ debit_account_id: x, credit_account_id: y, amount: 1n, flags: pending });
  const ps = resolve(ghost, post, amountMax);
  const v = resolve(ghost, voidFlag, 0n);
  t.deepEqual(await l.createTransfers([ps, v]), ['pending_transfer_not_found', 'pending_transfer_not_found']);
  // pending_transfer_not_found is transient: the ids are burnt even once the pending exists.
  t.deepEqual(await l.createTransfers([ghost, ps, v]), ['ok', 'id_already_failed', 'id_already_failed']);
  await assertBalances(t, l, [x, y], [bal({ dp: 1n }), bal({ cp: 1n })]);
}

async function notPending(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const r = xfer({ debit_account_id: x, credit_account_id: y, amount: 10n });
  t.deepEqual(await l.createTransfers([r]), ['ok']);
  t.deepEqual(await l.createTransfers([resolve(r, post, amountMax), resolve(r, voidFlag, 0n)]), [
    'pending_transfer_not_pending',
    'pending_transfer_not_pending',
  ]);
  await assertBalances(t, l, [x, y], [bal({ dpo: 10n }), bal({ cpo: 10n })]);
}

async function differentFields(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  const cases: [Partial<Transfer>, CreateTransferResult][] = [
    [{ debit_account_id: y }, 'pending_transfer_has_different_debit_account_id'],
    [{ credit_account_id: x }, 'pending_transfer_has_different_credit_account_id'],
    [{ ledger: ledgerOther }, 'pending_transfer_has_different_ledger'],
    [{ code: codeMain + 1 }, 'pending_transfer_has_different_code'],
    [{ debit_account_id: x, credit_account_id: y, ledger: p.ledger, code: p.code, amount: 101n }, 'exceeds_pending_transfer_amount'],
  ];
  const results = await l.createTransfers(cases.map(([f]) => resolve(p, post, amountMax, f)));
  t.deepEqual(
    results,
    cases.map(([, r]) => r),
  );
  await assertBalances(t, l, [x, y], [bal({ dp: 100n }), bal({ cp: 100n })]);
  // The same fields, when they match, are accepted.
  const same = resolve(p, post, amountMax, { debit_account_id: x, credit_account_id: y, ledger: p.ledger, code: p.code });
  t.deepEqual(await l.createTransfers([same]), ['ok']);
  await assertBalances(t, l, [x, y], [bal({ dpo: 100n }), bal({ cpo: 100n })]);
}

async function postRetry(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  const ps = resolve(p, post, amountMax);
  t.deepEqual(await l.createTransfers([ps]), ['ok']);
  const retries = [p, ps, { ...ps, amount: 100n }, { ...ps, amount: 50n }, { ...ps, user_data_32: 4 }, { ...ps, pending_id: newId() }];
  t.deepEqual(await l.createTransfers(retries), [
    'exists',
    'exists',
    'exists',
    'exists_with_different_amount',
    'exists_with_different_user_data_32',
    'exists_with_different_pending_id',
  ]);
  await assertBalances(t, l, [x, y], [bal({ dpo: 100n }), bal({ cpo: 100n })]);
}

async function voidRetry(t: ExecutionContext, l: Ledger): Promise<void> {
  const { x, y, p } = await hold(t, l);
  const v = resolve(p, voidFlag, 0n);
  t.deepEqual(await l.createTransfers([v]), ['ok']);
  const retries = [v, { ...v, amount: 100n }, { ...v, amount: 99n }, { ...v, debit_account_id: x }, { ...v, debit_account_id: y }];
  t.deepEqual(await l.createTransfers(retries), ['exists', 'exists', 'exists_with_different_amount', 'exists', 'exists_with_different_debit_account_id']);
  await assertBalances(t, l, [x, y], [bal(), bal()]);
}

/**
 * countersign's close marker (authz/payment-ledger.ts `close`): a pending of 0 and its void,
 * linked; the reservation later made under that id meets exists_with_different_amount and its
 * post pending_transfer_already_voided, and nothing moves.
 */
async function zeroMarker(t: ExecutionContext, l: Ledger): Promise<void> {
  const [x, y] = await plainPair(l);
  const marker = xfer({ debit_account_id: x, credit_account_id: y, amount: 0n, flags: pending | TransferFlags.linked });
  const voiding = xfer({ id: newId(), debit_account_id: 0n, credit_account_id: 0n, amount: 0n, ledger: 0, code: 0, pending_id: marker.id, flags: voidFlag });
  t.deepEqual(await l.createTransfers([marker, voiding]), ['ok', 'ok']);
  t.deepEqual(await l.createTransfers([marker, voiding]), ['exists', 'linked_event_failed'], 'a retry of the chain');
  t.is(await l.createTransfers([voiding]).then((r) => r[0]), 'exists');
  const reservation = { ...marker, amount: 100n };
  const posting = xfer({ id: newId(), debit_account_id: 0n, credit_account_id: 0n, amount: amountMax, ledger: 0, code: 0, pending_id: marker.id, flags: post });
  t.deepEqual(await l.createTransfers([reservation, posting]), ['exists_with_different_amount', 'linked_event_failed']);
  t.deepEqual(await l.createTransfers([posting]), ['pending_transfer_already_voided']);
  await assertBalances(t, l, [x, y], [bal(), bal()]);
  t.is((await stored(l, voiding.id)).amount, 0n);
}

export function twoPhaseCases(c: Case): void {
  c('two-phase: a pending of 0 and its void, linked, close the id: a later reservation under it is refused, its post already_voided', zeroMarker);
  c('two-phase: post amountMax posts the whole pending amount', postFull);
  c('two-phase: partial post releases the remainder', postPartial);
  c('two-phase: post of amount 0 posts 0 and releases the hold', postZero);
  c('two-phase: post/void above the pending amount → exceeds_pending_transfer_amount', postTooMuch);
  c('two-phase: void of amount 0 voids the full amount', voidFull);
  c('two-phase: void of a different amount → pending_transfer_has_different_amount', voidAmounts);
  c('two-phase: post/void of a posted transfer → pending_transfer_already_posted', alreadyPosted);
  c('two-phase: void/post of a voided transfer → pending_transfer_already_voided', alreadyVoided);
  c('two-phase: post/void of an unknown transfer → pending_transfer_not_found', notFound);
  c('two-phase: post/void of a single-phase transfer → pending_transfer_not_pending', notPending);
  c('two-phase: post with different accounts/ledger/code → pending_transfer_has_different_*', differentFields);
  c('two-phase: post retry → exists; changed retry → exists_with_different_*', postRetry);
  c('two-phase: void retry → exists; changed retry → exists_with_different_*', voidRetry);
}
