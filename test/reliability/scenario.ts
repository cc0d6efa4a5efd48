/**
 * The contract between the reliability runner (`test/reliability/main.ts`) and its scenarios.
 * A scenario starts its own real processes under `workDir`, keeps every log under `logDir`,
 * registers every secret it used so the runner can scan the logs for leaks, stops before
 * `deadlineMs` and reports counts and broken invariants as values (violations), not throws.
 */
export interface ScenarioOptions {
  mode: 'short' | 'soak';
  workDir: string;
  /** logs of every process go under workDir/logs/*.log */
  logDir: string;
  /** register every secret a scenario used (codes, PINs, passwords, enrolled secrets, card numbers) for the final scan */
  secrets: Set<string>;
  /** the scenario's time budget in milliseconds; the runner stops waiting for it after this */
  deadlineMs: number;
  /** the run's seed (printed in the report); a scenario that draws random choices seeds its PRNG with it */
  seed?: number;
}

export interface ScenarioResult {
  name: string;
  /** e.g. payments, kills, outages, fuzzed, guesses */
  counts: Record<string, number>;
  violations: string[];
  durationMs: number;
  /** What the runner should say in the report's notes (e.g. a dependency's own failure the scenario rode out). */
  notes?: string[];
}

export type Scenario = (options: ScenarioOptions) => Promise<ScenarioResult>;
