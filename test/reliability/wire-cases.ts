import { randomBytes } from 'node:crypto';
import { Code } from '@connectrpc/connect';
import type { Payment } from '../../gen/countersign/v1/common_pb.js';
import { type EnrollMerchantResponse, EnrollmentService, type EnrollPayerResponse } from '../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { type ListPaymentsResponse, PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { fuzzPolicy, randomPhone } from './fuzz-world.js';
import { answerLabel, envelope, type FrameCase, sendRaw } from './http2-frames.js';
import { type RpcClients, statusName } from './security-rpc.js';

/**
 * Out-of-range wire integers (issue 15, finding 6), sent as bytes a typed client would never
 * produce: hand-encoded `CreatePaymentRequest`s over gRPC (both ports) and the Connect protocol's
 * binary body, where `amount` is a varint of 2^64 + 1000 (protobuf-es would read 1000), an 11-byte
 * varint, `channel` (an int32 enum) beyond the int32 range, or a field's length runs past the end
 * of the message; and Connect JSON bodies whose amount is "0x10", "0b11", " 10", "+5", "1e3", 10.0
 * or 2^53 as a JSON number, or whose channel is an unknown enum name. Each is sent with a valid
 * merchant key (authentication first) and must be answered INVALID_ARGUMENT and create no payment:
 * afterwards the merchant's payments are exactly the well-formed controls (one per protocol, which
 * also prove that the hand encoding is right).
 */

/** Payments listed per page when counting what the cases created. */
const listPageSize = 100;
/** Pages read at most (the cases create a few dozen payments at worst). */
const listPagesMax = 10;

const createPath = '/countersign.v1.PaymentService/CreatePayment';

// ------------------------------------------------------------------------------ protobuf by hand

/** A base-128 varint of any non-negative value (more than 64 bits included: that is the point). */
export function varint(value: bigint): Buffer {
  const out: number[] = [];
  let v = value;
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v === 0n ? low : low | 0x80);
  } while (v !== 0n);
  return Buffer.from(out);
}

/** `value`'s varint padded with continuation bytes to `length` bytes (what a lenient reader still decodes to `value`). */
export function paddedVarint(value: bigint, length: number): Buffer {
  const bytes = [...varint(value)];
  while (bytes.length < length) {
    bytes[bytes.length - 1]! |= 0x80;
    bytes.push(0);
  }
  return Buffer.from(bytes);
}

const key = (field: number, wire: 0 | 2) => varint(BigInt((field << 3) | wire));
const varintField = (field: number, raw: Buffer) => Buffer.concat([key(field, 0), raw]);
const stringField = (field: number, text: string) => {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([key(field, 2), varint(BigInt(bytes.length)), bytes]);
};

interface Target {
  payerId: string;
}

/** CreatePaymentRequest: idempotency_key 1, payer_id 2, amount 6, currency 7, description 8, channel 9 (APP = 1). */
function createRequest(target: Target, tag: string, overrides: { amount?: Buffer; channel?: Buffer; tail?: Buffer } = {}): Buffer {
  return Buffer.concat([
    stringField(1, `wire-${tag}-${randomBytes(6).toString('hex')}`),
    stringField(2, target.payerId),
    varintField(6, overrides.amount ?? varint(5_00n)),
    stringField(7, 'USD'),
    stringField(8, `wire ${tag}`),
    varintField(9, overrides.channel ?? varint(1n)),
    overrides.tail ?? Buffer.alloc(0),
  ]);
}

/** The binary cases: a body each, and whether it is a control (well-formed: answered OK, creates a payment). */
function binaryBodies(target: Target): { name: string; body: Buffer; control: boolean }[] {
  return [
    { name: 'control: well-formed CreatePayment', body: createRequest(target, 'control'), control: true },
    {
      name: 'amount a varint of 2^64 + 1000 (10 bytes, 65 bits)',
      body: createRequest(target, 'amount-2^64+1000', { amount: varint((1n << 64n) + 1000n) }),
      control: false,
    },
    { name: 'amount an 11-byte varint (1000 padded)', body: createRequest(target, 'amount-11-bytes', { amount: paddedVarint(1000n, 11) }), control: false },
    { name: 'channel (int32) 2^31, past the int32 range', body: createRequest(target, 'channel-2^31', { channel: varint(1n << 31n) }), control: false },
    { name: 'channel (int32) 2^32 + 1, past 32 bits', body: createRequest(target, 'channel-2^32+1', { channel: varint((1n << 32n) + 1n) }), control: false },
    // A description whose length says 50 bytes where 3 are left: a length past the end of the message.
    {
      name: 'a truncated length (description says 50 bytes, 3 follow)',
      body: createRequest(target, 'truncated', { tail: Buffer.concat([key(8, 2), varint(50n), Buffer.from('abc')]) }),
      control: false,
    },
  ];
}

/** The Connect JSON cases: `amount` and `channel` as raw JSON text. */
function jsonBodies(target: Target): { name: string; body: Buffer; control: boolean }[] {
  const body = (tag: string, amount: string, channel = '"CHANNEL_APP"') =>
    Buffer.from(
      `{"idempotencyKey":"wire-${tag}-${randomBytes(6).toString('hex')}","payerId":"${target.payerId}","amount":${amount},"currency":"USD","description":"wire ${tag}","channel":${channel}}`,
    );
  return [
    { name: 'JSON control: amount "500"', body: body('json-control', '"500"'), control: true },
    ...['"0x10"', '"0b11"', '" 10"', '"+5"', '"1e3"', '10.0', String(2n ** 53n)].map((amount) => ({
      name: `JSON amount ${amount}`,
      body: body('json-amount', amount),
      control: false,
    })),
    { name: 'JSON channel "CHANNEL_NOPE" (an unknown enum name)', body: body('json-channel', '"500"', '"CHANNEL_NOPE"'), control: false },
  ];
}

/** Every case on both ports: gRPC on each, the Connect protocol (binary and JSON) on the Connect port. */
function wireCases(apiKey: string, target: Target): { port: 'grpc' | 'connect'; c: FrameCase; control: boolean }[] {
  const auth = `Bearer ${apiKey}`;
  const grpcHeaders = { ':method': 'POST', ':path': createPath, 'content-type': 'application/grpc', te: 'trailers', authorization: auth };
  const connectHeaders = (contentType: string) => ({
    ':method': 'POST',
    ':path': createPath,
    'content-type': contentType,
    'connect-protocol-version': '1',
    authorization: auth,
  });
  const invalid = String(Code.InvalidArgument);
  const out: { port: 'grpc' | 'connect'; c: FrameCase; control: boolean }[] = [];
  for (const port of ['grpc', 'connect'] as const) {
    for (const b of binaryBodies(target))
      out.push({
        port,
        control: b.control,
        c: { name: `gRPC ${b.name}`, protocol: 'grpc', headers: grpcHeaders, body: [envelope(b.body)], expect: [b.control ? '0' : invalid] },
      });
  }
  for (const b of binaryBodies(target))
    out.push({
      port: 'connect',
      control: b.control,
      c: {
        name: `Connect binary ${b.name}`,
        protocol: 'connect',
        headers: connectHeaders('application/proto'),
        body: [b.body],
        expect: [b.control ? 'http:200' : 'connect:invalid_argument'],
      },
    });
  for (const b of jsonBodies(target))
    out.push({
      port: 'connect',
      control: b.control,
      c: {
        name: `Connect ${b.name}`,
        protocol: 'connect',
        headers: connectHeaders('application/json'),
        body: [b.body],
        expect: [b.control ? 'http:200' : 'connect:invalid_argument'],
      },
    });
  return out;
}

// ------------------------------------------------------------------------------ the check

export interface WireEnv {
  rpc: RpcClients;
  adminKey: string;
  grpcPort: number;
  connectPort: number;
}

/** A merchant and a funded payer of their own, so that whatever the cases create is theirs alone. */
async function enroll(env: WireEnv, secrets: Set<string>): Promise<{ apiKey: string; target: Target }> {
  const admin = { key: env.adminKey };
  const m = await env.rpc.unary(
    'grpc-js',
    EnrollmentService,
    'enrollMerchant',
    { idempotencyKey: `wire-m-${randomBytes(6).toString('hex')}`, name: 'Wire shop', currencies: ['USD'], feeBasisPoints: 100 },
    admin,
  );
  if (!m.ok) throw new Error(`wire cases: enroll merchant: ${statusName(m)}`);
  const p = await env.rpc.unary(
    'grpc-js',
    EnrollmentService,
    'enrollPayer',
    {
      idempotencyKey: `wire-p-${randomBytes(6).toString('hex')}`,
      phone: randomPhone('629'),
      displayName: 'Wire payer',
      currencies: ['USD'],
      policies: [fuzzPolicy],
    },
    admin,
  );
  if (!p.ok) throw new Error(`wire cases: enroll payer: ${statusName(p)}`);
  const merchant = m.value as EnrollMerchantResponse;
  const payer = p.value as EnrollPayerResponse;
  secrets.add(merchant.apiKey).add(payer.payerToken).add(payer.verificationSecretBase32);
  const funded = await env.rpc.unary(
    'grpc-js',
    LedgerService,
    'fundAccount',
    { idempotencyKey: `wire-f-${randomBytes(6).toString('hex')}`, accountId: payer.payer!.prepaidAccountIds.USD!, amount: 1_000_00n, currency: 'USD' },
    admin,
  );
  if (!funded.ok) throw new Error(`wire cases: fund payer: ${statusName(funded)}`);
  return { apiKey: merchant.apiKey, target: { payerId: payer.payer!.id } };
}

async function listAll(env: WireEnv, apiKey: string): Promise<Payment[]> {
  const out: Payment[] = [];
  let pageToken = '';
  for (let page = 0; page < listPagesMax; page++) {
    const r = await env.rpc.unary('grpc-js', PaymentService, 'listPayments', { pageSize: listPageSize, pageToken }, { key: apiKey });
    if (!r.ok) throw new Error(`wire cases: ListPayments answered ${statusName(r)}`);
    const list = r.value as ListPaymentsResponse;
    out.push(...list.payments);
    pageToken = list.nextPageToken;
    if (pageToken === '') break;
  }
  return out;
}

/**
 * Sends every case (`wireCases`) and checks each answer, then that the merchant's payments are the
 * controls alone. Must run after the money check: its deposit moves the ledger's totals.
 */
export async function checkWireIntegers(env: WireEnv, secrets: Set<string>, counts: Record<string, number>, violations: string[]): Promise<void> {
  const { apiKey, target } = await enroll(env, secrets);
  const cases = wireCases(apiKey, target);
  let refused = 0;
  for (const { port, c, control } of cases) {
    const answer = await sendRaw(port === 'grpc' ? env.grpcPort : env.connectPort, c);
    const got = answerLabel(answer, c.protocol);
    if (!control && c.expect.includes(got)) refused += 1;
    if (!c.expect.includes(got))
      violations.push(
        `wire integers, ${port === 'grpc' ? 'gRPC port' : 'Connect port'}, ${c.name}: answered ${got}${answer.grpcMessage === '' ? '' : ` "${answer.grpcMessage.slice(0, 100)}"`}, expected ${c.expect.join('|')}`,
      );
  }
  const payments = await listAll(env, apiKey);
  const controls = cases.filter((x) => x.control).length;
  const leaked = payments.filter((p) => !p.description.includes('control'));
  for (const p of leaked)
    violations.push(
      `wire integers: a malformed request created payment ${p.id} ("${p.description}", amount ${p.amount}, channel ${p.channel}, state ${p.state})`,
    );
  if (payments.length - leaked.length !== controls)
    violations.push(`wire integers: ${payments.length - leaked.length} control payments exist, expected ${controls} (one per well-formed control)`);
  counts.wireCases = cases.length;
  counts.wireRefusedInvalidArgument = refused;
  counts.wirePaymentsCreated = leaked.length;
}
