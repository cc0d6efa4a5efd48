import test from 'ava';
import fc from 'fast-check';
import { allFactors, type Factor, type Payment } from '../../../authz/model.js';
import type { PaymentRecord } from '../../../authz/store/port.js';
import { decodeRecordValues, encodeDigests, encodePaymentFields, encodeRecord, operationField, recordFields } from '../../../authz/store/redis/record-codec.js';
import { draft, draftDeclined, hex64, newHexId } from './payment-store.contract.js';

const flatToObject = (flat: string[]): Record<string, string> => {
  const o: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) o[flat[i]!] = flat[i + 1]!;
  return o;
};
/** What HMGET of `recordFields` answers for a HASH holding `stored`: null where a field is missing. */
const hmget = (stored: Record<string, string>): (string | null)[] => recordFields.map((field) => stored[field] ?? null);
/** What a script answers for a record holding `stored` (lua-common.ts `values`): false where a field is missing. */
const scriptValues = (stored: Record<string, string>): (string | false)[] => recordFields.map((field) => stored[field] ?? false);
/** A record written as `flat` (field, value pairs), decoded as a script's reply and as HMGET's: both must agree. */
const decodeBoth = (t: { deepEqual(a: unknown, b: unknown, m?: string): void }, flat: string[]): PaymentRecord => {
  const fromScript = decodeRecordValues(scriptValues(flatToObject(flat)));
  t.deepEqual(decodeRecordValues(hmget(flatToObject(flat))), fromScript, 'HMGET and a script reply decode alike');
  return fromScript;
};

test('a record round-trips: bigints beyond 2^64, optional fields, factor order, digests, due', (t) => {
  const t0 = Date.now();
  const d = draft(t0, {
    amount: 2n ** 100n + 7n,
    feeAmount: 0n,
    requiredFactors: ['IVR_PASSWORD', 'SMS_OTP', 'BANK_CARD_PIN'],
    satisfiedFactors: ['BANK_CARD_PIN'],
    originSim: { iccid: '8931440400000000001', imsi: '234150000000001', msisdn: '+447700900001' },
    billableLineId: newHexId(),
    bankAuthorizationCode: '',
    declineDetail: 'a: "quoted" ☕ detail',
  });
  const record: PaymentRecord = { payment: d.payment, version: 7, digests: { IVR_PASSWORD: hex64('a'), SMS_OTP: hex64('b') }, dueAtMs: 2 ** 53 - 1 };
  t.deepEqual(decodeBoth(t, encodeRecord(record)), record);
  const plain: PaymentRecord = { ...draftDeclined(t0), version: 1 };
  const decoded = decodeBoth(t, encodeRecord(plain));
  t.deepEqual(decoded, plain);
  t.false('sealedFirstCode' in decoded.payment, 'absent optional fields stay absent');
  t.is(decoded.dueAtMs, plain.dueAtMs);
});

test('a commit write over a record clears the optional fields and digests the new payment lacks', (t) => {
  const t0 = Date.now();
  const before: PaymentRecord = {
    payment: draftDeclined(t0, { sealedFirstCode: 'sealed' }).payment,
    version: 1,
    digests: { SECOND_CODE: hex64('x') },
    dueAtMs: t0,
  };
  const stored = flatToObject(encodeRecord(before));
  const { declineReason: _r, declineDetail: _d, sealedFirstCode: _s, ...rest } = before.payment;
  const after: Payment = { ...rest, state: 'CANCELLED' };
  Object.assign(stored, flatToObject([...encodePaymentFields(after, true), ...encodeDigests({}, true)]));
  t.deepEqual(decodeRecordValues(hmget(stored)), { payment: after, version: 1, digests: {}, dueAtMs: t0 });
});

test('any record round-trips (property)', (t) => {
  const factor = fc.constantFrom(...allFactors);
  const optionalText = fc.option(fc.string(), { nil: undefined });
  fc.assert(
    fc.property(
      fc.record({
        amount: fc.bigInt({ min: 1n, max: 2n ** 128n - 1n }),
        feeAmount: fc.bigInt({ min: 0n, max: 2n ** 64n }),
        description: fc.string(),
        required: fc.uniqueArray(factor, { maxLength: 7 }),
        satisfied: fc.uniqueArray(factor, { maxLength: 7 }),
        attemptsLeft: fc.nat(100),
        ms: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        due: fc.option(fc.nat({ max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
        version: fc.integer({ min: 1, max: 2 ** 31 }),
        digests: fc.dictionary(factor, fc.stringMatching(/^[0-9a-f]{64}$/)),
        declineDetail: optionalText,
        sealedFirstCode: optionalText,
        bankAuthorizationCode: optionalText,
      }),
      (g) => {
        const base = draft(g.ms, {
          amount: g.amount,
          feeAmount: g.feeAmount,
          description: g.description,
          requiredFactors: g.required,
          satisfiedFactors: g.satisfied,
          attemptsLeft: g.attemptsLeft,
          updatedAtMs: g.ms,
          expiresAtMs: g.ms,
        });
        const payment: Payment = { ...base.payment };
        for (const key of ['declineDetail', 'sealedFirstCode', 'bankAuthorizationCode'] as const) {
          if (g[key] === undefined) delete payment[key];
          else payment[key] = g[key];
        }
        const record: PaymentRecord = { payment, version: g.version, digests: g.digests as Partial<Record<Factor, string>>, dueAtMs: g.due };
        t.deepEqual(decodeBoth(t, encodeRecord(record)), record);
      },
    ),
    { numRuns: 300 },
  );
});

test('every field the codec writes is one HMGET reads (recordFields); operation keys are not, and a record read with its keys decodes the same', (t) => {
  const t0 = Date.now();
  const full = draft(t0, { declineDetail: 'd', sealedFirstCode: 's', bankAuthorizationCode: 'b' }).payment;
  const written = [
    ...encodeRecord({ payment: { ...full, declineReason: 'BANK_DECLINED' }, version: 2, digests: { SECOND_CODE: hex64('a') }, dueAtMs: t0 }),
    ...encodePaymentFields(draft(t0).payment, true),
    ...encodeDigests({}, true),
  ].filter((_, i) => i % 2 === 0);
  t.deepEqual([...new Set(written)].sort(), [...recordFields].sort());
  t.is(new Set(recordFields).size, recordFields.length);
  const record: PaymentRecord = { payment: full, version: 3, digests: {}, dueAtMs: undefined };
  const withKey = [...encodeRecord(record), operationField('merchant-1', 'key-1'), `${hex64('f')}:${t0}:p`];
  t.deepEqual(decodeBoth(t, withKey), record, 'an operation key is no field of the record');
});

test("a script's record reply is its fields' values after its writes, in recordFields order, false for a missing field: no names, no operation keys", (t) => {
  const t0 = Date.now();
  const before: PaymentRecord = { payment: draft(t0, { sealedFirstCode: 'sealed' }).payment, version: 2, digests: { SECOND_CODE: hex64('a') }, dueAtMs: t0 };
  const { sealedFirstCode: _s, ...rest } = before.payment;
  const stored = flatToObject([...encodeRecord(before), operationField('m', 'k'), `${hex64('f')}:${t0}:p`]);
  // The confirm's writes (lua-common.ts save mirrors them into the record the reply is made of).
  Object.assign(stored, { st: 'APPROVED', sc: '', d0: '', v: '3', up: String(t0 + 1) });
  const reply = scriptValues(stored);
  t.is(reply.length, recordFields.length);
  t.false(
    reply.some((v) => typeof v === 'string' && v.startsWith(hex64('f'))),
    'no operation key',
  );
  t.is(reply[recordFields.indexOf('dr')], false, 'a missing field is false');
  t.deepEqual(decodeRecordValues(reply), { payment: { ...rest, state: 'APPROVED', updatedAtMs: t0 + 1 }, version: 3, digests: {}, dueAtMs: t0 });
});

test('a stored record without one of the fields every write carries is malformed, not decoded with a null id or a 0', (t) => {
  const stored = flatToObject(encodeRecord({ payment: draft(Date.now()).payment, version: 1, digests: {}, dueAtMs: undefined }));
  t.notThrows(() => decodeRecordValues(hmget(stored)));
  for (const field of ['v', 'j', 'st', 'm', 'py', 'al', 'up', 'ex']) {
    const { [field]: _gone, ...rest } = stored;
    t.throws(() => decodeRecordValues(hmget(rest)), { message: /stored payment record is malformed/ }, `without ${field}`);
    t.throws(() => decodeRecordValues(scriptValues(rest)), { message: /stored payment record is malformed/ }, `without ${field}, from a script`);
  }
});

test('secretVersion (issue 15, finding 8) round-trips in the JSON field the scripts never touch; a record without it stays without', (t) => {
  const t0 = Date.now();
  const record: PaymentRecord = { payment: { ...draft(t0).payment, secretVersion: 4 }, version: 1, digests: { SECOND_CODE: hex64('c') }, dueAtMs: t0 };
  t.deepEqual(decodeBoth(t, encodeRecord(record)), record);
  t.is(JSON.parse(flatToObject(encodeRecord(record)).j!).secretVersion, 4);
  const legacy: PaymentRecord = { ...record, payment: draft(t0).payment };
  t.false('secretVersion' in decodeBoth(t, encodeRecord(legacy)).payment);
});

test('a SUCCEEDED record decodes without decline, sealed first code or digests whatever those fields hold (a settle writes only state, times and version); its bank code stays', (t) => {
  const t0 = Date.now();
  const approved: PaymentRecord = {
    payment: draft(t0, { state: 'APPROVED', declineDetail: 'left by an odd write', bankAuthorizationCode: 'A1B2C3' }).payment,
    version: 2,
    digests: { SECOND_CODE: hex64('kept') },
    dueAtMs: t0,
  };
  t.truthy(approved.payment.sealedFirstCode);
  const stored = flatToObject(encodeRecord(approved));
  t.deepEqual(decodeRecordValues(hmget(stored)), approved, 'APPROVED: every field decodes');
  // The settle's HSET (commit-lua.ts settleItem): state, updatedAtMs, version, due time.
  Object.assign(stored, { st: 'SUCCEEDED', up: String(t0 + 5), v: '3', du: '' });
  const { declineDetail: _d, sealedFirstCode: _s, ...rest } = approved.payment;
  const settled: PaymentRecord = { payment: { ...rest, state: 'SUCCEEDED', updatedAtMs: t0 + 5 }, version: 3, digests: {}, dueAtMs: undefined };
  t.deepEqual(decodeRecordValues(hmget(stored)), settled);
  t.deepEqual(decodeRecordValues(scriptValues(stored)), settled, 'the same through a script reply');
  t.is(stored.sc, `+${approved.payment.sealedFirstCode}`, 'the fields are still stored: only decoding leaves them out');
});
