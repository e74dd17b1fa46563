#!/usr/bin/env bash
# `npm run torture`: issue 5's reliability suite (test/torture/run.ts), once
# scripts/setup.sh has installed what is missing and built dist/.
#   npm run torture -- [--seed S] [--scenario NAME[,NAME]] [--iterations N] [--scale F]
#                      [--quick] [--verbose] [--keep] [--list]
# Every scenario prints one line: iterations, failures, seconds, its figure.
# A failure prints its seed and the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "torture: not root: scenarios that need loop devices, FUSE or mounts say why they cannot run" >&2
fi
# The run's scratch folders, and the check at the end that nothing of them is
# left (loop devices, mounts, processes): as in scripts/test.sh.
scratch=$(mktemp -d /var/tmp/ulvm-torture.XXXXXX)
shm=""
[ -d /dev/shm ] && shm=$(mktemp -d /dev/shm/ulvm-torture.XXXXXX)
export ULVM_TEST_SCRATCH=$scratch ULVM_TEST_SCRATCH_SHM=$shm TMPDIR=$scratch
node dist/test/leftovers-cli.js snapshot "$scratch/.loops-before"
status=0
node dist/test/torture/run.js "$@" || status=$?
case " $* " in
  *" --list "*) ;;
  *) node dist/test/leftovers-cli.js check --before "$scratch/.loops-before" "$scratch" $shm || status=1 ;;
esac
rm -rf "$scratch" $shm
exit $status
