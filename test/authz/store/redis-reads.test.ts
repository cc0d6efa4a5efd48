import test from 'ava';
import { Command, type Redis } from 'ioredis';
import { storeKeysOf } from '../../../authz/store/redis/keys.js';
import { recordReadWire } from '../../../authz/store/redis/reads.js';
import { recordFields } from '../../../authz/store/redis/record-codec.js';
import { createItem, draft, recordOf } from './payment-store.contract.js';
import { commandCalls, storeWithAdmin } from './redis-store-admin.js';

/** Payments the one-turn read test writes, then reads back in one turn of the event loop. */
const readsPerTurn = 50;
/** Socket reads redis-server may count for one pipelined write of `readsPerTurn` HMGETs (about 8 KB) and the INFO after it (2 measured). */
const serverReadsMax = 4;

test('a record read is the bytes ioredis would send for HMGET of every record field', (t) => {
  const keys = storeKeysOf('ps');
  const key = keys.record('0123456789abcdef0123456789abcdef');
  const ioredisBytes = new Command('hmget', [key, ...recordFields]).toWritable({ writable: true } as never);
  t.is(Buffer.from(recordReadWire(key), 'latin1').toString('hex'), Buffer.from(ioredisBytes as string, 'utf8').toString('hex'));
  t.true(recordReadWire(key).startsWith(`*${2 + recordFields.length}\r\n$5\r\nhmget\r\n$${key.length}\r\n${key}\r\n`));
});

test('a key that is not printable ASCII is refused before anything is sent (its length in bytes would not be its length in chars)', (t) => {
  t.throws(() => recordReadWire('ps:{s01}:p:é'), { message: /printable ASCII/ });
  t.throws(() => recordReadWire('ps:{s01}:p:a b'), { message: /printable ASCII/ });
  t.throws(() => recordReadWire(''), { message: /printable ASCII/ });
});

test('reads made in one turn go out as one write and each answers its own record', async (t) => {
  const { store, admin } = await storeWithAdmin(t);
  const t0 = Date.now();
  const drafts = Array.from({ length: readsPerTurn }, (_, i) => draft(t0, { description: `read ${i} ✓ ünïcode` }));
  const created = await store.create(drafts.map((d) => createItem(d, t0)));
  t.deepEqual(
    created.map((o) => o.outcome),
    drafts.map(() => 'created'),
  );

  const hmgetBefore = (await commandCalls(admin)).get('hmget') ?? 0;
  const readsBefore = await serverReads(admin);
  // One get per payment, all issued before any reply: one pipeline.
  const got = await Promise.all(drafts.map((d) => store.get([d.payment.id])));
  const readsDuring = (await serverReads(admin)) - readsBefore;
  t.is(((await commandCalls(admin)).get('hmget') ?? 0) - hmgetBefore, readsPerTurn);
  t.deepEqual(
    got.map(([record]) => record),
    drafts.map((d) => recordOf(d)),
  );
  // The INFO calls themselves are read events too: a write per get would be about readsPerTurn more.
  t.true(readsDuring <= serverReadsMax, `redis-server counted ${readsDuring} socket reads for ${readsPerTurn} gets`);
});

async function serverReads(admin: Redis): Promise<number> {
  return Number(/^total_reads_processed:(\d+)/m.exec(await admin.info('stats'))![1]);
}
