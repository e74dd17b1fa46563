#!/usr/bin/env bash
# Build the "mirror oracle" (test/integration/lv/build-lvm-oracle.sh: Debian's
# lvm2 2.03.16 with the two guards that need device-mapper relaxed) when it is
# missing, so that the differential tests compare ulvm's mirror layouts with
# lvm2's own allocator on this machine too. Its source is Debian's lvm2 source
# package (the orig tarball of the version Debian 12 ships, checked against its
# known SHA-256), fetched from Debian's archive; gcc, make, pkg-config and
# libaio-dev come from apt. About 1.5 minutes on 2 cores, once per machine.
#
# DEST/ulvm-oracle.sha256 records the SHA-256 of the build-lvm-oracle.sh that
# made it; an oracle without it, or made by another version of that script
# (older guards relaxed), is rebuilt, and kept until the new one is built.
#
# Never fatal: when something is missing (not root, no network, no compiler),
# it says what and the mirror differential tests skip with that reason.
#   scripts/lvm-oracle.sh [DEST]    (default /var/tmp/ulvm-lvm-oracle; ULVM_NO_ORACLE=1 skips)
set -uo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-${ULVM_LVM_ORACLE_DIR:-/var/tmp/ulvm-lvm-oracle}}
VERSION=2.03.16
SHA256=9eee14d34f7962ade7d4624114ce7b6bd3d868d210afb72b3769f8c6a082646e
URL=${ULVM_LVM2_SOURCE_URL:-http://deb.debian.org/debian/pool/main/l/lvm2/lvm2_${VERSION}.orig.tar.xz}

[ "${ULVM_NO_ORACLE:-0}" = 1 ] && exit 0
BUILD_SCRIPT=test/integration/lv/build-lvm-oracle.sh
STAMP=$(sha256sum "$BUILD_SCRIPT" | cut -d' ' -f1)
say() { echo "setup: mirror oracle: $*" >&2; }
# The raid conversion oracle (build-lvm-oracle-raidconv.sh): a copy of the mirror
# oracle with the "must be active" guards of raid conversions relaxed too; ~5 s.
# Rebuilt whenever the mirror oracle or its own script changes.
RAIDCONV_SCRIPT=test/integration/lv/build-lvm-oracle-raidconv.sh
RAIDCONV_DEST=${ULVM_LVM_RAIDCONV_ORACLE_DIR:-/var/tmp/ulvm-lvm-oracle-raidconv}
raidconv() {
  local want
  want="$STAMP $(sha256sum "$RAIDCONV_SCRIPT" | cut -d' ' -f1)"
  [ -x "$RAIDCONV_DEST/tools/lvm" ] && [ "$(cat "$RAIDCONV_DEST/ulvm-raidconv.sha256" 2>/dev/null)" = "$want" ] && return 0
  if bash "$RAIDCONV_SCRIPT" "$DEST" "$RAIDCONV_DEST" >/var/tmp/ulvm-lvm-oracle-raidconv.log 2>&1; then
    echo "$want" >"$RAIDCONV_DEST/ulvm-raidconv.sha256"
    say "built $RAIDCONV_DEST/tools/lvm"
  else
    tail -5 /var/tmp/ulvm-lvm-oracle-raidconv.log >&2
    say "raid conversion oracle: build failed; raid1 conversion differential tests will skip"
  fi
}
if [ -x "$DEST/tools/lvm" ] && [ "$(cat "$DEST/ulvm-oracle.sha256" 2>/dev/null)" = "$STAMP" ]; then raidconv; exit 0; fi
if [ "$(id -u)" != 0 ]; then say "not built (needs root for its build packages); mirror differential tests will skip"; exit 0; fi

missing=()
command -v gcc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v curl >/dev/null || missing+=(curl)
dpkg -s libaio-dev >/dev/null 2>&1 || missing+=(libaio-dev)
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { say "could not install ${missing[*]}; mirror differential tests will skip"; exit 0; }
fi

work=$(mktemp -d /var/tmp/ulvm-lvm2-src.XXXXXX)
trap 'rm -rf "$work"' EXIT
say "building lvm2 $VERSION from Debian's source (once per machine, ~1.5 min)"
if ! curl -sfL --retry 2 -o "$work/lvm2.tar.xz" "$URL"; then
  say "could not download $URL; mirror differential tests will skip"; exit 0
fi
if ! echo "$SHA256  $work/lvm2.tar.xz" | sha256sum -c --quiet - >/dev/null 2>&1; then
  say "$URL does not have the expected SHA-256; not built"; exit 0
fi
tar -C "$work" -xf "$work/lvm2.tar.xz" || { say "could not unpack the source"; exit 0; }
if ! bash "$BUILD_SCRIPT" "$work/LVM2.$VERSION" "$DEST.tmp" >"$work/build.log" 2>&1; then
  tail -5 "$work/build.log" >&2
  for f in configure.log make.log; do [ -f "$DEST.tmp/$f" ] && tail -5 "$DEST.tmp/$f" >&2; done
  say "build failed; mirror differential tests will skip"; rm -rf "$DEST.tmp"; exit 0
fi
echo "$STAMP" >"$DEST.tmp/ulvm-oracle.sha256"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST" && say "built $DEST/tools/lvm"
raidconv
