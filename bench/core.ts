/**
 * The authorization core without the network: `PaymentsService.createMany` and `confirmMany`
 * (what BatchCreatePayments and BatchConfirmPayments run after decoding) called in this process
 * on the production composition (`createApp`: coalescing store and ledger, directory cache,
 * built-in policy), batch after batch, and this process's CPU per authorization measured around
 * those two calls only (the payer's side — deriving the second codes — is left out). No gRPC, no
 * load generator on the same cores: a steadier figure for the domain's share of
 * `batch_server_us_per_auth` than the full bench, for profiling and A/B runs of one change.
 *
 *   npx tsx bench/core.ts                         # memory store, embedded ledger
 *   npx tsx bench/core.ts --redis-url redis://127.0.0.1:6379 --batches 30
 *   npx tsx bench/core.ts --profile /tmp/core     # CPU and allocation profiles of the counted batches:
 *                                                 # /tmp/core.cpuprofile, /tmp/core.heapprofile (bench/profile-top.ts reads them)
 *
 * On Redis (without `--unary`) it also reports `storeClientMicrosPerAuth`: this process's CPU inside the Redis store's
 * create, confirm and commit calls (building the script calls, ioredis, decoding the replies; the
 * batch waits on them alone, so nothing else runs meanwhile), per counted authorization — a
 * steadier figure than the whole for A/B runs of a change to the store's client side.
 *
 * `--unary C`: each batch's payments go through `PaymentsService.create` and `confirm` (what
 * CreatePayment and ConfirmPayment run), one payment at a time on each of C concurrent loops, the
 * payer confirming as ConfirmPayment's caller does; the process's CPU is counted around the whole
 * batch, less the payers' side (each second code's derivation, timed alone) — the domain's share
 * of a unary authorization, where concurrent calls coalesce as they do in the server.
 *
 * `--capture DIR` (with `--redis-url`, batches): the bytes of the step scripts' calls (createAll,
 * confirm, commit) of the first counted batch, as sent, in `DIR/NN-<script>.resp`, for
 * bench/lua-replay.ts (the scripts timed on exactly these calls, without this process or gRPC).
 *
 * Bounds: `--batches` (default 40) batches of `--batch` (default 1000, at most 1000) payments
 * over `--payers` (default 200) payers; the first `--warmup` (default 10) batches are not counted;
 * `--unary` at most `unaryConcurrencyMax` (1000) loops.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Command, Redis } from 'ioredis';
import { deriveSecondCode } from '../authz/codes/challenge.js';
import { base32Decode } from '../authz/codes/secret.js';
import type { Caller, Payment } from '../authz/model.js';
import type { CodeDelivery, Notifier, PasswordCall } from '../authz/notifier.js';
import type { CreatePaymentInput } from '../authz/steps/create-prepare.js';
import { commitLua } from '../authz/store/redis/commit-lua.js';
import { confirmLua } from '../authz/store/redis/confirm-lua.js';
import { createAllLua } from '../authz/store/redis/create-lua.js';
import { RedisPaymentStore } from '../authz/store/redis/redis-store.js';
import { createApp } from '../services/app.js';
import { loadConfig } from '../services/config.js';
import { benchLimits } from './options.js';
import { WindowProfiler } from './profiler.js';

/** Every first code the service sends, by payment id: the payers' terminals read them here. */
class CapturingNotifier implements Notifier {
  readonly channel = 'CONSOLE';
  readonly codes = new Map<string, string>();
  async deliverFirstCode(delivery: CodeDelivery): Promise<void> {
    this.codes.set(delivery.paymentId, delivery.firstCode);
  }
  async callForPassword(call: PasswordCall): Promise<void> {
    throw new Error(`assertion failed: the core bench does not simulate voice calls (payment ${call.paymentId})`);
  }
}

const currency = 'USD';
/** Each payer's deposit, minor units: far more than the run spends. */
const fundingMinor = 1_000_000_000_000n;
/** `--unary` loops, at most. */
const unaryConcurrencyMax = 1000;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'redis-url': { type: 'string' },
      batches: { type: 'string', default: '40' },
      warmup: { type: 'string', default: '10' },
      batch: { type: 'string', default: '1000' },
      payers: { type: 'string', default: '200' },
      profile: { type: 'string' },
      unary: { type: 'string' },
      capture: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(usage);
    return;
  }
  const batches = Number(values.batches);
  const warmup = Number(values.warmup);
  const batchSize = Number(values.batch);
  const payerCount = Number(values.payers);
  const unary = values.unary === undefined ? undefined : Number(values.unary);
  if (![batches, warmup, batchSize, payerCount].every((n) => Number.isInteger(n) && n > 0) || batchSize > 1000 || warmup >= batches)
    throw new RangeError('--batches, --warmup, --batch (≤ 1000) and --payers must be positive integers, --warmup below --batches');
  if (unary !== undefined && !(Number.isInteger(unary) && unary > 0 && unary <= unaryConcurrencyMax))
    throw new RangeError(`--unary must be an integer from 1 to ${unaryConcurrencyMax}`);
  if (values.capture !== undefined && (values['redis-url'] === undefined || unary !== undefined))
    throw new RangeError("--capture needs --redis-url and batches (not --unary): it saves the Redis step scripts' calls of a batch");
  const capture = values.capture === undefined ? undefined : captureStepCalls(values.capture);
  // Not with --unary: concurrent loops' work would fall inside each other's store calls.
  const storeCpu = values['redis-url'] === undefined || unary !== undefined ? undefined : timeStoreSteps();
  const notifier = new CapturingNotifier();
  const config = {
    ...loadConfig({}),
    dataDir: '/nonexistent',
    masterKey: randomBytes(32).toString('base64'),
    adminKey: randomBytes(24).toString('base64url'),
    redisUrl: values['redis-url'],
    logLevel: 'warn',
  };
  const app = await createApp({
    config,
    memoryLedger: true,
    memoryDirectory: true,
    memoryStore: values['redis-url'] === undefined,
    notifier,
    limits: benchLimits,
  });
  try {
    const tag = randomBytes(4).toString('hex');
    const run = randomInt(100, 1000); // phones are unique per directory: a shared Redis keeps earlier runs' payers
    const m = await app.enrollment.enrollMerchant({ idempotencyKey: `${tag}-m`, name: 'Core bench merchant', currencies: [currency], feeBasisPoints: 25 });
    const merchant = m.merchant;
    const payers: { id: string; secret: Buffer }[] = [];
    for (let i = 0; i < payerCount; i++) {
      const e = await app.enrollment.enrollPayer({
        idempotencyKey: `${tag}-p${i}`,
        phone: `+19${run}${String(i).padStart(6, '0')}`,
        displayName: `Core payer ${i}`,
        currencies: [currency],
        policies: { [currency]: { noFactorBelow: 0n, oneFactorUpTo: 10n ** 15n, defaultFactor: 'SECOND_CODE', strongFactors: ['SECOND_CODE'] } },
      });
      await app.enrollment.fund({ idempotencyKey: `${tag}-f${i}`, accountId: e.payer.accounts[currency]!, amount: fundingMinor, currency });
      payers.push({ id: e.payer.id, secret: base32Decode(e.secretBase32!) });
    }
    const profiler = values.profile === undefined ? undefined : new WindowProfiler();
    let cpuMicros = 0;
    let counted = 0;
    let succeeded = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    /** BatchCreatePayments then BatchConfirmPayments (the merchant submits the second codes): CPU µs of the two calls. */
    const batchOf = async (inputs: CreatePaymentInput[], secondCode: (p: Payment, i: number) => string): Promise<number> => {
      const c0 = process.cpuUsage();
      const created = await app.payments.createMany(merchant, inputs);
      const c1 = process.cpuUsage(c0);
      const confirms = created.map((outcome, i) => {
        if (outcome.status !== 'fulfilled' || outcome.value.state !== 'CHALLENGED') throw new Error(`create ${i}: ${describe(outcome)}`);
        return {
          paymentId: outcome.value.id,
          idempotencyKey: `${inputs[i]!.idempotencyKey}c`,
          proof: { kind: 'second_code' as const, secondCode: secondCode(outcome.value, i) },
        };
      });
      const c2 = process.cpuUsage();
      const confirmed = await app.payments.confirmMany({ kind: 'merchant', merchantId: merchant.id }, confirms);
      const c3 = process.cpuUsage(c2);
      for (const [i, outcome] of confirmed.entries()) {
        if (outcome.status !== 'fulfilled' || outcome.value.state !== 'SUCCEEDED') throw new Error(`confirm ${i}: ${describe(outcome)}`);
      }
      return c1.user + c1.system + c3.user + c3.system;
    };
    /** CreatePayment then ConfirmPayment by the payer, one payment at a time on each of `loops` loops: CPU µs of the whole, less the second codes' derivation. */
    const unaryOf = async (
      inputs: CreatePaymentInput[],
      loops: number,
      payerOf: (i: number) => Caller,
      secondCode: (p: Payment, i: number) => string,
    ): Promise<number> => {
      let next = 0;
      let deriving = 0;
      const loop = async () => {
        for (let i = next++; i < inputs.length; i = next++) {
          const p = await app.payments.create(merchant, inputs[i]!);
          if (p.state !== 'CHALLENGED') throw new Error(`create ${i}: state ${p.state}`);
          const d0 = process.cpuUsage();
          const code = secondCode(p, i);
          const d = process.cpuUsage(d0);
          deriving += d.user + d.system;
          const done = await app.payments.confirm(payerOf(i), p.id, `${inputs[i]!.idempotencyKey}c`, { kind: 'second_code', secondCode: code });
          if (done.state !== 'SUCCEEDED') throw new Error(`confirm ${i}: state ${done.state}`);
        }
      };
      const c0 = process.cpuUsage();
      await Promise.all(Array.from({ length: loops }, loop));
      const c = process.cpuUsage(c0);
      return c.user + c.system - deriving;
    };
    for (let b = 0; b < batches; b++) {
      /** The payer of the batch's i-th payment: the payers in turn across batches. */
      const payerAt = (i: number) => payers[(b * batchSize + i) % payers.length]!;
      const inputs: CreatePaymentInput[] = [];
      for (let i = 0; i < batchSize; i++) {
        const payer = payerAt(i);
        inputs.push({
          idempotencyKey: `${tag}-${b}-${i}`,
          payerId: payer.id,
          payeeAccountId: '',
          amount: BigInt(100 + ((b * 7 + i) % 900)),
          currency,
          description: '',
          channel: 'MERCHANT',
          requestedFactors: [],
        });
      }
      const secondCode = (p: { id: string; amount: bigint; payeeAccountId: string }, i: number): string => {
        const firstCode = notifier.codes.get(p.id);
        if (firstCode === undefined) throw new Error(`no first code was sent for payment ${p.id}`);
        notifier.codes.delete(p.id);
        const payer = payerAt(i);
        return deriveSecondCode(payer.secret, { firstCode, amount: p.amount, currency, payeeAccountId: p.payeeAccountId });
      };
      if (b === warmup) capture?.start();
      const used =
        unary === undefined ? await batchOf(inputs, secondCode) : await unaryOf(inputs, unary, (i) => ({ kind: 'payer', payerId: payerAt(i).id }), secondCode);
      if (b === warmup) capture?.stop();
      if (b === warmup - 1) {
        await profiler?.start();
        storeCpu?.reset();
      }
      if (b >= warmup) {
        cpuMicros += used;
        counted += batchSize;
        succeeded += batchSize;
      }
    }
    const heapAfter = process.memoryUsage().heapUsed;
    if (profiler !== undefined) await profiler.stop(`${values.profile!}.cpuprofile`);
    console.log(
      JSON.stringify({
        store: values['redis-url'] === undefined ? 'memory' : 'redis',
        mode: unary === undefined ? 'batch' : `unary, ${unary} loops`,
        authorizations: counted,
        succeeded,
        cpuMicrosPerAuth: Math.round((cpuMicros / counted) * 10) / 10,
        heapGrowthMB: Math.round((heapAfter - heapBefore) / 1e5) / 10,
        ...(storeCpu === undefined ? {} : { storeClientMicrosPerAuth: storeCpu.perAuth(counted) }),
      }),
    );
  } finally {
    await app.close();
  }
}

const usage = `npx tsx bench/core.ts [options]: the authorization core in this process (no gRPC), CPU per authorization

  --redis-url URL   the payment store in this Redis (default: the memory store)
  --batches N       batches run (default 40); --warmup W of them not counted (default 10)
  --batch B         payments per batch (default 1000, at most 1000); --payers P (default 200)
  --unary C         one payment at a time on C loops (at most ${unaryConcurrencyMax}) instead of batches
  --profile PATH    CPU and allocation profiles of the counted batches: PATH.cpuprofile, PATH.heapprofile
  --capture DIR     with --redis-url: the step scripts' calls of the first counted batch, as sent, for
                    bench/lua-replay.ts (DIR/NN-<script>.resp)
`;

/** The step scripts a capture keeps, by SHA-1 (what EVALSHA names). */
const capturedScripts = new Map(
  Object.entries({ createAll: createAllLua, confirm: confirmLua, commit: commitLua }).map(([name, lua]) => [
    createHash('sha1').update(lua).digest('hex'),
    name,
  ]),
);

/**
 * Between start and stop, every step script call this process sends (an EVALSHA written by
 * redis-scripts.ts: its `toWritable()` is the whole command), saved in order to `dir` at stop.
 */
function captureStepCalls(dir: string): { start(): void; stop(): void } {
  const calls: { name: string; wire: Buffer }[] = [];
  let on = false;
  const proto = Redis.prototype as unknown as { sendCommand(command: Command, stream?: unknown): unknown };
  const send = proto.sendCommand;
  proto.sendCommand = function (this: unknown, command: Command, stream?: unknown) {
    const name = on && command.name === 'evalsha' ? capturedScripts.get(String(command.args[0])) : undefined;
    if (name !== undefined) calls.push({ name, wire: command.toWritable(undefined as never) as Buffer });
    return send.call(this, command, stream);
  };
  return {
    start: () => void (on = true),
    stop: () => {
      on = false;
      proto.sendCommand = send;
      if (calls.length === 0) throw new Error('--capture: the batch sent no step script call');
      mkdirSync(dir, { recursive: true });
      for (const [i, call] of calls.entries()) writeFileSync(join(dir, `${String(i + 1).padStart(2, '0')}-${call.name}.resp`), call.wire);
    },
  };
}

/** CPU of this process inside RedisPaymentStore's create, confirm and commit, µs, since the last reset. */
function timeStoreSteps(): { reset(): void; perAuth(auths: number): Record<string, number> } {
  const micros = { create: 0, confirm: 0, commit: 0 };
  const proto = RedisPaymentStore.prototype as unknown as Record<keyof typeof micros, (...args: unknown[]) => Promise<unknown>>;
  for (const name of Object.keys(micros) as (keyof typeof micros)[]) {
    const step = proto[name]!;
    proto[name] = async function (this: unknown, ...args: unknown[]) {
      const start = process.cpuUsage();
      try {
        return await step.apply(this, args);
      } finally {
        const used = process.cpuUsage(start);
        micros[name] += used.user + used.system;
      }
    };
  }
  return {
    reset: () => void Object.assign(micros, { create: 0, confirm: 0, commit: 0 }),
    perAuth: (auths) => {
      const round = (n: number) => Math.round((n / auths) * 10) / 10;
      return {
        create: round(micros.create),
        confirm: round(micros.confirm),
        commit: round(micros.commit),
        total: round(micros.create + micros.confirm + micros.commit),
      };
    },
  };
}

function describe(outcome: PromiseSettledResult<{ state: string }>): string {
  return outcome.status === 'fulfilled' ? `state ${outcome.value.state}` : String(outcome.reason);
}

main().catch((error: unknown) => {
  if (error instanceof RangeError) {
    process.stderr.write(`bench/core: ${error.message}\n`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
