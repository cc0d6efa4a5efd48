import test from 'ava';
import {
  deriveKeyPair,
  generateX25519KeyPair,
  openBase,
  publicKeyOf,
  sealBase,
  setupBaseRecipient,
  setupBaseSender,
  suiteName,
} from '../../services/bank/hpke.js';

/**
 * RFC 9180 Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
 * The values are the RFC's, as its test-vectors.json and several independent implementations
 * carry them.
 */
const a11 = {
  info: '4f6465206f6e2061204772656369616e2055726e',
  ikmE: '7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234',
  pkEm: '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431',
  skEm: '52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736',
  ikmR: '6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037',
  pkRm: '3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d',
  skRm: '4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8',
  enc: '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431',
  sharedSecret: 'fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc',
  key: '4531685d41d65f03dc48f6b8302c05b0',
  baseNonce: '56d890e5accaaf011cff4b7d',
  exporterSecret: '45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8',
  // Encryption sequence number 0.
  aad0: '436f756e742d30',
  pt: '4265617574792069732074727574682c20747275746820626561757479',
  ct0: 'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a',
  exports: [
    { context: '', value: '3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee' },
    { context: '00', value: '2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5' },
    { context: '54657374436f6e74657874', value: 'e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931' },
  ],
};

const h = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

test('DeriveKeyPair reproduces both key pairs of A.1.1', async (t) => {
  const e = await deriveKeyPair(h(a11.ikmE));
  t.is(hex(e.privateKey), a11.skEm);
  t.is(hex(e.publicKey), a11.pkEm);
  const r = await deriveKeyPair(h(a11.ikmR));
  t.is(hex(r.privateKey), a11.skRm);
  t.is(hex(r.publicKey), a11.pkRm);
  t.is(hex(publicKeyOf(h(a11.skRm))), a11.pkRm);
});

// The library keeps shared_secret, key and exporter_secret inside its context: the ciphertext
// (key, base_nonce) and the three exports (exporter_secret) are their known answers here.
test('the sender with the vector ephemeral key reproduces enc, base_nonce, the seq-0 ciphertext and the exports', async (t) => {
  const s = await setupBaseSender({ aead: 'AES-128-GCM', recipientPublicKey: h(a11.pkRm), info: h(a11.info), ephemeralPrivateKey: h(a11.skEm) });
  t.is(hex(s.enc), a11.enc);
  t.is(hex(s.baseNonce), a11.baseNonce);
  for (const e of a11.exports) t.is(hex(await s.export(h(e.context), 32)), e.value, `export "${e.context}"`);
  t.is(hex(await s.seal(h(a11.aad0), h(a11.pt))), a11.ct0);
});

test('the recipient reproduces the same context and opens the seq-0 ciphertext', async (t) => {
  const r = await setupBaseRecipient({ aead: 'AES-128-GCM', recipientPrivateKey: h(a11.skRm), enc: h(a11.enc), info: h(a11.info) });
  if (r === undefined) return t.fail('the vector enc is refused');
  t.is(hex(r.baseNonce), a11.baseNonce);
  for (const e of a11.exports) t.is(hex(await r.export(h(e.context), 32)), e.value);
  t.is(hex((await r.open(h(a11.aad0), h(a11.ct0)))!), a11.pt);
});

test('single-shot seal/open round trip with AES-256-GCM; wrong aad, info, key or a flipped bit fail', async (t) => {
  const bank = generateX25519KeyPair();
  const info = new TextEncoder().encode('info');
  const aad = new TextEncoder().encode('aad');
  const plaintext = new TextEncoder().encode('card and pin');
  const { enc, ciphertext } = await sealBase({ aead: 'AES-256-GCM', recipientPublicKey: bank.publicKey, info, aad, plaintext });
  t.is(ciphertext.length, plaintext.length + 16);
  const open = (o: Partial<Parameters<typeof openBase>[0]>) =>
    openBase({ aead: 'AES-256-GCM', recipientPrivateKey: bank.privateKey, enc, info, aad, ciphertext, ...o });
  t.deepEqual(await open({}), plaintext);
  t.is(await open({ aad: new TextEncoder().encode('aae') }), undefined);
  t.is(await open({ info: new TextEncoder().encode('infx') }), undefined);
  t.is(await open({ aead: 'AES-128-GCM' }), undefined);
  t.is(await open({ recipientPrivateKey: generateX25519KeyPair().privateKey }), undefined);
  const flipped = ciphertext.slice();
  flipped[0]! ^= 1;
  t.is(await open({ ciphertext: flipped }), undefined);
  t.is(await open({ enc: new Uint8Array(32) }), undefined, 'a small-order (all-zero) enc is refused');
  t.is(await open({ enc: enc.subarray(0, 31) }), undefined);
  t.is(suiteName('AES-256-GCM'), 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM');
});
