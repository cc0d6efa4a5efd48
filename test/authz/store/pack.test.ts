import test from 'ava';
import { Redis } from 'ioredis';
import { isBrokenReply, type PackedReply, packedReplyDepthMax, packStrings, unpackReply, withPositions } from '../../../authz/store/redis/pack.js';
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
  const packed = packStrings(values).toBuffer();
  t.is(packed[0], 0xa0, 'an empty string is one byte');
  t.is(packStrings(values).bytes, packed.toString('latin1'), 'the byte string is the bytes, one char each');
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

test('positions after packed strings reach a real Redis script as Lua numbers, at every integer header bound (positive fixint, uint 8, uint 16); a position out of 0..65535 is refused', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const redis = new Redis(server.url);
  t.teardown(() => redis.disconnect());
  const positions = [0, 1, 127, 128, 255, 256, 65_535];
  const packed = withPositions(packStrings(['a', '128']), positions).toBuffer();
  const back = (await redis.eval(
    "local t = { cmsgpack.unpack(ARGV[1]) } local out = {} for i = 1, #t do out[i] = type(t[i]) .. ':' .. tostring(t[i]) end return out",
    0,
    packed,
  )) as string[];
  t.deepEqual(back, ['string:a', 'string:128', ...positions.map((n) => `number:${n}`)]);
  for (const bad of [-1, 65_536, 1.5]) t.throws(() => withPositions(packStrings([]), [bad]), { instanceOf: RangeError });
});

test('a packed script reply (cmsgpack.pack) unpacks to what ioredis makes of the same table as RESP: nested arrays, strings at every header bound, UTF-8, empty tables', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const redis = new Redis(server.url);
  t.teardown(() => redis.disconnect());
  const table = `
    local big = {}
    for i = 1, 70000 do big[i] = 'i' .. i end
    return { { 'created' }, { 'satisfied', '', { 'st', 'APPROVED', 'j', '{"d":"é€😀"}', 'e', '' } }, {},
      { string.rep('x', 31), string.rep('y', 32), string.rep('z', 255), string.rep('w', 256), string.rep('v', 65535), string.rep('u', 65536) },
      { { { 'deep' } } }, big }`;
  const resp = await redis.eval(table, 0);
  const packed = (await (redis as unknown as { evalBuffer(lua: string, n: number): Promise<Buffer> }).evalBuffer(
    `local function t() ${table} end return cmsgpack.pack(t())`,
    0,
  )) as Buffer;
  t.true(Buffer.isBuffer(packed));
  t.deepEqual(unpackReply(packed), resp as PackedReply);
});

test('a packed reply: integers of every width, negatives, floats, booleans and nil come back as numbers, booleans and null; a map, a truncated or over-long reply is refused', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const redis = new Redis(server.url);
  t.teardown(() => redis.disconnect());
  const evalBuffer = (lua: string) => (redis as unknown as { evalBuffer(lua: string, n: number): Promise<Buffer> }).evalBuffer(lua, 0);
  const numbers = [
    0,
    1,
    127,
    128,
    255,
    256,
    65535,
    65536,
    4294967295,
    4294967296,
    2 ** 53,
    -1,
    -32,
    -33,
    -128,
    -129,
    -32768,
    -32769,
    -2147483648,
    -2147483649,
    -(2 ** 53),
    0.5,
    -2.25,
    1e300,
  ];
  t.deepEqual(unpackReply(await evalBuffer(`return cmsgpack.pack({ ${numbers.map((n) => String(n)).join(', ')} })`)), numbers);
  t.deepEqual(unpackReply(await evalBuffer('return cmsgpack.pack({ true, false })')), [true, false]);
  t.is(unpackReply(await evalBuffer('return cmsgpack.pack(nil)')), null);
  const map = await evalBuffer("return cmsgpack.pack({ st = 'APPROVED' })");
  const refused = t.throws(() => unpackReply(map), { message: /^assertion failed: a packed script reply has type byte 0x81.*map/ });
  t.true(isBrokenReply(refused), 'a programmer error scripts.ts passes on (INTERNAL), not a StoreUnavailableError');
  t.false(isBrokenReply(new Error('assertion failed: something else')));
  const list = await evalBuffer("return cmsgpack.pack({ 'created', string.rep('x', 40) })");
  t.throws(() => unpackReply(list.subarray(0, list.length - 1)), { message: /ends inside a string/ });
  t.throws(() => unpackReply(list.subarray(0, 1)), { message: /announces 2 elements in 0 bytes/ });
  t.throws(() => unpackReply(Buffer.from([0xd9])), { message: /ends inside a value/ });
  t.throws(() => unpackReply(Buffer.concat([list, Buffer.from([0xc0])])), { message: /1 bytes after its value/ });
  t.throws(() => unpackReply(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0])), { message: /announces 4294967295 elements in 1 bytes/ });
  // cmsgpack's own bound: 16 nested tables pack, and unpack; a 17th level is refused.
  const deepest = await evalBuffer(`local t = { 'x' } for i = 1, ${packedReplyDepthMax - 1} do t = { t } end return cmsgpack.pack(t)`);
  let inner = unpackReply(deepest);
  for (let i = 1; i < packedReplyDepthMax; i++) inner = (inner as PackedReply[])[0]!;
  t.deepEqual(inner, ['x']);
  t.throws(() => unpackReply(Buffer.concat([Buffer.from([0x91]), deepest])), { message: /deeper than 16/ });
});
