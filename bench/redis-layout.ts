/**
 * What a payment record's layout costs redis-server: the record as a HASH of fields (what the
 * store writes, `authz/store/redis/record-codec.ts`) against the same fields as ONE MessagePack
 * string (`cmsgpack` in Lua), for the three things the step scripts do with a record — write a
 * new one (create), read it, change a few fields and write it back with an operation key
 * (confirm), and change a few fields without reading (settle) — and for answering a read with
 * the record. Each case is one EVAL of `itemsPerCall` items on a private redis-server, timed from
 * the client (redis-server is single-threaded and the call is long, so the wait is its work);
 * the best and the median of `roundsMax` calls, per item. A case's setup (writing the records
 * it reads) runs in the same script and is reported on its own line, to subtract.
 *
 *   npx tsx bench/redis-layout.ts
 *
 * Measured 2026-12-06, two runs (bench/README.md, round 8), setup subtracted, best of 5, µs per
 * item, HASH → string: create 4.6 → 1.5 and 7.2 → 2.0; confirm 8.9 → 12.7 and 11.1 → 9.7;
 * settle 5.6 → 10.1 and 3.0 → 11.6 (it must now read the record: one command more per
 * authorization, above the 16-command budget); a reply of the record 13.1 → 6.5 and 10.8 → 10.0.
 * Per authorization (a create, a confirm and its reply, a settle) −1.4 and +1.2 µs: no gain.
 */
import { Redis } from 'ioredis';
import { startPrivateRedis } from './processes.js';

/** Items per EVAL, and EVALs per case (the best and the median are shown). */
const itemsPerCall = 2_000;
const roundsMax = 5;

/** A CHALLENGED record's fields as the store writes them (sizes as in the bench's payments). */
const fields: Record<string, string> = {
  v: '1',
  st: 'CHALLENGED',
  rq: '0',
  sf: '',
  al: '3',
  ex: '1765000000000',
  up: '1765000000000',
  m: '0190a1b2c3d4e5f60718293a4b5c6d7e',
  py: '0190a1b2c3d4e5f60718293a4b5c6d7f',
  d0: 'a'.repeat(64),
  du: '1765000300000',
  sc: `+${'b'.repeat(60)}`,
  dr: '',
  dd: '',
  ba: '',
  j: JSON.stringify({
    id: '0190a1b2c3d4e5f60718293a4b5c6d80',
    amount: '12345',
    feeAmount: '0',
    currency: 'USD',
    payeeAccountId: '0190a1b2c3d4e5f60718293a4b5c6d81',
    debitAccountId: '0190a1b2c3d4e5f60718293a4b5c6d82',
    createdAtMs: 1765000000000,
    channel: 'APP',
    description: 'order 123',
  }),
  'o:7:confirm:key-1': `${'f'.repeat(64)}:1765000000000:approved`,
};
const flat = Object.entries(fields).flat();
const operationValue = `${'e'.repeat(64)}:1765000000000:approved`;

const hashSetup = "for i = 1, n do redis.call('HSET', 'r:' .. i, unpack(ARGV, 3)) end\n";
const stringSetup = "local packed = cmsgpack.pack(cjson.decode(ARGV[3]))\nfor i = 1, n do redis.call('SET', 'r:' .. i, packed) end\n";

interface Case {
  name: string;
  script: string;
  args: string[];
}

const cases: Case[] = [
  { name: 'create: HSET of the fields', script: hashSetup, args: flat },
  {
    name: 'create: SET of one string (the record as JSON text, about its MessagePack size)',
    script: "for i = 1, n do redis.call('SET', 'r:' .. i, ARGV[3]) end",
    args: [JSON.stringify(fields)],
  },
  { name: 'setup: records as HASHes', script: hashSetup, args: flat },
  {
    name: 'confirm on HASHes: HGETALL, table, HSET (setup included)',
    script: `${hashSetup}for i = 1, n do
  local k = 'r:' .. i
  local flat = redis.call('HGETALL', k)
  local r = {}
  for j = 1, #flat, 2 do r[flat[j]] = flat[j + 1] end
  redis.call('HSET', k, 'st', 'APPROVED', 'sf', '0', 'up', '1765000000001', 'v', '2', 'd0', '', 'o:7:confirm:key-2', ARGV[2])
end`,
    args: flat,
  },
  { name: 'setup: records as strings', script: stringSetup, args: [JSON.stringify(fields)] },
  {
    name: 'confirm on strings: GET, unpack, pack, SET (setup included)',
    script: `${stringSetup}for i = 1, n do
  local k = 'r:' .. i
  local r = cmsgpack.unpack(redis.call('GET', k))
  r.st = 'APPROVED' r.sf = '0' r.up = '1765000000001' r.v = '2' r.d0 = '' r['o:7:confirm:key-2'] = ARGV[2]
  redis.call('SET', k, cmsgpack.pack(r), 'KEEPTTL')
end`,
    args: [JSON.stringify(fields)],
  },
  {
    name: 'settle on HASHes: HSET, no read (setup included)',
    script: `${hashSetup}for i = 1, n do redis.call('HSET', 'r:' .. i, 'st', 'SUCCEEDED', 'up', '1765000000002', 'v', '3', 'du', '') end`,
    args: flat,
  },
  {
    name: 'settle on strings: GET, unpack, pack, SET (setup included)',
    script: `${stringSetup}for i = 1, n do
  local k = 'r:' .. i
  local r = cmsgpack.unpack(redis.call('GET', k))
  r.st = 'SUCCEEDED' r.up = '1765000000002' r.v = '3' r.du = ''
  redis.call('SET', k, cmsgpack.pack(r), 'KEEPTTL')
end`,
    args: [JSON.stringify(fields)],
  },
  {
    name: 'reply of HASHes: HGETALL each, packed (setup included)',
    script: `${hashSetup}local out = {}
for i = 1, n do out[i] = redis.call('HGETALL', 'r:' .. i) end
return cmsgpack.pack(out)`,
    args: flat,
  },
  {
    name: 'reply of strings: GET each, packed (setup included)',
    script: `${stringSetup}local out = {}
for i = 1, n do out[i] = redis.call('GET', 'r:' .. i) end
return cmsgpack.pack(out)`,
    args: [JSON.stringify(fields)],
  },
];

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const client = new Redis(redis.url, { maxRetriesPerRequest: 0 });
  try {
    console.log(`${itemsPerCall} items per EVAL, best and median of ${roundsMax} EVALs, µs per item\n`);
    console.log('| case | best | median |\n|---|--:|--:|');
    for (const c of cases) {
      const perItem: number[] = [];
      for (let round = 0; round < roundsMax; round++) {
        await client.flushall();
        const started = process.hrtime.bigint();
        await client.eval(`local n = tonumber(ARGV[1])\n${c.script}`, 0, String(itemsPerCall), operationValue, ...c.args);
        perItem.push(Number(process.hrtime.bigint() - started) / 1000 / itemsPerCall);
      }
      perItem.sort((a, b) => a - b);
      console.log(`| ${c.name} | ${perItem[0]!.toFixed(2)} | ${perItem[Math.floor(roundsMax / 2)]!.toFixed(2)} |`);
    }
  } finally {
    client.disconnect();
    await redis.stop();
  }
}

await main();
