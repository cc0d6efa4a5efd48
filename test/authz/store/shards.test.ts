import test from 'ava';
import fc from 'fast-check';
import { shardOfPayment, storeShards, withShard } from '../../../authz/store/port.js';
import { idToHex } from '../../../ledger/ids.js';

/** What shardOfPayment computed before its two-digit read: the whole id as a BigInt. */
const wholeIdShard = (id: string) => Number((BigInt(`0x${id}`) >> 74n) & BigInt(storeShards - 1));

test('shardOfPayment reads the shard withShard put into any 128-bit id, in either case, as the whole-id BigInt reading does', (t) => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: storeShards - 1 }), (raw, shard) => {
      const id = idToHex(withShard(raw, shard));
      return shardOfPayment(id) === shard && shardOfPayment(id.toUpperCase()) === shard && wholeIdShard(id) === shard;
    }),
    { numRuns: 2000 },
  );
  t.is(shardOfPayment(`${'0'.repeat(12)}fc${'0'.repeat(18)}`), 63); // digits 13–14 = 0xfc: bits 74..79 all set
  t.is(shardOfPayment(`${'f'.repeat(12)}03${'f'.repeat(18)}`), 0); // bits 72–73 set, 74..79 clear
});

test('shardOfPayment: an id of fewer digits reads as the number it is; a character that is not hex throws as before', (t) => {
  t.is(shardOfPayment('1'), 0);
  t.is(shardOfPayment(`fc${'0'.repeat(18)}`), 63);
  t.throws(() => shardOfPayment(`${'0'.repeat(12)}g1${'0'.repeat(18)}`), { instanceOf: SyntaxError });
  t.throws(() => shardOfPayment(`${'0'.repeat(12)}1g${'0'.repeat(18)}`), { instanceOf: SyntaxError });
  t.throws(() => shardOfPayment(''), { instanceOf: SyntaxError });
});
