#!/usr/bin/env bash
# peers.sh - peer benchmark for NBD servers, driven by fio's nbd engine over a
# unix socket, with the host limit (fio straight on the backing files) measured
# in the same run on the same non-sparse backing files.
#
# (ulvm copy of shared/tools/peers.sh; additions: each server's peak RSS
# (VmHWM) per run, server CPU per request, and the per-repetition ratios so
# their spread is visible. Driven by scripts/bench-nbd.sh.)
#
# Every measurement is repeated REPS times; the order of the rows is rotated on
# each repetition so that a noisy spell on this shared machine does not always
# land on the same server. The table shows medians; the ratio table shows the
# median of per-repetition ratios against REF (default nbdkit), which is the
# number to compare across machines and days.
#
# Usage:  peers.sh            (or: VAR=value ... peers.sh)
#         peers.sh -h         (this text)
#
# Environment (default in brackets):
#   RUNTIME        measured seconds per fio run [10]
#   RAMP           warm-up seconds per fio run, not measured [2]
#   REPS           repetitions of every measurement (median reported) [3]
#   SIZE_MIB       size of each backing file, MiB [1024]
#   SERVERS        rows to run, in order (list below)
#                  [host-psync host-uring host-uring-direct host-mirror
#                   nbdkit-null nbdkit nbdkit-t1 qemu-nbd qemu-nbd-tuned
#                   quorum quorum-tuned (+ custom rows when their command is set)]
#   TESTS          space-separated RW:BS:IODEPTH items, RW one of read write
#                  randread randwrite
#                  [read:1m:1 read:1m:32 write:1m:1 write:1m:32
#                   randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32]
#   REF            row the ratio table divides by [nbdkit]
#   ORDER          test = for each test run every row back to back, restarting
#                  servers, so ratio pairs are seconds apart; row = start each
#                  server once and run all its tests (fewer restarts) [test]
#   QEMU_CACHE     qemu-nbd --cache for the qemu-nbd and quorum rows [writeback]
#   QEMU_AIO       qemu-nbd --aio for the qemu-nbd and quorum rows [threads]
#   QUORUM_READ    quorum read-pattern: fifo (read one leg, as RAID1 does) or
#                  quorum (read every leg and compare) [fifo]
#   NBDKIT_THREADS --threads for the nbdkit row; empty = nbdkit's default (16) []
#   SERVER_CMD     shell command for row "custom": a server for one backing file.
#                  It runs under bash with these variables exported:
#                    SOCK (unix socket path to listen on), FILE (= FILE1),
#                    FILE1, FILE2, SIZE (bytes of each file), URI.
#                  It must serve the default export "" on $SOCK, stay up across
#                  client connections, and exit on SIGTERM.
#                  e.g. SERVER_CMD='node dist/nbd-serve.js --unix "$SOCK" "$FILE"'
#   SERVER_MIRROR_CMD  same, for row "custom-mirror": a 2-way mirror of FILE1
#                  and FILE2 (which hold identical data at start).
#   SERVER_RAID_CMD    same, for row "custom-raid" (a second 2-way layout of FILE1 and FILE2)
#   SERVER_NAME, SERVER_MIRROR_NAME, SERVER_RAID_NAME  labels of those rows [custom, custom-mirror, custom-raid]
#   SERVER_EXPORT, SERVER_MIRROR_EXPORT  export name the custom rows serve ["" ]
#   START_TIMEOUT  seconds to wait for a server to answer nbdinfo [20]
#   SCRATCH_PARENT where the scratch directory is made [/var/tmp]
#   OUT            if set: directory to save results.tsv, summary.txt,
#                  commands.log and the fio JSON files in
#   KEEP           1 = keep the scratch directory (backing files) at exit [0]
#
# Rows:
#   host-psync         fio psync on FILE1 through the page cache (QD1 tests only)
#   host-uring         fio io_uring on FILE1 through the page cache
#   host-uring-direct  fio io_uring on FILE1 with O_DIRECT (the virtual disk)
#   host-mirror        fio io_uring, page cache, two jobs writing FILE1 and FILE2
#                      at once (write tests only); MB/s and IOPS are per copy,
#                      i.e. what a mirror could show its client
#   nbdkit-null        nbdkit null plugin: NBD + fio client cost with no file I/O
#   nbdkit             nbdkit file plugin on FILE1 (default --threads, 16)
#   nbdkit-t1          nbdkit file plugin, --threads=1 (one request at a time)
#   nbdkit-again       the nbdkit row once more: its ratio to nbdkit (ideally
#                      1.00) shows the noise floor of the ratios (A/A test)
#   qemu-nbd           qemu-nbd -f raw FILE1
#   quorum             qemu-nbd, quorum driver over raw FILE1 + FILE2,
#                      vote-threshold=1 (a 2-way mirror peer)
#   qemu-nbd-tuned, quorum-tuned   the same with glibc malloc told not to mmap
#                      (and munmap) a fresh buffer for every large request,
#                      which costs 256 page faults per MiB; see perf-baseline.md
#   custom, custom-mirror   $SERVER_CMD, $SERVER_MIRROR_CMD
#
# Needs: bash, coreutils, util-linux (setsid), procps (ps), fio with the nbd
# engine, jq, libnbd-bin (nbdinfo), nbdkit, qemu-utils (qemu-nbd).
# Processes it starts are ended at exit by their PID (each server runs in its
# own session, whose id is that PID); the scratch directory is removed.

set -Eeuo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
    exit 0
fi

RUNTIME=${RUNTIME:-10}
RAMP=${RAMP:-2}
REPS=${REPS:-3}
SIZE_MIB=${SIZE_MIB:-1024}
TESTS=${TESTS:-"read:1m:1 read:1m:32 write:1m:1 write:1m:32 randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32"}
REF=${REF:-nbdkit}
QEMU_CACHE=${QEMU_CACHE:-writeback}
QEMU_AIO=${QEMU_AIO:-threads}
QUORUM_READ=${QUORUM_READ:-fifo}
ORDER=${ORDER:-test}
NBDKIT_THREADS=${NBDKIT_THREADS:-}
SERVER_CMD=${SERVER_CMD:-}
SERVER_MIRROR_CMD=${SERVER_MIRROR_CMD:-}
SERVER_NAME=${SERVER_NAME:-custom}
SERVER_MIRROR_NAME=${SERVER_MIRROR_NAME:-custom-mirror}
SERVER_RAID_CMD=${SERVER_RAID_CMD:-}
SERVER_RAID_NAME=${SERVER_RAID_NAME:-custom-raid}
START_TIMEOUT=${START_TIMEOUT:-20}
SCRATCH_PARENT=${SCRATCH_PARENT:-/var/tmp}
OUT=${OUT:-}
KEEP=${KEEP:-0}

if [[ -z ${SERVERS:-} ]]; then
    SERVERS="host-psync host-uring host-uring-direct host-mirror nbdkit-null nbdkit nbdkit-t1 qemu-nbd qemu-nbd-tuned quorum quorum-tuned"
    [[ -n $SERVER_CMD ]] && SERVERS+=" custom"
    [[ -n $SERVER_MIRROR_CMD ]] && SERVERS+=" custom-mirror"
    [[ -n $SERVER_RAID_CMD ]] && SERVERS+=" custom-raid"
fi

die() { echo "peers.sh: $*" >&2; exit 2; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------- checks
for r in $SERVERS; do
    case $r in
        host-psync|host-uring|host-uring-direct|host-mirror|nbdkit-null|nbdkit|nbdkit-again|nbdkit-t1) ;;
        qemu-nbd|qemu-nbd-tuned|quorum|quorum-tuned) ;;
        custom) [[ -n $SERVER_CMD ]] || die "row custom needs SERVER_CMD" ;;
        custom-mirror) [[ -n $SERVER_MIRROR_CMD ]] || die "row custom-mirror needs SERVER_MIRROR_CMD" ;;
        custom-raid) [[ -n $SERVER_RAID_CMD ]] || die "row custom-raid needs SERVER_RAID_CMD" ;;
        *) die "unknown row '$r'" ;;
    esac
done
for t in $TESTS; do
    [[ $t =~ ^(read|write|randread|randwrite):[0-9]+[kKmM]?:[0-9]+$ ]] || die "bad test '$t' (want RW:BS:IODEPTH)"
done
[[ $ORDER == test || $ORDER == row ]] || die "ORDER must be test or row"
[[ $REPS =~ ^[1-9][0-9]*$ && $RUNTIME =~ ^[1-9][0-9]*$ && $RAMP =~ ^[0-9]+$ && $SIZE_MIB =~ ^[1-9][0-9]*$ ]] ||
    die "REPS, RUNTIME, SIZE_MIB must be positive integers, RAMP a non-negative one"
need() { command -v "$1" >/dev/null 2>&1 || die "missing command: $1 ($2)"; }
need fio fio; need jq jq; need setsid util-linux; need ps procps
need nbdinfo libnbd-bin
[[ " $SERVERS " == *" nbdkit"* ]] && need nbdkit nbdkit
[[ " $SERVERS " == *" qemu-nbd"* || " $SERVERS " == *" quorum"* ]] && need qemu-nbd qemu-utils
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no nbd ioengine"

needs_two=0
for r in $SERVERS; do
    case $r in host-mirror|quorum|quorum-tuned|custom-mirror|custom-raid) needs_two=1 ;; esac
done

# ---------------------------------------------------------------- scratch, cleanup
mkdir -p "$SCRATCH_PARENT"
WORK=$(mktemp -d "$SCRATCH_PARENT/nbd-peers.XXXXXX")
[[ $WORK != *,* ]] || die "scratch path contains a comma, which qemu's --image-opts cannot take: $WORK"
SRV_PID=
SOCK=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server || true
    if [[ $KEEP == 1 ]]; then
        log "kept scratch directory $WORK"
    else
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n $OUT ]]; then
    mkdir -p "$OUT/json"
    RES_DIR=$OUT
else
    mkdir -p "$WORK/json"
    RES_DIR=$WORK
fi
RESULTS=$RES_DIR/results.tsv
CMDLOG=$RES_DIR/commands.log
: >"$CMDLOG"
printf 'rep\trow\ttest\tMBps\tIOPS\tp99_us\tsrv_cpu_pct\tfio_cpu_pct\tpeak_rss_mib\n' >"$RESULTS"

FILE1=$WORK/leg1.img
FILE2=$WORK/leg2.img
SIZE=$((SIZE_MIB * 1024 * 1024))
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- backing files
# Filled with random bytes, not fallocate'd: on ext4/xfs a fallocate'd range is
# "unwritten" and reads of it return zeroes without touching the disk, which
# makes O_DIRECT reads look impossibly fast.
log "making ${SIZE_MIB} MiB backing file(s) in $WORK"
dd if=/dev/urandom of="$FILE1" bs=1M count="$SIZE_MIB" iflag=fullblock status=none
if ((needs_two)); then cp -- "$FILE1" "$FILE2"; fi
sync
files=("$FILE1")
if ((needs_two)); then files+=("$FILE2"); fi
for f in "${files[@]}"; do
    alloc=$(( $(stat -c %b "$f") * $(stat -c %B "$f") ))
    ((alloc >= SIZE)) || die "$f is sparse ($alloc of $SIZE bytes allocated)"
done
export SOCK FILE1 FILE2 SIZE
export FILE=$FILE1

# ---------------------------------------------------------------- servers
alive() {   # true while pid runs (a zombie counts as gone)
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $st != Z* ]]
}
session_pids() { ps -o pid= --sid "$1" 2>/dev/null || true; }

srv_peak_rss_mib() {   # largest VmHWM (peak resident set) among the server session's processes
    local p kb max=0
    for p in $(session_pids "$SRV_PID"); do
        kb=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null) || continue
        [[ -n $kb ]] && ((kb > max)) && max=$kb
    done
    awk -v k="$max" 'BEGIN{printf "%.0f", k/1024}'
}

srv_ticks() {   # user+system clock ticks used so far by every process of the server's session
    local p s rest total=0
    local -a f
    for p in $(session_pids "$SRV_PID"); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${s##*) }
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# glibc keeps buffers up to 32 MiB on its heap instead of a fresh mmap each time
QEMU_TUNED_ENV="GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"

server_cmd() {  # fills the array CMD for row $1
    local nt=()
    case $1 in
        *-tuned) server_cmd "${1%-tuned}"; CMD=(env "$QEMU_TUNED_ENV" "${CMD[@]}") ;;
        nbdkit-null) CMD=(nbdkit -f --exit-with-parent -U "$SOCK" null "size=$SIZE") ;;
        nbdkit)
            [[ -n $NBDKIT_THREADS ]] && nt=(--threads="$NBDKIT_THREADS")
            CMD=(nbdkit -f --exit-with-parent "${nt[@]}" -U "$SOCK" file "$FILE1") ;;
        nbdkit-t1) CMD=(nbdkit -f --exit-with-parent --threads=1 -U "$SOCK" file "$FILE1") ;;
        nbdkit-again) server_cmd nbdkit ;;
        qemu-nbd) CMD=(qemu-nbd --persistent --shared=8 --socket="$SOCK" --format=raw
                       --cache="$QEMU_CACHE" --aio="$QEMU_AIO" "$FILE1") ;;
        quorum) CMD=(qemu-nbd --persistent --shared=8 --socket="$SOCK"
                     --cache="$QEMU_CACHE" --aio="$QEMU_AIO" --image-opts
                     "driver=quorum,vote-threshold=1,read-pattern=$QUORUM_READ,children.0.driver=raw,children.0.file.driver=file,children.0.file.filename=$FILE1,children.1.driver=raw,children.1.file.driver=file,children.1.file.filename=$FILE2") ;;
        custom) CMD=(bash -c "$SERVER_CMD") ;;
        custom-mirror) CMD=(bash -c "$SERVER_MIRROR_CMD") ;;
        custom-raid) CMD=(bash -c "$SERVER_RAID_CMD") ;;
    esac
}

label() {
    case $1 in
        custom) echo "$SERVER_NAME" ;;
        custom-mirror) echo "$SERVER_MIRROR_NAME" ;;
        custom-raid) echo "$SERVER_RAID_NAME" ;;
        *) echo "$1" ;;
    esac
}

start_server() {  # row; sets SRV_PID, SOCK, URI; returns 1 if it does not come up
    local row=$1 i
    SOCK=$WORK/$row.sock
    local exp_name=
    case $row in
        custom) exp_name=${SERVER_EXPORT:-} ;;
        custom-mirror) exp_name=${SERVER_MIRROR_EXPORT:-} ;;
        custom-raid) exp_name=${SERVER_RAID_EXPORT:-} ;;
    esac
    URI="nbd+unix:///$exp_name?socket=$SOCK"
    export SOCK URI
    rm -f -- "$SOCK"
    server_cmd "$row"
    printf '# server %s:\n%s\n' "$(label "$row")" "$(printf '%q ' "${CMD[@]}")" >>"$CMDLOG"
    # setsid: the server and anything it spawns share a new session whose id
    # is this PID, so cleanup can find exactly the processes started here.
    setsid "${CMD[@]}" </dev/null >>"$WORK/$row.log" 2>&1 &
    SRV_PID=$!
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if ! alive "$SRV_PID"; then
            log "server $(label "$row") exited during start-up; its log:"
            tail -n 20 "$WORK/$row.log" >&2 || true
            wait "$SRV_PID" 2>/dev/null || true
            SRV_PID=
            return 1
        fi
        if [[ -S $SOCK ]] && nbdinfo --size "$URI" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    log "server $(label "$row") did not answer on $SOCK within ${START_TIMEOUT}s"
    stop_server
    return 1
}

stop_server() {
    [[ -n ${SRV_PID:-} ]] || return 0
    local i
    kill -TERM -- "-$SRV_PID" 2>/dev/null || kill -TERM "$SRV_PID" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$SRV_PID" || break
        sleep 0.1
    done
    if alive "$SRV_PID" || [[ -n $(session_pids "$SRV_PID") ]]; then
        kill -KILL -- "-$SRV_PID" 2>/dev/null || kill -KILL "$SRV_PID" 2>/dev/null || true
    fi
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
    [[ -n ${SOCK:-} ]] && rm -f -- "$SOCK"
    return 0
}

# ---------------------------------------------------------------- one fio run
# run_one REP ROW TEST -> appends one line to $RESULTS
run_one() {
    local rep=$1 row=$2 test=$3 rw bs qd dir json t0 t1 c0=0 c1=0 srv_cpu=NA rss=NA
    IFS=: read -r rw bs qd <<<"$test"
    case $rw in read|randread) dir=read ;; *) dir=write ;; esac
    local name="${row}_${rw}_${bs}_qd${qd}_rep${rep}"
    json=$RES_DIR/json/$name.json
    local -a fio=(fio --name=job --output-format=json --output="$json"
        --rw="$rw" --bs="$bs" --iodepth="$qd" --runtime="$RUNTIME" --time_based
        --ramp_time="$RAMP" --norandommap --lat_percentiles=1 --invalidate=0)
    local per_copy=1
    case $row in
        host-psync) fio+=(--ioengine=psync --filename="$FILE1") ;;
        host-uring) fio+=(--ioengine=io_uring --filename="$FILE1") ;;
        host-uring-direct) fio+=(--ioengine=io_uring --direct=1 --filename="$FILE1") ;;
        host-mirror)
            # options before the first --name are global; one job per copy
            fio=(fio --output-format=json --output="$json" --group_reporting
                --rw="$rw" --bs="$bs" --iodepth="$qd" --runtime="$RUNTIME" --time_based
                --ramp_time="$RAMP" --norandommap --lat_percentiles=1 --invalidate=0 --ioengine=io_uring
                --name=copy1 --filename="$FILE1" --name=copy2 --filename="$FILE2")
            per_copy=2 ;;
        *) fio+=(--ioengine=nbd --uri="$URI") ;;
    esac
    printf '# fio %s %s:\n%s\n' "$(label "$row")" "$test" "$(printf '%q ' "${fio[@]}")" >>"$CMDLOG"
    sync
    [[ -n $SRV_PID ]] && c0=$(srv_ticks)
    t0=$(date +%s%N)
    if ! "${fio[@]}" >>"$WORK/fio.log" 2>&1; then
        log "fio failed: $name (see fio.log)"
        tail -n 5 "$WORK/fio.log" >&2 || true
        printf '%s\t%s\t%s\tNA\tNA\tNA\tNA\tNA\tNA\n' "$rep" "$(label "$row")" "$test" >>"$RESULTS"
        return 0
    fi
    t1=$(date +%s%N)
    if [[ -n $SRV_PID ]]; then
        c1=$(srv_ticks)
        srv_cpu=$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN{printf "%.0f", 100*c/hz/(ns/1e9)}')
        rss=$(srv_peak_rss_mib)
    fi
    local line bw iops p99 fcpu
    line=$(sed -n '/^{/,$p' "$json" | jq -r --arg d "$dir" --argjson k "$per_copy" '
        .jobs[0] as $j | $j[$d] as $r
        | [ ($r.bw_bytes / 1e6 / $k), ($r.iops / $k),
            (($r.lat_ns.percentile["99.000000"] // $r.clat_ns.percentile["99.000000"] // 0) / 1000),
            ($j.usr_cpu + $j.sys_cpu) ]
        | map(. * 10 | round / 10) | @tsv') || line=$'NA\tNA\tNA\tNA'
    IFS=$'\t' read -r bw iops p99 fcpu <<<"$line"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$(label "$row")" "$test" \
        "$bw" "$iops" "$p99" "$srv_cpu" "$fcpu" "$rss" >>"$RESULTS"
}

applicable() {  # row test -> true if the row runs that test
    local row=$1 rw qd
    rw=${2%%:*}; qd=${2##*:}
    case $row in
        host-psync) [[ $qd == 1 ]] ;;
        host-mirror) [[ $rw == write || $rw == randwrite ]] ;;
        *) return 0 ;;
    esac
}

# ---------------------------------------------------------------- main loop
read -r -a ROWS <<<"$SERVERS"
read -r -a TLIST <<<"$TESTS"
nruns=0
for r in "${ROWS[@]}"; do for t in "${TLIST[@]}"; do applicable "$r" "$t" && nruns=$((nruns + 1)); done; done
log "$nruns fio runs x $REPS reps, ORDER=$ORDER, ~$(( nruns * REPS * (RUNTIME + RAMP + 2) / 60 )) min"

rotated() {  # ORDERED = ROWS rotated left by (rep-1), so no row always goes first
    local k=$(( ($1 - 1) % ${#ROWS[@]} ))
    ORDERED=("${ROWS[@]:k}" "${ROWS[@]:0:k}")
}
begin_row() {  # start the row's server (if it has one) and warm the page cache
    case $1 in
        host-*) SRV_PID= ;;
        *) start_server "$1" || return 1 ;;
    esac
    # Warm the page cache so that every buffered row starts from the same state.
    # fio itself runs with --invalidate=0: by default it drops the file's cached
    # pages before each job, which would leave the host rows reading a cold
    # cache while the servers read a warm one.
    cat "$FILE1" >/dev/null
    if ((needs_two)); then cat "$FILE2" >/dev/null; fi
    return 0
}
na() { printf '%s\t%s\t%s\tNA\tNA\tNA\tNA\tNA\tNA\n' "$1" "$(label "$2")" "$3" >>"$RESULTS"; }

for ((rep = 1; rep <= REPS; rep++)); do
    rotated "$rep"
    if [[ $ORDER == row ]]; then
        # one server start per row; the row runs every test
        for row in "${ORDERED[@]}"; do
            if ! begin_row "$row"; then
                for t in "${TLIST[@]}"; do applicable "$row" "$t" && na "$rep" "$row" "$t"; done
                continue
            fi
            for t in "${TLIST[@]}"; do
                applicable "$row" "$t" || continue
                log "rep $rep/$REPS  $(label "$row")  $t"
                run_one "$rep" "$row" "$t"
            done
            stop_server
        done
    else
        # every row runs the same test back to back (server restarted each
        # time), so the two runs a ratio divides are seconds apart, not minutes
        for t in "${TLIST[@]}"; do
            for row in "${ORDERED[@]}"; do
                applicable "$row" "$t" || continue
                if ! begin_row "$row"; then na "$rep" "$row" "$t"; continue; fi
                log "rep $rep/$REPS  $t  $(label "$row")"
                run_one "$rep" "$row" "$t"
                stop_server
            done
        done
    fi
done

# ---------------------------------------------------------------- report
LABELS=""
for r in "${ROWS[@]}"; do LABELS+="$(label "$r") "; done
REFL=$(label "$REF")

report() {
    echo "# NBD peer benchmark  $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "# host: $(nproc) CPUs, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
    echo "# $(fio --version), nbdkit $(nbdkit --version 2>/dev/null | awk '{print $2}'), $(qemu-nbd --version 2>/dev/null | head -1)"
    echo "# RUNTIME=${RUNTIME}s RAMP=${RAMP}s REPS=$REPS ORDER=$ORDER SIZE=${SIZE_MIB}MiB QEMU_CACHE=$QEMU_CACHE QEMU_AIO=$QEMU_AIO QUORUM_READ=$QUORUM_READ"
    echo "# MB/s = 10^6 bytes/s; p99 = 99th percentile of total latency; srvCPU/fioCPU = % of one core;"
    echo "# spread = (max-min)/median of IOPS over the reps; mirror rows report per-copy (client-visible) rates"
    echo "# us/req = server CPU per request (srvCPU / IOPS); RSS = peak resident set (VmHWM) of the server, MiB"
    echo
    awk -F'\t' -v rows="$LABELS" -v tests="$TESTS" -v ref="$REFL" '
    function med(key, col,    i, c, j, x, a) {
        c = 0
        for (i = 1; i <= cnt[key]; i++) if (val[key, col, i] != "NA") a[++c] = val[key, col, i] + 0
        if (c == 0) return "NA"
        for (i = 2; i <= c; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
    }
    function spread(key,    i, c, lo, hi, m, v) {
        c = 0
        for (i = 1; i <= cnt[key]; i++) { v = val[key, 5, i]; if (v == "NA") continue; v += 0
            if (!c || v < lo) lo = v; if (!c || v > hi) hi = v; c++ }
        m = med(key, 5)
        return (c < 2 || m == 0) ? "-" : sprintf("%.0f%%", 100 * (hi - lo) / m)
    }
    function ratios(row, test,    c, k, rk, rp, lo, hi, x, out) {   # "min..max" of the per-rep ratios
        c = 0
        for (rp in reps) {
            k = row SUBSEP test SUBSEP rp; rk = ref SUBSEP test SUBSEP rp
            if ((k in iops) && (rk in iops) && iops[k] != "NA" && iops[rk] != "NA" && iops[rk] > 0) {
                x = iops[k] / iops[rk]
                if (!c || x < lo) lo = x; if (!c || x > hi) hi = x; c++
            }
        }
        return c == 0 ? "-" : sprintf("%.2f..%.2f", lo, hi)
    }
    function ratio(row, test,    i, c, j, x, a, k, rk, rp) {
        c = 0
        for (rp in reps) {
            k = row SUBSEP test SUBSEP rp; rk = ref SUBSEP test SUBSEP rp
            if ((k in iops) && (rk in iops) && iops[k] != "NA" && iops[rk] != "NA" && iops[rk] > 0)
                a[++c] = iops[k] / iops[rk]
        }
        if (c == 0) return "-"
        for (i = 2; i <= c; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return sprintf("%.2f", (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2)
    }
    NR == 1 { next }
    {
        key = $2 SUBSEP $3
        n = ++cnt[key]
        for (col = 4; col <= 9; col++) val[key, col, n] = ($col == "" ? "NA" : $col)
        iops[$2 SUBSEP $3 SUBSEP $1] = $5
        reps[$1] = 1
    }
    END {
        nr = split(rows, R, " "); nt = split(tests, T, " ")
        w = 18
        for (r = 1; r <= nr; r++) if (length(R[r]) + 1 > w) w = length(R[r]) + 1
        rowf = "%-" w "s"
        printf rowf " %-16s %9s %10s %10s %7s %7s %7s %7s %6s\n", "row", "test", "MB/s", "IOPS", "p99(us)", "srvCPU", "fioCPU", "spread", "us/req", "RSS"
        for (t = 1; t <= nt; t++) {
            split(T[t], p, ":"); tl = p[1] " " p[2] " qd" p[3]
            for (r = 1; r <= nr; r++) {
                key = R[r] SUBSEP T[t]
                if (!(key in cnt)) continue
                m4 = med(key, 4); m5 = med(key, 5); m6 = med(key, 6); m7 = med(key, 7); m8 = med(key, 8); m9 = med(key, 9)
                printf rowf " %-16s %9s %10s %10s %7s %7s %7s %7s %6s\n", R[r], tl,
                    (m4 == "NA" ? "NA" : sprintf("%.1f", m4)), (m5 == "NA" ? "NA" : sprintf("%.0f", m5)),
                    (m6 == "NA" ? "NA" : sprintf("%.0f", m6)), (m7 == "NA" ? "-" : sprintf("%.0f%%", m7)),
                    (m8 == "NA" ? "-" : sprintf("%.0f%%", m8)), spread(key),
                    ((m7 == "NA" || m5 == "NA" || m5 == 0) ? "-" : sprintf("%.1f", m7 / 100 / m5 * 1e6)),
                    (m9 == "NA" ? "-" : sprintf("%.0f", m9))
            }
            print ""
        }
        if (!((ref SUBSEP T[1]) in cnt)) exit
        printf "IOPS ratio to %s, median of per-rep ratios (>1 = faster than %s)\n", ref, ref
        printf "columns: rd=read wr=write rr=randread rw=randwrite, BS@IODEPTH\n"
        short["read"] = "rd"; short["write"] = "wr"; short["randread"] = "rr"; short["randwrite"] = "rw"
        printf rowf, "row"
        for (t = 1; t <= nt; t++) { split(T[t], p, ":"); printf " %9s", short[p[1]] p[2] "@" p[3] }
        printf "\n"
        for (r = 1; r <= nr; r++) {
            printf rowf, R[r]
            for (t = 1; t <= nt; t++) printf " %9s", ((R[r] SUBSEP T[t]) in cnt) ? ratio(R[r], T[t]) : "-"
            printf "\n"
        }
        printf "\nper-rep ratio range (min..max) to %s\n", ref
        printf rowf, "row"
        for (t = 1; t <= nt; t++) { split(T[t], p, ":"); printf " %11s", short[p[1]] p[2] "@" p[3] }
        printf "\n"
        for (r = 1; r <= nr; r++) {
            if (R[r] == ref) continue
            printf rowf, R[r]
            for (t = 1; t <= nt; t++) printf " %11s", ((R[r] SUBSEP T[t]) in cnt) ? ratios(R[r], T[t]) : "-"
            printf "\n"
        }
    }' "$RESULTS"
    echo
    echo "# commands (first of each kind; every one is in commands.log):"
    awk '/^# server /{getline c; if (!seen[$0]++) print $0 "\n  " c; next}
         /^# fio /{getline c; if (!seenrow[$3]++) print $0 "\n  " c}' "$CMDLOG"
}

report | tee "$RES_DIR/summary.txt"
[[ -n $OUT ]] && log "results saved in $OUT"
exit 0
