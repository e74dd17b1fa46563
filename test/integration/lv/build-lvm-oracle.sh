#!/usr/bin/env bash
# Build the "mirror oracle": lvm2 2.03.16 from the reference source, with a
# few guards relaxed so that it lays out legacy mirrors and raid1 LVs without
# device-mapper.
#
# Stock lvm2 refuses `lvcreate --type mirror` and `--type raid1` when
# activation is disabled ("Can't create mirror without using device-mapper
# kernel driver.", the same for raid1, and "Unable to create in-sync mirror
# log while activation is disabled." for a mirror without --nosync); and a
# new raid LV's rmeta sub-LVs are wiped by activating them
# (activate_and_wipe_lvlist), which cannot work without device-mapper. This
# machine has no device-mapper, so to compare ulvm's layouts with what lvm2's
# allocator really does, when ULVM_ORACLE_MIRROR is set in the environment
# the three refusals are skipped and the rmeta wipe is skipped after its
# metadata commit (lvm2 still commits the intermediate metadata with the
# rmeta LVs visible, as it does with device-mapper, so seqno counts match).
# Nothing else changes: the allocator, the metadata writer and every message
# are lvm2's own.
#
#   test/integration/lv/build-lvm-oracle.sh [SRC] [DEST]
#     SRC  lvm2 2.03.16 source tree   (default /work/ref/lvm2)
#     DEST build directory            (default /var/tmp/ulvm-lvm-oracle)
# The binary is DEST/tools/lvm; the LV differential tests use it when present
# (or when ULVM_LVM_ORACLE names another build) and skip mirror cases otherwise.
# Needs gcc, make and libaio-dev.
set -euo pipefail
SRC=${1:-/work/ref/lvm2}
DEST=${2:-/var/tmp/ulvm-lvm-oracle}
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
patch("lib/metadata/lv_manip.c",
      "\t\t    seg_is_mirror(lp) ||",
      "\t\t    (seg_is_mirror(lp) && !getenv(\"ULVM_ORACLE_MIRROR\")) ||")
patch("lib/metadata/mirror.c",
      "\tif (!activation() && in_sync) {",
      "\tif (!activation() && in_sync && !getenv(\"ULVM_ORACLE_MIRROR\")) {")
patch("lib/metadata/lv_manip.c",
      "\t\t    (seg_is_raid(lp) && !seg_is_raid0(lp)) ||",
      "\t\t    (seg_is_raid(lp) && !seg_is_raid0(lp) && !getenv(\"ULVM_ORACLE_MIRROR\")) ||")
patch("lib/metadata/lv_manip.c",
      "\twas_active = alloca(sz);\n",
      "\tif (!activation() && getenv(\"ULVM_ORACLE_MIRROR\"))\n\t\treturn 1;\n\n\twas_active = alloca(sz);\n")
PY
./configure --disable-udev_sync --disable-udev_rules --disable-blkid_wiping --disable-readline \
  --disable-selinux --disable-dmeventd --disable-lvmpolld --disable-notify-dbus --with-thin=none \
  --with-cache=none --with-vdo=none --with-writecache=none --with-integrity=none \
  --disable-use-lvmlockd --without-systemd >configure.log 2>&1
make -j"$(nproc)" >make.log 2>&1
echo "built $DEST/tools/lvm"
