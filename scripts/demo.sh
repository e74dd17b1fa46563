#!/usr/bin/env bash
# The seed's story on image files: LVM mirroring as RAID1 without hardware RAID.
# Four 3 GB sparse files stand in for the partitions sdb1..sdb4 of the tutorial.
# Usage: bash scripts/demo.sh [SCRATCH_DIR]     (KEEP=1 keeps the scratch folder)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=${1:-$(mktemp -d /var/tmp/ulvm-demo.XXXXXX)}
mkdir -p "$SCRATCH"/{disks,etc,run,dev}
export ULVM_SYSTEM_DIR=$SCRATCH/etc ULVM_RUN_DIR=$SCRATCH/run ULVM_DEV_DIR=$SCRATCH/dev
D=$SCRATCH/disks
cat >"$ULVM_SYSTEM_DIR/ulvm.conf" <<CONF
devices {
	scan = [ "$D" ]
}
CONF

ulvm() { node "$REPO/bin/ulvm" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[36m# %s\033[0m\n' "$*"; "$@"; }

cleanup() {
	ulvm vgchange -an vg_test >/dev/null 2>&1 || true
	[ "${KEEP:-0}" = 1 ] && { echo "scratch kept in $SCRATCH"; return; }
	rm -rf "$SCRATCH"
}
trap cleanup EXIT

step "1. Partitions: four 3 GB image files"
for p in sdb1 sdb2 sdb3 sdb4; do truncate -s 3G "$D/$p"; done
ls -ls "$D"

step "2. PVs and a VG (sdb4 stays outside as the spare)"
for p in sdb1 sdb2 sdb3 sdb4; do run ulvm pvcreate "$D/$p"; done
run ulvm vgcreate vg_test "$D/sdb1" "$D/sdb2" "$D/sdb3"

step "3. A mirrored LV: data on sdb1, its mirror on sdb2, the log on sdb3"
run ulvm lvcreate -an -L 2.8G -m1 -n mirror_test vg_test "$D/sdb1" "$D/sdb2" "$D/sdb3"
run ulvm pvs
run ulvm vgs
run ulvm lvs -a -o +devices
