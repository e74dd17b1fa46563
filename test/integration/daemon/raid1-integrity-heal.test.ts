/**
 * raid1 + integrity through the daemon, end to end: lvcreate --raidintegrity
 * activates the LV (its first activation initialises the tags, then the
 * `recalculate` flag is cleared and committed, as lvm2 does), a client writes
 * over NBD (nbdcopy), bits are flipped in one leg's iorig extents of the PV
 * file behind ulvm's back, and reads serve the right bytes, rewrite the rotten
 * copies and count them in `lvs -o integritymismatches`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { Lab, loopUnavailable, which } from "../../helpers/lab.js";
import { pread, pwrite, PE_START_BYTES, EXTENT_BYTES } from "../../helpers/raid1.js";

const skip = !which("nbdcopy") ? "nbdcopy not installed (apt-get install libnbd-bin)" : loopUnavailable();

test("bit rot on both legs (different blocks) of raid1 + integrity: no wrong byte served, every rotten copy met is rewritten and counted", { skip }, () => {
  const lab = new Lab("ulvm-integ-heal-");
  try {
    const d0 = lab.addDisk("d0", 64);
    const d1 = lab.addDisk("d1", 64);
    lab.ok("vgcreate", "-q", "vg", d0, d1);
    const created = lab.ok("lvcreate", "--type", "raid1", "-m1", "--raidintegrity", "y", "--raidintegritymode", "bitmap", "-L", "8m", "-n", "r", "vg");
    assert.match(created, /Logical volume "r" created\./);
    // The first activation passed `recalculate`; the VG no longer asks for it.
    lab.ok("vgcfgbackup", "-f", `${lab.dir}/vg.txt`, "vg");
    const text = readFileSync(`${lab.dir}/vg.txt`, "utf8");
    assert.doesNotMatch(text, /recalculate/);
    assert.match(text, /mode = "B"/);
    const uri = `nbd+unix:///vg/r?socket=${lab.dir}/run/nbd.sock`;
    const data = randomBytes(8 << 20);
    writeFileSync(`${lab.dir}/in.bin`, data);
    assert.equal(lab.run("nbdcopy", [`${lab.dir}/in.bin`, uri]).code, 0);
    // Each image's iorig is extents 1-2 of its PV (rmeta at 0): flip one bit in sectors of both legs
    // (different sectors), so that whichever leg serves a read meets some rot.
    const rot: Array<[string, number[]]> = [
      [d0, [7, 1000, 4096]],
      [d1, [9999, 16383]],
    ];
    for (const [pv, sectors] of rot)
      for (const s of sectors) {
        const at = PE_START_BYTES + EXTENT_BYTES + s * 512 + 100;
        pwrite(pv, at, Buffer.from([pread(pv, at, 1)[0]! ^ 0x08]));
      }
    for (let pass = 0; pass < 2; pass++) {
      assert.equal(lab.run("nbdcopy", [uri, `${lab.dir}/out.bin`]).code, 0);
      assert.ok(readFileSync(`${lab.dir}/out.bin`).equals(data), `read ${pass}: every byte as written`);
    }
    // Copies met by a read were rewritten from the good leg; the counts say how many were met.
    const healedOn = ([pv, sectors]: [string, number[]]): number =>
      sectors.filter((s) => pread(pv, PE_START_BYTES + EXTENT_BYTES + s * 512, 512).equals(data.subarray(s * 512, s * 512 + 512))).length;
    const healed = rot.map(healedOn);
    assert.ok(healed[0]! + healed[1]! >= 1, "every sector was read, so some rot was met");
    const counts = lab
      .ok("lvs", "-a", "--noheadings", "--separator", ";", "-o", "lv_name,integritymismatches", "vg")
      .trim()
      .split("\n")
      .map((l) => l.trim().split(";"));
    const count = (name: string): number => Number(counts.find((c) => c[0] === name)![1]);
    assert.equal(count("[r_rimage_0]"), healed[0]);
    assert.equal(count("[r_rimage_1]"), healed[1]);
    assert.equal(count("r"), healed[0]! + healed[1]!);
    assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/r").trim(), /^rwi-a-r---$/, "the array stays healthy");
  } finally {
    lab.cleanup();
  }
});
