import test from 'ava';
import { pooledRandomBytes, randomPoolBytes } from '../../ledger/random-pool.js';

test('pooledRandomBytes: n bytes each time, never the same bytes twice, across refills; a bad n is refused', (t) => {
  const seen = new Set<string>();
  const rounds = Math.ceil((3 * randomPoolBytes) / 12);
  let zeros = 0;
  for (let i = 0; i < rounds; i++) {
    const nonce = pooledRandomBytes(12);
    t.is(nonce.length, 12);
    zeros += nonce.filter((b) => b === 0).length;
    seen.add(nonce.toString('hex'));
  }
  t.is(seen.size, rounds, 'every 96-bit draw distinct (a repeat would be a pool handed out twice)');
  // About 1 byte in 256 is zero; a pool handed out after zeroing would be all zeros.
  t.true(zeros < (rounds * 12) / 32, `${zeros} zero bytes in ${rounds * 12}`);
  const copy = pooledRandomBytes(16);
  const before = copy.toString('hex');
  for (let i = 0; i < randomPoolBytes; i += 64) pooledRandomBytes(64);
  t.is(copy.toString('hex'), before, 'a returned buffer is a copy: refills do not change it');
  t.is(pooledRandomBytes(randomPoolBytes).length, randomPoolBytes);
  t.throws(() => pooledRandomBytes(randomPoolBytes + 1), { instanceOf: RangeError });
  t.throws(() => pooledRandomBytes(-1), { instanceOf: RangeError });
});
