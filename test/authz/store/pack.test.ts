import test from 'ava';
import { Redis } from 'ioredis';
import { packStrings } from '../../../authz/store/redis/pack.js';
import { startRedis } from '../../support/redis.js';

test("packed arguments come back in a real Redis script as the same strings, at every MessagePack header's bounds (fixstr, str 8, 16, 32), UTF-8 and numbers as decimal text", async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const redis = new Redis(server.url);
  t.teardown(() => redis.disconnect());
  const values = [
    '',
    'a',
    'x'.repeat(31),
    'y'.repeat(32),
    'z'.repeat(255),
    'w'.repeat(256),
    'v'.repeat(65_535),
    'u'.repeat(65_536),
    'é€😀 payé',
    1_733_428_800_000,
    0,
  ];
  const packed = packStrings(values);
  t.is(packed[0], 0xa0, 'an empty string is one byte');
  const back = (await redis.eval('local t = { cmsgpack.unpack(ARGV[1]) } return t', 0, packed)) as string[];
  t.deepEqual(
    back,
    values.map((v) => String(v)),
  );
  const lengths = (await redis.eval('local t = { cmsgpack.unpack(ARGV[1]) } local n = {} for i = 1, #t do n[i] = #t[i] end return n', 0, packed)) as number[];
  t.deepEqual(
    lengths,
    values.map((v) => Buffer.byteLength(String(v))),
    'byte lengths as the script sees them',
  );
});
