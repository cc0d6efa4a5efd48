#!/usr/bin/env bash
# Fails when the wire contract does not lint or when gen/ is stale.
#
# Runs `buf lint`, then `buf generate` into a temporary directory and compares it with gen/:
# any file that differs, is missing or is extra fails the check. It does not touch gen/ and does
# not depend on git state, so it works the same on a CI clone and in a working tree.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "check-generated: buf lint"
npx --no-install buf lint

echo "check-generated: buf generate (into a temporary directory)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
npx --no-install buf generate --output "$tmp"

if ! diff -r gen "$tmp/gen" >"$tmp/diff.txt"; then
  echo "check-generated: FAIL: gen/ is stale (differs from what buf generate writes):" >&2
  head -n 40 "$tmp/diff.txt" >&2
  echo "check-generated: run 'npm run generate' and commit proto/ and gen/ together." >&2
  exit 1
fi

echo "check-generated: OK (buf lint clean, gen/ up to date)"

# The contract must stay free of breaking changes once it has landed: compare with the commit
# that first added it (the baseline every client was built against).
baseline="$(git log --diff-filter=A --format=%H -- proto/countersign/v1/common.proto 2>/dev/null | tail -n 1 || true)"
if [[ -n "${baseline}" ]]; then
  echo "check-generated: buf breaking against ${baseline:0:12}"
  npx --no-install buf breaking --against ".git#ref=${baseline}"
else
  echo "check-generated: buf breaking skipped (no committed contract yet)"
fi
