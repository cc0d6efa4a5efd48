import { join } from 'node:path';
import { EmbeddedLedger } from '../ledger/embedded/engine.js';
import type { Ledger } from '../ledger/port.js';
import type { Config } from './config.js';

/** The ledger engine the configuration asks for: TigerBeetle when addresses are set, else embedded. */
export async function openLedger(config: Config, options: { memory?: boolean } = {}): Promise<{ ledger: Ledger; describe: string }> {
  if (config.tbAddresses.length > 0) {
    const { TigerBeetleLedger } = await import('../ledger/tigerbeetle.js');
    const ledger = await TigerBeetleLedger.connect({
      clusterId: config.tbClusterId,
      addresses: config.tbAddresses,
      requestTimeoutMs: config.ledgerTimeoutMs,
    });
    return { ledger, describe: `TigerBeetle cluster ${config.tbClusterId} at ${config.tbAddresses.join(',')}` };
  }
  if (options.memory === true) return { ledger: await EmbeddedLedger.open({}), describe: 'embedded ledger (in memory)' };
  const dataDir = join(config.dataDir, 'ledger');
  return { ledger: await EmbeddedLedger.open({ dataDir }), describe: `embedded ledger journaled in ${dataDir}` };
}
