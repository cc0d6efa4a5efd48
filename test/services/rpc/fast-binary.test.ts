import { create, type DescField, type DescMessage, type Message, ScalarType, toBinary } from '@bufbuild/protobuf';
import test from 'ava';
import { mulberry32 as prng } from '../../../bench/prng.js';
import * as authorizer from '../../../gen/countersign/v1/authorizer_pb.js';
import * as bank from '../../../gen/countersign/v1/bank_pb.js';
import * as common from '../../../gen/countersign/v1/common_pb.js';
import * as enrollment from '../../../gen/countersign/v1/enrollment_pb.js';
import * as ledger from '../../../gen/countersign/v1/ledger_pb.js';
import * as payer from '../../../gen/countersign/v1/payer_pb.js';
import * as payments from '../../../gen/countersign/v1/payments_pb.js';
import * as telco from '../../../gen/countersign/v1/telco_pb.js';
import { encodeMessage, encodesItself } from '../../../services/rpc/fast-binary.js';

// services/rpc/fast-binary.ts must write exactly protobuf-es's bytes: every message of the API,
// random instances (seeded), empty ones and edge values, compared byte for byte with toBinary.

const schemas: DescMessage[] = [authorizer, bank, common, enrollment, ledger, payer, payments, telco]
  .flatMap((module) => Object.values(module))
  .filter((v): v is DescMessage => typeof v === 'object' && v !== null && (v as { kind?: string }).kind === 'message');

const strings = ['', 'a', 'USD', 'ab'.repeat(16), 'é', '€ and 𝄞 (multi-byte)', 'x'.repeat(200), '\u0000nul'];
const uint32s = [0, 1, 127, 128, 16_383, 16_384, 2_097_152, 268_435_456, 4_294_967_295];
const int32s = [0, 1, -1, 127, 128, -2_147_483_648, 2_147_483_647, 999_999_999];
const uint64s = [0n, 1n, 127n, 128n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n];
const int64s = [0n, 1n, -1n, 1_733_400_000n, -(2n ** 63n), 2n ** 63n - 1n];

function pick<T>(r: () => number, values: readonly T[]): T {
  return values[Math.floor(r() * values.length)]!;
}

function scalar(r: () => number, type: ScalarType): unknown {
  switch (type) {
    case ScalarType.STRING:
      return pick(r, strings);
    case ScalarType.BOOL:
      return r() < 0.5;
    case ScalarType.UINT32:
      return pick(r, uint32s);
    case ScalarType.INT32:
      return pick(r, int32s);
    case ScalarType.UINT64:
      return pick(r, uint64s);
    case ScalarType.INT64:
      return pick(r, int64s);
    case ScalarType.BYTES:
      return Uint8Array.from({ length: pick(r, [0, 1, 16, 200]) }, () => Math.floor(r() * 256));
    default:
      throw new Error(`the test has no values for scalar type ${type}`);
  }
}

function enumValue(r: () => number, field: DescField): number {
  const values = field.enum!.values.map((v) => v.number);
  return r() < 0.9 ? pick(r, values) : pick(r, [99, -5]); // open enums may hold any int32
}

function randomMessage(r: () => number, schema: DescMessage, depth: number): Message {
  const m = create(schema) as unknown as Record<string, unknown>;
  if (depth > 4) return m as unknown as Message;
  for (const field of schema.fields) {
    if (r() < 0.25) continue; // left at its default
    const value = (): unknown => {
      switch (field.fieldKind) {
        case 'scalar':
          return scalar(r, field.scalar);
        case 'enum':
          return enumValue(r, field);
        case 'message':
          return randomMessage(r, field.message, depth + 1);
        case 'list': {
          const n = pick(r, [0, 1, 3]);
          return Array.from({ length: n }, () =>
            field.listKind === 'message'
              ? randomMessage(r, field.message, depth + 1)
              : field.listKind === 'enum'
                ? enumValue(r, field)
                : scalar(r, field.scalar),
          );
        }
        case 'map': {
          const record: Record<string, unknown> = {};
          for (let i = 0; i < pick(r, [0, 2]); i++)
            record[`k${i}${pick(r, strings)}`] =
              field.mapKind === 'message'
                ? randomMessage(r, field.message, depth + 1)
                : field.mapKind === 'enum'
                  ? enumValue(r, field)
                  : scalar(r, field.scalar);
          return record;
        }
      }
    };
    if (field.oneof !== undefined) {
      if (r() < 0.5) m[field.oneof.localName] = { case: field.localName, value: value() };
    } else m[field.localName] = value();
  }
  return m as unknown as Message;
}

test('every message of the API: the same bytes as protobuf-es toBinary (empty, and 300 seeded random instances each)', (t) => {
  t.true(schemas.length > 50, `${schemas.length} message schemas found`);
  const itself = schemas.filter((s) => encodesItself(s));
  t.true(
    itself.some((s) => s.typeName === 'countersign.v1.Payment'),
    'Payment is encoded by fast-binary itself',
  );
  t.true(itself.length > schemas.length / 2, `${itself.length} of ${schemas.length} encoded by fast-binary itself`);
  let compared = 0;
  for (const schema of schemas) {
    const r = prng(schema.typeName.length * 7919);
    const empty = create(schema);
    t.deepEqual(Buffer.from(encodeMessage(schema, empty)), Buffer.from(toBinary(schema, empty)), `${schema.typeName} empty`);
    for (let i = 0; i < 300; i++) {
      const m = randomMessage(r, schema, 0);
      const expected = Buffer.from(toBinary(schema, m));
      const actual = Buffer.from(encodeMessage(schema, m));
      if (!actual.equals(expected)) return t.fail(`${schema.typeName} instance ${i}: ${actual.toString('hex')} != ${expected.toString('hex')}`);
      compared++;
    }
  }
  t.log(`${compared} random instances compared over ${schemas.length} schemas (${itself.length} encoded by fast-binary itself)`);
  t.pass();
});

test('a message carrying unknown fields is written by protobuf-es (with them)', (t) => {
  const payment = create(common.PaymentSchema, { id: 'ab'.repeat(16), amount: 1999n });
  payment.$unknown = [{ no: 999, wireType: 2, data: Uint8Array.of(3, 1, 2, 3) }];
  const response = create(payments.GetPaymentResponseSchema, { payment });
  t.deepEqual(Buffer.from(encodeMessage(payments.GetPaymentResponseSchema, response)), Buffer.from(toBinary(payments.GetPaymentResponseSchema, response)));
  t.true(Buffer.from(encodeMessage(payments.GetPaymentResponseSchema, response)).includes(Buffer.from([0xba, 0x3e, 3, 1, 2, 3])), 'the unknown field is there');
});
