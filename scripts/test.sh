#!/usr/bin/env bash
# Build, then run the test suite with node's built-in runner.
#   scripts/test.sh          all tests (unit + integration)
#   scripts/test.sh unit     unit tests only (beside the sources, src/**)
#   scripts/test.sh FILE...  the given compiled test files
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
node scripts/check-imports.mjs
case "${1:-all}" in
  unit) files=$(find dist/src -name '*.test.js' | sort) ;;
  all) files=$(find dist/src dist/test -name '*.test.js' | sort) ;;
  *) files="$*" ;;
esac
# A hung test file is cancelled (and fails the run) after TEST_TIMEOUT_MS, 20
# minutes by default, instead of using up CI's 90. On Node 20 the runner
# applies --test-timeout to each file's process as a whole; the whole suite
# takes ~8 minutes on 2 cores, the longest file well under that.
# shellcheck disable=SC2086
exec node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-1200000}" --test-reporter=spec $files
