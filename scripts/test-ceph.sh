#!/usr/bin/env bash
# npm run test:ceph: ulvm with a PV on a Ceph RBD image (opt-in, not part of
# `npm test`; about a minute here, a third of it booting Ceph).
#  1. installs what is missing from Debian 12 (ceph-mon ceph-osd ceph-mgr
#     ceph-common qemu-block-extra qemu-utils), saying what;
#  2. boots a single-node Ceph in a temporary directory (scripts/ceph-single-node.sh:
#     mon, mgr, one BlueStore OSD on a sparse file, pool "rbd" of size 1) and
#     creates the image rbd/pv0;
#  3. runs test/ceph/ceph-rbd.test.ts through scripts/test.sh (which builds
#     and checks for leftovers): qemu-nbd exports the image on a unix socket,
#     a raid1 and a mirror get one leg on it;
#  4. stops the cluster and removes its directory, also on failure or ^C.
# CEPH_TEST_KEEP=1 leaves the directory (logs) in place.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in ceph-mon ceph-osd ceph-mgr ceph-common qemu-block-extra qemu-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test:ceph: installing ${need[*]} (apt-get install -y --no-install-recommends)"
  if [ "$(id -u)" != 0 ]; then
    echo "test:ceph: needs root to install them (and to run the tests' loop devices)" >&2
    exit 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
else
  echo "test:ceph: ceph-mon ceph-osd ceph-mgr ceph-common qemu-block-extra qemu-utils already installed"
fi

# shellcheck source=scripts/ceph-single-node.sh
source scripts/ceph-single-node.sh
dir=$(mktemp -d "${ULVM_TEST_SCRATCH_PARENT:-/var/tmp}/ulvm-ceph.XXXXXX")
booting=1
finish() {
  local status=$?
  if [ "$booting" = 1 ] && [ $status != 0 ]; then
    echo "test:ceph: Ceph did not boot (exit $status); the end of its logs:" >&2
    tail -n 20 "$dir"/log/*.log "$dir"/log/*.out "$dir"/log/*.mkfs >&2 2>/dev/null || true
  fi
  ceph_teardown
  if [ "${CEPH_TEST_KEEP:-0}" = 1 ]; then echo "test:ceph: cluster directory kept: $dir"; else rm -rf "$dir"; fi
  echo "test:ceph: $([ $status = 0 ] && echo passed || echo "FAILED (exit $status)") in ${SECONDS}s"
  exit $status
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

# Not under `if`, so that errexit stops the boot at its first failing step.
ceph_boot "$dir"
ceph_create_image pv0 256M
booting=0
boot=$SECONDS

export ULVM_TEST_CEPH_CONF="$dir/ceph.conf" ULVM_TEST_CEPH_KEYRING="$dir/keyring" ULVM_TEST_CEPH_IMAGE=rbd/pv0
bash scripts/test.sh dist/test/ceph/ceph-rbd.test.js
echo "test:ceph: Ceph up in ${boot}s, the build and the tests took $((SECONDS - boot))s"
