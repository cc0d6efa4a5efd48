import { create } from '@bufbuild/protobuf';
import { type Timestamp, timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { EnrollmentService as Enrollment } from '../../authz/enrollment.js';
import { invalidArgument, notFound, precondition } from '../../authz/errors.js';
import { lineStatement } from '../../authz/line-statement.js';
import type { Directory } from '../../authz/ports.js';
import type { PaymentStore } from '../../authz/store/port.js';
import { checkHexId } from '../../authz/validation.js';
import {
  AccountKind,
  AccountSchema,
  type LedgerService,
  type Account as ProtoAccount,
  type Transfer as ProtoTransfer,
  TransferSchema,
} from '../../gen/countersign/v1/ledger_pb.js';
import { AccountCode, currencies } from '../../ledger/chart.js';
import { idFromHex, idToHex, paymentIdOf } from '../../ledger/ids.js';
import { type Account, type AccountFilter, AccountFilterFlags, AccountFlags, accountFilter, type Transfer, TransferFlags } from '../../ledger/model.js';
import type { Ledger } from '../../ledger/port.js';
import { callerOf, pageSize, requireAdmin } from './caller.js';

const currencyByLedger = new Map([...currencies.values()].map((c) => [c.ledger, c.code]));
const kindByCode: Record<number, AccountKind> = {
  [AccountCode.payerPrepaid]: AccountKind.PAYER_PREPAID,
  [AccountCode.payerPostpaid]: AccountKind.PAYER_POSTPAID_LINE,
  [AccountCode.merchant]: AccountKind.MERCHANT,
  [AccountCode.platformFees]: AccountKind.PLATFORM_FEES,
  [AccountCode.operatorSettlement]: AccountKind.OPERATOR_SETTLEMENT,
  [AccountCode.bankSettlement]: AccountKind.BANK_SETTLEMENT,
};

const msOf = (ns: bigint) => Number(ns / 1_000_000n);
/** A filter bound in ledger nanoseconds; INVALID_ARGUMENT outside 1970..2262 (TigerBeetle timestamps are u63 ns). */
function nsOf(t: Timestamp | undefined, field: string): bigint {
  if (t === undefined) return 0n;
  const ns = t.seconds * 1_000_000_000n + BigInt(t.nanos);
  if (t.seconds < 0n || t.nanos < 0 || t.nanos > 999_999_999 || ns >= 1n << 63n) throw invalidArgument(field, 'must be between 1970 and 2262');
  return ns;
}

/**
 * The chart's debit-normal accounts: what they hold grows with their debits (a line's charges,
 * card payments the bank owes, credit granted to lines, deposits made). Every other code,
 * unknown ones included, is credit-normal (ledger.proto `Account.balance`).
 */
const debitNormalCodes: ReadonlySet<number> = new Set([
  AccountCode.payerPostpaid,
  AccountCode.operatorSettlement,
  AccountCode.bankSettlement,
  AccountCode.funding,
]);
const int64Min = -(1n << 63n);
const int64Max = (1n << 63n) - 1n;

/**
 * `Account.balance` and `Account.available` (ledger.proto) from the ledger's raw columns. A
 * balance outside int64, or an account with `debits_must_not_exceed_credits` whose pending and
 * posted debits exceed its credits, is a broken ledger invariant: a plain Error (INTERNAL).
 */
export function balancesOf(a: Pick<Account, 'id' | 'code' | 'flags' | 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted'>): {
  balance: bigint;
  available: bigint;
} {
  const debitNormal = debitNormalCodes.has(a.code);
  const balance = debitNormal ? a.debits_posted - a.credits_posted : a.credits_posted - a.debits_posted;
  const available = balance - (debitNormal ? a.credits_pending : a.debits_pending);
  if (balance < int64Min || balance > int64Max || available < int64Min || available > int64Max)
    throw new Error(`account ${idToHex(a.id)}: balance ${balance}, available ${available} outside int64`);
  const capped = (a.flags & AccountFlags.debits_must_not_exceed_credits) !== 0;
  if (capped && a.debits_posted + a.debits_pending > a.credits_posted)
    throw new Error(`account ${idToHex(a.id)}: debits exceed credits despite debits_must_not_exceed_credits`);
  return { balance, available };
}

function accountToProto(a: Account, ownerId: string): ProtoAccount {
  return create(AccountSchema, {
    id: idToHex(a.id),
    kind: kindByCode[a.code] ?? AccountKind.UNSPECIFIED,
    code: a.code,
    ledger: a.ledger,
    currency: currencyByLedger.get(a.ledger) ?? '',
    ownerId,
    debitsPending: a.debits_pending,
    debitsPosted: a.debits_posted,
    creditsPending: a.credits_pending,
    creditsPosted: a.credits_posted,
    debitsMustNotExceedCredits: (a.flags & AccountFlags.debits_must_not_exceed_credits) !== 0,
    creditsMustNotExceedDebits: (a.flags & AccountFlags.credits_must_not_exceed_debits) !== 0,
    history: (a.flags & AccountFlags.history) !== 0,
    createdAt: timestampFromMs(msOf(a.timestamp)),
    ...balancesOf(a),
  });
}

function transferToProto(t: Transfer): ProtoTransfer {
  const payment = t.user_data_128 === 0n ? undefined : paymentIdOf(t.id);
  return create(TransferSchema, {
    id: idToHex(t.id),
    debitAccountId: idToHex(t.debit_account_id),
    creditAccountId: idToHex(t.credit_account_id),
    amount: t.amount,
    currency: currencyByLedger.get(t.ledger) ?? '',
    pendingId: t.pending_id === 0n ? '' : idToHex(t.pending_id),
    paymentId: payment === undefined || payment.paymentId !== t.user_data_128 ? '' : idToHex(payment.paymentId),
    code: t.code,
    pending: (t.flags & TransferFlags.pending) !== 0,
    postPendingTransfer: (t.flags & TransferFlags.post_pending_transfer) !== 0,
    voidPendingTransfer: (t.flags & TransferFlags.void_pending_transfer) !== 0,
    linked: (t.flags & TransferFlags.linked) !== 0,
    timeoutSeconds: t.timeout,
    createdAt: timestampFromMs(msOf(t.timestamp)),
  });
}

/** A page token of a line statement: the ledger timestamp (ns) of the last transfer read. */
/**
 * A page token this server issued: base64url of a ledger timestamp (ns, decimal). Node's base64
 * decoder skips characters outside the alphabet ("󀣑𚞾…" decodes to "4"), so the token must be
 * canonical base64url first.
 */
export function decodeNsToken(token: string): bigint {
  const text = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url').toString() : '';
  if (!/^[1-9]\d{0,19}$/.test(text) || BigInt(text) >= 1n << 63n || Buffer.from(text).toString('base64url') !== token) {
    throw invalidArgument('page_token', 'is not one this server issued');
  }
  return BigInt(text);
}

/** LedgerService: reads of accounts the caller owns (operators: any), and operator deposits. */
export function ledgerServiceImpl(deps: {
  ledger: Ledger;
  directory: Directory;
  payments: Pick<PaymentStore, 'get'>;
  enrollment: Enrollment;
  totals?: () => Promise<Map<number, { debitsPosted: bigint; creditsPosted: bigint; debitsPending: bigint; creditsPending: bigint }>>;
}): ServiceImpl<typeof LedgerService> {
  /** The account if the caller may read it, with its owner id; NOT_FOUND otherwise. */
  async function visibleAccount(ctx: HandlerContext, accountId: string): Promise<{ account: Account; ownerId: string }> {
    checkHexId(accountId, 'account_id');
    const caller = callerOf(ctx);
    let ownerId = '';
    if (caller.kind === 'merchant') {
      const merchant = await deps.directory.getMerchant(caller.merchantId);
      if (merchant !== undefined && Object.values(merchant.accounts).includes(accountId)) ownerId = merchant.id;
    } else if (caller.kind === 'payer') {
      const payer = await deps.directory.getPayer(caller.payerId);
      const lines = (payer?.billableLines ?? []).map((l) => l.accountId);
      if (payer !== undefined && [...Object.values(payer.accounts), ...lines].includes(accountId)) ownerId = payer.id;
    }
    const [account] = caller.kind !== 'admin' && ownerId === '' ? [] : await deps.ledger.lookupAccounts([idFromHex(accountId)]);
    if (account === undefined) throw notFound(`account ${accountId} not found`);
    return { account, ownerId };
  }

  function filterOf(
    accountId: string,
    req: { pageSize: number; pageToken: string; createdMin?: Timestamp; createdMax?: Timestamp; reversed: boolean },
  ): AccountFilter {
    let min = nsOf(req.createdMin, 'created_min');
    let max = nsOf(req.createdMax, 'created_max');
    if (req.pageToken !== '') {
      const last = decodeNsToken(req.pageToken);
      if (req.reversed) max = last - 1n;
      else min = last + 1n;
    }
    const flags = AccountFilterFlags.debits | AccountFilterFlags.credits | (req.reversed ? AccountFilterFlags.reversed : 0);
    return accountFilter({ account_id: idFromHex(accountId), limit: pageSize(req.pageSize), timestamp_min: min, timestamp_max: max, flags });
  }

  const nextToken = (timestamps: bigint[], limit: number) =>
    timestamps.length < limit ? '' : Buffer.from(String(timestamps[timestamps.length - 1])).toString('base64url');

  return {
    async getAccount(req, ctx) {
      const { account, ownerId } = await visibleAccount(ctx, req.accountId);
      return { account: accountToProto(account, ownerId) };
    },
    async listAccountTransfers(req, ctx) {
      await visibleAccount(ctx, req.accountId);
      const filter = filterOf(req.accountId, req);
      const transfers = await deps.ledger.getAccountTransfers(filter);
      return {
        transfers: transfers.map(transferToProto),
        nextPageToken: nextToken(
          transfers.map((t) => t.timestamp),
          filter.limit,
        ),
      };
    },
    async getAccountBalances(req, ctx) {
      const { account } = await visibleAccount(ctx, req.accountId);
      const filter = filterOf(req.accountId, req);
      const balances = await deps.ledger.getAccountBalances(filter);
      return {
        currency: currencyByLedger.get(account.ledger) ?? '',
        balances: balances.map((b) => ({
          debitsPending: b.debits_pending,
          debitsPosted: b.debits_posted,
          creditsPending: b.credits_pending,
          creditsPosted: b.credits_posted,
          timestamp: timestampFromMs(msOf(b.timestamp)),
        })),
        nextPageToken: nextToken(
          balances.map((b) => b.timestamp),
          filter.limit,
        ),
      };
    },
    async fundAccount(req, ctx) {
      requireAdmin(ctx);
      const id = await deps.enrollment.fund({ idempotencyKey: req.idempotencyKey, accountId: req.accountId, amount: req.amount, currency: req.currency });
      const [transfer] = await deps.ledger.lookupTransfers([id]);
      const [account] = await deps.ledger.lookupAccounts([idFromHex(req.accountId)]);
      return {
        transfer: transfer === undefined ? undefined : transferToProto(transfer),
        account: account === undefined ? undefined : accountToProto(account, ''),
      };
    },
    async getLineStatement(req, ctx) {
      const afterNs = req.pageToken === '' ? undefined : decodeNsToken(req.pageToken);
      const atMs = req.periodAt === undefined ? Date.now() : Number(nsOf(req.periodAt, 'period_at') / 1_000_000n);
      const st = await lineStatement({ ledger: deps.ledger, directory: deps.directory, payments: deps.payments }, callerOf(ctx), {
        lineId: req.lineId,
        atMs,
        limit: pageSize(req.pageSize),
        ...(afterNs === undefined ? {} : { afterNs }),
      });
      return {
        lineId: st.line.id,
        periodStart: timestampFromMs(st.periodStartMs),
        periodEnd: timestampFromMs(st.periodEndMs),
        currency: st.line.currency,
        creditLimit: st.creditLimit,
        chargedTotal: st.chargedTotal,
        reservedTotal: st.reservedTotal,
        available: st.available,
        entries: st.entries.map((e) => ({
          transferId: e.transferId,
          paymentId: e.paymentId,
          merchantId: e.merchantId,
          amount: e.amount,
          description: e.description,
          postedAt: timestampFromMs(e.postedAtMs),
        })),
        nextPageToken: st.nextAfterNs === undefined ? '' : Buffer.from(String(st.nextAfterNs)).toString('base64url'),
      };
    },
    async checkBalanced(req, ctx) {
      requireAdmin(ctx);
      if (deps.totals === undefined) throw precondition('CheckBalanced needs the embedded ledger; TigerBeetle keeps debits equal to credits by construction');
      const wanted = new Set(req.currencies);
      const ledgers = [...(await deps.totals()).entries()]
        .map(([ledger, s]) => ({ ledger, currency: currencyByLedger.get(ledger) ?? '', ...s }))
        .filter((l) => wanted.size === 0 || wanted.has(l.currency))
        .map((l) => ({
          ledger: l.ledger,
          currency: l.currency,
          debitsPending: l.debitsPending,
          debitsPosted: l.debitsPosted,
          creditsPending: l.creditsPending,
          creditsPosted: l.creditsPosted,
          balanced: l.debitsPosted === l.creditsPosted && l.debitsPending === l.creditsPending,
        }));
      return { balanced: ledgers.every((l) => l.balanced), ledgers };
    },
  };
}
