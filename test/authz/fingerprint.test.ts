import { randomBytes } from 'node:crypto';
import test from 'ava';
import type { Proof } from '../../authz/factors/proof.js';
import { canonicalJson, confirmFields, createFields, legacyConfirmFingerprint, legacyCreateFingerprint } from '../../authz/fingerprint.js';
import type { CreatePaymentInput } from '../../authz/steps/create-prepare.js';
import { codeKits } from '../../services/code-kit.js';

const { codes } = codeKits(randomBytes(32));

/** Every field set (`Required`: a field added to the input and not listed here fails the type check). */
const full: Required<CreatePaymentInput> = {
  idempotencyKey: 'k-1',
  payerId: 'ab'.repeat(16),
  payerPhone: '+15550001111',
  loginAccount: 'alice',
  payNumber: '4000123412341234',
  billableLineId: 'cd'.repeat(16),
  originSim: { iccid: '8901', imsi: '310150', msisdn: '+15550002222' },
  authPassword: 'hunter2',
  payeeAccountId: 'ef'.repeat(16),
  amount: 12_34n,
  currency: 'USD',
  description: 'coffee',
  channel: 'APP',
  requestedFactors: ['SECOND_CODE'],
};

/** Another value for each field of `full` (same type). */
const changed: { [K in keyof CreatePaymentInput]-?: CreatePaymentInput[K] } = {
  idempotencyKey: 'k-2',
  payerId: 'ac'.repeat(16),
  payerPhone: '+15550001112',
  loginAccount: 'alicf',
  payNumber: '4000123412341235',
  billableLineId: 'ce'.repeat(16),
  originSim: { iccid: '8901', imsi: '310150', msisdn: '+15550002223' },
  authPassword: 'hunter3',
  payeeAccountId: 'eg'.repeat(16),
  amount: 12_35n,
  currency: 'EUR',
  description: 'coffeE',
  channel: 'WEB',
  requestedFactors: ['SECOND_CODE', 'SMS_OTP'],
};

const fp = (input: CreatePaymentInput) => codes.fingerprint(createFields(input));

test('a create fingerprint is 64 hex, covers every field but the idempotency key and the password, and tells absent from empty', (t) => {
  const base = fp(full);
  t.regex(base, /^[0-9a-f]{64}$/);
  for (const field of Object.keys(full) as (keyof CreatePaymentInput)[]) {
    const other = fp({ ...full, [field]: changed[field] });
    if (field === 'idempotencyKey' || field === 'authPassword') t.is(other, base, `${field} is not part of the request's fingerprint`);
    else t.not(other, base, `${field} changes the fingerprint`);
  }
  for (const field of ['payerId', 'payerPhone', 'loginAccount', 'payNumber', 'billableLineId'] as const) {
    const { [field]: _gone, ...absent } = full;
    t.not(fp(absent), fp({ ...full, [field]: '' }), `${field} absent ≠ ${field} empty`);
  }
  t.not(fp({ ...full, description: 'a', currency: 'USD' }), fp({ ...full, description: '', currency: 'aUSD' }), 'fields do not run into each other');
});

test("a create fingerprint does not depend on the order the request object's fields were set in", (t) => {
  const reversed = Object.fromEntries(Object.entries(full).reverse()) as unknown as CreatePaymentInput;
  t.is(fp(reversed), fp(full));
  t.not(canonicalJson(reversed), canonicalJson(full), 'as the canonical JSON did');
});

test('a confirm fingerprint covers every field of every kind of proof', (t) => {
  const id = 'ab'.repeat(16);
  const envelope = { suite: 's', keyId: 'k', ephemeralPublicKey: new Uint8Array([1, 2]), nonce: new Uint8Array([3]), ciphertext: new Uint8Array([4, 5]) };
  const sim = { iccid: '1', imsi: '2', msisdn: '+3' };
  const proofs: [Proof, Proof[]][] = [
    [{ kind: 'second_code', secondCode: '12345678' }, [{ kind: 'second_code', secondCode: '12345679' }]],
    [
      { kind: 'first_code_and_pin', firstCode: '1111', pin: '2222' },
      [
        { kind: 'first_code_and_pin', firstCode: '1112', pin: '2222' },
        { kind: 'first_code_and_pin', firstCode: '1111', pin: '2223' },
      ],
    ],
    [{ kind: 'sms_otp', code: '123456' }, [{ kind: 'sms_otp', code: '123457' }]],
    [{ kind: 'password', password: 'pw' }, [{ kind: 'password', password: 'pW' }]],
    [
      { kind: 'paired_device', firstCode: '1', auxiliarySim: sim, deviceId: 'd' },
      [
        { kind: 'paired_device', firstCode: '2', auxiliarySim: sim, deviceId: 'd' },
        { kind: 'paired_device', firstCode: '1', auxiliarySim: { ...sim, imsi: '9' }, deviceId: 'd' },
        { kind: 'paired_device', firstCode: '1', auxiliarySim: sim, deviceId: 'e' },
      ],
    ],
    [
      { kind: 'bank_card', envelope },
      [
        { kind: 'bank_card', envelope: { ...envelope, suite: 't' } },
        { kind: 'bank_card', envelope: { ...envelope, keyId: 'l' } },
        { kind: 'bank_card', envelope: { ...envelope, ephemeralPublicKey: new Uint8Array([1, 3]) } },
        { kind: 'bank_card', envelope: { ...envelope, nonce: new Uint8Array([3, 0]) } },
        { kind: 'bank_card', envelope: { ...envelope, ciphertext: new Uint8Array([4]) } },
      ],
    ],
  ];
  const seen = new Set<string>();
  for (const [proof, others] of proofs) {
    const base = codes.fingerprint(confirmFields(id, proof));
    t.regex(base, /^[0-9a-f]{64}$/);
    seen.add(base);
    t.not(codes.fingerprint(confirmFields('cd'.repeat(16), proof)), base, `${proof.kind}: the payment counts`);
    for (const other of others) {
      const f = codes.fingerprint(confirmFields(id, other));
      t.not(f, base, `${proof.kind}: ${JSON.stringify(other, (_k, v) => (v instanceof Uint8Array ? [...v] : v))}`);
      seen.add(f);
    }
  }
  t.is(
    seen.size,
    proofs.reduce((n, [, others]) => n + 1 + others.length, 0),
    'no two proofs share a fingerprint',
  );
});

test('fingerprints are keyed: another master key, another fingerprint; the fields alone do not give it', async (t) => {
  const other = codeKits(randomBytes(32)).codes;
  const fields = confirmFields('ab'.repeat(16), { kind: 'second_code', secondCode: '12345678' });
  t.not(other.fingerprint(fields), codes.fingerprint(fields));
  const { hash } = await import('node:crypto');
  t.not(codes.fingerprint(fields), hash('sha256', fields, 'hex'), 'not the unkeyed hash of the fields');
  t.false(fields.includes('hunter2') || createFields(full).includes('hunter2'), 'the password is never in the fields');
});

test("an earlier version's fingerprints (HMAC of the canonical JSON) are still computed as it did, and differ from this version's", (t) => {
  const proof: Proof = { kind: 'second_code', secondCode: '12345678' };
  const { authPassword: _p, ...request } = full;
  t.is(legacyCreateFingerprint(codes, full), codes.digest('idempotency', canonicalJson({ op: 'create', ...request })));
  t.is(
    legacyConfirmFingerprint(codes, 'ab'.repeat(16), proof),
    codes.digest('idempotency', canonicalJson({ op: 'confirm', paymentId: 'ab'.repeat(16), proof })),
  );
  t.not(legacyCreateFingerprint(codes, full), fp(full));
});
