/**
 * A binary min-heap ordered by a bigint or number key. Used for expiries: pending transfers in
 * the embedded engine, challenged payments in authz.
 */
export class MinHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly keyOf: (item: T) => bigint | number) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.keyOf(items[parent]!) <= this.keyOf(items[i]!)) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  peek(): T | undefined {
    return this.items[0];
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && this.keyOf(items[l]!) < this.keyOf(items[m]!)) m = l;
      if (r < items.length && this.keyOf(items[r]!) < this.keyOf(items[m]!)) m = r;
      if (m === i) return top;
      [items[m], items[i]] = [items[i]!, items[m]!];
      i = m;
    }
  }
}
