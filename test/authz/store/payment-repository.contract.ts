import test, { type ExecutionContext } from 'ava';
import type { Payment, PaymentState } from '../../../authz/model.js';
import type { PaymentRepository } from '../../../authz/ports.js';
import { hexId } from './challenge-store.contract.js';

export interface PaymentRepositoryFactory {
  /** A repository; the cases share it and use fresh ids, merchants and payers each. */
  open(): Promise<PaymentRepository>;
}

export function payment(overrides: Partial<Payment> = {}): Payment {
  const now = Date.now();
  return {
    id: hexId(),
    merchantId: hexId(),
    payerId: hexId(),
    payeeAccountId: hexId(),
    payerAccountId: hexId(),
    amount: 12_345_678_901_234_567_890n,
    currency: 'EUR',
    description: 'Coffee ☕ "quoted"',
    channel: 'APP',
    requiredFactors: ['SECOND_CODE'],
    satisfiedFactors: [],
    attemptsLeft: 5,
    state: 'CHALLENGED',
    createdAtMs: now,
    updatedAtMs: now,
    expiresAtMs: now + 300_000,
    feeAmount: 3n,
    ...overrides,
  };
}

type Body = (t: ExecutionContext, repo: PaymentRepository) => Promise<void>;

export function paymentRepositoryContract(name: string, factory: PaymentRepositoryFactory): void {
  let opened: Promise<PaymentRepository> | undefined;
  const repo = (): Promise<PaymentRepository> => (opened ??= factory.open());
  const c = (title: string, body: Body): void => {
    test(`${name} ${title}`, async (t) => body(t, await repo()));
  };
  test.after.always(`${name} close`, async () => {
    if (opened !== undefined) await (await opened).close();
  });

  c('put then get round-trips every field, bigint and optional ones included', async (t, repo) => {
    const declined = payment({ state: 'DECLINED', declineReason: 'ATTEMPTS_EXHAUSTED', declineDetail: 'five wrong codes', amount: 2n ** 64n - 1n });
    const plain = payment();
    await repo.put(declined);
    await repo.put(plain);
    t.deepEqual(await repo.get(declined.id), declined);
    t.deepEqual(await repo.get(plain.id), plain);
    t.false('declineReason' in (await repo.get(plain.id))!, 'absent optional fields stay absent');
    t.is(await repo.get(hexId()), undefined);
  });

  c('put replaces; reads are copies', async (t, repo) => {
    const p = payment();
    await repo.put(p);
    const read = (await repo.get(p.id))!;
    read.state = 'SUCCEEDED';
    read.satisfiedFactors.push('SECOND_CODE');
    p.amount = 1n;
    t.is((await repo.get(p.id))!.state, 'CHALLENGED', 'mutating a read changes nothing stored');
    t.is((await repo.get(p.id))!.amount, 12_345_678_901_234_567_890n, 'mutating the input after put changes nothing stored');
    const replaced = { ...read, satisfiedFactors: ['SECOND_CODE' as const], amount: 12_345_678_901_234_567_890n };
    await repo.put(replaced);
    t.deepEqual(await repo.get(p.id), replaced);
  });

  c('putMany and getMany keep order and report missing ids', async (t, repo) => {
    const batch = [payment(), payment(), payment()];
    await repo.putMany(batch);
    const missing = hexId();
    t.deepEqual(await repo.getMany([batch[2]!.id, missing, batch[0]!.id, batch[1]!.id]), [batch[2], undefined, batch[0], batch[1]]);
    t.deepEqual(await repo.getMany([]), []);
    await repo.putMany([]);
  });

  c('a replacing put (and putMany) changes the record; the payment stays listed by merchant, payer and state', async (t, repo) => {
    const merchantId = hexId();
    const [a, b, c] = [payment({ merchantId }), payment({ merchantId }), payment({ merchantId })];
    await repo.put(a);
    await repo.putMany([b, c]);
    const paid = { ...(await repo.get(a.id))!, state: 'SUCCEEDED' as const, satisfiedFactors: ['SECOND_CODE' as const] };
    await repo.put(paid, { replacing: true });
    const approved = (await repo.getMany([b.id, c.id])).map((p) => ({ ...p!, state: 'APPROVED' as const }));
    await repo.putMany(approved, { replacing: true });
    t.deepEqual(await repo.get(a.id), paid);
    t.deepEqual(await repo.getMany([b.id, c.id]), approved);
    t.deepEqual((await repo.list({ merchantId, limit: 10 })).map((p) => p.state), ['SUCCEEDED', 'APPROVED', 'APPROVED']);
    t.deepEqual((await repo.list({ payerId: b.payerId, states: ['APPROVED'], limit: 10 })).map((p) => p.id), [b.id]);
    t.deepEqual((await repo.list({ merchantId, states: ['CHALLENGED'], limit: 10 })).length, 0);
  });

  c('list by merchant: oldest first, paged with afterId', async (t, repo) => {
    const merchantId = hexId();
    const mine = Array.from({ length: 7 }, () => payment({ merchantId }));
    await repo.putMany([...mine].reverse());
    await repo.put(payment());
    const ids = (ps: Payment[]): string[] => ps.map((p) => p.id);
    t.deepEqual(ids(await repo.list({ merchantId, limit: 1000 })), ids(mine));
    const page1 = await repo.list({ merchantId, limit: 3 });
    const page2 = await repo.list({ merchantId, limit: 3, afterId: page1.at(-1)!.id });
    const page3 = await repo.list({ merchantId, limit: 3, afterId: page2.at(-1)!.id });
    t.deepEqual([ids(page1), ids(page2), ids(page3)], [ids(mine.slice(0, 3)), ids(mine.slice(3, 6)), ids(mine.slice(6))]);
    t.deepEqual(await repo.list({ merchantId, limit: 3, afterId: mine.at(-1)!.id }), []);
    t.deepEqual(await repo.list({ merchantId: hexId(), limit: 10 }), []);
    t.deepEqual(page1[0], mine[0]);
  });

  c('list by payer, by merchant and payer, and by state', async (t, repo) => {
    const [merchantId, payerId] = [hexId(), hexId()];
    const states: PaymentState[] = ['CHALLENGED', 'SUCCEEDED', 'DECLINED', 'SUCCEEDED', 'CHALLENGED'];
    const both = states.map((state) => payment({ merchantId, payerId, state }));
    const payerElsewhere = payment({ payerId });
    const merchantOther = payment({ merchantId });
    await repo.putMany([...both, payerElsewhere, merchantOther]);
    const ids = (ps: Payment[]): string[] => ps.map((p) => p.id);
    t.deepEqual(ids(await repo.list({ payerId, limit: 100 })), ids([...both, payerElsewhere]));
    t.deepEqual(ids(await repo.list({ merchantId, payerId, limit: 100 })), ids(both));
    const succeeded = both.filter((p) => p.state === 'SUCCEEDED');
    t.deepEqual(ids(await repo.list({ merchantId, states: ['SUCCEEDED'], limit: 100 })), ids(succeeded));
    const open = both.filter((p) => p.state === 'CHALLENGED' || p.state === 'DECLINED');
    t.deepEqual(ids(await repo.list({ payerId, merchantId, states: ['CHALLENGED', 'DECLINED'], limit: 2 })), ids(open.slice(0, 2)));
    t.deepEqual(
      ids(await repo.list({ merchantId, payerId, states: ['CHALLENGED', 'DECLINED'], limit: 2, afterId: open[1]!.id })),
      ids(open.slice(2)),
      'paging with a state filter',
    );
  });

  c('a payment moved to another merchant is listed only under the new one', async (t, repo) => {
    const [before, after] = [hexId(), hexId()];
    const p = payment({ merchantId: before });
    await repo.put(p);
    await repo.put({ ...p, merchantId: after });
    t.deepEqual(await repo.list({ merchantId: before, limit: 10 }), []);
    t.deepEqual(await repo.list({ merchantId: after, limit: 10 }), [{ ...p, merchantId: after }]);
  });

  c('list with no merchant or payer pages through every payment, oldest first', async (t, repo) => {
    const mine = [payment(), payment(), payment()];
    await repo.putMany(mine);
    const seen = (await repo.list({ limit: 1000, afterId: idBefore(mine[0]!.id) })).map((p) => p.id);
    const mineSeen = seen.filter((id) => mine.some((p) => p.id === id));
    t.deepEqual(mineSeen, mine.map((p) => p.id));
    t.deepEqual(seen, [...seen].sort(), 'ids ascending');
  });

  c('limits outside 1..1000 are programmer errors', async (t, repo) => {
    await t.throwsAsync(repo.list({ limit: 0 }), { message: /limit/ });
    await t.throwsAsync(repo.list({ limit: 1001 }), { message: /limit/ });
  });
}

/** The hex id just below `id` (ids are fixed-width lowercase hex, so string order is id order). */
function idBefore(id: string): string {
  return (BigInt('0x' + id) - 1n).toString(16).padStart(32, '0');
}
