import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Lab, which, type RunResult } from "../helpers/lab.js";
import { MiB, EXTENT_BYTES, PE_START_BYTES, bitmapSetBits, topStatus, waitRaidHealth } from "../helpers/raid1.js";

/**
 * A PV on a Ceph RBD image (issue 18, "where users go when one machine is
 * not enough"). Opt-in: `npm run test:ceph` (scripts/test-ceph.sh) boots a
 * single-node Ceph and names it in ULVM_TEST_CEPH_CONF / _KEYRING / _IMAGE;
 * `npm test` leaves this folder out. The image is exported by qemu-nbd's rbd
 * driver (librbd in userspace, no kernel rbd or nbd module) on a unix
 * socket, and ulvm takes it as `nbd+unix:///pv0?socket=PATH`, a PV like any
 * other. A raid1 and a mirror with one leg on it go through the remote-leg
 * checks: killing qemu-nbd fails the leg with no client error, and once it
 * is back the leg is resynced and the legs hold the same bytes.
 */
const CONF = process.env.ULVM_TEST_CEPH_CONF;
const KEYRING = process.env.ULVM_TEST_CEPH_KEYRING;
const IMAGE = process.env.ULVM_TEST_CEPH_IMAGE ?? "rbd/pv0";
const skip = !CONF || !KEYRING
  ? "opt-in: needs a Ceph cluster (ULVM_TEST_CEPH_CONF, ULVM_TEST_CEPH_KEYRING); run `npm run test:ceph`, which boots one"
  : (["qemu-nbd", "qemu-io", "qemu-img", "nbdinfo"].find((c) => !which(c)) ?? "") !== ""
    ? "qemu-nbd, qemu-io, qemu-img and nbdinfo are needed (apt-get install qemu-utils qemu-block-extra libnbd-bin)"
    : undefined;

const LV_MIB = 64;

/** qemu-nbd serving the RBD image on a unix socket in the lab; killed and restarted by the test. */
class RbdExport {
  readonly socket: string;
  readonly uri: string;
  private child: ChildProcess | undefined;

  constructor(private readonly lab: Lab) {
    this.socket = join(lab.dir, "run", "rbd.sock");
    this.uri = `nbd+unix:///pv0?socket=${this.socket}`;
    lab.onCleanup(() => {
      const c = this.child;
      if (c && c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    });
  }

  /**
   * `-t` keeps serving after a client leaves; `-e 8` lets ulvm's connections and the test's
   * checks in at once (the default is one client). `--cache=none` turns librbd's writeback
   * cache off: with it on, a write qemu-nbd acknowledged without a flush dies with the process,
   * and ulvm counts an acknowledged write as on the leg (DRBD's protocol C).
   */
  async start(): Promise<void> {
    rmSync(this.socket, { force: true });
    const spec = `rbd:${IMAGE}:conf=${CONF}:id=admin:keyring=${KEYRING}`;
    const c = spawn("qemu-nbd", ["--format=raw", "--cache=none", "-t", "-e", "8", "-x", "pv0", "-k", this.socket, spec], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    c.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    this.child = c;
    for (let i = 0; i < 300; i++) {
      if (c.exitCode !== null) throw new Error(`qemu-nbd exited ${c.exitCode}: ${err}`);
      if (existsSync(this.socket) && this.lab.run("nbdinfo", ["--size", this.uri]).code === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`qemu-nbd did not serve ${this.uri}: ${err}`);
  }

  /** SIGKILL: its connections reset, as when the machine serving the image dies. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await gone;
  }
}

/** qemu-io on the daemon's export of vg/LV; fails the test on a non-zero exit or an error in its output. */
function lvIo(lab: Lab, lv: string, ...cmds: string[]): void {
  const r = lab.run("qemu-io", ["-f", "raw", ...cmds.flatMap((c) => ["-c", c]), `nbd+unix:///vg/${lv}?socket=${join(lab.dir, "run", "nbd.sock")}`]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stdout + r.stderr, /error|failed|fail/i, r.stdout + r.stderr);
}

/** The byte offset on its PV of an LV's first extent (`lvs -o seg_pe_ranges` gives "PV:first-last"). */
function firstExtentBytes(lab: Lab, lv: string): number {
  const ranges = lab.ok("lvs", "--noheadings", "-o", "seg_pe_ranges", `vg/${lv}`).trim();
  const m = /:(\d+)-\d+$/.exec(ranges);
  assert.ok(m, `seg_pe_ranges of ${lv}: ${ranges}`);
  return PE_START_BYTES + Number(m[1]) * EXTENT_BYTES;
}

/** qemu-img compare of `length` bytes at `aOffset` of a local file and at `bOffset` of the RBD export: exit 0 when identical. */
function compareLegs(lab: Lab, file: string, aOffset: number, rbd: RbdExport, bOffset: number, length: number): RunResult {
  const a = { driver: "raw", offset: aOffset, size: length, file: { driver: "file", filename: file } };
  const b = { driver: "raw", offset: bOffset, size: length, file: { driver: "nbd", server: { type: "unix", path: rbd.socket }, export: "pv0" } };
  return lab.run("qemu-img", ["compare", "-U", `json:${JSON.stringify(a)}`, `json:${JSON.stringify(b)}`]);
}

/** A lab with a local disk (and a small one for a mirror log), qemu-nbd serving the RBD image blank, and a VG on all of them. */
async function vgOnRbd(lab: Lab): Promise<{ local: string; rbd: RbdExport }> {
  const rbd = new RbdExport(lab);
  await rbd.start();
  // Blank, as after `rbd create`: an earlier test's PV label must not be found.
  const wipe = lab.run("qemu-io", ["-f", "raw", "-c", "write -z 0 4M", rbd.uri]);
  assert.equal(wipe.code, 0, wipe.stderr);
  const local = lab.addDisk("d1", 128);
  const log = lab.addDisk("d2", 8);
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}", "${rbd.uri}" ]\n\tnbd_timeout_s = 3\n}\nactivation {\n\tdevice_path = 0\n}\n`);
  lab.ok("pvcreate", local, log, rbd.uri);
  lab.ok("vgcreate", "vg", local, rbd.uri, log);
  const pvs = lab.ok("pvs", "--noheadings", "-o", "pv_name,vg_name");
  assert.ok(pvs.includes(rbd.uri), `pvs lists the RBD PV by its URI:\n${pvs}`);
  return { local, rbd };
}

test("raid1 with a leg on a Ceph RBD image (qemu-nbd's rbd driver): qemu-nbd killed fails the leg with no client error; back, the regions written meanwhile are resynced and the legs are identical", { skip }, async () => {
  const lab = new Lab("ulvm-ceph-raid1-");
  try {
    const { local, rbd } = await vgOnRbd(lab);
    lab.ok("lvcreate", "--type", "raid1", "-m1", "-L", `${LV_MIB}M`, "-n", "r", "vg", local, rbd.uri);
    const devices = lab.ok("lvs", "-a", "-o", "+devices", "vg");
    assert.ok(devices.split("\n").some((l) => l.includes("[r_rimage_1]") && l.includes(`${rbd.uri}(`)), `lvs -a -o +devices names the RBD PV:\n${devices}`);
    const regionBytes = Number(lab.ok("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "region_size", "vg/r").trim());
    const regions = (LV_MIB * MiB) / regionBytes;

    lvIo(lab, "r", `write -P 1 0 ${LV_MIB}M`);
    lvIo(lab, "r", `read -P 1 0 ${LV_MIB}M`);
    assert.equal((await waitRaidHealth(lab, "r", /^AA$/)).raid?.health, "AA");
    for (let i = 0; i < 200 && bitmapSetBits(local, regions) > 0; i++) lab.run("sleep", ["0.05"]);
    assert.equal(bitmapSetBits(local, regions), 0, "the write-intent bitmap on disk is clean");

    // The machine serving the image dies: qemu-nbd killed, its connections reset.
    await rbd.kill();
    lvIo(lab, "r", "write -P 2 8M 1M", "write -P 3 40M 1M");
    const failed = await topStatus(lab, "r");
    assert.match(failed.raid?.health ?? "", /^A[D-]$/, `the RBD image is failed: ${failed.raid?.health}`);
    const expected = new Set([Math.floor((8 * MiB) / regionBytes), Math.floor((40 * MiB) / regionBytes)]);
    assert.equal(bitmapSetBits(local, regions), expected.size, "the bitmap marks the regions written while the RBD leg was away");
    lvIo(lab, "r", "read -P 2 8M 1M", "read -P 3 40M 1M", "read -P 1 0 8M");

    await rbd.start();
    const restore = lab.ulvm("vgextend", "--restoremissing", "vg", rbd.uri);
    assert.equal(restore.code, 0, restore.stderr);
    const refreshed = lab.ulvm("lvchange", "--refresh", "vg/r");
    assert.equal(refreshed.code, 0, refreshed.stderr);
    const after = await waitRaidHealth(lab, "r", /^AA$/);
    assert.equal(after.raid?.health, "AA", "the RBD image is back and in sync");
    assert.equal((after.sync?.copiedRegions ?? 0) * regionBytes, expected.size * regionBytes, "only the regions written meanwhile were copied");
    lvIo(lab, "r", "read -P 2 8M 1M", "read -P 3 40M 1M", "read -P 1 0 8M");

    const localData = firstExtentBytes(lab, "r_rimage_0");
    const rbdData = firstExtentBytes(lab, "r_rimage_1");
    lab.ok("lvchange", "-an", "vg/r");
    const cmp = compareLegs(lab, local, localData, rbd, rbdData, LV_MIB * MiB);
    assert.equal(cmp.code, 0, `qemu-img compare: the legs are identical\n${cmp.stdout}${cmp.stderr}`);
  } finally {
    lab.cleanup();
  }
});

test("mirror with a leg on a Ceph RBD image: qemu-nbd killed fails the leg with no client error and the PV is recorded MISSING; back, the whole LV is resynced (a mirror's log is not per leg) and the legs are identical", { skip }, async () => {
  const lab = new Lab("ulvm-ceph-mirror-");
  try {
    const { local, rbd } = await vgOnRbd(lab);
    const log = lab.disk("d2");
    lab.ok("lvcreate", "--type", "mirror", "-m1", "-L", `${LV_MIB}M`, "-n", "m", "vg", local, rbd.uri, log);
    const devices = lab.ok("lvs", "-a", "-o", "+devices", "vg");
    assert.ok(devices.split("\n").some((l) => l.includes("[m_mimage_1]") && l.includes(`${rbd.uri}(`)), `lvs -a -o +devices names the RBD PV:\n${devices}`);
    lab.ok("lvconvert", "-i", "1", "vg/m");
    lvIo(lab, "m", `write -P 1 0 ${LV_MIB}M`);
    lvIo(lab, "m", `read -P 1 0 ${LV_MIB}M`);

    await rbd.kill();
    lvIo(lab, "m", "write -P 2 8M 1M", "write -P 3 40M 1M");
    const backup = join(lab.dir, "etc", "backup", "vg");
    for (let i = 0; i < 200 && !(existsSync(backup) && readFileSync(backup, "utf8").includes('flags = ["MISSING"]')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(readFileSync(backup, "utf8"), /flags = \["MISSING"\]/, "the daemon recorded the RBD PV missing");
    lvIo(lab, "m", "read -P 2 8M 1M", "read -P 3 40M 1M", "read -P 1 0 8M");

    await rbd.start();
    lab.ok("lvchange", "-an", "vg/m");
    const restore = lab.ulvm("vgextend", "--restoremissing", "vg", rbd.uri);
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, /m_mimage_1 on the restored PV missed writes; every region will be resynchronised/);
    lab.ok("lvchange", "-ay", "vg/m");
    lab.ok("lvconvert", "-i", "1", "vg/m");
    const synced = await topStatus(lab, "m");
    assert.equal(synced.sync?.copiedRegions, synced.sync?.totalRegions, `the whole LV was copied back: ${JSON.stringify(synced.sync)}`);
    lvIo(lab, "m", "read -P 2 8M 1M", "read -P 3 40M 1M", "read -P 1 0 8M");

    const localData = firstExtentBytes(lab, "m_mimage_0");
    const rbdData = firstExtentBytes(lab, "m_mimage_1");
    lab.ok("lvchange", "-an", "vg/m");
    const cmp = compareLegs(lab, local, localData, rbd, rbdData, LV_MIB * MiB);
    assert.equal(cmp.code, 0, `qemu-img compare: the legs are identical\n${cmp.stdout}${cmp.stderr}`);
  } finally {
    lab.cleanup();
  }
});
