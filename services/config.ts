/**
 * Process configuration from the environment. Every setting has an embedded default, so
 * `countersign` runs with no configuration at all (embedded ledger journaled under ./.data).
 */
export interface Config {
  /** Directory for the embedded ledger's journal (COUNTERSIGN_DATA_DIR, default ./.data). */
  dataDir: string;
  /** TigerBeetle replica addresses; when set, the TigerBeetle engine is used (COUNTERSIGN_TB_ADDRESSES). */
  tbAddresses: string[];
  /** TigerBeetle cluster id (COUNTERSIGN_TB_CLUSTER_ID, default 0). */
  tbClusterId: bigint;
  /** Deadline for one ledger request, in milliseconds (COUNTERSIGN_LEDGER_TIMEOUT_MS, default 5000). */
  ledgerTimeoutMs: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`${name} must be a positive integer, got "${text}"`);
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const addresses = (env.COUNTERSIGN_TB_ADDRESSES ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '');
  const clusterText = env.COUNTERSIGN_TB_CLUSTER_ID ?? '0';
  if (!/^\d+$/.test(clusterText)) throw new ConfigError(`COUNTERSIGN_TB_CLUSTER_ID must be an unsigned integer, got "${clusterText}"`);
  return {
    dataDir: env.COUNTERSIGN_DATA_DIR || '.data',
    tbAddresses: addresses,
    tbClusterId: BigInt(clusterText),
    ledgerTimeoutMs: positiveInt('COUNTERSIGN_LEDGER_TIMEOUT_MS', env.COUNTERSIGN_LEDGER_TIMEOUT_MS, 5000),
  };
}
