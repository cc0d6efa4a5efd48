import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { JournalPaymentStore, type JournalStoreOptions } from '../../../authz/store/journal/journal-store.js';
import type { PaymentStore } from '../../../authz/store/port.js';
import { paymentStoreContract } from './payment-store.contract.js';

const dirs: string[] = [];
test.after.always('remove the data directories', () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-pay-contract-'));
  dirs.push(dir);
  return dir;
}

paymentStoreContract('journal store', {
  open: async ({ lockout }) => JournalPaymentStore.open({ dataDir: dataDir(), ...(lockout === undefined ? {} : { lockout }) }),
});

/**
 * The contract again, on stores that are closed and reopened from their directory before every
 * call: every case then also proves that what it relies on (records, versions, keys, counters,
 * guards, leases, due times, pay numbers) survives a restart — once rebuilt from the journal
 * alone, once from a checkpoint written after every write.
 */
paymentStoreContract('journal store reopened before every call (journal replay)', {
  open: async ({ lockout }) => ReopeningStore.open({ dataDir: dataDir(), ...(lockout === undefined ? {} : { lockout }) }),
});

paymentStoreContract('journal store reopened before every call (checkpoints)', {
  open: async ({ lockout }) =>
    ReopeningStore.open({ dataDir: dataDir(), checkpointJournalBytesMin: 1, checkpointJournalBytesMax: 1, ...(lockout === undefined ? {} : { lockout }) }),
});

type Call<T> = (store: JournalPaymentStore) => Promise<T>;

class ReopeningStore implements PaymentStore {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private store: JournalPaymentStore,
    private readonly options: JournalStoreOptions,
  ) {}

  static async open(options: JournalStoreOptions): Promise<ReopeningStore> {
    return new ReopeningStore(await JournalPaymentStore.open(options), options);
  }

  get describe(): string {
    return this.store.describe;
  }

  /** Calls run one at a time, each on a freshly reopened store (concurrent calls are serialized). */
  private call<T>(run: Call<T>): Promise<T> {
    const next = this.chain.then(async () => {
      await this.store.checkpointSettled();
      await this.store.close();
      this.store = await JournalPaymentStore.open(this.options);
      return run(this.store);
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  create: PaymentStore['create'] = (items) => this.call((s) => s.create(items));
  confirm: PaymentStore['confirm'] = (items) => this.call((s) => s.confirm(items));
  commit: PaymentStore['commit'] = (items) => this.call((s) => s.commit(items));
  get: PaymentStore['get'] = (ids) => this.call((s) => s.get(ids));
  list: PaymentStore['list'] = (query) => this.call((s) => s.list(query));
  scan: PaymentStore['scan'] = (cursor, limit) => this.call((s) => s.scan(cursor, limit));
  claimDue: PaymentStore['claimDue'] = (request) => this.call((s) => s.claimDue(request));
  claimKey: PaymentStore['claimKey'] = (claim) => this.call((s) => s.claimKey(claim));
  completeKey: PaymentStore['completeKey'] = (done) => this.call((s) => s.completeKey(done));
  releaseKey: PaymentStore['releaseKey'] = (release) => this.call((s) => s.releaseKey(release));
  guard: PaymentStore['guard'] = (events) => this.call((s) => s.guard(events));
  putPayNumber: PaymentStore['putPayNumber'] = (entry) => this.call((s) => s.putPayNumber(entry));
  takePayNumber: PaymentStore['takePayNumber'] = (take) => this.call((s) => s.takePayNumber(take));

  async close(): Promise<void> {
    await this.chain;
    await this.store.checkpointSettled();
    await this.store.close();
  }
}
