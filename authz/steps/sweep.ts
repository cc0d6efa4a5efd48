import type { StepDeps } from './context.js';
import { drive } from './drive.js';

/**
 * The sweeper's step: claims up to `limit` payments whose due time has come (atomically in the
 * store, so any number of processes may sweep) and drives each: expires challenges past their
 * time, posts approvals and voids reservations a crashed caller left behind. Returns how many it
 * claimed.
 */
export async function sweep(deps: StepDeps, limit: number): Promise<number> {
  const due = await deps.store.claimDue({ nowMs: deps.now(), limit, leaseMs: deps.limits.driveLeaseMs });
  if (due.length > 0) await drive(deps, due);
  return due.length;
}
