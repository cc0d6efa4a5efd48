import { randomBytes, randomInt } from 'node:crypto';
import { Code } from '@connectrpc/connect';
import type { Redis } from 'ioredis';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { base32Decode } from '../../authz/codes/secret.js';
import { DomainError } from '../../authz/errors.js';
import { storeKeyPrefixDefault, storeKeysOf } from '../../authz/store/redis/keys.js';
import { Channel, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { type EnrollMerchantResponse, EnrollmentService, type EnrollPayerResponse } from '../../gen/countersign/v1/enrollment_pb.js';
import { type GetAccountResponse, LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { type BatchConfirmPaymentsResponse, type BatchCreatePaymentsResponse, PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import type { ReliabilityEnv } from './security-env.js';
import { codeLabel, type Outcome, statusName } from './security-rpc.js';

/**
 * Brute force on second codes (issue 7): many payers, each with several CHALLENGED payments per
 * round, every challenge sprayed with wrong 8-digit guesses (never the right one, so any
 * approval is the product's fault) with bounded concurrency. A quarter of the payers are attacked
 * over real RPCs — grpc-js and Connect ConfirmPayment with the payer's token, and merchant
 * BatchConfirmPayments — the rest through the in-process `app.payments.confirm` (the same
 * service object the RPCs reach, minus transport, for throughput on 2 cores). Between rounds
 * each payer's lockout is fast-forwarded (its guard's locked-until time set to now) so the next lockout must
 * last longer. A payer's failures count per scope (README "Tenant safety"): the payer-token and
 * in-process payers' in the payer-wide guard, the batch payers' (the merchant's calls) in the guard
 * of (payer, merchant) — each payer is attacked through one scope only. Checks: at most 5 verified
 * wrong answers per challenge and per payer per scope per lockout, lockouts with a growing
 * retry_after_ms, zero approvals, no money moved.
 */

export interface BruteForcePlan {
  payers: number;
  paymentsPerPayer: number;
  rounds: number;
  guessesPerChallenge: number;
  concurrency: number;
}

export const bruteForcePlans: Record<'short' | 'soak', BruteForcePlan> = {
  // Short: (240 × 4 + 60 × 1) challenges × 5 rounds, up to 20 guesses each; a challenge gets no
  // more guesses once it answered "closed" closedAnswersMax times (≈ 20 000 guesses, ≈ 14 000 live).
  short: { payers: 300, paymentsPerPayer: 4, rounds: 5, guessesPerChallenge: 20, concurrency: 48 },
  // Soak: (480 × 5 + 120 × 1) × 7 rounds, up to 25 guesses each; the 7th lockout reaches the 1 h cap.
  soak: { payers: 600, paymentsPerPayer: 5, rounds: 7, guessesPerChallenge: 25, concurrency: 64 },
};

/** The product's bounds (DESIGN.md §6) the checks hold it to. */
const attemptsMax = 5;
const failuresMax = 5;
const lockoutMsMax = 3_600_000;
const amount = 5_00n;
const createBatchMax = 500;
const confirmBatchMax = 500;
/**
 * A challenge that answered FAILED_PRECONDITION (closed: declined after its attempts, or its payer
 * locked out) this many times gets no more guesses: further ones would only prove again that a
 * closed payment stays closed, and they used to be 88 % of all guesses.
 */
const closedAnswersMax = 2;

type Path = 'grpc-js' | 'connect' | 'batch' | 'in-process';
type Verdict = 'denied' | 'exhausted' | 'locked' | 'closed' | 'approved' | 'other';

interface Victim {
  index: number;
  /** Payments per round: most payers have several (the payer lockout stops the attack first), every fifth one (its single challenge exhausts its attempts first). */
  payments: number;
  id: string;
  token: string;
  account: string;
  secret: Buffer;
  path: Path;
}

interface Challenge {
  id: string;
  victim: Victim;
  secondCode: string;
  verified: number;
  /** FAILED_PRECONDITION answers so far (see closedAnswersMax). */
  closed: number;
}

interface Stats {
  guesses: number;
  byVerdict: Record<Verdict, number>;
  byPath: Record<Path, number>;
  /** Per payer, per round: the largest retry_after_ms seen. */
  retryMax: Map<string, number[]>;
  others: string[];
}

const paymentsOf = (index: number, plan: BruteForcePlan): number => (index % 5 === 4 ? 1 : plan.paymentsPerPayer);
const pathOf = (index: number): Path => (index % 10 === 0 ? 'grpc-js' : index % 10 === 1 ? 'connect' : index % 10 === 2 ? 'batch' : 'in-process');

function must<T>(what: string, o: Outcome): T {
  if (!o.ok) throw new Error(`${what}: ${statusName(o)} ${o.message}`);
  return o.value as T;
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

async function enrollVictims(
  env: ReliabilityEnv,
  plan: BruteForcePlan,
  secrets: Set<string>,
): Promise<{ merchant: { id: string; key: string; account: string }; victims: Victim[] }> {
  const admin = { key: env.adminKey };
  const m = must<EnrollMerchantResponse>(
    'enroll merchant',
    await env.rpc.unary(
      'grpc-js',
      EnrollmentService,
      'enrollMerchant',
      { idempotencyKey: `bf-${randomBytes(6).toString('hex')}`, name: 'Brute-forced shop', currencies: ['USD'], feeBasisPoints: 100 },
      admin,
    ),
  );
  secrets.add(m.apiKey);
  const victims: Victim[] = [];
  await pool(
    Array.from({ length: plan.payers }, (_, i) => i),
    16,
    async (index) => {
      const phone = `+1628${String(3_000_000 + index).padStart(7, '0')}`;
      const r = must<EnrollPayerResponse>(
        'enroll payer',
        await env.rpc.unary(
          'grpc-js',
          EnrollmentService,
          'enrollPayer',
          {
            idempotencyKey: `bfp-${index}-${randomBytes(4).toString('hex')}`,
            phone,
            displayName: 'Victim',
            currencies: ['USD'],
            policies: [{ currency: 'USD', noFactorBelow: 1_00n, oneFactorUpTo: 1000_00n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] }],
          },
          admin,
        ),
      );
      const account = r.payer!.prepaidAccountIds.USD!;
      must(
        'fund',
        await env.rpc.unary(
          'grpc-js',
          LedgerService,
          'fundAccount',
          { idempotencyKey: `bff-${r.payer!.id}`, accountId: account, amount: amount * BigInt(paymentsOf(index, plan)), currency: 'USD' },
          admin,
        ),
      );
      secrets.add(r.payerToken);
      secrets.add(r.verificationSecretBase32);
      const secret = base32Decode(r.verificationSecretBase32);
      secrets.add(secret.toString('hex'));
      secrets.add(secret.toString('base64'));
      victims.push({ index, payments: paymentsOf(index, plan), id: r.payer!.id, token: r.payerToken, account, secret, path: pathOf(index) });
    },
  );
  victims.sort((a, b) => a.index - b.index);
  return { merchant: { id: m.merchantId, key: m.apiKey, account: m.payeeAccountIds.USD! }, victims };
}

/** Each victim's payments of the round over BatchCreatePayments; the right codes from the payer's terminal view (in process). */
async function challengeRound(
  env: ReliabilityEnv,
  merchantKey: string,
  victims: Victim[],
  round: number,
  secrets: Set<string>,
  violations: string[],
): Promise<Challenge[]> {
  const items = victims.flatMap((v) =>
    Array.from({ length: v.payments }, (_, k) => ({
      v,
      input: {
        idempotencyKey: `bfc-${round}-${v.id}-${k}`,
        payer: { case: 'payerId', value: v.id },
        amount,
        currency: 'USD',
        description: 'brute force',
        channel: Channel.APP,
      },
    })),
  );
  const challenges: Challenge[] = [];
  for (let i = 0; i < items.length; i += createBatchMax) {
    const chunk = items.slice(i, i + createBatchMax);
    const r = must<BatchCreatePaymentsResponse>(
      'batch create',
      await env.rpc.unary(
        'grpc-js',
        PaymentService,
        'batchCreatePayments',
        { idempotencyKey: `bfb-${round}-${i}`, items: chunk.map((c) => c.input) },
        { key: merchantKey },
      ),
    );
    for (const result of r.results) {
      const v = chunk[result.index]!.v;
      if (result.outcome.case !== 'payment' || result.outcome.value.state !== PaymentState.CHALLENGED) {
        violations.push(
          `brute force: a payment for a funded payer was not CHALLENGED: ${result.outcome.case === 'error' ? `${codeLabel(result.outcome.value.code as Code)} ${result.outcome.value.message}` : PaymentState[result.outcome.value?.state ?? 0]}`,
        );
        continue;
      }
      const payment = (await env.app.payments.record(result.outcome.value.id))!.payment;
      const firstCode = (await env.app.payments.firstCodeForTerminal({ kind: 'payer', payerId: v.id }, payment))!;
      const secondCode = deriveSecondCode(v.secret, { firstCode, amount, currency: 'USD', payeeAccountId: payment.payeeAccountId });
      secrets.add(firstCode);
      secrets.add(secondCode);
      challenges.push({ id: payment.id, victim: v, secondCode, verified: 0, closed: 0 });
    }
  }
  return challenges;
}

/** A wrong 8-digit guess for `c`: random, and never its right code (a hit becomes its neighbour). */
function wrongGuess(c: Challenge): string {
  const guess = String(randomInt(0, 100_000_000)).padStart(8, '0');
  return guess !== c.secondCode ? guess : String((Number(guess) + 1) % 100_000_000).padStart(8, '0');
}

function classify(code: Code | 0, reason: string | undefined, message: string): Verdict {
  if (code === 0) return 'approved';
  if (code === Code.PermissionDenied) return 'denied';
  if (code === Code.FailedPrecondition) return 'closed';
  if (code === Code.ResourceExhausted && (reason === 'LOCKED_OUT' || /locked out/.test(message))) return 'locked';
  if (code === Code.ResourceExhausted && (reason === 'ATTEMPTS_EXHAUSTED' || /attempts exhausted/.test(message))) return 'exhausted';
  return 'other';
}

interface Answer {
  code: Code | 0;
  reason: string | undefined;
  message: string;
  retryAfterMs: number | undefined;
}

const fromOutcome = (o: Outcome): Answer =>
  o.ok
    ? { code: 0, reason: undefined, message: '', retryAfterMs: undefined }
    : {
        code: o.code,
        reason: o.reason,
        message: o.message,
        retryAfterMs: o.meta.retry_after_ms === undefined ? undefined : Number(o.meta.retry_after_ms),
      };

async function guessOne(env: ReliabilityEnv, c: Challenge, guess: string, key: string): Promise<Answer> {
  const v = c.victim;
  if (v.path === 'grpc-js' || v.path === 'connect') {
    return fromOutcome(
      await env.rpc.unary(
        v.path,
        PayerService,
        'confirmPayment',
        { idempotencyKey: key, paymentId: c.id, proof: { case: 'secondCode', value: guess } },
        { key: v.token },
      ),
    );
  }
  try {
    await env.app.payments.confirm({ kind: 'payer', payerId: v.id }, c.id, key, { kind: 'second_code', secondCode: guess });
    return { code: 0, reason: undefined, message: '', retryAfterMs: undefined };
  } catch (error) {
    if (!(error instanceof DomainError)) return { code: Code.Internal, reason: undefined, message: String(error), retryAfterMs: undefined };
    const code =
      { permission_denied: Code.PermissionDenied, resource_exhausted: Code.ResourceExhausted, failed_precondition: Code.FailedPrecondition }[
        error.kind as string
      ] ?? Code.Unknown;
    const retry = error.details.retry_after_ms;
    return {
      code,
      reason: error.details.reason === undefined ? undefined : String(error.details.reason),
      message: error.message,
      retryAfterMs: retry === undefined ? undefined : Number(retry),
    };
  }
}

function record(stats: Stats, c: Challenge, answer: Answer, round: number, path: Path): void {
  const verdict = classify(answer.code, answer.reason, answer.message);
  stats.guesses += 1;
  stats.byVerdict[verdict] += 1;
  stats.byPath[path] += 1;
  if (verdict === 'denied' || verdict === 'exhausted') c.verified += 1;
  if (verdict === 'closed') c.closed += 1;
  if (verdict === 'locked' && answer.retryAfterMs !== undefined) {
    const perRound = stats.retryMax.get(c.victim.id) ?? [];
    perRound[round] = Math.max(perRound[round] ?? 0, answer.retryAfterMs);
    stats.retryMax.set(c.victim.id, perRound);
  }
  if (verdict === 'other' && stats.others.length < 5) stats.others.push(`${codeLabel(answer.code)} "${answer.message.slice(0, 100)}" over ${path}`);
}

/** Every challenge gets `guessesPerChallenge` wrong guesses, interleaved across challenges, `concurrency` in flight. */
async function sprayRound(env: ReliabilityEnv, merchantKey: string, challenges: Challenge[], plan: BruteForcePlan, round: number, stats: Stats): Promise<void> {
  let serial = 0;
  for (let pass = 0; pass < plan.guessesPerChallenge; pass += 1) {
    const open = challenges.filter((c) => c.closed < closedAnswersMax);
    if (open.length === 0) break;
    const singles = open.filter((c) => c.victim.path !== 'batch');
    const batched = open.filter((c) => c.victim.path === 'batch');
    const batchWork = (async () => {
      for (let i = 0; i < batched.length; i += confirmBatchMax) {
        const chunk = batched.slice(i, i + confirmBatchMax).map((c) => ({ c, guess: wrongGuess(c), key: `bfg-${round}-${pass}-${c.id}` }));
        const o = await env.rpc.unary(
          'grpc-js',
          PaymentService,
          'batchConfirmPayments',
          { idempotencyKey: `bfbc-${round}-${pass}-${i}`, items: chunk.map((x) => ({ idempotencyKey: x.key, paymentId: x.c.id, secondCode: x.guess })) },
          { key: merchantKey },
        );
        if (!o.ok) {
          chunk.forEach((x) => record(stats, x.c, fromOutcome(o), round, 'batch'));
          continue;
        }
        for (const r of (o.value as BatchConfirmPaymentsResponse).results) {
          const x = chunk[r.index]!;
          const answer: Answer =
            r.outcome.case === 'error'
              ? { code: r.outcome.value.code as Code, reason: undefined, message: r.outcome.value.message, retryAfterMs: undefined }
              : { code: 0, reason: undefined, message: '', retryAfterMs: undefined };
          record(stats, x.c, answer, round, 'batch');
        }
      }
    })();
    await pool(singles, plan.concurrency, async (c) =>
      record(stats, c, await guessOne(env, c, wrongGuess(c), `bfg-${round}-${pass}-${++serial}-${c.id}`), round, c.victim.path),
    );
    await batchWork;
  }
}

/**
 * Ends a payer's lockout now, keeping its streak and lockout count (so the next lockout is the
 * next back-off step): the guard's `lockedUntilMs` field (authz/store/redis/keys.ts,
 * `streak:lockouts:lockedUntilMs:expiresAtMs`) set to ARGV[1]. 1: done; 0: no guard; -1: a value
 * this script does not understand (the layout changed: the round would not be fast-forwarded).
 */
const endLockoutScript = `local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local s, l, u, e = string.match(v, '^(%d+):(%d+):(%d+):(%d+)$')
if not s then return -1 end
redis.call('SET', KEYS[1], s .. ':' .. l .. ':' .. ARGV[1] .. ':' .. e, 'KEEPTTL')
return 1`;
const storeKeys = storeKeysOf(storeKeyPrefixDefault);

/** The guard a victim's wrong answers count in: (payer, merchant) for the merchant's batch calls, else the payer-wide one. */
const guardKeyOf = (v: Victim, merchantId: string): string => (v.path === 'batch' ? storeKeys.merchantGuard(v.id, merchantId) : storeKeys.guard(v.id));

/** Ends every victim's lockout (see `endLockoutScript`); a guard it cannot read is a violation, not a silently skipped fast-forward. */
async function fastForwardLockouts(redis: Redis, victims: Victim[], merchantId: string, violations: string[]): Promise<void> {
  const pipeline = redis.pipeline();
  const nowMs = Date.now();
  for (const v of victims) pipeline.eval(endLockoutScript, 1, guardKeyOf(v, merchantId), String(nowMs));
  const unreadable = ((await pipeline.exec()) ?? []).filter(([error, answer]) => error !== null || answer === -1).length;
  if (unreadable > 0)
    violations.push(`brute force: ${unreadable} lockouts could not be fast-forwarded (the payer guard's Redis layout is not the one this test knows)`);
  await new Promise((resolve) => setTimeout(resolve, 20));
}

export interface BruteForceResult {
  guesses: number;
  payments: number;
}

export async function runBruteForce(
  env: ReliabilityEnv,
  redis: Redis,
  plan: BruteForcePlan,
  deadline: number,
  secrets: Set<string>,
  counts: Record<string, number>,
  violations: string[],
): Promise<void> {
  let t = Date.now();
  const lap = (name: string) => {
    counts[`ms brute force ${name}`] = (counts[`ms brute force ${name}`] ?? 0) + Date.now() - t;
    t = Date.now();
  };
  const { merchant, victims } = await enrollVictims(env, plan, secrets);
  lap('enroll');
  const stats: Stats = {
    guesses: 0,
    byVerdict: { denied: 0, exhausted: 0, locked: 0, closed: 0, approved: 0, other: 0 },
    byPath: { 'grpc-js': 0, connect: 0, batch: 0, 'in-process': 0 },
    retryMax: new Map(),
    others: [],
  };
  const all: Challenge[] = [];
  let rounds = 0;
  for (let round = 0; round < plan.rounds && Date.now() < deadline; round += 1) {
    const challenges = await challengeRound(env, merchant.key, victims, round, secrets, violations);
    lap('create');
    await sprayRound(env, merchant.key, challenges, plan, round, stats);
    lap('guess');
    checkRound(challenges, round, violations);
    all.push(...challenges);
    rounds += 1;
    await fastForwardLockouts(redis, victims, merchant.id, violations);
  }
  Object.assign(counts, { guesses: stats.guesses, bruteForceRounds: rounds, bruteForcePayments: all.length, bruteForcePayers: victims.length });
  for (const [verdict, n] of Object.entries(stats.byVerdict)) counts[`guesses ${verdict}`] = n;
  // Guesses that met a live challenge (verified wrong, or refused by the attempt or lockout bound).
  counts['guesses live'] = stats.byVerdict.denied + stats.byVerdict.exhausted + stats.byVerdict.locked;
  for (const [path, n] of Object.entries(stats.byPath)) counts[`guesses via ${path}`] = n;
  if (rounds < plan.rounds) violations.push(`brute force: only ${rounds} of ${plan.rounds} rounds ran before the deadline`);
  if (stats.byVerdict.approved > 0)
    violations.push(`brute force: ${stats.byVerdict.approved} wrong guesses were accepted (OK) — a payment approved without its code`);
  stats.others.forEach((o) =>
    violations.push(`brute force: a guess was answered ${o} (expected PERMISSION_DENIED, RESOURCE_EXHAUSTED or FAILED_PRECONDITION)`),
  );
  if (stats.byVerdict.other > stats.others.length) violations.push(`brute force: ${stats.byVerdict.other} guesses in all got an unexpected answer`);
  checkBackoff(stats, rounds, violations, counts);
  await checkFinal(env, merchant, victims, all, violations, counts);
  lap('final checks');
}

/**
 * Per challenge at most attemptsMax verified wrong answers; per payer per scope per lockout at most
 * failuresMax (a victim is attacked through one scope: its path's, see `guardKeyOf`).
 */
function checkRound(challenges: Challenge[], round: number, violations: string[]): void {
  const perScope = new Map<string, number>();
  for (const c of challenges) {
    if (c.verified > attemptsMax)
      violations.push(`brute force: challenge ${c.id} (round ${round + 1}) took ${c.verified} wrong answers, at most ${attemptsMax} allowed`);
    const scope = `payer ${c.victim.id} ${c.victim.path === 'batch' ? 'at the merchant' : 'payer-wide'}`;
    perScope.set(scope, (perScope.get(scope) ?? 0) + c.verified);
  }
  for (const [scope, n] of perScope)
    if (n > failuresMax)
      violations.push(`brute force: ${scope} had ${n} wrong answers verified in round ${round + 1} before the lockout, at most ${failuresMax}`);
}

/** Each lockout lasts longer than the one before (until the cap): the largest retry_after_ms seen per round grows. */
function checkBackoff(stats: Stats, rounds: number, violations: string[], counts: Record<string, number>): void {
  let compared = 0;
  let shrank = 0;
  let example = '';
  for (const [payer, perRound] of stats.retryMax) {
    for (let r = 1; r < rounds; r += 1) {
      const before = perRound[r - 1];
      const now = perRound[r];
      if (before === undefined || now === undefined) continue;
      compared += 1;
      if (now > lockoutMsMax || (now <= before && before < lockoutMsMax)) {
        shrank += 1;
        example ||= `payer ${payer}: retry_after_ms ${before} in round ${r}, then ${now} in round ${r + 1}`;
      }
    }
  }
  counts.backoffComparisons = compared;
  if (compared === 0 && rounds > 1) violations.push('brute force: no lockout was observed in two consecutive rounds (no retry_after_ms to compare)');
  if (shrank > 0) violations.push(`brute force: the lockout back-off did not grow in ${shrank} of ${compared} consecutive lockouts (e.g. ${example})`);
}

/** Zero approvals in the stores and in the ledger: every payment declined, every reservation voided, nothing posted. */
async function checkFinal(
  env: ReliabilityEnv,
  merchant: { key: string; account: string },
  victims: Victim[],
  all: Challenge[],
  violations: string[],
  counts: Record<string, number>,
): Promise<void> {
  const states: Record<string, number> = {};
  const challenged = new Map<string, number>();
  for (const c of all) {
    const p = (await env.app.payments.record(c.id))?.payment;
    const state = p?.state ?? 'MISSING';
    states[state] = (states[state] ?? 0) + 1;
    if (state === 'CHALLENGED') challenged.set(c.victim.id, (challenged.get(c.victim.id) ?? 0) + 1);
  }
  for (const [state, n] of Object.entries(states)) counts[`brute-forced payments ${state}`] = n;
  const approved = (states.SUCCEEDED ?? 0) + (states.APPROVED ?? 0);
  if (approved > 0) violations.push(`brute force: ${approved} brute-forced payments are SUCCEEDED or APPROVED`);
  let moved = 0;
  let misreserved = 0;
  for (const v of victims) {
    const a = must<GetAccountResponse>(
      'get account',
      await env.rpc.unary('grpc-js', LedgerService, 'getAccount', { accountId: v.account }, { key: env.adminKey }),
    ).account!;
    if (a.debitsPosted !== 0n) moved += 1;
    if (a.debitsPending !== amount * BigInt(challenged.get(v.id) ?? 0)) misreserved += 1;
  }
  if (moved > 0) violations.push(`brute force: ${moved} attacked payers have posted debits (money left their accounts)`);
  if (misreserved > 0) violations.push(`brute force: ${misreserved} attacked payers reserve more or less than their payments still CHALLENGED`);
  const m = must<GetAccountResponse>(
    'get merchant account',
    await env.rpc.unary('grpc-js', LedgerService, 'getAccount', { accountId: merchant.account }, { key: env.adminKey }),
  ).account!;
  if (m.creditsPosted !== 0n || m.creditsPending !== 0n)
    violations.push(`brute force: the attacked merchant was credited ${m.creditsPosted} (pending ${m.creditsPending})`);
}
