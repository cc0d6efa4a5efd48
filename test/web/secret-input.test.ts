import { randomBytes } from 'node:crypto';
import test from 'ava';
import { secondCodeSuite } from '../../authz/codes/challenge.js';
import { base32Encode, otpauthUri } from '../../authz/codes/secret.js';
import { parseSecretInput, SecretInputError } from '../../services/web/client/secret-input.mjs';

/** What the payer pastes at enrollment, as EnrollPayer's two forms give it. */

test('base32 as EnrollPayer gives it, padded or not, any case, with spaces', (t) => {
  for (let i = 0; i < 20; i++) {
    const secret = randomBytes(20 + i);
    const base32 = base32Encode(secret);
    for (const text of [base32, base32.replace(/=+$/, ''), base32.toLowerCase(), ` ${base32.replace(/(.{4})/g, '$1 ')} `]) {
      const parsed = parseSecretInput(text);
      t.deepEqual(Buffer.from(parsed.secret), secret);
      t.is(parsed.suite, secondCodeSuite);
    }
  }
});

test('the otpauth URI from enrollment gives the secret and its suite', (t) => {
  const secret = randomBytes(32);
  const uri = otpauthUri({ issuer: 'countersign', account: '+14155550123', secret, suite: 'OCRA-1:HOTP-SHA256-8:QA64' });
  const parsed = parseSecretInput(uri);
  t.deepEqual(Buffer.from(parsed.secret), secret);
  t.is(parsed.suite, 'OCRA-1:HOTP-SHA256-8:QA64');
});

test('short, malformed or foreign secrets are refused in words', (t) => {
  const short = base32Encode(randomBytes(19));
  t.throws(() => parseSecretInput(short), { instanceOf: SecretInputError, message: /at least 160 bits/ });
  t.throws(() => parseSecretInput(''), { instanceOf: SecretInputError });
  t.throws(() => parseSecretInput('not base32 at all!'), { instanceOf: SecretInputError, message: /not base32/ });
  t.throws(() => parseSecretInput('A'.repeat(1025)), { instanceOf: SecretInputError, message: /too long/ });
  t.throws(() => parseSecretInput(`otpauth://totp/x?secret=${base32Encode(randomBytes(20))}`), { instanceOf: SecretInputError, message: /not an OCRA/ });
  t.throws(() => parseSecretInput('otpauth://ocra/x?issuer=countersign'), { instanceOf: SecretInputError, message: /no secret/ });
});
