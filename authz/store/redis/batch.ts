import { assert } from '../checks.js';
import type { ScriptArg } from '../redis-scripts.js';
import type { RunScript, ScriptName } from './scripts.js';

/**
 * Arguments (keys and values together) one script call carries at most. ioredis (6.0 and 5.11) builds a
 * command's arguments on the stack: a 1000-item create (about 57 000 arguments) died of "Maximum
 * call stack size exceeded" or an uncaught "results[i] is not iterable" from about 60 000 on, so
 * a step's items are cut into script calls of at most this many (measured: README.md, "Bounds").
 */
export const scriptArgumentsMax = 20_000;

/** One item's part of a script call: its keys and its arguments, in the script's order. */
export interface ScriptItem {
  keys: readonly string[];
  args: readonly ScriptArg[];
}

/**
 * Runs script `name` over `items` and returns each item's reply, in item order. The items are
 * grouped by the Cluster slot their keys share (`slotOf`; undefined on a single Redis: one
 * group), each group cut at item boundaries into calls of at most `scriptArgumentsMax`
 * arguments (`head`, the arguments every call starts with, included), and every call is sent at
 * once (the packed-reply scripts a write each, redis-scripts.ts; the others auto-pipelined), one round trip. Items run in order within a
 * call, and the calls of one connection run in the order sent; they are not one transaction.
 */
export async function scriptCalls<T>(
  run: RunScript,
  name: ScriptName,
  items: readonly T[],
  slotOf: ((item: T) => number) | undefined,
  head: readonly (string | number)[],
  encode: (item: T) => ScriptItem,
): Promise<unknown[]> {
  if (items.length === 0) return [];
  const calls = cut(items, slotOf, head.length, encode);
  const out = new Array<unknown>(items.length);
  await Promise.all(
    calls.map(async ({ indexes, keys, args }) => {
      const replies = (await run(name, keys, [...head, ...args])) as unknown[];
      assert(
        Array.isArray(replies) && replies.length === indexes.length,
        `a script answered ${Array.isArray(replies) ? replies.length : 'no'} items of ${indexes.length}`,
      );
      for (let j = 0; j < indexes.length; j++) out[indexes[j]!] = replies[j];
    }),
  );
  return out;
}

interface Call {
  indexes: number[];
  keys: string[];
  args: ScriptArg[];
}

/** The script calls of a step: per slot, in item order, each at most `scriptArgumentsMax` arguments. */
function cut<T>(items: readonly T[], slotOf: ((item: T) => number) | undefined, headLength: number, encode: (item: T) => ScriptItem): Call[] {
  const open = new Map<number, Call>();
  const calls: Call[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const slot = slotOf === undefined ? 0 : slotOf(item);
    const { keys, args } = encode(item);
    const size = keys.length + args.length;
    assert(headLength + size <= scriptArgumentsMax, `one item takes ${size} script arguments, above scriptArgumentsMax`);
    let call = open.get(slot);
    if (call === undefined || headLength + call.keys.length + call.args.length + size > scriptArgumentsMax) {
      call = { indexes: [], keys: [], args: [] };
      open.set(slot, call);
      calls.push(call);
    }
    call.indexes.push(i);
    for (const key of keys) call.keys.push(key);
    for (const arg of args) call.args.push(arg);
  }
  return calls;
}
