import test from 'ava';
import { type RedisSnapshot, redisPerUnit } from '../../bench/redis-stats.js';

const snapshot = (calls: Record<string, number>, usec: Record<string, number>, cpuMicros: number): RedisSnapshot => ({ calls, usec, cpuMicros });
const noSweeper = { calls: 0, claimed: 0 };

test("redis-server's CPU per unit split into commands, the scripts' own time and the rest (hand-computed)", (t) => {
  const before = snapshot({ evalsha: 10, hset: 100, incr: 50 }, { evalsha: 5_000, hset: 900, incr: 200 }, 1_000_000);
  // 100 units: 3 script calls, 300 HSET (3 000 µs), 400 INCR (400 µs) run inside them; the scripts took 9 000 µs in all.
  const after = snapshot({ evalsha: 13, hset: 400, incr: 450 }, { evalsha: 14_000, hset: 3_900, incr: 600 }, 1_012_000);
  const r = redisPerUnit(before, after, 100, noSweeper);
  t.is(r.commandsPerUnit, (3 + 300 + 400) / 100);
  t.is(r.cpuMicrosPerUnit, 120);
  t.is(r.commandMicrosPerUnit, (3_000 + 400) / 100);
  t.is(r.scriptMicrosPerUnit, (9_000 - 3_400) / 100);
  t.is(r.otherMicrosPerUnit, (12_000 - 9_000) / 100);
  t.deepEqual(r.byCommand, { evalsha: 0.03, hset: 3, incr: 4 });
});

test('commands sent alone (no script in the window) are all command time; EVAL, FCALL and the _ro forms count as scripts', (t) => {
  const alone = redisPerUnit(snapshot({ hmget: 0 }, { hmget: 0 }, 0), snapshot({ hmget: 50 }, { hmget: 400 }, 1_000), 50, noSweeper);
  t.deepEqual([alone.commandMicrosPerUnit, alone.scriptMicrosPerUnit, alone.otherMicrosPerUnit], [8, 0, 12]);
  for (const name of ['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']) {
    const r = redisPerUnit(snapshot({}, {}, 0), snapshot({ [name]: 1, get: 1 }, { [name]: 30, get: 10 }, 50), 1, noSweeper);
    t.deepEqual([r.commandMicrosPerUnit, r.scriptMicrosPerUnit, r.otherMicrosPerUnit], [10, 20, 20], name);
  }
});

test('the parts never go below zero: wall times can exceed the CPU redis-server reports', (t) => {
  // Commands sent alone beside a cheaper script, and a window whose wall times add to more than its CPU.
  const r = redisPerUnit(snapshot({}, {}, 0), snapshot({ evalsha: 1, hmget: 10 }, { evalsha: 5, hmget: 80 }, 60), 1, noSweeper);
  t.is(r.scriptMicrosPerUnit, 0);
  t.is(r.commandMicrosPerUnit, 80);
  t.is(r.otherMicrosPerUnit, 0);
  const none = redisPerUnit(snapshot({}, {}, 0), snapshot({}, {}, 0), 0, noSweeper);
  t.deepEqual([none.cpuMicrosPerUnit, none.commandMicrosPerUnit, none.scriptMicrosPerUnit, none.otherMicrosPerUnit], [0, 0, 0, 0]);
});
