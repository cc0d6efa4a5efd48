#!/usr/bin/env bash
# Runs the countersign CLI from a checkout, installing dependencies first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
# services/runtime-flags.ts `serverNodeFlags` (a test checks they match); NODE_OPTIONS setting the same flag wins.
v8_flags=(--max-semi-space-size=64)
if [[ "${NODE_OPTIONS:-}" == *--max-semi-space-size* ]]; then v8_flags=(); fi
exec node "${v8_flags[@]}" --import=tsx services/cli.ts "$@"
