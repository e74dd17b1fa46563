#!/usr/bin/env bash
# Build the "raid conversion oracle": a copy of the mirror oracle (built by
# build-lvm-oracle.sh) with the guards that make lvm2 2.03.16 refuse raid
# conversions of an LV that is not active also relaxed when ULVM_ORACLE_MIRROR
# is set. Without device-mapper every LV is inactive, and lvm2 refuses
# `lvconvert -m`, `--type`, `--splitmirrors`, `--repair` and `--replace` on a
# raid LV with "LV must be active to perform this operation.", and asks the
# kernel whether the array is in sync (_raid_in_sync). With the variable set:
#  - lv_is_active() answers "active" inside lib/metadata/raid_manip.c, and in
#    tools/lvconvert.c's raid repair;
#  - _raid_in_sync() answers "in sync" (ulvm's rule for an inactive LV:
#    in sync unless NOTSYNCED, which lvm2 checks separately).
# Everything else (allocator, metadata writer, messages, prompts) is lvm2's.
#
#   test/integration/lv/build-lvm-oracle-raidconv.sh [MIRROR_ORACLE_DEST] [DEST]
#     MIRROR_ORACLE_DEST  built mirror oracle tree (default /var/tmp/ulvm-lvm-oracle-raid)
#     DEST                build directory          (default /var/tmp/ulvm-lvm-oracle-raidconv)
# The copy keeps the mirror oracle's ulvm-oracle.sha256 stamp; only the two
# patched files recompile. The binary is DEST/tools/lvm (env ULVM_LVM_RAIDCONV_ORACLE).
set -euo pipefail
SRC=${1:-/var/tmp/ulvm-lvm-oracle-raid}
DEST=${2:-/var/tmp/ulvm-lvm-oracle-raidconv}
[ -x "$SRC/tools/lvm" ] || { echo "no built mirror oracle in $SRC (run build-lvm-oracle.sh)" >&2; exit 1; }
rm -rf "$DEST"
cp -a "$SRC" "$DEST"
cd "$DEST"
python3 - <<'PY'
import sys
def patch(path, old, new):
    s = open(path).read()
    if old not in s:
        sys.exit(f"{path}: expected text not found; is this lvm2 2.03.16?")
    open(path, "w").write(s.replace(old, new, 1))
patch("lib/metadata/raid_manip.c",
      '#include "lib/misc/lvm-signal.h"\n',
      '#include "lib/misc/lvm-signal.h"\n\n#define lv_is_active(lv) ((!activation() && getenv("ULVM_ORACLE_MIRROR")) ? 1 : lv_is_active(lv))\n')
patch("lib/metadata/raid_manip.c",
      "\tif (seg_is_striped(first_seg(lv)))\n\t\treturn 1;\n\n\tif (!lv_is_raid(lv)) {",
      "\tif (seg_is_striped(first_seg(lv)))\n\t\treturn 1;\n\n\tif (!activation() && getenv(\"ULVM_ORACLE_MIRROR\"))\n\t\treturn 1;\n\n\tif (!lv_is_raid(lv)) {")
patch("tools/lvconvert.c",
      "\tif (!lv_is_active(lv_lock_holder(lv))) {\n\t\tlog_error(\"%s must be active to perform this operation.\", display_lvname(lv));",
      "\tif (!(!activation() && getenv(\"ULVM_ORACLE_MIRROR\")) && !lv_is_active(lv_lock_holder(lv))) {\n\t\tlog_error(\"%s must be active to perform this operation.\", display_lvname(lv));")
PY
make -j"$(nproc)" >make-raidconv.log 2>&1
echo "built $DEST/tools/lvm"
