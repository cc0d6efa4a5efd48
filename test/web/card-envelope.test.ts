import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import test from 'ava';
import { openCard } from '../../services/bank/envelope.js';
import { generateX25519KeyPair } from '../../services/bank/hpke.js';
import { CardInputError, keyIdOf, sealCard } from '../../services/web/client/card-envelope.mjs';

/**
 * The card terminal's sealer (services/web/client/card-envelope.mts, @hpke/core) against
 * ENVELOPE.md's worked example and the bank's reference opener (services/bank/envelope.ts).
 */

const specFile = new URL('../../services/bank/ENVELOPE.md', import.meta.url);

/** The "name: value" lines of ENVELOPE.md §9. */
function workedExample(): (name: string) => string {
  const block = /<!-- worked-example[^\n]*\n```text\n([\s\S]*?)```/.exec(readFileSync(specFile, 'utf8'))?.[1];
  if (block === undefined) throw new Error('ENVELOPE.md has no worked example block');
  const values = new Map(
    block
      .trim()
      .split('\n')
      .map((line) => line.split(': ') as [string, string]),
  );
  return (name) => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`ENVELOPE.md's example has no ${name}`);
    return value;
  };
}

const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('reproduces ENVELOPE.md §9 byte for byte', async (t) => {
  const x = workedExample();
  const bankKey = { keyId: x('key_id'), suite: 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM', publicKey: fromHex(x('bank_public_key')) };
  t.is(await keyIdOf(bankKey.publicKey), x('key_id'));
  const payment = { id: x('payment_id'), merchantId: x('merchant_id'), amount: BigInt(x('amount')), currency: x('currency') };
  const envelope = await sealCard(
    bankKey,
    payment,
    { pan: x('pan'), expiry: x('expiry'), pin: x('pin') },
    { ephemeralPrivateKey: fromHex(x('ephemeral_private_key')), pinFill: fromHex(x('pin_fill')) },
  );
  t.is(toHex(envelope.ephemeralPublicKey), x('enc'));
  t.is(toHex(envelope.nonce), x('base_nonce'));
  t.is(toHex(envelope.ciphertext), x('ciphertext'));
  t.is(envelope.keyId, x('key_id'));
});

test("envelopes sealed by the terminal open with the bank's reference opener, for that payment only", async (t) => {
  const bank = generateX25519KeyPair();
  const bankKey = { keyId: await keyIdOf(bank.publicKey), suite: 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM', publicKey: bank.publicKey };
  for (let i = 0; i < 20; i++) {
    const pan = String(randomInt(1, 10)) + Array.from({ length: randomInt(11, 19) }, () => randomInt(10)).join('');
    const pin = Array.from({ length: randomInt(4, 13) }, () => randomInt(10)).join('');
    const payment = {
      id: randomBytes(16).toString('hex'),
      merchantId: randomBytes(16).toString('hex'),
      amount: BigInt(randomInt(1, 2 ** 40)),
      currency: 'EUR',
    };
    const envelope = await sealCard(bankKey, payment, { pan, expiry: '3012', pin });
    const opened = await openCard(bank.privateKey, envelope, payment);
    t.deepEqual(opened, { ok: true, value: { pan, expiry: '3012', pin } });
    t.false((await openCard(bank.privateKey, envelope, { ...payment, amount: payment.amount + 1n })).ok, 'another amount does not open');
  }
});

test('bad card input and a mismatched bank key are refused before sealing', async (t) => {
  const bank = generateX25519KeyPair();
  const bankKey = { keyId: await keyIdOf(bank.publicKey), suite: 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM', publicKey: bank.publicKey };
  const payment = { id: 'a'.repeat(32), merchantId: 'b'.repeat(32), amount: 100n, currency: 'USD' };
  const card = { pan: '4000000000000002', expiry: '3012', pin: '1234' };
  for (const bad of [{ pan: '12345' }, { pan: '4000x00000000002' }, { expiry: '3013' }, { pin: '12' }, { pin: '12a4' }]) {
    await t.throwsAsync(sealCard(bankKey, payment, { ...card, ...bad }), { instanceOf: CardInputError }, JSON.stringify(bad));
  }
  await t.throwsAsync(sealCard({ ...bankKey, keyId: '0'.repeat(16) }, payment, card), { instanceOf: CardInputError, message: /key id/ });
  await t.throwsAsync(sealCard({ ...bankKey, suite: 'other' }, payment, card), { instanceOf: CardInputError });
});
