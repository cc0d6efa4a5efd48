import { createHash } from 'node:crypto';
import type { Proof } from './factors/proof.js';
import type { SimIdentity } from './model.js';
import type { CodeKit } from './steps/context.js';
import type { CreatePaymentInput } from './steps/create-prepare.js';

/** A request's canonical JSON (bigints as `<n>n`): what an idempotency key is bound to. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

/**
 * SHA-256 (hex) of a request's canonical JSON. Only for requests that carry no secret: an
 * unkeyed hash of a PIN or a code could be reversed by trying them all. Requests with secrets
 * are fingerprinted with a key (`CodeKit.fingerprint`).
 */
export function fingerprint(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/*
 * The hot path's idempotency fingerprints: the request's fields in a fixed order as a JSON array
 * (absent fields `null`, so absent and empty differ; the idempotency key itself is left out: the
 * fingerprint is stored under it), hashed once with the fingerprint key (`CodeKit.fingerprint`,
 * one SHA-256). The field order is this code's, not the caller's: two requests with the same
 * fields have the same fingerprint however their objects were built.
 */

function sim(s: SimIdentity | undefined): readonly string[] | undefined {
  return s === undefined ? undefined : [s.iccid, s.imsi, s.msisdn];
}

/** Every field of a create but its idempotency key and its authentication password (a secret never fingerprinted). */
export function createFields(input: CreatePaymentInput): string {
  return JSON.stringify([
    'create',
    input.payerId,
    input.payerPhone,
    input.loginAccount,
    input.payNumber,
    input.billableLineId,
    sim(input.originSim),
    input.payeeAccountId,
    input.amount.toString(),
    input.currency,
    input.description,
    input.channel,
    input.requestedFactors,
  ]);
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function proofFields(proof: Proof): readonly unknown[] {
  switch (proof.kind) {
    case 'second_code':
      return [proof.kind, proof.secondCode];
    case 'first_code_and_pin':
      return [proof.kind, proof.firstCode, proof.pin];
    case 'sms_otp':
      return [proof.kind, proof.code];
    case 'password':
      return [proof.kind, proof.password];
    case 'paired_device':
      return [proof.kind, proof.firstCode, sim(proof.auxiliarySim), proof.deviceId];
    case 'bank_card': {
      const e = proof.envelope;
      return [proof.kind, e.suite, e.keyId, b64(e.ephemeralPublicKey), b64(e.nonce), b64(e.ciphertext)];
    }
  }
}

/** A confirm's payment and proof (its codes, PINs or passwords: keyed, see `CodeKit.fingerprint`). */
export function confirmFields(paymentId: string, proof: Proof): string {
  return JSON.stringify(['confirm', paymentId, proofFields(proof)]);
}

/*
 * The fingerprints versions before 2026-12-06 stored: HMAC-SHA256 of the request's canonical JSON.
 * A key stored by one of them (alive for up to `idempotencyTtlMs`, 24 h by default, after an
 * upgrade) meets another fingerprint from this version: the create and confirm steps then ask the
 * store once more with these, only for the items it answered `conflict` (create.ts, confirm.ts).
 */

/** The fingerprint an earlier version stored for this create. */
export function legacyCreateFingerprint(codes: CodeKit, input: CreatePaymentInput): string {
  const { authPassword: _secret, ...request } = input;
  return codes.digest('idempotency', canonicalJson({ op: 'create', ...request }));
}

/** The fingerprint an earlier version stored for this confirm. */
export function legacyConfirmFingerprint(codes: CodeKit, paymentId: string, proof: Proof): string {
  return codes.digest('idempotency', canonicalJson({ op: 'confirm', paymentId, proof }));
}
