import { fileURLToPath } from 'node:url';

/**
 * Where a bench writes its results. Every run writes to the git-ignored bench/results/latest/,
 * so running a bench (or the test command) never rewrites a tracked file; `--publish` writes to
 * bench/results/ instead: the published record, committed by hand (as `npm run reliability` does
 * with test/reliability/results/).
 */

/** The published results (written with --publish only). */
export const publishedResultsDir = fileURLToPath(new URL('./results/', import.meta.url));
/** Every other run's results: git-ignored. */
export const latestResultsDir = fileURLToPath(new URL('./results/latest/', import.meta.url));

/** The directory a run writes to: the published one only when asked to publish. */
export function resultsDirFor(publish: boolean): string {
  return publish ? publishedResultsDir : latestResultsDir;
}

/** The `--publish` flag, for a bench's parseArgs options. */
export const publishOption = { publish: { type: 'boolean', default: false } } as const;
