#!/usr/bin/env bash
# The README's test command (`npm run test:all`): installs what the tests need on a fresh
# machine, checks the wire contract and types, runs every test, and ends with one plain line
# `N passed, N failed[, N skipped]` for CI.
set -uo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
fail() { echo "test-all: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

step "dependencies"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || fail "npm ci failed"
fi

step "system packages: redis-server (tests start private instances on loopback)"
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) || fail "could not install redis-server with apt-get"
  else
    fail "redis-server is missing: sudo apt-get install -y redis-server"
  fi
  # Debian starts a system instance on 6379; the tests use their own ports, so it may stay or go.
fi
redis-server --version

step "system packages: chromium (the payer web terminal's browser tests, test/web)"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || fail "could not install chromium with apt-get"
  else
    fail "/usr/bin/chromium is missing: sudo apt-get install -y chromium"
  fi
fi
/usr/bin/chromium --version 2>/dev/null || fail "/usr/bin/chromium does not run"

step "wire contract: buf lint, generated code in sync"
bash scripts/check-generated.sh || fail "proto lint failed or gen/ is stale (run npm run generate and commit)"

step "typecheck"
npx tsc --noEmit -p tsconfig.json || fail "typecheck failed"

step "tests"
tap=$(mktemp)
npx ava --tap "$@" | tee "$tap"
status=${PIPESTATUS[0]}
pass=$(grep -E '^# pass ' "$tap" | awk '{print $3}')
failed=$(grep -E '^# fail ' "$tap" | awk '{print $3}')
skipped=$(grep -E '^# skip ' "$tap" | awk '{print $3}')
rm -f "$tap"
pass=${pass:-0}; failed=${failed:-0}; skipped=${skipped:-0}
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

# The reliability suite (crash consistency, outages, fuzzing, security; README "Reliability")
# counts as one more test. SKIP_RELIABILITY=1 leaves it out (counted as skipped).
step "reliability suite, short mode: npm run reliability -- --short"
if [ "${SKIP_RELIABILITY:-0}" = "1" ]; then
  echo "skipped (SKIP_RELIABILITY=1)"
  skipped=$((skipped + 1))
else
  npm run --silent reliability -- --short
  reliability_status=$?
  if [ "$reliability_status" -eq 0 ]; then
    pass=$((pass + 1))
  else
    failed=$((failed + 1))
    if [ "$status" -eq 0 ]; then status=$reliability_status; fi
  fi
fi
echo
echo "${pass} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
