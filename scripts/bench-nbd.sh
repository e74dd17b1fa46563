#!/usr/bin/env bash
# bench-nbd.sh - the NBD data path against its peers: fio's nbd engine over a
# unix socket, against ulvm's server (serve-file), nbdkit's file plugin and
# qemu-nbd (--format=raw --cache=writeback --aio=threads, glibc malloc tuned)
# on the same 1 GiB backing file, in the same run, servers back to back per
# test (bench/nbd/peers.sh, ORDER=test). Prints MB/s, IOPS, p99, server CPU
# per request, peak RSS, ratios to nbdkit with their per-repetition range, and
# a check against the goals.
#
# Usage:  scripts/bench-nbd.sh          default run, ~6 minutes:
#                                       seq read/write 1 MiB QD8, random
#                                       read/write 4 KiB QD1 and QD32,
#                                       3 repetitions x 3 s (+1 s warm-up)
#         FULL=1 scripts/bench-nbd.sh   ~30 minutes: adds 1 MiB QD1/QD32,
#                                       5 repetitions x 10 s (+2 s warm-up)
# Environment: OUT=DIR keeps results.tsv, summary.txt, commands.log and the
# fio JSON there; DIST=DIR uses (and builds into) that tsc output directory
# [dist]; SKIP_BUILD=1 uses it as is; every peers.sh variable (RUNTIME, REPS,
# TESTS, SERVERS, ...) overrides the defaults here. `bench/nbd/peers.sh -h`
# documents them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DIST=${DIST:-dist}
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "bench-nbd: building into $DIST" >&2
    # tsc exits non-zero when any file in the tree has a type error, but still
    # emits; only our entry point has to exist afterwards.
    npx tsc -p tsconfig.json --outDir "$DIST" --tsBuildInfoFile "$DIST/.tsbuildinfo" >&2 || true
fi
SERVE=$(realpath "$DIST/src/nbd/serve-file.js")
[[ -f $SERVE ]] || { echo "bench-nbd: $SERVE missing (build failed?)" >&2; exit 2; }

if [[ ${FULL:-0} == 1 ]]; then
    : "${RUNTIME:=10}" "${RAMP:=2}" "${REPS:=5}"
    : "${TESTS:=read:1m:1 read:1m:8 read:1m:32 write:1m:1 write:1m:8 write:1m:32 randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32}"
else
    : "${RUNTIME:=3}" "${RAMP:=1}" "${REPS:=3}"
    : "${TESTS:=read:1m:8 write:1m:8 randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32}"
fi
: "${SERVERS:=nbdkit qemu-nbd-tuned custom}"
: "${SIZE_MIB:=1024}"
KEEP_OUT=1
if [[ -z ${OUT:-} ]]; then
    OUT=$(mktemp -d /var/tmp/bench-nbd.XXXXXX)
    KEEP_OUT=0
fi
export RUNTIME RAMP REPS TESTS SERVERS SIZE_MIB OUT
export SERVER_NAME=ulvm
export SERVER_CMD="exec node $(printf '%q' "$SERVE") --unix \"\$SOCK\" \"\$FILE\""

bash "$ROOT/bench/nbd/peers.sh"

# Goals, as ratios to nbdkit measured back to back (median of per-rep ratios).
awk -F'\t' '
NR == 1 { next }
{ iops[$2, $3, $1] = $5; if ($2 == "ulvm" && $9 != "NA" && $9 + 0 > rss) rss = $9 + 0; reps[$1] = 1 }
function ratio(test,    n, r, a, i, j, x) {
    n = 0
    for (r in reps) if ((("ulvm", test, r) in iops) && (("nbdkit", test, r) in iops) && iops["nbdkit", test, r] + 0 > 0 && iops["ulvm", test, r] != "NA")
        a[++n] = iops["ulvm", test, r] / iops["nbdkit", test, r]
    if (n == 0) return -1
    for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function goal(label, test, min,    v) {
    v = ratio(test)
    if (v < 0) { printf "  %-30s %-16s  not measured\n", label, test; return }
    printf "  %-30s %-16s  %.2f  (goal >= %.2f)  %s\n", label, test, v, min, (v >= min ? "ok" : "MISSED")
}
END {
    print "\ngoals (ulvm / nbdkit, median of per-rep ratios):"
    goal("1 MiB sequential reads", "read:1m:8", 0.9)
    goal("1 MiB sequential writes", "write:1m:8", 0.8)
    goal("4 KiB random writes QD32", "randwrite:4k:32", 0.9)
    goal("4 KiB random reads QD32", "randread:4k:32", 0.6)
    printf "  %-30s %-16s  %d MiB  (goal < 150 MiB)  %s\n", "ulvm peak RSS", "", rss, (rss < 150 ? "ok" : "MISSED")
}' "$OUT/results.tsv" | tee -a "$OUT/summary.txt"

if [[ $KEEP_OUT == 1 ]]; then echo "bench-nbd: results in $OUT" >&2; else rm -rf -- "$OUT"; fi
