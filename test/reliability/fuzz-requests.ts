import type { DescService } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { Factor, PasswordKind } from '../../gen/countersign/v1/common_pb.js';
import { BillingPeriod, EnrollmentService, LineKind } from '../../gen/countersign/v1/enrollment_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import {
  amountField,
  bad,
  clean,
  codeField,
  currencyField,
  enumField,
  type F,
  hex32,
  idField,
  keyField,
  largeString,
  malformedId,
  oversizeString,
  pageSizeField,
  pageTokenField,
  phoneField,
  type Tag,
  tagsOf,
  textField,
  timestampField,
} from './fuzz-fields.js';
import type { Actor, FuzzWorld, WorldPayment } from './fuzz-world.js';
import type { Wire } from './security-rpc.js';

/**
 * The fuzzer's requests: one fast-check arbitrary per RPC of PaymentService, PayerService,
 * EnrollmentService and LedgerService, each value carrying the answers that would be precise
 * for it. Requests never give a payment its own correct code and never fund or create money
 * legitimately, so any money movement the fuzz causes is a finding (targets may only lose their
 * reservations when wrong answers decline them).
 */

export type CallerName = 'admin' | 'A' | 'B' | 'zero' | 'replayer' | 'expirer' | 'T0' | 'T1' | 'T2' | 'T3' | 'none' | 'bogus' | 'oversizedKey' | 'emptyBearer';
type Kind = 'admin' | 'merchant' | 'payer' | 'anon';

export interface FuzzRequest {
  readonly rpc: string;
  readonly service: DescService;
  readonly method: string;
  readonly stream: boolean;
  readonly wire: Wire;
  readonly caller: CallerName;
  readonly input: Record<string, unknown>;
  /** Precise error answers. */
  readonly tags: readonly Tag[];
  /** OK is a correct answer too. */
  readonly okAllowed: boolean;
  /** Batch items: each item's own expectation, in order. */
  readonly items?: readonly { tags: readonly Tag[]; okAllowed: boolean }[];
  /** Payments this request names whose own correct code must never be sent (replaced when it is). */
  readonly targets?: readonly WorldPayment[];
}

export const kindOf = (c: CallerName): Kind =>
  c === 'admin'
    ? 'admin'
    : c === 'A' || c === 'B'
      ? 'merchant'
      : c === 'none' || c === 'bogus' || c === 'oversizedKey' || c === 'emptyBearer'
        ? 'anon'
        : 'payer';

const anonCallers: CallerName[] = ['none', 'bogus', 'oversizedKey', 'emptyBearer'];
const payerCallers: CallerName[] = ['zero', 'replayer', 'expirer', 'T0', 'T1', 'T2', 'T3'];

/** Mostly the right kind of caller, sometimes another kind, sometimes no valid credential. */
function callerField(right: CallerName[], wrong: CallerName[]): fc.Arbitrary<CallerName> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...right) },
    { weight: 1, arbitrary: fc.constantFrom(...wrong) },
    { weight: 1, arbitrary: fc.constantFrom(...anonCallers) },
  );
}

/** Tags a caller of the wrong kind adds: PERMISSION_DENIED, or NOT_FOUND where existence must not leak. */
const wrongKindTags: Tag[] = ['denied', 'notFound'];

function request(
  rpc: { service: DescService; method: string; stream?: boolean },
  wire: Wire,
  caller: CallerName,
  input: Record<string, unknown>,
  tags: Tag[],
  okAllowed: boolean,
  extra: Partial<FuzzRequest> = {},
): FuzzRequest {
  return {
    rpc: `${rpc.service.name}/${rpc.method}`,
    service: rpc.service,
    method: rpc.method,
    stream: rpc.stream ?? false,
    wire,
    caller,
    input,
    tags,
    okAllowed,
    ...extra,
  };
}

const wireField: fc.Arbitrary<Wire> = fc.constantFrom('grpc-js', 'connect');

// ------------------------------------------------------------------------------- payments

/** A payment reference: one of the world's, nobody's, or malformed. */
type Ref = { kind: 'world'; p: WorldPayment; live: boolean } | { kind: 'unknown'; id: string } | { kind: 'malformed'; id: string };

function refField(world: FuzzWorld): fc.Arbitrary<Ref> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...world.live).map((p): Ref => ({ kind: 'world', p, live: true })) },
    { weight: 2, arbitrary: fc.constantFrom(world.succeeded, world.expired).map((p): Ref => ({ kind: 'world', p, live: false })) },
    { weight: 1, arbitrary: hex32.map((id): Ref => ({ kind: 'unknown', id })) },
    { weight: 1, arbitrary: malformedId.map((id): Ref => ({ kind: 'malformed', id })) },
  );
}

const idOf = (ref: Ref): string => (ref.kind === 'world' ? ref.p.id : ref.id);

function sees(world: FuzzWorld, caller: CallerName, p: WorldPayment): boolean {
  const kind = kindOf(caller);
  if (kind === 'admin') return true;
  if (kind === 'merchant') return p.merchant === caller;
  if (kind === 'payer') return actorOf(world, caller)?.id === p.payer.id;
  return false;
}

export function actorOf(world: FuzzWorld, caller: CallerName): Actor | undefined {
  if (caller === 'zero') return world.zero;
  if (caller === 'replayer') return world.replayer;
  if (caller === 'expirer') return world.expirer;
  if (/^T\d$/.test(caller)) return world.targets[Number(caller.slice(1))];
  return undefined;
}

/** What naming `ref` may answer: invalid, unknown, not visible, or the state's answers. */
function refTags(world: FuzzWorld, caller: CallerName, ref: Ref, whenLive: Tag[], whenDead: Tag[]): Tag[] {
  if (ref.kind === 'malformed') return ['invalid'];
  if (ref.kind === 'unknown') return ['notFound'];
  if (!sees(world, caller, ref.p)) return ['notFound'];
  return ref.live ? whenLive : whenDead;
}

/** A wrong answer to a live challenge: denied, attempts exhausted or locked out, or already declined. */
const liveAnswerTags: Tag[] = ['denied', 'exhausted', 'precondition'];

/**
 * A create's answers: an oversize message is RESOURCE_EXHAUSTED whatever else; a malformed or
 * unknown field is refused before anything else; otherwise the payer with no money cannot pay
 * (insufficient funds, policy, the code-rate limit: FAILED_PRECONDITION or RESOURCE_EXHAUSTED).
 */
function createTags(tags: Tag[], oversize: boolean): Tag[] {
  if (oversize) return ['exhausted'];
  if (tags.includes('invalid') || tags.includes('notFound')) return tags;
  return [...new Set<Tag>([...tags, 'precondition', 'exhausted'])];
}

/** Without the reused-key tag: a reused key may still be unclaimed, so the request runs as if fresh. */
export const withoutExists = (tags: readonly Tag[]): Tag[] => tags.filter((t) => t !== 'exists');

type Sim = { iccid: string; imsi: string; msisdn: string };
const digits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max });
/** M4's SIM identity: digits (ICCID 18–22, IMSI 6–15, MSISDN E.164 or empty), at least an ICCID or an IMSI. */
const simValid = (s: Sim): boolean =>
  (s.iccid !== '' || s.imsi !== '') &&
  (s.iccid === '' || /^\d{18,22}$/.test(s.iccid)) &&
  (s.imsi === '' || /^\d{6,15}$/.test(s.imsi)) &&
  (s.msisdn === '' || /^\+[1-9]\d{6,14}$/.test(s.msisdn));
const simField: fc.Arbitrary<Sim> = fc.record({
  iccid: fc.oneof(fc.constant(''), digits(18, 22), fc.string({ maxLength: 24 })),
  imsi: fc.oneof(fc.constant(''), digits(6, 15), fc.string({ maxLength: 16 })),
  msisdn: fc.oneof(
    fc.constant(''),
    digits(7, 14).map((d) => `+1${d}`.slice(0, 16)),
    fc.string({ maxLength: 16 }),
  ),
});
const originSimField: fc.Arbitrary<F<Sim | undefined>> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(clean(undefined)) },
  { weight: 2, arbitrary: simField.map((sim) => (simValid(sim) ? clean(sim) : bad(sim, 'invalid'))) },
);

function createItem(world: FuzzWorld, merchant: 'A' | 'B') {
  const other = merchant === 'A' ? 'B' : 'A';
  // `nobody`: a phone no payer is enrolled with, answered like an enrolled payer who has not
  // answered yet (README "Tenant safety"): OK (CHALLENGED) as well as what a clean create may get.
  const payer: fc.Arbitrary<{ value: { case: string; value: string } | { case: undefined }; f: F<unknown>; nobody?: true }> = fc.oneof(
    idField([world.zero.id]).map((f) => ({ value: { case: 'payerId', value: f.v }, f: f.v === '' ? bad(f.v, 'invalid') : f })),
    phoneField([world.zero.phone]).map((f) =>
      f.t.includes('notFound')
        ? { value: { case: 'payerPhone', value: f.v }, f: clean(f.v), nobody: true as const }
        : { value: { case: 'payerPhone', value: f.v }, f: f.v === '' ? bad(f.v, 'invalid') : f },
    ),
    fc
      .constantFrom(bad('login-nobody', 'notFound'), bad('l'.repeat(65), 'invalid'), bad('', 'invalid'))
      .map((f) => ({ value: { case: 'loginAccount', value: f.v }, f })),
    fc.string({ maxLength: 20 }).map((v) => ({ value: { case: 'payNumber', value: v }, f: bad(v, 'precondition', 'notFound', 'invalid') })),
    fc.constant({ value: { case: undefined }, f: bad(undefined, 'invalid') }),
  );
  const payee = fc.oneof(
    fc.constantFrom(clean(''), clean(world.merchants[merchant].account)),
    fc.constantFrom(world.merchants[other].account, world.zero.account).map((v) => bad(v, 'invalid')),
    malformedId.filter((v) => v !== '').map((v) => bad(v, 'invalid')), // empty is the merchant's own account
  );
  const description = fc.oneof({ weight: 30, arbitrary: textField(200) }, { weight: 1, arbitrary: fc.constant(bad(oversizeString, 'exhausted')) });
  const factors = fc.oneof(
    fc.constant(clean([] as number[])),
    fc.subarray([Factor.SECOND_CODE, Factor.FIRST_CODE_AND_PIN, Factor.SMS_OTP, Factor.IVR_PASSWORD, Factor.AUTH_PASSWORD]).map(clean),
    // M4 needs the request's origin_sim and a paired device; M5 a bank: refused one way or the other.
    fc.constantFrom([Factor.PAIRED_DEVICE], [Factor.BANK_CARD_PIN]).map((v) => bad(v, 'precondition', 'invalid')),
    fc.constantFrom([0], [99], [-5], [Factor.SECOND_CODE, 12]).map((v) => bad(v, 'invalid')),
    // Repeats are the same factor: accepted like one.
    fc.constant(clean(new Array<number>(5000).fill(Factor.SECOND_CODE))),
  );
  return fc
    .record({
      key: keyField(['fz-pool-1', 'fz-pool-2', 'fz-pool-3']),
      payer,
      payee,
      amount: amountField,
      currency: currencyField,
      description,
      channel: enumField([1, 2, 3, 4, 5, 6, 7, 8], []),
      factors,
      authPassword: fc.constantFrom('', 'open sesame 42', 'p'.repeat(129), largeString),
      // Nobody's line: NOT_FOUND, or refused with the factors or the payer first.
      billableLine: fc.oneof(
        fc.constant(clean('')),
        hex32.map((v) => bad(v, 'notFound', 'invalid', 'precondition')),
        malformedId.filter((v) => v !== '').map((v) => bad(v, 'invalid', 'notFound')),
      ),
      originSim: originSimField,
    })
    .map((r) => {
      const input = {
        idempotencyKey: r.key.v,
        payer: r.payer.value,
        payeeAccountId: r.payee.v,
        amount: r.amount.v,
        currency: r.currency.v,
        description: r.description.v,
        channel: r.channel.v,
        requestedFactors: r.factors.v,
        authPassword: r.authPassword,
        billableLineId: r.billableLine.v,
        ...(r.originSim.v === undefined ? {} : { originSim: r.originSim.v }),
      };
      // Asking for the authentication password puts auth_password on trial: missing or too long, wrong, or locked out.
      const authTags: Tag[] = (r.factors.v as number[]).includes(Factor.AUTH_PASSWORD) ? ['invalid', 'denied', 'exhausted'] : [];
      // A factor needing a PIN or password the payer never set is refused before anything is reserved.
      const secretTags: Tag[] = (r.factors.v as number[]).some(
        (f) => f === Factor.FIRST_CODE_AND_PIN || f === Factor.IVR_PASSWORD || f === Factor.AUTH_PASSWORD,
      )
        ? ['precondition']
        : [];
      const tags = createTags(
        [
          ...tagsOf(r.key, r.payer.f, r.payee, r.amount, r.currency, r.description, r.channel, r.factors, r.originSim, r.billableLine),
          ...authTags,
          ...secretTags,
        ],
        r.description.v === oversizeString,
      );
      // The zero-balance payer (or nobody's phone) named cleanly: a payment that needs proof is created
      // (CHALLENGED, holding nothing: no money is held before the payer consents); one that needs none
      // is refused for funds. So OK is allowed where only those refusals were.
      // (A factor needing a PIN the payer never set is refused, unless the fuzz's own SetPin gave it one.)
      const namesPayer = (r.payer.value.case === 'payerId' || r.payer.value.case === 'payerPhone') && r.payer.f.t.length === 0;
      const okAllowed = (r.payer.nobody === true || namesPayer) && tags.every((t) => t === 'precondition' || t === 'exhausted' || t === 'exists');
      return { input, tags, okAllowed };
    });
}

function createPayment(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(wireField, callerField(['A', 'B'], ['admin', 'zero', 'T0']), fc.constantFrom<'A' | 'B'>('A', 'B'))
    .chain(([wire, caller, shop]) =>
      createItem(world, kindOf(caller) === 'merchant' ? (caller as 'A' | 'B') : shop).map(({ input, tags, okAllowed }) =>
        request(
          { service: PaymentService, method: 'createPayment' },
          wire,
          caller,
          input,
          kindOf(caller) === 'merchant' ? tags : [...tags, ...wrongKindTags],
          okAllowed && kindOf(caller) === 'merchant',
        ),
      ),
    );
}

function batchCreate(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(wireField, callerField(['A', 'B'], ['admin', 'T1']), fc.constantFrom<'A' | 'B'>('A', 'B'), fc.integer({ min: 0, max: 4 }), keyField(['fz-batch-1']))
    .chain(([wire, caller, shop, count, key]) => {
      const merchant = kindOf(caller) === 'merchant' ? (caller as 'A' | 'B') : shop;
      const items =
        count === 0
          ? fc.constantFrom([] as { input: object; tags: Tag[]; okAllowed: boolean }[], 'oversize' as const)
          : fc.array(createItem(world, merchant), { minLength: count, maxLength: count });
      return items.map((list) => {
        const wrong = kindOf(caller) !== 'merchant' ? wrongKindTags : [];
        if (list === 'oversize') {
          const one = { idempotencyKey: 'fz-many', payer: { case: 'payerId', value: world.zero.id }, amount: 1n, currency: 'USD' };
          return request(
            { service: PaymentService, method: 'batchCreatePayments' },
            wire,
            caller,
            { idempotencyKey: key.v, items: new Array(1001).fill(one) },
            ['invalid', ...wrong],
            false,
          );
        }
        const whole = list.length === 0 ? (['invalid'] as Tag[]) : withoutExists(key.t);
        const oversize = list.some((i) => (i.input as { description: string }).description === oversizeString);
        const tags: Tag[] = oversize ? ['exhausted'] : [...whole, ...wrong];
        return request(
          { service: PaymentService, method: 'batchCreatePayments' },
          wire,
          caller,
          { idempotencyKey: key.v, items: list.map((i) => i.input) },
          tags,
          whole.length === 0 && wrong.length === 0 && !oversize,
          {
            items: list.map((i) => ({ tags: i.tags, okAllowed: i.okAllowed })),
          },
        );
      });
    });
}

function merchantPaymentRead(world: FuzzWorld, method: 'getPayment' | 'watchPayments'): fc.Arbitrary<FuzzRequest> {
  return fc.tuple(wireField, callerField(['A', 'B'], ['admin', 'T2', 'replayer']), refField(world), fc.boolean()).map(([wire, caller, ref, empty]) => {
    const wrong = kindOf(caller) === 'merchant' ? [] : wrongKindTags;
    if (method === 'watchPayments' && empty)
      return request({ service: PaymentService, method, stream: true }, wire, caller, { paymentId: '' }, wrong, wrong.length === 0);
    // For WatchPayments an empty id is "all my payments", not a malformed one.
    const tags = method === 'watchPayments' && idOf(ref) === '' ? [] : refTags(world, caller, ref, [], []);
    return request(
      { service: PaymentService, method, stream: method === 'watchPayments' },
      wire,
      caller,
      { paymentId: idOf(ref) },
      [...tags, ...wrong],
      tags.length === 0 && wrong.length === 0,
    );
  });
}

/** Refusing a payment: never the caller's own live one (that is legitimate, not hostile). */
function refuse(
  world: FuzzWorld,
  service: DescService,
  method: 'cancelPayment' | 'declinePayment',
  right: CallerName[],
  wrongKinds: CallerName[],
): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(wireField, callerField(right, wrongKinds), refField(world), keyField(['fz-pool-4']), textField(500))
    .map(([wire, caller, ref, key, reason]) => {
      const rightKind = right.includes(caller);
      const target =
        ref.kind === 'world' && ref.live && sees(world, caller, ref.p) && rightKind ? { ...ref, p: world.live.find((p) => !sees(world, caller, p))! } : ref;
      // A dead payment: already final (precondition), or OK when it is already refused the same way.
      const tags = [...refTags(world, caller, target, ['notFound'], ['precondition']), ...tagsOf(key, reason), ...(rightKind ? [] : wrongKindTags)];
      return request({ service, method }, wire, caller, { idempotencyKey: key.v, paymentId: idOf(target), reason: reason.v }, tags, false);
    });
}

function listPayments(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      wireField,
      callerField(['A', 'B'], ['admin', 'T0']),
      pageSizeField,
      pageTokenField('payments'),
      fc.array(enumField([1, 2, 3, 4, 5, 6, 7], ['invalid']), { maxLength: 3 }),
      fc.oneof(fc.constant(''), fc.constant(world.targets[0]!.id), malformedId),
    )
    .map(([wire, caller, size, token, states, payerId]) => {
      // A malformed payer filter may match nothing (OK, empty) or be refused; both are precise.
      const filter: Tag[] = payerId === '' || /^[0-9a-f]{32}$/.test(payerId) ? [] : ['invalid'];
      const tags = [...tagsOf(size, token, ...states), ...(kindOf(caller) === 'merchant' ? [] : wrongKindTags)];
      return request(
        { service: PaymentService, method: 'listPayments' },
        wire,
        caller,
        { pageSize: size.v, pageToken: token.v, states: states.map((s) => s.v), payerId },
        [...tags, ...filter],
        tags.length === 0,
      );
    });
}

/** Second codes for a payment: other payments' correct codes, the replayed and the expired one, random, malformed. */
function codesFor(world: FuzzWorld): fc.Arbitrary<F<string>> {
  return codeField([...world.live.map((p) => p.secondCode), world.succeeded.secondCode, world.expired.secondCode, ...world.live.map((p) => p.firstCode)]);
}

function confirmAsMerchantItem(world: FuzzWorld, caller: CallerName) {
  return fc.tuple(refField(world), keyField(['fz-pool-5']), codesFor(world)).map(([ref, key, code]) => {
    const tags = [...refTags(world, caller, ref, liveAnswerTags, ['precondition']), ...tagsOf(key, code)];
    return { input: { idempotencyKey: key.v, paymentId: idOf(ref), secondCode: code.v }, tags, target: ref.kind === 'world' ? ref.p : undefined };
  });
}

function confirmAsMerchant(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(wireField, callerField(['A', 'B'], ['admin', 'T3']))
    .chain(([wire, caller]) =>
      confirmAsMerchantItem(world, caller).map((item) =>
        request(
          { service: PaymentService, method: 'confirmPaymentAsMerchant' },
          wire,
          caller,
          item.input,
          [...item.tags, ...(kindOf(caller) === 'merchant' ? [] : wrongKindTags)],
          false,
          { targets: item.target ? [item.target] : [] },
        ),
      ),
    );
}

function batchConfirm(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(wireField, callerField(['A', 'B'], ['admin', 'T3']), fc.integer({ min: 0, max: 5 }), keyField(['fz-batch-2']))
    .chain(([wire, caller, count, key]) =>
      fc.array(confirmAsMerchantItem(world, caller), { minLength: count, maxLength: count }).map((list) => {
        const wrong = kindOf(caller) === 'merchant' ? [] : wrongKindTags;
        const whole: Tag[] = list.length === 0 ? ['invalid'] : key.t.filter((t) => t !== 'exists');
        return request(
          { service: PaymentService, method: 'batchConfirmPayments' },
          wire,
          caller,
          { idempotencyKey: key.v, items: list.map((i) => i.input) },
          [...whole, ...wrong],
          whole.length === 0 && wrong.length === 0,
          {
            items: list.map((i) => ({ tags: i.tags, okAllowed: false })),
            targets: list.flatMap((i) => (i.target ? [i.target] : [])),
          },
        );
      }),
    );
}

// ------------------------------------------------------------------------------- payer side

function proofField(world: FuzzWorld): fc.Arbitrary<{ proof: object; tags: Tag[]; onlyFor: 'second' | 'pin' | 'other' }> {
  const code = codesFor(world);
  const pin = fc.oneof(
    fc.integer({ min: 0, max: 999_999 }).map((n) => clean(String(n).padStart(6, '0'))),
    fc.constantFrom('', '123', '1234567890123', 'abcd', largeString).map((v) => bad(v, 'invalid')),
  );
  return fc.oneof(
    { weight: 5, arbitrary: code.map((c) => ({ proof: { case: 'secondCode', value: c.v }, tags: [...c.t], onlyFor: 'second' as const })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(code, pin)
        .map(([c, p]) => ({ proof: { case: 'firstCodeAndPin', value: { firstCode: c.v, pin: p.v } }, tags: [...c.t, ...p.t], onlyFor: 'pin' as const })),
    },
    { weight: 1, arbitrary: code.map((c) => ({ proof: { case: 'smsOtp', value: c.v }, tags: [...c.t, 'precondition' as Tag], onlyFor: 'other' as const })) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(enumField([PasswordKind.IVR, PasswordKind.AUTHORIZATION, PasswordKind.AUTH], ['invalid']), fc.constantFrom('1234', '', 'abc', largeString))
        .map(([kind, password]) => ({
          proof: { case: 'password', value: { kind: kind.v, password } },
          tags: [...kind.t, 'denied' as Tag, 'precondition' as Tag, 'invalid' as Tag],
          onlyFor: 'other' as const,
        })),
    },
    {
      weight: 1,
      arbitrary: fc.constant({
        proof: { case: 'pairedDevice', value: { firstCode: '12345678', deviceId: '0'.repeat(32) } },
        tags: ['precondition', 'invalid', 'denied', 'notFound'] as Tag[],
        onlyFor: 'other' as const,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.constant({
        proof: { case: 'bankCard', value: { suite: 'x', keyId: 'k', ciphertext: new Uint8Array(64) } },
        tags: ['precondition', 'invalid', 'denied', 'notFound'] as Tag[],
        onlyFor: 'other' as const,
      }),
    },
    { weight: 1, arbitrary: fc.constant({ proof: { case: undefined }, tags: ['invalid'] as Tag[], onlyFor: 'other' as const }) },
  );
}

function confirmPayment(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(wireField, callerField(payerCallers, ['A', 'admin']), refField(world), keyField(['fz-pool-6']), proofField(world))
    .map(([wire, caller, ref, key, proof]) => {
      // A proof for a factor the payment does not wait for is FAILED_PRECONDITION; a merchant may not use this method.
      const stateTags: Tag[] = proof.onlyFor === 'second' ? liveAnswerTags : [...liveAnswerTags, 'invalid'];
      const tags = [
        ...refTags(world, caller, ref, stateTags, ['precondition']),
        ...proof.tags,
        ...tagsOf(key),
        ...(kindOf(caller) === 'merchant' ? ['denied' as Tag] : []),
      ];
      return request(
        { service: PayerService, method: 'confirmPayment' },
        wire,
        caller,
        { idempotencyKey: key.v, paymentId: idOf(ref), proof: proof.proof },
        tags,
        false,
        { targets: ref.kind === 'world' ? [ref.p] : [] },
      );
    });
}

function payerRead(world: FuzzWorld, method: 'listPendingPayments' | 'watchPendingPayments'): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      wireField,
      callerField(payerCallers, ['A', 'admin']),
      fc.oneof(fc.constant('own'), fc.constant(''), fc.constantFrom(...payerCallers), malformedId),
      pageSizeField,
      pageTokenField('payments'),
    )
    .map(([wire, caller, who, size, token]) => {
      const me = actorOf(world, caller)?.id ?? '';
      const other = who === 'own' ? me : payerCallers.includes(who as CallerName) ? actorOf(world, who as CallerName)!.id : who;
      const foreign = other !== '' && other !== me;
      const wrong = kindOf(caller) === 'payer' ? [] : wrongKindTags;
      const paging = method === 'listPendingPayments' ? tagsOf(size, token) : [];
      const tags: Tag[] = [...paging, ...(foreign ? (['denied', 'notFound'] as Tag[]) : []), ...wrong];
      const input = method === 'listPendingPayments' ? { payerId: other, pageSize: size.v, pageToken: token.v } : { payerId: other };
      return request({ service: PayerService, method, stream: method === 'watchPendingPayments' }, wire, caller, input, tags, tags.length === 0);
    });
}

function getChallenge(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  return fc.tuple(wireField, callerField(payerCallers, ['A', 'admin']), refField(world)).map(([wire, caller, ref]) => {
    const tags = [...refTags(world, caller, ref, [], []), ...(kindOf(caller) === 'payer' ? [] : wrongKindTags)];
    return request({ service: PayerService, method: 'getChallenge' }, wire, caller, { paymentId: idOf(ref) }, tags, tags.length === 0);
  });
}

// ------------------------------------------------------------------------------- enrollment

const policyField: fc.Arbitrary<F<object>> = fc.oneof(
  fc.constant(clean({ currency: 'USD', noFactorBelow: 1_00n, oneFactorUpTo: 1000_00n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] })),
  fc.record({ noFactorBelow: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), oneFactorUpTo: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }).map((b) => {
    // Valid when no_factor_below <= one_factor_up_to (random values never land on the +1 boundary).
    const policy = { currency: 'USD', ...b, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] };
    return b.noFactorBelow <= b.oneFactorUpTo ? clean(policy) : bad(policy, 'invalid');
  }),
  fc
    .constantFrom(
      { currency: 'USD', noFactorBelow: 0n, oneFactorUpTo: 0n, oneFactor: 99, moreFactors: [Factor.SECOND_CODE] },
      { currency: 'USD', noFactorBelow: 0n, oneFactorUpTo: 0n, oneFactor: Factor.SECOND_CODE, moreFactors: [] },
      { currency: 'USD', noFactorBelow: 0n, oneFactorUpTo: 0n, oneFactor: Factor.SECOND_CODE, moreFactors: [0] },
      { currency: 'XXX', noFactorBelow: 0n, oneFactorUpTo: 0n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] },
      { currency: 'EUR', noFactorBelow: 0n, oneFactorUpTo: 0n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] },
    )
    .map((v) => bad(v, 'invalid', 'precondition')),
);

function payerIdField(world: FuzzWorld): fc.Arbitrary<F<string>> {
  return idField([world.zero.id, ...world.targets.map((t) => t.id)]);
}

function enrollPayer(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const phone = fc.oneof(
    // A new number, unless fast-check (which favours small integers) drew it before: then ALREADY_EXISTS.
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 9_999_999 }).map((n) => bad(`+1307${String(n).padStart(7, '0')}`, 'exists')) },
    { weight: 1, arbitrary: fc.constant(bad(world.zero.phone, 'exists')) },
    { weight: 2, arbitrary: phoneField([]).filter((f) => f.t.includes('invalid')) },
  );
  const currencies = fc.oneof(
    fc.constant(clean(['USD'])),
    fc.constantFrom([], ['USD', 'USD'], ['XXX'], [largeString]).map((v) => bad(v, 'invalid')),
  );
  return fc
    .tuple(
      wireField,
      callerField(['admin'], ['A', 'T0']),
      keyField(['fz-pool-7']),
      phone,
      textField(100),
      currencies,
      fc.array(policyField, { maxLength: 2 }),
      fc.constantFrom(clean(''), bad('l'.repeat(65), 'invalid')),
    )
    .map(([wire, caller, key, ph, name, cur, policies, login]) => {
      // Two policies for one currency are refused (INVALID_ARGUMENT), before the key is looked at.
      const currenciesOfPolicies = policies.map((p) => (p.v as { currency?: string }).currency);
      const duplicate: Tag[] = new Set(currenciesOfPolicies).size < currenciesOfPolicies.length ? ['invalid'] : [];
      const tags = [...tagsOf(key, ph, name, cur, login, ...policies), ...duplicate, ...(kindOf(caller) === 'admin' ? [] : wrongKindTags)];
      return request(
        { service: EnrollmentService, method: 'enrollPayer' },
        wire,
        caller,
        { idempotencyKey: key.v, phone: ph.v, displayName: name.v, currencies: cur.v, policies: policies.map((p) => p.v), loginAccount: login.v },
        tags,
        withoutExists(tags).length === 0,
      );
    });
}

function enrollMerchant(): fc.Arbitrary<FuzzRequest> {
  const name = fc.oneof(fc.string({ minLength: 1, maxLength: 30 }).map(clean), fc.constantFrom(bad('', 'invalid'), bad('n'.repeat(101), 'invalid')));
  const fee = fc.oneof(
    fc.integer({ min: 0, max: 10_000 }).map(clean),
    fc.constantFrom(10_001, 2 ** 32 - 1).map((v) => bad(v, 'invalid')),
  );
  const currencies = fc.oneof(
    fc.constant(clean(['USD'])),
    fc.constant(clean(['USD', 'EUR'])),
    fc.constantFrom([], ['EUR', 'EUR'], ['usd']).map((v) => bad(v, 'invalid')),
  );
  return fc
    .tuple(wireField, callerField(['admin'], ['B', 'zero']), keyField(['fz-pool-8']), name, fee, currencies, amountField)
    .map(([wire, caller, key, n, f, cur, limit]) => {
      const tags = [...tagsOf(key, n, f, cur), ...(kindOf(caller) === 'admin' ? [] : wrongKindTags)];
      return request(
        { service: EnrollmentService, method: 'enrollMerchant' },
        wire,
        caller,
        { idempotencyKey: key.v, name: n.v, feeBasisPoints: f.v, currencies: cur.v, perPaymentLimit: limit.v },
        tags,
        withoutExists(tags).length === 0,
      );
    });
}

function getPayer(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  return fc.tuple(wireField, callerField(['admin', 'T0', 'zero'], ['A']), payerIdField(world)).map(([wire, caller, id]) => {
    const me = actorOf(world, caller)?.id;
    const hidden = kindOf(caller) === 'merchant' || (kindOf(caller) === 'payer' && id.v !== me);
    const tags = [...id.t, ...(hidden ? (['notFound'] as Tag[]) : [])];
    return request({ service: EnrollmentService, method: 'getPayer' }, wire, caller, { payerId: id.v }, tags, tags.length === 0);
  });
}

/** Operator-only enrollment writes; none moves money. */
function adminWrite(
  world: FuzzWorld,
  method: string,
  fields: (payer: string) => fc.Arbitrary<{ input: object; tags: Tag[]; okAllowed?: boolean }>,
  inFlux = false,
): fc.Arbitrary<FuzzRequest> {
  return fc.tuple(wireField, callerField(['admin'], ['A', 'T1']), keyField(['fz-pool-9']), payerIdField(world)).chain(([wire, caller, key, payer]) =>
    fields(payer.v).map((f) => {
      // Issue 5's methods may let a payer act on their own entry (a pay number for themselves).
      const ownEntry = inFlux && kindOf(caller) === 'payer' && actorOf(world, caller)?.id === payer.v;
      const wrong = kindOf(caller) === 'admin' || ownEntry ? [] : wrongKindTags;
      const tags: Tag[] = [...f.tags, ...tagsOf(key, payer), ...wrong, ...(inFlux ? (['unimplemented', 'notFound', 'denied'] as Tag[]) : [])];
      const okAllowed = (f.okAllowed ?? f.tags.length === 0) && withoutExists(tagsOf(key, payer)).length === 0 && wrong.length === 0;
      return request({ service: EnrollmentService, method }, wire, caller, { idempotencyKey: key.v, payerId: payer.v, ...f.input }, tags, okAllowed);
    }),
  );
}

const pinField = fc.oneof(
  fc.integer({ min: 0, max: 99_999_999 }).map((n) => clean(String(n).padStart(8, '0'))),
  fc.constantFrom('', '123', '1234567890123', 'abcd', '12 34', largeString).map((v) => bad(v, 'invalid')),
);

function enrollmentWrites(world: FuzzWorld): fc.Arbitrary<FuzzRequest>[] {
  return [
    adminWrite(world, 'setPayerPolicy', () =>
      fc.oneof(
        policyField.map((p) => ({ input: { policy: p.v }, tags: [...p.t] })),
        fc.constant({ input: {}, tags: ['invalid'] as Tag[] }),
      ),
    ),
    adminWrite(world, 'setPin', () => pinField.map((p) => ({ input: { pin: p.v }, tags: [...p.t] }))),
    adminWrite(world, 'setPassword', () =>
      fc
        .tuple(
          enumField([PasswordKind.IVR, PasswordKind.AUTH, PasswordKind.AUTHORIZATION], ['invalid']),
          fc.constantFrom('2468', 'correct horse battery', '', 'abc', '1'.repeat(13), largeString),
        )
        .map(([kind, password]) => ({
          input: { kind: kind.v, password },
          // Whether the password fits the kind: both answers are precise for a value this generator does not classify.
          tags: [...kind.t, 'invalid' as Tag],
          okAllowed: kind.t.length === 0,
        })),
    ),
    // Issue 5's RPCs (M3c, M4, M5, rotation) may be UNIMPLEMENTED on this build; anything but INTERNAL is judged by tags.
    adminWrite(
      world,
      'pairDevice',
      () =>
        fc.tuple(fc.option(simField, { nil: undefined }), fc.option(simField, { nil: undefined }), fc.string({ maxLength: 70 })).map(([main, aux, label]) => ({
          input: { mainSim: main, auxiliarySim: aux, label },
          tags: ['invalid', 'exists', 'precondition'] as Tag[],
          okAllowed: true,
        })),
      true,
    ),
    adminWrite(
      world,
      'addBillableLine',
      () =>
        fc
          .tuple(
            enumField([LineKind.LANDLINE, LineKind.MOBILE, LineKind.MODEM], ['invalid']),
            phoneField([]),
            currencyField,
            amountField,
            enumField([BillingPeriod.WEEKLY, BillingPeriod.MONTHLY], ['invalid']),
          )
          .map(([kind, number, currency, limit, period]) => ({
            input: { kind: kind.v, number: number.v, currency: currency.v, creditLimit: limit.v, billingPeriod: period.v },
            tags: ['invalid', 'precondition', ...tagsOf(kind, currency, limit, period)] as Tag[],
            okAllowed: true,
          })),
      true,
    ),
    adminWrite(
      world,
      'issuePayNumber',
      () =>
        fc.oneof(
          fc.integer({ min: 0, max: 86_400 }).map((t) => ({ input: { ttlSeconds: t }, tags: [] as Tag[] })),
          fc.constantFrom(86_401, 2 ** 32 - 1).map((t) => ({ input: { ttlSeconds: t }, tags: ['invalid'] as Tag[] })),
        ),
      true,
    ),
    adminWrite(world, 'rotateSecret', () => fc.constant({ input: {}, tags: [] as Tag[] }), true),
  ];
}

// ------------------------------------------------------------------------------- ledger

function accountIdField(world: FuzzWorld): fc.Arbitrary<F<string>> {
  return idField([world.zero.account, world.merchants.A.account, world.merchants.B.account, ...world.targets.map((t) => t.account)]);
}

/** Owners: a merchant its payee account, a payer its prepaid account; others are NOT_FOUND. */
function accountTags(world: FuzzWorld, caller: CallerName, account: F<string>): Tag[] {
  if (account.t.length > 0) return [...account.t];
  const kind = kindOf(caller);
  if (kind === 'admin') return [];
  const own = kind === 'merchant' ? world.merchants[caller as 'A' | 'B'].account : actorOf(world, caller)?.account;
  return account.v === own ? [] : ['notFound'];
}

function ledgerRead(world: FuzzWorld, method: 'getAccount' | 'listAccountTransfers' | 'getAccountBalances'): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      wireField,
      callerField(['admin', 'A', 'T0', 'zero'], ['B']),
      accountIdField(world),
      pageSizeField,
      pageTokenField('ledger'),
      timestampField,
      timestampField,
      fc.boolean(),
    )
    .map(([wire, caller, account, size, token, min, max, reversed]) => {
      const base = accountTags(world, caller, account);
      if (method === 'getAccount') return request({ service: LedgerService, method }, wire, caller, { accountId: account.v }, base, base.length === 0);
      const paging = tagsOf(size, token);
      const times = tagsOf(min, max);
      // Timestamps far away are answered (an empty page) or refused; both are precise.
      const tags = [...base, ...paging, ...times];
      return request(
        { service: LedgerService, method },
        wire,
        caller,
        { accountId: account.v, pageSize: size.v, pageToken: token.v, createdMin: min.v, createdMax: max.v, reversed },
        tags,
        base.length === 0 && paging.length === 0,
      );
    });
}

function fundAccount(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  // Deposits the fuzzer may send must all be refused: zero, the wrong currency, nobody's or a
  // malformed account, a caller that is not an operator. (Past 2^64-1 is fuzz.ts's own final check:
  // accepted, it would make the account unreadable and every later check fail with it.)
  const funded = [world.merchants.A.account, world.replayer.account, ...world.targets.map((t) => t.account)];
  const refused = fc.oneof(
    accountIdField(world)
      .filter((a) => a.t.length > 0)
      .map((a) => ({ account: a.v, amount: 1_00n, tags: [...a.t] })),
    fc.constantFrom(...funded).map((account) => ({ account, amount: 0n, tags: ['invalid'] as Tag[] })),
  );
  return fc
    .tuple(wireField, callerField(['admin'], ['A', 'T0', 'zero']), refused, keyField(['fz-pool-10']), currencyField)
    .map(([wire, caller, deposit, key, currency]) => {
      const wrong = kindOf(caller) === 'admin' ? [] : wrongKindTags;
      const curTags = currency.v === 'USD' ? [] : [...currency.t, 'precondition' as Tag];
      const tags: Tag[] = [...deposit.tags, ...tagsOf(key), ...curTags, ...wrong];
      return request(
        { service: LedgerService, method: 'fundAccount' },
        wire,
        caller,
        { idempotencyKey: key.v, accountId: deposit.account, amount: deposit.amount, currency: currency.v, reference: 'fuzz' },
        tags,
        false,
      );
    });
}

function checkBalanced(): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(wireField, callerField(['admin'], ['A', 'T2']), fc.array(fc.oneof(fc.constantFrom('USD', 'EUR', ''), fc.string({ maxLength: 5 })), { maxLength: 3 }))
    .map(([wire, caller, currencies]) => {
      const tags = kindOf(caller) === 'admin' ? [] : wrongKindTags;
      return request({ service: LedgerService, method: 'checkBalanced' }, wire, caller, { currencies }, ['invalid', ...tags], tags.length === 0);
    });
}

function lineStatement(): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(wireField, callerField(['admin', 'T0'], ['A']), fc.oneof(hex32, malformedId), timestampField, pageSizeField)
    .map(([wire, caller, line, at, size]) =>
      request(
        { service: LedgerService, method: 'getLineStatement' },
        wire,
        caller,
        { lineId: line, periodAt: at.v, pageSize: size.v },
        ['unimplemented', 'invalid', 'notFound', 'denied', 'precondition'],
        false,
      ),
    );
}

/** Every RPC of the four services, weighted towards the money and code paths. */
export function fuzzRequests(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const w = (weight: number, arbitrary: fc.Arbitrary<FuzzRequest>) => ({ weight, arbitrary });
  return fc.oneof(
    w(8, createPayment(world)),
    w(2, batchCreate(world)),
    w(3, merchantPaymentRead(world, 'getPayment')),
    w(1, merchantPaymentRead(world, 'watchPayments')),
    w(3, refuse(world, PaymentService, 'cancelPayment', ['A', 'B'], ['admin', 'zero'])),
    w(2, listPayments(world)),
    w(6, confirmAsMerchant(world)),
    w(2, batchConfirm(world)),
    w(8, confirmPayment(world)),
    w(3, refuse(world, PayerService, 'declinePayment', payerCallers, ['A', 'admin'])),
    w(2, payerRead(world, 'listPendingPayments')),
    w(1, payerRead(world, 'watchPendingPayments')),
    w(3, getChallenge(world)),
    w(2, enrollPayer(world)),
    w(2, enrollMerchant()),
    w(2, getPayer(world)),
    ...enrollmentWrites(world).map((a) => w(1, a)),
    w(2, ledgerRead(world, 'getAccount')),
    w(2, ledgerRead(world, 'listAccountTransfers')),
    w(2, ledgerRead(world, 'getAccountBalances')),
    w(3, fundAccount(world)),
    w(1, checkBalanced()),
    w(1, lineStatement()),
  );
}
