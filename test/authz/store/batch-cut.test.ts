import test from 'ava';
import { scriptArgumentsMax, scriptCalls } from '../../../authz/store/redis/batch.js';
import type { RunScript } from '../../../authz/store/redis/scripts.js';

/** The calls a step makes, recorded by a stand-in for the script runner that answers each item with its own name. */
function recorder() {
  const calls: { keys: readonly string[]; args: readonly unknown[] }[] = [];
  const run: RunScript = async (_name, keys, args) => {
    calls.push({ keys, args });
    return keys.filter((k) => k.startsWith('item:'));
  };
  return { calls, run };
}

test('a step is cut at item boundaries into calls of at most scriptArgumentsMax arguments (the head included), sent together; replies come back in item order', async (t) => {
  const { calls, run } = recorder();
  // Items of 1 key and 4 999 arguments: 5 000 each, so 3 fit beside a head of 2 (15 002 ≤ 20 000), a 4th would not.
  const items = Array.from({ length: 7 }, (_, i) => i);
  const replies = await scriptCalls(run, 'confirm', items, undefined, ['h1', 'h2'], (i) => ({
    keys: [`item:${i}`],
    args: new Array<string>(4_999).fill(String(i)),
  }));
  t.deepEqual(
    replies,
    items.map((i) => `item:${i}`),
  );
  t.deepEqual(
    calls.map((c) => c.keys),
    [['item:0', 'item:1', 'item:2'], ['item:3', 'item:4', 'item:5'], ['item:6']],
  );
  for (const c of calls) {
    t.deepEqual(c.args.slice(0, 2), ['h1', 'h2'], 'every call starts with the head');
    t.true(c.keys.length + c.args.length <= scriptArgumentsMax);
  }
});

test('on a Cluster the items are grouped by slot first, in item order within each', async (t) => {
  const { calls, run } = recorder();
  const replies = await scriptCalls(
    run,
    'confirm',
    [0, 1, 2, 3, 4],
    (i) => i % 2,
    [],
    (i) => ({ keys: [`item:${i}`], args: [] }),
  );
  t.deepEqual(replies, ['item:0', 'item:1', 'item:2', 'item:3', 'item:4']);
  t.deepEqual(
    calls.map((c) => c.keys),
    [
      ['item:0', 'item:2', 'item:4'],
      ['item:1', 'item:3'],
    ],
  );
});
