import test from 'ava';
import { parseOptions } from '../../bench/options.js';

test('--server-node-args and --load-node-args pass node flags to each process, and only flags', (t) => {
  const options = parseOptions(['--server-node-args=--max-semi-space-size=8 --no-opt', '--load-node-args= --max-old-space-size=512 ']);
  t.deepEqual(options.serverNodeArgs, ['--max-semi-space-size=8', '--no-opt']);
  t.deepEqual(options.loadNodeArgs, ['--max-old-space-size=512']);
  t.deepEqual(parseOptions([]).serverNodeArgs, []);
  // The generator's small young generation by default; an empty value gives V8's defaults.
  t.deepEqual(parseOptions([]).loadNodeArgs, ['--max-semi-space-size=1']);
  t.deepEqual(parseOptions(['--load-node-args=']).loadNodeArgs, []);
  // A script, a file to require or a value with spaces or shell characters is refused by name.
  for (const bad of ['bench/evil.ts', '--require=./x.js;rm', '-e', '--eval=1+1 2']) {
    const error = t.throws(() => parseOptions([`--load-node-args=${bad}`]), { instanceOf: RangeError });
    t.regex(error.message, /^--load-node-args: ".*" is not a node flag/);
  }
});
