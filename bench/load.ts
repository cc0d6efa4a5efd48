/**
 * The bench's load generator: its own process (forked by bench/main.ts, IPC for control), one
 * HTTP/2 connection to the server's gRPC port (with `--workers N`, N connections: the cluster
 * primary hands each connection to one worker, so the closed loops take them in turn). It enrolls and funds the payers and merchants
 * (`setup`), then runs one scenario at a time as a closed loop: `start` (load on, nothing
 * recorded: warm-up), `measure` (a fresh window), `end` (window closed, no new work, in-flight
 * work drained, the window's stats returned).
 *
 * It plays every payer's terminal: the secret returned by EnrollPayer stays here, first codes
 * come over the code feed (bench/code-feed.ts), second codes are derived with
 * `deriveSecondCode` exactly as a token would.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { toBinary } from '@bufbuild/protobuf';
import type { CallOptions } from '@connectrpc/connect';
import { deriveSecondCode } from '../authz/codes/challenge.js';
import { base32Decode } from '../authz/codes/secret.js';
import { Factor, type Payment, PaymentState } from '../gen/countersign/v1/common_pb.js';
import { GetPaymentResponseSchema } from '../gen/countersign/v1/payments_pb.js';
import { benchCurrencyCode, type Registration } from './check.js';
import { auth, type Clients, grpcStatusName, openClients, statusName } from './clients.js';
import { CodeFeedReader } from './code-feed.js';
import { announce, serveIpc } from './ipc.js';
import type { ClientKind } from './options.js';
import { WindowProfiler } from './profiler.js';
import { Recorder, type WindowStats } from './stats.js';

export const benchCurrency = benchCurrencyCode;
/** Payment amounts are uniform in this range, minor units (so every payment has a 1 % fee > 0). */
export const amountMinMinor = 100;
export const amountMaxMinor = 9_999;
/** Deposit per payer, minor units: far above what any run can spend, so no payment fails for funds. */
export const fundingPerPayerMinor = 1_000_000_000_000n;
/** The merchants' fee, basis points. */
export const merchantFeeBasisPoints = 100;
/** Enrollment and funding calls in flight during setup. */
const setupConcurrency = 64;

export interface SetupRequest {
  grpcPort: number;
  /** The server's code feed, or every worker's. */
  feedPorts: number[];
  /** HTTP/2 connections to the gRPC port: 1, or one per worker (`--workers N`). */
  connections: number;
  adminKey: string;
  payers: number;
  merchants: number;
  client: ClientKind;
}

export interface SetupResult {
  registration: Registration;
  echoPaymentId: string;
  /** The server's GetPaymentResponse for the echo payment, protobuf binary, base64: what the bare server answers. */
  echoResponseBase64: string;
  seconds: number;
}

export interface StartRequest {
  /** bare: the echo loop against the bare grpc-js server at `barePort`, on clients of its own. */
  scenario: 'echo' | 'bare' | 'unary' | 'batch';
  concurrency: number;
  batch: number;
  barePort?: number;
  /** Authorizations per second to offer (paced); undefined: as fast as the closed loop goes. */
  rate?: number;
}

/** unary-seq: `count` authorizations one after another (one in flight); recorded or not. */
export interface SequenceRequest {
  count: number;
  record: boolean;
  /** Start again at the payers the previous sequence started with (their second authorization: warm caches). */
  rewind?: boolean;
}

export interface Progress {
  recording: boolean;
  authorizations: number;
  rpcs: number;
  /** Authorizations answered SUCCEEDED since setup began, recorded or not (warm-ups, setup's one). */
  succeededTotal: number;
}

interface SimPayer {
  id: string;
  account: string;
  secret: Buffer;
  auth: CallOptions;
}
interface SimMerchant {
  id: string;
  account: string;
  auth: CallOptions;
}

class LoadGenerator {
  /** The first connection: setup's, and the only one without workers. */
  private clients!: Clients;
  /** Every connection (`clients` first); loops and authorizations take them in turn. */
  private connections: Clients[] = [];
  private connectionCursor = 0;
  private succeededTotal = 0;
  private clientKind: ClientKind = 'grpc-js';
  /** The bare scenario's clients (same kind as `clients`), open while it runs. */
  private bareClients: Clients | undefined;
  private feed!: CodeFeedReader;
  private payers: SimPayer[] = [];
  private merchants: SimMerchant[] = [];
  private echoPaymentId = '';
  private readonly tag = `b${randomInt(100, 1000)}${Date.now().toString(36)}`;
  private sequence = 0;
  /** Where the last unary-seq pass started in the payer list (`rewind`). */
  private sequenceStart = 0;
  private payerCursor = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  readonly recorder = new Recorder();

  async setup(req: SetupRequest): Promise<SetupResult> {
    const started = performance.now();
    this.clientKind = req.client;
    this.clients = openClients(req.client, req.grpcPort);
    this.connections = [this.clients, ...Array.from({ length: req.connections - 1 }, () => openClients(req.client, req.grpcPort))];
    this.feed = await CodeFeedReader.connect(req.feedPorts);
    const admin = auth(req.adminKey);
    for (let i = 0; i < req.merchants; i++) {
      const m = await this.clients.enrollment.enrollMerchant(
        { idempotencyKey: `${this.tag}-m${i}`, name: `Bench merchant ${i}`, currencies: [benchCurrency], feeBasisPoints: merchantFeeBasisPoints },
        admin,
      );
      this.merchants.push({ id: m.merchantId, account: m.payeeAccountIds[benchCurrency]!, auth: auth(m.apiKey) });
    }
    const runNumber = randomInt(100, 1000);
    this.payers = await pool(req.payers, setupConcurrency, async (i) => {
      const enrolled = await this.clients.enrollment.enrollPayer(
        {
          idempotencyKey: `${this.tag}-p${i}`,
          phone: `+19${runNumber}${String(i).padStart(6, '0')}`,
          displayName: `Bench payer ${i}`,
          currencies: [benchCurrency],
          // Every payment needs the second code: nothing below 0, one factor up to 10^15.
          policies: [
            {
              currency: benchCurrency,
              noFactorBelow: 0n,
              oneFactorUpTo: 1_000_000_000_000_000n,
              oneFactor: Factor.SECOND_CODE,
              moreFactors: [Factor.SECOND_CODE],
            },
          ],
        },
        admin,
      );
      const payer = enrolled.payer!;
      const account = payer.prepaidAccountIds[benchCurrency]!;
      await this.clients.ledger.fundAccount(
        { idempotencyKey: `${this.tag}-f${i}`, accountId: account, amount: fundingPerPayerMinor, currency: benchCurrency },
        admin,
      );
      return { id: payer.id, account, secret: base32Decode(enrolled.verificationSecretBase32), auth: auth(enrolled.payerToken) };
    });
    this.echoPaymentId = await this.echoTarget();
    const echoResponse = await this.clients.payments.getPayment({ paymentId: this.echoPaymentId }, this.merchants[0]!.auth);
    return {
      registration: {
        currency: benchCurrency,
        fundingPerPayer: fundingPerPayerMinor,
        payers: this.payers.map((p) => ({ id: p.id, account: p.account })),
        merchants: this.merchants.map((m) => ({ id: m.id, account: m.account })),
      },
      echoPaymentId: this.echoPaymentId,
      echoResponseBase64: Buffer.from(toBinary(GetPaymentResponseSchema, echoResponse)).toString('base64'),
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** One authorized payment for the echo scenario to read. */
  private async echoTarget(): Promise<string> {
    const ok = await this.authorizeOnce(this.payers[0]!, this.merchants[0]!, this.clients);
    if (ok === undefined) throw new Error('setup: the first authorization failed');
    return ok;
  }

  start(req: StartRequest): Record<string, never> {
    if (this.running) throw new Error('a scenario is already running');
    this.running = true;
    const pacer = req.rate === undefined ? undefined : new Pacer(req.rate);
    if (req.scenario === 'bare') {
      if (req.barePort === undefined) throw new Error('assertion failed: bare without barePort');
      this.bareClients = openClients(this.clientKind, req.barePort);
    }
    const bare = this.bareClients;
    const loop =
      req.scenario === 'echo'
        ? () => this.echoLoop(this.nextConnection())
        : req.scenario === 'bare'
          ? () => this.echoLoop(bare!)
          : req.scenario === 'unary'
            ? () => this.unaryLoop(pacer)
            : () => this.batchLoop(req.batch);
    this.loops = Array.from({ length: req.concurrency }, loop);
    return {};
  }

  async end(): Promise<WindowStats> {
    const stats = this.recorder.stop();
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
    this.bareClients?.close();
    this.bareClients = undefined;
    return stats;
  }

  /**
   * `count` authorizations strictly one after another on one connection: each starts when the
   * previous one has answered, so nothing on the server can coalesce them. Recorded as a window
   * of its own when `record` (its stats returned), else a warm-up (nothing recorded).
   */
  async runSequence(req: SequenceRequest): Promise<WindowStats | Record<string, never>> {
    if (this.running) throw new Error('a scenario is already running');
    this.running = true;
    try {
      if (req.rewind === true) this.payerCursor = this.sequenceStart;
      else this.sequenceStart = this.payerCursor;
      if (req.record) this.recorder.start();
      for (let i = 0; i < req.count; i++) await this.authorizeOnce(this.nextPayer(), this.nextMerchant(), this.nextConnection());
      return req.record ? this.recorder.stop() : {};
    } finally {
      this.running = false;
    }
  }

  progress(): Progress {
    return {
      recording: this.recorder.recording,
      authorizations: this.recorder.authorizations,
      rpcs: this.recorder.rpcs,
      succeededTotal: this.succeededTotal,
    };
  }

  /** The connections in turn (always `clients` when there is one). */
  private nextConnection(): Clients {
    const clients = this.connections[this.connectionCursor]!;
    this.connectionCursor = (this.connectionCursor + 1) % this.connections.length;
    return clients;
  }

  private nextPayer(): SimPayer {
    const payer = this.payers[this.payerCursor]!;
    this.payerCursor = (this.payerCursor + 1) % this.payers.length;
    return payer;
  }

  private nextMerchant(): SimMerchant {
    return this.merchants[this.sequence % this.merchants.length]!;
  }

  private newKey(kind: string): string {
    return `${this.tag}-${kind}${this.sequence++}`;
  }

  /** GetPayment of the echo payment, closed loop; on the project's server (echo) or the bare one (bare). */
  private async echoLoop(clients: Clients): Promise<void> {
    const merchant = this.merchants[0]!;
    const { recorder } = this;
    while (this.running) {
      const t = performance.now();
      try {
        await clients.payments.getPayment({ paymentId: this.echoPaymentId }, merchant.auth);
        recorder.rpc('GetPayment', t);
      } catch (error) {
        recorder.failed('GetPayment', t, statusName(error));
      }
    }
  }

  private async unaryLoop(pacer: Pacer | undefined): Promise<void> {
    const clients = this.nextConnection();
    while (this.running) {
      if (pacer !== undefined) await pacer.next();
      if (!this.running) break;
      await this.authorizeOnce(this.nextPayer(), this.nextMerchant(), clients);
    }
  }

  /** CreatePayment, the first code from the feed, the derived second code, ConfirmPayment. The payment id when SUCCEEDED. */
  private async authorizeOnce(payer: SimPayer, merchant: SimMerchant, clients: Clients): Promise<string | undefined> {
    const { recorder } = this;
    const amount = BigInt(randomInt(amountMinMinor, amountMaxMinor + 1));
    const key = this.newKey('u');
    let t = performance.now();
    let payment: Payment;
    try {
      const created = await clients.payments.createPayment(
        { idempotencyKey: key, payer: { case: 'payerId', value: payer.id }, amount, currency: benchCurrency },
        merchant.auth,
      );
      recorder.rpc('CreatePayment', t);
      payment = created.payment!;
    } catch (error) {
      recorder.failed('CreatePayment', t, statusName(error));
      return undefined;
    }
    if (payment.state !== PaymentState.CHALLENGED) {
      recorder.itemFailed(`CREATED_${PaymentState[payment.state]}`);
      return undefined;
    }
    let secondCode: string;
    try {
      const firstCode = await this.feed.take(payment.id);
      secondCode = deriveSecondCode(payer.secret, { firstCode, amount, currency: benchCurrency, payeeAccountId: payment.payeeAccountId });
    } catch (error) {
      recorder.itemFailed(statusName(error));
      return undefined;
    }
    t = performance.now();
    try {
      const confirmed = await clients.payer.confirmPayment(
        { idempotencyKey: `${key}c`, paymentId: payment.id, proof: { case: 'secondCode', value: secondCode } },
        payer.auth,
      );
      recorder.rpc('ConfirmPayment', t);
      if (confirmed.payment?.state === PaymentState.SUCCEEDED) {
        this.succeededTotal += 1;
        recorder.authorized();
        return payment.id;
      }
      recorder.itemFailed(`CONFIRMED_${PaymentState[confirmed.payment?.state ?? 0]}`);
    } catch (error) {
      recorder.failed('ConfirmPayment', t, statusName(error));
    }
    return undefined;
  }

  private async batchLoop(size: number): Promise<void> {
    const clients = this.nextConnection();
    while (this.running) await this.batchOnce(size, clients);
  }

  /** BatchCreatePayments of `size` items, their first codes, BatchConfirmPayments (M1c: the merchant submits the payers' codes). */
  private async batchOnce(size: number, clients: Clients): Promise<void> {
    const { recorder } = this;
    const merchant = this.nextMerchant();
    const items = Array.from({ length: size }, () => ({
      payer: this.nextPayer(),
      amount: BigInt(randomInt(amountMinMinor, amountMaxMinor + 1)),
      key: this.newKey('b'),
    }));
    let t = performance.now();
    let results: Awaited<ReturnType<typeof clients.payments.batchCreatePayments>>['results'];
    try {
      const res = await clients.payments.batchCreatePayments(
        {
          idempotencyKey: this.newKey('B'),
          items: items.map((i) => ({
            idempotencyKey: i.key,
            payer: { case: 'payerId' as const, value: i.payer.id },
            amount: i.amount,
            currency: benchCurrency,
          })),
        },
        merchant.auth,
      );
      recorder.rpc('BatchCreatePayments', t);
      results = res.results;
    } catch (error) {
      recorder.failed('BatchCreatePayments', t, statusName(error));
      return;
    }
    const confirms: { idempotencyKey: string; paymentId: string; secondCode: string }[] = [];
    await Promise.all(
      results.map(async (r) => {
        const item = items[r.index]!;
        if (r.outcome.case !== 'payment') return recorder.itemFailed(`CREATE_${grpcStatusName(r.outcome.value?.code ?? 2)}`);
        const payment = r.outcome.value;
        if (payment.state !== PaymentState.CHALLENGED) return recorder.itemFailed(`CREATED_${PaymentState[payment.state]}`);
        try {
          const firstCode = await this.feed.take(payment.id);
          const secondCode = deriveSecondCode(item.payer.secret, {
            firstCode,
            amount: item.amount,
            currency: benchCurrency,
            payeeAccountId: payment.payeeAccountId,
          });
          confirms.push({ idempotencyKey: `${item.key}c`, paymentId: payment.id, secondCode });
        } catch (error) {
          recorder.itemFailed(statusName(error));
        }
      }),
    );
    if (confirms.length === 0) return;
    t = performance.now();
    try {
      const res = await clients.payments.batchConfirmPayments({ idempotencyKey: this.newKey('C'), items: confirms }, merchant.auth);
      recorder.rpc('BatchConfirmPayments', t);
      for (const r of res.results) {
        if (r.outcome.case === 'payment' && r.outcome.value.state === PaymentState.SUCCEEDED) {
          this.succeededTotal += 1;
          recorder.authorized();
        } else if (r.outcome.case === 'payment') recorder.itemFailed(`CONFIRMED_${PaymentState[r.outcome.value.state]}`);
        else recorder.itemFailed(`CONFIRM_${grpcStatusName(r.outcome.value?.code ?? 2)}`);
      }
    } catch (error) {
      recorder.failed('BatchConfirmPayments', t, statusName(error));
    }
  }

  close(): void {
    this.feed?.close();
    for (const clients of this.connections) clients.close();
  }
}

/** Spaces starts `1/rate` seconds apart (open-loop pacing within the closed loop's concurrency). */
class Pacer {
  private nextAt = performance.now();
  private readonly intervalMs: number;
  constructor(rate: number) {
    this.intervalMs = 1000 / rate;
  }
  async next(): Promise<void> {
    const now = performance.now();
    // Never bank more than one interval of idle time: no burst after a stall.
    const at = Math.max(this.nextAt, now - this.intervalMs);
    this.nextAt = at + this.intervalMs;
    if (at > now) await sleep(at - now);
  }
}

/** Runs `run(0..count-1)` with at most `concurrency` in flight; results in index order. */
async function pool<T>(count: number, concurrency: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await run(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

const generator = new LoadGenerator();
const profiler = new WindowProfiler();
serveIpc({
  'profile-start': async () => (await profiler.start(), {}),
  'profile-stop': (body: { file: string }) => profiler.stop(body.file),
  setup: (req: SetupRequest) => generator.setup(req),
  start: (req: StartRequest) => generator.start(req),
  sequence: (req: SequenceRequest) => generator.runSequence(req),
  measure: () => (generator.recorder.start(), {}),
  end: () => generator.end(),
  progress: () => generator.progress(),
  close: () => (generator.close(), setImmediate(() => process.exit(0)), {}),
});
announce('ready', { pid: process.pid });
