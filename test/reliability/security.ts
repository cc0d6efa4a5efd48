import { Redis } from 'ioredis';
import { defaultPaymentLimits } from '../../authz/payments.js';
import { type CheckBalancedResponse, LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from './scenario.js';
import { checkCrossAccess, checkUnauthenticated } from './security-access.js';
import { bruteForcePlans, runBruteForce } from './security-bruteforce.js';
import { type ReliabilityEnv, startReliabilityEnv } from './security-env.js';
import { statusName } from './security-rpc.js';
import { scanAtRest } from './security-scan.js';
import { checkForgedWebhooks, checkSmsPumping, startBridge, startTelcoSimulators, type TelcoWorld } from './security-telco.js';

/**
 * Security (issue 7), against one real authz server (Redis store, embedded ledger journaled in
 * its data directory, both ports on 127.0.0.1) behind a real telco bridge with simulated SMSC and
 * voice provider:
 * - brute force: wrong second codes on live challenges until each is closed (security-bruteforce.ts);
 * - cross-merchant and cross-payer access: NOT_FOUND, nothing consumed (security-access.ts);
 * - forged voice webhooks: 403, nothing changed; SMS-pumping limits hold (security-telco.ts);
 * - no credentials: UNAUTHENTICATED on every method of every service, both ports and the bridge;
 * - at rest: Redis and the data directory hold no registered secret (security-scan.ts).
 */

/** Time kept back from the deadline for the final checks and the scan, milliseconds. */
const reserveMs = 30_000;

export const runSecurity: Scenario = async (options: ScenarioOptions): Promise<ScenarioResult> => {
  const startedAt = Date.now();
  const counts: Record<string, number> = {};
  const violations: string[] = [];
  const secrets = new Set<string>();
  const sims = await startTelcoSimulators();
  let env: ReliabilityEnv | undefined;
  let telco: TelcoWorld | undefined;
  let redis: Redis | undefined;
  try {
    [sims.telcoKey, sims.authToken, sims.smppPassword].forEach((s) => secrets.add(s));
    env = await startReliabilityEnv({
      name: 'security',
      workDir: options.workDir,
      logDir: options.logDir,
      store: 'redis',
      journal: true,
      config: { telcoBridge: `127.0.0.1:${sims.bridgePort}`, telcoKey: sims.telcoKey },
    });
    secrets.add(env.adminKey);
    telco = await startBridge(sims, env, options.logDir);
    redis = new Redis(env.redis!.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    await step('unauthenticated', violations, counts, () => checkUnauthenticated(env!, `127.0.0.1:${sims.bridgePort}`, counts, violations));
    await step('cross access', violations, counts, () => checkCrossAccess(env!, secrets, counts, violations));
    await step('forged webhooks', violations, counts, () => checkForgedWebhooks(env!, telco!, secrets, counts, violations));
    await step('SMS pumping', violations, counts, () => checkSmsPumping(env!, telco!, defaultPaymentLimits, secrets, counts, violations));
    await step('brute force', violations, counts, () =>
      runBruteForce(env!, redis!, bruteForcePlans[options.mode], startedAt + options.deadlineMs - reserveMs, secrets, counts, violations),
    );
    await step('ledger balance', violations, counts, () => checkBalanced(env!, violations));
    await step('secrets at rest', violations, counts, async () => {
      const scan = await scanAtRest(redis, env!.dataDir, secrets);
      Object.assign(counts, {
        redisKeysScanned: scan.redisKeys,
        redisBytesScanned: scan.redisBytes,
        dataFilesScanned: scan.files,
        dataBytesScanned: scan.fileBytes,
        secretsRegistered: secrets.size,
      });
      scan.findings.forEach((f) => violations.push(`secret at rest: ${f}`));
    });
  } catch (error) {
    violations.push(`security could not run: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    secrets.forEach((s) => options.secrets.add(s));
    redis?.disconnect();
    await telco?.close().catch(() => undefined);
    if (telco === undefined) await sims.close().catch(() => undefined);
    await env?.close();
  }
  return { name: 'security', counts, violations, durationMs: Date.now() - startedAt };
};

/** Runs one check; a check that cannot run is a violation, and the others still run. */
async function step(name: string, violations: string[], counts: Record<string, number>, run: () => Promise<void>): Promise<void> {
  const started = Date.now();
  try {
    await run();
  } catch (error) {
    violations.push(`security ${name} could not run: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    counts[`ms ${name}`] = Date.now() - started;
  }
}

async function checkBalanced(env: ReliabilityEnv, violations: string[]): Promise<void> {
  const o = await env.rpc.unary('grpc-js', LedgerService, 'checkBalanced', {}, { key: env.adminKey });
  if (!o.ok || !(o.value as CheckBalancedResponse).balanced)
    violations.push(`ledger: CheckBalanced after the security scenario answered ${o.ok ? 'unbalanced' : statusName(o)}`);
}
