/**
 * A step's items grouped by the Cluster slot their script touches: one script call per group,
 * the groups sent concurrently, the replies put back in item order. On a single Redis
 * (`slotOf` undefined) all items are one group: one script call.
 */
export async function perSlot<T, R>(items: readonly T[], slotOf: ((item: T) => number) | undefined, call: (group: readonly T[]) => Promise<readonly R[]>): Promise<R[]> {
  if (items.length === 0) return [];
  if (slotOf === undefined) return checked(await call(items), items.length);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < items.length; i++) {
    const slot = slotOf(items[i]!);
    const group = groups.get(slot);
    if (group === undefined) groups.set(slot, [i]);
    else group.push(i);
  }
  const out = new Array<R>(items.length);
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      const replies = checked(await call(indexes.map((i) => items[i]!)), indexes.length);
      for (let j = 0; j < indexes.length; j++) out[indexes[j]!] = replies[j]!;
    }),
  );
  return out;
}

function checked<R>(replies: readonly R[], expected: number): R[] {
  if (replies.length !== expected) throw new Error(`assertion failed: a script answered ${replies.length} items of ${expected}`);
  return replies as R[];
}
