import { ledgerContract } from './contract.js';

const skipMessage = 'TB_ADDRESS not set: TigerBeetle contract run skipped (set TB_ADDRESS=host:port[,..] and optionally TB_CLUSTER_ID)';
const address = process.env.TB_ADDRESS;

if (address === undefined || address === '') {
  ledgerContract('tigerbeetle', {
    open: () => Promise.reject(new Error(skipMessage)),
    skip: skipMessage,
  });
} else {
  // Printed so a CI log shows the run happened (the skipped case prints its reason the same way).
  console.log(`[tigerbeetle] TB_ADDRESS=${address}: ledger contract runs against TigerBeetle cluster ${process.env.TB_CLUSTER_ID ?? '0'}`);
  ledgerContract('tigerbeetle', {
    open: async () => {
      // Loaded only when a cluster is configured, so the native client is not needed otherwise.
      const { TigerBeetleLedger } = await import('../../ledger/tigerbeetle.js');
      return TigerBeetleLedger.connect({
        clusterId: BigInt(process.env.TB_CLUSTER_ID ?? '0'),
        addresses: address.split(','),
        requestTimeoutMs: 10_000,
      });
    },
  });
}
