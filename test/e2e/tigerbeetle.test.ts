import test from 'ava';
import { Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { idFromHex } from '../../ledger/ids.js';
import { balance, key, newMerchant, newPayer, secondCode, startEnv } from './harness.js';

/**
 * The authz service end to end on a real TigerBeetle cluster (TB_ADDRESS, as the ledger contract
 * suite; scripts/test-all.sh starts a throwaway one when the binary is there): enroll, fund, one
 * frictionless and one second-code payment over gRPC, then the balances as the service reports
 * them and as the cluster itself holds them.
 */
const address = process.env.TB_ADDRESS ?? '';
const clusterId = BigInt(process.env.TB_CLUSTER_ID ?? '0');
/** The ledger deadline for this test's own reads of the cluster. */
const requestTimeoutMs = 10_000;

if (address === '') {
  const why =
    'TB_ADDRESS not set: e2e payment on TigerBeetle skipped (set TB_ADDRESS=host:port[,..]; npm run test:all starts a cluster when ../shared/tigerbeetle/tigerbeetle or TB_BIN is there)';
  console.log(`[tigerbeetle e2e] ${why}`);
  test.skip(`e2e on TigerBeetle: ${why}`, (t) => {
    t.fail('skipped');
  });
} else {
  console.log(`[tigerbeetle e2e] TB_ADDRESS=${address}: e2e payment runs against TigerBeetle cluster ${clusterId}`);

  test('e2e on TigerBeetle: a frictionless and a second-code payment move money once, as the cluster shows', async (t) => {
    const addresses = address.split(',');
    const env = await startEnv('grpc-js', 'memory', {}, { tbAddresses: addresses, tbClusterId: clusterId });
    t.teardown(() => env.close());
    t.true(
      env.app.describe.some((line) => line.startsWith('TigerBeetle cluster')),
      `the service runs on TigerBeetle: ${env.app.describe.join('; ')}`,
    );

    // Nothing to prove below 10.00 for this payer; the second code above. The merchant's fee is 1%.
    const [payer, shop] = await Promise.all([newPayer(env, 500_00n, { noFactorBelow: 10_00n }), newMerchant(env, 100)]);
    const pay = (amount: bigint) =>
      shop.api.payments.createPayment({
        idempotencyKey: key('tb'),
        payer: { case: 'payerId', value: payer.id },
        amount,
        currency: 'USD',
        description: 'on TigerBeetle',
      });

    const quick = (await pay(5_00n)).payment!;
    t.is(quick.state, PaymentState.SUCCEEDED);
    const challenged = (await pay(40_00n)).payment!;
    t.is(challenged.state, PaymentState.CHALLENGED);
    t.deepEqual(challenged.requiredFactors, [Factor.SECOND_CODE]);
    t.deepEqual(await balance(env, payer.account), { available: 495_00n, posted: 495_00n, reserved: 0n, credited: 500_00n }, 'the challenge holds nothing');

    const firstCode = env.inbox.firstCodeFor(challenged.id);
    if (firstCode === undefined) return t.fail(`no first code delivered for ${challenged.id}`);
    const proof = { case: 'secondCode' as const, value: secondCode(payer, firstCode, 40_00n, shop.account) };
    const confirmed = await payer.api.payer.confirmPayment({ idempotencyKey: key('tb'), paymentId: challenged.id, proof });
    t.is(confirmed.payment!.state, PaymentState.SUCCEEDED);
    t.deepEqual(await balance(env, payer.account), { available: 455_00n, posted: 455_00n, reserved: 0n, credited: 500_00n });
    t.is((await balance(env, shop.account)).posted, 5_00n - 5n + (40_00n - 40n), 'the merchant got both amounts less 1%');

    // The same balances read from the cluster with a client of our own, not through the service.
    const { TigerBeetleLedger } = await import('../../ledger/tigerbeetle.js');
    const ledger = await TigerBeetleLedger.connect({ clusterId, addresses, requestTimeoutMs });
    t.teardown(() => ledger.close());
    const [payerAccount, shopAccount] = await ledger.lookupAccounts([idFromHex(payer.account), idFromHex(shop.account)]);
    t.deepEqual(
      [payerAccount?.credits_posted, payerAccount?.debits_posted, payerAccount?.debits_pending],
      [500_00n, 45_00n, 0n],
      'payer: funded once, paid 5.00 + 40.00, nothing left reserved',
    );
    t.is(shopAccount!.credits_posted - shopAccount!.debits_posted, 44_55n);
  });
}
