#!/usr/bin/env bash
# ulvm-server.sh - serve a ulvm LV through the daemon, as a server row of
# bench/nbd/peers.sh (SERVER_CMD / SERVER_MIRROR_CMD).
#
#   ulvm-server.sh linear   VG "ubl" on $FILE1, LV "lin" = 100%FREE (export ubl/lin)
#   ulvm-server.sh mirror   VG "ubm" on $FILE1 $FILE2 + a small log PV, LV "mir":
#                           2-leg mirror, disk log, --nosync (the legs start
#                           identical, as peers.sh makes them), export ubm/mir
#   ulvm-server.sh raid1    VG "ubr" on $FILE1 $FILE2, LV "r": raid1, 2 images,
#                           --nosync (each rmeta takes the first extent of its
#                           PV, the image the rest), export ubr/r
#
# Each start (re)creates the layout: the first MiB of every PV file is zeroed
# (label and metadata area; the LV data starts at pe_start = 1 MiB), then
# pvcreate, vgcreate, lvcreate -an. Then the daemon runs in the foreground
# (`ulvm daemon`, in this script's session, so peers.sh's accounting of CPU
# and RSS sees it), the LV is activated (`lvchange -ay`), and $SOCK becomes a
# symlink to the daemon's nbd.sock. SIGTERM stops the daemon gracefully (it
# flushes and cleans the mirror log) and waits for it.
#
# Environment: SOCK, FILE1, FILE2 (from peers.sh); ULVM_BENCH_STATE: a
# directory for ulvm.conf, the run/dev dirs and the log PV [dirname of $FILE1];
# ULVM_BIN [bin/ulvm of this repository]; ULVM_DIST as for bin/ulvm.
set -euo pipefail
mode=${1:?usage: ulvm-server.sh linear|mirror|raid1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ULVM=${ULVM_BIN:-$ROOT/bin/ulvm}
STATE=${ULVM_BENCH_STATE:-$(dirname "$FILE1")}/ulvm-$mode
mkdir -p "$STATE"/{etc,run,dev}
export ULVM_SYSTEM_DIR=$STATE/etc ULVM_RUN_DIR=$STATE/run ULVM_DEV_DIR=$STATE/dev

wipe_label() { dd if=/dev/zero of="$1" bs=1M count=1 conv=notrunc status=none; }
conf() {  # the PV files this layout may see, nothing else
    local list="" f
    for f in "$@"; do list+="\"$f\", "; done
    printf 'devices {\n\tscan = [ %s ]\n}\nactivation {\n\tdevice_path = 0\n}\n' "${list%, }" >"$STATE/etc/ulvm.conf"
}

case $mode in
    linear)
        VG=ubl LV=lin
        conf "$FILE1"
        wipe_label "$FILE1"
        "$ULVM" pvcreate -q "$FILE1" >/dev/null
        "$ULVM" vgcreate -q "$VG" "$FILE1" >/dev/null
        "$ULVM" lvcreate -q -an -l 100%FREE -n "$LV" "$VG" >/dev/null 2>&1
        ;;
    mirror)
        VG=ubm LV=mir
        LOGPV=$STATE/log.img
        [[ -f $LOGPV ]] || truncate -s 8M "$LOGPV"
        conf "$FILE1" "$FILE2" "$LOGPV"
        for f in "$FILE1" "$FILE2" "$LOGPV"; do wipe_label "$f"; done
        "$ULVM" pvcreate -q "$FILE1" "$FILE2" "$LOGPV" >/dev/null
        "$ULVM" vgcreate -q "$VG" "$FILE1" "$FILE2" "$LOGPV" >/dev/null
        # Both legs fill their PV; the log goes on the third.
        extents=$("$ULVM" pvs --noheadings -o pv_pe_count "$FILE1" | tr -d ' ')
        "$ULVM" lvcreate -q -an --type mirror -m1 --nosync -l "$extents" -n "$LV" "$VG" "$FILE1" "$FILE2" "$LOGPV" >/dev/null 2>&1
        ;;
    raid1)
        VG=ubr LV=r
        conf "$FILE1" "$FILE2"
        for f in "$FILE1" "$FILE2"; do wipe_label "$f"; done
        "$ULVM" pvcreate -q "$FILE1" "$FILE2" >/dev/null
        "$ULVM" vgcreate -q "$VG" "$FILE1" "$FILE2" >/dev/null
        extents=$("$ULVM" pvs --noheadings -o pv_pe_count "$FILE1" | tr -d ' ')
        "$ULVM" lvcreate -q -an --type raid1 -m1 --nosync -l $((extents - 1)) -n "$LV" "$VG" "$FILE1" "$FILE2" >/dev/null 2>&1
        ;;
    *) echo "ulvm-server.sh: unknown mode $mode" >&2; exit 3 ;;
esac

rm -f "$STATE/run/nbd.sock"
"$ULVM" daemon &
dpid=$!
trap 'kill -TERM $dpid 2>/dev/null; wait $dpid; exit 0' TERM INT
for ((i = 0; i < 200; i++)); do
    [[ -S $STATE/run/ulvmd.sock && -S $STATE/run/nbd.sock ]] && break
    kill -0 $dpid 2>/dev/null || { echo "ulvm-server.sh: daemon exited" >&2; exit 1; }
    sleep 0.05
done
"$ULVM" lvchange -ay "$VG/$LV" >&2
ln -sfn "$STATE/run/nbd.sock" "$SOCK"
wait $dpid
