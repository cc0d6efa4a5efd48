import test from 'ava';
import { Column } from '../../ledger/embedded/column.js';
import { IdIndex, type IdSource, idKey, newIdKey } from '../../ledger/embedded/id-index.js';
import { prng } from './fixtures/workload.js';

/** Ids in a column, as the transfer store keeps them. */
class Ids implements IdSource {
  readonly column = new Column(16);
  readonly index = new IdIndex(this);

  idWord(slot: number, k: number): number {
    return this.column.word(slot, k);
  }

  push(id: bigint): void {
    const key = idKey(id, newIdKey());
    const slot = this.column.push();
    for (const [k, w] of [key.w0, key.w1, key.w2, key.w3].entries()) this.column.setWord(slot, k, w);
    this.index.insert(key, slot);
  }

  pop(id: bigint): void {
    this.index.remove(idKey(id, newIdKey()));
    this.column.truncate(this.column.count - 1);
  }

  find(id: bigint): number {
    return this.index.find(idKey(id, newIdKey()));
  }
}

test('the id index finds every id across shard growth, and removing the newest ids (chain rollback) keeps the rest findable', (t) => {
  const random = prng(42);
  const ids = new Ids();
  const live: bigint[] = [];
  // Ids that collide on purpose: equal low 64 bits, different high bits (like crash-plan ids), plus time-ordered ones.
  const nextId = (i: number): bigint =>
    i % 3 === 0 ? (BigInt(i % 7) << 64n) | BigInt(i >> 2) : (1_800_000_000_000n << 80n) | (BigInt(Math.floor(random() * 2 ** 48)) << 4n);
  for (let i = 1; i <= 60_000; i++) {
    const id = nextId(i);
    if (ids.find(id) >= 0) continue;
    ids.push(id);
    live.push(id);
    if (random() < 0.05) {
      const undo = Math.floor(random() * 20);
      for (let k = 0; k < undo && live.length > 0; k++) ids.pop(live.pop()!);
    }
  }
  t.is(ids.index.size, live.length);
  let misplaced = 0;
  live.forEach((id, slot) => (misplaced += ids.find(id) === slot ? 0 : 1));
  t.is(misplaced, 0);
  t.is(ids.find(12345n << 70n), -1);

  // Any order (the index supports it; the store only ever removes the newest): half of them.
  const removed = new Set<bigint>();
  for (const id of live) if (random() < 0.5) ids.index.remove(idKey(id, newIdKey())), removed.add(id);
  let wrong = 0;
  live.forEach((id, slot) => (wrong += ids.find(id) === (removed.has(id) ? -1 : slot) ? 0 : 1));
  t.is(wrong, 0);
  t.is(ids.index.size, live.length - removed.size);
});
