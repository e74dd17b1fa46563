import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { FIXTURES_DIR, readFixture } from "../../test/helpers/fixtures.js";
import { parseVgText } from "./vg-import.js";
import { exportVgText } from "./vg-export.js";

/** Drop the header block lvm2 writes (it names lvm2's version, the host and the time). */
function body(text: string): string {
  const lines = text.replace(/\0$/, "").split("\n");
  const start = lines.findIndex((l) => /^\w[\w.+-]* \{$/.test(l));
  let depth = 0;
  const out: string[] = [];
  for (const l of lines.slice(start)) {
    out.push(l);
    depth += (l.match(/\{/g) ?? []).length - (l.match(/\}/g) ?? []).length;
    if (depth === 0) break;
  }
  return out.join("\n");
}

for (const fx of readdirSync(FIXTURES_DIR).filter((d) => !d.includes("."))) {
  const files = readdirSync(`${FIXTURES_DIR}/${fx}`);
  for (const raw of files.filter((f) => f.endsWith("-committed.raw"))) {
    test(`disk-style export reproduces lvm2's text byte for byte: ${fx}/${raw}`, () => {
      const text = readFixture(fx, raw);
      const { vg } = parseVgText(text);
      const out = exportVgText(vg, { style: "disk", description: "x", nowSeconds: 0 });
      assert.equal(body(out), body(text));
      assert.ok(text.startsWith(vg.name + " {"));
    });
  }
  for (const bk of files.filter((f) => f.endsWith("vgcfgbackup.vg"))) {
    test(`file-style export reproduces lvm2's backup file: ${fx}/${bk}`, () => {
      const text = readFixture(fx, bk);
      const { vg } = parseVgText(text);
      const out = exportVgText(vg, { style: "file", description: "x", nowSeconds: 0 });
      // lvm2 writes creation_time comments in the machine's zone; compare without them.
      const strip = (s: string): string => body(s).replace(/(creation_time = \d+)\t+# .*/g, "$1");
      assert.equal(strip(out), strip(text));
    });
  }
}

test("parser: octal integers, bare words, escapes and comments follow lvm2", () => {
  const { vg } = parseVgText(`vg0 {\nid = "aaaaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"\nseqno = 010 # octal\nstatus = ["RESIZEABLE", "READ", "WRITE"]\nextent_size = 8192\nmax_lv = 0\nmax_pv = 0\nphysical_volumes {\npv0 {\nid = "bbbbbb-bbbb-bbbb-bbbb-bbbb-bbbb-bbbbbb"\ndevice = "/dev/a\\"b"\nstatus = ["ALLOCATABLE"]\npe_start = 2048\npe_count = 10\n}\n}\n}\ncontents = "Text Format Volume Group"\nversion = 1\n`);
  assert.equal(vg.seqno, 8);
  assert.equal(vg.pvs[0]!.deviceHint, '/dev/a"b');
});

test("importer rejects an unknown status word and keeps unknown compat flags out", () => {
  const base = readFixture("a-linear", "disk1.mda0-committed.raw");
  assert.throws(() => parseVgText(base.replace(`status = ["READ", "WRITE", "VISIBLE"]`, `status = ["READ", "WRITE", "VISIBLE", "FUTURE_FLAG"]`)), /Unknown status flag 'FUTURE_FLAG'/);
  const { vg } = parseVgText(base.replace(/flags = \[\]\ncreation_time/, `flags = ["FUTURE_FLAG"]\ncreation_time`));
  assert.ok(vg.lvs.every((lv) => !lv.flags.includes("FUTURE_FLAG")));
});

test("raid1 imports as a raid segment: counts, region, rates, rmeta/rimage pairs, written flags", () => {
  const { vg } = parseVgText(readFixture("f-raid1", "vgcfgbackup.vg"));
  const r1 = vg.lvs.find((l) => l.name === "r1")!.segments[0]!;
  const r2 = vg.lvs.find((l) => l.name === "r2")!;
  assert.ok(!("opaque" in r1) && r1.type === "raid1");
  assert.equal(r1.regionSizeSectors, 4096);
  assert.equal(r1.writeBehind, 64);
  assert.deepEqual(r1.raids, [
    { meta: "r1_rmeta_0", image: "r1_rimage_0" },
    { meta: "r1_rmeta_1", image: "r1_rimage_1" },
  ]);
  const s2 = r2.segments[0]!;
  assert.ok(s2.type === "raid1" && !("opaque" in s2));
  assert.deepEqual([s2.raids.length, s2.regionSizeSectors, s2.minRecoveryRate, s2.maxRecoveryRate], [3, 1024, 100, 2048]);
  assert.ok(r2.status.includes("NOTSYNCED"));
  assert.deepEqual(vg.lvs.find((l) => l.name === "r1_rimage_1")!.status, ["READ", "WRITE", "REBUILD", "WRITEMOSTLY"]);
  // RAID, RAID_IMAGE and RAID_META are derived, never written.
  assert.doesNotMatch(exportVgText(vg, { style: "disk", description: "x", nowSeconds: 0 }), /RAID/);
});

test("raid1 import errors use lvm2's messages (lib/raid/raid.c)", () => {
  const base = readFixture("f-raid1", "vgcfgbackup.vg");
  const cases: [string, string, RegExp][] = [
    ["device_count = 2\n", "", /Couldn't read 'device_count' or 'stripe_count' for segment 'segment1'\./],
    ["device_count = 2\n", "device_count = 2\nstripe_count = 2\n", /Only one of 'device_count' and 'stripe_count' allowed for segment 'segment1'\./],
    ["device_count = 2\n", "device_count = 3\n", /Incorrect number of areas in area array for segment 'segment1'\./],
    ['"r1_rmeta_1", "r1_rimage_1"', '"r1_rmeta_1"', /Missing data device in areas array for segment segment1\./],
    ['"r1_rmeta_0", "r1_rimage_0",', '"r1_rmeta_0", "nosuch",', /Couldn't find volume 'nosuch' for segment 'segment1'\./],
    ["writebehind = 64", 'writebehind = "x"', /Couldn't read 'writebehind' for segment segment1 of logical volume r1\./],
    ["raids = [", "raidz = [", /Couldn't find RAID array for segment segment1 of logical volume r1\./],
  ];
  for (const [from, to, re] of cases) {
    assert.ok(base.includes(from), from);
    assert.throws(() => parseVgText(base.replace(from, to)), re);
  }
});
