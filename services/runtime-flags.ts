/**
 * The V8 flags countersign's processes run with: `bin/countersign.mjs` and
 * `scripts/countersign.sh` start the CLI with them (both spell them out: they may import nothing
 * of ours; a test checks they match), `serve --workers` passes them on to its workers (cluster
 * forks with the primary's flags), and the bench starts its server with them.
 *
 * A young generation of up to 64 MB semi-spaces (V8's default: 16 MB): a batch of 1 000
 * authorizations allocates about 50 MB while its items are alive, and with 16 MB semi-spaces the
 * scavenger copied (and promoted) the same live batch several times per batch. Measured with
 * `bench/core.ts` (4 alternating pairs, 2026-12-05): memory store 149–167 → 118–150 µs per
 * authorization, Redis 227–275 → 212–263 µs (bench/README.md, "Performance round 5"). V8 grows
 * the semi-spaces only when survivors need it, so an idle or lightly loaded server stays small;
 * at most the young generation takes 3 × 64 MB. `NODE_OPTIONS=--max-semi-space-size=N` (any N)
 * replaces it.
 */
export const semiSpaceMb = 64;
export const serverNodeFlags: readonly string[] = [`--max-semi-space-size=${semiSpaceMb}`];

/** The semi-space limit this process runs with, as the start-up banner shows it. */
export function youngGenerationOf(execArgv: readonly string[], nodeOptions: string | undefined): string {
  const flag = /--max-semi-space-size[= ](\d+)/;
  const fromEnv = flag.exec(nodeOptions ?? '')?.[1];
  const fromArgs = execArgv.map((a) => flag.exec(a)?.[1]).find((v) => v !== undefined);
  const mb = fromEnv ?? fromArgs;
  return mb === undefined
    ? "V8's default semi-spaces (16 MB)"
    : `${mb} MB semi-spaces (--max-semi-space-size${fromEnv !== undefined ? ', from NODE_OPTIONS' : ''})`;
}
