import { platformAccountIds } from '../authz/enrollment.js';
import type { Payment, PaymentState } from '../authz/model.js';
import { terminalStates } from '../authz/model.js';
import { currencyOf } from '../ledger/chart.js';
import { idFromHex, paymentTransferIds } from '../ledger/ids.js';
import { type Account, eventBatchMax } from '../ledger/model.js';
import type { App } from '../services/app.js';

/**
 * The correctness check the bench runs in the server process after every scenario, from the
 * payments repository and the ledger only (never from what the load generator believes):
 *
 * - every SUCCEEDED payment has its post transfer (and its fee transfer when it has a fee), and
 *   no payment in any other state has either: each authorization posted exactly once, nothing
 *   posted for the others;
 * - nothing else moved money: each payer's account was credited exactly its funding and debited
 *   exactly the sum of its SUCCEEDED payments, and holds exactly the reservations of its
 *   payments still waiting for proof; each merchant was credited exactly its SUCCEEDED amounts
 *   and debited exactly their fees; the fee and funding accounts moved by exactly those sums;
 * - the ledger is balanced: debits equal credits, posted and pending, per ledger (the embedded
 *   engine's `totals()`; on TigerBeetle, over every account the bench touches).
 */

export interface Registration {
  currency: string;
  fundingPerPayer: bigint;
  payers: { id: string; account: string }[];
  merchants: { id: string; account: string }[];
}

export interface CheckResult {
  ok: boolean;
  payments: number;
  byState: Partial<Record<PaymentState, number>>;
  succeeded: number;
  /** SUCCEEDED payments whose post (or fee) transfer is missing. */
  missingPosts: number;
  /** Payments not SUCCEEDED that have a post or fee transfer. */
  strayPosts: number;
  balanced: boolean;
  payerMismatches: number;
  merchantMismatches: number;
  platformMismatches: number;
  /** The first few failures, in words. */
  failures: string[];
  seconds: number;
  /**
   * With `--workers N` (the check runs in worker 1): how many authorizations the load generator
   * was answered SUCCEEDED since setup, whichever worker answered; `succeeded` must cover them.
   */
  answeredSucceeded?: number;
}

/**
 * The check of one worker against what the generator was told by all of them: every
 * authorization answered SUCCEEDED must be a SUCCEEDED payment the check counted (more is
 * possible: an answer lost to a deadline), else the check fails, naming both counts.
 */
export function coversAnswered(result: CheckResult, answeredSucceeded: number): CheckResult {
  if (result.succeeded >= answeredSucceeded) return { ...result, answeredSucceeded };
  const failure = `the check counted ${result.succeeded} SUCCEEDED payments, the generator was answered SUCCEEDED ${answeredSucceeded} times`;
  return { ...result, ok: false, answeredSucceeded, failures: [failure, ...result.failures].slice(0, failuresShownMax) };
}

/** Longest wait for a check, milliseconds (bench/main.ts, and the primary's forward to worker 1 with `--workers`). */
export const checkTimeoutMs = 300_000;
/** Failures described in full; the rest are only counted. */
const failuresShownMax = 10;
/** Payments read per repository `list` call (the port's page bound). */
const listPageMax = 1000;

/** The shared platform accounts (USD) before the bench enrolled or funded anything. */
export interface Baseline {
  fees: Account;
  funding: Account;
}

export class Checker {
  constructor(
    private readonly app: App,
    private readonly registration: Registration,
    private readonly baseline: Baseline,
  ) {}

  /** Reads the platform accounts before setup, so a reused ledger (TigerBeetle) still checks exactly. */
  static async baseline(app: App): Promise<Baseline> {
    const [fees, funding] = await platformAccounts(app, benchCurrencyCode);
    return { fees: { ...fees }, funding: { ...funding } };
  }

  async run(): Promise<CheckResult> {
    const started = performance.now();
    const failures: string[] = [];
    const fail = (text: string) => void (failures.length < failuresShownMax && failures.push(text));
    const payments = await this.allPayments();
    const byState: Partial<Record<PaymentState, number>> = {};
    for (const p of payments) byState[p.state] = (byState[p.state] ?? 0) + 1;
    const posts = await this.postsAndFees(payments, fail);
    const balances = await this.balances(payments, fail);
    const balanced = await this.balanced(fail);
    const succeeded = byState.SUCCEEDED ?? 0;
    const ok = posts.missing === 0 && posts.stray === 0 && balanced && balances.payers === 0 && balances.merchants === 0 && balances.platform === 0;
    return {
      ok,
      payments: payments.length,
      byState,
      succeeded,
      missingPosts: posts.missing,
      strayPosts: posts.stray,
      balanced,
      payerMismatches: balances.payers,
      merchantMismatches: balances.merchants,
      platformMismatches: balances.platform,
      failures,
      seconds: (performance.now() - started) / 1000,
    };
  }

  private async allPayments(): Promise<Payment[]> {
    const all: Payment[] = [];
    for (const merchant of this.registration.merchants) {
      let afterId: string | undefined;
      for (;;) {
        const page = await this.app.payments.list({ merchantId: merchant.id, limit: listPageMax, ...(afterId === undefined ? {} : { afterId }) });
        all.push(...page);
        if (page.length < listPageMax) break;
        afterId = page[page.length - 1]!.id;
      }
    }
    return all;
  }

  /** Looks up every payment's post and fee transfer ids: present exactly for SUCCEEDED payments. */
  private async postsAndFees(payments: Payment[], fail: (t: string) => void): Promise<{ missing: number; stray: number }> {
    const wanted: bigint[] = [];
    for (const p of payments) {
      const ids = paymentTransferIds(idFromHex(p.id));
      wanted.push(ids.post, ids.fee);
    }
    const found = new Set<bigint>();
    for (let i = 0; i < wanted.length; i += eventBatchMax) {
      for (const t of await this.app.ledger.lookupTransfers(wanted.slice(i, i + eventBatchMax))) found.add(t.id);
    }
    let missing = 0;
    let stray = 0;
    for (const p of payments) {
      const ids = paymentTransferIds(idFromHex(p.id));
      const post = found.has(ids.post);
      const fee = found.has(ids.fee);
      if (p.state === 'SUCCEEDED') {
        if (!post || fee !== p.feeAmount > 0n) {
          missing += 1;
          fail(`payment ${p.id} SUCCEEDED but post ${post ? 'found' : 'missing'}, fee ${fee ? 'found' : 'missing'} (fee amount ${p.feeAmount})`);
        }
      } else if (post || fee) {
        stray += 1;
        fail(`payment ${p.id} is ${p.state} but has a ${post ? 'post' : 'fee'} transfer`);
      }
    }
    return { missing, stray };
  }

  private async balances(payments: Payment[], fail: (t: string) => void): Promise<{ payers: number; merchants: number; platform: number }> {
    const paid = new Map<string, bigint>();
    const held = new Map<string, bigint>();
    const earned = new Map<string, bigint>();
    const fees = new Map<string, bigint>();
    const awaiting = new Map<string, bigint>();
    const add = (m: Map<string, bigint>, k: string, v: bigint) => m.set(k, (m.get(k) ?? 0n) + v);
    let feesTotal = 0n;
    for (const p of payments) {
      if (p.state === 'SUCCEEDED') {
        add(paid, p.payerId, p.amount);
        add(earned, p.merchantId, p.amount);
        add(fees, p.merchantId, p.feeAmount);
        feesTotal += p.feeAmount;
      } else if (!terminalStates.has(p.state)) {
        add(held, p.payerId, p.amount);
        add(awaiting, p.merchantId, p.amount);
      }
    }
    const { fundingPerPayer } = this.registration;
    let payers = 0;
    const payerAccounts = await this.lookup(this.registration.payers.map((p) => p.account));
    for (const payer of this.registration.payers) {
      const a = payerAccounts.get(payer.account);
      const want = { credits: fundingPerPayer, debits: paid.get(payer.id) ?? 0n, pending: held.get(payer.id) ?? 0n };
      if (
        a === undefined ||
        a.credits_posted !== want.credits ||
        a.debits_posted !== want.debits ||
        a.debits_pending !== want.pending ||
        a.credits_pending !== 0n
      ) {
        payers += 1;
        fail(`payer ${payer.id}: expected credits ${want.credits}, debits ${want.debits}, pending ${want.pending}; ledger has ${describe(a)}`);
      }
    }
    let merchants = 0;
    const merchantAccounts = await this.lookup(this.registration.merchants.map((m) => m.account));
    for (const merchant of this.registration.merchants) {
      const a = merchantAccounts.get(merchant.account);
      const want = { credits: earned.get(merchant.id) ?? 0n, debits: fees.get(merchant.id) ?? 0n, pending: awaiting.get(merchant.id) ?? 0n };
      if (
        a === undefined ||
        a.credits_posted !== want.credits ||
        a.debits_posted !== want.debits ||
        a.credits_pending !== want.pending ||
        a.debits_pending !== 0n
      ) {
        merchants += 1;
        fail(`merchant ${merchant.id}: expected credits ${want.credits}, debits ${want.debits}, pending ${want.pending}; ledger has ${describe(a)}`);
      }
    }
    return { payers, merchants, platform: await this.platform(feesTotal, fail) };
  }

  /** The fee account earned exactly the fees; the funding account paid out exactly the deposits. */
  private async platform(feesTotal: bigint, fail: (t: string) => void): Promise<number> {
    const base = this.baseline;
    const [fees, funding] = await platformAccounts(this.app, this.registration.currency);
    let mismatches = 0;
    if (fees.credits_posted - base.fees.credits_posted !== feesTotal || fees.debits_posted !== base.fees.debits_posted) {
      mismatches += 1;
      fail(
        `fee account: expected +${feesTotal} credits, ledger moved +${fees.credits_posted - base.fees.credits_posted} credits, +${fees.debits_posted - base.fees.debits_posted} debits`,
      );
    }
    const deposits = this.registration.fundingPerPayer * BigInt(this.registration.payers.length);
    if (funding.debits_posted - base.funding.debits_posted !== deposits || funding.credits_posted !== base.funding.credits_posted) {
      mismatches += 1;
      fail(`funding account: expected +${deposits} debits, ledger moved +${funding.debits_posted - base.funding.debits_posted}`);
    }
    return mismatches;
  }

  /** Debits equal credits, posted and pending: per ledger on the embedded engine, else over the bench's accounts. */
  private async balanced(fail: (t: string) => void): Promise<boolean> {
    if (this.app.totals !== undefined) {
      let ok = true;
      for (const [ledger, s] of await this.app.totals()) {
        if (s.debitsPosted !== s.creditsPosted || s.debitsPending !== s.creditsPending) {
          ok = false;
          fail(`ledger ${ledger} unbalanced: debits ${s.debitsPosted}+${s.debitsPending} pending, credits ${s.creditsPosted}+${s.creditsPending} pending`);
        }
      }
      return ok;
    }
    const base = this.baseline;
    const ids = [...this.registration.payers.map((p) => p.account), ...this.registration.merchants.map((m) => m.account)];
    const accounts = [...(await this.lookup(ids)).values(), ...(await platformAccounts(this.app, this.registration.currency))];
    const sum = { dp: 0n, cp: 0n, dq: 0n, cq: 0n };
    for (const a of accounts) {
      sum.dp += a.debits_posted;
      sum.cp += a.credits_posted;
      sum.dq += a.debits_pending;
      sum.cq += a.credits_pending;
    }
    for (const a of [base.fees, base.funding]) {
      sum.dp -= a.debits_posted;
      sum.cp -= a.credits_posted;
      sum.dq -= a.debits_pending;
      sum.cq -= a.credits_pending;
    }
    const ok = sum.dp === sum.cp && sum.dq === sum.cq;
    if (!ok) fail(`bench accounts unbalanced: debits ${sum.dp}+${sum.dq} pending, credits ${sum.cp}+${sum.cq} pending`);
    return ok;
  }

  private async lookup(hexIds: string[]): Promise<Map<string, Account>> {
    const found = new Map<string, Account>();
    const ids = hexIds.map(idFromHex);
    for (let i = 0; i < ids.length; i += eventBatchMax) {
      for (const a of await this.app.ledger.lookupAccounts(ids.slice(i, i + eventBatchMax))) found.set(a.id.toString(16).padStart(32, '0'), a);
    }
    return found;
  }
}

/** The bench's currency (bench/load.ts pays in it). */
export const benchCurrencyCode = 'USD';

async function platformAccounts(app: App, code: string): Promise<[Account, Account]> {
  const currency = currencyOf(code);
  if (currency === undefined) throw new Error(`assertion failed: unknown currency ${code}`);
  const ids = platformAccountIds(currency);
  const accounts = await app.ledger.lookupAccounts([ids.fees, ids.funding]);
  const fees = accounts.find((a) => a.id === ids.fees);
  const funding = accounts.find((a) => a.id === ids.funding);
  if (fees === undefined || funding === undefined) throw new Error('assertion failed: platform accounts missing from the ledger');
  return [fees, funding];
}

function describe(a: Account | undefined): string {
  if (a === undefined) return 'no such account';
  return `credits ${a.credits_posted}+${a.credits_pending} pending, debits ${a.debits_posted}+${a.debits_pending} pending`;
}
