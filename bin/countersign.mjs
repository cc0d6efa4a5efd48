#!/usr/bin/env node
// `countersign` from a checkout: `npx countersign …` (package.json "bin"), or this file run
// directly. It runs services/cli.ts under tsx, as scripts/countersign.sh does with
// `node --import=tsx services/cli.ts`, with tsx and the CLI resolved from this package, not from
// the working directory. In this process rather than a child: signals (Ctrl-C, a supervisor's
// SIGTERM) and the exit code are the CLI's own, so there is nothing to forward and no second
// SIGINT to race the first, and `serve --workers` forks this same file.
import { register } from 'tsx/esm/api';

register();
await import('../services/cli.ts');
