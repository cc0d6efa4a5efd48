import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { Code } from '@connectrpc/connect';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { base32Decode } from '../../authz/codes/secret.js';
import { watchersPerCallerMax } from '../../authz/events.js';
import { defaultPaymentLimits } from '../../authz/steps/context.js';
import { lockoutPolicyDefault } from '../../authz/store/port.js';
import { Channel, DeclineReason, Factor, type Payment, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import type { Scenario, ScenarioOptions } from './scenario.js';
import { enrollMerchants, type MerchantActor, phoneOf } from './support/actors.js';
import { CallStats, type Clients, type Outcome, once, reasonOf } from './support/clients.js';
import { startWorld, type World } from './support/world.js';

/**
 * Tenant safety (issue 15, findings 1–5) against a real deployment (`countersign serve` on Redis
 * with the embedded ledger, the telco bridge, the simulated SMSC): merchants A and B (C and D for
 * the lookup checks) share payers, and B (or its stolen key) attacks them. Each check is a
 * violation when B harms a payer elsewhere:
 *
 * 1. lockout: B's wrong codes for payer P lock P at B only; P's right code at A succeeds; P's own
 *    wrong answers (payer token) still lock P everywhere;
 * 2. unconsented holds: B's unconfirmed payment for P's whole balance holds nothing, A's payment
 *    for P goes through, B's is declined for funds when answered; B's challenged creates per
 *    payer are bounded (`challengesPerPayerMerchantMax` per `challengeRateWindowMs`), A's are not;
 * 3. enumeration: a create by an unknown phone is answered like one by an enrolled payer's, and
 *    phone lookups are limited per merchant (`phoneLookupsPerMerchantMax`);
 * 4. watchers: B's streams past `watchersPerCallerMax` are refused while A and P still watch;
 * 5. the SMS factor: a code for SMS_OTP on channel APP goes by SMS and never to the terminal.
 */

/** Bounds of the policy under test (README "Tenant safety"): the server's defaults, which `serve` runs with. */
export const tenantBounds = {
  /** LockoutPolicy.failuresMax: consecutive failures that lock a guard. */
  lockoutFailuresMax: lockoutPolicyDefault.failuresMax,
  /** Challenged creates one merchant may make for one payer per window. */
  challengesPerPayerMerchantMax: defaultPaymentLimits.challengesPerPayerMerchantMax,
  challengeRateWindowMs: defaultPaymentLimits.challengeRateWindowMs,
  phoneLookupsPerMerchantMax: defaultPaymentLimits.phoneLookupsPerMerchantMax,
  watchersPerCallerMax,
} as const;
/** How long the handset waits for an SMS, milliseconds. */
const smsWaitMs = 15_000;
/** A watch stream's own deadline, milliseconds (longer than the check). */
const watchDeadlineMs = 60_000;
/** Phone lookups in flight at once in the lookup-limit check. */
const lookupConcurrency = 16;
/** The lookup-limit check stops here even if it has not reached the limit, milliseconds. */
const lookupCheckMsMax = 60_000;
/** A wrong second code (never the right one: the right one is checked). */
const wrongCodeOf = (right: string) => (right === '12345678' ? '87654321' : '12345678');

interface TenantPayer {
  id: string;
  phone: string;
  secret: Buffer;
  account: string;
  api: Clients;
}

interface Ctx {
  world: World;
  options: ScenarioOptions;
  stats: CallStats;
  counts: Record<string, number>;
  violations: string[];
  A: MerchantActor;
  B: MerchantActor;
  C: MerchantActor;
  D: MerchantActor;
  nextPayer: number;
  salt: number;
}

// The random part starts with a letter: a tag ending in digits, a hyphen and twelve hex digits that
// happen to be decimal would read as a 13-digit card number to the secret scan (a CI run found
// 'rate-b-8-602667222967' in Redis's append-only file, passing Luhn).
const key = (tag: string) => `tenant-${tag}-r${randomBytes(6).toString('hex')}`;
const statusOf = (o: Outcome<unknown>) =>
  o.ok ? 'OK' : `${Code[o.error.code]}${reasonOf(o.error) === undefined ? '' : ` ${reasonOf(o.error)}`} "${o.error.rawMessage.slice(0, 100)}"`;
const isRefusal = (o: Outcome<unknown>, code: Code, reason: string) => !o.ok && o.error.code === code && reasonOf(o.error) === reason;

export const runTenant: Scenario = async (options) => {
  const startedAt = Date.now();
  const world = await startWorld({ name: 'tenant', workDir: options.workDir, logDir: options.logDir, secrets: options.secrets });
  const counts: Record<string, number> = {};
  const violations: string[] = [];
  try {
    const stats = new CallStats();
    const [A, B, C, D] = await enrollMerchants(world, 4, options.secrets, stats);
    const ctx: Ctx = { world, options, stats, counts, violations, A: A!, B: B!, C: C!, D: D!, nextPayer: 0, salt: randomBytes(3).readUIntBE(0, 3) };
    const checks: [string, (ctx: Ctx) => Promise<void>][] = [
      ['lockout', checkLockout],
      ['unconsented-holds', checkUnconsentedHolds],
      ['challenge-rate', checkChallengeRate],
      ['enumeration', checkEnumeration],
      ['phone-lookup-limit', checkPhoneLookupLimit],
      ['watchers', checkWatchers],
      ['sms-factor', checkSmsFactor],
    ];
    for (const [name, run] of checks) await check(ctx, name, run);
  } finally {
    await world.close();
  }
  return { name: 'tenant', counts, violations, durationMs: Date.now() - startedAt };
};

/** Runs one check; a check that throws is a violation of its own, and the next still runs. */
async function check(ctx: Ctx, name: string, run: (ctx: Ctx) => Promise<void>): Promise<void> {
  const startedAt = Date.now();
  const before = ctx.violations.length;
  ctx.options.progress?.(`check ${name}`);
  try {
    await run(ctx);
  } catch (error) {
    ctx.violations.push(`${name}: could not run: ${error instanceof Error ? error.message : String(error)}`);
  }
  const failed = ctx.violations.length - before;
  ctx.counts.checks = (ctx.counts.checks ?? 0) + 1;
  ctx.counts[`${name}_violations`] = failed;
  ctx.counts[`${name}_ms`] = Date.now() - startedAt;
  ctx.options.progress?.(`check ${name}: ${failed === 0 ? 'passed' : `${failed} violations`}`);
}

// ------------------------------------------------------------------------------ actors, payments

/**
 * Enrolls and funds one payer. `oneFactor` up to 10 000.00; `policy: 'default'` enrolls without a
 * policy (every payment needs the second code). Every amount from 1 minor unit needs a factor.
 */
async function newPayer(ctx: Ctx, funding: bigint, policy: Factor | 'default'): Promise<TenantPayer> {
  const i = ctx.nextPayer++;
  const phone = phoneOf(9_000 + i, ctx.salt);
  const policies = policy === 'default' ? [] : [{ currency: 'USD', noFactorBelow: 1n, oneFactorUpTo: 10_000_00n, oneFactor: policy, moreFactors: [policy] }];
  const r = await ctx.world.admin.enrollment.enrollPayer({
    idempotencyKey: key(`payer-${i}`),
    phone,
    displayName: `Tenant payer ${i}`,
    currencies: ['USD'],
    policies,
  });
  ctx.options.secrets.add(r.payerToken).add(r.verificationSecretBase32);
  const account = r.payer!.prepaidAccountIds.USD!;
  if (funding > 0n)
    await ctx.world.admin.ledger.fundAccount({ idempotencyKey: key(`fund-${i}`), accountId: account, amount: funding, currency: 'USD', reference: 'tenant' });
  return { id: r.payer!.id, phone, secret: base32Decode(r.verificationSecretBase32), account, api: ctx.world.clients(r.payerToken) };
}

function create(merchant: MerchantActor, payer: TenantPayer, amount: bigint, tag: string): Promise<Outcome<Payment>> {
  return once(
    async () =>
      (
        await merchant.api.payments.createPayment({
          idempotencyKey: key(tag),
          payer: { case: 'payerId', value: payer.id },
          amount,
          currency: 'USD',
          description: tag,
          channel: Channel.APP,
        })
      ).payment!,
  );
}

/** A payment the merchant creates, which must be CHALLENGED (throws otherwise: the checks build on it). */
async function challenged(ctx: Ctx, merchant: MerchantActor, payer: TenantPayer, amount: bigint, tag: string): Promise<Payment> {
  const o = await create(merchant, payer, amount, tag);
  if (!o.ok || o.value.state !== PaymentState.CHALLENGED)
    throw new Error(`${tag}: the create was answered ${o.ok ? PaymentState[o.value.state] : statusOf(o)}, expected CHALLENGED`);
  ctx.counts.payments = (ctx.counts.payments ?? 0) + 1;
  return o.value;
}

/** The second code the payer's terminal computes (first code from GetChallenge), registered as a secret. */
async function rightCode(ctx: Ctx, payer: TenantPayer, payment: Payment): Promise<string> {
  const { firstCode } = await payer.api.payer.getChallenge({ paymentId: payment.id });
  if (firstCode === '') throw new Error(`GetChallenge gave no first code for ${payment.id}`);
  const code = deriveSecondCode(payer.secret, { firstCode, amount: payment.amount, currency: payment.currency, payeeAccountId: payment.payeeAccountId });
  ctx.options.secrets.add(firstCode).add(code);
  return code;
}

const asMerchant = (merchant: MerchantActor, paymentId: string, secondCode: string) =>
  once(async () => (await merchant.api.payments.confirmPaymentAsMerchant({ idempotencyKey: key('confirm'), paymentId, secondCode })).payment!);
const asPayer = (payer: TenantPayer, paymentId: string, secondCode: string) =>
  once(
    async () =>
      (await payer.api.payer.confirmPayment({ idempotencyKey: key('confirm'), paymentId, proof: { case: 'secondCode', value: secondCode } })).payment!,
  );

/** Wrong codes spread over payments of 1 cent (at most 3 per payment: a challenge's own attempts stay open). */
async function wrongCodes(ctx: Ctx, merchant: MerchantActor, payer: TenantPayer, count: number, via: 'merchant' | 'payer', tag: string): Promise<string[]> {
  const answers: string[] = [];
  for (let sent = 0; sent < count; ) {
    const p = await challenged(ctx, merchant, payer, 1n, `${tag}-wrong`);
    const wrong = wrongCodeOf(await rightCode(ctx, payer, p));
    for (let i = 0; i < 3 && sent < count; i++, sent++) {
      const o = via === 'merchant' ? await asMerchant(merchant, p.id, wrong) : await asPayer(payer, p.id, wrong);
      answers.push(o.ok ? `OK ${PaymentState[o.value.state]}` : Code[o.error.code]);
    }
  }
  ctx.counts.wrongCodes = (ctx.counts.wrongCodes ?? 0) + count;
  return answers;
}

async function balances(ctx: Ctx, payer: TenantPayer): Promise<{ posted: bigint; pending: bigint }> {
  const a = (await ctx.world.admin.ledger.getAccount({ accountId: payer.account })).account!;
  return { posted: a.creditsPosted - a.debitsPosted, pending: a.debitsPending };
}

// ------------------------------------------------------------------------------ 1: lockout

async function checkLockout(ctx: Ctx): Promise<void> {
  const { A, B, violations } = ctx;
  const failures = tenantBounds.lockoutFailuresMax + 1;
  // B's wrong codes for P, through ConfirmPaymentAsMerchant.
  const p = await newPayer(ctx, 100_00n, Factor.SECOND_CODE);
  const answersB = await wrongCodes(ctx, B, p, failures, 'merchant', 'lockout-b');
  if (answersB.slice(0, tenantBounds.lockoutFailuresMax).some((a) => a !== 'PermissionDenied'))
    violations.push(`lockout: B's first ${tenantBounds.lockoutFailuresMax} wrong codes were answered ${answersB.join(', ')}, expected PERMISSION_DENIED each`);
  const atB = await challenged(ctx, B, p, 1n, 'lockout-b-after');
  const lockedAtB = await asMerchant(B, atB.id, await rightCode(ctx, p, atB));
  if (!isRefusal(lockedAtB, Code.ResourceExhausted, 'LOCKED_OUT'))
    violations.push(
      `lockout: after ${failures} wrong codes from merchant B, B's confirm with the right code for the payer was answered ${statusOf(lockedAtB)}, expected RESOURCE_EXHAUSTED LOCKED_OUT (B's guard for the payer)`,
    );
  const atA = await challenged(ctx, A, p, 20_00n, 'lockout-a');
  const okAtA = await asMerchant(A, atA.id, await rightCode(ctx, p, atA));
  if (!okAtA.ok || okAtA.value.state !== PaymentState.SUCCEEDED)
    violations.push(
      `lockout: after merchant B's ${failures} wrong codes for payer P, P's right code at merchant A was answered ${okAtA.ok ? PaymentState[okAtA.value.state] : statusOf(okAtA)}, expected SUCCEEDED (finding 1: cross-merchant lockout)`,
    );
  const onTerminal = await challenged(ctx, A, p, 30_00n, 'lockout-terminal');
  const okTerminal = await asPayer(p, onTerminal.id, await rightCode(ctx, p, onTerminal));
  if (!okTerminal.ok || okTerminal.value.state !== PaymentState.SUCCEEDED)
    violations.push(
      `lockout: after merchant B's wrong codes, P's right code on its own terminal was answered ${okTerminal.ok ? PaymentState[okTerminal.value.state] : statusOf(okTerminal)}, expected SUCCEEDED`,
    );
  // The payer's own wrong answers (payer token) lock the payer everywhere: at A and at B.
  const q = await newPayer(ctx, 100_00n, Factor.SECOND_CODE);
  const answersQ = await wrongCodes(ctx, A, q, failures, 'payer', 'lockout-own');
  for (const [name, merchant] of [
    ['A', A],
    ['B', B],
  ] as const) {
    const after = await challenged(ctx, merchant, q, 1n, `lockout-own-${name}`);
    const o = await asMerchant(merchant, after.id, await rightCode(ctx, q, after));
    if (!isRefusal(o, Code.ResourceExhausted, 'LOCKED_OUT'))
      violations.push(
        `lockout: after the payer's own ${failures} wrong answers through its token (${answersQ.join(', ')}), merchant ${name}'s confirm with the right code was answered ${statusOf(o)}, expected RESOURCE_EXHAUSTED LOCKED_OUT (the payer-wide guard)`,
      );
  }
  const viaTerminal = await challenged(ctx, A, q, 1n, 'lockout-own-terminal');
  const t = await asPayer(q, viaTerminal.id, await rightCode(ctx, q, viaTerminal));
  if (!isRefusal(t, Code.ResourceExhausted, 'LOCKED_OUT'))
    violations.push(
      `lockout: after the payer's own wrong answers, its own terminal's right code was answered ${statusOf(t)}, expected RESOURCE_EXHAUSTED LOCKED_OUT`,
    );
}

// ------------------------------------------------------------------------------ 2: unconsented holds

async function checkUnconsentedHolds(ctx: Ctx): Promise<void> {
  const { A, B, violations } = ctx;
  const funding = 50_00n;
  const amountA = 20_00n;
  const p = await newPayer(ctx, funding, Factor.SECOND_CODE);
  const atB = await challenged(ctx, B, p, funding, 'hold-b');
  const heldByB = await balances(ctx, p);
  if (heldByB.pending !== 0n)
    violations.push(
      `unconsented holds: merchant B's CHALLENGED payment of ${funding} (not consented to) holds ${heldByB.pending} of the payer's money, expected 0`,
    );
  const createA = await create(A, p, amountA, 'hold-a');
  if (!createA.ok || createA.value.state !== PaymentState.CHALLENGED) {
    violations.push(
      `unconsented holds: while merchant B's unconfirmed payment for the payer's whole balance is open, merchant A's create for the payer was answered ${createA.ok ? PaymentState[createA.value.state] : statusOf(createA)}, expected CHALLENGED (finding 2: funds tied up by another merchant)`,
    );
    return;
  }
  ctx.counts.payments = (ctx.counts.payments ?? 0) + 1;
  const confirmA = await asPayer(p, createA.value.id, await rightCode(ctx, p, createA.value));
  if (!confirmA.ok || confirmA.value.state !== PaymentState.SUCCEEDED)
    violations.push(
      `unconsented holds: the payer's right code for merchant A's payment was answered ${confirmA.ok ? PaymentState[confirmA.value.state] : statusOf(confirmA)}, expected SUCCEEDED`,
    );
  const afterA = await balances(ctx, p);
  if (afterA.posted !== funding - amountA)
    violations.push(`unconsented holds: the payer holds ${afterA.posted} after A's payment of ${amountA}, expected ${funding - amountA}`);
  const stillB = (await B.api.payments.getPayment({ paymentId: atB.id })).payment!;
  if (stillB.state !== PaymentState.CHALLENGED)
    violations.push(`unconsented holds: merchant B's unanswered payment is ${PaymentState[stillB.state]} after A's succeeded, expected still CHALLENGED`);
  // Answered now, B's payment finds the funds gone: declined for funds, nothing moves.
  const answerB = await asPayer(p, atB.id, await rightCode(ctx, p, atB));
  const finalB = (await B.api.payments.getPayment({ paymentId: atB.id })).payment!;
  const refusedForFunds = answerB.ok
    ? answerB.value.state === PaymentState.DECLINED
    : answerB.error.code === Code.FailedPrecondition && reasonOf(answerB.error) === 'INSUFFICIENT_FUNDS';
  if (!refusedForFunds || finalB.state !== PaymentState.DECLINED || finalB.declineReason !== DeclineReason.INSUFFICIENT_FUNDS) {
    violations.push(
      `unconsented holds: the payer's right code for B's payment of its former whole balance was answered ${answerB.ok ? `OK ${PaymentState[answerB.value.state]}` : statusOf(answerB)} and the payment is ${PaymentState[finalB.state]} (${DeclineReason[finalB.declineReason]}), expected DECLINED with decline reason INSUFFICIENT_FUNDS`,
    );
  }
  const end = await balances(ctx, p);
  if (end.posted !== funding - amountA || end.pending !== 0n)
    violations.push(
      `unconsented holds: after B's payment was answered the payer holds ${end.posted} with ${end.pending} reserved, expected ${funding - amountA} and 0`,
    );
}

/** B's challenged creates for one payer stop at the bound (CHALLENGE_RATE); A's still go through. */
async function checkChallengeRate(ctx: Ctx): Promise<void> {
  const { A, B, violations } = ctx;
  const max = tenantBounds.challengesPerPayerMerchantMax;
  const p = await newPayer(ctx, 10_00n, Factor.SECOND_CODE);
  for (let i = 0; i < max; i++) {
    const o = await create(B, p, 1n, `rate-b-${i}`);
    if (!o.ok || o.value.state !== PaymentState.CHALLENGED) {
      violations.push(
        `challenge rate: merchant B's challenged create #${i + 1} of ${max} allowed per ${tenantBounds.challengeRateWindowMs / 60_000} min was answered ${o.ok ? PaymentState[o.value.state] : statusOf(o)}, expected CHALLENGED`,
      );
      return;
    }
  }
  ctx.counts.payments = (ctx.counts.payments ?? 0) + max;
  const over = await create(B, p, 1n, 'rate-b-over');
  if (!isRefusal(over, Code.ResourceExhausted, 'CHALLENGE_RATE'))
    violations.push(
      `challenge rate: merchant B's challenged create #${max + 1} for one payer within ${tenantBounds.challengeRateWindowMs / 60_000} min was answered ${over.ok ? `OK ${PaymentState[over.value.state]}` : statusOf(over)}, expected RESOURCE_EXHAUSTED CHALLENGE_RATE (finding 2: hundreds of open challenges on one payer)`,
    );
  const atA = await create(A, p, 1n, 'rate-a');
  if (!atA.ok || atA.value.state !== PaymentState.CHALLENGED)
    violations.push(
      `challenge rate: after merchant B reached its bound for the payer, merchant A's challenged create was answered ${atA.ok ? PaymentState[atA.value.state] : statusOf(atA)}, expected CHALLENGED`,
    );
  ctx.counts.challengeRateCreates = max + 2;
}

// ------------------------------------------------------------------------------ 3: enumeration

/** The answer's shape: every field of the Payment, ids and times reduced to what they reveal. */
function shapeOf(p: Payment): Record<string, unknown> {
  const lifetimeS = Number((p.expiresAt?.seconds ?? 0n) - (p.createdAt?.seconds ?? 0n));
  const idShape = (s: string) => s.replace(/[0-9a-f]/g, 'x');
  return {
    idShape: idShape(p.id),
    merchantId: p.merchantId,
    payerIdShape: idShape(p.payerId),
    payeeAccountId: p.payeeAccountId,
    amount: p.amount,
    currency: p.currency,
    description: p.description,
    channel: p.channel,
    requiredFactors: p.requiredFactors,
    satisfiedFactors: p.satisfiedFactors,
    attemptsLeft: p.attemptsLeft,
    state: p.state,
    declineReason: p.declineReason,
    declineDetail: p.declineDetail,
    createdAt: p.createdAt !== undefined,
    updatedAt: p.updatedAt !== undefined,
    lifetimeS,
    billableLineId: p.billableLineId,
    bankAuthorizationCode: p.bankAuthorizationCode,
  };
}

async function checkEnumeration(ctx: Ctx): Promise<void> {
  const { C, violations } = ctx;
  const enrolled = await newPayer(ctx, 100_00n, 'default');
  const unknownPhone = phoneOf(99_999, ctx.salt + 1);
  const byPhone = (phone: string) =>
    once(
      async () =>
        (
          await C.api.payments.createPayment({
            idempotencyKey: key('by-phone'),
            payer: { case: 'payerPhone', value: phone },
            amount: 20_00n,
            currency: 'USD',
            description: 'by phone',
            channel: Channel.APP,
          })
        ).payment!,
    );
  const [known, unknown] = [await byPhone(enrolled.phone), await byPhone(unknownPhone)];
  ctx.counts.phoneLookups = 2;
  if (!known.ok || known.value.state !== PaymentState.CHALLENGED || known.value.requiredFactors.join() !== String(Factor.SECOND_CODE)) {
    violations.push(
      `enumeration: a create by an enrolled payer's phone (default policy) was answered ${known.ok ? `${PaymentState[known.value.state]} [${known.value.requiredFactors.map((f) => Factor[f]).join()}]` : statusOf(known)}, expected CHALLENGED [SECOND_CODE]`,
    );
    return;
  }
  if (!unknown.ok) {
    violations.push(
      `enumeration: a create by a phone no payer is enrolled with was answered ${statusOf(unknown)}, unlike an enrolled payer's (OK, CHALLENGED): finding 3, payer enumeration`,
    );
    return;
  }
  const [a, b] = [shapeOf(known.value), shapeOf(unknown.value)];
  const differing = Object.keys(a).filter(
    (k) =>
      JSON.stringify(a[k], (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) !==
      JSON.stringify(b[k], (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
  );
  ctx.counts.enumerationFieldsCompared = Object.keys(a).length;
  if (differing.length > 0)
    violations.push(
      `enumeration: the answer for an unknown phone differs from an enrolled payer's in ${differing.map((k) => `${k} (${String(b[k])} vs ${String(a[k])})`).join(', ')}`,
    );
  if (unknown.value.payerId === '' || unknown.value.payerId === known.value.payerId)
    violations.push(`enumeration: the unknown phone's payment names payer id '${unknown.value.payerId}', expected one of its own`);
}

/**
 * The per-merchant bound on phone lookups. `serve` has no setting to lower it, so merchant D
 * makes exactly `phoneLookupsPerMerchantMax` lookups (unknown phones: nothing reserved or sent),
 * and the next is refused (PHONE_LOOKUP_RATE), while merchant A's lookup still works.
 */
async function checkPhoneLookupLimit(ctx: Ctx): Promise<void> {
  const { A, D, violations } = ctx;
  const max = tenantBounds.phoneLookupsPerMerchantMax;
  const stopAt = Date.now() + lookupCheckMsMax;
  const lookup = (merchant: MerchantActor, i: number) =>
    once(
      async () =>
        (
          await merchant.api.payments.createPayment({
            idempotencyKey: key('lookup'),
            payer: { case: 'payerPhone', value: phoneOf(200_000 + i, ctx.salt + 2) },
            amount: 5_00n,
            currency: 'USD',
            description: 'lookup',
            channel: Channel.APP,
          })
        ).payment!,
    );
  let next = 0;
  const refused: string[] = [];
  const worker = async () => {
    while (next < max && Date.now() < stopAt) {
      const o = await lookup(D, next++);
      if (!o.ok && refused.length < 3) refused.push(statusOf(o));
    }
  };
  await Promise.all(Array.from({ length: lookupConcurrency }, worker));
  ctx.counts.phoneLookups = (ctx.counts.phoneLookups ?? 0) + next;
  if (next < max) {
    violations.push(`phone lookups: only ${next} of the ${max} lookups the bound allows ran within ${lookupCheckMsMax / 1000} s; the bound was not reached`);
    return;
  }
  if (refused.length > 0) violations.push(`phone lookups: lookups within the bound of ${max} were refused: ${refused.join('; ')}`);
  const over = await lookup(D, max);
  ctx.counts.phoneLookups += 1;
  if (!isRefusal(over, Code.ResourceExhausted, 'PHONE_LOOKUP_RATE'))
    violations.push(
      `phone lookups: merchant D's lookup #${max + 1} within the window was answered ${over.ok ? `OK ${PaymentState[over.value.state]}` : statusOf(over)}, expected RESOURCE_EXHAUSTED PHONE_LOOKUP_RATE`,
    );
  const atA = await lookup(A, max + 1);
  ctx.counts.phoneLookups += 1;
  if (!atA.ok) violations.push(`phone lookups: after merchant D reached its bound, merchant A's lookup was answered ${statusOf(atA)}, expected OK`);
}

// ------------------------------------------------------------------------------ 4: watchers

/** Opens a stream and reads its first message (the snapshot): the server holds the subscription. */
async function firstOf(stream: AsyncIterable<{ payment?: Payment }>): Promise<Outcome<string | undefined>> {
  return once(async () => (await stream[Symbol.asyncIterator]().next()).value?.payment?.id);
}

async function checkWatchers(ctx: Ctx): Promise<void> {
  const { A, B, violations } = ctx;
  const max = tenantBounds.watchersPerCallerMax;
  const p = await newPayer(ctx, 10_00n, Factor.SECOND_CODE);
  const [atB, atA] = [await challenged(ctx, B, p, 1n, 'watch-b'), await challenged(ctx, A, p, 1n, 'watch-a')];
  const controller = new AbortController();
  setMaxListeners(4 * max, controller.signal);
  const options = { signal: controller.signal, timeoutMs: watchDeadlineMs };
  try {
    for (let i = 0; i < max; i++) {
      const o = await firstOf(B.api.payments.watchPayments({ paymentId: atB.id }, options));
      if (!o.ok || o.value !== atB.id) {
        violations.push(
          `watchers: merchant B's watch stream #${i + 1} of ${max} was answered ${o.ok ? `with ${o.value}` : statusOf(o)}, expected its payment's snapshot`,
        );
        return;
      }
    }
    const over = await firstOf(B.api.payments.watchPayments({ paymentId: atB.id }, options));
    if (over.ok || over.error.code !== Code.ResourceExhausted)
      violations.push(`watchers: merchant B's watch stream #${max + 1} was answered ${over.ok ? 'OK' : statusOf(over)}, expected RESOURCE_EXHAUSTED`);
    const forA = await firstOf(A.api.payments.watchPayments({ paymentId: atA.id }, options));
    if (!forA.ok || forA.value !== atA.id)
      violations.push(
        `watchers: with merchant B at its cap, merchant A's watch stream was answered ${forA.ok ? `with ${forA.value}` : statusOf(forA)}, expected its payment's snapshot (finding 4)`,
      );
    const forP = await firstOf(p.api.payer.watchPendingPayments({}, options));
    if (!forP.ok || forP.value === undefined)
      violations.push(
        `watchers: with merchant B at its cap, the payer's WatchPendingPayments was answered ${forP.ok ? 'without a snapshot' : statusOf(forP)}, expected its pending payments (finding 4)`,
      );
    ctx.counts.watchStreams = max + 3;
  } finally {
    controller.abort();
  }
}

// ------------------------------------------------------------------------------ 5: the SMS factor

async function checkSmsFactor(ctx: Ctx): Promise<void> {
  const { A, violations } = ctx;
  const p = await newPayer(ctx, 100_00n, Factor.SMS_OTP);
  const handset = ctx.world.handset(p.phone);
  const payment = await challenged(ctx, A, p, 5_00n, 'sms-factor');
  if (payment.requiredFactors.join() !== String(Factor.SMS_OTP))
    violations.push(`sms factor: the APP payment requires [${payment.requiredFactors.map((f) => Factor[f]).join()}], expected [SMS_OTP]`);
  const sms = await handset.waitForSms(smsWaitMs).catch(() => undefined);
  const code = sms === undefined ? undefined : /\b(\d{8})\b/.exec(sms.text)?.[1];
  if (code === undefined)
    violations.push(
      `sms factor: no SMS with a code reached the payer's phone within ${smsWaitMs / 1000} s for a payment requiring SMS_OTP created with channel APP (finding 5)`,
    );
  else ctx.options.secrets.add(code);
  const challenge = await once(() => p.api.payer.getChallenge({ paymentId: payment.id }));
  if (!challenge.ok) violations.push(`sms factor: GetChallenge with the payer token was answered ${statusOf(challenge)}`);
  else if (challenge.value.firstCode !== '') {
    ctx.options.secrets.add(challenge.value.firstCode);
    violations.push(
      'sms factor: GetChallenge with the payer token returned the code of a payment requiring SMS_OTP (finding 5: the phone factor without the phone)',
    );
  }
  if (code !== undefined) {
    const done = await once(
      async () =>
        (await p.api.payer.confirmPayment({ idempotencyKey: key('sms-otp'), paymentId: payment.id, proof: { case: 'smsOtp', value: code } })).payment!,
    );
    if (!done.ok || done.value.state !== PaymentState.SUCCEEDED)
      violations.push(`sms factor: the code from the SMS was answered ${done.ok ? PaymentState[done.value.state] : statusOf(done)}, expected SUCCEEDED`);
  }
  ctx.counts.smsSeen = code === undefined ? 0 : 1;
}
