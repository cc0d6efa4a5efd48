import { randomBytes } from 'node:crypto';
import type { Message } from '@bufbuild/protobuf';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { base32Decode } from '../../authz/codes/secret.js';
import { Channel, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { type EnrollMerchantResponse, EnrollmentService, type EnrollPayerResponse } from '../../gen/countersign/v1/enrollment_pb.js';
import { type CheckBalancedResponse, type GetAccountResponse, LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { type ConfirmPaymentResponse, type GetChallengeResponse, PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { type CreatePaymentResponse, type GetPaymentResponse, PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { type Outcome, type RpcClients, statusName } from './security-rpc.js';

/** What the world needs of a server: its clients and the operator key. */
export interface WorldEnv {
  rpc: RpcClients;
  adminKey: string;
}

/**
 * The fuzz scenario's world, set up through the API before the snapshot: merchants A and B,
 * a payer with no money (every payment the fuzzer creates for it must be refused), target payers
 * whose only money is reserved by live CHALLENGED payments (the fuzzer attacks them with
 * foreign, replayed and expired codes), a payer with a SUCCEEDED payment (its codes are the
 * replayed ones) and one with an EXPIRED payment (the app clock is moved past its lifetime).
 */

export interface Actor {
  id: string;
  key: string;
  account: string;
  phone: string;
  secret: Buffer;
}

export interface MerchantActor {
  id: string;
  key: string;
  account: string;
}

export interface WorldPayment {
  id: string;
  merchant: 'A' | 'B';
  payer: Actor;
  amount: bigint;
  firstCode: string;
  secondCode: string;
}

export interface FuzzWorld {
  adminKey: string;
  merchants: { A: MerchantActor; B: MerchantActor };
  zero: Actor;
  targets: Actor[];
  replayer: Actor;
  expirer: Actor;
  live: WorldPayment[];
  succeeded: WorldPayment;
  expired: WorldPayment;
  /** Every account known before the fuzz, with its balances then. */
  accounts: Map<string, AccountBalances>;
  totals: LedgerTotals[];
  /** Every secret the world was given or computed (for the scans). */
  secrets: string[];
}

export interface AccountBalances {
  debitsPending: bigint;
  debitsPosted: bigint;
  creditsPending: bigint;
  creditsPosted: bigint;
}

export type LedgerTotals = AccountBalances & { currency: string };

/** Amounts of the live payments of each target payer: one factor (second code), and two (second code + PIN). */
const liveAmounts = [5_00n, 1500_00n, 42_00n];
const targetCount = 4;
export const fuzzPolicy = {
  currency: 'USD',
  noFactorBelow: 1_00n,
  oneFactorUpTo: 1000_00n,
  oneFactor: Factor.SECOND_CODE,
  moreFactors: [Factor.SECOND_CODE, Factor.FIRST_CODE_AND_PIN],
};

export class SetupError extends Error {
  override readonly name = 'SetupError';
}

function must<T extends Message>(what: string, outcome: Outcome): T {
  if (!outcome.ok) throw new SetupError(`${what}: ${statusName(outcome)} ${outcome.message}`);
  return outcome.value as T;
}

let serial = 0;
/** Letters before the numbers: pid, serial and hex joined by hyphens could otherwise read as a card number to the secret scan (see tenant.ts `key`). */
export const freshKey = (prefix: string): string => `${prefix}-p${process.pid}-s${++serial}-r${randomBytes(4).toString('hex')}`;
export const randomPhone = (area: string): string => `+1${area}${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;

export async function buildWorld(env: WorldEnv, advanceClockMs: (ms: number) => Promise<void>, codeTtlMs: number): Promise<FuzzWorld> {
  const admin = { key: env.adminKey };
  const rpc = env.rpc;
  const secrets: string[] = [env.adminKey];
  const merchant = async (name: string): Promise<MerchantActor> => {
    const r = must<EnrollMerchantResponse>(
      'enroll merchant',
      await rpc.unary('grpc-js', EnrollmentService, 'enrollMerchant', { idempotencyKey: freshKey('m'), name, currencies: ['USD'], feeBasisPoints: 100 }, admin),
    );
    secrets.push(r.apiKey);
    return { id: r.merchantId, key: r.apiKey, account: r.payeeAccountIds.USD! };
  };
  const payer = async (funds: bigint, pin?: string): Promise<Actor> => {
    const phone = randomPhone('628');
    const r = must<EnrollPayerResponse>(
      'enroll payer',
      await rpc.unary(
        'grpc-js',
        EnrollmentService,
        'enrollPayer',
        { idempotencyKey: freshKey('p'), phone, displayName: 'Fuzz payer', currencies: ['USD'], policies: [fuzzPolicy] },
        admin,
      ),
    );
    secrets.push(r.payerToken, r.verificationSecretBase32);
    const account = r.payer!.prepaidAccountIds.USD!;
    if (funds > 0n)
      must(
        'fund',
        await rpc.unary('grpc-js', LedgerService, 'fundAccount', { idempotencyKey: freshKey('f'), accountId: account, amount: funds, currency: 'USD' }, admin),
      );
    if (pin !== undefined) {
      must('set pin', await rpc.unary('grpc-js', EnrollmentService, 'setPin', { idempotencyKey: freshKey('pin'), payerId: r.payer!.id, pin }, admin));
      secrets.push(pin);
    }
    return { id: r.payer!.id, key: r.payerToken, account, phone, secret: base32Decode(r.verificationSecretBase32) };
  };
  const merchants = { A: await merchant('Fuzz shop A'), B: await merchant('Fuzz shop B') };
  const challenge = async (m: 'A' | 'B', p: Actor, amount: bigint): Promise<WorldPayment> => {
    const created = must<CreatePaymentResponse>(
      'create',
      await rpc.unary(
        'grpc-js',
        PaymentService,
        'createPayment',
        { idempotencyKey: freshKey('c'), payer: { case: 'payerId', value: p.id }, amount, currency: 'USD', description: 'fuzz target', channel: Channel.APP },
        { key: merchants[m].key },
      ),
    );
    if (created.payment?.state !== PaymentState.CHALLENGED) throw new SetupError(`a target payment is ${created.payment?.state}, not CHALLENGED`);
    const c = must<GetChallengeResponse>(
      'get challenge',
      await rpc.unary('grpc-js', PayerService, 'getChallenge', { paymentId: created.payment.id }, { key: p.key }),
    );
    const secondCode = deriveSecondCode(p.secret, { firstCode: c.firstCode, amount, currency: 'USD', payeeAccountId: c.payeeAccountId });
    secrets.push(c.firstCode, secondCode);
    return { id: created.payment.id, merchant: m, payer: p, amount, firstCode: c.firstCode, secondCode };
  };
  const zero = await payer(0n);
  const replayer = await payer(100_00n);
  const expirer = await payer(100_00n);
  const succeeded = await challenge('A', replayer, 10_00n);
  const confirmed = must<ConfirmPaymentResponse>(
    'confirm',
    await rpc.unary(
      'grpc-js',
      PayerService,
      'confirmPayment',
      { idempotencyKey: freshKey('ok'), paymentId: succeeded.id, proof: { case: 'secondCode', value: succeeded.secondCode } },
      { key: replayer.key },
    ),
  );
  if (confirmed.payment?.state !== PaymentState.SUCCEEDED) throw new SetupError('the replayed payment did not succeed');
  const expired = await challenge('B', expirer, 20_00n);
  await advanceClockMs(codeTtlMs + 1_000);
  const gone = must<GetPaymentResponse>(
    'get expired',
    await rpc.unary('grpc-js', PaymentService, 'getPayment', { paymentId: expired.id }, { key: merchants.B.key }),
  );
  if (gone.payment?.state !== PaymentState.EXPIRED) throw new SetupError(`the expired payment is ${gone.payment?.state}`);
  const targets: Actor[] = [];
  const live: WorldPayment[] = [];
  for (let i = 0; i < targetCount; i += 1) {
    const pin = String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999));
    const target = await payer(
      liveAmounts.reduce((a, b) => a + b, 0n),
      pin,
    );
    targets.push(target);
    for (const amount of liveAmounts) live.push(await challenge(i % 2 === 0 ? 'A' : 'B', target, amount));
  }
  const actors = [zero, replayer, expirer, ...targets];
  const accounts = await snapshotAccounts(env, [...actors.map((a) => a.account), merchants.A.account, merchants.B.account]);
  return { adminKey: env.adminKey, merchants, zero, targets, replayer, expirer, live, succeeded, expired, accounts, totals: await ledgerTotals(env), secrets };
}

export async function snapshotAccounts(env: WorldEnv, ids: string[]): Promise<Map<string, AccountBalances>> {
  const balances = new Map<string, AccountBalances>();
  for (const id of ids) {
    const a = must<GetAccountResponse>('get account', await env.rpc.unary('grpc-js', LedgerService, 'getAccount', { accountId: id }, { key: env.adminKey }))
      .account!;
    balances.set(id, { debitsPending: a.debitsPending, debitsPosted: a.debitsPosted, creditsPending: a.creditsPending, creditsPosted: a.creditsPosted });
  }
  return balances;
}

export async function ledgerTotals(env: WorldEnv): Promise<LedgerTotals[]> {
  const r = must<CheckBalancedResponse>('check balanced', await env.rpc.unary('grpc-js', LedgerService, 'checkBalanced', {}, { key: env.adminKey }));
  if (!r.balanced) throw new SetupError('the ledger does not balance');
  return r.ledgers.map((l) => ({
    currency: l.currency,
    debitsPending: l.debitsPending,
    debitsPosted: l.debitsPosted,
    creditsPending: l.creditsPending,
    creditsPosted: l.creditsPosted,
  }));
}
