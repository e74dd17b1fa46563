import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Lab, which } from "../../helpers/lab.js";
import { MiB, bitmapSetBits, daemonStatus, pread, topStatus, waitRaidHealth } from "../../helpers/raid1.js";

/**
 * lvconvert --splitmirrors 1 --trackchanges on an active raid1 LV, writes
 * to 1% of it, then lvconvert --mergemirrors: while split, the image's slot
 * is "- -" in the raid table, so the write-intent bitmap keeps the regions
 * written meanwhile; the merge re-adds the slot and the target recovers
 * only those regions. The split image, visible and read-only meanwhile,
 * reads as of the split and takes no writes.
 */
const skip = which("qemu-io") ? undefined : "qemu-io not installed (apt-get install qemu-utils)";

test("raid1: --splitmirrors 1 --trackchanges, writes to 1% of the LV, --mergemirrors: only the regions written meanwhile are recovered", { skip }, async () => {
  const lab = new Lab("ulvm-r1track-");
  try {
    const d1 = lab.addDisk("d1", 256);
    const d2 = lab.addDisk("d2", 256);
    lab.ok("pvcreate", d1, d2);
    lab.ok("vgcreate", "vg", d1, d2);
    lab.ok("lvcreate", "--type", "raid1", "-m1", "-L", "200M", "-n", "r", "vg");
    const sock = join(lab.dir, "run", "nbd.sock");
    const qemu = (lv: string, cmd: string, ro = false) => lab.run("qemu-io", [...(ro ? ["-r"] : []), "-f", "raw", "-c", cmd, `nbd+unix:///vg/${lv}?socket=${sock}`]);
    const io = (cmd: string): void => {
      const r = qemu("r", cmd);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.doesNotMatch(r.stdout + r.stderr, /error|failed/i);
    };
    io("write -P 1 0 200M");
    let st = await waitRaidHealth(lab, "r", /^AA$/);
    assert.equal(st.raid?.health, "AA");
    const regions = 100;
    const setBits = (): number => bitmapSetBits(d1, regions);
    for (let i = 0; i < 200 && setBits() > 0; i++) lab.run("sleep", ["0.05"]);
    assert.equal(setBits(), 0, "the write-intent bitmap on disk is clean");

    const split = lab.ulvm("lvconvert", "-y", "--splitmirrors", "1", "--trackchanges", "vg/r");
    assert.equal(split.code, 0, split.stderr);
    assert.match(split.stdout, /vg\/r_rimage_1 split from vg\/r for read-only purposes\./);
    assert.match(split.stderr, /WARNING: Any newly written data will be non-resilient on LV vg\/r during the split!/);
    assert.match(split.stdout, /Use 'lvconvert --merge vg\/r_rimage_1' to merge back into vg\/r\./);
    st = await topStatus(lab, "r");
    assert.match(st.raid?.health ?? "", /^A[D-]$/, `slot 1 is out of the array: ${st.raid?.health}`);

    // 1% of the LV, written while the image is split (one write straddling a region boundary).
    io("write -P 2 10M 1M");
    io(`write -P 3 ${99.5 * MiB} 1M`);
    assert.equal(setBits(), 3, "the bitmap on disk marks the three regions written while split");

    // The split image is served read-only, with the data as of the split.
    const lvs = await daemonStatus(lab);
    const img = lvs.find((l) => l.lv === "r_rimage_1");
    assert.ok(img, "the split image is active (lvm2 activates it)");
    {
      const rd = qemu("r_rimage_1", "read -P 1 10M 1M", true);
      assert.equal(rd.code, 0, rd.stderr + rd.stdout);
      assert.doesNotMatch(rd.stdout + rd.stderr, /Pattern verification failed|error/i, "the split image reads as of the split");
      const wr = qemu("r_rimage_1", "write -P 9 0 4k");
      assert.notEqual(wr.code, 0);
      assert.match(wr.stdout + wr.stderr, /Permission denied|read-only/i, `the split image takes no writes: ${wr.stdout}${wr.stderr}`);
    }
    assert.ok(pread(d2, 5 * MiB, 4096).equals(Buffer.alloc(4096, 1)), "image 1 on disk is untouched");
    assert.ok(pread(d2, 5 * MiB + 10 * MiB, MiB).equals(Buffer.alloc(MiB, 1)), "image 1 on disk is as of the split");

    const merge = lab.ulvm("lvconvert", "--mergemirrors", "vg/r_rimage_1");
    assert.equal(merge.code, 0, merge.stderr);
    assert.match(merge.stdout, /vg\/r_rimage_1 successfully merged back into vg\/r\./);
    assert.equal((await daemonStatus(lab)).find((l) => l.lv === "r_rimage_1"), undefined, "the image is no longer served alone");
    st = await waitRaidHealth(lab, "r", /^AA$/);
    assert.equal(st.raid?.health, "AA", "the image is back and in sync");
    const copiedBytes = (st.sync?.copiedRegions ?? 0) * 2 * MiB;
    assert.equal(copiedBytes, 3 * 2 * MiB, "exactly the three regions written meanwhile");
    assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/r_rimage_1"), /iwi-aor---/);

    lab.ok("lvchange", "-an", "vg/r");
    for (let off = 0; off < 200 * MiB; off += 8 * MiB) assert.ok(pread(d1, 5 * MiB + off, 8 * MiB).equals(pread(d2, 5 * MiB + off, 8 * MiB)), `images differ near ${off}`);
  } finally {
    lab.cleanup();
  }
});
