import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { Lab, devicePathUnavailable } from "../../helpers/lab.js";
import { findLeftovers, listLoops, type LoopDevice } from "../../helpers/leftovers.js";
import { devicePathRecord } from "../../helpers/device-path-record.js";
import type { DevicePathRecord } from "../../../src/daemon/device-path.js";

/**
 * The daemon takes down what it builds for a device path (nbdfuse + loop
 * device): on deactivation, on a stop, and, after a kill -9, on its next
 * start. Also when the FUSE mount under the loop was lost meanwhile, so that
 * the kernel shows the loop's backing file as "/dev".
 */
function labWithLv(): Lab {
  const lab = new Lab("ulvm-dpc-");
  lab.addDisk("d1", 64);
  lab.writeConfig(`devices {\n\tscan = [ "${join(lab.dir, "disks")}" ]\n}\nactivation {\n\tdevice_path = 1\n}\n`);
  lab.ok("pvcreate", lab.disk("d1"));
  lab.ok("vgcreate", "vg", lab.disk("d1"));
  lab.ok("lvcreate", "-an", "-L", "8m", "-n", "lv", "vg");
  return lab;
}

const record = devicePathRecord;

const overFile = (rec: DevicePathRecord) => (l: LoopDevice) => l.backingDev === rec.fuseDev && l.backingInode === rec.fuseIno;

/** Loops, mounts and nbdfuse processes of the lab (the daemon itself may still run). */
function devicePathLeftovers(lab: Lab, rec: DevicePathRecord): string[] {
  const named = findLeftovers([lab.dir]).filter((l) => l.kind !== "process" || /nbdfuse/.test(l.detail));
  const orphans = listLoops().filter(overFile(rec));
  return [...named.map((l) => `${l.kind} ${l.id} ${l.detail}`), ...orphans.map((l) => `loop ${l.name} over ${l.backingFile}`)];
}

test("vgchange -an, and a daemon stop, leave no loop device, FUSE mount or nbdfuse behind", { skip: devicePathUnavailable() }, () => {
  const lab = labWithLv();
  try {
    lab.ok("vgchange", "-ay", "vg");
    let rec = record(lab);
    assert.ok(rec.loop && rec.fuseDev && rec.fuseIno !== undefined, JSON.stringify(rec));
    assert.ok(listLoops().some(overFile(rec)));
    lab.ok("vgchange", "-an", "vg");
    assert.deepEqual(devicePathLeftovers(lab, rec), []);

    lab.ok("vgchange", "-ay", "vg");
    rec = record(lab);
    lab.stopDaemon("SIGTERM");
    assert.deepEqual(devicePathLeftovers(lab, rec), []);
  } finally {
    lab.cleanup();
  }
});

test("a device path whose FUSE mount was lost (its loop shows /dev) is recognised and detached by lvchange -an", { skip: devicePathUnavailable() }, () => {
  const lab = labWithLv();
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    const rec = record(lab);
    spawnSync("fusermount3", ["-uz", rec.mountDir]);
    const loop = listLoops().find(overFile(rec));
    assert.equal(loop?.backingFile, "/dev", "the kernel shows the lost mount's file as /dev");
    lab.ok("lvchange", "-an", "vg/lv");
    assert.deepEqual(devicePathLeftovers(lab, rec), []);
  } finally {
    lab.cleanup();
  }
});

test("after kill -9 of the daemon and the loss of the FUSE mount, the next daemon detaches the old loop", { skip: devicePathUnavailable() }, () => {
  const lab = labWithLv();
  try {
    lab.ok("lvchange", "-ay", "vg/lv");
    const old = record(lab);
    lab.stopDaemon("SIGKILL");
    spawnSync("fusermount3", ["-uz", old.mountDir]);
    // Found by name: with nbdfuse still running the loop shows the old file's
    // inode; with the daemon's own FUSE server (dead with the daemon) the
    // kernel can no longer tell it, and the loop shows none.
    assert.equal(listLoops().find((l) => l.name === old.loop)?.backingFile, "/dev");
    lab.ok("lvchange", "-ay", "vg/lv"); // a new daemon: cleans what the dead one recorded, then builds anew
    const now = record(lab);
    // The old FUSE mount's anonymous device number is freed with it and may be
    // given to the new mount (nbdfuse's file is always inode 2): the old loop
    // is gone when no loop shows the lost path and one shows the new file.
    const over = listLoops().filter(overFile(now));
    assert.deepEqual(over.map((l) => l.backingFile), [now.fuseFile], JSON.stringify(listLoops()));
    assert.ok(!listLoops().some((l) => l.backingFile === "/dev" && l.name === old.loop), "the old loop is detached");
    lab.ok("lvchange", "-an", "vg/lv");
    assert.deepEqual(devicePathLeftovers(lab, now), []);
  } finally {
    lab.cleanup();
  }
});
