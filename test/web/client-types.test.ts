import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';

/**
 * The terminal's browser code (services/web/client/*.mts) is outside the main program (which
 * has no DOM types); its own tsconfig checks it with the DOM library, strict like the rest.
 */

/** Longest the check may take on a loaded 2-core machine. */
const typecheckMsMax = 90_000;

test('the browser code type-checks with DOM types', (t) => {
  const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
  const project = fileURLToPath(new URL('../../services/web/client/tsconfig.json', import.meta.url));
  const run = spawnSync(process.execPath, [tsc, '--noEmit', '-p', project], { encoding: 'utf8', timeout: typecheckMsMax });
  t.is(run.error, undefined, 'tsc ran within its bound');
  t.is(run.status, 0, `${run.stdout}${run.stderr}`);
});
