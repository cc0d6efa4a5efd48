import test from 'ava';
import { scriptArgumentsMax, scriptCalls, sharedKeyCalls } from '../../../authz/store/redis/batch.js';
import { type PackedArg, unpackReply } from '../../../authz/store/redis/pack.js';
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

test('sharedKeyCalls: each call names each key once; each item is one packed argument of its values and its keys’ positions; cut counting an item’s keys as new', async (t) => {
  const { calls, run } = recorder();
  // Items of 3 keys: their own, a shared one, and one shared by two: about 2.5 arguments each, so 9 000 items need two calls (head 1).
  const items = Array.from({ length: 9_000 }, (_, i) => i);
  const replies = await sharedKeyCalls(run, 'createAll', items, ['h'], (i) => ({
    keys: [`item:${i}`, 'shared', `pair:${Math.floor(i / 2)}`],
    values: [`v${i}`],
  }));
  t.deepEqual(
    replies,
    items.map((i) => `item:${i}`),
  );
  t.is(calls.length, 2);
  let seen = 0;
  for (const c of calls) {
    t.is(c.args[0], 'h');
    t.is(new Set(c.keys).size, c.keys.length, 'no key twice in a call');
    t.true(c.keys.length + c.args.length <= scriptArgumentsMax, `${c.keys.length} keys + ${c.args.length} arguments`);
    const named = new Set<string>();
    for (const arg of c.args.slice(1)) {
      const [value, ...positions] = unpackReply(packedArray(arg as PackedArg)) as [string, ...number[]];
      const i = seen++;
      t.is(value, `v${i}`);
      t.deepEqual(
        positions.map((p) => c.keys[p - 1]),
        [`item:${i}`, 'shared', `pair:${Math.floor(i / 2)}`],
        `item ${i}: its keys by position`,
      );
      for (const p of positions) named.add(c.keys[p - 1]!);
    }
    t.is(named.size, c.keys.length, 'every key of the call is some item’s');
  }
  t.is(seen, items.length);
  // 'shared' once per call, each pair's key once (twice if the cut splits the pair): 2.5 keys per item instead of 3.
  const named = calls.reduce((n, c) => n + c.keys.length, 0);
  t.true(named >= 9_000 + 4_500 + 2 && named <= 9_000 + 4_500 + 3, `${named} keys named`);
});

/** A packed argument (values one after another) as the array `cmsgpack.unpack` would read: a MessagePack array header before it. */
function packedArray(arg: PackedArg): Buffer {
  let n = 0;
  const bytes = arg.toBuffer();
  for (let at = 0; at < bytes.length; n++) {
    const b = bytes[at]!;
    // str (fixstr, str 8, 16, 32) or a position (positive fixint, uint 8, uint 16)
    const [head, len] =
      b < 0x80
        ? [1, 0]
        : b === 0xcc
          ? [2, 0]
          : b === 0xcd
            ? [3, 0]
            : b >= 0xa0 && b <= 0xbf
              ? [1, b & 0x1f]
              : b === 0xd9
                ? [2, bytes[at + 1]!]
                : b === 0xda
                  ? [3, bytes.readUInt16BE(at + 1)]
                  : [5, bytes.readUInt32BE(at + 1)];
    at += head + len;
  }
  return Buffer.concat([Buffer.from([0xdd, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]), bytes]);
}
