import { randomBytes } from 'node:crypto';
import test from 'ava';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { codeKits } from '../../services/code-kit.js';

// The opened-secret cache in front of AES-GCM: a payer's rotated secret is never answered from it.

const fields = { firstCode: '12345678', amount: 1999n, currency: 'USD', payeeAccountId: 'ab'.repeat(16) };

test('openPayerSecret: the sealed secret, opened again after rotation in this process and in another', (t) => {
  const masterKey = randomBytes(32);
  const here = codeKits(masterKey);
  const elsewhere = codeKits(masterKey); // another process with the same master key
  const first = randomBytes(32);
  const payer = { id: 'ab'.repeat(16), sealedSecret: here.enrollment.sealSecret('ab'.repeat(16), first) } as never as Parameters<
    typeof here.codes.openPayerSecret
  >[0];
  t.deepEqual(here.codes.openPayerSecret(payer), first);
  t.deepEqual(here.codes.openPayerSecret(payer), first, 'the cached answer is the same secret');
  t.is(here.codes.deriveSecondCode(here.codes.openPayerSecret(payer), fields), deriveSecondCode(first, fields));

  // Rotated by another process: a new sealed text reaches this one through the directory.
  const second = randomBytes(32);
  const rotatedElsewhere = { ...payer, sealedSecret: elsewhere.enrollment.sealSecret(payer.id, second) };
  t.deepEqual(here.codes.openPayerSecret(rotatedElsewhere), second, 'a new sealed text is opened, not answered from the cache');

  // Rotated here: the entry is dropped at once; the old sealed text still opens to the old secret (nothing stale is served for it).
  const third = randomBytes(32);
  const rotatedHere = { ...payer, sealedSecret: here.enrollment.sealSecret(payer.id, third) };
  t.deepEqual(here.codes.openPayerSecret(rotatedHere), third);
  t.deepEqual(here.codes.openPayerSecret(payer), first);
  t.throws(
    () => here.codes.openPayerSecret({ ...payer, id: 'cd'.repeat(16) }),
    { name: 'SecretBoxError' },
    'sealed for another payer: refused, never served from the cache',
  );
});
