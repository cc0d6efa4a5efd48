import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { EmbeddedLedger, type EmbeddedLedgerOptions } from '../../ledger/embedded/engine.js';
import { AccountFilterFlags, AccountFlags, account, accountFilter, TransferFlags, transfer } from '../../ledger/model.js';
import { dump, manualClock, Workload } from './fixtures/workload.js';

/** Small enough that the workload below writes a checkpoint every batch or two. */
const checkpointEveryJournalBytes = 16 * 1024;
const batchSizeEvents = 150;
const rounds = 24;

function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Sends the same batches to every ledger with the clock moved between them; asserts equal results. */
async function drive(
  t: ExecutionContext,
  ledgers: EmbeddedLedger[],
  w: Workload,
  clock: ReturnType<typeof manualClock>,
  batches: number,
  size: number,
): Promise<void> {
  for (let b = 0; b < batches; b++) {
    clock.advanceMs(700 * (b % 4)); // pendings with timeouts of 0..19 s expire along the way
    const events = w.batch(size);
    const results = [];
    for (const l of ledgers) results.push(await l.createTransfers(events));
    for (const r of results.slice(1)) t.deepEqual(r, results[0]);
  }
}

test('reopening from a checkpoint and the journal tail reaches the state the engine had, and goes on identically', async (t) => {
  const dataDir = tempDir(t, 'cs-ckpt-');
  const clock = manualClock();
  const options: EmbeddedLedgerOptions = { dataDir, clockNs: clock.now, checkpointEveryJournalBytes };
  const w = new Workload(7);
  const journaled = await EmbeddedLedger.open(options);
  const reference = await EmbeddedLedger.open({ clockNs: clock.now }); // in memory: never restarted
  t.teardown(() => reference.close());
  const funding = w.funding();
  for (const l of [journaled, reference]) {
    t.true((await l.createAccounts(w.accounts)).every((r) => r === 'ok'));
    t.true((await l.createTransfers(funding)).every((r) => r === 'ok'));
  }
  await drive(t, [journaled, reference], w, clock, rounds, batchSizeEvents);
  await drive(t, [journaled, reference], w, clock, 2, 10); // a tail smaller than the bound stays in the journal
  t.true(journaled.checkpoints!.completed >= 5, `${journaled.checkpoints!.completed} checkpoints`);
  const before = await dump(journaled, w);
  await journaled.close();

  const reopened = await EmbeddedLedger.open(options);
  t.teardown(() => reopened.close());
  t.true(reopened.recovered.checkpointTransfers > 0, 'state came from a checkpoint');
  t.true(reopened.recovered.records > 0 && reopened.recovered.tailBytes < 2 * checkpointEveryJournalBytes, 'and a bounded journal tail');
  t.deepEqual(await dump(reopened, w), before);
  t.deepEqual(before, await dump(reference, w));

  await drive(t, [reopened, reference], w, clock, 6, batchSizeEvents); // same results, timestamps and expiries as never restarted
  t.deepEqual(await dump(reopened, w), await dump(reference, w));
});

test('pending transfers expire on time after a restore from a checkpoint, whether checkpointed or replayed', async (t) => {
  const dataDir = tempDir(t, 'cs-ckpt-expiry-');
  const clock = manualClock();
  const options: EmbeddedLedgerOptions = { dataDir, clockNs: clock.now };
  const first = await EmbeddedLedger.open(options);
  const [a, b] = [1n, 2n];
  await first.createAccounts([account({ id: a, ledger: 1, code: 1 }), account({ id: b, ledger: 1, code: 1 })]);
  const hold = (id: bigint, amount: bigint, timeout: number) =>
    transfer({ id, debit_account_id: a, credit_account_id: b, amount, ledger: 1, code: 1, flags: TransferFlags.pending, timeout });
  t.deepEqual(await first.createTransfers([hold(10n, 5n, 2), hold(11n, 7n, 10), hold(12n, 11n, 0)]), ['ok', 'ok', 'ok']);
  clock.advanceMs(3_000); // 10 expires; the checkpoint holds it expired and 11 pending
  await first.checkpoint();
  t.deepEqual(await first.createTransfers([hold(13n, 13n, 20)]), ['ok']); // only in the journal tail
  await first.close();

  const second = await EmbeddedLedger.open(options);
  t.teardown(() => second.close());
  t.is(second.recovered.checkpointTransfers, 3);
  t.is(second.recovered.records, 1);
  const pending = async (): Promise<bigint> => (await second.lookupAccounts([a]))[0]!.debits_pending;
  t.is(await pending(), 7n + 11n + 13n);
  clock.advanceMs(7_500); // 11 is due (created at +0 s, 10 s timeout)
  t.is(await pending(), 11n + 13n);
  clock.advanceMs(13_000); // 13 is due (created at +3 s, 20 s timeout)
  t.is(await pending(), 11n);
  const post = (id: bigint, pendingId: bigint) => transfer({ id, pending_id: pendingId, flags: TransferFlags.post_pending_transfer, amount: 0n });
  t.deepEqual(await second.createTransfers([post(20n, 10n), post(21n, 11n), post(22n, 13n), post(23n, 12n)]), [
    'pending_transfer_expired',
    'pending_transfer_expired',
    'pending_transfer_expired',
    'ok',
  ]);
  t.deepEqual((await second.lookupAccounts([a]))[0]!.debits_pending, 0n);
});

test('a restored engine keeps timestamping after what it had already expired, even when the clock went back', async (t) => {
  const dataDir = tempDir(t, 'cs-ckpt-clock-');
  const clock = manualClock();
  const options: EmbeddedLedgerOptions = { dataDir, clockNs: clock.now };
  const first = await EmbeddedLedger.open(options);
  await first.createAccounts([account({ id: 1n, ledger: 1, code: 1 }), account({ id: 2n, ledger: 1, code: 1 })]);
  const start = clock.now();
  const hold = transfer({ id: 10n, debit_account_id: 1n, credit_account_id: 2n, amount: 5n, ledger: 1, code: 1, flags: TransferFlags.pending, timeout: 2 });
  t.deepEqual(await first.createTransfers([hold]), ['ok']);
  clock.advanceMs(3_000);
  t.is((await first.lookupAccounts([1n]))[0]!.debits_pending, 0n, 'the hold expired at a read');
  const expiredAt = clock.now();
  await first.checkpoint();
  await first.close();

  clock.advanceMs(-2_000); // the wall clock stepped back across the restart
  const second = await EmbeddedLedger.open(options);
  const later = transfer({ id: 11n, debit_account_id: 1n, credit_account_id: 2n, amount: 1n, ledger: 1, code: 1 });
  t.deepEqual(await second.createTransfers([later]), ['ok']);
  const stamped = (await second.lookupTransfers([11n]))[0]!.timestamp;
  t.true(stamped > expiredAt, `timestamp ${stamped - start} ns after start, expiry seen at ${expiredAt - start}`);
  await second.close();

  const third = await EmbeddedLedger.open(options); // the same from checkpoint + replayed tail
  t.teardown(() => third.close());
  t.is((await third.lookupTransfers([11n]))[0]!.timestamp, stamped);
  t.deepEqual(await third.createTransfers([transfer({ id: 12n, pending_id: 10n, flags: TransferFlags.post_pending_transfer })]), ['pending_transfer_expired']);
});

test('balance history that a checkpoint moved out of memory reads back the same, before and after a restart', async (t) => {
  const dataDir = tempDir(t, 'cs-ckpt-history-');
  const clock = manualClock();
  const options: EmbeddedLedgerOptions = { dataDir, clockNs: clock.now };
  const journaled = await EmbeddedLedger.open(options);
  const reference = await EmbeddedLedger.open({ clockNs: clock.now });
  t.teardown(() => reference.close());
  const accounts = [account({ id: 1n, ledger: 1, code: 1, flags: AccountFlags.history }), account({ id: 2n, ledger: 1, code: 1, flags: AccountFlags.history })];
  const batches = Array.from({ length: 3 }, (_, b) =>
    Array.from({ length: 8000 }, (_, i) =>
      transfer({ id: BigInt(100_000 * (b + 1) + i), debit_account_id: 1n, credit_account_id: 2n, amount: BigInt(i + 1), ledger: 1, code: 1 }),
    ),
  );
  for (const l of [journaled, reference]) {
    await l.createAccounts(accounts);
    for (const batch of batches) await l.createTransfers(batch); // 48 000 history entries: more than a chunk (32 768)
  }
  await journaled.checkpoint(); // the full chunk leaves memory
  const balances = async (l: EmbeddedLedger) => {
    const out = [];
    for (const flags of [AccountFilterFlags.debits, AccountFilterFlags.credits | AccountFilterFlags.reversed]) {
      for (const id of [1n, 2n]) out.push(await l.getAccountBalances(accountFilter({ account_id: id, limit: 8189, flags })));
    }
    const [middle] = await l.lookupTransfers([200_000n + 4_000n]); // inside the evicted chunk
    out.push(await l.getAccountBalances(accountFilter({ account_id: 2n, limit: 3, timestamp_min: middle!.timestamp })));
    return out;
  };
  const expected = await balances(reference);
  t.deepEqual(await balances(journaled), expected);
  await journaled.close();
  const reopened = await EmbeddedLedger.open(options);
  t.teardown(() => reopened.close());
  t.deepEqual(await balances(reopened), expected);
});

test('a checkpoint holds every account change since the previous one: credits, expiries, closing', async (t) => {
  const dataDir = tempDir(t, 'cs-ckpt-accounts-');
  const clock = manualClock();
  const options: EmbeddedLedgerOptions = { dataDir, clockNs: clock.now };
  const journaled = await EmbeddedLedger.open(options);
  const reference = await EmbeddedLedger.open({ clockNs: clock.now });
  t.teardown(() => reference.close());
  const ids = [1n, 2n, 3n, 4n];
  const move = (id: bigint, dr: bigint, cr: bigint, fields: Partial<Parameters<typeof transfer>[0]> = {}) =>
    transfer({ id, debit_account_id: dr, credit_account_id: cr, amount: 5n, ledger: 1, code: 1, ...fields });
  const both = async (run: (l: EmbeddedLedger) => Promise<unknown>) => {
    const [a, b] = [await run(journaled), await run(reference)];
    t.deepEqual(a, b);
  };
  await both((l) => l.createAccounts(ids.map((id) => account({ id, ledger: 1, code: 1, flags: AccountFlags.history }))));
  await both((l) =>
    l.createTransfers([
      move(10n, 1n, 2n, { flags: TransferFlags.pending, timeout: 2 }),
      move(11n, 3n, 4n, { flags: TransferFlags.pending | TransferFlags.closing_credit, timeout: 2 }),
    ]),
  );
  await journaled.checkpoint();
  clock.advanceMs(3_000);
  await both((l) => l.lookupAccounts(ids)); // both holds expire here, and account 4 opens again: nothing else changes them
  await journaled.checkpoint();
  await both((l) => l.createTransfers([move(12n, 3n, 2n)])); // account 2 is only credited
  await journaled.checkpoint();
  t.is(journaled.recovered.records, 0);
  await journaled.close();

  const reopened = await EmbeddedLedger.open(options);
  t.teardown(() => reopened.close());
  t.is(reopened.recovered.records, 0, 'everything comes from the checkpoint');
  t.deepEqual(await reopened.lookupAccounts(ids), await reference.lookupAccounts(ids));
});
