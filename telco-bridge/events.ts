import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { type StreamEventsResponse, StreamEventsResponseSchema } from '../gen/countersign/v1/telco_pb.js';

/**
 * The bridge's event log: every message's and call's fate, in memory, bounded, with ids that
 * increase per bridge (and across restarts of it) so streams can resume after an id.
 */

/** The `event` oneof of StreamEventsResponse: `{ case: 'smsSent', value: { messageId } }`. */
export type EventBody = StreamEventsResponse['event'];

/** Digits of an event id: zero-padded so that ids compare as strings. */
export const eventIdDigits = 20;

export type EventListener = (event: StreamEventsResponse) => void;

export class EventLog {
  /** Oldest first. */
  private readonly events: StreamEventsResponse[] = [];
  private readonly listeners = new Set<EventListener>();
  /** Starts from the clock (×10⁶) so that a restarted bridge keeps issuing larger ids. */
  private next: bigint;

  constructor(
    /** eventsMax: events kept at most; the oldest is dropped first. */
    private readonly eventsMax: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(eventsMax > 0)) throw new Error('assertion failed: eventsMax must be positive');
    this.next = BigInt(now()) * 1_000_000n;
  }

  /** Records an event and hands it to every listener. */
  append(reference: string, body: EventBody): StreamEventsResponse {
    const occurredAtMs = this.now();
    const event = create(StreamEventsResponseSchema, {
      eventId: (this.next++).toString().padStart(eventIdDigits, '0'),
      reference,
      occurredAt: timestampFromMs(occurredAtMs),
      event: body,
    });
    this.events.push(event);
    // Drop in chunks (1/64 of the bound) so appends stay O(1) amortized.
    if (this.events.length > this.eventsMax) this.events.splice(0, this.events.length - this.eventsMax + (this.eventsMax >> 6));
    for (const listener of this.listeners) listener(event);
    return event;
  }

  /** Events with an id after `afterEventId` ('' = all kept), oldest first, optionally for one reference. */
  after(afterEventId: string, reference: string): StreamEventsResponse[] {
    let low = 0;
    let high = this.events.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (afterEventId !== '' && this.events[mid]!.eventId <= afterEventId) low = mid + 1;
      else high = mid;
    }
    const out: StreamEventsResponse[] = [];
    for (let i = low; i < this.events.length; i++) {
      const event = this.events[i]!;
      if (reference === '' || event.reference === reference) out.push(event);
    }
    return out;
  }

  /** Follows new events until the returned function is called. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.events.length;
  }

  /** The id of the newest event, '' when none. */
  get lastEventId(): string {
    return this.events.at(-1)?.eventId ?? '';
  }
}

/** True for a string StreamEventsRequest.after_event_id may hold. */
export function isEventId(value: string): boolean {
  return value.length === eventIdDigits && /^[0-9]+$/.test(value);
}
