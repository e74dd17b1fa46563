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
  # dist/test/ceph needs a Ceph cluster: npm run test:ceph (scripts/test-ceph.sh) boots one and runs it.
  all) files=$(find dist/src dist/test -name '*.test.js' -not -path 'dist/test/ceph/*' | sort) ;;
  *) files="$*" ;;
esac
# Each run gets scratch folders of its own (tests make theirs under them: see
# test/helpers/scratch.ts), so that at the end the run can tell exactly what
# of its own is still on the machine: loop devices backed by its files, FUSE
# or other mounts under them, ulvmd/nbdfuse/nbdkit processes of its run dirs,
# and loop devices over lost FUSE mounts that appeared during the run. If
# anything is, the run names it, releases it, and fails.
scratch=$(mktemp -d "${ULVM_TEST_SCRATCH_PARENT:-/var/tmp}/ulvm-test.XXXXXX")
shm=""
[ -d /dev/shm ] && shm=$(mktemp -d /dev/shm/ulvm-test.XXXXXX)
export ULVM_TEST_SCRATCH=$scratch ULVM_TEST_SCRATCH_SHM=$shm TMPDIR=$scratch
node dist/test/leftovers-cli.js snapshot "$scratch/.loops-before"
# A hung test file is cancelled (and fails the run) after TEST_TIMEOUT_MS, 20
# minutes by default, instead of using up CI's 90. On Node 20 the runner
# applies --test-timeout to each file's process as a whole; the whole suite
# takes ~5-8 minutes on 2 cores, the longest file well under that.
status=0
# shellcheck disable=SC2086
node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-1200000}" --test-reporter=spec $files || status=$?
node dist/test/leftovers-cli.js check --before "$scratch/.loops-before" "$scratch" $shm || status=1
rm -rf "$scratch" $shm
exit $status
