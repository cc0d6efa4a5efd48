/**
 * The `ledger` scenario: transfers per second straight through the Ledger port, in batches of up
 * to 8189 events, in its own process (forked by bench/main.ts) on its own engine instance — the
 * money-movement ceiling the batch scenario is compared with.
 *
 * The transfers have a payment's shape: payer accounts and merchant accounts with the chart's
 * flags (prepaid: debits must not exceed credits, history; merchants: history), pending
 * transfers payer → merchant with a reservation's timeout, each posted in the next batch. A batch
 * is the posts of the previous batch's pendings plus about B/2 new pendings (as the two-phase
 * row of bench/ledger.ts). `transfersPerSecond` counts pendings and posts, over the time spent
 * inside `createTransfers` in the measured window (building the events is not timed).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { AccountCode, accountFlagsFor, TransferCode } from '../ledger/chart.js';
import { EmbeddedLedger } from '../ledger/embedded/engine.js';
import { newId } from '../ledger/ids.js';
import { account, amountMax, eventBatchMax, type Transfer, TransferFlags, transfer } from '../ledger/model.js';
import type { Ledger } from '../ledger/port.js';
import { announce, serveIpc } from './ipc.js';
import type { LedgerKind } from './options.js';

export interface CeilingRequest {
  ledger: LedgerKind;
  tbAddresses: string[];
  tbClusterId: string;
  payers: number;
  merchants: number;
  batch: number;
  warmupMs: number;
  durationMs: number;
}

export interface CeilingResult {
  transfers: number;
  batches: number;
  /** Seconds inside createTransfers during the measured window. */
  seconds: number;
  /** Wall seconds of the measured window. */
  wallSeconds: number;
  transfersPerSecond: number;
  clientCpuMicros: number;
  ok: boolean;
  balanced: boolean;
  failures: string[];
}

/** USD's ledger number, as the server uses it. */
const ledgerId = 840;
/** A reservation's timeout, seconds: the challenge's 300 s plus 60 s grace, as the server sets it. */
const reservationTimeoutSeconds = 360;
const fundingAmount = 1n << 62n;
/** Deadline for one request to TigerBeetle during the bench, milliseconds. */
const tbRequestTimeoutMs = 30_000;

let progress = { transfers: 0, recording: false };

async function open(req: CeilingRequest): Promise<Ledger> {
  if (req.ledger === 'embedded') return EmbeddedLedger.open({});
  const { TigerBeetleLedger } = await import('../ledger/tigerbeetle.js');
  return TigerBeetleLedger.connect({ clusterId: BigInt(req.tbClusterId), addresses: req.tbAddresses, requestTimeoutMs: tbRequestTimeoutMs });
}

async function setupAccounts(ledger: Ledger, req: CeilingRequest): Promise<{ payers: bigint[]; merchants: bigint[]; funding: bigint }> {
  const funding = newId();
  const payers = Array.from({ length: req.payers }, () => newId());
  const merchants = Array.from({ length: req.merchants }, () => newId());
  const accounts = [
    account({ id: funding, ledger: ledgerId, code: AccountCode.funding, flags: accountFlagsFor[AccountCode.funding] }),
    ...payers.map((id) => account({ id, ledger: ledgerId, code: AccountCode.payerPrepaid, flags: accountFlagsFor[AccountCode.payerPrepaid] })),
    ...merchants.map((id) => account({ id, ledger: ledgerId, code: AccountCode.merchant, flags: accountFlagsFor[AccountCode.merchant] })),
  ];
  allOk('create accounts', await ledger.createAccounts(accounts));
  const deposits = payers.map((id) =>
    transfer({ id: newId(), debit_account_id: funding, credit_account_id: id, amount: fundingAmount, ledger: ledgerId, code: TransferCode.funding }),
  );
  allOk('fund payers', await ledger.createTransfers(deposits));
  return { payers, merchants, funding };
}

function allOk(what: string, results: readonly string[]): void {
  const bad = results.filter((r) => r !== 'ok');
  if (bad.length > 0) throw new Error(`${what}: ${bad.length} results not ok, first ${bad[0]}`);
}

async function run(req: CeilingRequest): Promise<CeilingResult> {
  const ledger = await open(req);
  try {
    const { payers, merchants, funding } = await setupAccounts(ledger, req);
    const pendingsPerBatch = Math.max(1, Math.floor(Math.min(req.batch, eventBatchMax) / 2));
    let payerCursor = 0;
    const pending = (): Transfer =>
      transfer({
        id: newId(),
        debit_account_id: payers[payerCursor++ % payers.length]!,
        credit_account_id: merchants[payerCursor % merchants.length]!,
        amount: BigInt(100 + (payerCursor % 9900)),
        ledger: ledgerId,
        code: TransferCode.payment,
        timeout: reservationTimeoutSeconds,
        flags: TransferFlags.pending,
      });
    const postOf = (p: Transfer): Transfer => transfer({ id: newId(), pending_id: p.id, amount: amountMax, flags: TransferFlags.post_pending_transfer });
    const failures = new Map<string, number>();
    let previous: Transfer[] = [];
    let measured = { transfers: 0, batches: 0, seconds: 0 };
    let windowStart = 0;
    let cpuStart = process.cpuUsage();
    const started = performance.now();
    const warmupEnd = started + req.warmupMs;
    const end = warmupEnd + req.durationMs;
    for (let now = started; now < end || previous.length > 0; now = performance.now()) {
      const recording = now >= warmupEnd;
      if (recording && windowStart === 0) {
        windowStart = now;
        cpuStart = process.cpuUsage();
        measured = { transfers: 0, batches: 0, seconds: 0 };
        progress = { transfers: 0, recording: true };
      }
      const pendings = now < end ? Array.from({ length: pendingsPerBatch }, pending) : [];
      const batch = [...previous.map(postOf), ...pendings];
      const t = performance.now();
      const results = await ledger.createTransfers(batch);
      const elapsed = (performance.now() - t) / 1000;
      for (const r of results) if (r !== 'ok') failures.set(r, (failures.get(r) ?? 0) + 1);
      if (recording && now < end) {
        measured.transfers += batch.length;
        measured.batches += 1;
        measured.seconds += elapsed;
        progress.transfers = measured.transfers;
      }
      previous = pendings;
      await yieldToLoop(); // lets the IPC channel answer progress polls
    }
    const wallSeconds = (performance.now() - windowStart) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const balanced = await isBalanced(ledger, [funding, ...payers, ...merchants]);
    return {
      ...measured,
      wallSeconds,
      transfersPerSecond: Math.round(measured.transfers / measured.seconds),
      clientCpuMicros: cpu.user + cpu.system,
      ok: failures.size === 0,
      balanced,
      failures: [...failures].map(([name, n]) => `${name}×${n}`),
    };
  } finally {
    await ledger.close();
  }
}

/** Debits equal credits over every account of the run, nothing left pending (every pending was posted). */
async function isBalanced(ledger: Ledger, ids: bigint[]): Promise<boolean> {
  const sum = { dp: 0n, cp: 0n, dq: 0n, cq: 0n };
  for (let i = 0; i < ids.length; i += eventBatchMax) {
    for (const a of await ledger.lookupAccounts(ids.slice(i, i + eventBatchMax))) {
      sum.dp += a.debits_posted;
      sum.cp += a.credits_posted;
      sum.dq += a.debits_pending;
      sum.cq += a.credits_pending;
    }
  }
  return sum.dp === sum.cp && sum.dq === 0n && sum.cq === 0n;
}

serveIpc({
  run: (req: CeilingRequest) => run(req),
  progress: () => progress,
});
announce('ready', { pid: process.pid });
