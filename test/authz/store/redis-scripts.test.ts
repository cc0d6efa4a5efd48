import test from 'ava';
import { Cluster, Redis } from 'ioredis';
import { packStrings, unpackReply } from '../../../authz/store/redis/pack.js';
import { redisScripts, wireChunkChars } from '../../../authz/store/redis-scripts.js';
import { startRedis } from '../../support/redis.js';
import { startRedisCluster } from '../../support/redis-cluster.js';

/** Answers what it was given: its keys (and their byte lengths), its plain arguments, and its first argument unpacked. */
const echoLua = `
local out = { {}, {}, {} }
for i = 1, #KEYS do out[1][i] = KEYS[i] end
out[3][1] = { cmsgpack.unpack(ARGV[1]) }
for i = 2, #ARGV do out[2][i - 1] = ARGV[i] end
for i = 1, #KEYS do out[1][#KEYS + i] = tostring(#KEYS[i]) end -- byte lengths
return cmsgpack.pack(out)`;
const specs = { echo: { lua: echoLua, reply: 'packed' }, plain: { lua: 'return { KEYS[1], ARGV[1] }' } } as const;

const keys = ['{t}:plain', '{t}:ünïcödé-€', '{t}:😀'];
const packedValues = ['', 'a'.repeat(40), 'é€😀 payé', '{"description":"naïve \\"quoted\\""}', 'x'.repeat(300)];
const args = [packStrings(packedValues), 'plain ascii', 'ünïcödé', 1_733_428_800_000, Buffer.from('buffer\u0000bytes', 'latin1')];
const expected = [
  [...keys, ...keys.map((k) => String(Buffer.byteLength(k)))],
  ['plain ascii', 'ünïcödé', '1733428800000', 'buffer\u0000bytes'],
  [packedValues],
];

async function check(t: import('ava').ExecutionContext, client: Redis | Cluster): Promise<void> {
  const scripts = redisScripts(client as Redis, specs);
  // The first call meets NOSCRIPT (a fresh server) and goes through EVAL; the second is the written EVALSHA.
  t.deepEqual(await scripts.echo(keys, args), expected, 'EVAL after NOSCRIPT');
  t.deepEqual(await scripts.echo(keys, args), expected, 'the EVALSHA written by hand');
  // Many at once (a Cluster sends each by its keys' slot), replies matched to their calls.
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) => scripts.echo([`{t${i}}:k`], [packStrings([`item ${i}`, 'é'])])));
  t.deepEqual(
    many.map((r) => (r as string[][][])[2]![0]),
    Array.from({ length: 50 }, (_, i) => [`item ${i}`, 'é']),
  );
  t.deepEqual(await scripts.plain(['{t}:k'], [packStrings(['v'])]), ['{t}:k', packStrings(['v']).toBuffer().toString()]);
  // A command of several chunks (wireChunkChars): keys and arguments of odd sizes, multi-byte ones across chunk ends.
  const bigKeys = Array.from({ length: 300 }, (_, i) => `{t}:${'k'.repeat(i % 97)}${i % 7 === 0 ? 'é€' : ''}:${i}`);
  const bigArgs = Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? `${'a'.repeat((i * 37) % 600)}😀${i}` : packStrings([`p${i}`, 'ü'.repeat(i)])));
  const size = [...bigKeys, ...bigArgs].reduce((n, a) => n + (typeof a === 'string' ? Buffer.byteLength(a) : a.bytes.length), 0);
  t.true(size > 3 * wireChunkChars, `${size} bytes of keys and arguments: several chunks`);
  const echoed = (await scripts.echo(bigKeys, [packStrings(['first']), ...bigArgs])) as string[][];
  t.deepEqual(echoed[0], [...bigKeys, ...bigKeys.map((k) => String(Buffer.byteLength(k)))]);
  t.deepEqual(
    echoed[1],
    bigArgs.map((a) => (typeof a === 'string' ? a : a.toBuffer().toString())), // replies are read as UTF-8
  );
}

test('redisScripts: a packed-reply script gets exactly its keys and arguments (UTF-8 keys, packed, plain, number and Buffer arguments) through EVAL and the hand-written EVALSHA', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const redis = new Redis(server.url, { enableAutoPipelining: true });
  t.teardown(() => redis.disconnect());
  await check(t, redis);
  t.deepEqual(unpackReply(Buffer.from([0x90])), [], 'an empty reply');
});

test('redisScripts on a Redis Cluster: the hand-written EVALSHA goes to the node owning its keys’ slot (no MOVED on any node)', async (t) => {
  const cluster = await startRedisCluster({ masters: 3 });
  t.teardown(() => cluster.stop());
  const client = new Cluster(cluster.nodes, { enableAutoPipelining: true });
  t.teardown(() => client.disconnect());
  await client.ping(); // the slot map is known before the first script
  await check(t, client);
  // A call sent to a node that does not own its slot is answered MOVED and counted as rejected there (Redis 7 commandstats).
  let rejected = 0;
  let calls = 0;
  for (const node of cluster.nodes) {
    const direct = new Redis({ host: node.host, port: node.port });
    const stats = await direct.info('commandstats');
    direct.disconnect();
    for (const name of ['evalsha', 'eval']) {
      const line = stats.split('\n').find((l) => l.startsWith(`cmdstat_${name}:`));
      calls += Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0);
      rejected += Number(/rejected_calls=(\d+)/.exec(line ?? '')?.[1] ?? 0);
    }
  }
  t.true(calls >= 54, `${calls} script calls seen by the nodes`);
  t.is(rejected, 0, 'no script call reached a node that does not own its slot');
});
