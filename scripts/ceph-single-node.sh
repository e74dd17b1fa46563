#!/usr/bin/env bash
# A single-node Ceph (Debian 12's 16.2 packages) in one directory, by hand:
# no systemd, no cephadm, nothing under /etc/ceph or /var/lib/ceph. One mon,
# one mgr, one OSD (BlueStore on a sparse file), pool "rbd" of size 1, and an
# RBD image. Sourced by scripts/test-ceph.sh:
#   ceph_boot DIR          boot the cluster under DIR (writes DIR/ceph.conf, DIR/keyring)
#   ceph_create_image NAME SIZE
#   ceph_teardown          kill the daemons it started (by their pids)
# The steps are ceph's doc/install/manual-deployment.rst, in one directory.

CEPH_DIR=""
CEPH_PIDS=()

ceph_step() { printf '[ceph %4ss] %s\n' "$SECONDS" "$*"; }

# ceph's CLI against this cluster only.
cephc() { ceph --conf "$CEPH_DIR/ceph.conf" --name client.admin --keyring "$CEPH_DIR/keyring" --connect-timeout 30 "$@"; }
rbdc() { rbd --conf "$CEPH_DIR/ceph.conf" --name client.admin --keyring "$CEPH_DIR/keyring" "$@"; }

# A free TCP port on 127.0.0.1 (the kernel picks it), so that runs side by side do not meet.
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# Start a ceph daemon in the foreground of a background job, its output to its log.
ceph_daemon() {
  local name=$1
  shift
  "$@" --conf "$CEPH_DIR/ceph.conf" -f >>"$CEPH_DIR/log/$name.out" 2>&1 &
  CEPH_PIDS+=($!)
}

ceph_boot() {
  CEPH_DIR=$1
  local d=$CEPH_DIR port fsid
  mkdir -p "$d"/{run,log,crash,mon/ceph-a,mgr/ceph-x,osd/ceph-0}
  port=$(free_port)
  fsid=$(uuidgen)
  ceph_step "fsid $fsid, mon on v2:127.0.0.1:$port, everything under $d"
  cat >"$d/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim allowed = false
keyring = $d/keyring
run dir = $d/run
admin socket = $d/run/\$cluster-\$name.asok
pid file = $d/run/\$cluster-\$name.pid
log file = $d/log/\$cluster-\$name.log
mon cluster log file = $d/log/\$cluster.log
crash dir = $d/crash
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = $d/mon/\$cluster-\$id
keyring = $d/mon/\$cluster-\$id/keyring

[mgr]
mgr data = $d/mgr/\$cluster-\$id
keyring = $d/mgr/\$cluster-\$id/keyring

[osd]
osd data = $d/osd/\$cluster-\$id
keyring = $d/osd/\$cluster-\$id/keyring
osd objectstore = bluestore
# BlueStore on a sparse file beside the OSD's directory (its "block" is a symlink to it), made by ceph-osd --mkfs.
bluestore block path = $d/osd/\$cluster-\$id.block
bluestore block create = true
bluestore block size = 4294967296
bluestore block db create = false
bluestore block wal create = false
# A small machine shared with others.
osd memory target = 536870912
bluestore cache autotune = false
bluestore cache size = 134217728
osd op num shards = 1
osd op num threads per shard = 2
EOF

  ceph_step "keyrings (mon., client.admin) and monmap"
  ceph-authtool --create-keyring "$d/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$d/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$d/mon.keyring" --import-keyring "$d/keyring" >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$port]" --fsid "$fsid" "$d/monmap" >/dev/null

  ceph_step "ceph-mon --mkfs, start mon.a"
  ceph-mon --conf "$d/ceph.conf" --mkfs -i a --monmap "$d/monmap" --keyring "$d/mon.keyring"
  ceph_daemon mon.a ceph-mon -i a
  cephc mon stat >/dev/null

  ceph_step "start mgr.x"
  cephc auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$d/mgr/ceph-x/keyring"
  ceph_daemon mgr.x ceph-mgr -i x

  ceph_step "ceph osd new, ceph-osd --mkfs (BlueStore on a sparse file), start osd.0"
  local uuid secret id
  uuid=$(uuidgen)
  secret=$(ceph-authtool --gen-print-key)
  id=$(echo "{\"cephx_secret\": \"$secret\"}" | cephc osd new "$uuid" -i -)
  [ "$id" = 0 ] || { echo "ceph osd new gave id '$id', expected 0" >&2; return 1; }
  ceph-authtool --create-keyring "$d/osd/ceph-0/keyring" --name osd.0 --add-key "$secret" >/dev/null
  ceph-osd --conf "$d/ceph.conf" -i 0 --mkfs --osd-uuid "$uuid" >>"$d/log/osd.0.mkfs" 2>&1 ||
    { cat "$d/log/osd.0.mkfs" >&2; return 1; }
  ceph_daemon osd.0 ceph-osd -i 0
  local i
  for i in $(seq 1 120); do
    [ "$(cephc osd stat -f json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).num_up_osds)}catch{console.log(0)}})')" = 1 ] && break
    sleep 1
  done
  [ "$i" -lt 120 ] || { echo "osd.0 did not come up; its log: $d/log/ceph-osd.0.log" >&2; tail -20 "$d/log/ceph-osd.0.log" >&2; return 1; }

  ceph_step "pool rbd (8 PGs, size 1), rbd pool init"
  cephc osd pool create rbd 8 >/dev/null 2>&1
  cephc osd pool set rbd size 1 --yes-i-really-mean-it >/dev/null 2>&1
  cephc osd pool set rbd pg_autoscale_mode off >/dev/null 2>&1 || true
  rbdc pool init rbd
}

# rbd create, then wait until the pool answers (rbd ls lists the image).
ceph_create_image() {
  local name=$1 size=$2 i
  ceph_step "rbd create --size $size --image-feature layering rbd/$name"
  # Only layering, not Ceph's default exclusive-lock (and the object-map etc. that need it):
  # with it, a qemu-nbd restarted after a crash waits for the dead one's watch to expire
  # (osd_client_watch_timeout, 30 s) before its first write, past ulvm's nbd_timeout_s.
  rbdc create --size "$size" --image-feature layering "rbd/$name"
  for i in $(seq 1 60); do
    rbdc ls rbd 2>/dev/null | grep -qx "$name" && break
    sleep 1
  done
  rbdc ls rbd | grep -qx "$name"
  ceph_step "health: $(cephc health 2>&1)"
}

ceph_teardown() {
  local pid
  for pid in "${CEPH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${CEPH_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  CEPH_PIDS=()
}
