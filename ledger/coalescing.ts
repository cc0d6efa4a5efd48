import type { Account, AccountBalance, AccountFilter, Transfer } from './model.js';
import type { Ledger } from './port.js';
import type { CreateTransferResult } from './results.js';

interface Waiting {
  events: readonly Transfer[];
  resolve: (results: CreateTransferResult[]) => void;
  reject: (error: unknown) => void;
}

/** Events one coalesced request may gather before it is sent without waiting for the tick. */
export const coalescedEventsMax = 8189;

/**
 * Batches to amortize: `createTransfers` calls made in the same turn of the event loop (the
 * concurrent RPCs one socket read delivered, the items of a batch RPC) are sent as one request,
 * and each caller gets its own slice of the results. Semantics are unchanged: each call's
 * events stay contiguous and in order, so its linked chains stay whole; a call whose last event
 * leaves a chain open goes alone (it must fail with `linked_event_chain_open` by itself, not
 * swallow the next caller's events). Events of different calls were concurrent anyway and are
 * never linked to each other. Everything else passes straight through.
 */
export class CoalescingLedger implements Ledger {
  private waiting: Waiting[] = [];
  private waitingEvents = 0;
  private scheduled = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly inner: Ledger) {}

  createTransfers(transfers: readonly Transfer[]): Promise<CreateTransferResult[]> {
    const last = transfers[transfers.length - 1];
    if (last === undefined || (last.flags & 1) !== 0) return this.inner.createTransfers(transfers);
    return new Promise((resolve, reject) => {
      this.waiting.push({ events: transfers, resolve, reject });
      this.waitingEvents += transfers.length;
      if (this.waitingEvents >= coalescedEventsMax) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const group = this.waiting;
    if (group.length === 0) return;
    this.waiting = [];
    this.waitingEvents = 0;
    const events = group.length === 1 ? group[0]!.events : group.flatMap((w) => w.events);
    const sent = this.inner.createTransfers(events).then(
      (results) => {
        let offset = 0;
        for (const w of group) {
          w.resolve(results.slice(offset, offset + w.events.length));
          offset += w.events.length;
        }
      },
      (error: unknown) => group.forEach((w) => w.reject(error)),
    );
    this.inFlight.add(sent);
    void sent.finally(() => this.inFlight.delete(sent));
  }

  createAccounts(accounts: readonly Account[]) {
    return this.inner.createAccounts(accounts);
  }
  lookupAccounts(ids: readonly bigint[]): Promise<Account[]> {
    return this.inner.lookupAccounts(ids);
  }
  lookupTransfers(ids: readonly bigint[]): Promise<Transfer[]> {
    return this.inner.lookupTransfers(ids);
  }
  getAccountTransfers(filter: AccountFilter): Promise<Transfer[]> {
    return this.inner.getAccountTransfers(filter);
  }
  getAccountBalances(filter: AccountFilter): Promise<AccountBalance[]> {
    return this.inner.getAccountBalances(filter);
  }
  async close(): Promise<void> {
    if (this.waiting.length > 0) this.flush();
    await Promise.all(this.inFlight);
    await this.inner.close();
  }
}
