import { test } from "node:test";
import assert from "node:assert/strict";
import { readFixture } from "../../test/helpers/fixtures.js";
import { parseVgText } from "../format/vg-import.js";
import { exportVgText } from "../format/vg-export.js";
import { findLv, isMirrorSeg, lvExtents } from "./lv-info.js";
import { validateVg } from "./validate.js";
import { cloneVg } from "./clone.js";
import { isLvPartial, partialLvNames, planMirrorRepair, removeMirrorImages } from "./mirror-repair.js";
import { VgEditor } from "./allocate-lv.js";
import type { StripedSegment, VolumeGroup } from "./types.js";

/** Fixture b: lv_mirror (disk log on pv2), lv_corelog (core log), lv_lin on pv2. */
function fixtureB(): VolumeGroup {
  return parseVgText(readFixture("b-mirror", "vgcfgbackup.vg")).vg;
}
const PV1 = "fxmirrpv010000000000000000000001";
const PV2 = "fxmirrpv020000000000000000000002";
const PV3 = "fxmirrpv030000000000000000000003";

function stripes(vg: VolumeGroup, lv: string): Array<[string, number, number]> {
  return findLv(vg, lv)!.segments.map((s) => {
    assert.equal(s.type, "striped");
    const a = (s as StripedSegment).stripes[0]!;
    assert.equal(a.kind, "pv");
    return [a.kind === "pv" ? a.pvId : "", a.kind === "pv" ? a.startPe : -1, s.extentCount];
  });
}

test("isLvPartial() sees a missing PV through mirror images and logs", () => {
  const vg = fixtureB();
  const missing = new Set([PV3]);
  assert.equal(isLvPartial(vg, findLv(vg, "lv_mirror")!, missing), true, "log on the missing PV");
  assert.equal(isLvPartial(vg, findLv(vg, "lv_corelog")!, missing), false);
  assert.deepEqual(partialLvNames(vg, new Set([PV2])), ["lv_mirror", "lv_corelog", "lv_mirror_mimage_1", "lv_corelog_mimage_1"]);
});

test("planMirrorRepair() collapses a mirror that lost a leg into a linear LV with the same name and UUID (fixture c)", () => {
  const vg = fixtureB();
  const before = findLv(vg, "lv_mirror")!;
  const plan = planMirrorRepair(vg, "lv_mirror", new Set([PV2]));
  assert.equal(plan.collapsed, true);
  assert.deepEqual(plan.removedImages, ["lv_mirror_mimage_1"]);
  assert.equal(plan.removedLog, "lv_mirror_mlog");
  assert.equal(plan.logFailed, false);
  // lvm2 commits: detach, then once before deleting each of mimage_1, mimage_0 and mlog, then a final write.
  assert.equal(plan.stages.length, 5);
  const lv = findLv(plan.result, "lv_mirror")!;
  assert.equal(lv.id, before.id);
  assert.deepEqual(stripes(plan.result, "lv_mirror"), [[PV1, 0, 8]]);
  for (const gone of ["lv_mirror_mimage_0", "lv_mirror_mimage_1", "lv_mirror_mlog"]) assert.equal(findLv(plan.result, gone), undefined, gone);
  assert.deepEqual(lv.status, ["READ", "WRITE", "VISIBLE"]);
  // The input is not modified.
  assert.equal(findLv(vg, "lv_mirror")!.segments[0]!.type, "mirror");
});

test("planMirrorRepair() intermediate stages are what lvm2 writes: detached sub-LVs visible, the emptied leg an error segment", () => {
  const plan = planMirrorRepair(fixtureB(), "lv_mirror", new Set([PV2]));
  const first = plan.stages[0]!;
  for (const n of ["lv_mirror_mimage_0", "lv_mirror_mimage_1", "lv_mirror_mlog"]) assert.ok(findLv(first, n)!.status.includes("VISIBLE"), n);
  assert.equal(findLv(first, "lv_mirror_mimage_0")!.segments[0]!.type, "error");
  assert.deepEqual(plan.stages.map((s) => s.lvs.length), [8, 8, 7, 6, 5]);
  for (const s of plan.stages) assert.deepEqual(validateVg(s), []);
  // An error segment exports as lvm2 writes it (no areas).
  const text = exportVgText(first, { style: "disk", description: "x", nowSeconds: 0 });
  assert.match(text, /lv_mirror_mimage_0 \{\n[^}]*segment1 \{\nstart_extent = 0\nextent_count = 8\n\ntype = "error"\n\}/);
});

test("planMirrorRepair() of a core-log mirror takes four commits (fixture c, lv_corelog)", () => {
  const vg = planMirrorRepair(fixtureB(), "lv_mirror", new Set([PV2])).result;
  const plan = planMirrorRepair(vg, "lv_corelog", new Set([PV2]));
  assert.equal(plan.stages.length, 4);
  assert.deepEqual(stripes(plan.result, "lv_corelog"), [[PV1, 8, 2]]);
  assert.deepEqual(plan.result.lvs.map((l) => l.name), ["lv_mirror", "lv_corelog", "lv_lin"]);
});

test("planMirrorRepair() keeps both legs and drops a failed disk log: a core-log mirror (fixture d)", () => {
  const plan = planMirrorRepair(fixtureB(), "lv_mirror", new Set([PV3]));
  assert.equal(plan.collapsed, false);
  assert.equal(plan.logFailed, true);
  assert.equal(plan.removedLog, "lv_mirror_mlog");
  assert.deepEqual(plan.removedImages, []);
  assert.equal(plan.stages.length, 3);
  const seg = findLv(plan.result, "lv_mirror")!.segments[0]!;
  assert.ok(isMirrorSeg(seg));
  assert.equal(seg.mirrorLog, undefined);
  assert.equal(seg.mirrors.length, 2);
  assert.equal(seg.regionSizeSectors, 1024);
  assert.equal(findLv(plan.result, "lv_mirror_mlog"), undefined);
});

test("planMirrorRepair() removes a mirror none of whose images survived, in one commit", () => {
  const vg = fixtureB();
  // Move leg 0 of lv_corelog onto pv1's neighbour PV2 too: both legs on the missing PV.
  const img0 = findLv(vg, "lv_corelog_mimage_0")!.segments[0] as StripedSegment;
  img0.stripes[0] = { kind: "pv", pvId: PV2, startPe: 12 };
  const plan = planMirrorRepair(vg, "lv_corelog", new Set([PV2]));
  assert.equal(plan.removedLv, true);
  assert.equal(plan.stages.length, 1);
  for (const n of ["lv_corelog", "lv_corelog_mimage_0", "lv_corelog_mimage_1"]) assert.equal(findLv(plan.result, n), undefined);
});

test("planMirrorRepair() of a mirror that lost its primary leg takes over the second leg's extents", () => {
  const plan = planMirrorRepair(fixtureB(), "lv_mirror", new Set([PV1]));
  assert.equal(plan.collapsed, true);
  assert.deepEqual(plan.removedImages, ["lv_mirror_mimage_0"]);
  assert.deepEqual(stripes(plan.result, "lv_mirror"), [[PV2, 0, 8]]);
});

test("planMirrorRepair() of a three-leg mirror with one failed leg leaves a two-leg mirror with its log", () => {
  const vg = fixtureB();
  const third = cloneVg(vg).lvs.find((l) => l.name === "lv_mirror_mimage_1")!;
  third.name = "lv_mirror_mimage_2";
  third.id = "fxmirrlv090000000000000000000009";
  (third.segments[0] as StripedSegment).stripes[0] = { kind: "pv", pvId: PV3, startPe: 4 };
  vg.lvs.push(third);
  const seg = findLv(vg, "lv_mirror")!.segments[0]!;
  assert.ok(isMirrorSeg(seg));
  seg.mirrors.push({ kind: "lv", lvName: "lv_mirror_mimage_2", startLe: 0 });
  assert.deepEqual(validateVg(vg), []);
  const plan = planMirrorRepair(vg, "lv_mirror", new Set([PV2]));
  assert.equal(plan.collapsed, false);
  assert.equal(plan.stages.length, 3, "detach, delete mimage_1, final");
  const after = findLv(plan.result, "lv_mirror")!.segments[0]!;
  assert.ok(isMirrorSeg(after));
  assert.deepEqual(after.mirrors.map((a) => (a.kind === "lv" ? a.lvName : "")), ["lv_mirror_mimage_0", "lv_mirror_mimage_2"]);
  assert.equal(after.mirrorLog, "lv_mirror_mlog");
  assert.equal(lvExtents(findLv(plan.result, "lv_mirror")!), 8);
});

test("planMirrorRepair() leaves a mirror untouched when nothing of it is missing", () => {
  const plan = planMirrorRepair(fixtureB(), "lv_corelog", new Set([PV3]));
  assert.equal(plan.unchanged, true);
  assert.equal(plan.stages.length, 0);
});

test("removeMirrorImages() without removable legs takes them from the end when preferredOnly is false (lvconvert -m0)", () => {
  const r = removeMirrorImages(fixtureB(), "lv_mirror", { count: 1, isRemovable: () => false, preferredOnly: false, removeLog: false });
  assert.equal(r.collapsed, true);
  assert.deepEqual(stripes(r.result, "lv_mirror"), [[PV1, 0, 8]]);
  const none = removeMirrorImages(fixtureB(), "lv_mirror", { count: 1, isRemovable: () => false, preferredOnly: true, removeLog: false });
  assert.equal(none.stages.length, 0);
  assert.equal(findLv(none.result, "lv_mirror")!.segments[0]!.type, "mirror");
});

test("a detached sub-LV inherits the mirror's tags before its deletion commit, as lvm2's _delete_lv does", () => {
  const vg = fixtureB();
  findLv(vg, "lv_mirror")!.tags = ["keep"];
  const plan = planMirrorRepair(vg, "lv_mirror", new Set([PV2]));
  assert.deepEqual(findLv(plan.stages[1]!, "lv_mirror_mimage_1")!.tags, ["keep"]);
  assert.deepEqual(findLv(plan.result, "lv_mirror")!.tags, ["keep"]);
});

test("an image left with an error segment by an interrupted repair can be removed (VgEditor.lvRemove)", () => {
  // A crash between the repair's commits leaves stage 0 on disk: the detached images and log are
  // visible LVs, the emptied leg an "error" segment. Removing them is the way forward.
  const first = planMirrorRepair(fixtureB(), "lv_mirror", new Set([PV2])).stages[0]!;
  const vg = cloneVg(first);
  const ed = new VgEditor(vg, { nowSeconds: 0, hostname: "h", newId: () => "x".repeat(32) });
  for (const n of ["lv_mirror_mimage_0", "lv_mirror_mimage_1", "lv_mirror_mlog"]) ed.lvRemove(findLv(vg, n)!);
  for (const n of ["lv_mirror_mimage_0", "lv_mirror_mimage_1", "lv_mirror_mlog"]) assert.equal(findLv(vg, n), undefined, n);
  assert.deepEqual(stripes(vg, "lv_mirror"), [[PV1, 0, 8]]);
  assert.deepEqual(validateVg(vg), []);
});
