/**
 * lvconvert --raidintegrity y|n on an existing, active raid1 holding data:
 * y adds the _imeta/_iorig layers, reloads the LV with `recalculate` (the
 * tags of the existing data are computed in the background while it serves
 * I/O) and clears the flag; the data reads back without a single mismatch
 * and rot is healed afterwards. n gives the images their extents back and
 * removes the layers. After each step Debian's lvm2 reads ulvm's metadata
 * and re-exports it unchanged.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { Lab, loopUnavailable, lvmUnavailable, normaliseLvmStderr, which } from "../../helpers/lab.js";
import { daemonStatus, pread, pwrite, PE_START_BYTES, EXTENT_BYTES } from "../../helpers/raid1.js";
import { backupBody, sameBackup } from "../../helpers/metadata-backup.js";

const skip = !which("nbdcopy") ? "nbdcopy not installed (apt-get install libnbd-bin)" : (loopUnavailable() ?? lvmUnavailable());

function lvmNames(lab: Lab): string[] {
  const r = lab.lvm("lvs", "-a", "--noheadings", "-o", "lv_name", "vg");
  assert.equal(r.code, 0, normaliseLvmStderr(r.stderr));
  return r.stdout
    .trim()
    .split("\n")
    .map((l) => l.trim())
    .sort();
}

test("lvconvert --raidintegrity y then n on an active raid1 with data: layers added online, tags initialised with no false mismatch, rot healed; then removed; lvm2 reads the metadata after each", { skip, timeout: 120_000 }, async () => {
  const lab = new Lab("ulvm-integ-conv-");
  try {
    lab.addDisk("d0", 64);
    lab.addDisk("d1", 64);
    lab.attachLoops();
    const [d0, d1] = [lab.loop("d0"), lab.loop("d1")];
    lab.ok("vgcreate", "-q", "vg", d0, d1);
    lab.ok("lvcreate", "-q", "--type", "raid1", "-m1", "-L", "8m", "-n", "r", "vg");
    lab.ok("lvcreate", "-q", "-L", "4m", "-n", "lin", "vg");
    const uri = `nbd+unix:///vg/r?socket=${lab.dir}/run/nbd.sock`;
    const data = randomBytes(8 << 20);
    writeFileSync(`${lab.dir}/in.bin`, data);
    assert.equal(lab.run("nbdcopy", [`${lab.dir}/in.bin`, uri]).code, 0);

    // Not on a linear LV: lvm2's refusal, word for word.
    const lin = lab.ulvm("lvconvert", "--raidintegrity", "y", "vg/lin");
    const linLvm = lab.lvm("lvconvert", "--raidintegrity", "y", "vg/lin");
    assert.equal(lin.code, linLvm.code);
    assert.equal(lin.stderr, normaliseLvmStderr(linLvm.stderr));

    const add = lab.ulvm("lvconvert", "--raidintegrity", "y", "--raidintegritymode", "bitmap", "vg/r");
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, "  Using integrity block size 512 for unknown file system block size, logical block size 512, physical block size 512.\n  Logical volume vg/r has added integrity.\n");
    let text = sameBackup(lab);
    assert.match(text, /type = "integrity"\n\t\t\t\torigin = "r_rimage_0_iorig"\n\t\t\t\tdata_sectors = 16384\n\t\t\t\tmode = "B"/);
    assert.doesNotMatch(text, /recalculate/, "the flag is cleared once the reload started the initialisation");
    assert.deepEqual(lvmNames(lab), ["[r_rimage_0]", "[r_rimage_0_imeta]", "[r_rimage_0_iorig]", "[r_rimage_1]", "[r_rimage_1_imeta]", "[r_rimage_1_iorig]", "[r_rmeta_0]", "[r_rmeta_1]", "lin", "r"]);
    // The data is still there, and every read of it passes (tags computed or not yet written: never a mismatch).
    for (let pass = 0; pass < 3; pass++) {
      assert.equal(lab.run("nbdcopy", [uri, `${lab.dir}/out.bin`]).code, 0);
      assert.ok(readFileSync(`${lab.dir}/out.bin`).equals(data), `read ${pass}`);
    }
    const mismatches = (): number => Number(lab.ok("lvs", "--noheadings", "-o", "integritymismatches", "vg/r").trim());
    assert.equal(mismatches(), 0);
    // Once initialised, rot is found and healed: wait for the tags (Cpy%Sync of the images), flip a bit, read.
    // Wait for the initialisation to end: each image's dm-integrity status says "-" for the recalculation point.
    const initialised = async (): Promise<boolean> => {
      const r = (await daemonStatus(lab)).find((l) => l.lv === "r");
      const images = r?.devices.filter((d) => /^r_rimage_\d$/.test(d.lvName)) ?? [];
      return images.length === 2 && images.every((d) => / integrity \d+ \d+ -\s*$/.test(d.status));
    };
    for (let i = 0; i < 400 && !(await initialised()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(await initialised(), "the tags' initialisation ended");
    // The iorig keeps the image's extents: extents 1-2 of each PV.
    for (const pv of [d0, d1]) {
      const at = PE_START_BYTES + EXTENT_BYTES + 4321 * 512 + 9;
      pwrite(pv, at, Buffer.from([pread(pv, at, 1)[0]! ^ 0x02]));
    }
    const bad = lab.run("qemu-io", ["-f", "raw", "-c", `read ${4321 * 512} 512`, uri]);
    assert.match(bad.stdout + bad.stderr, /Input\/output error/, "rot on both copies of a block is caught by its tag (the tags were initialised from the data)");
    assert.ok(mismatches() >= 1);

    const rm = lab.ulvm("lvconvert", "--raidintegrity", "n", "vg/r");
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout, "  Logical volume vg/r has removed integrity.\n");
    text = sameBackup(lab);
    assert.doesNotMatch(text, /integrity|_imeta|_iorig/);
    assert.deepEqual(lvmNames(lab), ["[r_rimage_0]", "[r_rimage_1]", "[r_rmeta_0]", "[r_rmeta_1]", "lin", "r"]);
    // Without the layer the rotten block is served as it is on disk (what a plain raid1 does), the rest as written.
    assert.equal(lab.run("nbdcopy", [uri, `${lab.dir}/out.bin`]).code, 0);
    const out = readFileSync(`${lab.dir}/out.bin`);
    assert.ok(out.subarray(0, 4321 * 512).equals(data.subarray(0, 4321 * 512)));
    assert.ok(out.subarray(4322 * 512).equals(data.subarray(4322 * 512)));
    const none = lab.ulvm("lvconvert", "--raidintegrity", "n", "vg/r");
    assert.equal(none.code, 5);
    assert.match(none.stderr, /LV vg\/r segment has no integrity metadata device\./);
  } finally {
    lab.cleanup();
  }
});
