#!/usr/bin/env bash
# bench.sh - `npm run bench` (after scripts/setup.sh has built dist/): every
# benchmark the issues ask for, each against its peers in the same run, and
# one summary table of ratios against their goals at the end.
#
#   1. metadata: `ulvm lvs/vgs/lvcreate` on a VG of 1,000 LVs against lvm2's
#      (bench/metadata.ts; issue 5).
#   2. linear LV over NBD (issue 3): a linear LV served by the ulvm daemon
#      (pvcreate, vgcreate, lvcreate -l 100%FREE, lvchange -ay; through the
#      mapper) against `nbdkit file` and qemu-nbd (raw, writeback, aio=threads,
#      glibc malloc tuned) on the same 1 GiB backing file: seq read/write 1 MiB
#      QD8, random read/write 4 KiB QD1 and QD32 (bench/nbd/peers.sh, fio's
#      nbd engine, ORDER=test: peers back to back per test).
#   3. mirror LV over NBD (issue 4): a 2-leg mirror LV (disk log) against the
#      linear LV, qemu-nbd's quorum driver over the same two files (tuned), and
#      the host's mirror limit (fio writing both files at once): writes 1 MiB
#      and 4 KiB random at QD32, reads 1 MiB QD8 and 4 KiB random QD32.
#   4. resync: a mirror's initial sync (lvconvert -m1 on a linear LV) against
#      a plain sequential copy (dd) of the same size (bench/resync.ts).
#   5. raid1 LV over NBD (issue 14): a raid1 LV (2 images, bitmap in rmeta)
#      against the mirror LV, the linear LV and qemu-nbd's quorum over the same
#      two files: writes 1 MiB and 4 KiB random at QD32, reads 1 MiB QD8 and
#      4 KiB random QD32.
#   6. raid1 sync, check and re-add (bench/raid1.ts): a raid1 LV's initial
#      sync (lvcreate --type raid1 -m1, no --nosync) against dd of the same
#      size between the images' regions of the two files; its check
#      (lvchange --syncaction check, to idle) against two parallel dd reads
#      of the images' regions, and its mismatch count (0); the re-add of an
#      image whose PV was away while 1% of the LV was written (vgextend
#      --restoremissing, lvchange --refresh): bytes recovered, % of the LV.
#   7. NBD client (bench/nbd-client.ts; issue 18): ulvm's NBD client (what a
#      remote PV goes through) reading and writing an nbdkit file export over
#      loopback TCP against nbdcopy to the same export, and over TLS-PSK
#      against plain.
#   8. raid1 + integrity (bench/integrity.ts; issue 17): crc32c with the
#      CPU's instructions (@node-rs/crc32) against a software baseline, MiB/s;
#      raid1 --raidintegrity y (bitmap, then journal mode) against a plain
#      raid1 LV on the same two PVs over NBD: writes 1 MiB QD8 and 4 KiB
#      QD32, reads 1 MiB QD8, and `lvchange --syncaction check` time.
#   9. device path (bench/devicepath.sh; issue 19): fio (libaio, O_DIRECT) on
#      the block device a user mounts: a raw loop over a file, nbdkit behind
#      nbdfuse + loop, and ulvm's device path served by the daemon's own FUSE
#      server and by nbdfuse (device_path_server): write 1 MiB QD8, randwrite
#      4 KiB QD32, read 1 MiB QD8, randread 4 KiB QD1, 1 GiB each (~2 min);
#      the FUSE daemon's peak RSS with four LVs active.
#  10. pvmove (bench/pvmove.ts; issue 16): the copy phase of `pvmove` of an
#      N GiB LV, offline and online, against `dd bs=1M` of the same size;
#      fio 4 KiB random writes into the LV during an unthrottled move against
#      the same writes without one; with activation/mirror_resync_rate set
#      (ulvm's mirror throttle, which pvmove's copy obeys), the measured rate
#      against the setting.
#
# Usage:  npm run bench            default run, ~11 minutes: 3 reps x 2 s (+1 s
#                                  warm-up) per measurement
#         FULL=1 npm run bench     the long one (~40 minutes): 5 reps x 10 s,
#                                  1 MiB at QD1 and QD32 too, serve-file (our
#                                  NBD server on the bare file, no mapper) as
#                                  a row of the linear run, resync and raid1
#                                  sync/check/re-add of 4 GiB
# Environment: OUT=DIR keeps every result there (results.tsv, summary.txt,
# commands.log and fio JSON per part; summary.txt at the top); DIST=DIR runs
# that build instead of dist/; ONLY="metadata linear mirror resync" runs a
# subset (the raid1 LV's part 5 is "raid1", part 6 "raid1sync", part 7
# "nbdclient", part 8 "integrity", part 9 "devicepath", part 10 "pvmove"); REPS,
# RUNTIME, RAMP override the peers.sh defaults below (REPS also counts the
# resync, raid1sync, integrity and pvmove repetitions); RAID1_GIB sets part 6's
# size (1, FULL 4); INTEGRITY_MIB part 8's LV size (256, FULL 1024);
# PVMOVE_GIB part 10's (1, FULL 4), PVMOVE_RATE its throttle in MiB/s (64).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# The metadata part runs bin/ulvm as shipped (dist/'s bundle, unless DIST=DIR
# names another tsc build). The data-path parts run the tsc build (dist/src)
# through ULVM_DIST: the daemon's code is the same, and they do not depend on
# the CLI bundle.
if [[ -n ${DIST:-} ]]; then
    DIST=$(realpath "$DIST")
    export ULVM_DIST=$DIST
else
    DIST=$ROOT/dist
fi
DATA_DIST=$DIST
[[ -f $DIST/src/cli/main.js && -f $DIST/bench/metadata.js && -f $DIST/bench/resync.js && -f $DIST/bench/raid1.js && -f $DIST/bench/integrity.js ]] ||
    { echo "bench: $DIST is not built (run scripts/setup.sh)" >&2; exit 2; }
ONLY=${ONLY:-metadata linear mirror resync raid1 raid1sync nbdclient integrity devicepath pvmove}

if [[ ${FULL:-0} == 1 ]]; then
    : "${RUNTIME:=10}" "${RAMP:=2}" "${REPS:=5}"
    LINEAR_TESTS="read:1m:1 read:1m:8 read:1m:32 write:1m:1 write:1m:8 write:1m:32 randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32"
    RESYNC_GIB=4 MD_REPS=7
    : "${RAID1_GIB:=4}" "${INTEGRITY_MIB:=1024}" "${PVMOVE_GIB:=4}"
else
    : "${RUNTIME:=2}" "${RAMP:=1}" "${REPS:=3}"
    LINEAR_TESTS="read:1m:8 write:1m:8 randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32"
    RESYNC_GIB=2 MD_REPS=5
    : "${RAID1_GIB:=1}" "${INTEGRITY_MIB:=256}" "${PVMOVE_GIB:=1}"
fi
: "${PVMOVE_RATE:=64}"
MIRROR_TESTS="write:1m:32 randwrite:4k:32 read:1m:8 randread:4k:32"
export RUNTIME RAMP REPS

KEEP_OUT=1
if [[ -z ${OUT:-} ]]; then
    OUT=$(mktemp -d /var/tmp/ulvm-bench.XXXXXX)
    KEEP_OUT=0
fi
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
cleanup() { [[ $KEEP_OUT == 1 ]] || rm -rf -- "$OUT"; }
trap cleanup EXIT
log() { echo "[$(date +%H:%M:%S)] bench: $*" >&2; }
t_start=$(date +%s)
has() { [[ " $ONLY " == *" $1 "* ]]; }
FAILED=""
failed() { FAILED+=" $1"; log "part $1 FAILED (see above); going on with the others"; }

SERVER=$ROOT/bench/nbd/ulvm-server.sh
# The ulvm rows: the daemon as the CLI starts it, nothing tuned.
ULVM_LINEAR_CMD="exec bash $(printf '%q' "$SERVER") linear"
ULVM_MIRROR_CMD="exec bash $(printf '%q' "$SERVER") mirror"
ULVM_RAID1_CMD="exec bash $(printf '%q' "$SERVER") raid1"

# ------------------------------------------------------------ 1. metadata
if has metadata; then
    log "1/10 metadata: 1,000 LVs, ulvm vs lvm2"
    node "$DIST/bench/metadata.js" --reps "$MD_REPS" 2>&1 | tee "$OUT/metadata.txt" || failed "metadata"
fi

# ------------------------------------------------------------ 2. linear LV
if has linear; then
    log "2/10 linear LV over NBD vs nbdkit and qemu-nbd"
    servers="nbdkit qemu-nbd-tuned custom"
    mirror_env=()
    if [[ ${FULL:-0} == 1 ]]; then
        # Our NBD server straight on the file: what the mapper and the daemon add.
        servers+=" custom-mirror"
        mirror_env=(SERVER_MIRROR_NAME=serve-file SERVER_MIRROR_EXPORT=
            "SERVER_MIRROR_CMD=exec node $(printf '%q' "$DIST/src/nbd/serve-file.js") --unix \"\$SOCK\" \"\$FILE1\"")
    fi
    env ULVM_DIST="$DATA_DIST" SERVERS="$servers" TESTS="$LINEAR_TESTS" REF=nbdkit OUT="$OUT/linear" \
        SERVER_NAME=ulvm-linear SERVER_EXPORT=ubl/lin SERVER_CMD="$ULVM_LINEAR_CMD" "${mirror_env[@]}" \
        bash "$ROOT/bench/nbd/peers.sh" || failed "linear"
fi

# ------------------------------------------------------------ 3. mirror LV
if has mirror; then
    log "3/10 mirror LV over NBD vs the linear LV, qemu quorum and the host"
    env ULVM_DIST="$DATA_DIST" SERVERS="custom custom-mirror quorum-tuned host-mirror" TESTS="$MIRROR_TESTS" REF=custom OUT="$OUT/mirror" \
        SERVER_NAME=ulvm-linear SERVER_EXPORT=ubl/lin SERVER_CMD="$ULVM_LINEAR_CMD" \
        SERVER_MIRROR_NAME=ulvm-mirror SERVER_MIRROR_EXPORT=ubm/mir SERVER_MIRROR_CMD="$ULVM_MIRROR_CMD" \
        bash "$ROOT/bench/nbd/peers.sh" || failed "mirror"
fi

# ------------------------------------------------------------ 4. resync
if has resync; then
    log "4/10 resync: lvconvert -m1 of ${RESYNC_GIB} GiB vs dd"
    ULVM_DIST="$DATA_DIST" node "$DIST/bench/resync.js" --gib "$RESYNC_GIB" --reps "$REPS" 2>&1 | tee "$OUT/resync.txt" || failed "resync"
fi

# ------------------------------------------------------------ 5. raid1 LV
if has raid1; then
    log "5/10 raid1 LV over NBD vs the mirror LV, the linear LV and qemu quorum"
    env ULVM_DIST="$DATA_DIST" SERVERS="custom custom-mirror custom-raid quorum-tuned" TESTS="$MIRROR_TESTS" REF=custom OUT="$OUT/raid1" \
        SERVER_NAME=ulvm-linear SERVER_EXPORT=ubl/lin SERVER_CMD="$ULVM_LINEAR_CMD" \
        SERVER_MIRROR_NAME=ulvm-mirror SERVER_MIRROR_EXPORT=ubm/mir SERVER_MIRROR_CMD="$ULVM_MIRROR_CMD" \
        SERVER_RAID_NAME=ulvm-raid1 SERVER_RAID_EXPORT=ubr/r SERVER_RAID_CMD="$ULVM_RAID1_CMD" \
        bash "$ROOT/bench/nbd/peers.sh" || failed "raid1"
fi

# ------------------------------------------------------------ 6. raid1 sync, check and re-add
if has raid1sync; then
    log "6/10 raid1 sync, check and re-add: ${RAID1_GIB} GiB vs dd"
    ULVM_DIST="$DATA_DIST" node "$DIST/bench/raid1.js" --gib "$RAID1_GIB" --reps "$REPS" 2>&1 | tee "$OUT/raid1sync.txt" || failed "raid1sync"
fi

# ------------------------------------------------------------ 7. NBD client
if has nbdclient; then
    log "7/10 NBD client: ulvm's client vs nbdcopy on an nbdkit export; TLS vs plain"
    node "$DIST/bench/nbd-client.js" --reps "$REPS" 2>&1 | tee "$OUT/nbdclient.txt" || failed "nbdclient"
fi

# ------------------------------------------------------------ 8. raid1 + integrity
if has integrity; then
    log "8/10 raid1 + integrity: crc32c hardware vs software; bitmap and journal mode vs plain raid1, ${INTEGRITY_MIB} MiB"
    ULVM_DIST="$DATA_DIST" node "$DIST/bench/integrity.js" --mib "$INTEGRITY_MIB" --reps "$REPS" --runtime "$RUNTIME" 2>&1 | tee "$OUT/integrity.txt" || failed "integrity"
fi

# ------------------------------------------------------------ 9. device path
if has devicepath; then
    log "9/10 device path: raw loop, nbdkit+nbdfuse+loop, ulvm's FUSE server and nbdfuse"
    env ULVM_DIST="$DATA_DIST" OUT="$OUT/devicepath" bash "$ROOT/bench/devicepath.sh" || failed "devicepath"
fi

# ------------------------------------------------------------ 10. pvmove
if has pvmove; then
    log "10/10 pvmove: ${PVMOVE_GIB} GiB offline and online vs dd; client writes during a move; the throttle"
    ULVM_DIST="$DATA_DIST" node "$DIST/bench/pvmove.js" --gib "$PVMOVE_GIB" --reps "$REPS" --runtime "$RUNTIME" --rate "$PVMOVE_RATE" 2>&1 | tee "$OUT/pvmove.txt" || failed "pvmove"
fi

# ------------------------------------------------------------ summary
elapsed=$(($(date +%s) - t_start))
{
    echo
    echo "================================================================================"
    echo "ulvm benchmark summary  $(date -u +%Y-%m-%dT%H:%MZ)  ($(nproc) CPUs, $((elapsed / 60)) min $((elapsed % 60)) s)"
    echo "RUNTIME=${RUNTIME}s RAMP=${RAMP}s REPS=$REPS$([[ ${FULL:-0} == 1 ]] && echo ' FULL=1')"
    echo "ratio = median of per-repetition ratios (IOPS or MB/s), [min..max] over the reps;"
    echo "us/req = server CPU per request (all the server's threads), median"
    echo "================================================================================"
    printf '%-44s %6s %-13s %-8s %s\n' "measure" "ratio" "[spread]" "goal" "status"
    awk -F'\t' -v md="$OUT/metadata.txt" -v rs="$OUT/resync.txt" -v r1="$OUT/raid1sync.txt" -v nc="$OUT/nbdclient.txt" -v ig="$OUT/integrity.txt" -v pm="$OUT/pvmove.txt" '
    function med(a, n,    i, j, x) {
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    # per-rep ratio of row A to row B (IOPS) in part p for test t
    function ratio(p, A, B, t,    r, n, a, lo, hi, v) {
        n = 0
        for (r = 1; r <= maxrep[p]; r++) {
            if (!((p, A, t, r) in iops) || !((p, B, t, r) in iops)) continue
            if (iops[p, A, t, r] == "NA" || iops[p, B, t, r] == "NA" || iops[p, B, t, r] + 0 == 0) continue
            v = iops[p, A, t, r] / iops[p, B, t, r]
            a[++n] = v; if (n == 1 || v < lo) lo = v; if (n == 1 || v > hi) hi = v
        }
        if (n == 0) { R = -1; return }
        R = med(a, n); LO = lo; HI = hi
    }
    function line(label, p, A, B, t, goal, cmp,    st) {
        ratio(p, A, B, t)
        if (R < 0) { printf "%-44s %6s %-13s %-8s %s\n", label, "-", "", cmp goal, "not measured"; return }
        st = (cmp == ">=" ? (R >= goal) : (R <= goal)) ? "ok" : "MISSED"
        if (goal == "") { st = "(info)"; cmp = "" }
        printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", label, R, LO, HI, cmp goal, st
    }
    function cpu(p, row, t,    r, n, a, v) {   # median us/req
        n = 0
        for (r = 1; r <= maxrep[p]; r++) {
            if (!((p, row, t, r) in iops) || iops[p, row, t, r] == "NA" || iops[p, row, t, r] + 0 == 0 || cpct[p, row, t, r] == "NA") continue
            a[++n] = cpct[p, row, t, r] / 100 / iops[p, row, t, r] * 1e6
        }
        return n ? sprintf("%.1f", med(a, n)) : "-"
    }
    FNR == 1 { p = (FILENAME ~ /\/linear\//) ? "L" : (FILENAME ~ /\/raid1\//) ? "R" : (FILENAME ~ /\/devicepath\//) ? "D" : "M"; next }
    {
        iops[p, $2, $3, $1] = $5; cpct[p, $2, $3, $1] = $7
        if ($1 + 0 > maxrep[p]) maxrep[p] = $1 + 0
        if (p != "D" && $2 ~ /^ulvm-/ && $9 != "NA" && $9 + 0 > rss) rss = $9 + 0
        if (p == "D" && $2 == "ulvm-fuse" && $9 != "NA" && $9 + 0 > dprss) dprss = $9 + 0
        seen[p, $2, $3] = 1
    }
    END {
        while ((getline l < md) > 0) {
            split(l, f, " ")
            if (f[1] == "lvs" && f[2] == "(cold)")
                printf "%-44s %6.2f %-13s %-8s %s\n", "metadata: lvs after lvm2 wrote (cold)", f[5], "", "", "(info)"
            else if (f[1] == "lvs" || f[1] == "vgs" || f[1] == "lvcreate")
                printf "%-44s %6.2f %-13s %-8s %s\n", "metadata: ulvm/lvm2 time, " f[1] " (1,000 LVs)", f[4], "", (f[1] == "lvs" ? "<=1.5" : ""), (f[1] == "lvs" ? (f[4] <= 1.5 ? "ok" : "MISSED") : "(info)")
        }
        if (maxrep["L"] > 0) {
            print "-- linear LV over NBD, ulvm / nbdkit (same file, same run)"
            line("seq read 1 MiB QD8", "L", "ulvm-linear", "nbdkit", "read:1m:8", 0.9, ">=")
            line("seq write 1 MiB QD8", "L", "ulvm-linear", "nbdkit", "write:1m:8", 0.8, ">=")
            line("rand write 4 KiB QD32", "L", "ulvm-linear", "nbdkit", "randwrite:4k:32", 0.9, ">=")
            line("rand read 4 KiB QD32 (noisiest)", "L", "ulvm-linear", "nbdkit", "randread:4k:32", 0.6, ">=")
            line("rand read 4 KiB QD1", "L", "ulvm-linear", "nbdkit", "randread:4k:1", "", "")
            line("rand write 4 KiB QD1", "L", "ulvm-linear", "nbdkit", "randwrite:4k:1", "", "")
            if (seen["L", "ulvm-linear", "read:1m:32"]) {
                line("seq read 1 MiB QD1", "L", "ulvm-linear", "nbdkit", "read:1m:1", "", "")
                line("seq read 1 MiB QD32", "L", "ulvm-linear", "nbdkit", "read:1m:32", "", "")
                line("seq write 1 MiB QD1", "L", "ulvm-linear", "nbdkit", "write:1m:1", "", "")
                line("seq write 1 MiB QD32", "L", "ulvm-linear", "nbdkit", "write:1m:32", "", "")
            }
            print "-- linear LV, ulvm / qemu-nbd (malloc-tuned)"
            line("seq read 1 MiB QD8", "L", "ulvm-linear", "qemu-nbd-tuned", "read:1m:8", "", "")
            line("seq write 1 MiB QD8", "L", "ulvm-linear", "qemu-nbd-tuned", "write:1m:8", "", "")
            line("rand read 4 KiB QD32", "L", "ulvm-linear", "qemu-nbd-tuned", "randread:4k:32", "", "")
            line("rand write 4 KiB QD32", "L", "ulvm-linear", "qemu-nbd-tuned", "randwrite:4k:32", "", "")
            if (seen["L", "serve-file", "read:1m:8"]) {
                print "-- linear LV through the mapper / serve-file on the bare file (the mapper and daemon cost)"
                line("seq read 1 MiB QD8", "L", "ulvm-linear", "serve-file", "read:1m:8", "", "")
                line("seq write 1 MiB QD8", "L", "ulvm-linear", "serve-file", "write:1m:8", "", "")
                line("rand read 4 KiB QD32", "L", "ulvm-linear", "serve-file", "randread:4k:32", "", "")
                line("rand write 4 KiB QD32", "L", "ulvm-linear", "serve-file", "randwrite:4k:32", "", "")
            }
        }
        if (maxrep["M"] > 0) {
            print "-- mirror LV (2 legs, disk log) over NBD"
            line("mirror/linear write 1 MiB QD32", "M", "ulvm-mirror", "ulvm-linear", "write:1m:32", 0.8, ">=")
            line("mirror/linear rand write 4 KiB QD32", "M", "ulvm-mirror", "ulvm-linear", "randwrite:4k:32", 0.8, ">=")
            line("mirror/quorum write 1 MiB QD32", "M", "ulvm-mirror", "quorum-tuned", "write:1m:32", 1.0, ">=")
            line("mirror/quorum rand write 4 KiB QD32", "M", "ulvm-mirror", "quorum-tuned", "randwrite:4k:32", 1.0, ">=")
            line("mirror/linear read 1 MiB QD8 (equal)", "M", "ulvm-mirror", "ulvm-linear", "read:1m:8", 0.9, ">=")
            line("mirror/linear rand read 4 KiB QD32 (equal)", "M", "ulvm-mirror", "ulvm-linear", "randread:4k:32", 0.9, ">=")
            line("mirror/host-mirror write 1 MiB QD32", "M", "ulvm-mirror", "host-mirror", "write:1m:32", "", "")
            line("mirror/host-mirror rand write 4 KiB QD32", "M", "ulvm-mirror", "host-mirror", "randwrite:4k:32", "", "")
        }
        if (maxrep["R"] > 0) {
            print "-- raid1 LV (2 images, bitmap in rmeta) over NBD"
            line("raid1/mirror write 1 MiB QD32", "R", "ulvm-raid1", "ulvm-mirror", "write:1m:32", 1.0, ">=")
            line("raid1/mirror rand write 4 KiB QD32", "R", "ulvm-raid1", "ulvm-mirror", "randwrite:4k:32", 1.0, ">=")
            line("raid1/quorum write 1 MiB QD32", "R", "ulvm-raid1", "quorum-tuned", "write:1m:32", 1.0, ">=")
            line("raid1/quorum rand write 4 KiB QD32", "R", "ulvm-raid1", "quorum-tuned", "randwrite:4k:32", 1.0, ">=")
            line("raid1/linear read 1 MiB QD8", "R", "ulvm-raid1", "ulvm-linear", "read:1m:8", 1.0, ">=")
            line("raid1/linear rand read 4 KiB QD32", "R", "ulvm-raid1", "ulvm-linear", "randread:4k:32", 1.0, ">=")
            line("raid1/linear write 1 MiB QD32", "R", "ulvm-raid1", "ulvm-linear", "write:1m:32", "", "")
            line("raid1/linear rand write 4 KiB QD32", "R", "ulvm-raid1", "ulvm-linear", "randwrite:4k:32", "", "")
        }
        if (maxrep["D"] > 0) {
            print "-- device path (fio libaio O_DIRECT on the block device), ulvm FUSE server / nbdkit+nbdfuse+loop"
            line("write 1 MiB QD8", "D", "ulvm-fuse", "nbdkit-nbdfuse", "write:1m:8", 2.0, ">=")
            line("rand write 4 KiB QD32", "D", "ulvm-fuse", "nbdkit-nbdfuse", "randwrite:4k:32", 2.0, ">=")
            line("read 1 MiB QD8", "D", "ulvm-fuse", "nbdkit-nbdfuse", "read:1m:8", 1.0, ">=")
            line("rand read 4 KiB QD1", "D", "ulvm-fuse", "nbdkit-nbdfuse", "randread:4k:1", "", "")
            line("rand read 4 KiB QD1, FUSE/nbdfuse (today)", "D", "ulvm-fuse", "ulvm-nbdfuse", "randread:4k:1", 1.0, ">=")
            line("write 1 MiB QD8, FUSE/raw loop", "D", "ulvm-fuse", "raw-loop", "write:1m:8", "", "")
            line("read 1 MiB QD8, FUSE/raw loop", "D", "ulvm-fuse", "raw-loop", "read:1m:8", "", "")
            line("write 1 MiB QD8, nbdfuse/nbdkit stack", "D", "ulvm-nbdfuse", "nbdkit-nbdfuse", "write:1m:8", "", "")
            line("read 1 MiB QD8, nbdfuse/nbdkit stack", "D", "ulvm-nbdfuse", "nbdkit-nbdfuse", "read:1m:8", "", "")
            if (dprss > 0)
                printf "%-44s %6s %-13s %-8s %s\n", "daemon peak RSS, 4 LVs on FUSE paths, MiB", dprss, "", "<150", (dprss < 150 ? "ok" : "MISSED")
        }
        if (rs != "") while ((getline l < rs) > 0) {
            split(l, f, " ")
            if (f[1] == "RESYNC_RATIO") {
                print "-- resync"
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "resync/plain copy (lvconvert -m1 vs dd)", f[2], f[3], f[4], ">=0.8", (f[2] >= 0.8 ? "ok" : "MISSED")
            }
        }
        r1head = 0
        if (r1 != "") while ((getline l < r1) > 0) {
            split(l, f, " ")
            if (f[1] !~ /^RAID1_/) continue
            if (!r1head++) print "-- raid1 sync, check and re-add"
            if (f[1] == "RAID1_SYNC_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "raid1 full sync/dd copy (lvcreate -m1)", f[2], f[3], f[4], ">=0.8", (f[2] >= 0.8 ? "ok" : "MISSED")
            else if (f[1] == "RAID1_CHECK_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "raid1 check/2 parallel dd reads", f[2], f[3], f[4], ">=0.8", (f[2] >= 0.8 ? "ok" : "MISSED")
            else if (f[1] == "RAID1_CHECK_MISMATCHES")
                printf "%-44s %6d %-13s %-8s %s\n", "raid1 check mismatch count (max)", f[2], "", "0", (f[2] == 0 ? "ok" : "MISSED")
            else if (f[1] == "RAID1_READD_PCT")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "raid1 re-add: % of LV resynced (1% written)", f[2], f[3], f[4], "<=2", (f[2] <= 2 ? "ok" : "MISSED")
        }
        nchead = 0
        if (nc != "") while ((getline l < nc) > 0) {
            split(l, f, " ")
            if (f[1] !~ /^NBDCLIENT_/) continue
            if (!nchead++) print "-- NBD client (remote PVs)"
            if (f[1] == "NBDCLIENT_READ_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "ulvm NBD client/nbdcopy read", f[2], f[3], f[4], ">=0.9", (f[2] >= 0.9 ? "ok" : "MISSED")
            else if (f[1] == "NBDCLIENT_WRITE_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "ulvm NBD client/nbdcopy write", f[2], f[3], f[4], ">=0.9", (f[2] >= 0.9 ? "ok" : "MISSED")
            else if (f[1] == "NBDCLIENT_TLS_READ_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "ulvm NBD client TLS/plain read", f[2], f[3], f[4], ">=0.6", (f[2] >= 0.6 ? "ok" : "MISSED")
            else if (f[1] == "NBDCLIENT_TLS_WRITE_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "ulvm NBD client TLS/plain write", f[2], f[3], f[4], ">=0.6", (f[2] >= 0.6 ? "ok" : "MISSED")
            else if (f[1] == "NBDCLIENT_MIRROR_WRITE_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "raid1 one leg over TCP/both local write", f[2], f[3], f[4], ">=0.8", (f[2] >= 0.8 ? "ok" : "MISSED")
            else if (f[1] == "NBDCLIENT_MIRROR_READ_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "raid1 one leg over TCP/both local read", f[2], f[3], f[4], ">=0.8", (f[2] >= 0.8 ? "ok" : "MISSED")
        }
        ighead = 0
        if (ig != "") while ((getline l < ig) > 0) {
            split(l, f, " ")
            if (f[1] !~ /^INTEGRITY_/) continue
            if (!ighead++) print "-- raid1 + integrity (crc32c tags), same run"
            if (f[1] == "INTEGRITY_CRC32C_MIBS")
                printf "%-44s %6s %-13s %-8s %s\n", "crc32c MiB/s, hardware / software", f[2] "/" f[3], "", "", "(info)"
            else if (f[1] == "INTEGRITY_CRC32C_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "crc32c hardware/software (4 KiB calls)", f[2], f[3], f[4], ">1", (f[2] > 1 ? "ok" : "MISSED")
            else if (f[1] == "INTEGRITY_BITMAP_WRITE_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "integrity(bitmap)/raid1 write 1 MiB QD8", f[2], f[3], f[4], ">=0.7", (f[2] >= 0.7 ? "ok" : "MISSED")
            else if (f[1] == "INTEGRITY_BITMAP_RANDWRITE_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "integrity(bitmap)/raid1 rand write 4 KiB QD32", f[2], f[3], f[4], "", "(info)"
            else if (f[1] == "INTEGRITY_JOURNAL_WRITE_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "integrity(journal)/raid1 write 1 MiB QD8", f[2], f[3], f[4], ">=0.45", (f[2] >= 0.45 ? "ok" : "MISSED")
            else if (f[1] == "INTEGRITY_BITMAP_READ_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "integrity/raid1 read 1 MiB QD8", f[2], f[3], f[4], ">=0.8", (f[2] >= 0.8 ? "ok" : "MISSED")
            else if (f[1] == "INTEGRITY_CHECK_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "integrity/raid1 check speed (time ratio)", f[2], f[3], f[4], ">=0.7", (f[2] >= 0.7 ? "ok" : "MISSED")
        }
        pmhead = 0
        if (pm != "") while ((getline l < pm) > 0) {
            split(l, f, " ")
            if (f[1] !~ /^PVMOVE_/) continue
            if (!pmhead++) print "-- pvmove"
            if (f[1] == "PVMOVE_OFFLINE_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "pvmove offline/dd conv=fdatasync", f[2], f[3], f[4], ">=0.8", (f[2] >= 0.8 ? "ok" : "MISSED")
            else if (f[1] == "PVMOVE_ONLINE_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "pvmove online/dd conv=fdatasync", f[2], f[3], f[4], ">=0.8", (f[2] >= 0.8 ? "ok" : "MISSED")
            else if (f[1] == "PVMOVE_WRITES_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "client writes during a move/without", f[2], f[3], f[4], ">=0.5", (f[2] >= 0.5 ? "ok" : "MISSED")
            else if (f[1] == "PVMOVE_RATE_RATIO")
                printf "%-44s %6.2f [%.2f..%.2f] %-8s %s\n", "throttled move rate/mirror_resync_rate", f[2], f[3], f[4], "0.9-1.1", (f[2] >= 0.9 && f[2] <= 1.1 ? "ok" : "MISSED")
        }
        if (rss > 0) {
            print "-- memory"
            printf "%-44s %6s %-13s %-8s %s\n", "daemon peak RSS (VmHWM), MiB", rss, "", "<150", (rss < 150 ? "ok" : "MISSED")
        }
        if (maxrep["L"] > 0) {
            print ""
            print "server CPU per request, us (median):"
            printf "  %-18s %10s %10s %10s %10s\n", "test", "ulvm", "nbdkit", "qemu-nbd", "serve-file"
            n = split("read:1m:8 write:1m:8 randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32", T, " ")
            for (i = 1; i <= n; i++)
                printf "  %-18s %10s %10s %10s %10s\n", T[i], cpu("L", "ulvm-linear", T[i]), cpu("L", "nbdkit", T[i]), cpu("L", "qemu-nbd-tuned", T[i]), cpu("L", "serve-file", T[i])
        }
        if (maxrep["M"] > 0) {
            printf "  %-18s %10s %10s %10s\n", "test", "linear", "mirror", "quorum"
            n = split("write:1m:32 randwrite:4k:32 read:1m:8 randread:4k:32", T, " ")
            for (i = 1; i <= n; i++)
                printf "  %-18s %10s %10s %10s\n", T[i], cpu("M", "ulvm-linear", T[i]), cpu("M", "ulvm-mirror", T[i]), cpu("M", "quorum-tuned", T[i])
        }
    }' $( [[ -f $OUT/linear/results.tsv ]] && echo "$OUT/linear/results.tsv") $( [[ -f $OUT/mirror/results.tsv ]] && echo "$OUT/mirror/results.tsv") $( [[ -f $OUT/raid1/results.tsv ]] && echo "$OUT/raid1/results.tsv") $( [[ -f $OUT/devicepath/results.tsv ]] && echo "$OUT/devicepath/results.tsv") </dev/null
    [[ -f $OUT/devicepath/table.txt ]] && { echo; echo "device path, median over the reps:"; cat "$OUT/devicepath/table.txt"; }
    [[ -z $FAILED ]] || echo "FAILED parts:$FAILED (their rows are missing above)"
} | tee "$OUT/summary.txt"

if [[ $KEEP_OUT == 1 ]]; then log "results in $OUT"; fi
[[ -z $FAILED ]]
