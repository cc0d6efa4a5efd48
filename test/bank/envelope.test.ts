import { readFileSync } from 'node:fs';
import test from 'ava';
import type { SealedEnvelope } from '../../authz/model.js';
import {
  associatedData,
  type EnvelopePayment,
  envelopeCiphertextBytesMax,
  envelopeInfo,
  envelopeSuite,
  keyIdOf,
  openCard,
  openEnvelope,
  pinKeyExporterContext,
  sealCard,
} from '../../services/bank/envelope.js';
import { generateX25519KeyPair, publicKeyOf, setupBaseSender } from '../../services/bank/hpke.js';
import { encipherPinBlock, panField, pinField } from '../../services/bank/pin-block.js';

const h = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const utf8 = (text: string) => new TextEncoder().encode(text);

const bank = generateX25519KeyPair();
const bankKey = { keyId: keyIdOf(bank.publicKey), suite: envelopeSuite, publicKey: bank.publicKey };
const payment: EnvelopePayment = { id: '0190f5a3c2d47e8b9a6f1e2d3c4b5a69', merchantId: '7f3e2d1c0b0a09080706050403020100', amount: 2500n, currency: 'EUR' };
const card = { pan: '4000000000000002', expiry: '3012' };

function seal(): Promise<SealedEnvelope> {
  return sealCard({ bankKey, payment, card, pin: '1234' });
}

test('round trip: the bank opens card and PIN; the envelope carries no card data in clear', async (t) => {
  const envelope = await seal();
  t.is(envelope.suite, 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM');
  t.is(envelope.keyId, bankKey.keyId);
  t.is(envelope.ephemeralPublicKey.length, 32);
  t.is(envelope.nonce.length, 12);
  t.true(envelope.ciphertext.length <= envelopeCiphertextBytesMax);
  t.false(Buffer.from(envelope.ciphertext).toString('latin1').includes(card.pan));
  t.deepEqual(await openCard(bank.privateKey, envelope, payment), { ok: true, value: { pan: card.pan, expiry: '3012', pin: '1234' } });
  const second = await seal();
  t.notDeepEqual(second.ephemeralPublicKey, envelope.ephemeralPublicKey, 'a fresh ephemeral key per envelope');
});

test('rebuilt associated data: another amount (by 1), payment, merchant or currency does not open', async (t) => {
  const envelope = await seal();
  const failure = (p: EnvelopePayment) => openCard(bank.privateKey, envelope, p);
  t.deepEqual(await failure({ ...payment, amount: payment.amount + 1n }), { ok: false, failure: 'authentication' });
  t.deepEqual(await failure({ ...payment, amount: payment.amount - 1n }), { ok: false, failure: 'authentication' });
  t.deepEqual(await failure({ ...payment, id: '0190f5a3c2d47e8b9a6f1e2d3c4b5a6a' }), { ok: false, failure: 'authentication' });
  t.deepEqual(await failure({ ...payment, merchantId: '7f3e2d1c0b0a09080706050403020101' }), { ok: false, failure: 'authentication' });
  t.deepEqual(await failure({ ...payment, currency: 'USD' }), { ok: false, failure: 'authentication' });
});

test('tampering: a flipped ciphertext bit, another ephemeral key, another nonce, another bank key, another suite', async (t) => {
  const envelope = await seal();
  const flipped = envelope.ciphertext.slice();
  flipped[5]! ^= 0x01;
  t.deepEqual(await openCard(bank.privateKey, { ...envelope, ciphertext: flipped }, payment), { ok: false, failure: 'authentication' });
  const tagFlipped = envelope.ciphertext.slice();
  tagFlipped[tagFlipped.length - 1]! ^= 0x80;
  t.deepEqual(await openCard(bank.privateKey, { ...envelope, ciphertext: tagFlipped }, payment), { ok: false, failure: 'authentication' });
  const nonce = envelope.nonce.slice();
  nonce[0]! ^= 1;
  t.deepEqual(await openCard(bank.privateKey, { ...envelope, nonce }, payment), { ok: false, failure: 'nonce' });
  t.deepEqual(await openCard(bank.privateKey, { ...envelope, ephemeralPublicKey: generateX25519KeyPair().publicKey }, payment), {
    ok: false,
    failure: 'nonce',
  });
  t.deepEqual(await openCard(generateX25519KeyPair().privateKey, envelope, payment), { ok: false, failure: 'nonce' });
  t.deepEqual(await openCard(bank.privateKey, { ...envelope, suite: 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM' }, payment), {
    ok: false,
    failure: 'suite',
  });
  t.deepEqual(await openCard(bank.privateKey, { ...envelope, ciphertext: new Uint8Array(envelopeCiphertextBytesMax + 1) }, payment), {
    ok: false,
    failure: 'malformed',
  });
  t.deepEqual(await openCard(bank.privateKey, { ...envelope, ephemeralPublicKey: new Uint8Array(32) }, payment), { ok: false, failure: 'malformed' });
  t.deepEqual(await openCard(bank.privateKey, { ...envelope, nonce: envelope.nonce.subarray(0, 11) }, payment), { ok: false, failure: 'malformed' });
});

test('a well-sealed plaintext that is not the version-1 object, or whose PIN block was made for another PAN, is refused', async (t) => {
  /** Seals `plaintext(K)` exactly as sealCard does, so only the plaintext differs. */
  const finish = async (plaintext: (k: Uint8Array) => string): Promise<SealedEnvelope> => {
    const context = await setupBaseSender({ aead: 'AES-256-GCM', recipientPublicKey: bank.publicKey, info: utf8(envelopeInfo) });
    const k = await context.export(utf8(pinKeyExporterContext), 16);
    const ciphertext = await context.seal(associatedData(payment), utf8(plaintext(k)));
    return { suite: envelopeSuite, keyId: bankKey.keyId, ephemeralPublicKey: context.enc, nonce: context.baseNonce, ciphertext };
  };
  const block = (k: Uint8Array, pan: string) => hex(encipherPinBlock(k, '1234', pan));
  const extra = await finish((k) => JSON.stringify({ v: 1, pan: card.pan, expiry: '3012', pinBlock: block(k, card.pan), cvv: '123' }));
  t.deepEqual(await openCard(bank.privateKey, extra, payment), { ok: false, failure: 'plaintext' });
  const v2 = await finish((k) => JSON.stringify({ v: 2, pan: card.pan, expiry: '3012', pinBlock: block(k, card.pan) }));
  t.deepEqual(await openCard(bank.privateKey, v2, payment), { ok: false, failure: 'plaintext' });
  const badExpiry = await finish((k) => JSON.stringify({ v: 1, pan: card.pan, expiry: '3013', pinBlock: block(k, card.pan) }));
  t.deepEqual(await openCard(bank.privateKey, badExpiry, payment), { ok: false, failure: 'plaintext' });
  const otherPan = await finish((k) => JSON.stringify({ v: 1, pan: card.pan, expiry: '3012', pinBlock: block(k, '4000000000000010') }));
  t.deepEqual(await openCard(bank.privateKey, otherPan, payment), { ok: false, failure: 'pin_block' });
  const reordered = await finish((k) => JSON.stringify({ pinBlock: block(k, card.pan).toUpperCase(), expiry: '3012', pan: card.pan, v: 1 }));
  t.deepEqual(await openCard(bank.privateKey, reordered, payment), { ok: true, value: { pan: card.pan, expiry: '3012', pin: '1234' } });
});

test('sealCard refuses bad card data and unsupported bank keys', async (t) => {
  const base = { bankKey, payment, card, pin: '1234' };
  await t.throwsAsync(sealCard({ ...base, pin: '123' }), { instanceOf: RangeError });
  await t.throwsAsync(sealCard({ ...base, card: { ...card, pan: '40000000002' } }), { instanceOf: RangeError });
  await t.throwsAsync(sealCard({ ...base, card: { ...card, expiry: '3000' } }), { instanceOf: RangeError });
  await t.throwsAsync(sealCard({ ...base, bankKey: { ...bankKey, suite: 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM' } }), {
    instanceOf: RangeError,
  });
  await t.throwsAsync(sealCard({ ...base, payment: { ...payment, amount: 0n } }), { instanceOf: RangeError });
  await t.throwsAsync(sealCard({ ...base, payment: { ...payment, id: 'a\nb' } }), { instanceOf: RangeError });
});

test('the worked example of ENVELOPE.md', async (t) => {
  const x = workedExample();
  const privateKey = h(x.bank_private_key);
  const publicKey = publicKeyOf(privateKey);
  t.is(hex(publicKey), x.bank_public_key);
  t.is(keyIdOf(publicKey), x.key_id);
  const p: EnvelopePayment = { id: x.payment_id, merchantId: x.merchant_id, amount: BigInt(x.amount), currency: x.currency };
  t.is(hex(associatedData(p)), x.associated_data);
  t.is(new TextDecoder().decode(associatedData(p)), `countersign.v1.bank-card\n${x.payment_id}\n${x.merchant_id}\n${x.amount}\n${x.currency}`);

  // shared_secret, key and exporter_secret stay inside @hpke/core's context: base_nonce, the
  // exported K and the ciphertext below are their known answers.
  const context = await setupBaseSender({
    aead: 'AES-256-GCM',
    recipientPublicKey: publicKey,
    info: utf8(envelopeInfo),
    ephemeralPrivateKey: h(x.ephemeral_private_key),
  });
  t.is(hex(context.enc), x.enc);
  t.is(hex(context.baseNonce), x.base_nonce);
  const k = await context.export(utf8(pinKeyExporterContext), 16);
  t.is(hex(k), x.pin_block_key);
  t.is(hex(pinField(x.pin, h(x.pin_fill))), x.pin_field);
  t.is(hex(panField(x.pan)), x.pan_field);
  t.is(hex(encipherPinBlock(k, x.pin, x.pan, h(x.pin_fill))), x.pin_block);

  const envelope = await sealCard({
    bankKey: { keyId: x.key_id, suite: envelopeSuite, publicKey },
    payment: p,
    card: { pan: x.pan, expiry: x.expiry },
    pin: x.pin,
    deterministic: { ephemeralPrivateKey: h(x.ephemeral_private_key), pinFill: h(x.pin_fill) },
  });
  t.is(hex(envelope.ephemeralPublicKey), x.enc);
  t.is(hex(envelope.nonce), x.base_nonce);
  t.is(hex(envelope.ciphertext), x.ciphertext);
  t.is(envelope.ciphertext.length, 110);
  const opened = await openEnvelope(privateKey, envelope, p);
  t.true(opened.ok);
  if (opened.ok) t.is(JSON.stringify(opened.value.plaintext), x.plaintext);
  t.deepEqual(await openCard(privateKey, envelope, p), { ok: true, value: { pan: x.pan, expiry: x.expiry, pin: x.pin } });
  t.deepEqual(await openCard(privateKey, envelope, { ...p, amount: 2501n }), { ok: false, failure: 'authentication' });
});

const exampleNames = [
  'bank_private_key',
  'bank_public_key',
  'key_id',
  'ephemeral_private_key',
  'payment_id',
  'merchant_id',
  'amount',
  'currency',
  'pan',
  'expiry',
  'pin',
  'pin_fill',
  'associated_data',
  'enc',
  'shared_secret',
  'key',
  'base_nonce',
  'exporter_secret',
  'pin_block_key',
  'pin_field',
  'pan_field',
  'pin_block',
  'plaintext',
  'ciphertext',
] as const;

/** The "name: value" lines of the fenced block after the worked-example marker in ENVELOPE.md. */
function workedExample(): Record<(typeof exampleNames)[number], string> {
  const text = readFileSync(new URL('../../services/bank/ENVELOPE.md', import.meta.url), 'utf8');
  const marker = text.indexOf('<!-- worked-example');
  const start = text.indexOf('```text\n', marker) + '```text\n'.length;
  const block = text.slice(start, text.indexOf('\n```', start));
  const values = new Map(block.split('\n').map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]));
  const entries = exampleNames.map((name) => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`ENVELOPE.md worked example lacks ${name}`);
    return [name, value] as const;
  });
  return Object.fromEntries(entries) as Record<(typeof exampleNames)[number], string>;
}
