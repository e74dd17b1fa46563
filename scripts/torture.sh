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
exec node dist/test/torture/run.js "$@"
