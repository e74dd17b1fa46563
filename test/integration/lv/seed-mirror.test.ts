/**
 * The seed's step 3, exactly: four 3 GiB sparse images, pvcreate on all
 * four, vgcreate vg_test on three, then
 *   lvcreate -L 2.8G -m1 -n mirror_test vg_test sdb1 sdb2 sdb3
 * must round to 717 extents, put the legs on sdb1 and sdb2 and the 1-extent
 * log on sdb3, initialise the log as lvm2 does, and leave metadata the real
 * lvm2 reads back with the same layout and passes with vgck.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { openSync, readSync, closeSync, writeSync } from "node:fs";
import { Lab, lvmUnavailable } from "../../helpers/lab.js";
import { DeviceScan } from "../../../src/commands/scan.js";
import { listNamedDevices } from "../../../src/commands/device-list.js";
import { loadVg } from "../../../src/commands/vg-store.js";
import { segmentText } from "../../../src/model/allocate-cases.js";
import type { VolumeGroup } from "../../../src/model/types.js";
import { writeUlvmConf } from "./lv-diff.js";

function readBytes(path: string, offset: number, n: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, offset);
    return b;
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

function seedLab(): { lab: Lab; sdb: string[] } {
  const lab = new Lab("ulvm-seed-");
  // What lvcreate itself writes, before any activation (which the daemon's tests cover).
  writeUlvmConf(lab, false);
  const sdb = ["sdb1", "sdb2", "sdb3", "sdb4"].map((n) => lab.addDisk(n, 3072));
  lab.ok("pvcreate", ...sdb);
  lab.ok("vgcreate", "vg_test", sdb[0]!, sdb[1]!, sdb[2]!);
  return { lab, sdb };
}

test("seed step 3: lvcreate -L 2.8G -m1 -n mirror_test vg_test sdb1 sdb2 sdb3", async () => {
  const { lab, sdb } = seedLab();
  try {
    const r = lab.ulvm("lvcreate", "-L", "2.8G", "-m1", "-n", "mirror_test", "vg_test", sdb[0]!, sdb[1]!, sdb[2]!);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '  Rounding up size to full physical extent 2.80 GiB\n  Logical volume "mirror_test" created.\n');
    assert.equal(r.stderr, "");
    const vg = await vgOf(sdb, "vg_test");
    assert.deepEqual(segmentText(vg, "mirror_test"), ["0+717 mirror/2 log=mirror_test_mlog mirror_test_mimage_0:0 mirror_test_mimage_1:0"]);
    assert.deepEqual(segmentText(vg, "mirror_test_mimage_0"), ["0+717 linear pv0:0"], "leg 0 on sdb1");
    assert.deepEqual(segmentText(vg, "mirror_test_mimage_1"), ["0+717 linear pv1:0"], "leg 1 on sdb2");
    assert.deepEqual(segmentText(vg, "mirror_test_mlog"), ["0+1 linear pv2:0"], "the log on sdb3");
    assert.deepEqual(
      vg.lvs.map((l) => `${l.name} ${l.status.join(",")}`),
      ["mirror_test READ,WRITE,VISIBLE", "mirror_test_mimage_0 READ,WRITE", "mirror_test_mimage_1 READ,WRITE", "mirror_test_mlog READ,WRITE"],
      "lvm2's creation order; sub-LVs hidden",
    );
    const seg = vg.lvs[0]!.segments[0]!;
    assert.equal("regionSizeSectors" in seg && seg.regionSizeSectors, 4096, "2 MiB regions");
    assert.equal(vg.seqno, 3, "vgcreate, then lvm2's two writes: log created, log attached");
    // The log: header "MiRr", version 2, nr_regions all ones; the rest zero (full resync).
    const log = readBytes(sdb[2]!, 1024 * 1024, 4096);
    assert.equal(log.readUInt32LE(0), 0x4d695272);
    assert.equal(log.readUInt32LE(4), 2);
    assert.equal(log.readBigUInt64LE(8), 0xffffffffffffffffn);
    assert.ok(log.subarray(16).every((b) => b === 0), "bitmap and padding zeroed");
  } finally {
    lab.cleanup();
  }
});

test("lvm2 reads the seed mirror back with the same layout and vgck passes", { skip: lvmUnavailable() }, async () => {
  const { lab, sdb } = seedLab();
  try {
    lab.ok("lvcreate", "-L", "2.8G", "-m1", "-n", "mirror_test", "vg_test", sdb[0]!, sdb[1]!, sdb[2]!);
    const loops = lab.attachLoops();
    const dev = (n: string): string => loops.get(n)!;
    const ck = lab.lvm("vgck", "vg_test");
    assert.equal(ck.code, 0, ck.stderr);
    const lvs = lab.lvm("lvs", "-a", "--noheadings", "--separator", "|", "-o", "lv_name,lv_attr,lv_size,mirror_log,devices", "--units", "m", "vg_test");
    assert.equal(lvs.code, 0, lvs.stderr);
    const rows = lvs.stdout
      .trim()
      .split("\n")
      .map((l) => l.trim());
    assert.deepEqual(rows, [
      `mirror_test|mwi-XXm---|2868.00m|[mirror_test_mlog]|mirror_test_mimage_0(0),mirror_test_mimage_1(0)`,
      `[mirror_test_mimage_0]|Iwi-XXm---|2868.00m||${dev("sdb1")}(0)`,
      `[mirror_test_mimage_1]|Iwi-XXm---|2868.00m||${dev("sdb2")}(0)`,
      `[mirror_test_mlog]|lwi-XXm---|4.00m||${dev("sdb3")}(0)`,
    ]);
  } finally {
    lab.cleanup();
  }
});

test("--nosync: NOTSYNCED, lvm2's warning, and a log filled with 0xFF", () => {
  const { lab, sdb } = seedLab();
  try {
    const r = lab.ulvm("lvcreate", "-L", "100m", "--type", "mirror", "-m1", "--nosync", "-n", "ns", "vg_test");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "  WARNING: New mirror won't be synchronised. Don't read what you didn't write!\n");
    const log = readBytes(sdb[2]!, 1024 * 1024, 4096);
    assert.equal(log.readUInt32LE(0), 0x4d695272);
    assert.ok(log.subarray(16).every((b) => b === 0xff), "every region marked in sync");
  } finally {
    lab.cleanup();
  }
});

test("--mirrorlog core: no log LV, no mirror_log key", async () => {
  const { lab, sdb } = seedLab();
  try {
    lab.ok("lvcreate", "-L", "100m", "--type", "mirror", "-m1", "--mirrorlog", "core", "-n", "mc", "vg_test");
    const vg = await vgOf(sdb, "vg_test");
    assert.deepEqual(vg.lvs.map((l) => l.name), ["mc", "mc_mimage_0", "mc_mimage_1"]);
    assert.deepEqual(segmentText(vg, "mc"), ["0+25 mirror/2 log=core mc_mimage_0:0 mc_mimage_1:0"]);
    assert.equal(vg.seqno, 2, "one write without a disk log");
  } finally {
    lab.cleanup();
  }
});

test("a new LV's first 4 KiB are zeroed; -Zn leaves them and warns as lvm2 does", async () => {
  const { lab, sdb } = seedLab();
  try {
    // Dirty the start of sdb1's data area (PE 0 at 1 MiB).
    const junk = Buffer.alloc(8192, 0xab);
    const dirty = (): void => {
      const w = openSync(sdb[0]!, "r+");
      try {
        writeSync(w, junk, 0, junk.length, 1024 * 1024);
      } finally {
        closeSync(w);
      }
    };
    dirty();
    const r = lab.ulvm("lvcreate", "-L", "4m", "-n", "z", "vg_test", sdb[0]!);
    assert.equal(r.code, 0, r.stderr);
    const head = readBytes(sdb[0]!, 1024 * 1024, 8192);
    assert.ok(head.subarray(0, 4096).every((b) => b === 0), "first 4 KiB zeroed");
    assert.ok(head.subarray(4096).every((b) => b === 0xab), "nothing beyond");
    lab.ok("lvremove", "-f", "vg_test/z");
    dirty();
    const r2 = lab.ulvm("lvcreate", "-Zn", "-L", "4m", "-n", "z", "vg_test", sdb[0]!);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stderr, "  WARNING: Logical volume vg_test/z not zeroed.\n");
    assert.ok(readBytes(sdb[0]!, 1024 * 1024, 4096).every((b) => b === 0xab), "-Zn left the data alone");
  } finally {
    lab.cleanup();
  }
});
