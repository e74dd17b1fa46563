import { test } from "node:test";
import assert from "node:assert/strict";
import { StaticActivationState } from "./activation-state.js";
import { copyPercent, lvAttr, pvAttr, vgAttr } from "./lv-attr.js";
import { percentText } from "./percent.js";
import { MIRROR_VG, viewFromText } from "./test-helpers.js";

const attrs = (v: ReturnType<typeof viewFromText>): Record<string, string> => Object.fromEntries(v.lvs.map((l) => [l.name, lvAttr(l)]));

test("lv_attr of inactive LVs on a system with device-mapper", () => {
  const v = viewFromText(MIRROR_VG);
  assert.deepEqual(attrs(v), { lin: "-wi-------", mir: "mwi---m---", mir_mlog: "lwi---m---", mir_mimage_0: "Iwi---m---", mir_mimage_1: "Iwi---m---" });
  assert.equal(percentText(copyPercent(v.lvByName.get("mir")!)), "");
});

test("lv_attr marks LVs on a missing PV partial, and the mirror above them", () => {
  const v = viewFromText(MIRROR_VG, { missing: [1] });
  const a = attrs(v);
  assert.equal(a.mir_mimage_1, "Iwi---m-p-");
  assert.equal(a.mir, "mwi---m-p-");
  assert.equal(a.mir_mimage_0, "Iwi---m---");
  assert.equal(a.lin, "-wi-------");
  assert.equal(vgAttr(v), "wz-pn-");
  assert.deepEqual(v.pvs.map(pvAttr), ["a--", "a-m", "a--"]);
});

test("a missing log makes the mirror partial too", () => {
  const a = attrs(viewFromText(MIRROR_VG, { missing: [2] }));
  assert.equal(a.mir_mlog, "lwi---m-p-");
  assert.equal(a.mir, "mwi---m-p-");
});

test("active LVs: a/o state characters, images in sync once every region is", () => {
  const st = new StaticActivationState()
    .set("vgm", "lin", { active: true, openCount: 1, suspended: false })
    .set("vgm", "mir", { active: true, openCount: 0, suspended: false, mirrorSegments: [{ inSyncRegions: 16, totalRegions: 16 }] })
    .set("vgm", "mir_mimage_0", { active: true, openCount: 1, suspended: false })
    .set("vgm", "mir_mimage_1", { active: true, openCount: 1, suspended: false })
    .set("vgm", "mir_mlog", { active: true, openCount: 1, suspended: false });
  const v = viewFromText(MIRROR_VG, { activation: st });
  assert.deepEqual(attrs(v), { lin: "-wi-ao----", mir: "mwi-a-m---", mir_mlog: "lwi-aom---", mir_mimage_0: "iwi-aom---", mir_mimage_1: "iwi-aom---" });
  assert.equal(percentText(copyPercent(v.lvByName.get("mir")!)), "100.00");
});

test("Cpy%Sync counts whole extents copied (copy_percent), images stay I until fully in sync", () => {
  const st = new StaticActivationState()
    .set("vgm", "mir", { active: true, openCount: 0, suspended: false, mirrorSegments: [{ inSyncRegions: 5, totalRegions: 16 }] });
  const v = viewFromText(MIRROR_VG, { activation: st });
  // 8 extents * 5/16 = 2.5 -> 2 extents copied -> 25.00%
  assert.equal(percentText(copyPercent(v.lvByName.get("mir")!)), "25.00");
  assert.equal(lvAttr(v.lvByName.get("mir_mimage_1")!)[0], "I");
});

test("suspended and read-only activation show s and R", () => {
  const st = new StaticActivationState().set("vgm", "lin", { active: true, openCount: 0, suspended: true, readOnly: true });
  assert.equal(lvAttr(viewFromText(MIRROR_VG, { activation: st }).lvByName.get("lin")!), "-Ri-s-----");
});

test("lv_attr of an inactive raid1 (lv.c: R for NOTSYNCED, I images, e metadata, w write-mostly)", async () => {
  const { readFixture } = await import("../../test/helpers/fixtures.js");
  const v = viewFromText(readFixture("f-raid1", "vgcfgbackup.vg"));
  const a = attrs(v);
  assert.equal(a.r1, "rwi---r---");
  assert.equal(a.r2, "Rwi---r---");
  assert.equal(a.r1_rimage_0, "Iwi---r---");
  assert.equal(a.r1_rimage_1, "Iwi---r-w-");
  assert.equal(a.r1_rmeta_0, "ewi---r---");
  assert.equal(a.r2_rmeta_2, "ewi---r---");
});
