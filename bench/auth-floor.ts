/**
 * The work one authorization needs whatever the batching: its crypto, its wire encoding and its
 * records, each operation timed alone in a tight loop (best of `roundsMax` rounds), in this
 * process, without stores, ledger or garbage-collection pressure from anything else. What the
 * batch scenario's server CPU per authorization can never go below (bench/README.md).
 *
 *   npx tsx bench/auth-floor.ts
 */
import { randomBytes } from 'node:crypto';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { newVerificationSecret } from '../authz/codes/secret.js';
import type { Proof } from '../authz/factors/proof.js';
import { confirmFields, createFields } from '../authz/fingerprint.js';
import type { Payment } from '../authz/model.js';
import type { CreatePaymentInput } from '../authz/steps/create-prepare.js';
import { packStrings } from '../authz/store/redis/pack.js';
import { decodeRecordValues, encodeRecord, recordFields } from '../authz/store/redis/record-codec.js';
import { PaymentSchema } from '../gen/countersign/v1/common_pb.js';
import { CreatePaymentRequestSchema } from '../gen/countersign/v1/payments_pb.js';
import { codeKits } from '../services/code-kit.js';
import { paymentToProto } from '../services/convert.js';
import { encodeMessage } from '../services/rpc/fast-binary.js';

/** Calls per round, and rounds per operation (the best round counts). */
const callsPerRound = 20_000;
const roundsMax = 5;

const { codes } = codeKits(randomBytes(32));
const hex = (): string => randomBytes(16).toString('hex');
const nowMs = Date.now();
const payment: Payment = {
  id: hex(),
  merchantId: hex(),
  payerId: hex(),
  payeeAccountId: hex(),
  payerAccountId: hex(),
  amount: 4_321n,
  currency: 'USD',
  description: '',
  channel: 'MERCHANT',
  requiredFactors: ['SECOND_CODE'],
  satisfiedFactors: [],
  attemptsLeft: 5,
  state: 'CHALLENGED',
  createdAtMs: nowMs,
  updatedAtMs: nowMs,
  expiresAtMs: nowMs + 300_000,
  feeAmount: 43n,
  originPath: 'data',
};
const secret = newVerificationSecret();
const createInput: CreatePaymentInput = {
  idempotencyKey: 'b123-b4567',
  payerId: payment.payerId,
  payeeAccountId: '',
  amount: 4_321n,
  currency: 'USD',
  description: '',
  channel: 'MERCHANT',
  requestedFactors: [],
};
const secondCodeProof: Proof = { kind: 'second_code', secondCode: '12345678' };
const requestBytes = toBinary(
  CreatePaymentRequestSchema,
  create(CreatePaymentRequestSchema, { idempotencyKey: 'b123-b4567', payer: { case: 'payerId', value: payment.payerId }, amount: 4_321n, currency: 'USD' }),
);
const proto = paymentToProto(payment);
const record = { payment, version: 1, digests: { SECOND_CODE: 'ab'.repeat(32) }, dueAtMs: payment.expiresAtMs };

/** Microseconds per call of `run`, best round. */
function time(run: () => unknown): number {
  let best = Infinity;
  for (let round = 0; round < roundsMax; round++) {
    const started = performance.now();
    for (let i = 0; i < callsPerRound; i++) run();
    best = Math.min(best, ((performance.now() - started) * 1000) / callsPerRound);
  }
  return best;
}

/** [what, calls per authorization, the call] */
const operations: [string, number, () => unknown][] = [
  ['HMAC-SHA256 digest: expected response, answer, delivery key', 3, () => codes.digest(`${payment.id}:SECOND_CODE`, '12345678')],
  ['idempotency fingerprint of a create (its fields + one keyed SHA-256)', 1, () => codes.fingerprint(createFields(createInput))],
  ['idempotency fingerprint of a confirm (its fields + one keyed SHA-256)', 1, () => codes.fingerprint(confirmFields(payment.id, secondCodeProof))],
  ['first code (CSPRNG)', 1, () => codes.newFirstCode()],
  ['second code: OCRA over first code, amount, currency, payee', 1, () => codes.deriveSecondCode(secret, { firstCode: '12345678', ...payment })],
  ['AES-256-GCM seal of the first code (the payer secret is opened from a cache: code-kit.ts)', 1, () => codes.sealFirstCode(payment.id, '12345678')],
  ['CreatePaymentRequest decode (protobuf)', 1, () => fromBinary(CreatePaymentRequestSchema, requestBytes)],
  ['Payment to its proto message (services/convert.ts)', 2, () => paymentToProto(payment)],
  ['Payment proto encode (services/rpc/fast-binary.ts, as responses are encoded)', 2, () => encodeMessage(PaymentSchema, proto)],
];
/** The record as a script answers it (lua-common.ts `values`): its fields' values in `recordFields` order, false where missing. */
const stored = new Map<string, string>();
for (let i = 0, f = encodeRecord(record); i < f.length; i += 2) stored.set(f[i]!, f[i + 1]!);
const replyValues = recordFields.map((field) => stored.get(field) ?? false);
/** Redis only (not in the floor): the record's fields written at create and read back from the confirm's reply, packed as the scripts take them. */
const recordCodec: [string, number, () => unknown] = [
  'Redis record: fields encoded and packed (create) + decoded (the confirm reply)',
  1,
  () => {
    const fields = encodeRecord(record);
    return packStrings(fields).bytes.length + decodeRecordValues(replyValues).version;
  },
];

let floorUs = 0;
console.log('| operation | per auth | µs per call | µs per auth |\n|---|--:|--:|--:|');
for (const [what, perAuth, run] of [...operations, recordCodec]) {
  const us = time(run);
  if (run !== recordCodec[2]) floorUs += us * perAuth;
  console.log(`| ${what} | ${perAuth} | ${us.toFixed(2)} | ${(us * perAuth).toFixed(1)} |`);
}
console.log(`\nfloor without stores, ledger and GC: ${floorUs.toFixed(1)} µs per authorization`);
