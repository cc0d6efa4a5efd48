import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { retireDropPerPass } from '../../../authz/store/journal/bounds.js';
import { JournalPaymentStore, type JournalStoreOptions } from '../../../authz/store/journal/journal-store.js';
import { StoreLockedError } from '../../../authz/store/journal/lock.js';
import { rateLimitsPerCreateMax, StoreFullError, StoreUnavailableError } from '../../../authz/store/port.js';
import { createItem, hexId } from './fixtures/journal-items.js';

const dayMs = 86_400_000;

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-pay-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(t: { teardown: (f: () => Promise<void>) => void }, options: JournalStoreOptions): Promise<JournalPaymentStore> {
  const store = await JournalPaymentStore.open(options);
  t.teardown(() => store.close());
  return store;
}

test('one process per data directory: a live owner is refused by name and pid, a dead one is taken over', async (t) => {
  const dataDir = tempDir(t);
  const first = await JournalPaymentStore.open({ dataDir });
  const error = await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: StoreLockedError });
  t.true(error!.message.includes(dataDir) && error!.message.includes(`process ${process.pid}`), error!.message);
  t.true(error instanceof StoreUnavailableError, 'services map it to UNAVAILABLE');
  await first.close();
  writeFileSync(join(dataDir, 'LOCK'), `${process.ppid}\n`); // a live process that is not us
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: StoreLockedError, message: new RegExp(`in use by process ${process.ppid}`) });
  writeFileSync(join(dataDir, 'LOCK'), '2147483646\n'); // no such process: a crashed owner
  const second = await open(t, { dataDir });
  t.is(readFileSync(join(dataDir, 'LOCK'), 'utf8').trim(), String(process.pid));
  await second.close();
  t.false(readdirSync(dataDir).includes('LOCK'), 'close releases the lock');
  writeFileSync(join(dataDir, 'LOCK'), 'garbage');
  await t.throwsAsync(JournalPaymentStore.open({ dataDir }), { instanceOf: StoreLockedError, message: /does not hold a process id/ });
});

test('the directory is private (0700) and its files 0600; describe names it', async (t) => {
  const dataDir = join(tempDir(t), 'payments');
  const store = await JournalPaymentStore.open({ dataDir, checkpointJournalBytesMin: 1, checkpointJournalBytesMax: 1 });
  t.true(store.describe.includes(dataDir), store.describe);
  await store.create([createItem(Date.now(), 'modes')]);
  await store.checkpointSettled();
  t.is(statSync(dataDir).mode & 0o777, 0o700);
  const names = readdirSync(dataDir);
  t.true(names.some((n) => n.startsWith('checkpoint-')) && names.some((n) => n.startsWith('journal-')) && names.includes('LOCK'), names.join(' '));
  for (const name of names) t.is(statSync(join(dataDir, name)).mode & 0o777, 0o600, name);
  await store.close();
});

/** Makes the journal's next write fail (its file is closed under it), as a dying disk would. */
async function breakDisk(store: JournalPaymentStore): Promise<void> {
  const journal = (store as unknown as { journal: { segment: { close(): Promise<void> } } }).journal;
  await journal.segment.close();
}

test('a failed write fails the store for good: the step and every later call throw StoreUnavailableError, a read issued meanwhile never sees the lost write', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const store = await JournalPaymentStore.open({ dataDir });
  const kept = createItem(t0, 'kept');
  await store.create([kept]);
  await breakDisk(store);
  const lost = createItem(t0, 'lost');
  const creating = store.create([lost]);
  const reading = store.get([lost.payment.id, kept.payment.id]); // memory already holds `lost`
  await t.throwsAsync(creating, { instanceOf: StoreUnavailableError, message: /journal .* failed/ });
  await t.throwsAsync(reading, { instanceOf: StoreUnavailableError });
  await t.throwsAsync(store.get([kept.payment.id]), { instanceOf: StoreUnavailableError });
  await t.throwsAsync(store.create([createItem(t0, 'after')]), { instanceOf: StoreUnavailableError });
  await store.close();
  const reopened = await open(t, { dataDir });
  t.deepEqual(
    (await reopened.get([lost.payment.id, kept.payment.id])).map((r) => r?.version),
    [undefined, 1],
  );
});

test('creates beyond paymentsMax throw StoreFullError naming the bound and the fix; what is stored stays usable', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  const store = await JournalPaymentStore.open({ dataDir, paymentsMax: 3 });
  const items = Array.from({ length: 4 }, (_, i) => createItem(t0, `full-${i}`));
  t.deepEqual(
    (await store.create(items.slice(0, 3))).map((o) => o.outcome),
    ['created', 'created', 'created'],
  );
  const error = await t.throwsAsync(store.create([items[3]!]), { instanceOf: StoreFullError });
  t.regex(error!.message, /paymentsMax/);
  t.regex(error!.message, /COUNTERSIGN_REDIS_URL, COUNTERSIGN_TB_ADDRESSES/);
  t.is((await store.create([items[0]!]))[0]?.outcome, 'replayed', 'a retry of a stored payment still works');
  await store.close();
  const reopened = await open(t, { dataDir, paymentsMax: 3 });
  t.is(reopened.state.records.size, 3);
  await t.throwsAsync(reopened.create([items[3]!]), { instanceOf: StoreFullError });
});

test('retention drops closed records older than closedRetentionMs, boundedly per pass; never open ones or ones still due', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  let clock = t0;
  const store = await JournalPaymentStore.open({ dataDir, now: () => clock });
  const payerId = hexId();
  const old = Array.from({ length: retireDropPerPass + 6 }, (_, i) =>
    createItem(t0, `old-${i}`, { payerId, state: 'DECLINED', declineReason: 'POLICY_DENIED', requiredFactors: [] }),
  );
  const due = createItem(t0, 'due', { payerId, state: 'DECLINED', declineReason: 'POLICY_DENIED', requiredFactors: [] });
  const open_ = createItem(t0, 'open', { payerId });
  const recent = createItem(t0, 'recent', { payerId, state: 'DECLINED', declineReason: 'POLICY_DENIED', requiredFactors: [] });
  await store.create([...old, due, open_, recent].map((c) => ({ ...c, digests: c.payment.state === 'CHALLENGED' ? c.digests : {} })));
  const close = (ids: string[], dueAtMs: number | null, atMs: number) =>
    store.commit(ids.map((paymentId) => ({ paymentId, expectVersion: 1, dueAtMs, nowMs: atMs })));
  await close(
    old.map((c) => c.payment.id),
    null,
    t0,
  ); // voided: out of the due index
  await close([due.payment.id], t0 + 31 * dayMs, t0);
  clock = t0 + 30 * dayMs + 1;
  const refunded = { ...recent.payment, declineDetail: 'changed a day ago', updatedAtMs: clock - dayMs };
  await store.commit([{ paymentId: refunded.id, expectVersion: 1, payment: refunded, dueAtMs: null, nowMs: clock }]);
  const left = (): number => old.filter((c) => store.state.records.has(c.payment.id)).length;
  t.true(left() < old.length && left() >= old.length - 2 * retireDropPerPass, `${left()} of ${old.length} old records left after two passes`);
  await store.guard([{ payerId, event: 'check', nowMs: clock }]);
  await store.guard([{ payerId, event: 'check', nowMs: clock }]);
  t.is(left(), 0, 'every old closed record is gone after a few passes');
  const kept = await store.get([due.payment.id, open_.payment.id, recent.payment.id]);
  t.deepEqual(
    kept.map((r) => r?.payment.id),
    [due.payment.id, open_.payment.id, recent.payment.id],
    'still due, open, and recent records stay',
  );
  await store.close();
  const reopened = await open(t, { dataDir, now: () => clock });
  t.is(reopened.state.records.size, 3, 'the drops were journaled');
});

test('closedRetentionMs must outlast the 24 h idempotency records', async (t) => {
  const dataDir = tempDir(t);
  await t.throwsAsync(JournalPaymentStore.open({ dataDir, closedRetentionMs: dayMs }), { message: /assertion failed: closedRetentionMs must be longer/ });
  t.false(readdirSync(dataDir).includes('LOCK'));
});

test('expired counters are swept even while many live idempotency records come first', async (t) => {
  const dataDir = tempDir(t);
  const t0 = Date.now();
  let clock = t0;
  const store = await open(t, { dataDir, now: () => clock });
  const limits = Array.from({ length: 50 }, (_, i) => ({ key: `rate-${i}`, limit: 10, windowMs: 60_000 }));
  const perCreate = Array.from({ length: Math.ceil(limits.length / rateLimitsPerCreateMax) }, (_, i) =>
    limits.slice(i * rateLimitsPerCreateMax, (i + 1) * rateLimitsPerCreateMax),
  );
  await store.create(perCreate.map((some, i) => createItem(t0, `with-limits-${i}`, {}, some)));
  await store.create(Array.from({ length: 500 }, (_, i) => createItem(t0, `live-${i}`)));
  t.is(store.state.counters.size, 50);
  clock = t0 + 61_000;
  for (let i = 0; i < 10 && store.state.counters.size > 0; i++) await store.guard([{ payerId: hexId(), event: 'check', nowMs: clock }]);
  t.is(store.state.counters.size, 0);
  t.is(store.state.keys.size, 500 + perCreate.length, 'live keys stay');
});
