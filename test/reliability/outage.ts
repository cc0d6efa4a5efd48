import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../services/net.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from './scenario.js';
import { enrollPayers, type MerchantActor, type PayerActor } from './support/actors.js';
import { AnswerLog } from './support/answer-log.js';
import { audit } from './support/audit.js';
import { type AuthorizerPlugin, startAuthorizerPlugin } from './support/authorizer-plugin.js';
import { CallStats, callDeadlineMs, crashRetries, Endpoint, type ObservedCall, type RetryPolicy } from './support/clients.js';
import { finishRequests } from './support/finish.js';
import { type FlowContext, type PaymentKind, type PaymentRecord, type PlannedPayment, runPayment } from './support/payment-flows.js';
import { Prng, randomSeed } from './support/prng.js';
import { countersignCommand, runToEnd } from './support/processes.js';
import { reconcileWorld } from './support/reconcile.js';
import { cancelOpenPayments, defaultShape, prepareWorkload, runWorkload, type Workload } from './support/workload.js';
import { startWorld, type World } from './support/world.js';

/**
 * Dependency outages under load. One deployment (durable Redis, authz with the embedded ledger,
 * telco bridge, an external authorizer plugin) carries a steady stream of payments while, one
 * after another:
 *
 * - redis-down:      redis-server is SIGKILLed and restarted (its append-only file keeps the data);
 * - ledger-frozen:   the authz process, which hosts the embedded ledger, is SIGSTOPped and resumed
 *                    (no TigerBeetle here: the ledger cannot fail apart from its process; a
 *                    frozen host is what a stalled ledger looks like to callers);
 * - ledger-dead:     an authz configured with TigerBeetle at an address where nothing listens must
 *                    refuse to start (fail closed) within a bound, serving nothing;
 * - telco-down:      the telco bridge is SIGKILLed and kept down, then restarted;
 * - telco-hung:      the telco bridge is SIGSTOPped (accepts connections, answers nothing), resumed;
 * - authorizer-hung: the plugin holds every Decide without answering, then answers again.
 *
 * For each: the load proves it met the fault — at least `faultWindowCallsMin` load calls start
 * inside the window, and at least `faultCallsMin` of them show the fault (its documented answer; for
 * the frozen host, held until the process resumed) — every call that starts while the fault lasts
 * ends within a named bound with the documented answer (UNAVAILABLE, the client's own deadline for a
 * frozen host, the fail-closed decline), a canary request (through a connection of its own, so its
 * answer is told apart from the load's) is refused with exactly that answer, the service recovers by itself (a probe payment
 * succeeds within `recoveryWaitMsMax`), and the canary retried after recovery moves money exactly
 * once (same key) or stays declined (fail-closed declines: a new key is the documented retry).
 * Then, as after a crash scenario, every client sends the requests it gave up on again until it
 * has a final answer (finish.ts), and the audit checks every invariant over all payments and answers.
 */

/** How long a fault lasts, per mode, milliseconds. */
const outageMs: Record<ScenarioOptions['mode'], number> = { short: 5_000, soak: 15_000 };
/** Normal load between two faults, milliseconds. */
const calmMs = 3_000;
/** Per fault, on top of calm and outage: canary, recovery probes and the canary's retry, milliseconds (the load's pacing). */
const loadSpanSlackPerCaseMs = 8_000;
/** How long the service may take to serve again after a fault ends, milliseconds. */
export const recoveryWaitMsMax = 20_000;
const probeIntervalMs = 250;
/**
 * authz's deadline for the plugin (COUNTERSIGN_AUTHORIZER_DEADLINE_MS), milliseconds. 1 s rather
 * than serve's default: beside ava on 2 cores a healthy plugin once took longer than 300 ms, and
 * the redis-down canary's retry was declined AUTHORIZER_UNAVAILABLE (fail closed) outside any fault.
 */
export const authorizerDeadlineMs = 1_000;
/** authz's deadline for a ledger request (COUNTERSIGN_LEDGER_TIMEOUT_MS) in the dead-ledger start, milliseconds. */
export const deadLedgerTimeoutMs = 1_000;
/** How long an authz whose ledger is unreachable may take to give up starting, milliseconds. */
export const deadLedgerExitMsMax = 20_000;
/** Slack on top of a component's own deadline before a call counts as late, milliseconds. */
const answerSlackMs = 1_500;
/** Bounds on how long a call may take while each fault lasts, milliseconds. */
export const answerMsMax = {
  /** redisCommandTimeoutMs (2 s) plus slack. */
  redis: 2_000 + answerSlackMs,
  /** The client's own deadline: a frozen process answers nothing. */
  frozen: callDeadlineMs + answerSlackMs,
  /** telcoNotifierDefaults.bridgeCallDeadlineMs (3 s) plus slack. */
  telco: 3_000 + answerSlackMs,
  authorizer: authorizerDeadlineMs + answerSlackMs,
};
/**
 * Load calls that must start inside a fault window, at least: fewer, and the window proved nothing
 * (the published short run saw 37 to 1 723). The frozen host is the exception: each load worker
 * blocks on its first call into the stopped process, so at most about `concurrency` calls start
 * there (the published run saw 5): `frozenWindowCallsMin`.
 */
export const faultWindowCallsMin = 10;
export const frozenWindowCallsMin = 2;
/**
 * Load calls inside the window that must show the fault, at least. Every case's fault is visible to
 * some load call: redis-down to every call (each needs Redis), telco-down and telco-hung to the SMS
 * creates (15 % of the load; app payments do not reach the bridge), authorizer-hung to every create
 * (confirms and reads do not consult the plugin), and ledger-frozen to every call, as a hold: a call
 * that starts inside a freeze shorter than its deadline is answered when the process resumes (a
 * delay, not an error), so there "shows the fault" is "the documented answer, or no answer before
 * the process resumed" — and a call answered before the resume is a violation of its own.
 */
export const faultCallsMin = 1;
/**
 * Payments of the path the fault reaches (the canary's kind), started back to back by one more load
 * worker from the moment of injection, at most: the organic mix reaches the bridge with 15 % of its
 * payments and a hung bridge holds each for 3 s, so without them a short window may see no SMS create
 * at all (the published run saw 6, this suite's first run 3). Judged like every load call.
 */
export const faultPathPaymentsMax = 3;
/** Load clients retry the same request for this long: across any fault window. */
const patientRetries: RetryPolicy = { attemptsMax: 45, delayMsFirst: 100, delayMsMax: 1_000, inProgressWaitMsMax: 1_000, inProgressAnswersMax: 10 };
/** Probes try twice; the canary once (its retry after recovery is a call of its own). */
const probeRetries: RetryPolicy = { attemptsMax: 2, delayMsFirst: 100, delayMsMax: 200, inProgressWaitMsMax: 200, inProgressAnswersMax: 2 };
const canaryRetries: RetryPolicy = { attemptsMax: 1, delayMsFirst: 0, delayMsMax: 0, inProgressWaitMsMax: 0, inProgressAnswersMax: 1 };
/** The finish phase's bound, milliseconds: a create's lease (30 s) and some. */
const finishPhaseMsMax = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface OutageCase {
  name: string;
  answerMsMax: number;
  /** The documented answer to a call the fault stops (on top of the answers a healthy service gives). */
  faultAnswer(call: ObservedCall): boolean;
  /** Load calls that must start inside the window. */
  windowCallsMin: number;
  /**
   * A frozen process: every call that starts in the window shows the fault (its documented answer,
   * or an answer only after the resume); otherwise the fault shows as its documented answer.
   */
  holdsEveryCall: boolean;
  /** The canary's path and what a retry with its key after recovery must give. */
  canary: PaymentKind;
  canaryRetry: 'succeeds' | 'stays-declined';
  /** Processes SIGKILLed by the injection. */
  kills: number;
  inject(): Promise<void>;
  heal(): Promise<void>;
}

const isCode =
  (...codes: string[]) =>
  (c: ObservedCall) =>
    codes.includes(c.code);
const deliveryFailed = (c: ObservedCall) => c.code === 'Unavailable' && c.reason === 'DELIVERY_FAILED';

/**
 * What a healthy service answers this load: success, and the business refusals (insufficient
 * funds, a payment no longer waiting, a wrong or stale code, a lockout or rate limit).
 */
const businessAnswer = isCode('OK', 'FailedPrecondition', 'PermissionDenied', 'ResourceExhausted');

/**
 * UNAVAILABLE, reason IN_PROGRESS: a create retried within its lease while its reservation is not
 * in the ledger yet. Transient by contract (the retry after the lease finishes the payment); the
 * audit checks that no key stays in progress past its lease.
 */
const keyInProgress = (c: ObservedCall) => c.code === 'Unavailable' && (c.reason === 'IN_PROGRESS' || /idempotency key is in progress/.test(c.message));

function cases(world: World, plugin: AuthorizerPlugin): OutageCase[] {
  return [
    {
      name: 'redis-down',
      answerMsMax: answerMsMax.redis,
      faultAnswer: isCode('Unavailable'),
      windowCallsMin: faultWindowCallsMin,
      holdsEveryCall: false,
      canary: 'app',
      canaryRetry: 'succeeds',
      kills: 1,
      inject: () => world.redis!.process.kill(),
      heal: () => world.redis!.process.start(),
    },
    {
      name: 'ledger-frozen',
      answerMsMax: answerMsMax.frozen,
      faultAnswer: isCode('DeadlineExceeded', 'Unavailable'),
      windowCallsMin: frozenWindowCallsMin,
      holdsEveryCall: true,
      canary: 'app',
      canaryRetry: 'succeeds',
      kills: 0,
      inject: () => world.authz.pause(),
      heal: () => world.authz.resume(),
    },
    {
      name: 'telco-down',
      answerMsMax: answerMsMax.telco,
      faultAnswer: deliveryFailed,
      windowCallsMin: faultWindowCallsMin,
      holdsEveryCall: false,
      canary: 'sms-code',
      canaryRetry: 'stays-declined',
      kills: 1,
      inject: () => world.bridge.kill(),
      heal: () => world.startBridge(),
    },
    {
      name: 'telco-hung',
      answerMsMax: answerMsMax.telco,
      faultAnswer: deliveryFailed,
      windowCallsMin: faultWindowCallsMin,
      holdsEveryCall: false,
      canary: 'sms-code',
      canaryRetry: 'stays-declined',
      kills: 0,
      inject: () => world.bridge.pause(),
      heal: () => world.bridge.resume(),
    },
    {
      name: 'authorizer-hung',
      answerMsMax: answerMsMax.authorizer,
      faultAnswer: (c) => c.code === 'FailedPrecondition' && c.reason === 'AUTHORIZER_UNAVAILABLE',
      windowCallsMin: faultWindowCallsMin,
      holdsEveryCall: false,
      canary: 'app',
      canaryRetry: 'stays-declined',
      kills: 0,
      inject: async () => plugin.hang(),
      heal: async () => plugin.answer(),
    },
  ];
}

/** Payers reserved for canaries and probes: app payers, and SMS payers used at most 3 times each. */
class ProbePool {
  private next = 0;
  private uses = new Map<string, number>();

  constructor(
    private readonly app: PayerActor,
    private readonly sms: PayerActor[],
    private readonly workload: Workload,
    /** The canaries' merchant, its API on an endpoint of its own: the canary's calls are told apart from the load's. */
    readonly canary: { merchant: MerchantActor; endpoint: Endpoint },
  ) {}

  plan(kind: PaymentKind, key: string, merchant: MerchantActor = this.workload.merchants[0]!): PlannedPayment {
    const payer = kind === 'app' ? this.app : this.smsPayer();
    return { key, payer, merchant, amount: 5_00n, kind, script: 'right' };
  }

  private smsPayer(): PayerActor {
    for (let tries = 0; tries < this.sms.length; tries++) {
      const payer = this.sms[this.next++ % this.sms.length]!;
      const used = this.uses.get(payer.id) ?? 0;
      if (used < 3) return (this.uses.set(payer.id, used + 1), payer);
    }
    throw new Error('probe pool: every SMS probe payer used its 3 codes');
  }
}

interface CaseOutcome {
  violations: string[];
  counts: Record<string, number>;
  records: PaymentRecord[];
}

/**
 * The load met the fault: enough load calls started inside the window, and enough of them show
 * the fault (see `faultCallsMin`); with a frozen process, none was answered OK before the resume.
 */
function judgeWindow(c: OutageCase, calls: ObservedCall[], resumedAtMs: number): { violations: string[]; showing: number } {
  const violations: string[] = [];
  const held = (call: ObservedCall) => call.startMs + call.durationMs >= resumedAtMs;
  const shows = (call: ObservedCall) => c.faultAnswer(call) || (c.holdsEveryCall && held(call));
  const showing = calls.filter(shows).length;
  if (calls.length < c.windowCallsMin)
    violations.push(
      `${c.name}: only ${calls.length} load calls started inside the fault window, expected at least ${c.windowCallsMin}: the window proved nothing`,
    );
  else if (showing < faultCallsMin)
    violations.push(
      `${c.name}: none of the ${calls.length} load calls inside the fault window got its documented answer${c.holdsEveryCall ? ' or was held until the process resumed' : ''}: the fault was not in effect`,
    );
  const early = c.holdsEveryCall ? calls.filter((call) => !shows(call)) : [];
  if (early.length > 0)
    violations.push(
      `${c.name}: ${early.length} load calls that started while the process was stopped were answered before it resumed (${early
        .slice(0, 3)
        .map((e) => `${e.method} ${e.code}`)
        .join('; ')}): the process was not stopped`,
    );
  return { violations, showing };
}

function judgeCalls(c: OutageCase, calls: ObservedCall[]): string[] {
  const violations: string[] = [];
  const late = calls.filter((call) => call.durationMs > c.answerMsMax);
  if (late.length > 0)
    violations.push(
      `${c.name}: ${late.length} calls answered later than ${c.answerMsMax} ms (slowest ${Math.max(...late.map((l) => l.durationMs))} ms, ${late[0]!.method})`,
    );
  const wrong = calls.filter((call) => !c.faultAnswer(call) && !businessAnswer(call) && !keyInProgress(call));
  if (wrong.length > 0) {
    const kinds = [...new Set(wrong.map((w) => `${w.method} ${w.code}${w.reason === undefined ? '' : ` ${w.reason}`}`))];
    violations.push(`${c.name}: ${wrong.length} calls got an answer other than the documented one: ${kinds.slice(0, 5).join('; ')}`);
  }
  return violations;
}

/** Polls probe payments (a new key each) until one succeeds; how long it took, or undefined. */
async function waitForRecovery(ctx: FlowContext, pool: ProbePool, c: OutageCase, tag: string): Promise<{ ms: number | undefined; records: PaymentRecord[] }> {
  const startedAt = Date.now();
  const records: PaymentRecord[] = [];
  const probeCtx = { ...ctx, policy: probeRetries };
  for (let i = 0; Date.now() - startedAt < recoveryWaitMsMax; i++) {
    const rec = await runPayment(probeCtx, pool.plan(c.canary, `${tag}-probe-${i}`));
    records.push(rec);
    if (rec.result === 'succeeded') return { ms: Date.now() - startedAt, records };
    await sleep(probeIntervalMs);
  }
  return { ms: undefined, records };
}

/**
 * Up to `faultPathPaymentsMax` payments of the canary's kind, one after another, while the window
 * lasts: one attempt per call (patient retries would wait out the fault and hold up the heal); what
 * they leave without a final answer, the finish phase sends again like the rest of the load's.
 */
async function faultPathLoad(ctx: FlowContext, c: OutageCase, pool: ProbePool, tag: string, windowEndMs: number): Promise<PaymentRecord[]> {
  const records: PaymentRecord[] = [];
  for (let i = 0; i < faultPathPaymentsMax && Date.now() < windowEndMs; i++)
    records.push(await runPayment({ ...ctx, policy: canaryRetries }, pool.plan(c.canary, `${tag}-fault-path-${i}`)));
  return records;
}

/** The canary: refused during the fault with the case's documented answer, not merely "not accepted". */
function judgeCanary(c: OutageCase, canary: PaymentRecord, canaryCalls: ObservedCall[]): string[] {
  if (canary.acked.length > 0) return [`${c.name}: the canary payment was accepted during the fault (${canary.result})`];
  const create = canaryCalls.find((call) => call.method === 'CreatePayment');
  if (create === undefined) return [`${c.name}: the canary's create was not observed (${canary.result})`];
  if (!c.faultAnswer(create))
    return [
      `${c.name}: the canary was refused with ${create.code}${create.reason === undefined ? '' : ` ${create.reason}`} "${create.message.slice(0, 100)}", not with the fault's documented answer`,
    ];
  return [];
}

async function runCase(ctx: FlowContext, c: OutageCase, pool: ProbePool, outageLengthMs: number, log: (line: string) => void): Promise<CaseOutcome> {
  const calls: ObservedCall[] = [];
  const canaryCalls: ObservedCall[] = [];
  const violations: string[] = [];
  const tag = `${ctx.world.name}-${c.name}`;
  // The canary's connection was idle since the last case: used just now, the canary's call does not
  // first verify it with a PING, whose timeout against a frozen process connect-node can raise as an
  // unhandled 'error' on the session (seen once: "PING timed out" crashed the runner).
  await pool.canary.merchant.api.payments.listPayments({ pageSize: 1 });
  await c.inject();
  const injectedAt = Date.now();
  const windowEndMs = injectedAt + outageLengthMs;
  log(`${new Date().toISOString()} ${c.name}: fault injected`);
  // Load calls that start inside the window (the observer is read when a call starts: a call that started inside is seen when it ends).
  ctx.world.endpoint.observer = (call) => void (call.startMs >= injectedAt && call.startMs < windowEndMs && calls.push(call));
  pool.canary.endpoint.observer = (call) => void canaryCalls.push(call);
  const canaryPlan = pool.plan(c.canary, `${tag}-canary`, pool.canary.merchant);
  const faultPath = faultPathLoad(ctx, c, pool, tag, windowEndMs);
  const canary = await runPayment({ ...ctx, policy: canaryRetries }, canaryPlan);
  pool.canary.endpoint.observer = undefined;
  const faultPathRecords = await faultPath;
  await sleep(Math.max(0, windowEndMs - Date.now()));
  ctx.world.endpoint.observer = undefined;
  const resumedAtMs = Date.now();
  await c.heal();
  log(`${new Date().toISOString()} ${c.name}: healed; ${calls.length} load calls started during the fault have ended`);
  const recovery = await waitForRecovery(ctx, pool, c, tag);
  if (recovery.ms === undefined)
    violations.push(`${c.name}: no probe payment succeeded within ${recoveryWaitMsMax} ms after the fault ended (${recovery.records.at(-1)?.result})`);
  // A call is observed when it ends: the calls that started inside the window have all ended by its end plus their bound (a frozen process's are answered after the resume).
  await sleep(Math.max(0, windowEndMs + c.answerMsMax - Date.now()));
  const window = judgeWindow(c, calls, resumedAtMs);
  violations.push(...window.violations, ...judgeCalls(c, calls), ...judgeCanary(c, canary, canaryCalls));
  const refusals = calls.filter((call) => call.code !== 'OK').length;
  const retry = await runPayment(ctx, canaryPlan);
  const retryOk = c.canaryRetry === 'succeeds' ? retry.result === 'succeeded' : retry.result !== 'succeeded';
  if (!retryOk)
    violations.push(
      `${c.name}: the canary retried with its key after recovery ended ${retry.result}, expected it to ${c.canaryRetry === 'succeeds' ? 'succeed' : 'stay declined'}`,
    );
  log(`${new Date().toISOString()} ${c.name}: canary ${canary.result}, recovered in ${recovery.ms ?? 'never'} ms, canary retry ${retry.result}`);
  return {
    violations,
    counts: {
      [`${c.name}_calls`]: calls.length,
      [`${c.name}_faultAnswers`]: calls.filter(c.faultAnswer).length,
      [`${c.name}_showingFault`]: window.showing,
      [`${c.name}_canaryAnswer`]: canaryCalls.some(c.faultAnswer) ? 1 : 0,
      [`${c.name}_faultPathPayments`]: faultPathRecords.length,
      [`${c.name}_keyInProgress`]: calls.filter(keyInProgress).length,
      [`${c.name}_refused`]: refusals,
      [`${c.name}_recoveryMs`]: recovery.ms ?? -1,
      [`${c.name}_slowestMs`]: Math.max(0, ...calls.map((x) => x.durationMs)),
    },
    records: [canary, ...faultPathRecords, ...recovery.records, retry],
  };
}

/**
 * The canaries' merchant, enrolled like the load's but with its API on an endpoint (an HTTP/2
 * connection) of its own, opened before any fault (a merchant's backend keeps its connection):
 * the canary's answer is observed apart from the load's.
 */
async function canaryMerchant(world: World, secrets: Set<string>): Promise<{ merchant: MerchantActor; endpoint: Endpoint }> {
  const feeBasisPoints = 100;
  const name = 'Canary shop';
  const r = await world.admin.enrollment.enrollMerchant({ idempotencyKey: `${world.name}-canary-merchant`, name, currencies: ['USD'], feeBasisPoints });
  secrets.add(r.apiKey);
  const endpoint = new Endpoint(world.endpoint.baseUrl);
  const api = endpoint.clients(r.apiKey);
  await api.payments.listPayments({ pageSize: 1 });
  return { endpoint, merchant: { id: r.merchantId, name, apiKey: r.apiKey, account: r.payeeAccountIds.USD!, feeBasisPoints, api } };
}

/** authz configured with TigerBeetle where nothing listens: it must exit non-zero, in time, without serving. */
async function deadLedgerStart(options: ScenarioOptions): Promise<{ violations: string[]; ms: number }> {
  const dir = mkdtempSync(join(options.workDir, 'dead-ledger-'));
  const key = `cs_admin_${randomBytes(24).toString('base64url')}`;
  const master = randomBytes(32).toString('base64');
  options.secrets.add(key).add(master);
  const env = {
    COUNTERSIGN_TB_ADDRESSES: `127.0.0.1:${await freePort()}`,
    COUNTERSIGN_LEDGER_TIMEOUT_MS: String(deadLedgerTimeoutMs),
    COUNTERSIGN_DATA_DIR: dir,
    COUNTERSIGN_HOST: '127.0.0.1',
    COUNTERSIGN_GRPC_PORT: '0',
    COUNTERSIGN_CONNECT_PORT: '0',
    COUNTERSIGN_WEB_PORT: '0',
    COUNTERSIGN_ADMIN_KEY: key,
    COUNTERSIGN_MASTER_KEY: master,
    COUNTERSIGN_LOG_LEVEL: 'debug',
  };
  const startedAt = Date.now();
  const run = await runToEnd(
    { name: 'authz-dead-ledger', ...countersignCommand(['serve']), env, logDir: join(options.logDir, 'outages') },
    deadLedgerExitMsMax,
  );
  const ms = Date.now() - startedAt;
  const violations: string[] = [];
  if (run.code === null) violations.push(`ledger-dead: authz with an unreachable ledger was still running after ${deadLedgerExitMsMax} ms`);
  else if (run.code === 0) violations.push('ledger-dead: authz with an unreachable ledger exited 0');
  if (run.stdout.includes('countersign serving')) violations.push('ledger-dead: authz served without a ledger');
  return { violations, ms };
}

export const runOutages: Scenario = async (options) => {
  const startedAt = Date.now();
  const seed = options.seed ?? randomSeed();
  const rng = new Prng(seed ^ 0x5bd1e995);
  mkdirSync(options.logDir, { recursive: true });
  const log = (line: string) => appendFileSync(join(options.logDir, 'outages-events.log'), `${line}\n`);
  const plugin = await startAuthorizerPlugin();
  const world = await startWorld({
    name: 'outages',
    workDir: options.workDir,
    logDir: options.logDir,
    secrets: options.secrets,
    authzEnv: { COUNTERSIGN_AUTHORIZERS: `reliability=${plugin.address}`, COUNTERSIGN_AUTHORIZER_DEADLINE_MS: String(authorizerDeadlineMs) },
  });
  try {
    return await outages(options, world, plugin, rng, seed, startedAt, log);
  } finally {
    world.endpoint.observer = undefined;
    await world.close();
    await plugin.close();
  }
};

async function outages(
  options: ScenarioOptions,
  world: World,
  plugin: AuthorizerPlugin,
  rng: Prng,
  seed: number,
  startedAt: number,
  log: (line: string) => void,
): Promise<ScenarioResult> {
  const stats = new CallStats();
  const concurrency = options.mode === 'short' ? 5 : 8;
  const shape = {
    ...defaultShape,
    payments: options.mode === 'short' ? 3_000 : 12_000,
    concurrency,
    kinds: { app: 85, 'sms-code': 15, 'sms-reply': 0 },
    scripts: { right: 90, 'wrong-then-right': 0, decline: 5, abandon: 5 },
    appPaymentsPerPayer: 40,
  };
  const workload = await prepareWorkload(world, shape, rng, options.secrets, stats);
  const probes = await enrollPayers(
    world,
    [{ kind: 'app', funding: 1_000_000_00n }, ...Array.from({ length: 12 }, () => ({ kind: 'app' as const, funding: 1_000_00n }))],
    rng,
    options.secrets,
    stats,
    workload.payers.length,
  );
  const canary = await canaryMerchant(world, options.secrets);
  const everyone = { ...workload, merchants: [...workload.merchants, canary.merchant], payers: [...workload.payers, ...probes] };
  const pool = new ProbePool(probes[0]!, probes.slice(1), workload, canary);
  const answers = new AnswerLog();
  const ctx: FlowContext = { world, stats, policy: patientRetries, secrets: options.secrets, answers };
  let stopped = false;
  const chosen = cases(world, plugin);
  // Paced over the whole fault sequence: run as fast as it goes, the load can run out before the
  // last fault (fast refusals burn payments), and a window without calls proves nothing.
  const loadSpanMs = chosen.length * (calmMs + outageMs[options.mode] + loadSpanSlackPerCaseMs);
  const load = runWorkload(ctx, workload, concurrency, rng, () => stopped, loadSpanMs);
  const violations: string[] = [];
  const counts: Record<string, number> = {};
  const extra: PaymentRecord[] = [];
  try {
    for (const [i, c] of chosen.entries()) {
      options.progress?.(`fault ${i + 1}/${chosen.length}: ${c.name}`);
      await sleep(calmMs);
      const outcome = await runCase(ctx, c, pool, outageMs[options.mode], log);
      violations.push(...outcome.violations);
      Object.assign(counts, outcome.counts);
      extra.push(...outcome.records);
    }
  } finally {
    stopped = true;
  }
  const records = [...(await load), ...extra];
  options.progress?.(`faults done, ${records.length} payments; finishing, cancelling, reconciling and auditing`);
  for (const [why, n] of stats.gaveUpWith) log(`gave up ${n}× after retries: ${why}`);
  const finished = await finishRequests(ctx, records, Date.now() + finishPhaseMsMax);
  log(`${new Date().toISOString()} finish phase: ${finished.resent} requests sent again, ${finished.left} still without a final answer`);
  const dead = await deadLedgerStart(options);
  violations.push(...dead.violations);
  const cleanup = await cancelOpenPayments(world, everyone.merchants, crashRetries, stats, answers);
  const reconciled = await reconcileWorld(world);
  const result = await audit({
    world,
    workload: everyone,
    records,
    reconcileAnomalies: reconciled.anomalies,
    engine: 'embedded',
    policy: crashRetries,
    stats,
    answers,
  });
  canary.endpoint.close();
  violations.push(...result.violations, ...cleanup.failed.map((f) => `could not cancel an open payment: ${f}`));
  const outcomes: Record<string, number> = {};
  for (const r of records) outcomes[`client_${r.result}`] = (outcomes[`client_${r.result}`] ?? 0) + 1;
  return {
    name: 'outages',
    counts: {
      payments: records.length,
      kills: chosen.reduce((sum, c) => sum + c.kills, 0),
      outages: chosen.length + 1,
      seed,
      'ledger-dead_exitMs': dead.ms,
      succeededAfterRetries: records.filter((r) => r.retries > 0 && r.result === 'succeeded').length,
      pluginDecides: plugin.stats.decides,
      pluginHeld: plugin.stats.held,
      finishResent: finished.resent,
      finishLeft: finished.left,
      ...finished.answers,
      cancelledAtEnd: cleanup.cancelled,
      ...counts,
      ...result.facts,
      ...outcomes,
      ...Object.fromEntries(Object.entries(stats.toJSON()).map(([k, n]) => [`calls_${k}`, n])),
    },
    violations,
    durationMs: Date.now() - startedAt,
  };
}
