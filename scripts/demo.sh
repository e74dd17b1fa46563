#!/usr/bin/env bash
# The seed's story on image files: LVM mirroring as RAID1 without hardware RAID.
# Four 3 GB sparse files stand in for the partitions sdb1..sdb4 of the tutorial.
# Usage: bash scripts/demo.sh [--type raid1|pvmove] [SCRATCH_DIR]     (KEEP=1 keeps the scratch folder)
#   (npm run demo -- --type raid1): the same story with lvm2's raid1 segment
#   type instead of the legacy mirror: no log disk, the failed image replaced
#   with lvconvert --repair onto the spare.
#   (npm run demo -- --type pvmove): replacing a disk that still works, without
#   downtime: vgextend, pvmove, vgreduce, pvremove under a mounted ext4 that a
#   client keeps writing.
set -euo pipefail
TYPE=mirror
if [ "${1:-}" = "--type" ]; then TYPE=${2:?--type needs mirror, raid1 or pvmove}; shift 2; fi
case $TYPE in mirror|raid1|pvmove) ;; *) echo "demo: --type must be mirror, raid1 or pvmove" >&2; exit 3 ;; esac
REPO=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=${1:-$(mktemp -d /var/tmp/ulvm-demo.XXXXXX)}
mkdir -p "$SCRATCH"/{disks,etc,run,dev}
export ULVM_SYSTEM_DIR=$SCRATCH/etc ULVM_RUN_DIR=$SCRATCH/run ULVM_DEV_DIR=$SCRATCH/dev
D=$SCRATCH/disks
MNT=$SCRATCH/test
cat >"$ULVM_SYSTEM_DIR/ulvm.conf" <<CONF
devices {
	scan = [ "$D" ]
}
CONF
# Nobody watches a server: a hook in events.d tells the admin when a leg fails
# (the daemon runs every executable there for each event; mail_to would mail it).
mkdir -p "$ULVM_SYSTEM_DIR/events.d"
cat >"$ULVM_SYSTEM_DIR/events.d/10-alert" <<'HOOK'
#!/bin/sh
[ "$ULVM_EVENT_SEVERITY" = error ] && echo "ALERT: $ULVM_EVENT_NAME $ULVM_EVENT_VG${ULVM_EVENT_LV:+/$ULVM_EVENT_LV} ${ULVM_EVENT_LEG:-} ${ULVM_EVENT_PV:-}" >>"$ULVM_RUN_DIR/alerts.txt"
exit 0
HOOK
chmod +x "$ULVM_SYSTEM_DIR/events.d/10-alert"

ulvm() { node "$REPO/bin/ulvm" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[36m# %s\033[0m\n' "$*"; "$@"; }

cleanup() {
	set +e
	touch "$SCRATCH/stop-writer"; wait 2>/dev/null
	mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
	ulvm vgchange -an vg_test >/dev/null 2>&1
	[ -f "$ULVM_RUN_DIR/ulvmd.pid" ] && kill "$(cat "$ULVM_RUN_DIR/ulvmd.pid")" 2>/dev/null
	sleep 0.5
	if [ "${KEEP:-0}" = 1 ]; then echo "scratch kept in $SCRATCH"; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT

if [ "$TYPE" = pvmove ]; then
	step "1. The old disk: sdb1 (a 3 GB image file) holds vg_test with a 1 GB LV"
	for p in sdb1 sdb4; do truncate -s 3G "$D/$p"; done
	run ulvm pvcreate "$D/sdb1"
	run ulvm vgcreate vg_test "$D/sdb1"
	run ulvm lvcreate -L 1G -n data vg_test
	FS=0
	if [ "$(id -u)" = 0 ] && command -v nbdfuse >/dev/null; then FS=1; else
		echo "(no root or no nbdfuse: no device path, so no filesystem; the LV is moved while active all the same)"
	fi
	if [ $FS = 1 ]; then
		step "2. A filesystem in use: ext4 mounted, a client appending numbered lines (each synced) all along"
		run mkfs.ext4 -q "$ULVM_DEV_DIR/vg_test/data"
		mkdir -p "$MNT"
		run mount "$ULVM_DEV_DIR/vg_test/data" "$MNT"
		(i=0; while [ ! -e "$SCRATCH/stop-writer" ]; do i=$((i + 1)); echo "$i $(date +%T.%N)" >>"$MNT/log.txt"; sync "$MNT/log.txt"; sleep 0.05; done) &
	fi

	step "3. The new disk sdb4 joins the VG"
	run ulvm pvcreate "$D/sdb4"
	run ulvm vgextend vg_test "$D/sdb4"

	step "4. pvmove sdb1 sdb4 in the background; lvs shows [pvmove0], its Move column and Cpy%Sync"
	run ulvm pvmove -b "$D/sdb1" "$D/sdb4"
	while ulvm lvs -a --noheadings -o name vg_test | grep -q pvmove; do
		ulvm lvs -a -o name,attr,move_pv,copy_percent,devices vg_test 2>/dev/null; sleep 1
	done
	run ulvm lvs -a -o +devices vg_test

	step "5. The old disk leaves the VG and loses its label: it can be pulled"
	run ulvm vgreduce vg_test "$D/sdb1"
	run ulvm pvremove "$D/sdb1"
	run ulvm pvs
	if [ $FS = 1 ]; then
		step "6. The client never stopped: its lines are all there, in order; the filesystem is clean"
		sleep 1; touch "$SCRATCH/stop-writer"; wait
		run tail -n 2 "$MNT/log.txt"
		awk '$1 != NR { print "line " NR " is wrong: " $0; bad = 1 } END { if (!bad) print NR " lines, none missing"; exit bad }' "$MNT/log.txt"
		run umount "$MNT"
		run e2fsck -fn "$ULVM_DEV_DIR/vg_test/data"
	fi
	exit 0
fi

if [ "$TYPE" = raid1 ]; then
	step "1. Partitions: four 3 GB image files (sdb1 and sdb2 the two images, sdb3 spare room, sdb4 the spare)"
	for p in sdb1 sdb2 sdb3 sdb4; do truncate -s 3G "$D/$p"; done
	for p in sdb1 sdb2 sdb3 sdb4; do run ulvm pvcreate "$D/$p"; done
	run ulvm vgcreate vg_test "$D/sdb1" "$D/sdb2" "$D/sdb3"

	step "2. A raid1 LV: image 0 on sdb1, image 1 on sdb2, each with its rmeta (superblock + write-intent bitmap) in front"
	run ulvm lvcreate --type raid1 -L 2.8G -m1 -n mirror_test vg_test "$D/sdb1" "$D/sdb2"
	run ulvm lvs -a -o +devices
	echo "(waiting for the initial sync)"
	while [ "$(ulvm lvs --noheadings -o copy_percent vg_test/mirror_test | tr -d ' ')" != "100.00" ]; do
		ulvm lvs --noheadings -o lv_name,copy_percent,raid_sync_action vg_test/mirror_test; sleep 1
	done
	run ulvm lvs -a -o name,attr,copy_percent,raid_sync_action,raid_mismatch_count,lv_health_status,devices

	if [ "$(id -u)" != 0 ] || ! command -v nbdfuse >/dev/null; then
		echo "Steps 3-6 need root (a loop device over nbdfuse makes the device path); stopping here."
		exit 0
	fi
	step "3. A filesystem on the raid1 LV"
	run mkfs.ext3 -q "$ULVM_DEV_DIR/vg_test/mirror_test"
	mkdir -p "$MNT"
	run mount "$ULVM_DEV_DIR/vg_test/mirror_test" "$MNT"

	step "4. The failure drill: write a file, wipe the start of sdb2, keep using the data"
	for x in $(seq 1 100); do echo "$x test test test " >> "$MNT/test.txt"; done
	sync
	run dd if=/dev/zero of="$D/sdb2" count=10 bs=1M conv=notrunc
	sleep 1
	echo "more data after the failure" >> "$MNT/test.txt"; sync
	run ulvm lvs -a -o +devices,lv_health_status
	run tail -n 3 "$ULVM_RUN_DIR/ulvmd.log"
	run cat "$ULVM_RUN_DIR/alerts.txt"
	run umount "$MNT"
	run mount "$ULVM_DEV_DIR/vg_test/mirror_test" "$MNT"
	run tail -n 3 "$MNT/test.txt"

	step "5. Replace the failed image with one on the spare sdb4, then drop the dead disk"
	run ulvm vgextend vg_test "$D/sdb4"
	run ulvm lvconvert --repair -y vg_test/mirror_test "$D/sdb4"
	while [ "$(ulvm lvs --noheadings -o copy_percent vg_test/mirror_test 2>/dev/null | tr -d ' ')" != "100.00" ]; do
		ulvm lvs --noheadings -o lv_name,copy_percent,raid_sync_action vg_test/mirror_test 2>/dev/null; sleep 1
	done
	run ulvm vgreduce --removemissing vg_test
	run ulvm lvs -a -o name,attr,copy_percent,raid_sync_action,lv_health_status,devices
	run tail -n 3 "$MNT/test.txt"
	run umount "$MNT"
	run e2fsck -fn "$ULVM_DEV_DIR/vg_test/mirror_test"
	run ulvm events

	step "6. Both images hold the same bytes"
	node "$REPO/bin/ulvm" lvchange -an vg_test/mirror_test
	# Each image starts at PE 1 of its PV (its rmeta is PE 0): 1 MiB pe_start + 4 MiB; 717 extents of 4 MiB.
	run cmp <(dd if="$D/sdb1" bs=1M skip=5 count=2868 status=none) <(dd if="$D/sdb4" bs=1M skip=5 count=2868 status=none) && echo "images identical"
	exit 0
fi

step "1. Partitions: four 3 GB image files (sdb1 data, sdb2 its mirror, sdb3 the log, sdb4 the spare)"
for p in sdb1 sdb2 sdb3 sdb4; do truncate -s 3G "$D/$p"; done
ls -ls "$D"

step "2. PVs and a VG (sdb4 stays outside, as a hot spare)"
for p in sdb1 sdb2 sdb3 sdb4; do run ulvm pvcreate "$D/$p"; done
run ulvm vgcreate vg_test "$D/sdb1" "$D/sdb2" "$D/sdb3"

step "3. A mirrored LV: data on sdb1, its mirror on sdb2, the log on sdb3"
run ulvm lvcreate -L 2.8G -m1 -n mirror_test vg_test "$D/sdb1" "$D/sdb2" "$D/sdb3"
run ulvm lvs -a -o +devices
echo "(waiting for the initial copy of leg 0 to leg 1)"
run ulvm lvconvert -i 1 vg_test/mirror_test
run ulvm pvs
run ulvm vgs

if [ "$(id -u)" != 0 ] || ! command -v nbdfuse >/dev/null; then
	echo "Steps 4-7 need root (a loop device over nbdfuse makes the device path); stopping here."
	exit 0
fi

step "4. A filesystem on the mirror"
run mkfs.ext3 -q "$ULVM_DEV_DIR/vg_test/mirror_test"
mkdir -p "$MNT"
run mount "$ULVM_DEV_DIR/vg_test/mirror_test" "$MNT"

step "5. The failure drill: write a file, wipe the start of sdb2, keep using the data"
for x in $(seq 1 100); do echo "$x test test test " >> "$MNT/test.txt"; done
sync
run dd if=/dev/zero of="$D/sdb2" count=10 bs=1M conv=notrunc
sleep 1
echo "more data after the failure" >> "$MNT/test.txt"; sync
run ulvm lvs -a -o +devices
run ulvm lvscan
run cat "$ULVM_RUN_DIR/alerts.txt"
run umount "$MNT"
run mount "$ULVM_DEV_DIR/vg_test/mirror_test" "$MNT"
run tail -n 3 "$MNT/test.txt"

step "6. Remove the dead disk: the mirror becomes linear"
run ulvm vgreduce --removemissing --force vg_test
run ulvm vgdisplay vg_test
run ulvm lvs -a -o +devices

step "7. Rebuild onto the spare sdb4"
run ulvm vgextend vg_test "$D/sdb4"
run ulvm lvconvert -m1 -i 2 "$ULVM_DEV_DIR/vg_test/mirror_test" "$D/sdb1" "$D/sdb4" "$D/sdb3"
run ulvm lvdisplay vg_test/mirror_test
run ulvm lvs -a -o +devices
run tail -n 3 "$MNT/test.txt"
run umount "$MNT"
run e2fsck -fn "$ULVM_DEV_DIR/vg_test/mirror_test"
run ulvm events

step "Both legs hold the same bytes"
node "$REPO/bin/ulvm" lvchange -an vg_test/mirror_test
# Leg 0 is sdb1 from its pe_start, leg 1 is sdb4 from its pe_start (1 MiB each), 717 extents of 4 MiB.
run cmp <(dd if="$D/sdb1" bs=1M skip=1 count=2868 status=none) <(dd if="$D/sdb4" bs=1M skip=1 count=2868 status=none) && echo "legs identical"
