import { timestampMs } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import { DeclineReason, type Payment, PaymentState } from '../../../gen/countersign/v1/common_pb.js';
import type { Account, Transfer } from '../../../gen/countersign/v1/ledger_pb.js';
import type { MerchantActor, PayerActor } from './actors.js';
import { type AnswerLog, shapeDiff, shapeOf } from './answer-log.js';
import { type CallStats, type RetryPolicy, retried } from './clients.js';
import { createLeaseMs } from './finish.js';
import type { PaymentRecord } from './payment-flows.js';
import { listPayments, type Workload } from './workload.js';
import type { World } from './world.js';

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
 * 4. No reservation outlives its timeout: on the embedded ledger every reservation has one; on
 *    TigerBeetle none has (serve's default there, README "Holds and their timeout") and every
 *    one is resolved by countersign; each payer's debits_pending is exactly the sum of its
 *    unresolved reservations still within their timeout (forever, without one).
 * 5. Debits equal credits (LedgerService.CheckBalanced; on TigerBeetle, by construction).
 * 6. Balances: each payer holds funding minus what was posted; each merchant holds the posted
 *    amounts minus fees; each fee is amount × basis points / 10000 rounded up (at least 1, at most
 *    the amount), linked with its post.
 *
 * What the clients were answered (the answer log; every client has its final answer by now, the
 * finish phase saw to it):
 *
 * 7. One request key, one payment: no key was answered with two payment ids.
 * 8. Nothing acknowledged is lost or changed by a crash: every payment id any answer named exists;
 *    a payment answered SUCCEEDED is still SUCCEEDED; its amount, payer, merchant, payee and
 *    currency are what the first answer said, and what its create asked for; no two answers
 *    for one payment disagree on them; a payment whose create was refused never moves money.
 * 9. Posted = acknowledged SUCCEEDED: every posted payment was answered SUCCEEDED to its client
 *    (and every payment answered SUCCEEDED is posted exactly once, 1.).
 * 10. No orphan reservation: every pending transfer's payment has a record.
 * 11. No key in progress after its lease: an IN_PROGRESS answer only to a create, only to a request
 *     sent before the payment's lease (`createLeaseMs` from its creation) ended, within
 *     `inProgressMarginMs`; and every request has a final answer (none left in progress or failing).
 * 12. No right answer lost: a payment whose client gave the right proof succeeded (or was declined
 *     for funds the payer no longer had: no money is held before consent).
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
  /** Every answer the clients got (by key and by payment). */
  answers: AnswerLog;
}

export interface AuditResult {
  violations: string[];
  facts: Record<string, number>;
}

/** Reservations this close to their timeout are neither counted live nor expired, milliseconds. */
const expiryMarginMs = 2_000;
/**
 * Slack on the create's lease, milliseconds: an IN_PROGRESS answer to a request sent more than
 * this after the lease ended (`createLeaseMs` after the payment's creation) is a key stuck in progress.
 */
export const inProgressMarginMs = 2_000;
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

/** Broken invariants by kind, each with examples. */
export class Violations {
  private readonly byKind = new Map<string, string[]>();

  add(kind: string, example: string): void {
    const list = this.byKind.get(kind) ?? [];
    list.push(example);
    this.byKind.set(kind, list);
  }

  list(): string[] {
    return [...this.byKind.entries()].map(
      ([kind, examples]) => `${kind}: ${examples.length} (${examples.slice(0, examplesMax).join('; ')}${examples.length > examplesMax ? '; …' : ''})`,
    );
  }
}

const noFacts: PaymentFacts = { pending: [], posts: [], voids: [], fees: [] };
const openStates = new Set([PaymentState.CREATED, PaymentState.CHALLENGED, PaymentState.APPROVED]);

/** Every payment id answered with each state: the records' own acknowledgements and every answer in the log. */
function acknowledgedStates(records: PaymentRecord[], answers: AnswerLog): Map<string, Set<PaymentState>> {
  const out = new Map<string, Set<PaymentState>>();
  for (const rec of records) if (rec.paymentId !== undefined) out.set(rec.paymentId, new Set([...(out.get(rec.paymentId) ?? []), ...rec.acked]));
  for (const a of answers.payments.values()) out.set(a.id, new Set([...(out.get(a.id) ?? []), ...a.states]));
  return out;
}

function checkAcknowledged(acked: Map<string, Set<PaymentState>>, view: LedgerView, v: Violations): void {
  for (const [paymentId, states] of acked) {
    const facts = view.byPayment.get(paymentId) ?? noFacts;
    if (states.has(PaymentState.SUCCEEDED) && facts.posts.length !== 1)
      v.add('acknowledged SUCCEEDED but not posted exactly once', `${paymentId} posted ${facts.posts.length}×`);
    const refused = [PaymentState.DECLINED, PaymentState.CANCELLED, PaymentState.EXPIRED].find((s) => states.has(s));
    if (refused !== undefined && facts.posts.length > 0) v.add('acknowledged final without money but posted', `${paymentId} was ${PaymentState[refused]}`);
  }
}

/**
 * What the server and the ledger say about the payment a create key made (found by its
 * description, the key), for a violation's example: its state and its transfers.
 */
function explainKey(key: string, server: Map<string, Payment>, view: LedgerView): string {
  const payment = [...server.values()].find((p) => p.description === key);
  if (payment === undefined) return 'no payment record carries this key';
  const f = view.byPayment.get(payment.id) ?? noFacts;
  const pending = f.pending.map((p) => `pending ${p.amount} timeout ${p.timeoutSeconds} s`).join(', ') || 'no reservation';
  return `payment ${payment.id} ${PaymentState[payment.state]} at the end; ledger: ${pending}, ${f.posts.length} post, ${f.voids.length} void`;
}

/** 7 and 11: per request key (facts: IN_PROGRESS answers, keys). */
export function checkKeys(answers: AnswerLog, v: Violations, facts: Record<string, number>, explain: (key: string) => string): void {
  let inProgressAnswers = 0;
  let latestAfterFirstMs = 0;
  for (const k of answers.keys.values()) {
    if (k.paymentIds.size > 1) v.add('a request key answered with two payment ids', `${k.key}: ${[...k.paymentIds].join(', ')}`);
    if (!k.last.final)
      v.add(
        k.last.inProgress ? 'a key left in progress (no final answer after the finish phase)' : 'a request left without a final answer',
        `${k.key} (${k.kind}): last answer ${k.last.label}${k.kind === 'create' ? `; ${explain(k.key)}` : ''}`,
      );
    if (k.inProgress.length === 0) continue;
    inProgressAnswers += k.inProgress.length;
    latestAfterFirstMs = Math.max(latestAfterFirstMs, ...k.inProgress.map((a) => a.endMs - k.firstRequestMs));
    if (k.kind !== 'create') {
      v.add('IN_PROGRESS answered for an operation on a payment (only a create has a lease)', `${k.key}: ${k.inProgress.length}×`);
      continue;
    }
    // The payment exists by the first IN_PROGRESS answer: its lease ends at most `createLeaseMs` after that answer.
    const paymentId = [...k.paymentIds][0];
    const createdAtMs = paymentId === undefined ? undefined : answers.payments.get(paymentId)?.createdAtMs;
    const leaseEndMs = (createdAtMs ?? k.inProgress[0]!.endMs) + createLeaseMs;
    const late = k.inProgress.filter((a) => a.startMs > leaseEndMs + inProgressMarginMs);
    if (late.length > 0)
      v.add(
        'a key still in progress after its lease',
        `${k.key}: IN_PROGRESS to a request sent ${late[0]!.startMs - leaseEndMs} ms after the lease ended (${paymentId === undefined ? 'no answer named its payment' : `payment ${paymentId}${createdAtMs === undefined ? ', creation time never answered' : ''}`})`,
      );
  }
  facts.requestKeys = answers.keys.size;
  facts.inProgressAnswers = inProgressAnswers;
  facts.inProgressLatestAfterFirstRequestMs = latestAfterFirstMs;
}

/** 8: every answered payment is still there, as answered. */
function checkAnswered(answers: AnswerLog, records: PaymentRecord[], server: Map<string, Payment>, view: LedgerView, v: Violations): void {
  for (const a of answers.payments.values()) {
    const payment = server.get(a.id);
    if (payment === undefined) {
      v.add(
        'acknowledged payment missing after restart',
        `${a.id} (answered ${[...a.states].map((s) => PaymentState[s]).join(',') || [...a.createRefusals].join(',')})`,
      );
      continue;
    }
    if (a.states.has(PaymentState.SUCCEEDED) && payment.state !== PaymentState.SUCCEEDED)
      v.add('acknowledged SUCCEEDED but no longer SUCCEEDED', `${a.id} is ${PaymentState[payment.state]}`);
    const changed = a.shape === undefined ? [] : shapeDiff(a.shape, shapeOf(payment));
    if (changed.length > 0) v.add('acknowledged payment changed', `${a.id}: ${changed.join(', ')}`);
    for (const c of a.contradictions) v.add('two answers for one payment disagree', `${a.id}: ${c}`);
    if (a.createRefusals.size > 0 && (view.byPayment.get(a.id)?.posts.length ?? 0) > 0)
      v.add('create refused but posted', `${a.id} (${[...a.createRefusals].join(',')})`);
  }
  for (const rec of records) {
    const shape = rec.paymentId === undefined ? undefined : answers.payments.get(rec.paymentId)?.shape;
    if (shape === undefined) continue;
    const asked = {
      amount: rec.plan.amount,
      payerId: rec.plan.payer.id,
      merchantId: rec.plan.merchant.id,
      payeeAccountId: rec.plan.merchant.account,
      currency: 'USD',
    };
    const diff = shapeDiff(asked, shape);
    if (diff.length > 0) v.add("answered with a payment that is not the request's", `${rec.plan.key} → ${rec.paymentId}: ${diff.join(', ')}`);
  }
}

/** 9 (posted → acknowledged) and 10. */
function checkPostedAcknowledged(
  acked: Map<string, Set<PaymentState>>,
  server: Map<string, Payment>,
  records: Map<string, PaymentRecord>,
  view: LedgerView,
  v: Violations,
): void {
  for (const [paymentId, facts] of view.byPayment) {
    if (facts.pending.length > 0 && !server.has(paymentId))
      v.add('orphan reservation (a pending transfer whose payment has no record)', `${paymentId}: ${facts.pending.map((p) => p.amount).join(',')}`);
    if (facts.posts.length === 0 || acked.get(paymentId)?.has(PaymentState.SUCCEEDED) === true) continue;
    const rec = records.get(server.get(paymentId)?.description ?? '');
    const told = [...(acked.get(paymentId) ?? [])].map((s) => PaymentState[s]).join(',') || 'nothing';
    v.add(
      'posted but never acknowledged SUCCEEDED to its client',
      `${paymentId}: told ${told}${rec === undefined ? '' : ` (${rec.plan.key} ${rec.plan.kind}/${rec.plan.script}, client ${rec.result})`}`,
    );
  }
}

/**
 * 12: a client that gave the right proof saw its payment succeed — unless the payer's money was
 * not there when it consented (no money is held before consent, README "Tenant safety"): declined
 * INSUFFICIENT_FUNDS is right only when this amount on top of what the payer was charged in the
 * end exceeds the payer's funding.
 */
function checkRightProofs(records: PaymentRecord[], server: Map<string, Payment>, payers: readonly PayerActor[], v: Violations): void {
  const spent = new Map<string, bigint>();
  for (const p of server.values()) if (p.state === PaymentState.SUCCEEDED) spent.set(p.payerId, (spent.get(p.payerId) ?? 0n) + p.amount);
  const funding = new Map(payers.map((p) => [p.id, p.funding]));
  for (const rec of records) {
    if (!rec.proofSent || rec.paymentId === undefined || (rec.plan.script !== 'right' && rec.plan.script !== 'wrong-then-right')) continue;
    const payment = server.get(rec.paymentId);
    if (payment === undefined || payment.state === PaymentState.SUCCEEDED) continue;
    const short =
      payment.declineReason === DeclineReason.INSUFFICIENT_FUNDS && (spent.get(payment.payerId) ?? 0n) + payment.amount > (funding.get(payment.payerId) ?? 0n);
    if (short) continue;
    v.add(
      'right proof given but the payment did not succeed',
      `${rec.paymentId} ${PaymentState[payment.state]}${payment.declineReason === 0 ? '' : ` (${DeclineReason[payment.declineReason]})`}: ${rec.plan.kind}/${rec.plan.script}, client ${rec.result}`,
    );
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
    if ((payment.state === PaymentState.SUCCEEDED) !== posted)
      v.add('record and ledger disagree', `${payment.id} is ${PaymentState[payment.state]}, posted: ${posted}`);
    const live = facts.pending.filter((p) => reservationState(p, facts, nowMs) === 'live');
    if (!openStates.has(payment.state) && payment.state !== PaymentState.SUCCEEDED && live.length > 0)
      v.add('final payment still holds its reservation', `${payment.id} ${PaymentState[payment.state]}`);
  }
}

type ReservationState = 'resolved' | 'live' | 'expired' | 'ambiguous';

function reservationState(p: Transfer, facts: PaymentFacts, nowMs: number): ReservationState {
  if (facts.posts.some((t) => t.pendingId === p.id) || facts.voids.some((t) => t.pendingId === p.id)) return 'resolved';
  if (p.timeoutSeconds === 0) return 'live'; // no ledger timeout: held until countersign voids it
  const expiresAtMs = timestampMs(p.createdAt!) + p.timeoutSeconds * 1000;
  if (nowMs < expiresAtMs - expiryMarginMs) return 'live';
  if (nowMs > expiresAtMs + expiryMarginMs) return 'expired';
  return 'ambiguous';
}

function checkReservations(payers: PayerActor[], view: LedgerView, nowMs: number, holdTimeouts: boolean, v: Violations, facts: Record<string, number>): void {
  for (const payer of payers) {
    const pendings = view.transfers.get(payer.account)!.filter((t) => t.pending);
    let live = 0n;
    let ambiguous = false;
    for (const p of pendings) {
      if (holdTimeouts && p.timeoutSeconds === 0) v.add('reservation without a timeout', p.id);
      if (!holdTimeouts && p.timeoutSeconds !== 0) v.add('reservation with a ledger timeout where serve sets none', p.id);
      const state = reservationState(p, view.byPayment.get(p.paymentId) ?? noFacts, nowMs);
      if (state === 'live') live += p.amount;
      if (state === 'live') facts.liveReservations = (facts.liveReservations ?? 0) + 1;
      if (state === 'expired') facts.expiredReservations = (facts.expiredReservations ?? 0) + 1;
      ambiguous ||= state === 'ambiguous';
    }
    const account = view.accounts.get(payer.account)!;
    if (!ambiguous && account.debitsPending !== live)
      v.add('reserved amount is not the live reservations', `payer ${payer.id}: debits_pending ${account.debitsPending}, live ${live}`);
  }
}

function checkBalances(input: AuditInput, view: LedgerView, server: Map<string, Payment>, v: Violations): void {
  const posted = [...server.values()].filter((p) => (view.byPayment.get(p.id)?.posts.length ?? 0) > 0);
  for (const payer of input.workload.payers) {
    const account = view.accounts.get(payer.account)!;
    const spent = posted.filter((p) => p.payerId === payer.id).reduce((sum, p) => sum + p.amount, 0n);
    if (account.creditsPosted !== payer.funding) v.add('payer funding wrong', `${payer.id}: credited ${account.creditsPosted}, funded ${payer.funding}`);
    if (account.debitsPosted !== spent)
      v.add('payer balance is not funding minus succeeded payments', `${payer.id}: debited ${account.debitsPosted}, succeeded ${spent}`);
  }
  for (const merchant of input.workload.merchants)
    checkMerchant(
      merchant,
      view,
      posted.filter((p) => p.payeeAccountId === merchant.account),
      v,
    );
}

export function feeOf(amount: bigint, feeBasisPoints: number): bigint {
  // README "Tenant safety": rounded up, at least 1 minor unit when the fee is not 0 bp, at most the amount.
  if (feeBasisPoints === 0) return 0n;
  const fee = (amount * BigInt(feeBasisPoints) + 9_999n) / 10_000n;
  return fee < 1n ? 1n : fee > amount ? amount : fee;
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
    if (!out.value.balanced)
      v.add(
        'debits do not equal credits',
        out.value.ledgers
          .filter((l) => !l.balanced)
          .map((l) => `${l.currency}: debits ${l.debitsPosted}/${l.debitsPending} credits ${l.creditsPosted}/${l.creditsPending}`)
          .join('; '),
      );
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
  const acked = acknowledgedStates(input.records, input.answers);
  checkAcknowledged(acked, view, v);
  checkKeys(input.answers, v, facts, (key) => explainKey(key, server, view));
  checkAnswered(input.answers, input.records, server, view, v);
  checkPostedAcknowledged(acked, server, records, view, v);
  checkRightProofs(input.records, server, input.workload.payers, v);
  checkPosted(server, records, view, v);
  checkRecords(server, view, nowMs, v);
  // serve's default (COUNTERSIGN_LEDGER_HOLD_TIMEOUT unset): a ledger timeout on the embedded ledger, none on TigerBeetle.
  checkReservations(input.workload.payers, view, nowMs, input.engine === 'embedded', v, facts);
  checkBalances(input, view, server, v);
  await checkBalanced(input, v, facts);
  if (input.reconcileAnomalies.length > 0) v.add('reconcile reported anomalies', input.reconcileAnomalies.join(', '));
  const states = [...server.values()].map((p) => PaymentState[p.state].toLowerCase());
  for (const s of states) facts[`server_${s}`] = (facts[`server_${s}`] ?? 0) + 1;
  facts.posted = [...view.byPayment.values()].filter((f) => f.posts.length > 0).length;
  // Distinct payments (two requests may name one payment: a replayed create), comparable with `posted`.
  facts.acknowledgedSucceeded = new Set(input.records.filter((r) => r.acked.includes(PaymentState.SUCCEEDED)).map((r) => r.paymentId)).size;
  facts.orphanReservations = [...view.byPayment.keys()].filter((id) => !server.has(id)).length;
  return { violations: v.list(), facts };
}
