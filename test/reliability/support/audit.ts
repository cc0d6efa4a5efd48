import { timestampMs } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import { PaymentState, type Payment } from '../../../gen/countersign/v1/common_pb.js';
import type { Account, Transfer } from '../../../gen/countersign/v1/ledger_pb.js';
import type { MerchantActor, PayerActor } from './actors.js';
import { CallStats, retried, type RetryPolicy } from './clients.js';
import type { PaymentRecord } from './payment-flows.js';
import type { World } from './world.js';
import { listPayments, type Workload } from './workload.js';

/**
 * The invariants of a run, read back through the public API (PaymentService, LedgerService)
 * after the faults stopped and the payments were reconciled. Each broken one is a violation
 * string; the counts are facts for the report.
 *
 * 1. Every payment the server acknowledged SUCCEEDED is posted exactly once (one post transfer,
 *    derived from its id, in the ledger; never both posted and voided).
 * 2. Nothing is posted without its factors: a posted payment is frictionless by the payer's
 *    policy, or its client sent a proof computed from a code delivered for it; the record lists
 *    every required factor as satisfied. Payments declined, cancelled or abandoned are not posted.
 * 3. The ledger and the records agree: SUCCEEDED if and only if posted; no payment left open.
 * 4. No reservation outlives its timeout: every reservation has one, and each payer's
 *    debits_pending is exactly the sum of its unresolved reservations still within their timeout.
 * 5. Debits equal credits (LedgerService.CheckBalanced; on TigerBeetle, by construction).
 * 6. Balances: each payer holds funding minus what was posted; each merchant holds the posted
 *    amounts minus fees; each fee is amount × basis points / 10000, linked with its post.
 */

export interface AuditInput {
  world: World;
  workload: Workload;
  records: PaymentRecord[];
  /** The anomalies `countersign reconcile` reported. */
  reconcileAnomalies: string[];
  engine: 'embedded' | 'tigerbeetle';
  policy: RetryPolicy;
  stats: CallStats;
}

export interface AuditResult {
  violations: string[];
  facts: Record<string, number>;
}

/** Reservations this close to their timeout are neither counted live nor expired, milliseconds. */
const expiryMarginMs = 2_000;
/** Violations listed per kind, at most (the count is always given). */
const examplesMax = 5;
const transferPagesMax = 1_000;

interface PaymentFacts {
  pending: Transfer[];
  posts: Transfer[];
  voids: Transfer[];
  fees: Transfer[];
}

interface LedgerView {
  accounts: Map<string, Account>;
  transfers: Map<string, Transfer[]>;
  byPayment: Map<string, PaymentFacts>;
}

async function accountTransfers(world: World, accountId: string, policy: RetryPolicy, stats: CallStats): Promise<Transfer[]> {
  const all: Transfer[] = [];
  let pageToken = '';
  for (let page = 0; page < transferPagesMax; page++) {
    const out = await retried(() => world.admin.ledger.listAccountTransfers({ accountId, pageSize: 1000, pageToken }), policy, stats);
    if (!out.ok) throw new Error(`ListAccountTransfers ${accountId}: ${out.error.message}`);
    all.push(...out.value.transfers);
    pageToken = out.value.nextPageToken;
    if (pageToken === '') return all;
  }
  throw new Error(`ListAccountTransfers ${accountId}: more than ${transferPagesMax} pages`);
}

async function readLedger(input: AuditInput): Promise<LedgerView> {
  const { world, workload, policy, stats } = input;
  const ids = [...workload.payers.map((p) => p.account), ...workload.merchants.map((m) => m.account)];
  const view: LedgerView = { accounts: new Map(), transfers: new Map(), byPayment: new Map() };
  for (const id of ids) {
    const account = await retried(() => world.admin.ledger.getAccount({ accountId: id }), policy, stats);
    if (!account.ok) throw new Error(`GetAccount ${id}: ${account.error.message}`);
    view.accounts.set(id, account.value.account!);
    view.transfers.set(id, await accountTransfers(world, id, policy, stats));
  }
  const seen = new Set<string>();
  for (const t of [...view.transfers.values()].flat()) {
    if (t.paymentId === '' || seen.has(t.id)) continue;
    seen.add(t.id);
    const facts = view.byPayment.get(t.paymentId) ?? { pending: [], posts: [], voids: [], fees: [] };
    if (t.pending) facts.pending.push(t);
    else if (t.postPendingTransfer) facts.posts.push(t);
    else if (t.voidPendingTransfer) facts.voids.push(t);
    else facts.fees.push(t);
    view.byPayment.set(t.paymentId, facts);
  }
  return view;
}

class Violations {
  private readonly byKind = new Map<string, string[]>();

  add(kind: string, example: string): void {
    const list = this.byKind.get(kind) ?? [];
    list.push(example);
    this.byKind.set(kind, list);
  }

  list(): string[] {
    return [...this.byKind.entries()].map(([kind, examples]) => `${kind}: ${examples.length} (${examples.slice(0, examplesMax).join('; ')}${examples.length > examplesMax ? '; …' : ''})`);
  }
}

const noFacts: PaymentFacts = { pending: [], posts: [], voids: [], fees: [] };
const openStates = new Set([PaymentState.CREATED, PaymentState.CHALLENGED, PaymentState.APPROVED]);

function checkAcknowledged(records: PaymentRecord[], view: LedgerView, v: Violations): void {
  for (const rec of records) {
    if (rec.paymentId === undefined) continue;
    const facts = view.byPayment.get(rec.paymentId) ?? noFacts;
    if (rec.acked.includes(PaymentState.SUCCEEDED) && facts.posts.length !== 1) v.add('acknowledged SUCCEEDED but not posted exactly once', `${rec.paymentId} posted ${facts.posts.length}×`);
    const refused = rec.acked.find((s) => s === PaymentState.DECLINED || s === PaymentState.CANCELLED || s === PaymentState.EXPIRED);
    if (refused !== undefined && facts.posts.length > 0) v.add('acknowledged final without money but posted', `${rec.paymentId} was ${PaymentState[refused]}`);
  }
}

function checkPosted(server: Map<string, Payment>, records: Map<string, PaymentRecord>, view: LedgerView, v: Violations): void {
  for (const [paymentId, facts] of view.byPayment) {
    if (facts.posts.length === 0) continue;
    if (facts.posts.length > 1) v.add('posted more than once', `${paymentId} ${facts.posts.length}×`);
    if (facts.voids.length > 0) v.add('both posted and voided', paymentId);
    const payment = server.get(paymentId);
    if (payment === undefined) {
      v.add('posted without a payment record', paymentId);
      continue;
    }
    const missing = payment.requiredFactors.filter((f) => !payment.satisfiedFactors.includes(f));
    if (missing.length > 0) v.add('posted with required factors unsatisfied', `${paymentId} missing ${missing.join(',')}`);
    const rec = records.get(payment.description);
    const frictionless = rec !== undefined && payment.requiredFactors.length === 0 && payment.amount < rec.plan.payer.noFactorBelow;
    if (rec === undefined) v.add('posted payment no client asked for', paymentId);
    else if (!frictionless && !rec.proofSent) v.add('posted without the payer ever giving proof', `${paymentId} (${rec.plan.kind}/${rec.plan.script})`);
  }
}

function checkRecords(server: Map<string, Payment>, view: LedgerView, nowMs: number, v: Violations): void {
  for (const payment of server.values()) {
    const facts = view.byPayment.get(payment.id) ?? noFacts;
    const posted = facts.posts.length > 0;
    if (openStates.has(payment.state)) v.add('payment left open after the run', `${payment.id} ${PaymentState[payment.state]}`);
    if ((payment.state === PaymentState.SUCCEEDED) !== posted) v.add('record and ledger disagree', `${payment.id} is ${PaymentState[payment.state]}, posted: ${posted}`);
    const live = facts.pending.filter((p) => reservationState(p, facts, nowMs) === 'live');
    if (!openStates.has(payment.state) && payment.state !== PaymentState.SUCCEEDED && live.length > 0) v.add('final payment still holds its reservation', `${payment.id} ${PaymentState[payment.state]}`);
  }
}

type ReservationState = 'resolved' | 'live' | 'expired' | 'ambiguous';

function reservationState(p: Transfer, facts: PaymentFacts, nowMs: number): ReservationState {
  if (facts.posts.some((t) => t.pendingId === p.id) || facts.voids.some((t) => t.pendingId === p.id)) return 'resolved';
  const expiresAtMs = timestampMs(p.createdAt!) + p.timeoutSeconds * 1000;
  if (nowMs < expiresAtMs - expiryMarginMs) return 'live';
  if (nowMs > expiresAtMs + expiryMarginMs) return 'expired';
  return 'ambiguous';
}

function checkReservations(payers: PayerActor[], view: LedgerView, nowMs: number, v: Violations, facts: Record<string, number>): void {
  for (const payer of payers) {
    const pendings = view.transfers.get(payer.account)!.filter((t) => t.pending);
    let live = 0n;
    let ambiguous = false;
    for (const p of pendings) {
      if (p.timeoutSeconds === 0) v.add('reservation without a timeout', p.id);
      const state = reservationState(p, view.byPayment.get(p.paymentId) ?? noFacts, nowMs);
      if (state === 'live') live += p.amount;
      if (state === 'live') facts.liveReservations = (facts.liveReservations ?? 0) + 1;
      if (state === 'expired') facts.expiredReservations = (facts.expiredReservations ?? 0) + 1;
      ambiguous ||= state === 'ambiguous';
    }
    const account = view.accounts.get(payer.account)!;
    if (!ambiguous && account.debitsPending !== live) v.add('reserved amount is not the live reservations', `payer ${payer.id}: debits_pending ${account.debitsPending}, live ${live}`);
  }
}

function checkBalances(input: AuditInput, view: LedgerView, server: Map<string, Payment>, v: Violations): void {
  const posted = [...server.values()].filter((p) => (view.byPayment.get(p.id)?.posts.length ?? 0) > 0);
  for (const payer of input.workload.payers) {
    const account = view.accounts.get(payer.account)!;
    const spent = posted.filter((p) => p.payerId === payer.id).reduce((sum, p) => sum + p.amount, 0n);
    if (account.creditsPosted !== payer.funding) v.add('payer funding wrong', `${payer.id}: credited ${account.creditsPosted}, funded ${payer.funding}`);
    if (account.debitsPosted !== spent) v.add('payer balance is not funding minus succeeded payments', `${payer.id}: debited ${account.debitsPosted}, succeeded ${spent}`);
  }
  for (const merchant of input.workload.merchants) checkMerchant(merchant, view, posted.filter((p) => p.payeeAccountId === merchant.account), v);
}

export function feeOf(amount: bigint, feeBasisPoints: number): bigint {
  return (amount * BigInt(feeBasisPoints)) / 10_000n;
}

function checkMerchant(merchant: MerchantActor, view: LedgerView, posted: Payment[], v: Violations): void {
  const account = view.accounts.get(merchant.account)!;
  const earned = posted.reduce((sum, p) => sum + p.amount, 0n);
  const fees = posted.reduce((sum, p) => sum + feeOf(p.amount, merchant.feeBasisPoints), 0n);
  if (account.creditsPosted !== earned) v.add('merchant credits are not the succeeded payments', `${merchant.name}: ${account.creditsPosted} vs ${earned}`);
  if (account.debitsPosted !== fees) v.add('merchant fees wrong', `${merchant.name}: ${account.debitsPosted} vs ${fees}`);
  for (const p of posted) {
    const feeTransfers = view.byPayment.get(p.id)?.fees ?? [];
    const fee = feeOf(p.amount, merchant.feeBasisPoints);
    const ok = fee === 0n ? feeTransfers.length === 0 : feeTransfers.length === 1 && feeTransfers[0]!.amount === fee;
    if (!ok) v.add('fee transfer missing or wrong', `${p.id}: expected ${fee}, found ${feeTransfers.map((t) => t.amount).join(',') || 'none'}`);
  }
}

async function checkBalanced(input: AuditInput, v: Violations, facts: Record<string, number>): Promise<void> {
  const out = await retried(() => input.world.admin.ledger.checkBalanced({}), input.policy, input.stats);
  if (out.ok) {
    if (!out.value.balanced) v.add('debits do not equal credits', out.value.ledgers.filter((l) => !l.balanced).map((l) => `${l.currency}: debits ${l.debitsPosted}/${l.debitsPending} credits ${l.creditsPosted}/${l.creditsPending}`).join('; '));
    facts.balancedLedgers = out.value.ledgers.length;
  } else if (input.engine === 'tigerbeetle' && out.error.code === Code.FailedPrecondition) {
    facts.balancedByConstruction = 1;
  } else {
    v.add('CheckBalanced failed', out.error.message);
  }
}

export async function audit(input: AuditInput): Promise<AuditResult> {
  const v = new Violations();
  const facts: Record<string, number> = {};
  const server = new Map<string, Payment>();
  for (const merchant of input.workload.merchants) for (const p of await listPayments(merchant, input.policy, input.stats)) server.set(p.id, p);
  const view = await readLedger(input);
  const nowMs = Date.now();
  const records = new Map(input.records.map((r) => [r.plan.key, r]));
  checkAcknowledged(input.records, view, v);
  checkPosted(server, records, view, v);
  checkRecords(server, view, nowMs, v);
  checkReservations(input.workload.payers, view, nowMs, v, facts);
  checkBalances(input, view, server, v);
  await checkBalanced(input, v, facts);
  if (input.reconcileAnomalies.length > 0) v.add('reconcile reported anomalies', input.reconcileAnomalies.join(', '));
  const states = [...server.values()].map((p) => PaymentState[p.state].toLowerCase());
  for (const s of states) facts[`server_${s}`] = (facts[`server_${s}`] ?? 0) + 1;
  facts.posted = [...view.byPayment.values()].filter((f) => f.posts.length > 0).length;
  facts.acknowledgedSucceeded = input.records.filter((r) => r.acked.includes(PaymentState.SUCCEEDED)).length;
  facts.orphanReservations = [...view.byPayment.keys()].filter((id) => !server.has(id)).length;
  return { violations: v.list(), facts };
}
