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
  /** a progress line for the console during a long phase (the runner prefixes the scenario's name) */
  progress?: (line: string) => void;
}

/** How often a scenario under load reports its progress, milliseconds. */
export const progressEveryMs = 15_000;

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

/**
 * Reports `describe()` through `options.progress` every `progressEveryMs` until the returned
 * function is called (a long load phase is not silent on the console).
 */
export function progressTicker(options: ScenarioOptions, describe: () => string): () => void {
  const progress = options.progress;
  if (progress === undefined) return () => undefined;
  const timer = setInterval(() => progress(describe()), progressEveryMs);
  timer.unref();
  return () => clearInterval(timer);
}
