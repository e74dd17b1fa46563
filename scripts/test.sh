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
# shellcheck disable=SC2086
exec node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-reporter=spec $files
