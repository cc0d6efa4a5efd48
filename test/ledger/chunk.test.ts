import test from 'ava';
import { chunkEvents, chunkIds } from '../../ledger/chunk.js';
import { eventBatchMax } from '../../ledger/model.js';
import { LedgerRequestError } from '../../ledger/port.js';

interface Ev {
  n: number;
  flags: number;
}

/** Events 0..count-1; the ones whose index `linkedAt` accepts carry the linked flag. */
function events(count: number, linkedAt: (i: number) => boolean = () => false): Ev[] {
  return Array.from({ length: count }, (_, n) => ({ n, flags: linkedAt(n) ? 1 : 0 }));
}

/** The chunks as index lists, for readable expectations. */
function shape(chunks: Ev[][]): number[][] {
  return chunks.map((c) => c.map((e) => e.n));
}

function range(from: number, toExclusive: number): number[] {
  return Array.from({ length: toExclusive - from }, (_, i) => from + i);
}

test('no events, no chunks; up to max events stay one chunk', (t) => {
  t.deepEqual(shape(chunkEvents(events(0), 4)), []);
  t.deepEqual(shape(chunkEvents(events(4), 4)), [[0, 1, 2, 3]]);
  t.deepEqual(
    shape(
      chunkEvents(
        events(4, () => true),
        4,
      ),
    ),
    [[0, 1, 2, 3]],
    'open chain kept for the ledger to answer',
  );
});

test('unlinked events split into chunks of max', (t) => {
  t.deepEqual(shape(chunkEvents(events(10), 4)), [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
    [8, 9],
  ]);
});

test('a chain straddling the boundary moves whole to the next chunk', (t) => {
  // chain: 2,3,4 (4 closes it)
  const ev = events(8, (i) => i === 2 || i === 3);
  t.deepEqual(shape(chunkEvents(ev, 4)), [
    [0, 1],
    [2, 3, 4, 5],
    [6, 7],
  ]);
});

test('a chain ending exactly at the boundary is not moved', (t) => {
  const ev = events(8, (i) => i >= 1 && i <= 2); // chain 1,2,3
  t.deepEqual(shape(chunkEvents(ev, 4)), [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
  ]);
});

test('a chain of exactly max fits one chunk', (t) => {
  const ev = events(7, (i) => i >= 2 && i <= 4); // chain 2..5
  t.deepEqual(shape(chunkEvents(ev, 4)), [[0, 1], [2, 3, 4, 5], [6]]);
});

test('a chain longer than max throws LedgerRequestError', (t) => {
  const ev = events(8, (i) => i >= 1 && i <= 4); // chain 1..5
  const error = t.throws(() => chunkEvents(ev, 4), { instanceOf: LedgerRequestError });
  t.regex(error?.message ?? '', /event 1/);
});

test('a chain left open at the end stays in the last chunk', (t) => {
  const ev = events(6, (i) => i >= 4);
  t.deepEqual(shape(chunkEvents(ev, 4)), [
    [0, 1, 2, 3],
    [4, 5],
  ]);
});

test('an open chain longer than max at the end throws', (t) => {
  const ev = events(7, (i) => i >= 2);
  t.throws(() => chunkEvents(ev, 4), { instanceOf: LedgerRequestError });
});

test('default max is eventBatchMax and no chunk exceeds it', (t) => {
  const count = eventBatchMax * 2 + 5;
  const ev = events(count, (i) => i % 100 !== 99);
  const chunks = chunkEvents(ev);
  t.true(chunks.every((c) => c.length <= eventBatchMax));
  t.deepEqual(
    chunks.flat().map((e) => e.n),
    range(0, count),
    'order and content preserved',
  );
  t.true(
    chunks.slice(0, -1).every((c) => (c.at(-1)!.flags & 1) === 0),
    'every cut is after a chain end',
  );
  t.throws(() => chunkEvents(events(eventBatchMax + 1, (i) => i < eventBatchMax)), { instanceOf: LedgerRequestError });
  t.is(chunkEvents(events(eventBatchMax + 1, (i) => i < eventBatchMax - 1)).length, 1 + 1);
});

test('chunkIds splits plainly at max', (t) => {
  const ids = range(0, 10).map(BigInt);
  t.deepEqual(chunkIds(ids, 4), [
    [0n, 1n, 2n, 3n],
    [4n, 5n, 6n, 7n],
    [8n, 9n],
  ]);
  t.deepEqual(chunkIds([], 4), []);
  t.deepEqual(chunkIds(ids.slice(0, 4), 4), [[0n, 1n, 2n, 3n]]);
});
