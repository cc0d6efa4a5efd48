import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parseOptions } from '../../bench/options.js';

test('--server-node-args and --load-node-args pass node flags to each process, and only flags', (t) => {
  const options = parseOptions(['--server-node-args=--max-semi-space-size=8 --no-opt', '--load-node-args= --max-old-space-size=512 ']);
  t.deepEqual(options.serverNodeArgs, ['--max-semi-space-size=8', '--no-opt']);
  t.deepEqual(options.loadNodeArgs, ['--max-old-space-size=512']);
  // The server's flags are serve's (services/runtime-flags.ts); an empty value gives V8's defaults.
  t.deepEqual(parseOptions([]).serverNodeArgs, ['--max-semi-space-size=64']);
  t.deepEqual(parseOptions(['--server-node-args=']).serverNodeArgs, []);
  // The generator's small young generation by default; an empty value gives V8's defaults.
  t.deepEqual(parseOptions([]).loadNodeArgs, ['--max-semi-space-size=1']);
  t.deepEqual(parseOptions(['--load-node-args=']).loadNodeArgs, []);
  // A script, a file to require or a value with spaces or shell characters is refused by name.
  for (const bad of ['bench/evil.ts', '--require=./x.js;rm', '-e', '--eval=1+1 2']) {
    const error = t.throws(() => parseOptions([`--load-node-args=${bad}`]), { instanceOf: RangeError });
    t.regex(error.message, /^--load-node-args: ".*" is not a node flag/);
  }
});

test('the default scenarios include the sequential unary-seq; --store takes journal; --seq-count and --seq-warmup are bounded integers', (t) => {
  const defaults = parseOptions([]);
  t.deepEqual(defaults.scenarios, ['echo', 'bare', 'unary-seq', 'unary', 'unary-half', 'batch', 'ledger']);
  t.deepEqual(parseOptions(['--quick']).scenarios, defaults.scenarios);
  t.is(defaults.seqCount, 300);
  t.is(defaults.seqWarmup, 30);
  t.is(parseOptions(['--quick']).seqCount, 300);
  const journal = parseOptions(['--store', 'journal', '--seq-count', '50', '--seq-warmup', '0']);
  t.is(journal.store, 'journal');
  t.is(journal.tag, 'journal-embedded');
  t.is(journal.seqCount, 50);
  t.is(journal.seqWarmup, 0);
  t.throws(() => parseOptions(['--seq-count', '0']), { instanceOf: RangeError, message: /--seq-count must be an integer/ });
  t.throws(() => parseOptions(['--store', 'journal', '--redis-url', 'redis://127.0.0.1:6379']), {
    instanceOf: RangeError,
    message: '--redis-url needs --store redis',
  });
  t.throws(() => parseOptions(['--store', 'disk']), { instanceOf: RangeError, message: /--store must be one of memory, journal, redis/ });
});

test('results go to the git-ignored bench/results/latest/ by default, to the committed bench/results/ only with --publish', (t) => {
  const bench = fileURLToPath(new URL('../../bench/', import.meta.url));
  t.is(parseOptions([]).resultsDir, join(bench, 'results', 'latest/'));
  t.is(parseOptions(['--publish']).resultsDir, join(bench, 'results/'));
  t.is(parseOptions(['--results-dir', '/tmp/runs/a']).resultsDir, '/tmp/runs/a');
  t.throws(() => parseOptions(['--publish', '--results-dir', '/tmp/runs/a']), {
    instanceOf: RangeError,
    message: '--publish writes bench/results/: leave out --results-dir',
  });
});

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const git = (args: string[]) => spawnSync('git', args, { cwd: repoRoot, encoding: 'utf8' });
const inGitWorkTree = git(['rev-parse', '--is-inside-work-tree']).stdout.trim() === 'true';

(inGitWorkTree ? test : test.skip)('bench/results/latest/ is git-ignored and bench/results/ is not (in a git work tree)', (t) => {
  // check-ignore exits 0 when the path is ignored, 1 when it is not.
  t.is(git(['check-ignore', '--quiet', '--no-index', 'bench/results/latest/bench-memory-embedded.json']).status, 0);
  t.is(git(['check-ignore', '--quiet', '--no-index', 'bench/results/latest/profiles/server-memory-embedded-unary.cpuprofile']).status, 0);
  t.is(git(['check-ignore', '--quiet', '--no-index', 'bench/results/bench-memory-embedded.json']).status, 1);
});
