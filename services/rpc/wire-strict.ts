import { type DescEnum, type DescField, type DescMessage, ScalarType } from '@bufbuild/protobuf';

/**
 * Strict checks of a request message's encoding, run on the raw bytes (binary) or text (JSON)
 * before protobuf-es decodes them, on both servers. protobuf-es is lenient where money is at
 * stake: a varint for a uint64 carrying more than 64 bits is read modulo 2^64 (2^64 + 1000
 * becomes 1000), a uint32 or int32 keeps the low 32 bits, a JSON integer may be "0x10", "0b11",
 * " 10", "1e3" or a number beyond 2^53 (rounded), an unknown enum name in JSON is dropped (the
 * field becomes 0). Each check answers the first problem, naming the field by its path
 * (`amount`, `policies.no_factor_below`), or undefined when the input is sound.
 *
 * Binary, in one pass over the bytes, following the message descriptor:
 * - every varint (field keys, lengths, values, unknown fields included) has at most 10 bytes,
 *   and the 10th byte is 0 or 1 (at most 64 bits);
 * - int32 and enum values are sign-extended 32-bit values, uint32 and sint32 fit 32 bits (an
 *   enum number the schema does not declare is carried, as proto3's open enums are, and refused
 *   by the handler that reads it, per item in a batch: every enum field of a request is validated
 *   there);
 * - field keys and lengths fit 32 bits, lengths stay inside their message;
 * - a known field arrives with its own wire type (protobuf-es reads a known field by its
 *   declared type whatever the wire type says, so a mismatch would desynchronize the reading);
 *
 * JSON, in one pass over the text: an integer field's value (string or number) is an optional
 * '-' and decimal digits, within the field's range; a JSON number has no fraction or exponent
 * and, for a 64-bit field, is within ±(2^53 - 1) (beyond, JSON parsers round it); an enum name
 * is one of the enum's names (connect would drop an unknown one and the field would read 0, e.g.
 * an unknown channel would become CHANNEL_UNSPECIFIED, which means MERCHANT), an enum number a
 * 32-bit integer (carried, like the binary wire's, to the handler that validates it). Unknown JSON keys stay ignored, as connect does.
 */

/** Deepest message nesting accepted (protobuf-es's own recursion limit is 100). */
export const nestingDepthMax = 100;
/** Longest excerpt of a caller's value quoted back in a message, characters. */
const quotedCharsMax = 24;

// ------------------------------------------------------------------------------- binary

enum Wire {
  Varint = 0,
  Bit64 = 1,
  Len = 2,
  StartGroup = 3,
  EndGroup = 4,
  Bit32 = 5,
}

enum Range {
  /** Any 64-bit value: int64, uint64, sint64, bool. */
  Bits64,
  /** uint32, sint32 (zigzag). */
  Unsigned32,
  /** int32 and enums: a sign-extended 32-bit value (an enum number declared or not: the handler validates it). */
  Signed32,
}

interface FieldPlan {
  readonly name: string;
  /** The wire type of one value. */
  readonly wire: Wire;
  /** A repeated number: a packed (length-delimited) run is accepted too. */
  readonly packable: boolean;
  /** For messages: `int32`, `uint64`, `countersign.v1.Channel`. */
  readonly type: string;
  readonly range: Range;
  /** A message or group field's type; map fields carry their entry's plan. */
  readonly message: DescMessage | undefined;
  readonly entry: MessagePlan | undefined;
}

interface MessagePlan {
  readonly fields: ReadonlyMap<number, FieldPlan>;
}

const plans = new WeakMap<DescMessage, MessagePlan>();
const noFields: MessagePlan = { fields: new Map() };

function planOf(desc: DescMessage): MessagePlan {
  const cached = plans.get(desc);
  if (cached !== undefined) return cached;
  const fields = new Map<number, FieldPlan>();
  const plan: MessagePlan = { fields };
  plans.set(desc, plan);
  for (const field of desc.fields) fields.set(field.number, fieldPlan(field));
  return plan;
}

const base = { packable: false, range: Range.Bits64, message: undefined, entry: undefined } as const;

function scalarPlan(name: string, scalar: ScalarType, packable: boolean): FieldPlan {
  const type = scalarName[scalar];
  switch (scalar) {
    case ScalarType.INT32:
      return { ...base, name, type, wire: Wire.Varint, packable, range: Range.Signed32 };
    case ScalarType.UINT32:
    case ScalarType.SINT32:
      return { ...base, name, type, wire: Wire.Varint, packable, range: Range.Unsigned32 };
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.BOOL:
      return { ...base, name, type, wire: Wire.Varint, packable };
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
    case ScalarType.DOUBLE:
      return { ...base, name, type, wire: Wire.Bit64, packable };
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return { ...base, name, type, wire: Wire.Bit32, packable };
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return { ...base, name, type, wire: Wire.Len };
  }
}

function enumPlan(name: string, desc: DescEnum, packable: boolean): FieldPlan {
  return { ...base, name, type: desc.typeName, wire: Wire.Varint, packable, range: Range.Signed32 };
}

function messagePlan(name: string, desc: DescMessage, delimited: boolean): FieldPlan {
  return { ...base, name, type: desc.typeName, wire: delimited ? Wire.StartGroup : Wire.Len, message: desc };
}

function fieldPlan(field: DescField): FieldPlan {
  const name = field.name;
  switch (field.fieldKind) {
    case 'scalar':
      return scalarPlan(name, field.scalar, false);
    case 'enum':
      return enumPlan(name, field.enum, false);
    case 'message':
      return messagePlan(name, field.message, field.delimitedEncoding);
    case 'list':
      if (field.listKind === 'scalar') return scalarPlan(name, field.scalar, true);
      if (field.listKind === 'enum') return enumPlan(name, field.enum, true);
      return messagePlan(name, field.message, field.delimitedEncoding);
    case 'map': {
      // protobuf-es reads a map value message length-delimited, whatever the field's encoding.
      const value =
        field.mapKind === 'scalar'
          ? scalarPlan('value', field.scalar, false)
          : field.mapKind === 'enum'
            ? enumPlan('value', field.enum, false)
            : messagePlan('value', field.message, false);
      const entry: MessagePlan = {
        fields: new Map([
          [1, scalarPlan('key', field.mapKey, false)],
          [2, value],
        ]),
      };
      return { ...base, name, type: 'map entry', wire: Wire.Len, entry };
    }
  }
}

const scalarName: Record<ScalarType, string> = {
  [ScalarType.DOUBLE]: 'double',
  [ScalarType.FLOAT]: 'float',
  [ScalarType.INT64]: 'int64',
  [ScalarType.UINT64]: 'uint64',
  [ScalarType.INT32]: 'int32',
  [ScalarType.FIXED64]: 'fixed64',
  [ScalarType.FIXED32]: 'fixed32',
  [ScalarType.BOOL]: 'bool',
  [ScalarType.STRING]: 'string',
  [ScalarType.BYTES]: 'bytes',
  [ScalarType.UINT32]: 'uint32',
  [ScalarType.SFIXED32]: 'sfixed32',
  [ScalarType.SFIXED64]: 'sfixed64',
  [ScalarType.SINT32]: 'sint32',
  [ScalarType.SINT64]: 'sint64',
};

/** The reading position and the last varint read, as two unsigned 32-bit halves. */
interface Cursor {
  readonly buf: Uint8Array;
  pos: number;
  lo: number;
  hi: number;
}

const tooLong = 'malformed varint (longer than 10 bytes)';
const truncated = 'truncated';
const overflow = 'over 64 bits';

/**
 * Reads the varint at `c.pos` (not past `end`) into c.lo / c.hi. A problem, or undefined:
 * `tooLong` past 10 bytes, `overflow` when the 10th byte holds more than the 64th bit.
 */
function readVarint(c: Cursor, end: number): string | undefined {
  const buf = c.buf;
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 10; i++) {
    const at = c.pos + i;
    if (at >= end) return truncated;
    const b = buf[at]!;
    if (i < 4) lo |= (b & 0x7f) << (7 * i);
    else if (i === 4) {
      lo |= (b & 0x0f) << 28;
      hi = (b & 0x70) >> 4;
    } else if (i < 9) hi |= (b & 0x7f) << (7 * i - 32);
    else {
      if (b & 0x80) return tooLong;
      if (b > 1) return overflow;
      hi |= b << 31;
    }
    if ((b & 0x80) === 0) {
      c.pos = at + 1;
      c.lo = lo >>> 0;
      c.hi = hi >>> 0;
      return undefined;
    }
  }
  return tooLong;
}

const wireName = ['varint', 'fixed64', 'length-delimited', 'group start', 'group end', 'fixed32', 'wire type 6', 'wire type 7'];

function join(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

function where(path: string): string {
  return path === '' ? 'request' : path;
}

/** The value of c.lo / c.hi as an unsigned (or, `signed`, two's complement) 64-bit integer. */
function varintValue(c: Cursor, signed: boolean): bigint {
  const value = (BigInt(c.hi) << 32n) | BigInt(c.lo);
  return signed ? BigInt.asIntN(64, value) : value;
}

function checkVarintValue(c: Cursor, end: number, field: FieldPlan, name: string): string | undefined {
  const problem = readVarint(c, end);
  if (problem === overflow) return `${name}: integer out of range for ${field.type} (the varint encodes more than 64 bits)`;
  if (problem !== undefined) return `${name}: ${problem}`;
  switch (field.range) {
    case Range.Bits64:
      return undefined;
    case Range.Unsigned32:
      return c.hi === 0 ? undefined : `${name}: ${varintValue(c, false)} out of range for ${field.type}`;
    case Range.Signed32: {
      const fits = (c.hi === 0 && c.lo < 0x8000_0000) || (c.hi === 0xffff_ffff && c.lo >= 0x8000_0000);
      if (!fits) return `${name}: ${varintValue(c, true)} out of range for ${field.type}`;
      return undefined;
    }
  }
}

/** Reads a length that must fit in what is left before `end`: a problem, or undefined with the length in c.lo. */
function readLength(c: Cursor, end: number, name: string): string | undefined {
  const problem = readVarint(c, end);
  if (problem !== undefined) return `${name}: malformed length (${problem})`;
  if (c.hi !== 0 || c.lo > end - c.pos) return `${name}: length ${varintValue(c, false)} runs past the end of its message`;
  return undefined;
}

function skipBytes(c: Cursor, end: number, count: number, name: string): string | undefined {
  if (count > end - c.pos) return `${name}: ${truncated}`;
  c.pos += count;
  return undefined;
}

function checkField(c: Cursor, end: number, field: FieldPlan, number: number, wire: number, name: string, depth: number): string | undefined {
  if (wire === Wire.Len && field.packable) {
    const problem = readLength(c, end, name);
    if (problem !== undefined) return problem;
    const stop = c.pos + c.lo;
    if (field.wire === Wire.Varint) {
      while (c.pos < stop) {
        const p = checkVarintValue(c, stop, field, name);
        if (p !== undefined) return p;
      }
      return undefined;
    }
    const size = field.wire === Wire.Bit64 ? 8 : 4;
    if (c.lo % size !== 0) return `${name}: packed length ${c.lo} is not a multiple of ${size}`;
    c.pos = stop;
    return undefined;
  }
  if (wire !== field.wire) return `${name}: sent as ${wireName[wire]}, but a ${field.type} field is ${wireName[field.wire]}`;
  switch (field.wire) {
    case Wire.Varint:
      return checkVarintValue(c, end, field, name);
    case Wire.Bit64:
      return skipBytes(c, end, 8, name);
    case Wire.Bit32:
      return skipBytes(c, end, 4, name);
    case Wire.StartGroup:
      return checkMessage(c, end, planOf(field.message!), name, depth + 1, number);
    case Wire.Len: {
      const problem = readLength(c, end, name);
      if (problem !== undefined) return problem;
      const stop = c.pos + c.lo;
      const plan = field.entry ?? (field.message === undefined ? undefined : planOf(field.message));
      if (plan === undefined) {
        c.pos = stop;
        return undefined;
      }
      return checkMessage(c, stop, plan, name, depth + 1, 0);
    }
    default:
      throw new Error(`assertion failed: ${name} planned with wire type ${field.wire}`);
  }
}

/** An unknown field, skipped as protobuf-es skips it, with the same varint rules. */
function skipUnknown(c: Cursor, end: number, number: number, wire: number, name: string, depth: number): string | undefined {
  switch (wire) {
    case Wire.Varint: {
      const problem = readVarint(c, end);
      return problem === undefined ? undefined : `${name}: ${problem === overflow ? 'varint over 64 bits' : problem}`;
    }
    case Wire.Bit64:
      return skipBytes(c, end, 8, name);
    case Wire.Bit32:
      return skipBytes(c, end, 4, name);
    case Wire.Len: {
      const problem = readLength(c, end, name);
      if (problem === undefined) c.pos += c.lo;
      return problem;
    }
    case Wire.StartGroup:
      return checkMessage(c, end, noFields, name, depth + 1, number);
    default:
      return `${name}: invalid wire type ${wire}`;
  }
}

/**
 * Checks fields from c.pos up to `end`; in a group (`group` = its field number), up to its
 * end-group key. A problem, or undefined.
 */
function checkMessage(c: Cursor, end: number, plan: MessagePlan, path: string, depth: number, group: number): string | undefined {
  if (depth > nestingDepthMax) return `${where(path)}: messages nested more than ${nestingDepthMax} deep`;
  while (c.pos < end) {
    const problem = readVarint(c, end);
    if (problem !== undefined) return `${where(path)}: malformed field key (${problem === overflow ? 'over 64 bits' : problem})`;
    if (c.hi !== 0) return `${where(path)}: field key ${varintValue(c, false)} is over 32 bits`;
    const number = c.lo >>> 3;
    const wire = c.lo & 7;
    if (number === 0) return `${where(path)}: field number 0`;
    if (wire === Wire.EndGroup) {
      if (number === group) return undefined;
      return `${where(path)}: unexpected end of group ${number}`;
    }
    const field = plan.fields.get(number);
    const name = join(path, field === undefined ? `field ${number}` : field.name);
    const fieldProblem = field === undefined ? skipUnknown(c, end, number, wire, name, depth) : checkField(c, end, field, number, wire, name, depth);
    if (fieldProblem !== undefined) return fieldProblem;
  }
  return group === 0 ? undefined : `${where(path)}: group not closed`;
}

/** The first problem of a binary `schema` message, or undefined when its encoding is sound. */
export function binaryInputProblem(schema: DescMessage, bytes: Uint8Array): string | undefined {
  return checkMessage({ buf: bytes, pos: 0, lo: 0, hi: 0 }, bytes.byteLength, planOf(schema), '', 1, 0);
}

// --------------------------------------------------------------------------------- JSON

/** What a JSON value must be; undefined: anything (protobuf-es checks the rest). */
type Expect =
  | { readonly kind: 'message'; readonly desc: DescMessage }
  | { readonly kind: 'integer'; readonly scalar: IntegerScalar }
  | { readonly kind: 'enum'; readonly desc: DescEnum; readonly names: ReadonlySet<string> }
  | { readonly kind: 'list'; readonly item: Expect }
  | { readonly kind: 'map'; readonly key: IntegerScalar | undefined; readonly value: Expect }
  | undefined;

type IntegerScalar = Exclude<ScalarType, ScalarType.DOUBLE | ScalarType.FLOAT | ScalarType.BOOL | ScalarType.STRING | ScalarType.BYTES>;

const integerRange: Record<IntegerScalar, readonly [bigint, bigint]> = {
  [ScalarType.INT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SINT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SFIXED32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.UINT32]: [0n, 2n ** 32n - 1n],
  [ScalarType.FIXED32]: [0n, 2n ** 32n - 1n],
  [ScalarType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SINT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SFIXED64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.UINT64]: [0n, 2n ** 64n - 1n],
  [ScalarType.FIXED64]: [0n, 2n ** 64n - 1n],
};

const is64Bit = (s: IntegerScalar): boolean =>
  s === ScalarType.INT64 || s === ScalarType.SINT64 || s === ScalarType.SFIXED64 || s === ScalarType.UINT64 || s === ScalarType.FIXED64;
const integerScalar = (s: ScalarType): IntegerScalar | undefined => (s in integerRange ? (s as IntegerScalar) : undefined);

/** google.protobuf wrappers whose JSON is the bare integer. */
const integerWrappers: Record<string, IntegerScalar> = {
  'google.protobuf.Int32Value': ScalarType.INT32,
  'google.protobuf.UInt32Value': ScalarType.UINT32,
  'google.protobuf.Int64Value': ScalarType.INT64,
  'google.protobuf.UInt64Value': ScalarType.UINT64,
};

interface JsonField {
  readonly name: string;
  readonly expect: Expect;
}

const jsonFields = new WeakMap<DescMessage, ReadonlyMap<string, JsonField>>();
const enumExpects = new WeakMap<DescEnum, Expect>();

function jsonFieldsOf(desc: DescMessage): ReadonlyMap<string, JsonField> {
  const cached = jsonFields.get(desc);
  if (cached !== undefined) return cached;
  const fields = new Map<string, JsonField>();
  jsonFields.set(desc, fields);
  for (const field of desc.fields) {
    const entry = { name: field.name, expect: jsonExpect(field) };
    fields.set(field.jsonName, entry);
    fields.set(field.name, entry);
  }
  return fields;
}

function enumExpect(desc: DescEnum): Expect {
  if (desc.typeName === 'google.protobuf.NullValue') return undefined;
  let expect = enumExpects.get(desc);
  if (expect === undefined) {
    expect = { kind: 'enum', desc, names: new Set(desc.values.map((v) => v.name)) };
    enumExpects.set(desc, expect);
  }
  return expect;
}

function messageExpect(desc: DescMessage): Expect {
  const wrapped = integerWrappers[desc.typeName];
  if (wrapped !== undefined) return { kind: 'integer', scalar: wrapped };
  // The other well-known types have their own JSON forms (timestamps, durations, Struct, Any):
  // protobuf-es parses them strictly.
  if (desc.typeName.startsWith('google.protobuf.')) return undefined;
  return { kind: 'message', desc };
}

function scalarExpect(scalar: ScalarType): Expect {
  const integer = integerScalar(scalar);
  return integer === undefined ? undefined : { kind: 'integer', scalar: integer };
}

function jsonExpect(field: DescField): Expect {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarExpect(field.scalar);
    case 'enum':
      return enumExpect(field.enum);
    case 'message':
      return messageExpect(field.message);
    case 'list':
      return {
        kind: 'list',
        item: field.listKind === 'scalar' ? scalarExpect(field.scalar) : field.listKind === 'enum' ? enumExpect(field.enum) : messageExpect(field.message),
      };
    case 'map':
      return {
        kind: 'map',
        key: integerScalar(field.mapKey),
        value: field.mapKind === 'scalar' ? scalarExpect(field.scalar) : field.mapKind === 'enum' ? enumExpect(field.enum) : messageExpect(field.message),
      };
  }
}

/** Thrown inside the scanner to stop at the first problem. */
class Problem {
  constructor(readonly message: string) {}
}

const numberPattern = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const decimalPattern = /^-?[0-9]+$/;
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);

/** A caller's string value, quoted and cut short. */
function quote(value: string): string {
  return JSON.stringify(excerpt(value));
}

/** A caller's value (a JSON number token), cut short. */
function excerpt(value: string): string {
  return value.length > quotedCharsMax ? `${value.slice(0, quotedCharsMax)}…` : value;
}

/** `digits` (an optional '-' and decimal digits) within the scalar's range, or a problem. */
function rangeProblem(digits: string, scalar: IntegerScalar): string | undefined {
  const negative = digits.startsWith('-');
  const magnitude = (negative ? digits.slice(1) : digits).replace(/^0+(?=.)/, '');
  const [min, max] = integerRange[scalar];
  // Beyond 20 digits nothing fits in 64 bits: no BigInt of a megabyte of digits.
  const value = magnitude.length > 20 ? undefined : BigInt(negative ? `-${magnitude}` : magnitude);
  if (value === undefined || value < min || value > max) return `${quote(digits)} out of range for ${scalarName[scalar]}`;
  return undefined;
}

class JsonScanner {
  pos = 0;
  constructor(readonly text: string) {}

  malformed(): never {
    throw new Problem(`malformed JSON at character ${this.pos}`);
  }

  space(): void {
    const text = this.text;
    let pos = this.pos;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
    this.pos = pos;
  }

  value(expect: Expect, path: string, depth: number): void {
    this.space();
    const c = this.text.charCodeAt(this.pos);
    if (c === 0x7b /* { */) return this.object(expect, path, depth + 1);
    if (c === 0x5b /* [ */) return this.array(expect, path, depth + 1);
    if (c === 0x22 /* " */) {
      const needed = expect?.kind === 'integer' || expect?.kind === 'enum';
      const s = this.string(needed);
      if (needed) this.scalarString(expect, s, path);
      return;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) return this.number(expect, path);
    for (const literal of ['true', 'false', 'null']) {
      if (this.text.startsWith(literal, this.pos)) {
        this.pos += literal.length;
        return;
      }
    }
    this.malformed();
  }

  scalarString(expect: Expect & { kind: 'integer' | 'enum' }, s: string, path: string): void {
    if (expect.kind === 'enum') {
      if (!expect.names.has(s)) throw new Problem(`${path}: unknown ${expect.desc.typeName} value ${quote(s)}`);
      return;
    }
    if (!decimalPattern.test(s)) throw new Problem(`${path}: ${quote(s)} is not a decimal integer (an optional '-' and the digits 0-9)`);
    const problem = rangeProblem(s, expect.scalar);
    if (problem !== undefined) throw new Problem(`${path}: ${problem}`);
  }

  number(expect: Expect, path: string): void {
    numberPattern.lastIndex = this.pos;
    const match = numberPattern.exec(this.text);
    if (match === null) this.malformed();
    const raw = match[0];
    this.pos += raw.length;
    if (expect?.kind !== 'integer' && expect?.kind !== 'enum') return;
    if (!decimalPattern.test(raw)) throw new Problem(`${path}: ${excerpt(raw)} is not an integer (no fraction or exponent)`);
    if (expect.kind === 'enum') {
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || n < -0x8000_0000 || n > 0x7fff_ffff)
        throw new Problem(`${path}: ${excerpt(raw)} is out of range for ${expect.desc.typeName} (a 32-bit integer)`);
      return;
    }
    const problem = rangeProblem(raw, expect.scalar);
    if (problem !== undefined) throw new Problem(`${path}: ${problem}`);
    if (is64Bit(expect.scalar) && (BigInt(raw) > maxSafe || BigInt(raw) < -maxSafe)) {
      throw new Problem(`${path}: ${excerpt(raw)} is beyond 2^53 - 1 as a JSON number and would be rounded: send 64-bit integers as strings`);
    }
  }

  /** A string token; its decoded value when `decode`, else ''. */
  string(decode: boolean): string {
    const text = this.text;
    let pos = this.pos + 1;
    let start = pos;
    let out = '';
    for (;;) {
      if (pos >= text.length) this.malformed();
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        if (decode) out += text.slice(start, pos);
        this.pos = pos + 1;
        return out;
      }
      if (c < 0x20) {
        this.pos = pos;
        this.malformed();
      }
      if (c !== 0x5c /* \ */) {
        pos++;
        continue;
      }
      if (decode) out += text.slice(start, pos);
      const e = text[pos + 1];
      if (e === 'u') {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
          this.pos = pos;
          this.malformed();
        }
        if (decode) out += String.fromCharCode(parseInt(hex, 16));
        pos += 6;
      } else {
        const decoded = e === undefined ? undefined : escapes[e];
        if (decoded === undefined) {
          this.pos = pos;
          this.malformed();
        }
        if (decode) out += decoded;
        pos += 2;
      }
      start = pos;
    }
  }

  object(expect: Expect, path: string, depth: number): void {
    if (depth > nestingDepthMax) throw new Problem(`${where(path)}: JSON nested more than ${nestingDepthMax} deep`);
    const fields = expect?.kind === 'message' ? jsonFieldsOf(expect.desc) : undefined;
    this.pos++;
    this.space();
    if (this.text.charCodeAt(this.pos) === 0x7d /* } */) {
      this.pos++;
      return;
    }
    for (;;) {
      this.space();
      if (this.text.charCodeAt(this.pos) !== 0x22) this.malformed();
      const key = this.string(true);
      this.space();
      if (this.text.charCodeAt(this.pos) !== 0x3a /* : */) this.malformed();
      this.pos++;
      if (fields !== undefined) {
        const field = fields.get(key);
        this.value(field?.expect, join(path, field?.name ?? key), depth);
      } else if (expect?.kind === 'map') {
        const name = `${where(path)}[${quote(key)}]`;
        if (expect.key !== undefined) {
          if (!decimalPattern.test(key)) throw new Problem(`${name}: the key is not a decimal integer`);
          const problem = rangeProblem(key, expect.key);
          if (problem !== undefined) throw new Problem(`${name}: key ${problem}`);
        }
        this.value(expect.value, name, depth);
      } else {
        this.value(undefined, path, depth);
      }
      this.space();
      const c = this.text.charCodeAt(this.pos++);
      if (c === 0x7d) return;
      if (c !== 0x2c /* , */) {
        this.pos--;
        this.malformed();
      }
    }
  }

  array(expect: Expect, path: string, depth: number): void {
    if (depth > nestingDepthMax) throw new Problem(`${where(path)}: JSON nested more than ${nestingDepthMax} deep`);
    const item = expect?.kind === 'list' ? expect.item : undefined;
    this.pos++;
    this.space();
    if (this.text.charCodeAt(this.pos) === 0x5d /* ] */) {
      this.pos++;
      return;
    }
    for (let i = 0; ; i++) {
      this.value(item, item === undefined ? path : `${path}[${i}]`, depth);
      this.space();
      const c = this.text.charCodeAt(this.pos++);
      if (c === 0x5d) return;
      if (c !== 0x2c) {
        this.pos--;
        this.malformed();
      }
    }
  }
}

const escapes: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * The first problem of a JSON `schema` message, or undefined when its integers and enums are
 * sound. Text that is not JSON is a problem too (connect would refuse it as well).
 */
export function jsonInputProblem(schema: DescMessage, text: string): string | undefined {
  const scanner = new JsonScanner(text);
  try {
    scanner.value({ kind: 'message', desc: schema }, '', 0);
    scanner.space();
    if (scanner.pos !== text.length) scanner.malformed();
    return undefined;
  } catch (error) {
    if (error instanceof Problem) return error.message;
    throw error;
  }
}
