import test, { type ExecutionContext } from 'ava';
import { ConnectError } from '@connectrpc/connect';
import { Channel, Factor, PaymentState, type Payment } from '../../gen/countersign/v1/common_pb.js';
import type { BatchCreatePaymentsRequest, CreatePaymentRequest } from '../../gen/countersign/v1/payments_pb.js';
import { balance, key, newMerchant, newPayer, secondCode, startEnv, testPolicy, type Env, type Merchant, type Payer, type StoreKind } from '../e2e/harness.js';

/**
 * The batch RPCs run a batch path in the domain (authz/payments-batch.ts). Each item's outcome
 * must be what the one-at-a-time RPC gives: the same scenario runs twice on fresh actors, once
 * as BatchCreatePayments + BatchConfirmPayments, once as the same items sent one after another
 * as CreatePayment + ConfirmPaymentAsMerchant; states, factors, attempts, statuses, messages
 * (ids masked) and the resulting balances must agree.
 */

type CreateItem = Omit<CreatePaymentRequest, '$typeName' | '$unknown'> & { $typeName?: never };
type ConfirmItem = { idempotencyKey: string; paymentId: string; secondCode: string };
type Outcome = string;

interface Actors {
  payer: Payer;
  byPhone: Payer & { phone: string };
  poor: Payer;
  locked: Payer;
  shop: Merchant;
  otherShop: Merchant;
  /** Set up one at a time before the batch: a create key to replay, a succeeded payment with its confirm key, another merchant's payment, five payments of `locked`. */
  replayKey: string;
  settled: { id: string; confirmKey: string; code: string };
  foreign: string;
  lockedPayments: { id: string; amount: bigint }[];
}

const mask = (text: string) => text.replace(/[0-9a-f]{32}/g, '<id>');

function describe(outcome: { payment?: Payment; error?: { code: number; message: string } }): Outcome {
  if (outcome.error !== undefined) return `error ${outcome.error.code} ${mask(outcome.error.message)}`;
  const p = outcome.payment!;
  return `${PaymentState[p.state]} required=${p.requiredFactors.map((f) => Factor[f]).join('+')} satisfied=${p.satisfiedFactors.map((f) => Factor[f]).join('+')} attempts=${p.attemptsLeft} decline=${p.declineReason} amount=${p.amount}`;
}

async function enrollByPhone(env: Env): Promise<Payer & { phone: string }> {
  const phone = `+1416${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
  const r = await env.admin.enrollment.enrollPayer({ idempotencyKey: key('payer'), phone, displayName: 'Payer', currencies: ['USD'], policies: [testPolicy] });
  const account = r.payer!.prepaidAccountIds['USD']!;
  await env.admin.ledger.fundAccount({ idempotencyKey: key('fund'), accountId: account, amount: 500_00n, currency: 'USD' });
  const { base32Decode } = await import('../../authz/codes/secret.js');
  return { id: r.payer!.id, secret: base32Decode(r.verificationSecretBase32), secretBase32: r.verificationSecretBase32, token: r.payerToken, account, api: env.clients(r.payerToken), phone };
}

async function actors(env: Env): Promise<Actors> {
  const [payer, byPhone, poor, locked, shop, otherShop] = await Promise.all([newPayer(env), enrollByPhone(env), newPayer(env, 10_00n), newPayer(env), newMerchant(env, 100, 300_00n), newMerchant(env)]);
  const create = (m: Merchant, p: Payer, amount: bigint, idempotencyKey = key('setup')) =>
    m.api.payments.createPayment({ idempotencyKey, payer: { case: 'payerId', value: p.id }, amount, currency: 'USD', description: 'setup' }).then((r) => r.payment!);
  const replayKey = key('replay');
  await create(shop, payer, 3_00n, replayKey);
  const toSettle = await create(shop, payer, 4_00n);
  const confirmKey = key('settle');
  const code = secondCode(payer, env.inbox.firstCodeFor(toSettle.id)!, 4_00n, shop.account);
  await shop.api.payments.confirmPaymentAsMerchant({ idempotencyKey: confirmKey, paymentId: toSettle.id, secondCode: code });
  const foreign = (await create(otherShop, payer, 2_00n)).id;
  const lockedPayments = [];
  for (let i = 0; i < 6; i++) lockedPayments.push({ id: (await create(shop, locked, BigInt(2_00 + i))).id, amount: BigInt(2_00 + i) });
  return { payer, byPhone, poor, locked, shop, otherShop, replayKey, settled: { id: toSettle.id, confirmKey, code }, foreign, lockedPayments };
}

function createItems(a: Actors): CreateItem[] {
  const k0 = key('k0');
  const base = (payerId: string, amount: bigint, idempotencyKey = key('item')): CreateItem => ({ idempotencyKey, payer: { case: 'payerId', value: payerId }, amount, currency: 'USD', description: 'batch', payeeAccountId: '', channel: Channel.UNSPECIFIED, requestedFactors: [], authPassword: '', billableLineId: '' });
  return [
    base(a.payer.id, 20_00n, k0),
    base(a.payer.id, 50n),
    base('f'.repeat(32), 5_00n),
    base(a.payer.id, 0n),
    { ...base(a.payer.id, 5_00n), currency: 'XXX' },
    base(a.payer.id, 20_00n, k0),
    base(a.payer.id, 21_00n, k0),
    base(a.poor.id, 30_00n),
    base(a.payer.id, 400_00n),
    { ...base(a.payer.id, 5_00n), requestedFactors: [Factor.FIRST_CODE_AND_PIN] },
    { ...base('', 6_00n), payer: { case: 'payerPhone', value: a.byPhone.phone } },
    { ...base(a.payer.id, 7_00n), channel: Channel.APP },
    { ...base(a.payer.id, 8_00n), channel: 99 as Channel },
    { ...base(a.payer.id, 3_00n, a.replayKey), description: 'setup' },
    base(a.payer.id, 9_00n),
    base(a.locked.id, 1_50n),
    base(a.locked.id, 1_60n),
    base(a.locked.id, 1_70n),
  ];
}

function confirmItems(env: Env, a: Actors, created: (Payment | undefined)[]): ConfirmItem[] {
  const id = (i: number) => created[i]?.id ?? '0'.repeat(32);
  const right = (i: number, payer: Payer) => secondCode(payer, env.inbox.firstCodeFor(id(i))!, created[i]!.amount, a.shop.account);
  const wrongOf = (code: string) => (code === '12345678' ? '87654321' : '12345678');
  const lockedRight = (p: { id: string; amount: bigint }) => secondCode(a.locked, env.inbox.firstCodeFor(p.id)!, p.amount, a.shop.account);
  const item = (paymentId: string, code: string, idempotencyKey = key('c')): ConfirmItem => ({ idempotencyKey, paymentId, secondCode: code });
  return [
    item(id(0), right(0, a.payer)),
    item(id(10), wrongOf(right(10, a.byPhone))),
    item(id(11), '123'),
    item('0'.repeat(32), '12345678'),
    item(id(1), '12345678'),
    item(id(0), right(0, a.payer)),
    item(a.foreign, '12345678'),
    item(a.settled.id, a.settled.code, a.settled.confirmKey),
    item(a.settled.id, '00000000', a.settled.confirmKey),
    item(id(14), right(14, a.payer), ''),
    ...a.lockedPayments.slice(0, 5).map((p) => item(p.id, wrongOf(lockedRight(p)))),
    item(a.lockedPayments[5]!.id, lockedRight(a.lockedPayments[5]!)),
    item(id(14), right(14, a.payer)),
  ];
}

type Results = { results: { outcome: { case: 'payment'; value: Payment } | { case: 'error'; value: { code: number; message: string } } | { case: undefined } }[] };

function outcomesOf(res: Results): { payment?: Payment; error?: { code: number; message: string } }[] {
  return res.results.map((r) => (r.outcome.case === 'payment' ? { payment: r.outcome.value } : r.outcome.case === 'error' ? { error: r.outcome.value } : {}));
}

async function oneByOne<T>(items: T[], call: (item: T) => Promise<{ payment?: Payment }>) {
  const out: { payment?: Payment; error?: { code: number; message: string } }[] = [];
  for (const item of items) {
    try {
      out.push({ payment: (await call(item)).payment! });
    } catch (error) {
      const e = ConnectError.from(error);
      out.push({ error: { code: e.code, message: e.rawMessage } });
    }
  }
  return out;
}

async function money(env: Env, a: Actors) {
  const accounts = [a.payer.account, a.byPhone.account, a.poor.account, a.locked.account, a.shop.account];
  return Promise.all(accounts.map((account) => balance(env, account)));
}

async function compare(t: ExecutionContext, store: StoreKind) {
  // Eight codes per number and per payer: `locked` gets six in the setup, so the batch meets the limit.
  const env = await startEnv('grpc-js', store, { codesPerDestinationMax: 8, codesPerPayerMax: 8 });
  try {
    const [batched, single] = [await actors(env), await actors(env)];
    const bCreated = outcomesOf((await batched.shop.api.payments.batchCreatePayments({ idempotencyKey: `batch-create-${Date.now()}`, items: createItems(batched) } as unknown as BatchCreatePaymentsRequest)) as unknown as Results);
    const sCreated = await oneByOne(createItems(single), (item) => single.shop.api.payments.createPayment(item as unknown as CreatePaymentRequest));
    t.deepEqual(bCreated.map(describe), sCreated.map(describe));
    t.is(bCreated[5]!.payment!.id, bCreated[0]!.payment!.id, 'a key twice in one batch: the same payment');
    const bConfirmed = outcomesOf((await batched.shop.api.payments.batchConfirmPayments({ idempotencyKey: `batch-confirm-${Date.now()}`, items: confirmItems(env, batched, bCreated.map((o) => o.payment)) })) as unknown as Results);
    const sConfirmed = await oneByOne(confirmItems(env, single, sCreated.map((o) => o.payment)), (item) => single.shop.api.payments.confirmPaymentAsMerchant(item));
    t.deepEqual(bConfirmed.map(describe), sConfirmed.map(describe));
    t.deepEqual(await money(env, batched), await money(env, single), 'the same money moved');
    const states = new Set([...bCreated, ...bConfirmed].map((o) => describe(o).split(' ')[0] + (o.error === undefined ? '' : ` ${o.error.code}`)));
    t.true(states.size >= 8, `the scenario meets many outcomes: ${[...states].join(', ')}`);
    t.is(bConfirmed[0]!.payment!.state, PaymentState.SUCCEEDED);
    t.is(bConfirmed.at(-2)!.error?.code, 8, 'the lockout from wrong codes earlier in the same batch');
  } finally {
    await env.close();
  }
}

test('batch items get what one-at-a-time calls get (memory stores)', (t) => compare(t, 'memory'));
test('batch items get what one-at-a-time calls get (Redis stores)', (t) => compare(t, 'redis'));
