#!/usr/bin/env bash
# The README's test command (`npm run test:all`): installs what the tests need on a fresh
# machine, checks the wire contract and types, runs every test, checks that nothing wrote into
# the tree (tests and benches write only to temporary or git-ignored paths), and ends with the
# time it took and one plain line `N passed, N failed[, N skipped]` for CI.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS=0 # the duration printed at the end

# In a git work tree, what `git status` already showed before the run (the clean-tree check at
# the end counts only what the run itself changed).
in_git_tree=0; tree_before=""
if [ "$(git rev-parse --is-inside-work-tree 2>/dev/null)" = "true" ]; then
  in_git_tree=1
  tree_before=$(git status --porcelain)
fi

step() { printf '\n== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; } # minutes:seconds since the start
fail() { echo "test-all: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

step "dependencies"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || fail "npm ci failed"
fi

# One throwaway single-replica TigerBeetle cluster for the whole run, unless TB_ADDRESS already
# names one: the ledger contract suite, the e2e payment on TigerBeetle and the reliability
# suite's crash-tigerbeetle scenario run against it. Stopped, its data removed, at the end and
# on any exit (trap). Started with `node --import tsx` so that $! is the process to signal.
tb_start_timeout_s=180 # measured 8–11 s on an idle 2-core machine, up to 30 s when loaded
tb_pid=""; tb_out=""; tb_err=""; tb_failed=0
stop_tigerbeetle() {
  if [ -n "$tb_pid" ]; then
    kill -TERM "$tb_pid" 2>/dev/null
    wait "$tb_pid" 2>/dev/null
    tb_pid=""
    echo "== TigerBeetle: throwaway cluster stopped, its data removed"
  fi
  rm -f "$tb_out" "$tb_err"
}
# The reliability suite runs beside the tests (below); on an early exit it is stopped too.
rel_pid=""; rel_log=""
stop_background() {
  if [ -n "$rel_pid" ]; then kill -TERM "$rel_pid" 2>/dev/null; wait "$rel_pid" 2>/dev/null; rel_pid=""; fi
  rm -f "$rel_log"
  stop_tigerbeetle
}
trap stop_background EXIT
trap 'exit 130' INT TERM HUP

step "TigerBeetle: a throwaway cluster, started now, in the background (it takes 10-30 s)"
if [ -z "${TB_ADDRESS:-}" ]; then
  tb_out=$(mktemp); tb_err=$(mktemp)
  node --import tsx scripts/tigerbeetle-for-tests.ts --replicas 1 >"$tb_out" 2>"$tb_err" &
  tb_pid=$!
  tb_started_at=$SECONDS
fi

step "system packages: redis-server (tests start private instances on loopback)"
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing redis-server with apt-get …"
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
    echo "installing chromium (about 300 MB, a minute or two) with apt-get …"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || fail "could not install chromium with apt-get"
  else
    fail "/usr/bin/chromium is missing: sudo apt-get install -y chromium"
  fi
fi
/usr/bin/chromium --version 2>/dev/null || fail "/usr/bin/chromium does not run"

step "system packages: python3-grpcio, python3-protobuf (an independent reflection client, test/services/reflection.test.ts)"
if ! /usr/bin/python3 -c 'import grpc, google.protobuf' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing python3-grpcio and python3-protobuf with apt-get …"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-grpcio python3-protobuf >/dev/null) || fail "could not install python3-grpcio and python3-protobuf with apt-get"
  else
    fail "python3-grpcio and python3-protobuf are missing: sudo apt-get install -y python3-grpcio python3-protobuf"
  fi
fi
/usr/bin/python3 -c 'import grpc, google.protobuf; print("python3-grpcio", grpc.__version__, "protobuf", google.protobuf.__version__)' || fail "/usr/bin/python3 cannot import grpc"

step "wire contract: buf lint, generated code in sync"
bash scripts/check-generated.sh || fail "proto lint failed or gen/ is stale (run npm run generate and commit)"

step "typecheck"
npx tsc --noEmit -p tsconfig.json || fail "typecheck failed"

step "format, lint and import cycles (biome ci: biome.jsonc)"
npx biome ci --colors=off . || fail "biome: formatting, lint or an import cycle (npx biome check --write . fixes the formatting)"

step "TigerBeetle: waiting for its address"
if [ -n "${TB_ADDRESS:-}" ]; then
  echo "== TigerBeetle: TB_ADDRESS=${TB_ADDRESS} (cluster ${TB_CLUSTER_ID:-0}) given: ledger contract, e2e payment and crash-tigerbeetle run against it"
else
  tb_deadline=$((tb_started_at + tb_start_timeout_s))
  while ! grep -q '^TB_ADDRESS=' "$tb_out" && kill -0 "$tb_pid" 2>/dev/null && [ "$SECONDS" -lt "$tb_deadline" ]; do sleep 0.5; done
  if grep -q '^TB_ADDRESS=' "$tb_out"; then
    TB_ADDRESS=$(sed -n 's/^TB_ADDRESS=//p' "$tb_out"); TB_CLUSTER_ID=$(sed -n 's/^TB_CLUSTER_ID=//p' "$tb_out")
    export TB_ADDRESS TB_CLUSTER_ID
    echo "== TigerBeetle $(sed -n 's/^TB_VERSION=//p' "$tb_out"): throwaway cluster at ${TB_ADDRESS}, started in $(sed -n 's/^TB_START_MS=//p' "$tb_out") ms (ledger contract, e2e payment and crash-tigerbeetle run against it)"
  else
    tb_status=""
    if ! kill -0 "$tb_pid" 2>/dev/null; then wait "$tb_pid"; tb_status=$?; else kill -TERM "$tb_pid"; wait "$tb_pid"; fi
    tb_pid=""
    if [ "$tb_status" = "3" ]; then
      echo "== TigerBeetle: skipped (no ../shared/tigerbeetle/tigerbeetle and TB_BIN unset): the TigerBeetle contract suite, e2e payment and crash scenario are skipped"
    else
      # A binary that is there but does not start is a failure (counted below), not a skip.
      if [ -z "$tb_status" ]; then tb_why="gave no address within ${tb_start_timeout_s} s"; else tb_why="exited with status ${tb_status}"; fi
      echo "== TigerBeetle: FAILED to start (${tb_why}); its tests are skipped and the failure counted:" >&2
      cat "$tb_err" >&2
      tb_failed=1
    fi
  fi
fi

# The reliability suite (crash consistency, outages, fuzzing, security; README "Reliability")
# counts as one more test. It runs beside ava, not after it: ava keeps the two cores busy ~80 %
# of its time, the suite ~45 % (its scenarios wait on restarts and fault windows), so together
# they take about the longer of the two instead of their sum. Its output is kept and printed
# after the tests. SKIP_RELIABILITY=1 leaves it out (counted as skipped).
step "tests (ava), with the reliability suite in short mode beside them"
if [ "${SKIP_RELIABILITY:-0}" != "1" ]; then
  rel_log=$(mktemp)
  node --import tsx test/reliability/main.ts --short >"$rel_log" 2>&1 &
  rel_pid=$!
  echo "reliability suite started (pid ${rel_pid}); its output follows the tests"
fi
tap=$(mktemp)
npx ava --tap "$@" | tee "$tap"
status=${PIPESTATUS[0]}
pass=$(grep -E '^# pass ' "$tap" | awk '{print $3}')
failed=$(grep -E '^# fail ' "$tap" | awk '{print $3}')
skipped=$(grep -E '^# skip ' "$tap" | awk '{print $3}')
rm -f "$tap"
pass=${pass:-0}; failed=${failed:-0}; skipped=${skipped:-0}
printf '== [%d:%02d] ava finished: %s passed, %s failed, %s skipped\n' $((SECONDS / 60)) $((SECONDS % 60)) "$pass" "$failed" "$skipped"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$tb_failed" -eq 1 ]; then
  failed=$((failed + 1))
  if [ "$status" -eq 0 ]; then status=1; fi
fi

step "reliability suite, short mode (npm run reliability -- --short), started beside the tests"
if [ "${SKIP_RELIABILITY:-0}" = "1" ]; then
  echo "skipped (SKIP_RELIABILITY=1)"
  skipped=$((skipped + 1))
else
  # What it wrote so far, then the rest as it comes, until it exits.
  tail -n +1 -f --pid="$rel_pid" "$rel_log"
  wait "$rel_pid"
  reliability_status=$?
  rel_pid=""
  if [ "$reliability_status" -eq 0 ]; then
    pass=$((pass + 1))
  else
    failed=$((failed + 1))
    if [ "$status" -eq 0 ]; then status=$reliability_status; fi
  fi
fi
stop_tigerbeetle

# Tests and benches write only to temporary or git-ignored paths: a path that git now reports
# (modified, added, deleted or untracked) and did not before the run fails it, counted as one
# failed test. On a fresh clone (CI) that is: `git status --porcelain` must be empty. Paths a
# developer had already changed before the run are named, not counted.
if [ "$in_git_tree" -eq 1 ]; then
  step "clean tree: git status --porcelain"
  tree_after=$(git status --porcelain)
  dirtied=""; already=""
  while IFS= read -r line; do
    [ -z "$line" ] && continue
    if [ -n "$tree_before" ] && grep -qxF -- "$line" <<<"$tree_before"; then already+="  $line"$'\n'; else dirtied+="  $line"$'\n'; fi
  done <<<"$tree_after"
  if [ -n "$already" ]; then printf 'changed before test:all started (not counted):\n%s' "$already"; fi
  if [ -z "$dirtied" ]; then
    echo "clean: no test or bench wrote into the tree"
  else
    printf 'test-all: a test or bench wrote into the tree (write to a temporary or git-ignored path instead):\n%s' "$dirtied" >&2
    failed=$((failed + 1))
    if [ "$status" -eq 0 ]; then status=1; fi
  fi
fi

echo
echo "test:all took $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "${pass} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
