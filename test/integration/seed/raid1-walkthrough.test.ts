import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, devicePathUnavailable, lvmUnavailable } from "../../helpers/lab.js";
import { isPositionFailed, MAX_SECTOR } from "../../../src/mapper/raid/dm-raid-superblock.js";
import { MiB, sameBytes, superblockAt } from "../../helpers/raid1.js";

/**
 * The seed's story with today's segment type: `lvcreate --type raid1` on
 * sdb1 and sdb2 (no log PV: each image carries its rmeta, one extent in
 * front of it), ext3, the `dd` over sdb2 while mounted, the data intact and
 * the failure recorded in the surviving rmeta's dm-raid superblock and in the
 * VG metadata; then the repair onto the spare. After each layout change the
 * real lvm2 reads the same disks and shows the same layout.
 */
const why = devicePathUnavailable();

/** The dm-raid superblock of an rmeta at PE `pe` of a PV (pe_start 1 MiB, 4 MiB extents). */
test("the seed's story on raid1: lvcreate --type raid1, ext3, dd over an image while mounted, data intact, failure recorded in rmeta and VG metadata; lvconvert --repair onto the spare, vgreduce --removemissing, images identical", { skip: why, timeout: 600_000 }, () => {
  const lab = new Lab("ulvm-seedr1-");
  try {
    const D: Record<string, string> = {};
    for (const p of ["sdb1", "sdb2", "sdb3", "sdb4"]) D[p] = lab.addDisk(p, 512);
    const lvmWhy = lvmUnavailable();
    const rename = (out: string, pairs: Array<[string, string]>): string[] => {
      for (const [name, dev] of pairs) out = out.split(`${dev}(`).join(`${name}(`);
      return out.trim().split("\n").map((l) => l.trim()).sort();
    };
    const lvmLayout = (): string[] | undefined => {
      if (lvmWhy) return undefined;
      const loops = lab.attachLoops({ readOnlyView: true });
      const r = lab.lvm("lvs", "-a", "--noheadings", "-o", "lv_name,lv_size,devices", "--separator", ";", "vg_test");
      assert.equal(r.code, 0, r.stderr);
      return rename(r.stdout, [...loops]);
    };
    const ulvmLayout = (): string[] =>
      rename(lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name,lv_size,devices", "--separator", ";", "vg_test"), Object.entries(D));

    for (const p of ["sdb1", "sdb2", "sdb3", "sdb4"]) lab.ok("pvcreate", D[p]!);
    lab.ok("vgcreate", "vg_test", D.sdb1!, D.sdb2!, D.sdb3!);

    // lvcreate --type raid1 -m1 on two PVs: each image has its rmeta in front of it.
    const created = lab.ulvm("lvcreate", "--type", "raid1", "-L", "400M", "-m1", "-n", "mirror_test", "vg_test", D.sdb1!, D.sdb2!);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, `  Logical volume "mirror_test" created.\n`);
    const layout1 = [
      "[mirror_test_rimage_0];400.00m;sdb1(1)",
      "[mirror_test_rimage_1];400.00m;sdb2(1)",
      "[mirror_test_rmeta_0];4.00m;sdb1(0)",
      "[mirror_test_rmeta_1];4.00m;sdb2(0)",
      "mirror_test;400.00m;mirror_test_rimage_0(0),mirror_test_rimage_1(0)",
    ];
    assert.deepEqual(ulvmLayout(), layout1);
    const l1 = lvmLayout();
    if (l1) assert.deepEqual(l1, layout1, "lvm2 reads the same layout after lvcreate");
    // The initial sync, then: in sync, idle, both images 'i', healthy.
    let pct = "";
    for (let i = 0; i < 600 && pct !== "100.00"; i++) {
      if (i) lab.run("sleep", ["0.1"]);
      pct = lab.ok("lvs", "--noheadings", "-o", "copy_percent", "vg_test/mirror_test").trim();
    }
    assert.equal(pct, "100.00");
    const lvs1 = lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr,copy_percent,raid_sync_action,raid_mismatch_count,lv_health_status", "--separator", ";", "vg_test");
    assert.deepEqual(lvs1.trim().split("\n").map((l) => l.trim()).sort(), [
      "[mirror_test_rimage_0];iwi-aor---;;;;",
      "[mirror_test_rimage_1];iwi-aor---;;;;",
      "[mirror_test_rmeta_0];ewi-aor---;;;;",
      "[mirror_test_rmeta_1];ewi-aor---;;;;",
      "mirror_test;rwi-a-r---;100.00;idle;0;",
    ]);
    for (const [pv, slot] of [[D.sdb1!, 0], [D.sdb2!, 1]] as const) {
      const sb = superblockAt(pv, 0);
      assert.equal(sb.arrayPosition, slot);
      assert.equal(sb.numDevices, 2);
      assert.equal(sb.failedDevices, 0n);
      assert.equal(sb.diskRecoveryOffsetSectors, MAX_SECTOR);
      assert.equal(sb.arrayResyncOffsetSectors, MAX_SECTOR, "the initial sync is recorded as done");
    }

    // ext3, mounted, the test file.
    const dev = join(lab.dir, "dev", "vg_test", "mirror_test");
    const mnt = join(lab.dir, "test");
    mkdirSync(mnt);
    assert.equal(lab.run("mkfs.ext3", ["-q", dev]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    for (let x = 1; x <= 100; x++) appendFileSync(join(mnt, "test.txt"), `${x} test test test \n`);
    lab.run("sync", []);

    // dd if=/dev/zero of=sdb2 count=10 bs=1M while mounted: the image on sdb2 fails.
    const eventsBefore = superblockAt(D.sdb1!, 0).eventCount;
    assert.equal(lab.run("dd", ["if=/dev/zero", `of=${D.sdb2}`, "count=10", "bs=1M", "conv=notrunc"]).code, 0);
    let lvs2 = lab.ulvm("lvs", "-a", "-o", "+devices");
    for (let i = 0; i < 50 && !/\[unknown\]\(1\)/.test(lvs2.stdout); i++) {
      appendFileSync(join(mnt, "after.txt"), `${i}\n`);
      lab.run("sync", []);
      lab.run("sleep", ["0.2"]);
      lvs2 = lab.ulvm("lvs", "-a", "-o", "+devices");
    }
    assert.match(lvs2.stderr, /WARNING: Couldn't find device with uuid [\w-]{38}\./);
    assert.match(lvs2.stdout, /\[mirror_test_rimage_1\] vg_test \S+ +400\.00m +\[unknown\]\(1\)/);
    assert.match(lvs2.stdout, /\n {2}mirror_test +vg_test rwi-aor-p- 400\.00m/);
    assert.match(lab.ulvm("lvs", "--noheadings", "-o", "lv_health_status", "vg_test/mirror_test").stdout, /partial/);
    // The surviving rmeta records the failure: slot 1's failed bit, events raised.
    // (The daemon may have seen the wiped label before any I/O failed on the image: the
    // superblocks then record it when the image's next I/O fails, or at the reload without it.)
    let sb2 = superblockAt(D.sdb1!, 0);
    for (let i = 0; i < 100 && !isPositionFailed(sb2.failedDevices, 1); i++) {
      lab.run("sleep", ["0.05"]);
      sb2 = superblockAt(D.sdb1!, 0);
    }
    assert.ok(isPositionFailed(sb2.failedDevices, 1), "slot 1 recorded failed in rmeta_0");
    assert.ok(!isPositionFailed(sb2.failedDevices, 0));
    assert.ok(sb2.eventCount > eventsBefore, "events raised with the failure");
    assert.equal(lab.run("umount", [mnt]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    assert.equal(readFileSync(join(mnt, "test.txt"), "utf8").split("\n")[99], "100 test test test ");
    const l2 = lvmLayout();
    if (l2) assert.ok(l2.includes("[mirror_test_rimage_1];400.00m;[unknown](1)"), `lvm2 sees the missing image: ${l2.join(" | ")}`);

    // The repair: the spare joins the VG, the failed image is replaced on it and recovered in
    // full (REBUILD), then the dead disk leaves the VG. The filesystem stays mounted throughout.
    lab.ok("vgextend", "vg_test", D.sdb4!);
    const rep = lab.ulvm("lvconvert", "--repair", "-y", "vg_test/mirror_test", D.sdb4!);
    assert.equal(rep.code, 0, rep.stderr);
    assert.match(rep.stdout, /Faulty devices in vg_test\/mirror_test successfully replaced\./);
    appendFileSync(join(mnt, "test.txt"), "written during the recovery\n");
    lab.run("sync", []);
    let state = "";
    for (let i = 0; i < 600 && state !== "100.00;idle"; i++) {
      if (i) lab.run("sleep", ["0.1"]);
      state = lab.ok("lvs", "--noheadings", "--separator", ";", "-o", "copy_percent,raid_sync_action", "vg_test/mirror_test").trim();
    }
    assert.equal(state, "100.00;idle");
    const red = lab.ulvm("vgreduce", "--removemissing", "vg_test");
    assert.equal(red.code, 0, red.stderr);
    const layout3 = [
      "[mirror_test_rimage_0];400.00m;sdb1(1)",
      "[mirror_test_rimage_1];400.00m;sdb4(1)",
      "[mirror_test_rmeta_0];4.00m;sdb1(0)",
      "[mirror_test_rmeta_1];4.00m;sdb4(0)",
      "mirror_test;400.00m;mirror_test_rimage_0(0),mirror_test_rimage_1(0)",
    ];
    assert.deepEqual(ulvmLayout(), layout3);
    const lvs3 = lab.ulvm("lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr,lv_health_status", "--separator", ";", "vg_test");
    assert.equal(lvs3.stderr, "", "no missing PV any more");
    assert.deepEqual(lvs3.stdout.trim().split("\n").map((l) => l.trim()).sort(), [
      "[mirror_test_rimage_0];iwi-aor---;",
      "[mirror_test_rimage_1];iwi-aor---;",
      "[mirror_test_rmeta_0];ewi-aor---;",
      "[mirror_test_rmeta_1];ewi-aor---;",
      "mirror_test;rwi-aor---;",
    ]);
    for (const [pv, slot] of [[D.sdb1!, 0], [D.sdb4!, 1]] as const) {
      const sb = superblockAt(pv, 0);
      assert.equal(sb.arrayPosition, slot);
      assert.equal(sb.failedDevices, 0n, "no failed bit after the repair");
      assert.equal(sb.diskRecoveryOffsetSectors, MAX_SECTOR, "recovered");
    }
    const l3 = lvmLayout();
    if (l3) assert.deepEqual(l3, layout3, "lvm2 reads the same layout after the repair");
    const text = readFileSync(join(mnt, "test.txt"), "utf8").split("\n");
    assert.equal(text[99], "100 test test test ");
    assert.equal(text[100], "written during the recovery");

    assert.equal(lab.run("umount", [mnt]).code, 0);
    const fsck = lab.run("e2fsck", ["-fn", dev]);
    assert.equal(fsck.code, 0, fsck.stdout);
    assert.equal(lab.ulvm("lvchange", "-an", "vg_test/mirror_test").code, 0);
    // Both images (each from PE 1: pe_start 1 MiB + the rmeta's 4 MiB) hold the same bytes.
    assert.ok(sameBytes(D.sdb1!, 5 * MiB, D.sdb4!, 5 * MiB, 400 * MiB), "images identical");
  } finally {
    lab.cleanup();
  }
});
