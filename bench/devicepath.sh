#!/usr/bin/env bash
# devicepath.sh - part "devicepath" of `npm run bench` (issue 19): fio on the
# block device a user mounts, through each stack, back to back in one run.
#
#   raw-loop        a loop device over a plain file (losetup's defaults)
#   nbdkit-nbdfuse  `nbdkit file` on a unix socket, nbdfuse's file over it, a
#                   loop device over that (the stack ulvm's nbdfuse path uses)
#   ulvm-fuse       ulvm's device path ($ULVM_DEV_DIR/VG/LV) served by the
#                   daemon's own FUSE server (device_path_server = "fuse")
#   ulvm-nbdfuse    the same with device_path_server = "nbdfuse"
#
# Each row has a file of its own (GIB GiB of LV), every stack is up for the
# whole run, and each test runs on every row in turn (write 1 MiB QD8,
# randwrite 4 KiB QD32, read 1 MiB QD8, randread 4 KiB QD1; fio libaio,
# O_DIRECT, on the block device). The ulvm-fuse daemon has four LVs active
# (the measured one and three small ones, each with its FUSE device path):
# its peak RSS (VmHWM) over the run is the "RSS with four LVs active".
#
# Writes results.tsv (peers.sh's columns: rep row test MBps IOPS p99_us
# srv_cpu_pct fio_cpu_pct peak_rss_mib; srv = the processes serving the row:
# the daemon, nbdfuse, nbdkit), commands.log and fio JSON into OUT.
# Environment: OUT (required), REPS, RUNTIME, RAMP, GIB [1], ULVM_BIN,
# ULVM_DIST. Needs root, loop devices, /dev/fuse, nbdkit, nbdfuse, fio, jq.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ULVM=${ULVM_BIN:-$ROOT/bin/ulvm}
: "${OUT:?OUT=DIR needed}" "${REPS:=3}" "${RUNTIME:=2}" "${RAMP:=1}" "${GIB:=1}"
TESTS=${DEVPATH_TESTS:-"write:1m:8 randwrite:4k:32 read:1m:8 randread:4k:1"}
ROWS="raw-loop nbdkit-nbdfuse ulvm-fuse ulvm-nbdfuse"
mkdir -p "$OUT"
RESULTS=$OUT/results.tsv CMDLOG=$OUT/commands.log
printf 'rep\trow\ttest\tMBps\tIOPS\tp99_us\tsrv_cpu_pct\tfio_cpu_pct\tpeak_rss_mib\n' >"$RESULTS"
: >"$CMDLOG"
log() { echo "[$(date +%H:%M:%S)] devicepath: $*" >&2; }
for t in fio jq nbdkit nbdfuse losetup; do command -v $t >/dev/null || { log "needs $t"; exit 2; }; done
[[ $(id -u) == 0 && -e /dev/fuse ]] || { log "needs root and /dev/fuse"; exit 2; }

W=$(mktemp -d /var/tmp/ulvm-bench-devpath.XXXXXX)
LV_MIB=$((GIB * 1024))
declare -A DEV PIDS
RAW_LOOP="" NBD_LOOP="" NBDKIT_PID="" NBDFUSE_PID=""
cleanup() {
    set +e
    for s in fuse nbdfuse; do
        [[ -d $W/$s/run ]] || continue
        local pid
        pid=$(cat "$W/$s/run/ulvmd.pid" 2>/dev/null)
        (export ULVM_SYSTEM_DIR=$W/$s/etc ULVM_RUN_DIR=$W/$s/run ULVM_DEV_DIR=$W/$s/dev; "$ULVM" vgchange -q -an vg >/dev/null 2>&1)
        [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    done
    [[ -n $RAW_LOOP ]] && losetup -d "$RAW_LOOP"
    [[ -n $NBD_LOOP ]] && losetup -d "$NBD_LOOP"
    [[ -n $NBDFUSE_PID ]] && { fusermount3 -u "$W/nbdkit/mnt" 2>/dev/null; sleep 0.2; kill "$NBDFUSE_PID" 2>/dev/null; }
    [[ -n $NBDKIT_PID ]] && kill "$NBDKIT_PID" 2>/dev/null
    sleep 0.3
    rm -rf -- "$W"
}
trap cleanup EXIT

# ---- raw loop
truncate -s "${LV_MIB}M" "$W/raw.img"
RAW_LOOP=$(losetup -f --show "$W/raw.img")
DEV[raw-loop]=$RAW_LOOP PIDS[raw-loop]=""

# ---- nbdkit behind nbdfuse + loop
mkdir -p "$W/nbdkit/mnt"
truncate -s "${LV_MIB}M" "$W/nbdkit.img"
nbdkit -f --unix "$W/nbdkit/sock" file "$W/nbdkit.img" & NBDKIT_PID=$!
for _ in $(seq 200); do [[ -S $W/nbdkit/sock ]] && break; sleep 0.025; done
nbdfuse -P "$W/nbdkit/nbdfuse.pid" "$W/nbdkit/mnt/nbd" "nbd+unix:///?socket=$W/nbdkit/sock" &
for _ in $(seq 200); do [[ -s $W/nbdkit/nbdfuse.pid ]] && break; sleep 0.025; done
NBDFUSE_PID=$(cat "$W/nbdkit/nbdfuse.pid")
NBD_LOOP=$(losetup -f --show "$W/nbdkit/mnt/nbd")
DEV[nbdkit-nbdfuse]=$NBD_LOOP PIDS[nbdkit-nbdfuse]="$NBDKIT_PID $NBDFUSE_PID"

# ---- ulvm, one daemon per server; VG "vg" on a file of its own, LV "lv" of GIB GiB
ulvm_up() {  # server extra_lvs
    local s=$1 extra=$2 d=$W/$1 i
    mkdir -p "$d"/{etc,run,dev}
    truncate -s "$((LV_MIB + extra * 64 + 8))M" "$d/pv.img"
    printf 'devices {\n\tscan = [ "%s" ]\n}\nactivation {\n\tdevice_path = 1\n\tdevice_path_server = "%s"\n}\n' "$d/pv.img" "$s" >"$d/etc/ulvm.conf"
    (
        export ULVM_SYSTEM_DIR=$d/etc ULVM_RUN_DIR=$d/run ULVM_DEV_DIR=$d/dev
        "$ULVM" pvcreate -q "$d/pv.img" >/dev/null
        "$ULVM" vgcreate -q vg "$d/pv.img" >/dev/null
        "$ULVM" lvcreate -q -an -L "${LV_MIB}m" -n lv vg >/dev/null 2>&1
        for ((i = 1; i <= extra; i++)); do "$ULVM" lvcreate -q -an -L 32m -n "small$i" vg >/dev/null 2>&1; done
        "$ULVM" vgchange -q -ay vg >/dev/null
    )
    DEV[ulvm-$s]=$(readlink -f "$d/dev/vg/lv")
    [[ -b ${DEV[ulvm-$s]} ]] || { log "ulvm ($s): no block device at $d/dev/vg/lv"; exit 1; }
    PIDS[ulvm-$s]=$(cat "$d/run/ulvmd.pid")
    if [[ $s == nbdfuse ]]; then  # nbdfuse is part of that row's server
        PIDS[ulvm-$s]+=" $(jq -r '.fusePid // empty' "$d/run/devices/"*lv*.json 2>/dev/null | head -n1)"
    fi
}
ulvm_up fuse 3
ulvm_up nbdfuse 0
log "devices: raw ${DEV[raw-loop]}, nbdkit ${DEV[nbdkit-nbdfuse]}, fuse ${DEV[ulvm-fuse]}, nbdfuse ${DEV[ulvm-nbdfuse]}"

CLK_TCK=$(getconf CLK_TCK)
ticks() { local p t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
hwm() { awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo NA; }

run_fio() {  # rep row test
    local rep=$1 row=$2 test=$3 rw bs qd json c0 c1 t0 t1 srv=NA rss=NA line bw iops p99 fcpu dir
    IFS=: read -r rw bs qd <<<"$test"
    dir=read; [[ $rw == *write ]] && dir=write
    json=$OUT/$row.${test//:/-}.$rep.json
    local -a fio=(fio --name=job --output-format=json --output="$json" --filename="${DEV[$row]}"
        --ioengine=libaio --direct=1 --rw="$rw" --bs="$bs" --iodepth="$qd" --size="${LV_MIB}M"
        --runtime="$RUNTIME" --time_based --ramp_time="$RAMP" --norandommap --lat_percentiles=1)
    printf '# %s %s rep %s:\n%s\n' "$row" "$test" "$rep" "$(printf '%q ' "${fio[@]}")" >>"$CMDLOG"
    local -a pids=(${PIDS[$row]})
    c0=$(ticks "${pids[@]}"); t0=$(date +%s%N)
    if ! "${fio[@]}" >>"$OUT/fio.log" 2>&1; then
        log "fio failed: $row $test"
        printf '%s\t%s\t%s\tNA\tNA\tNA\tNA\tNA\tNA\n' "$rep" "$row" "$test" >>"$RESULTS"
        return 0
    fi
    t1=$(date +%s%N); c1=$(ticks "${pids[@]}")
    if ((${#pids[@]})); then
        srv=$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN{printf "%.0f", 100*c/hz/(ns/1e9)}')
        [[ $row == ulvm-* ]] && rss=$(hwm "${pids[0]}")
    fi
    line=$(jq -r --arg d "$dir" '.jobs[0] as $j | $j[$d] as $r
        | [ ($r.bw_bytes / 1e6), $r.iops, (($r.clat_ns.percentile["99.000000"] // 0) / 1000), ($j.usr_cpu + $j.sys_cpu) ]
        | map(. * 10 | round / 10) | @tsv' "$json") || line=$'NA\tNA\tNA\tNA'
    IFS=$'\t' read -r bw iops p99 fcpu <<<"$line"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$row" "$test" "$bw" "$iops" "$p99" "$srv" "$fcpu" "$rss" >>"$RESULTS"
    log "rep $rep $test $row: $bw MB/s, $iops IOPS"
}

for ((rep = 1; rep <= REPS; rep++)); do
    for test in $TESTS; do
        for row in $ROWS; do run_fio "$rep" "$row" "$test"; done
    done
done

# The table of the issue: median over the reps, MB/s for 1 MiB, IOPS for 4 KiB.
{
    printf '%-22s' "fio on the block device"
    for row in $ROWS; do printf ' %15s' "$row"; done
    echo
    for test in $TESTS; do
        printf '%-22s' "$test"
        for row in $ROWS; do
            awk -F'\t' -v r="$row" -v t="$test" '
                $2 == r && $3 == t && $5 != "NA" { v[++n] = ($3 ~ /:1m:/) ? $4 : $5 }
                END {
                    if (!n) { printf " %15s", "-"; exit }
                    for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
                    m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                    printf " %15s", (t ~ /:1m:/) ? sprintf("%.0f MB/s", m) : sprintf("%.1fk IOPS", m / 1000)
                }' "$RESULTS"
        done
        echo
    done
    echo "ulvm-fuse daemon peak RSS (4 LVs active): $(awk -F'\t' '$2 == "ulvm-fuse" && $9 != "NA" && $9 + 0 > m { m = $9 + 0 } END { print m + 0 }' "$RESULTS") MiB"
} | tee "$OUT/table.txt"
