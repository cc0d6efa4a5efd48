import { Code } from '@connectrpc/connect';
import fc from 'fast-check';

/**
 * Hostile field values for the fuzzer, each with the status codes that would be a precise
 * answer to it (tags). A request's allowed answers are the union of its fields' tags (the
 * server may notice any one problem first), plus OK when the request is legitimate.
 */

export type Tag = 'invalid' | 'notFound' | 'precondition' | 'denied' | 'exhausted' | 'exists' | 'unimplemented';

export const codeOfTag: Record<Tag, Code> = {
  invalid: Code.InvalidArgument,
  notFound: Code.NotFound,
  precondition: Code.FailedPrecondition,
  denied: Code.PermissionDenied,
  exhausted: Code.ResourceExhausted,
  exists: Code.AlreadyExists,
  unimplemented: Code.Unimplemented,
};

/** A value and the precise answers it calls for (none: a clean value). */
export interface F<T> {
  readonly v: T;
  readonly t: readonly Tag[];
}

export const clean = <T>(v: T): F<T> => ({ v, t: [] });
export const bad = <T>(v: T, ...t: Tag[]): F<T> => ({ v, t });
export const tagsOf = (...fields: F<unknown>[]): Tag[] => [...new Set(fields.flatMap((f) => f.t))];

/** Over the 4 MiB receive limit of both servers: RESOURCE_EXHAUSTED whatever else is wrong. */
export const oversizeBytes = 4 * 1024 * 1024 + 1024;
export const oversizeString = 'x'.repeat(oversizeBytes);
/** Large but under the limit. */
export const largeString = 'y'.repeat(100_000);
/** Marker of a string field that makes the whole message oversize. */
export const isOversize = (value: unknown): boolean => value === oversizeString;

const hexDigit = fc.constantFrom(...'0123456789abcdef');
export const hex32 = fc.string({ unit: hexDigit, minLength: 32, maxLength: 32 });

/** Not 32 lowercase hex digits. */
export const malformedId: fc.Arbitrary<string> = fc.oneof(
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a hostile input, sent as these characters
  fc.constantFrom('', '0', '0'.repeat(31), '0'.repeat(33), 'G'.repeat(32), ' '.repeat(32), '../../etc/passwd', "' OR 1=1 --", '${jndi:ldap://x}', largeString),
  hex32.map((h) => h.toUpperCase().replace(/^[0-9]/, 'A')),
  hex32.map((h) => `${h}\n`),
  fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !/^[0-9a-f]{32}$/.test(s)),
);

/** An id field: clean (given), unknown (well-formed, nobody's) or malformed. */
export function idField(known: string[], unknownTag: Tag = 'notFound'): fc.Arbitrary<F<string>> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...known).map(clean) },
    { weight: 2, arbitrary: hex32.map((v) => bad(v, unknownTag)) },
    { weight: 2, arbitrary: malformedId.map((v) => bad(v, 'invalid')) },
  );
}

const u64Max = (1n << 64n) - 1n;
/** Amounts on the wire (uint64): the boundaries and anything in between; 0 is INVALID_ARGUMENT. */
export const amountField: fc.Arbitrary<F<bigint>> = fc.oneof(
  fc.constantFrom(
    bad(0n, 'invalid'),
    clean(1n),
    clean(2n),
    clean(99n),
    clean(100n),
    clean((1n << 63n) - 1n),
    clean(1n << 63n),
    clean(u64Max - 1n),
    clean(u64Max),
  ),
  fc.bigInt({ min: 1n, max: u64Max }).map(clean),
);

/** Printable ASCII without spaces; made unique when the request runs ($fresh). */
export const freshKeyMarker = '$fresh';
export const keyField = (pool: readonly string[]): fc.Arbitrary<F<string>> =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(clean(freshKeyMarker)) },
    { weight: 2, arbitrary: fc.constantFrom(...pool).map((v) => bad(v, 'exists')) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        bad('', 'invalid'),
        bad('k'.repeat(129), 'invalid'),
        bad('has space', 'invalid'),
        bad('ключ', 'invalid'),
        bad('tab\tkey', 'invalid'),
        bad(largeString, 'invalid'),
      ),
    },
  );

export const currencyField: fc.Arbitrary<F<string>> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(clean('USD')) },
  { weight: 1, arbitrary: fc.constantFrom('EUR', 'JPY').map((v) => bad(v, 'precondition')) },
  { weight: 2, arbitrary: fc.constantFrom('', 'usd', 'XXX', 'US', 'USDD', 'U$D', '840', largeString).map((v) => bad(v, 'invalid')) },
  {
    weight: 1,
    arbitrary: fc
      .string({ unit: 'binary', maxLength: 8 })
      .filter((s) => !['USD', 'EUR', 'GBP', 'JPY', 'CNY', 'KRW'].includes(s))
      .map((v) => bad(v, 'invalid')),
  },
);

/** Free text bounded at `max` characters. */
export function textField(max: number): fc.Arbitrary<F<string>> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: Math.min(max, 40) }).map(clean) },
    {
      weight: 2,
      arbitrary: fc
        .string({ unit: 'binary', maxLength: Math.min(max, 60) })
        .filter((s) => s.length <= max)
        .map(clean),
    },
    { weight: 1, arbitrary: fc.constant(clean('é'.repeat(max))) },
    { weight: 1, arbitrary: fc.constantFrom(bad('z'.repeat(max + 1), 'invalid'), bad(largeString, 'invalid')) },
  );
}

/** An enum value: the valid ones, 0 (unspecified: `zeroTags`), and numbers no enum has. */
export function enumField(values: number[], zeroTags: Tag[]): fc.Arbitrary<F<number>> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...values).map(clean) },
    { weight: 1, arbitrary: fc.constant(bad(0, ...zeroTags)) },
    { weight: 2, arbitrary: fc.constantFrom(99, -1, 2 ** 31 - 1, -(2 ** 31), values.length + 1).map((v) => bad(v, 'invalid')) },
  );
}

export const pageSizeField: fc.Arbitrary<F<number>> = fc.oneof(
  fc.constantFrom(clean(0), clean(1), clean(1000), bad(1001, 'invalid'), bad(2 ** 32 - 1, 'invalid')),
  fc.integer({ min: 0, max: 1000 }).map(clean),
);

/** Page tokens: payments lists page by id (base64url of 32 hex digits), ledger lists by timestamp (base64url of digits). */
export const pageTokenField = (kind: 'payments' | 'ledger'): fc.Arbitrary<F<string>> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(clean('')) },
    { weight: 1, arbitrary: hex32.map((h) => (kind === 'payments' ? clean : (v: string) => bad(v, 'invalid'))(Buffer.from(h).toString('base64url'))) },
    {
      weight: 1,
      arbitrary: fc
        .bigInt({ min: 1n, max: (1n << 63n) - 1n })
        .map((n) => (kind === 'ledger' ? clean : (v: string) => bad(v, 'invalid'))(Buffer.from(String(n)).toString('base64url'))),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom('x', '!!!', 'AAAA', Buffer.from('0'.repeat(31)).toString('base64url'), Buffer.from('-1').toString('base64url'), largeString)
        .map((v) => bad(v, 'invalid')),
    },
    {
      weight: 1,
      arbitrary: fc
        .string({ unit: 'binary', maxLength: 30 })
        .filter((s) => s !== '')
        .map((v) => bad(v, 'invalid')),
    },
  );

/** A phone: E.164 of someone enrolled (given), of nobody, or malformed. */
export function phoneField(known: string[]): fc.Arbitrary<F<string>> {
  return fc.oneof(
    { weight: known.length === 0 ? 0 : 2, arbitrary: known.length === 0 ? fc.constant(clean('')) : fc.constantFrom(...known).map(clean) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 9_999_999 }).map((n) => bad(`+1201${String(n).padStart(7, '0')}`, 'notFound')) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom('', '14155550123', '+0123456789', '+1', '+1415555012345678', '+1 415 555 0123', '+1415555O123', largeString)
        .map((v) => bad(v, 'invalid')),
    },
  );
}

/** An 8-digit code field: the given pools (wrong for the target), random digits, or malformed. */
export function codeField(pools: string[]): fc.Arbitrary<F<string>> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...pools).map(clean) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 99_999_999 }).map((n) => clean(String(n).padStart(8, '0'))) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom('', '1234567', '123456789', 'abcdefgh', '١٢٣٤٥٦٧٨', ' 12345678', '12345678\n', '-1234567', '1e7', largeString)
        .map((v) => bad(v, 'invalid')),
    },
  );
}

/** Timestamps for ledger filters: plausible, far away, negative, and nanos out of range. */
export const timestampField: fc.Arbitrary<F<object | undefined>> = fc.oneof(
  fc.constant(clean(undefined)),
  fc.record({ seconds: fc.bigInt({ min: 0n, max: 4_102_444_800n }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }).map(clean),
  fc
    .constantFrom(
      { seconds: -62_135_596_801n, nanos: 0 },
      { seconds: 253_402_300_800n, nanos: 0 },
      { seconds: 1n << 62n, nanos: 0 },
      { seconds: -(1n << 62n), nanos: 0 },
      { seconds: 0n, nanos: -1 },
      { seconds: 0n, nanos: 1_000_000_000 },
    )
    .map((v) => bad(v, 'invalid')),
);
