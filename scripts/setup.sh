#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh Debian machine: system packages the
# tests and the demo use, npm dependencies, and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v lvm >/dev/null || need+=(lvm2)
command -v nbdinfo >/dev/null || need+=(libnbd-bin)
command -v nbdfuse >/dev/null || need+=(libnbd-bin)
command -v nbdkit >/dev/null || need+=(nbdkit)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v fio >/dev/null || need+=(fio)
command -v mkfs.ext3 >/dev/null || need+=(e2fsprogs)
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v losetup >/dev/null || need+=(mount)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
      apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
    }
  else
    echo "setup: missing ${need[*]} (not root or no apt-get): tests that need them will skip" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >/dev/null 2>&1 || npm ci --no-audit --no-fund
fi
[ "${1:-}" = "--no-build" ] || bash scripts/build.sh
