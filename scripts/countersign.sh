#!/usr/bin/env bash
# Runs the countersign CLI from a checkout, installing dependencies first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
exec node --import=tsx services/cli.ts "$@"
