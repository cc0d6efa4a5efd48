import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import test from 'ava';
import { serverNodeFlags, youngGenerationOf } from '../../services/runtime-flags.js';

test('the launchers spell out the same V8 flags as services/runtime-flags.ts, and leave them to NODE_OPTIONS when it sets them', (t) => {
  t.deepEqual(serverNodeFlags, ['--max-semi-space-size=64']);
  for (const file of ['bin/countersign.mjs', 'scripts/countersign.sh']) {
    const text = readFileSync(file, 'utf8');
    t.true(text.includes(serverNodeFlags[0]!), `${file} passes ${serverNodeFlags[0]}`);
    t.true(text.includes('NODE_OPTIONS'), `${file} yields to NODE_OPTIONS`);
  }
});

test('scripts/countersign.sh runs node with the flag, or without it when NODE_OPTIONS sets one (the script run by bash with its `exec node` turned into `echo node`)', (t) => {
  const script = readFileSync('scripts/countersign.sh', 'utf8')
    .replace(/^if \[ ! -d node_modules.*?\nfi\n/ms, '')
    .replace('exec node', 'echo node');
  const argsWith = (env: Record<string, string>) =>
    spawnSync('bash', ['-c', script, 'countersign.sh', 'version'], { env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8' });
  t.is(argsWith({}).stdout, 'node --max-semi-space-size=64 --import=tsx services/cli.ts version\n');
  t.is(argsWith({ NODE_OPTIONS: '--max-semi-space-size=8' }).stdout, 'node --import=tsx services/cli.ts version\n');
});

test('the banner says which semi-space limit the process runs with, and where it came from', (t) => {
  t.is(youngGenerationOf(['--max-semi-space-size=64', '--import=tsx'], undefined), '64 MB semi-spaces (--max-semi-space-size)');
  t.is(youngGenerationOf(['--max-semi-space-size=64'], '--max-semi-space-size=8'), '8 MB semi-spaces (--max-semi-space-size, from NODE_OPTIONS)');
  t.is(youngGenerationOf([], ''), "V8's default semi-spaces (16 MB)");
});
