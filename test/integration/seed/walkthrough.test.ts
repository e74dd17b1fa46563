import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync } from "node:fs";
import { join } from "node:path";
import { Lab, devicePathUnavailable, lvmUnavailable } from "../../helpers/lab.js";

/**
 * The seed's whole walkthrough (../shared/seeds/README.md), verbatim where the
 * commands allow, on four 3 GB image files for sdb1..sdb4: a mirrored LV with
 * ext3 on it survives the `dd` over one leg while mounted, `vgreduce
 * --removemissing --force` turns it linear, and `lvconvert -m1` rebuilds it
 * onto the spare, with the file intact and both legs identical. After each
 * step the real lvm2 reads the same disks and shows the same layout.
 */
const why = devicePathUnavailable();

function legsIdentical(a: string, b: string, offsetBytes: number, lengthBytes: number): boolean {
  const fa = openSync(a, "r");
  const fb = openSync(b, "r");
  try {
    const ba = Buffer.allocUnsafe(1 << 22);
    const bb = Buffer.allocUnsafe(1 << 22);
    for (let off = 0; off < lengthBytes; off += ba.length) {
      const n = Math.min(ba.length, lengthBytes - off);
      readSync(fa, ba, 0, n, offsetBytes + off);
      readSync(fb, bb, 0, n, offsetBytes + off);
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
    }
    return true;
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

test("the seed's walkthrough: mirror, ext3, dd over a leg, vgreduce --removemissing --force, vgextend, lvconvert -m1", { skip: why, timeout: 600_000 }, () => {
  const lab = new Lab("ulvm-seed-");
  try {
    const D: Record<string, string> = {};
    for (const p of ["sdb1", "sdb2", "sdb3", "sdb4"]) D[p] = lab.addDisk(p, 3072);
    const lvmWhy = lvmUnavailable();
    const lvmLayout = (): string[] | undefined => {
      if (lvmWhy) return undefined;
      const loops = lab.attachLoops({ readOnlyView: true });
      const r = lab.lvm("lvs", "-a", "--noheadings", "-o", "lv_name,lv_size,devices", "--separator", ";", "vg_test");
      assert.equal(r.code, 0, r.stderr);
      let out = r.stdout;
      for (const [name, loop] of loops) out = out.split(`${loop}(`).join(`${name}(`);
      return out.trim().split("\n").map((l) => l.trim()).sort();
    };
    const ulvmLayout = (): string[] => {
      let out = lab.ok("lvs", "-a", "--noheadings", "-o", "lv_name,lv_size,devices", "--separator", ";", "vg_test");
      for (const [name, path] of Object.entries(D)) out = out.split(`${path}(`).join(`${name}(`);
      return out.trim().split("\n").map((l) => l.trim()).sort();
    };

    // 2. pvcreate the four partitions; vgcreate on three.
    for (const p of ["sdb1", "sdb2", "sdb3", "sdb4"]) assert.match(lab.ok("pvcreate", D[p]!), /Physical volume ".*" successfully created\./);
    assert.match(lab.ok("vgcreate", "vg_test", D.sdb1!, D.sdb2!, D.sdb3!), /Volume group "vg_test" successfully created/);

    // 3. lvcreate -L 2.8G -m1 -n mirror_test vg_test sdb1 sdb2 sdb3
    const created = lab.ulvm("lvcreate", "-L", "2.8G", "-m1", "-n", "mirror_test", "vg_test", D.sdb1!, D.sdb2!, D.sdb3!);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, `  Rounding up size to full physical extent 2.80 GiB\n  Logical volume "mirror_test" created.\n`);
    const lvs3 = lab.ok("lvs", "-a", "-o", "+devices");
    assert.match(lvs3, /\n {2}mirror_test {12}vg_test mwi-a[o-]m--- 2\.80g +\[mirror_test_mlog\] +\d+\.\d\d +mirror_test_mimage_0\(0\),mirror_test_mimage_1\(0\)/);
    assert.deepEqual(ulvmLayout(), [
      "[mirror_test_mimage_0];2.80g;sdb1(0)",
      "[mirror_test_mimage_1];2.80g;sdb2(0)",
      "[mirror_test_mlog];4.00m;sdb3(0)",
      "mirror_test;2.80g;mirror_test_mimage_0(0),mirror_test_mimage_1(0)",
    ]);
    const sync = lab.ok("lvconvert", "-i", "1", "vg_test/mirror_test");
    assert.match(sync, /vg_test\/mirror_test: Converted: 100\.00%\n$/);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "copy_percent", "vg_test/mirror_test"), /100\.00/);
    const l3 = lvmLayout();
    if (l3) assert.deepEqual(l3, ulvmLayout(), "lvm2 reads the same layout after lvcreate");

    // 4. mkfs.ext3 and mount
    const dev = join(lab.dir, "dev", "vg_test", "mirror_test");
    const mnt = join(lab.dir, "test");
    mkdirSync(mnt);
    assert.equal(lab.run("mkfs.ext3", ["-q", dev]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);

    // 5. The test file, then dd if=/dev/zero of=/dev/sdb2 count=10 bs=1M while mounted.
    for (let x = 1; x <= 100; x++) appendFileSync(join(mnt, "test.txt"), `${x} test test test \n`);
    lab.run("sync", []);
    assert.equal(lab.run("dd", ["if=/dev/zero", `of=${D.sdb2}`, "count=10", "bs=1M", "conv=notrunc"]).code, 0);
    let lvs5 = lab.ulvm("lvs", "-a", "-o", "+devices");
    for (let i = 0; i < 50 && !/\[unknown\]\(0\)/.test(lvs5.stdout); i++) {
      appendFileSync(join(mnt, "after.txt"), `${i}\n`);
      lab.run("sync", []);
      lab.run("sleep", ["0.2"]);
      lvs5 = lab.ulvm("lvs", "-a", "-o", "+devices");
    }
    assert.match(lvs5.stderr, /WARNING: Couldn't find device with uuid [\w-]{38}\./);
    assert.match(lvs5.stdout, /\[mirror_test_mimage_1\] vg_test \S+ +2\.80g +\[unknown\]\(0\)/);
    assert.match(lvs5.stdout, /mirror_test +vg_test mwi-aom-p- 2\.80g/);
    const scan5 = lab.ulvm("lvscan");
    assert.match(scan5.stdout, /ACTIVE {12}'.*\/dev\/vg_test\/mirror_test' \[2\.80 GiB\] inherit/);
    assert.match(scan5.stderr, /Couldn't find device with uuid/);
    assert.equal(lab.run("umount", [mnt]).code, 0);
    assert.equal(lab.run("mount", [dev, mnt]).code, 0);
    assert.equal(readFileSync(join(mnt, "test.txt"), "utf8").split("\n")[99], "100 test test test ");

    // 6. vgreduce --removemissing --force vg_test: the mirror becomes linear.
    const red = lab.ulvm("vgreduce", "--removemissing", "--force", "vg_test");
    assert.equal(red.code, 0, red.stderr);
    assert.match(red.stderr, /WARNING: Bad device removed from mirror volume, vg_test\/mirror_test/);
    assert.match(red.stderr, /WARNING: Mirror volume, vg_test\/mirror_test converted to linear due to device failure\./);
    assert.match(red.stdout, /Wrote out consistent volume group vg_test\./);
    assert.doesNotMatch(lab.ok("lvdisplay", "vg_test/mirror_test"), /Mirrored volumes/);
    assert.deepEqual(ulvmLayout(), ["mirror_test;2.80g;sdb1(0)"]);
    const l6 = lvmLayout();
    if (l6) assert.deepEqual(l6, ["mirror_test;2.80g;sdb1(0)"], "lvm2 reads the same layout after vgreduce");

    // 7. vgextend vg_test sdb4; lvconvert -m1 /dev/vg_test/mirror_test sdb1 sdb4 sdb3
    assert.match(lab.ok("vgextend", "vg_test", D.sdb4!), /Volume group "vg_test" successfully extended/);
    const conv = lab.ulvm("lvconvert", "-m1", "-i", "1", dev, D.sdb1!, D.sdb4!, D.sdb3!);
    assert.equal(conv.code, 0, conv.stderr);
    const lines = conv.stdout.trimEnd().split("\n");
    assert.equal(lines[0], "  Logical volume vg_test/mirror_test being converted.");
    assert.match(lines[1]!, /^ {2}vg_test\/mirror_test: Converted: \d+\.\d\d%$/);
    assert.equal(lines[lines.length - 1], "  vg_test/mirror_test: Converted: 100.00%");
    assert.match(lab.ok("lvdisplay", "vg_test/mirror_test"), /\n {2}Mirrored volumes {7}2\n/);
    assert.deepEqual(ulvmLayout(), [
      "[mirror_test_mimage_0];2.80g;sdb1(0)",
      "[mirror_test_mimage_1];2.80g;sdb4(0)",
      "[mirror_test_mlog];4.00m;sdb3(0)",
      "mirror_test;2.80g;mirror_test_mimage_0(0),mirror_test_mimage_1(0)",
    ]);
    const l7 = lvmLayout();
    if (l7) assert.deepEqual(l7, ulvmLayout(), "lvm2 reads the same layout after lvconvert");
    const text = readFileSync(join(mnt, "test.txt"), "utf8").split("\n");
    assert.equal(text.length, 101);
    assert.equal(text[0], "1 test test test ");
    assert.equal(lab.run("umount", [mnt]).code, 0);
    const fsck = lab.run("e2fsck", ["-fn", dev]);
    assert.equal(fsck.code, 0, fsck.stdout);
    assert.equal(lab.ulvm("lvchange", "-an", "vg_test/mirror_test").code, 0);
    assert.ok(!existsSync(dev));
    // Both legs hold the same bytes over the whole LV (717 extents of 4 MiB, each from pe_start = 1 MiB).
    assert.ok(legsIdentical(D.sdb1!, D.sdb4!, 1 << 20, 717 * 4 * (1 << 20)), "legs identical");
  } finally {
    lab.cleanup();
  }
});
