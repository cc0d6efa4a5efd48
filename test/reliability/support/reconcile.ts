import { join } from 'node:path';
import { countersignCommand, runToEnd } from './processes.js';
import type { World } from './world.js';

/** How long `countersign reconcile` may run, milliseconds. */
export const reconcileTimeoutMs = 120_000;

export interface ReconcileOutcome {
  examined: number;
  changed: Record<string, number>;
  anomalies: string[];
}

/**
 * Runs `countersign reconcile` as an operator would, on the world's data: authz is stopped
 * first (the embedded ledger's data directory belongs to one process), then started again —
 * `serve` reconciles once more before it listens.
 */
export async function reconcileWorld(world: World): Promise<ReconcileOutcome> {
  await world.authz.stop();
  const command = countersignCommand(['reconcile']);
  const logDir = join(world.authz.spec.logDir);
  const run = await runToEnd({ name: 'reconcile', ...command, env: world.authzEnv, logDir }, reconcileTimeoutMs);
  await world.authz.start();
  if (run.code !== 0) throw new Error(`countersign reconcile exited with ${run.code}`);
  // stdout holds the service's JSON log lines, then the report (indented JSON) last.
  const start = run.stdout.lastIndexOf('{\n  "examined"');
  if (start < 0) throw new Error('countersign reconcile printed no report');
  return JSON.parse(run.stdout.slice(start)) as ReconcileOutcome;
}
