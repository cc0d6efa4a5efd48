import {
  type CommitItem,
  type CommitOutcome,
  type ConfirmItem,
  type ConfirmOutcome,
  type CreateItem,
  type CreateOutcome,
  type PaymentRecord,
  type PaymentStore,
  readIdsMax,
  stepItemsMax,
} from './port.js';

interface Waiting<I, O> {
  items: readonly I[];
  resolve: (outcomes: O[]) => void;
  reject: (error: unknown) => void;
}

/**
 * One kind of step, coalesced the way tigerbeetle-node batches concurrent requests: a call made
 * while no call of this kind is in flight goes out at once (in the same turn of the event loop,
 * together with the calls made in that turn); calls made while one is in flight wait and go
 * together as the next call, up to `itemsMax` items. A call's items are never split; a call
 * alone above the bound goes alone. The idle server adds no wait, the busy one batches.
 */
export class Coalescer<I, O> {
  private queue: Waiting<I, O>[] = [];
  private inFlight = false;
  private scheduled = false;
  /** Calls sent to the store, and items in them: for the bench's round-trip count. */
  readonly sent = { calls: 0, items: 0 };

  constructor(
    private readonly send: (items: I[]) => Promise<O[]>,
    private readonly itemsMax: number,
  ) {}

  run(items: readonly I[]): Promise<O[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<O[]>((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      if (this.inFlight || this.scheduled) return;
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.inFlight || this.queue.length === 0) return;
    const group: Waiting<I, O>[] = [];
    let count = 0;
    while (this.queue.length > 0 && (group.length === 0 || count + this.queue[0]!.items.length <= this.itemsMax)) {
      const next = this.queue.shift()!;
      group.push(next);
      count += next.items.length;
    }
    this.inFlight = true;
    this.sent.calls += 1;
    this.sent.items += count;
    const items = group.length === 1 ? (group[0]!.items as I[]) : group.flatMap((w) => w.items);
    this.send(items)
      .then(
        (outcomes) => {
          let offset = 0;
          for (const w of group) {
            w.resolve(outcomes.slice(offset, offset + w.items.length));
            offset += w.items.length;
          }
        },
        (error: unknown) => group.forEach((w) => w.reject(error)),
      )
      .finally(() => {
        this.inFlight = false;
        this.flush();
      });
  }
}

/**
 * The store with its steps and reads coalesced (`Coalescer`): concurrent unary RPCs become one
 * store operation per step kind. Everything else passes straight through.
 */
export class CoalescingStore implements PaymentStore {
  readonly creates: Coalescer<CreateItem, CreateOutcome>;
  readonly confirms: Coalescer<ConfirmItem, ConfirmOutcome>;
  readonly commits: Coalescer<CommitItem, CommitOutcome>;
  readonly reads: Coalescer<string, PaymentRecord | undefined>;

  constructor(readonly inner: PaymentStore) {
    this.creates = new Coalescer((items) => inner.create(items), stepItemsMax);
    this.confirms = new Coalescer((items) => inner.confirm(items), stepItemsMax);
    this.commits = new Coalescer((items) => inner.commit(items), stepItemsMax);
    this.reads = new Coalescer((ids) => inner.get(ids), readIdsMax);
  }

  get describe(): string {
    return this.inner.describe;
  }

  create(items: readonly CreateItem[]): Promise<CreateOutcome[]> {
    return this.creates.run(items);
  }
  confirm(items: readonly ConfirmItem[]): Promise<ConfirmOutcome[]> {
    return this.confirms.run(items);
  }
  commit(items: readonly CommitItem[]): Promise<CommitOutcome[]> {
    return this.commits.run(items);
  }
  get(ids: readonly string[]): Promise<(PaymentRecord | undefined)[]> {
    return this.reads.run(ids);
  }

  /** Store operations sent so far (steps and reads), for the bench. */
  roundTrips(): number {
    return this.creates.sent.calls + this.confirms.sent.calls + this.commits.sent.calls + this.reads.sent.calls;
  }

  list: PaymentStore['list'] = (q) => this.inner.list(q);
  scan: PaymentStore['scan'] = (cursor, limit) => this.inner.scan(cursor, limit);
  claimDue: PaymentStore['claimDue'] = (r) => this.inner.claimDue(r);
  claimKey: PaymentStore['claimKey'] = (c) => this.inner.claimKey(c);
  completeKey: PaymentStore['completeKey'] = (d) => this.inner.completeKey(d);
  releaseKey: PaymentStore['releaseKey'] = (r) => this.inner.releaseKey(r);
  guard: PaymentStore['guard'] = (e) => this.inner.guard(e);
  putPayNumber: PaymentStore['putPayNumber'] = (e) => this.inner.putPayNumber(e);
  takePayNumber: PaymentStore['takePayNumber'] = (t) => this.inner.takePayNumber(t);
  close(): Promise<void> {
    return this.inner.close();
  }
}
