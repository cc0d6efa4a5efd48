import { assert } from '../checks.js';
import type { ScriptArg } from '../redis-scripts.js';
import { packedPositionMax, packStrings, withPositions } from './pack.js';
import type { RunScript, ScriptName } from './scripts.js';

/**
 * Arguments (keys and values together) one script call carries at most. ioredis (6.0 and 5.11) builds a
 * command's arguments on the stack: a 1000-item create (about 57 000 arguments) died of "Maximum
 * call stack size exceeded" or an uncaught "results[i] is not iterable" from about 60 000 on, so
 * a step's items are cut into script calls of at most this many (measured: README.md, "Bounds").
 */
export const scriptArgumentsMax = 20_000;
// A call's KEYS are fewer than its arguments: every position `sharedKeyCalls` writes fits `withPositions`.
assert(scriptArgumentsMax <= packedPositionMax, 'scriptArgumentsMax must not exceed packedPositionMax');

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
  return runCalls(run, name, cut(items, slotOf, head.length, encode), head, items.length);
}

/** One item's part of a call that names each key once (`sharedKeyCalls`): its keys, and its strings to pack. */
export interface SharedKeysItem {
  keys: readonly string[];
  values: (string | number)[];
}

/**
 * `scriptCalls` on a single Redis for items whose keys repeat across a batch (its merchant's
 * index, the due index, a payer's counters and index): each call names each key once in KEYS,
 * and each item is one packed argument (pack.ts) of its `values` (strings) followed by the
 * positions (1-based, MessagePack integers: Lua numbers) of its keys in KEYS, in the order
 * `encode` gave them. Redis spends about
 * 0.7 µs on each key of a call whatever it is (bench/README.md, round 6); a batch of one
 * merchant's payments names a third as many. Cut like `scriptCalls` (an item counted at its
 * keys, as if none were named yet, plus its argument).
 */
export async function sharedKeyCalls<T>(
  run: RunScript,
  name: ScriptName,
  items: readonly T[],
  head: readonly (string | number)[],
  encode: (item: T) => SharedKeysItem,
): Promise<unknown[]> {
  if (items.length === 0) return [];
  const calls: Call[] = [];
  let call: Call | undefined;
  let positions = new Map<string, number>();
  for (let i = 0; i < items.length; i++) {
    const { keys, values } = encode(items[i]!);
    const size = keys.length + 1;
    assert(head.length + size <= scriptArgumentsMax, `one item takes ${size} script arguments, above scriptArgumentsMax`);
    if (call === undefined || head.length + call.keys.length + call.args.length + size > scriptArgumentsMax) {
      call = { indexes: [], keys: [], args: [] };
      calls.push(call);
      positions = new Map();
    }
    const refs = new Array<number>(keys.length);
    for (let k = 0; k < keys.length; k++) {
      let at = positions.get(keys[k]!);
      if (at === undefined) {
        call.keys.push(keys[k]!);
        at = call.keys.length;
        positions.set(keys[k]!, at);
      }
      refs[k] = at;
    }
    call.indexes.push(i);
    call.args.push(withPositions(packStrings(values), refs));
  }
  return runCalls(run, name, calls, head, items.length);
}

/** Every call sent at once; each item's reply, in item order. */
async function runCalls(run: RunScript, name: ScriptName, calls: readonly Call[], head: readonly (string | number)[], count: number): Promise<unknown[]> {
  const out = new Array<unknown>(count);
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
