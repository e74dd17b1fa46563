import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { Lab, which } from "../../helpers/lab.js";
import { MiB, bitmapSetBits, pread, pwrite, superblockAt, topStatus } from "../../helpers/raid1.js";
import { isPositionFailed } from "../../../src/mapper/raid/dm-raid-superblock.js";

/**
 * A raid1 image whose PV goes away for a while under writes, then comes
 * back: `vgextend --restoremissing` and `lvchange --refresh` re-add it, and
 * the target recovers only the regions its write-intent bitmap marked
 * meanwhile (the returning image's failed bit in the surviving superblock
 * says its data is stale; the bitmap says where). The measure: after
 * 1% of the LV was written, at most 2% of it is copied.
 */
const skip = which("qemu-io") ? undefined : "qemu-io not installed (apt-get install qemu-utils)";

test("raid1: an image away for a while, then vgextend --restoremissing and lvchange --refresh: only the regions written meanwhile are recovered", { skip }, async () => {
  const lab = new Lab("ulvm-r1refresh-");
  try {
    const d1 = lab.addDisk("d1", 256);
    const d2 = lab.addDisk("d2", 256);
    lab.ok("pvcreate", d1, d2);
    lab.ok("vgcreate", "vg", d1, d2);
    lab.ok("lvcreate", "--type", "raid1", "-m1", "-L", "200M", "-n", "r", "vg");
    const uri = `nbd+unix:///vg/r?socket=${join(lab.dir, "run", "nbd.sock")}`;
    const io = (cmd: string): void => {
      const r = lab.run("qemu-io", ["-f", "raw", "-c", cmd, uri]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.doesNotMatch(r.stdout + r.stderr, /error|failed/i);
    };
    io("write -P 1 0 200M");
    let st = await topStatus(lab, "r");
    for (let i = 0; i < 100 && st.raid?.health !== "AA"; i++) {
      lab.run("sleep", ["0.1"]);
      st = await topStatus(lab, "r");
    }
    assert.equal(st.raid?.health, "AA");
    // The bitmap's bits clear lazily once the writes are flushed and the regions idle (md's
    // daemon_sleep; ulvm's cleaner, ~2 s): wait for the on-disk bitmap of rmeta_0 to be clean.
    const regions = 100;
    const setBits = (): number => bitmapSetBits(d1, regions);
    for (let i = 0; i < 200 && setBits() > 0; i++) lab.run("sleep", ["0.05"]);
    assert.equal(setBits(), 0, "the write-intent bitmap on disk is clean");

    // d2 goes away (moved out of the scanned folder): its image fails, the LV goes on.
    mkdirSync(join(lab.dir, "away"));
    renameSync(d2, join(lab.dir, "away", "d2"));
    // (The CLI's own scan misses d2 at once; the daemon notices within its label-check interval.)
    st = await topStatus(lab, "r");
    for (let i = 0; i < 200 && !/^A[D-]$/.test(st.raid?.health ?? ""); i++) {
      lab.run("sleep", ["0.05"]);
      st = await topStatus(lab, "r");
    }
    // 1% of the LV, written while the image is away (in two places, one straddling a region boundary).
    io("write -P 2 10M 1M");
    io(`write -P 3 ${99.5 * MiB} 1M`);
    st = await topStatus(lab, "r");
    assert.match(st.raid?.health ?? "", /^A[D-]$/, `the image is failed or gone: ${st.raid?.health}`);
    assert.ok(isPositionFailed(superblockAt(d1).failedDevices, 1), "rmeta_0 records slot 1 failed");

    assert.equal(setBits(), 3, "the bitmap on disk marks the three regions written while the image was away");

    // Back, restored, refreshed.
    renameSync(join(lab.dir, "away", "d2"), d2);
    lab.ok("vgextend", "--restoremissing", "vg", d2);
    const refreshed = lab.ulvm("lvchange", "--refresh", "vg/r");
    assert.equal(refreshed.code, 0, refreshed.stderr);
    st = await topStatus(lab, "r");
    for (let i = 0; i < 200 && st.raid?.health !== "AA"; i++) {
      lab.run("sleep", ["0.05"]);
      st = await topStatus(lab, "r");
    }
    assert.equal(st.raid?.health, "AA", "the image is back and in sync");
    // The events tell the story: the PV went missing, its image failed, then the PV came back.
    const names = lab
      .ok("events", "--json")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { name: string; vg?: string; pv?: string });
    const at = (n: string): number => names.findIndex((e) => e.name === n);
    assert.ok(at("leg-failed") >= 0 && at("pv-returned") > at("leg-failed"), `events: ${names.map((e) => e.name).join(" ")}`);
    assert.equal(names[at("pv-returned")]!.pv, d2, "pv-returned names the PV");
    // The refresh loaded a new table (the slot was "- -"): its copier's count starts at the re-add.
    const copiedBytes = (st.sync?.copiedRegions ?? 0) * 2 * MiB;
    // Regions of 2 MiB: the 1 MiB at 10M is in one region, the 1 MiB at 99.5M straddles two.
    assert.ok(copiedBytes > 0 && copiedBytes <= 0.02 * 200 * MiB * 3, `copied ${copiedBytes} bytes`);
    assert.equal(copiedBytes, 3 * 2 * MiB, "exactly the three regions written meanwhile");
    assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/r_rimage_1"), /iwi-aor---/);

    lab.ok("lvchange", "-an", "vg/r");
    // Both images (from PE 1 of each PV, pe_start 1 MiB) hold the same bytes, and no failed bit is left.
    for (let off = 0; off < 200 * MiB; off += 8 * MiB) assert.ok(pread(d1, 5 * MiB + off, 8 * MiB).equals(pread(d2, 5 * MiB + off, 8 * MiB)), `images differ near ${off}`);
    for (const pv of [d1, d2]) {
      assert.equal(superblockAt(pv).failedDevices, 0n, "no failed bit after the recovery");
    }
  } finally {
    lab.cleanup();
  }
});

test("raid1: an rmeta with a bad magic gets a warning naming the LV and the image; the image serves nothing, its rmeta is not overwritten, its PV is not failed", { skip }, async () => {
  const lab = new Lab("ulvm-r1badmeta-");
  try {
    const d1 = lab.addDisk("d1", 64);
    const d2 = lab.addDisk("d2", 64);
    lab.ok("pvcreate", d1, d2);
    lab.ok("vgcreate", "vg", d1, d2);
    lab.ok("lvcreate", "--type", "raid1", "-m1", "-L", "16M", "-n", "r", "vg");
    const uri = `nbd+unix:///vg/r?socket=${join(lab.dir, "run", "nbd.sock")}`;
    assert.equal(lab.run("qemu-io", ["-f", "raw", "-c", "write -P 7 0 16M", uri]).code, 0);
    lab.ok("lvchange", "-an", "vg/r");
    // Image 1's rmeta loses its magic; image 1 holds other bytes than image 0 from now on.
    pwrite(d2, MiB, Buffer.from("XXXX"));
    pwrite(d2, 5 * MiB, Buffer.alloc(MiB, 9));
    const rmetaBefore = pread(d2, MiB, 4 * MiB);
    lab.ok("lvchange", "-ay", "vg/r");
    const log = readFileSync(join(lab.dir, "run", "ulvmd.log"), "utf8");
    assert.match(log, /WARNING: raid1 LV vg\/r: the metadata of image 1 \(vg\/r_rmeta_1\) is not valid: dm-raid superblock has bad magic/);
    const st = await topStatus(lab, "r");
    assert.match(st.raid?.health ?? "", /^A[D-]$/);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_health_status", "vg/r"), /refresh needed/);
    // Every read is image 0's, and the PV is not flagged MISSING.
    const r = lab.run("qemu-io", ["-f", "raw", "-c", "read -P 7 0 16M", uri]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /Pattern verification failed/);
    const pvs = lab.ulvm("pvs", "--noheadings", "-o", "pv_name,pv_missing", d2);
    assert.doesNotMatch(pvs.stdout + pvs.stderr, /missing|unknown/i);
    lab.ok("lvchange", "-an", "vg/r");
    assert.ok(pread(d2, MiB, 4 * MiB).equals(rmetaBefore), "image 1's rmeta untouched");
  } finally {
    lab.cleanup();
  }
});
