#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh Debian machine: system packages the
# tests and the demo use, npm dependencies, and the TypeScript build.
#   scripts/setup.sh [--no-build] [--with-oracle]
#     --no-build     skip the build (scripts/test.sh builds anyway)
#     --with-oracle  also build lvm2's allocator as the mirror oracle for the
#                    differential tests when it is missing (scripts/lvm-oracle.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build=1 oracle=0
for arg in "$@"; do
  case $arg in
    --no-build) build=0 ;;
    --with-oracle) oracle=1 ;;
    *) echo "setup: unknown option $arg" >&2; exit 3 ;;
  esac
done

need=()
command -v lvm >/dev/null || need+=(lvm2)
command -v nbdinfo >/dev/null || need+=(libnbd-bin)
command -v nbdfuse >/dev/null || need+=(libnbd-bin)
command -v nbdkit >/dev/null || need+=(nbdkit)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v fio >/dev/null || need+=(fio)
command -v mkfs.ext3 >/dev/null || need+=(e2fsprogs)
command -v fusermount3 >/dev/null || need+=(fuse3)
# Kernel nbd device paths (device_path_server = "nbd"); without the nbd module its tests
# still check that the arguments ulvm builds negotiate with the daemon's export.
command -v nbd-client >/dev/null || need+=(nbd-client)
# Packet loss between a test's network namespaces (netem's "loss"; this kernel has no netem).
command -v nft >/dev/null || need+=(nftables)
command -v nsenter >/dev/null || need+=(util-linux)
command -v losetup >/dev/null || need+=(mount)
command -v jq >/dev/null || need+=(jq)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
command -v udevadm >/dev/null || need+=(udev)
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
[ $oracle = 0 ] || bash scripts/lvm-oracle.sh
[ $build = 0 ] || bash scripts/build.sh
