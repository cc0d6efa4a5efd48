import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toJson } from '@bufbuild/protobuf';
import { createClient, createRouterTransport, type Interceptor } from '@connectrpc/connect';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { base32Decode } from '../../authz/codes/secret.js';
import { platformAccountIds } from '../../authz/enrollment.js';
import { InboxNotifier } from '../../authz/notifier.js';
import { accountsOf, reservationSeconds } from '../../authz/steps/context.js';
import { Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { EnrollmentService } from '../../gen/countersign/v1/enrollment_pb.js';
import { AccountKind, GetAccountResponseSchema, LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { PayerService } from '../../gen/countersign/v1/payer_pb.js';
import { PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { currencyOf } from '../../ledger/chart.js';
import { idToHex } from '../../ledger/ids.js';
import { AccountFlags } from '../../ledger/model.js';
import { type App, createApp } from '../../services/app.js';
import { loadConfig } from '../../services/config.js';
import { balancesOf } from '../../services/handlers/ledger-service.js';
import { routesOf } from '../../services/rpc/grpc-host.js';
import { authenticate } from '../../services/rpc/interceptors.js';
import { serviceEntries } from '../../services/server.js';

/**
 * LedgerService.GetAccount's `balance` and `available` over the embedded ledger (in memory),
 * through the in-memory router transport with the real services and authentication, on the
 * Connect protocol in both its binary and its JSON encoding.
 */

async function appFor(t: ExecutionContext): Promise<{ app: App; inbox: InboxNotifier }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cs-ledger-service-'));
  const inbox = new InboxNotifier();
  const config = { ...loadConfig({}), dataDir, masterKey: randomBytes(32).toString('base64'), adminKey: `cs_admin_${randomBytes(16).toString('hex')}` };
  const app = await createApp({ config, memoryLedger: true, memoryDirectory: true, memoryStore: true, notifier: inbox, logger: pino({ level: 'silent' }) });
  t.teardown(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { app, inbox };
}

function clientsFor(app: App, key: string, useBinaryFormat: boolean) {
  const bearer: Interceptor = (next) => (req) => (req.header.set('authorization', `Bearer ${key}`), next(req));
  const transport = createRouterTransport(routesOf(serviceEntries(app)), {
    transport: { useBinaryFormat, interceptors: [bearer] },
    router: { interceptors: [authenticate((k) => app.resolvePrincipal(k), { publicMethods: [] })] },
  });
  return {
    ledger: createClient(LedgerService, transport),
    enrollment: createClient(EnrollmentService, transport),
    payments: createClient(PaymentService, transport),
    payer: createClient(PayerService, transport),
  };
}

for (const [format, useBinaryFormat] of [
  ['binary', true],
  ['JSON', false],
] as const) {
  test(`GetAccount (Connect ${format}) reports balance and available after a deposit, two reservations, a post and a void`, async (t) => {
    const { app, inbox } = await appFor(t);
    const admin = clientsFor(app, app.adminKey, useBinaryFormat);
    const merchant = await admin.enrollment.enrollMerchant({ idempotencyKey: 'm', name: 'Corner Bakery', currencies: ['USD'], feeBasisPoints: 100 });
    const payee = merchant.payeeAccountIds.USD!;
    const enrolled = await admin.enrollment.enrollPayer({
      idempotencyKey: 'p',
      phone: '+14155550123',
      displayName: 'Alice',
      currencies: ['USD'],
      policies: [
        {
          currency: 'USD',
          noFactorBelow: 5_00n,
          oneFactorUpTo: 500_00n,
          oneFactor: Factor.SECOND_CODE,
          moreFactors: [Factor.SECOND_CODE, Factor.FIRST_CODE_AND_PIN],
        },
      ],
    });
    const alice = enrolled.payer!;
    const account = alice.prepaidAccountIds.USD!;
    const shop = clientsFor(app, merchant.apiKey, useBinaryFormat).payments;
    const asAlice = clientsFor(app, enrolled.payerToken, useBinaryFormat);
    const read = async (id: string) => (await admin.ledger.getAccount({ accountId: id })).account!;
    const columns = async (id: string) => {
      const a = await read(id);
      return {
        balance: a.balance,
        available: a.available,
        debitsPending: a.debitsPending,
        debitsPosted: a.debitsPosted,
        creditsPending: a.creditsPending,
        creditsPosted: a.creditsPosted,
      };
    };

    t.like(await read(account), { kind: AccountKind.PAYER_PREPAID, debitsMustNotExceedCredits: true, balance: 0n, available: 0n });

    const funded = await admin.ledger.fundAccount({ idempotencyKey: 'deposit', accountId: account, amount: 200_00n, currency: 'USD' });
    t.like(funded.account, { balance: 200_00n, available: 200_00n }, 'FundAccount returns the account with its new balance');
    t.deepEqual(await columns(account), {
      balance: 200_00n,
      available: 200_00n,
      debitsPending: 0n,
      debitsPosted: 0n,
      creditsPending: 0n,
      creditsPosted: 200_00n,
    });

    // Two reservations: the money stays in the balance, `available` drops by both. A challenge holds
    // nothing before the payer consents, so they are made as an earlier version made them at create.
    const cake = (
      await shop.createPayment({
        idempotencyKey: 'cake',
        payer: { case: 'payerId', value: alice.id },
        amount: 42_00n,
        currency: 'USD',
        description: 'Birthday cake',
      })
    ).payment!;
    const gift = (
      await shop.createPayment({
        idempotencyKey: 'gift',
        payer: { case: 'payerId', value: alice.id },
        amount: 60_00n,
        currency: 'USD',
        description: 'Gift box',
      })
    ).payment!;
    t.is(cake.state, PaymentState.CHALLENGED);
    t.is(gift.state, PaymentState.CHALLENGED);
    t.deepEqual((await columns(account)).debitsPending, 0n, 'a challenge holds nothing');
    const deps = app.payments.deps;
    for (const record of await deps.store.get([cake.id, gift.id])) {
      t.is(await deps.ledger.reserve(record!.payment, accountsOf(deps, record!.payment), reservationSeconds(deps, record!.payment)), 'reserved');
    }
    t.deepEqual(await columns(account), {
      balance: 200_00n,
      available: 98_00n,
      debitsPending: 102_00n,
      debitsPosted: 0n,
      creditsPending: 0n,
      creditsPosted: 200_00n,
    });
    t.like(
      await read(payee),
      { kind: AccountKind.MERCHANT, balance: 0n, available: 0n, creditsPending: 102_00n },
      'a pending credit is not in the merchant balance',
    );

    // The post of the cake: it leaves the balance and the reservation; the merchant is paid less its 1 % fee.
    const secondCode = deriveSecondCode(base32Decode(enrolled.verificationSecretBase32), {
      firstCode: inbox.firstCodeFor(cake.id)!,
      amount: 42_00n,
      currency: 'USD',
      payeeAccountId: payee,
    });
    const posted = await asAlice.payer.confirmPayment({ idempotencyKey: 'confirm', paymentId: cake.id, proof: { case: 'secondCode', value: secondCode } });
    t.is(posted.payment!.state, PaymentState.SUCCEEDED);
    t.deepEqual(await columns(account), {
      balance: 158_00n,
      available: 98_00n,
      debitsPending: 60_00n,
      debitsPosted: 42_00n,
      creditsPending: 0n,
      creditsPosted: 200_00n,
    });
    t.deepEqual(await columns(payee), {
      balance: 42_00n - 42n,
      available: 42_00n - 42n,
      debitsPending: 0n,
      debitsPosted: 42n,
      creditsPending: 60_00n,
      creditsPosted: 42_00n,
    });

    // The void of the gift box: the reservation is released, the balance does not move.
    const cancelled = await shop.cancelPayment({ idempotencyKey: 'cancel', paymentId: gift.id, reason: 'not ordered' });
    t.is(cancelled.payment!.state, PaymentState.CANCELLED);
    t.deepEqual(await columns(account), {
      balance: 158_00n,
      available: 158_00n,
      debitsPending: 0n,
      debitsPosted: 42_00n,
      creditsPending: 0n,
      creditsPosted: 200_00n,
    });
    t.like(await read(payee), { balance: 41_58n, available: 41_58n, creditsPending: 0n });

    // The payer reads her own account and gets the same numbers.
    t.like((await asAlice.ledger.getAccount({ accountId: account })).account, { ownerId: alice.id, balance: 158_00n, available: 158_00n });

    // Debit-normal accounts: the fees account is credit-normal, the funding account (deposits) debit-normal.
    const platform = platformAccountIds(currencyOf('USD')!);
    t.like(await read(idToHex(platform.fees)), { kind: AccountKind.PLATFORM_FEES, balance: 42n, available: 42n });
    t.like(await read(idToHex(platform.funding)), { kind: AccountKind.UNSPECIFIED, code: 7, debitsPosted: 200_00n, balance: 200_00n, available: 200_00n });

    // On the Connect JSON wire both are decimal strings, like the uint64 columns beside them.
    const json = toJson(GetAccountResponseSchema, await admin.ledger.getAccount({ accountId: account })) as { account: Record<string, unknown> };
    t.like(json.account, { balance: '15800', available: '15800', debitsPosted: '4200', creditsPosted: '20000' });
  });
}

const raw = { id: 1n, flags: 0, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n };

test('balancesOf: credit-normal subtracts pending debits, debit-normal pending credits; pending towards the account never counts', (t) => {
  // A merchant (code 3), credit-normal: 100 in, 30 out, 5 pending out, 7 pending in.
  t.deepEqual(balancesOf({ ...raw, code: 3, credits_posted: 100n, debits_posted: 30n, debits_pending: 5n, credits_pending: 7n }), {
    balance: 70n,
    available: 65n,
  });
  // A postpaid line (code 2), debit-normal: charged 80, credited back 10, 20 pending charge, 4 pending credit.
  t.deepEqual(balancesOf({ ...raw, code: 2, debits_posted: 80n, credits_posted: 10n, debits_pending: 20n, credits_pending: 4n }), {
    balance: 70n,
    available: 66n,
  });
  // An account without a must-not-exceed flag may go below zero on its normal side: signed.
  t.deepEqual(balancesOf({ ...raw, code: 4, debits_posted: 9n }), { balance: -9n, available: -9n });
  // A code this version does not know reads as credit-normal.
  t.deepEqual(balancesOf({ ...raw, code: 99, credits_posted: 3n, debits_pending: 1n }), { balance: 3n, available: 2n });
});

test('balancesOf: a balance outside int64 or a prepaid account overdrawn is a broken invariant, not a number', (t) => {
  const u64Max = (1n << 64n) - 1n;
  t.throws(() => balancesOf({ ...raw, code: 3, credits_posted: 1n << 63n }), { message: /outside int64/ });
  t.deepEqual(balancesOf({ ...raw, code: 3, credits_posted: (1n << 63n) - 1n }), { balance: (1n << 63n) - 1n, available: (1n << 63n) - 1n });
  t.throws(() => balancesOf({ ...raw, code: 7, credits_posted: u64Max }), { message: /outside int64/ });
  t.throws(
    () => balancesOf({ ...raw, code: 1, flags: AccountFlags.debits_must_not_exceed_credits, credits_posted: 10n, debits_posted: 6n, debits_pending: 5n }),
    { message: /debits exceed credits/ },
  );
});

test('page tokens must be canonical base64url: characters outside the alphabet (which Node decodes by skipping them) are INVALID_ARGUMENT', async (t) => {
  const { decodeNsToken } = await import('../../services/handlers/ledger-service.js');
  const { decodePageToken, encodePageToken } = await import('../../services/handlers/caller.js');
  const issued = Buffer.from('1796484821000000000').toString('base64url');
  t.is(decodeNsToken(issued), 1796484821000000000n);
  // The fuzzer's token: Node reads it as "4", a timestamp; it is no token this server issued.
  for (const token of ['󀣑𚞾󣩅񲐺񒃯𱉠󱪹􍾤', `${issued}=`, `${issued.slice(0, 4)}!${issued.slice(4)}`, ` ${issued}`]) {
    const error = t.throws(() => decodeNsToken(token), undefined, JSON.stringify(token));
    t.regex(String(error?.message), /page_token is not one this server issued/);
  }
  const id = '01a246e4c9dc301a0a0d29a8f06aeae0';
  t.is(decodePageToken(encodePageToken(id)), id);
  t.throws(() => decodePageToken(`${encodePageToken(id).slice(0, 10)}\u00e9${encodePageToken(id).slice(10)}`), {
    message: /page_token is not one this server issued/,
  });
});
