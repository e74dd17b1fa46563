import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { Lab } from "../../helpers/lab.js";
import { DeviceScan } from "../../../src/commands/scan.js";
import { listNamedDevices } from "../../../src/commands/device-list.js";
import { loadVg } from "../../../src/commands/vg-store.js";
import { findLv } from "../../../src/model/lv-info.js";
import type { StripedSegment, VolumeGroup } from "../../../src/model/types.js";

/**
 * The user story's failure drill (seed steps 5 to 7, up to the vgextend):
 * the second leg's disk is wiped with dd, `vgreduce --removemissing --force
 * vg_test` prints the story's mirror warnings and turns mirror_test into a
 * linear LV on sdb1 whose data is untouched, and the spare joins the VG.
 */
function pread(path: string, offset: number, n: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

function pwrite(path: string, offset: number, data: Buffer): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

async function vgOf(devs: string[], name: string): Promise<VolumeGroup> {
  const scan = await DeviceScan.run(listNamedDevices(devs));
  const l = loadVg(scan, name);
  assert.ok(l, `VG ${name} is readable`);
  return l.vg;
}

/** Byte offset on its PV of LE 0 of a linear LV (or a mirror leg). */
function firstExtentAt(vg: VolumeGroup, lv: string, pvPaths: Map<string, string>): { path: string; offset: number } {
  const seg = findLv(vg, lv)!.segments[0] as StripedSegment;
  const a = seg.stripes[0]!;
  assert.equal(a.kind, "pv");
  const pv = vg.pvs.find((p) => a.kind === "pv" && p.id === a.pvId)!;
  return { path: pvPaths.get(pv.id)!, offset: (pv.peStartSectors + (a.kind === "pv" ? a.startPe : 0) * vg.extentSizeSectors) * 512 };
}

test("seed steps 5-7: dd over sdb2, vgreduce --removemissing --force vg_test, vgextend vg_test sdb4", async () => {
  const lab = new Lab("ulvm-vgseed-");
  try {
    const sdb = ["sdb1", "sdb2", "sdb3", "sdb4"].map((n) => lab.addDisk(n, 3072));
    lab.ok("pvcreate", ...sdb);
    lab.ok("vgcreate", "vg_test", sdb[0]!, sdb[1]!, sdb[2]!);
    lab.ok("lvcreate", "-L", "2.8G", "-m1", "-n", "mirror_test", "vg_test", sdb[0]!, sdb[1]!, sdb[2]!);
    const before = await vgOf(sdb, "vg_test");
    const ids = new Map<string, string>();
    const scan = await DeviceScan.run(listNamedDevices(sdb));
    for (const d of scan.devices) if (d.label) ids.set(d.label.pvIdRaw, d.entry.name);
    // "lvs mirror test" written through the mirror: it lands on both legs.
    const file = Buffer.from("lvs mirror test\n".padEnd(4096, "\0"));
    for (const leg of ["mirror_test_mimage_0", "mirror_test_mimage_1"]) {
      const at = firstExtentAt(before, leg, ids);
      pwrite(at.path, at.offset, file);
    }
    const leg0 = firstExtentAt(before, "mirror_test_mimage_0", ids);
    // dd if=/dev/zero of=/dev/sdb2 count=10 bs=1M
    pwrite(sdb[1]!, 0, Buffer.alloc(10 * 1024 * 1024));

    const r = lab.ulvm("vgreduce", "--removemissing", "--force", "vg_test");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "  Wrote out consistent volume group vg_test.\n");
    assert.match(r.stderr, /^ {2}WARNING: Couldn't find device with uuid \S+\.$/m);
    assert.match(r.stderr, /^ {2}WARNING: Bad device removed from mirror volume, vg_test\/mirror_test$/m);
    assert.match(r.stderr, /^ {2}WARNING: Mirror volume, vg_test\/mirror_test converted to linear due to device failure\.$/m);

    const after = await vgOf(sdb, "vg_test");
    assert.deepEqual(after.lvs.map((l) => l.name), ["mirror_test"], "no mirror sub-LVs left");
    assert.equal(findLv(after, "mirror_test")!.id, findLv(before, "mirror_test")!.id);
    const now = firstExtentAt(after, "mirror_test", ids);
    assert.deepEqual(now, leg0, "mirror_test is the old leg 0, in place");
    assert.deepEqual(pread(now.path, now.offset, file.length), file, "the file reads back");
    assert.equal(after.pvs.length, 2);

    const x = lab.ulvm("vgextend", "vg_test", sdb[3]!);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(x.stdout, '  Volume group "vg_test" successfully extended\n');
    assert.equal((await vgOf(sdb, "vg_test")).pvs.length, 3);
  } finally {
    lab.cleanup();
  }
});
