import { DomainError } from './errors.js';
import type { Payment } from './model.js';

/**
 * In-process publication of payment changes, for the watch streams. Each subscriber has a
 * bounded queue (`subscriberQueueMax` payments); a subscriber that falls that far behind is
 * ended with `SubscriberOverflowError` rather than letting memory grow.
 */
export const subscriberQueueMax = 10_000;
/** At most this many concurrent subscribers per process: the last resort behind `watchersPerCallerMax`. */
export const subscribersMax = 10_000;
/**
 * At most this many concurrent subscribers per caller (a merchant's API key, a payer's token):
 * one caller's streams can never take the process's `subscribersMax` from the others (README
 * "Tenant safety"). A caller over it gets `SubscriberOverflowError` (RESOURCE_EXHAUSTED); others
 * are not affected.
 */
export const watchersPerCallerMax = 16;

/** A watcher too slow or one too many: RESOURCE_EXHAUSTED, the message says which. */
export class SubscriberOverflowError extends DomainError {
  override readonly name = 'SubscriberOverflowError';
  constructor(message: string) {
    super('resource_exhausted', message);
  }
}

interface Subscriber {
  caller: string;
  filter: (payment: Payment) => boolean;
  queue: Payment[];
  wake: (() => void) | undefined;
  failed: Error | undefined;
}

export class PaymentEvents {
  private readonly subscribers = new Set<Subscriber>();
  /** Live subscribers by caller; a caller with none has no entry (bounded by `subscribersMax`). */
  private readonly perCaller = new Map<string, number>();
  private readonly listeners: ((payment: Payment) => void)[] = [];
  private readonly watcherCounts: ((subscribers: number) => void)[] = [];

  /** Calls `listener` synchronously for every payment this process publishes (metrics, audit, the relay to other processes). */
  listen(listener: (payment: Payment) => void): void {
    this.listeners.push(listener);
  }

  /** Calls `listener` with the number of subscribers whenever it changes (the workers' relay asks only while someone watches). */
  onSubscribers(listener: (subscribers: number) => void): void {
    this.watcherCounts.push(listener);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  publish(payment: Payment): void {
    for (const listener of this.listeners) listener(payment);
    this.deliver(payment);
  }

  /** A change another process published (`serve --workers`): to this process's watchers only. */
  deliver(payment: Payment): void {
    for (const s of this.subscribers) {
      if (!s.filter(payment)) continue;
      if (s.queue.length >= subscriberQueueMax) s.failed = new SubscriberOverflowError(`watch fell ${subscriberQueueMax} payments behind`);
      else s.queue.push(payment);
      s.wake?.();
    }
  }

  /**
   * Payments matching `filter` from the moment of this call (not of the first `next()`: a caller
   * that sends a snapshot first misses nothing published meanwhile), until `signal` aborts.
   * `caller` names who watches (e.g. `merchant:<id>`, `payer:<id>`), for `watchersPerCallerMax`.
   */
  subscribe(filter: (payment: Payment) => boolean, signal: AbortSignal, caller: string): AsyncGenerator<Payment> {
    const mine = this.perCaller.get(caller) ?? 0;
    if (mine >= watchersPerCallerMax) throw new SubscriberOverflowError(`more than ${watchersPerCallerMax} watch streams for this caller; close one first`);
    if (this.subscribers.size >= subscribersMax) throw new SubscriberOverflowError(`more than ${subscribersMax} watchers`);
    const s: Subscriber = { caller, filter, queue: [], wake: undefined, failed: undefined };
    this.subscribers.add(s);
    this.perCaller.set(caller, mine + 1);
    this.counted();
    // Also released when the caller's call ends before it ever read from the stream.
    signal.addEventListener('abort', () => this.remove(s), { once: true });
    return this.follow(s, signal);
  }

  private async *follow(s: Subscriber, signal: AbortSignal): AsyncGenerator<Payment> {
    const onAbort = () => s.wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        if (s.failed !== undefined) throw s.failed;
        const next = s.queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (s.wake = resolve));
        s.wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.remove(s);
    }
  }

  private remove(s: Subscriber): void {
    if (!this.subscribers.delete(s)) return;
    const left = (this.perCaller.get(s.caller) ?? 1) - 1;
    if (left === 0) this.perCaller.delete(s.caller);
    else this.perCaller.set(s.caller, left);
    this.counted();
  }

  private counted(): void {
    for (const listener of this.watcherCounts) listener(this.subscribers.size);
  }
}
