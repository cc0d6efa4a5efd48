#!/usr/bin/env node
// `countersign` from a checkout: `npx countersign …` (package.json "bin"), or this file run
// directly. It runs services/cli.ts under tsx exactly as scripts/countersign.sh does
// (`node --import=tsx services/cli.ts`), resolved from this package, not from the working
// directory, in a child process: the CLI then runs the way every test and `npm run countersign`
// run it (tsx's loader in that process only; `serve --workers` forks services/cli.ts with it).
// SIGINT, SIGTERM and SIGHUP are passed on (the CLI ignores a repeated one while it stops), and
// the child's exit code — or its signal — is this process's.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const tsx = require.resolve('tsx');
const cli = fileURLToPath(new URL('../services/cli.ts', import.meta.url));
// services/runtime-flags.ts `serverNodeFlags` (a test checks they match); NODE_OPTIONS setting the same flag wins.
const v8Flags = (process.env.NODE_OPTIONS ?? '').includes('--max-semi-space-size') ? [] : ['--max-semi-space-size=64'];
const child = spawn(process.execPath, [...v8Flags, `--import=${pathToFileURL(tsx).href}`, cli, ...process.argv.slice(2)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  if (signal !== null) {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.removeAllListeners(s);
    process.kill(process.pid, signal);
  } else process.exit(code ?? 1);
});
