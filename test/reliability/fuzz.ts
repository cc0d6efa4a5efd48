import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Code } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { type GetPaymentResponse, PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { healthCheck } from '../support/reflection.js';
import { oversizeString } from './fuzz-fields.js';
import { credentialOf, hasOversize, judge, materialize, minimize, render } from './fuzz-judge.js';
import { type FuzzRequest, fuzzRequests, kindOf } from './fuzz-requests.js';
import { buildWorld, type FuzzWorld, freshKey, type LedgerTotals, ledgerTotals, SetupError, snapshotAccounts } from './fuzz-world.js';
import { describeCase, frameCases, judgeFrame, sendGarbageConnection, sendRaw } from './http2-frames.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from './scenario.js';
import { fileLogger } from './security-env.js';
import { codeLabel, type Outcome, RpcClients, statusName, streamReadMs, streamRefusalMs } from './security-rpc.js';
import { Prng } from './support/prng.js';
import { checkWireIntegers } from './wire-cases.js';

/**
 * Hostile input (issue 7): property-based fuzzing with fast-check — seeded, the seed in the
 * result — of every RPC of PaymentService, PayerService, EnrollmentService and LedgerService
 * over both wires (grpc-js on the gRPC port, the Connect protocol on the Connect port), then
 * malformed gRPC and Connect traffic from a raw HTTP/2 client, and hand-encoded requests with
 * out-of-range wire integers and non-decimal JSON numbers (wire-cases.ts). The server is its own process
 * (fuzz-server.ts). Violations: a crash, INTERNAL/UNKNOWN or no answer, an answer that is not a
 * precise one for the input (each with the RPC and a minimized reproducer), an idempotent replay
 * answered differently, and money that moved (every balance and the ledger totals, through the
 * API, against what the targets' own declines explain).
 */

const requestsTarget = { short: 10_000, soak: 100_000 } as const;
/** Requests in flight at once. */
const concurrency = 8;
/** Share of mutating requests sent a second time, unchanged (same idempotency key). */
const replayShare = 0.03;
/** Distinct violations kept with a reproducer; further ones are only counted. */
const signaturesMax = 80;
/** Time kept back from the deadline for the frame cases, the money check and shutdown, milliseconds. */
const reserveMs = 25_000;
/** Challenge lifetime in the fuzz server: long, so nothing expires by itself during the run. */
const codeTtlMs = 600_000;
const serverStartMsMax = 60_000;
const serverStopMsMax = 15_000;

const serverEntry = fileURLToPath(new URL('./fuzz-server.ts', import.meta.url));
const mutating = new Set([
  'createPayment',
  'batchCreatePayments',
  'cancelPayment',
  'confirmPaymentAsMerchant',
  'batchConfirmPayments',
  'confirmPayment',
  'declinePayment',
  'enrollPayer',
  'enrollMerchant',
  'fundAccount',
]);

interface Server {
  child: ChildProcess;
  grpcPort: number;
  connectPort: number;
  advanceClock(ms: number): Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last few KiB the process wrote to stderr (a crash's stack). */
  stderrTail(): string;
}

/** Starts the server; its pino log goes to `logFile`, its console (stdout and stderr) to `consoleFile`: the secret scan reads both. */
async function startServer(dataDir: string, logFile: string, consoleFile: string, adminKey: string): Promise<Server> {
  const child = fork(serverEntry, [dataDir, logFile, adminKey, String(codeTtlMs)], { execArgv: ['--import=tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let stderr = '';
  const consoleOut = createWriteStream(consoleFile);
  child.stdout!.on('data', (d: Buffer) => consoleOut.write(d));
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
    consoleOut.write(d);
  });
  child.once('exit', () => consoleOut.end());
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = await new Promise<{ grpcPort: number; connectPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new SetupError(`fuzz server did not start within ${serverStartMsMax} ms: ${stderr}`)), serverStartMsMax);
    child.on('message', (m: { ready?: { grpcPort: number; connectPort: number } }) => m.ready && (clearTimeout(timer), resolve(m.ready)));
    void exit.then(({ code }) => (clearTimeout(timer), reject(new SetupError(`fuzz server exited (${code}) before it was ready: ${stderr}`))));
  });
  const advanceClock = (ms: number) =>
    new Promise<void>((resolve) => {
      const onMessage = (m: { clockAdvanced?: number }) => m.clockAdvanced !== undefined && (child.off('message', onMessage), resolve());
      child.on('message', onMessage);
      child.send({ advanceClockMs: ms });
    });
  return { child, ...ready, advanceClock, exit, stderrTail: () => stderr };
}

interface Finding {
  count: number;
  first: string;
  req: FuzzRequest;
  sent: Record<string, unknown>;
  outcome: Outcome;
  problem: string;
}

export const runFuzz: Scenario = async (options: ScenarioOptions): Promise<ScenarioResult> => {
  const startedAt = Date.now();
  const counts: Record<string, number> = {};
  const violations: string[] = [];
  const seed = options.seed ?? randomBytes(4).readUInt32BE(0) >>> 1;
  counts.seed = seed;
  const dataDir = join(options.workDir, 'fuzz', 'data');
  mkdirSync(dataDir, { recursive: true });
  const adminKey = `cs_admin_${randomBytes(18).toString('base64url')}`;
  options.secrets.add(adminKey);
  const log = fileLogger(join(options.logDir, 'fuzz-scenario.log'), 'reliability-fuzz');
  const server = await startServer(dataDir, join(options.logDir, 'fuzz-authz.log'), join(options.logDir, 'fuzz-authz-console.log'), adminKey);
  const rpc = new RpcClients(`127.0.0.1:${server.grpcPort}`, `http://127.0.0.1:${server.connectPort}`);
  try {
    const world = await buildWorld({ rpc, adminKey }, server.advanceClock, codeTtlMs);
    world.secrets.forEach((s) => options.secrets.add(s));
    log.logger.info({ seed, mode: options.mode, live: world.live.length }, 'fuzz world ready');
    const deadline = startedAt + options.deadlineMs - reserveMs;
    await fuzzApi(world, rpc, server, options, seed, deadline, counts, violations);
    if (crashed(server))
      throw new SetupError(
        `the fuzz server process died: ${server
          .stderrTail()
          .split('\n')
          .filter((l) => l.trim() !== '')
          .slice(0, 8)
          .join(' | ')}`,
      );
    await fuzzFrames(adminKey, server, counts, violations);
    await checkMoney(world, rpc, violations, counts);
    await checkOversizeCollateral(rpc, adminKey, violations);
    await checkAlive(server, rpc, adminKey, violations);
    // After the money check (its deposit moves the ledger's totals), before the overflow deposit (which must stay last).
    await checkWireIntegers({ rpc, adminKey, grpcPort: server.grpcPort, connectPort: server.connectPort }, options.secrets, counts, violations);
    await checkOverflowDeposit(world, rpc, violations);
  } catch (error) {
    violations.push(`fuzz could not run: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    rpc.close();
    const stopped = await stopServer(server);
    if (stopped !== undefined) violations.push(stopped);
    log.logger.info({ counts, violations: violations.length }, 'fuzz done');
    log.flush();
  }
  return { name: 'fuzz', counts, violations, durationMs: Date.now() - startedAt };
};

// ------------------------------------------------------------------------------ the API fuzz

/**
 * One request. An oversize message over the Connect wire goes on a connection of its own, so a
 * refused body never shares a connection with the next requests (checkOversizeCollateral checks
 * the shared case on its own).
 */
async function sendOnce(rpc: RpcClients, world: FuzzWorld, req: FuzzRequest, input: Record<string, unknown>): Promise<Outcome> {
  const credential = credentialOf(world, req.caller);
  const clients = req.wire === 'connect' && hasOversize(input) ? rpc.isolated() : rpc;
  try {
    const readMs = req.okAllowed && kindOf(req.caller) !== 'anon' ? streamReadMs : streamRefusalMs;
    return req.stream
      ? await clients.stream(req.wire, req.service, req.method, input, credential, readMs)
      : await clients.unary(req.wire, req.service, req.method, input, credential);
  } finally {
    if (clients !== rpc) clients.close();
  }
}

/** Requests generated per fast-check sample (chunk `i` uses seed + i): a soak run never holds them all. */
const sampleChunk = 5_000;

/** Request `index` of the seeded sequence, generated a chunk at a time. */
function lazySample(arbitrary: fc.Arbitrary<FuzzRequest>, seed: number, total: number): (index: number) => FuzzRequest {
  const chunks = new Map<number, FuzzRequest[]>();
  return (index) => {
    const chunk = Math.floor(index / sampleChunk);
    let values = chunks.get(chunk);
    if (values === undefined) {
      values = fc.sample(arbitrary, { seed: (seed + chunk) >>> 0, numRuns: Math.min(sampleChunk, total - chunk * sampleChunk) });
      chunks.set(chunk, values);
      chunks.delete(chunk - 2); // workers stay within a chunk of each other
    }
    return values[index - chunk * sampleChunk]!;
  };
}

const crashed = (server: Server): boolean => server.child.exitCode !== null || server.child.signalCode !== null;

async function fuzzApi(
  world: FuzzWorld,
  rpc: RpcClients,
  server: Server,
  options: ScenarioOptions,
  seed: number,
  deadline: number,
  counts: Record<string, number>,
  violations: string[],
): Promise<void> {
  const target = requestsTarget[options.mode];
  const requests = lazySample(fuzzRequests(world), seed, target);
  const correct = new Map(world.live.map((p) => [p.id, p.secondCode]));
  const findings = new Map<string, Finding>();
  // Uniform draws (fast-check's own numbers lean towards edge cases on purpose).
  const prng = new Prng(seed ^ 0x5eed);
  const replayPick = Array.from({ length: target }, () => prng.next());
  let next = 0;
  let sent = 0;
  const send = async (req: FuzzRequest, input: Record<string, unknown>): Promise<Outcome> => {
    sent += 1;
    return sendOnce(rpc, world, req, input);
  };
  // Requests in flight when the server died are the crash's suspects, reported with the death.
  const inFlight = new Map<number, { req: FuzzRequest; input: Record<string, unknown> }>();
  let suspects: string[] | undefined;
  void server.exit.then(
    () =>
      (suspects = [...inFlight.values()].map(
        ({ req, input }) => `${req.method}(${render(input, 0, new Set(world.secrets))}) as ${req.caller} over ${req.wire}`,
      )),
  );
  const worker = async (): Promise<void> => {
    while (next < target && Date.now() < deadline && !crashed(server)) {
      const index = next++;
      const req = requests(index);
      const input = materialize(req.input, correct);
      inFlight.set(index, { req, input });
      const outcome = await send(req, input);
      inFlight.delete(index);
      if (crashed(server)) break;
      counts[`rpc ${req.rpc}`] = (counts[`rpc ${req.rpc}`] ?? 0) + 1;
      collectSecrets(req, outcome, options.secrets);
      for (const problem of judge(req, input, outcome).problems) record(findings, req, input, outcome, problem, index);
      if (mutating.has(req.method) && replayPick[index]! < replayShare && !hasOversize(input)) {
        const again = await send(req, input);
        counts.replays = (counts.replays ?? 0) + 1;
        if (answered(outcome) && answered(again) && statusName(again) !== statusName(outcome))
          record(
            findings,
            req,
            input,
            again,
            `the same request with the same idempotency key answered ${statusName(outcome)}, then ${statusName(again)}`,
            index,
          );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (crashed(server)) {
    await server.exit;
    violations.push(
      `the fuzz server process died after ${sent} requests (seed ${seed}); requests in flight: ${(suspects ?? []).join('; ') || 'none'}; stderr: ${server
        .stderrTail()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .slice(0, 12)
        .join(' | ')}`,
    );
  }
  counts.fuzzed = sent;
  counts.fuzzedTarget = target;
  if (next < target) violations.push(`only ${next} of ${target} generated requests ran before the deadline`);
  for (const [signature, f] of findings) {
    const reproducer = await reproduce(world, rpc, f, correct);
    violations.push(
      `${f.req.rpc} (${f.req.wire}, caller ${f.req.caller}): ${f.problem}; seen ${f.count}× (first at request #${f.first}, seed ${seed}); ${/server error|no answer/.test(f.problem) ? 'minimal reproducer' : 'reproducer'}: ${reproducer}`,
    );
    void signature;
  }
  counts.findings = findings.size;
}

/** The server answered (a status of its own, not a transport failure on the client's side). */
const answered = (o: Outcome): boolean => o.ok || ![Code.Unavailable, Code.Canceled, Code.DeadlineExceeded].includes(o.code);

function signatureOf(req: FuzzRequest, outcome: Outcome, problem: string): string {
  return `${req.rpc} ${kindOf(req.caller)} ${statusName(outcome)} ${problem.replace(/\d+/g, 'N')}`;
}

function record(findings: Map<string, Finding>, req: FuzzRequest, sent: Record<string, unknown>, outcome: Outcome, problem: string, index: number): void {
  const signature = signatureOf(req, outcome, problem);
  const known = findings.get(signature);
  if (known !== undefined) known.count += 1;
  else if (findings.size < signaturesMax) findings.set(signature, { count: 1, first: String(index), req, sent, outcome, problem });
}

/** The finding's request, minimized while it keeps getting the same status; rendered without secrets. */
async function reproduce(world: FuzzWorld, rpc: RpcClients, f: Finding, correct: Map<string, string>): Promise<string> {
  const code = statusName(f.outcome);
  const fresh = (input: Record<string, unknown>) =>
    materialize(
      typeof input.idempotencyKey === 'string' && /^fz-\d+-\d+$/.test(input.idempotencyKey) ? { ...input, idempotencyKey: '$fresh' } : input,
      correct,
    );
  const again = (input: Record<string, unknown>): Promise<Outcome> => sendOnce(rpc, world, f.req, fresh(input));
  // Only a server error or no answer is wrong whatever the input: there, keeping the status keeps
  // the violation. An imprecise answer depends on which fields were wrong, so it is shown whole.
  const alwaysWrong = /server error|no answer/.test(f.problem) && !f.problem.startsWith('item');
  const small = alwaysWrong ? await minimize(f.sent, async (candidate) => statusName(await again(candidate)) === code) : f.sent;
  const message = f.outcome.ok ? '' : ` "${f.outcome.message.slice(0, 120)}"`;
  return `${f.req.method}(${render(small, 0, new Set(world.secrets))}) as ${f.req.caller} → ${code}${message}`;
}

/** Secrets the server handed out during the fuzz (new payers' and merchants' keys), for the log scan. */
function collectSecrets(req: FuzzRequest, outcome: Outcome, secrets: Set<string>): void {
  if (!outcome.ok) return;
  const v = outcome.value as { apiKey?: string; payerToken?: string; verificationSecretBase32?: string; payNumber?: string };
  for (const s of [v.apiKey, v.payerToken, v.verificationSecretBase32, v.payNumber]) if (typeof s === 'string' && s.length >= 8) secrets.add(s);
  const input = req.input as { pin?: string; password?: string };
  if (req.method === 'setPin' && typeof input.pin === 'string' && input.pin.length >= 8) secrets.add(input.pin);
  if (req.method === 'setPassword' && typeof input.password === 'string' && input.password.length >= 8) secrets.add(input.password);
}

// ------------------------------------------------------------------------------ HTTP/2 frames

async function fuzzFrames(adminKey: string, server: Server, counts: Record<string, number>, violations: string[]): Promise<void> {
  const ports: [string, number, ('grpc' | 'connect')[]][] = [
    ['gRPC port (grpc-js)', server.grpcPort, ['grpc']],
    ['Connect port (connect-node)', server.connectPort, ['grpc', 'connect']],
  ];
  let cases = 0;
  for (const [name, port, protocols] of ports) {
    for (const c of frameCases(adminKey, protocols)) {
      const answer = await sendRaw(port, c);
      cases += 1;
      const problem = judgeFrame(c, answer);
      if (problem !== undefined) violations.push(`HTTP/2 ${name}, ${c.name}: ${problem}; reproducer: ${describeCase(c)}`);
    }
    if ((await sendGarbageConnection(port)) !== 'closed') violations.push(`HTTP/2 ${name}: a connection of non-HTTP/2 bytes was not closed within the bound`);
    cases += 1;
  }
  counts.frameCases = cases;
}

// ------------------------------------------------------------------------------ money, liveness

/**
 * No money moved or held: the posted and pending balances of every account and the ledger totals
 * are what they were before the fuzz. The targets are still CHALLENGED (holding nothing: no money
 * is held before the payer consents) or DECLINED by wrong answers (closed with a zero marker).
 */
async function checkMoney(world: FuzzWorld, rpc: RpcClients, violations: string[], counts: Record<string, number>): Promise<void> {
  const env = { rpc, adminKey: world.adminKey };
  const after = await snapshotAccounts(env, [...world.accounts.keys()]);
  for (const p of world.live) {
    const r = await rpc.unary('grpc-js', PaymentService, 'getPayment', { paymentId: p.id }, { key: world.merchants[p.merchant].key });
    const state = r.ok ? (r.value as GetPaymentResponse).payment!.state : undefined;
    if (state !== PaymentState.CHALLENGED && state !== PaymentState.DECLINED) {
      violations.push(
        `money: target payment ${p.id} is ${state === undefined ? statusName(r) : PaymentState[state]} after the fuzz (only CHALLENGED or DECLINED can be explained)`,
      );
    }
    counts[`targets ${state === undefined ? 'unreadable' : PaymentState[state]}`] =
      (counts[`targets ${state === undefined ? 'unreadable' : PaymentState[state]}`] ?? 0) + 1;
  }
  for (const [id, before] of world.accounts) {
    const now = after.get(id)!;
    if (now.debitsPosted !== before.debitsPosted || now.creditsPosted !== before.creditsPosted) {
      violations.push(
        `money: account ${id} posted debits/credits moved from ${before.debitsPosted}/${before.creditsPosted} to ${now.debitsPosted}/${now.creditsPosted}`,
      );
    }
    if (now.debitsPending !== before.debitsPending)
      violations.push(`money: account ${id} reserves ${now.debitsPending}, before the fuzz ${before.debitsPending}`);
  }
  compareTotals(world.totals, await ledgerTotals(env), violations);
  counts.accountsChecked = world.accounts.size;
}

function compareTotals(before: LedgerTotals[], after: LedgerTotals[], violations: string[]): void {
  for (const b of before) {
    const a = after.find((l) => l.currency === b.currency);
    if (a === undefined) {
      violations.push(`money: ledger ${b.currency} missing from CheckBalanced after the fuzz`);
      continue;
    }
    if (a.debitsPosted !== b.debitsPosted || a.creditsPosted !== b.creditsPosted)
      violations.push(`money: ${b.currency} posted totals moved from ${b.debitsPosted}/${b.creditsPosted} to ${a.debitsPosted}/${a.creditsPosted}`);
    if (a.debitsPending !== b.debitsPending || a.creditsPending !== b.creditsPending) {
      violations.push(`money: ${b.currency} pending totals moved from ${b.debitsPending}/${b.creditsPending} to ${a.debitsPending}/${a.creditsPending}`);
    }
  }
}

/** Oversize messages sent at once with the well-formed ones, per wire; well-formed ones per oversize one. */
const collateralOversize = 6;
const collateralSmallPerOversize = 10;

/**
 * Oversize messages from one client must be refused (RESOURCE_EXHAUSTED) without failing the
 * well-formed RPCs that share its HTTP/2 connection (a proxy or a pooled client multiplexes many
 * callers on one connection).
 */
async function checkOversizeCollateral(rpc: RpcClients, adminKey: string, violations: string[]): Promise<void> {
  for (const wire of ['grpc-js', 'connect'] as const) {
    const shared = rpc.isolated();
    try {
      const big = Array.from({ length: collateralOversize }, () =>
        shared.unary(wire, LedgerService, 'checkBalanced', { currencies: [oversizeString] }, { key: adminKey }),
      );
      const small = Array.from({ length: collateralOversize * collateralSmallPerOversize }, () =>
        shared.unary(wire, LedgerService, 'checkBalanced', {}, { key: adminKey }),
      );
      const [bigOutcomes, smallOutcomes] = await Promise.all([Promise.all(big), Promise.all(small)]);
      const refusedWrongly = bigOutcomes.filter((o) => o.ok || o.code !== Code.ResourceExhausted);
      const failed = smallOutcomes.filter((o) => !o.ok);
      if (failed.length > 0 || refusedWrongly.length > 0) {
        const sample = [...failed, ...refusedWrongly].slice(0, 1).map((o) => `${statusName(o)}${o.ok ? '' : ` "${o.message.slice(0, 80)}"`}`);
        violations.push(
          `${wire === 'connect' ? 'Connect port' : 'gRPC port'}: ${collateralOversize} oversize messages (over 4 MiB) sent on one HTTP/2 connection together with ${small.length} well-formed CheckBalanced calls: ` +
            `${failed.length} well-formed calls failed and ${refusedWrongly.length} oversize ones were not answered RESOURCE_EXHAUSTED (e.g. ${sample.join('')}); reproducer: concurrent LedgerService.CheckBalanced({currencies: [<4 MiB + 1 KiB string>]}) and CheckBalanced({}) on one ${wire} connection`,
        );
      }
    } finally {
      shared.close();
    }
  }
}

/**
 * A deposit of 2^64-1 onto an account that holds money would leave a balance no API field can
 * carry ("a balance above 2^64-1 is an invariant violation", ledger.proto): it must be refused.
 * Run last, because an accepted one leaves the account and the ledger totals unreadable.
 */
async function checkOverflowDeposit(world: FuzzWorld, rpc: RpcClients, violations: string[]): Promise<void> {
  const accountId = world.merchants.A.account;
  const amount = (1n << 64n) - 1n;
  const r = await rpc.unary(
    'grpc-js',
    LedgerService,
    'fundAccount',
    { idempotencyKey: freshKey('overflow'), accountId, amount, currency: 'USD', reference: 'overflow' },
    { key: world.adminKey },
  );
  if (!r.ok && (r.code === Code.FailedPrecondition || r.code === Code.InvalidArgument)) return;
  const read = await rpc.unary('grpc-js', LedgerService, 'getAccount', { accountId }, { key: world.adminKey });
  const totals = await rpc.unary('grpc-js', LedgerService, 'checkBalanced', {}, { key: world.adminKey });
  violations.push(
    `FundAccount of 2^64-1 (${amount}) onto an account holding ${world.accounts.get(accountId)?.creditsPosted ?? '?'} was answered ${statusName(r)}${r.ok ? '' : ` "${r.message.slice(0, 140)}"`}, expected FAILED_PRECONDITION or INVALID_ARGUMENT; ` +
      `afterwards GetAccount answers ${statusName(read)} and CheckBalanced ${statusName(totals)}; reproducer: LedgerService.FundAccount({accountId: <merchant payee account with a balance>, amount: 18446744073709551615, currency: "USD"}) as operator`,
  );
}

async function checkAlive(server: Server, rpc: RpcClients, adminKey: string, violations: string[]): Promise<void> {
  if (crashed(server)) {
    violations.push(`the fuzz server process died (exit ${server.child.exitCode}, signal ${server.child.signalCode})`);
    return;
  }
  const health = await healthCheck(server.grpcPort, '').catch((e: unknown) => ({ code: -1, status: String(e) }));
  if (health.code !== grpc.status.OK || health.status !== 'SERVING')
    violations.push(`after the fuzz the gRPC port's health check answered ${JSON.stringify(health)}`);
  const viaConnect = await rpc.unary('connect', LedgerService, 'checkBalanced', {}, { key: adminKey });
  if (!viaConnect.ok) violations.push(`after the fuzz the Connect port answered CheckBalanced with ${codeLabel(viaConnect.code as Code)}`);
}

async function stopServer(server: Server): Promise<string | undefined> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return undefined;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), serverStopMsMax);
  const { code, signal } = await server.exit;
  clearTimeout(timer);
  return code === 0 ? undefined : `the fuzz server did not stop cleanly on SIGTERM (exit ${code}, signal ${signal})`;
}
