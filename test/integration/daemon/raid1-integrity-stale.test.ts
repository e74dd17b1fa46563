/**
 * raid1 + integrity whose image's integrity metadata cannot be used (issue
 * 17, "Bad input"): a corrupt superblock, a tag area too small for the
 * data, an unknown hash. POLICY (the kernel's dm-integrity refuses the
 * table and lvm2's activation fails): the LV activates degraded, with a
 * warning naming the LV, the image and its _imeta; the image is failed in
 * the raid1's health, nothing is read from or written to it (its iorig,
 * imeta and rmeta keep their bytes), and `lvconvert --repair` rebuilds it
 * in place (imeta re-initialised, image recovered in full).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, loopUnavailable, which } from "../../helpers/lab.js";
import { EXTENT_BYTES, PE_START_BYTES, pread, pwrite, waitRaidHealth } from "../../helpers/raid1.js";

const skip = !which("nbdcopy") ? "nbdcopy not installed (apt-get install libnbd-bin)" : loopUnavailable();

/** On each PV: rmeta at PE 0, iorig at PEs 1-2, imeta at PE 3 (see raid1-integrity.test.ts). */
const IORIG = PE_START_BYTES + EXTENT_BYTES;
const IMETA = PE_START_BYTES + 3 * EXTENT_BYTES;
const LV_BYTES = 8 << 20;

interface Setup {
  lab: Lab;
  d0: string;
  d1: string;
  uri: string;
  data: Buffer;
}

function setup(lab: Lab): Setup {
  const d0 = lab.addDisk("d0", 64);
  const d1 = lab.addDisk("d1", 64);
  lab.ok("vgcreate", "-q", "vg", d0, d1);
  lab.ok("lvcreate", "--type", "raid1", "-m1", "--raidintegrity", "y", "--raidintegritymode", "bitmap", "-L", "8m", "-n", "r", "vg");
  const uri = `nbd+unix:///vg/r?socket=${lab.dir}/run/nbd.sock`;
  const data = randomBytes(LV_BYTES);
  writeFileSync(`${lab.dir}/in.bin`, data);
  assert.equal(lab.run("nbdcopy", [`${lab.dir}/in.bin`, uri]).code, 0);
  return { lab, d0, d1, uri, data };
}

function readAll(s: Setup): Buffer {
  const r = s.lab.run("nbdcopy", [s.uri, `${s.lab.dir}/out.bin`]);
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(`${s.lab.dir}/out.bin`);
}

/** Activate with image 1's metadata damaged by `damage`; check the warning, the health, that image 1 is untouched by reads and writes. */
async function activateStale(s: Setup, damage: () => void, reason: RegExp): Promise<void> {
  const { lab, d1 } = s;
  lab.ok("lvchange", "-an", "vg/r");
  damage();
  const before = { rmeta: pread(d1, PE_START_BYTES, EXTENT_BYTES), iorig: pread(d1, IORIG, 2 * EXTENT_BYTES), imeta: pread(d1, IMETA, EXTENT_BYTES) };
  lab.ok("lvchange", "-ay", "vg/r");
  const log = readFileSync(join(lab.dir, "run", "ulvmd.log"), "utf8");
  assert.match(log, /WARNING: raid1 LV vg\/r: the integrity metadata of image 1 \(vg\/r_rimage_1, on vg\/r_rimage_1_imeta\) is not valid: /);
  const line = log.split("\n").find((l) => l.includes("integrity metadata of image 1"))!;
  assert.match(line, reason);
  assert.match(line, /lvconvert --repair vg\/r/);
  assert.match((await waitRaidHealth(lab, "r", /^AD$/)).raid?.health ?? "", /^AD$/);
  assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_health_status", "vg/r"), /refresh needed/);
  assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/r").trim(), /^rwi-a-r-r-$/);
  // Reads are image 0's; a write reaches image 0 only.
  assert.ok(readAll(s).equals(s.data), "every byte as written");
  const patch = randomBytes(1 << 20);
  writeFileSync(`${lab.dir}/patch.bin`, patch);
  assert.equal(lab.run("nbdcopy", [`${lab.dir}/patch.bin`, `nbd+unix:///vg/r?socket=${lab.dir}/run/nbd.sock`]).code, 0);
  patch.copy(s.data, 0);
  assert.ok(readAll(s).equals(s.data), "the write is served back");
  assert.ok(pread(s.d0, IORIG, 1 << 20).equals(patch), "image 0 took the write");
  lab.ok("lvchange", "-an", "vg/r");
  assert.ok(pread(d1, PE_START_BYTES, EXTENT_BYTES).equals(before.rmeta), "image 1's rmeta untouched");
  assert.ok(pread(d1, IORIG, 2 * EXTENT_BYTES).equals(before.iorig), "image 1's data untouched");
  assert.ok(pread(d1, IMETA, EXTENT_BYTES).equals(before.imeta), "image 1's imeta untouched");
  lab.ok("lvchange", "-ay", "vg/r");
  assert.match((await waitRaidHealth(lab, "r", /^AD$/)).raid?.health ?? "", /^AD$/);
}

/** lvconvert --repair rebuilds image 1 in place: in sync again, both images equal, the data served, no mismatch. */
async function repairAndCheck(s: Setup): Promise<void> {
  const { lab, d0, d1 } = s;
  const out = lab.ok("lvconvert", "-y", "--repair", "vg/r");
  assert.match(out, /Faulty devices in vg\/r successfully replaced\./);
  assert.match((await waitRaidHealth(lab, "r", /^AA$/)).raid?.health ?? "", /^AA$/);
  assert.match(lab.ok("lvs", "--noheadings", "-o", "lv_attr", "vg/r").trim(), /^rwi-a-r---$/);
  assert.doesNotMatch(lab.ok("vgcfgbackup", "-f", `${lab.dir}/after.txt`, "vg") + readFileSync(`${lab.dir}/after.txt`, "utf8"), /REBUILD/);
  assert.ok(readAll(s).equals(s.data));
  lab.ok("lvchange", "-an", "vg/r");
  assert.ok(pread(d0, IORIG, LV_BYTES).equals(pread(d1, IORIG, LV_BYTES)), "both images hold the same bytes");
  // A fresh activation finds a good superblock on image 1 and every tag right: a check finds nothing.
  lab.ok("lvchange", "-ay", "vg/r");
  assert.match((await waitRaidHealth(lab, "r", /^AA$/)).raid?.health ?? "", /^AA$/);
  lab.ok("lvchange", "--syncaction", "check", "vg/r");
  assert.match((await waitRaidHealth(lab, "r", /^AA$/)).raid?.health ?? "", /^AA$/);
  for (let i = 0; i < 100 && !/idle/.test(lab.ok("lvs", "--noheadings", "-o", "raid_sync_action", "vg/r")); i++) lab.run("sleep", ["0.1"]);
  assert.match(lab.ok("lvs", "--noheadings", "-o", "integritymismatches,raid_mismatch_count", "vg/r").trim(), /^0\s+0$/);
}

test("raid1 + integrity, a corrupt integrity superblock on image 1: activated degraded with a warning naming the LV and the image, nothing written to it; lvconvert --repair rebuilds it", { skip, timeout: 120_000 }, async () => {
  const lab = new Lab("ulvm-integ-stale-sb-");
  try {
    const s = setup(lab);
    await activateStale(s, () => pwrite(s.d1, IMETA, Buffer.from("XXXX")), /bad magic/);
    await repairAndCheck(s);
  } finally {
    lab.cleanup();
  }
});

test("raid1 + integrity, a superblock whose journal leaves no room for the tags of the data: stale image, then repaired", { skip, timeout: 120_000 }, async () => {
  const lab = new Lab("ulvm-integ-stale-tags-");
  try {
    const s = setup(lab);
    // journal_sections (le32 at byte 12): 65536 sections of journal cannot fit in the 4 MiB imeta with the tags.
    await activateStale(s, () => pwrite(s.d1, IMETA + 12, Buffer.from([0, 0, 1, 0])), /tag area does not fit/);
    await repairAndCheck(s);
  } finally {
    lab.cleanup();
  }
});

test("raid1 + integrity, an image whose integrity hash is not one ulvm computes: stale image, the rest served", { skip, timeout: 120_000 }, async () => {
  const lab = new Lab("ulvm-integ-stale-hash-");
  try {
    const s = setup(lab);
    await activateStale(
      s,
      () => {
        lab.ok("vgcfgbackup", "-f", `${lab.dir}/vg.txt`, "vg");
        const text = readFileSync(`${lab.dir}/vg.txt`, "utf8");
        // Image 1's integrity segment only (image 0's comes first in the file).
        const at = text.indexOf('internal_hash = "crc32c"', text.indexOf("r_rimage_1 {"));
        assert.ok(at > 0);
        writeFileSync(`${lab.dir}/vg.txt`, text.slice(0, at) + 'internal_hash = "sha256"' + text.slice(at + 'internal_hash = "crc32c"'.length));
        lab.ok("vgcfgrestore", "-f", `${lab.dir}/vg.txt`, "vg");
      },
      /unknown integrity algorithm sha256/,
    );
    // A repair cannot give ulvm the hash: the image stays stale until the metadata names crc32c.
  } finally {
    lab.cleanup();
  }
});
