import { test } from "node:test";
import assert from "node:assert/strict";
import { readFixture } from "../../test/helpers/fixtures.js";
import { parseVgText } from "../format/vg-import.js";
import { findLv, isMirrorSeg } from "./lv-info.js";
import { validateVg } from "./validate.js";
import { planRestoredLegs } from "./restored-legs.js";
import type { MirrorSegment, VolumeGroup } from "./types.js";

/** Fixture b: lv_mirror (legs on pv1 and pv2, disk log on pv3), lv_corelog (pv1, pv2), lv_lin on pv2. */
function fixtureB(): VolumeGroup {
  return parseVgText(readFixture("b-mirror", "vgcfgbackup.vg")).vg;
}
const PV1 = "fxmirrpv010000000000000000000001";
const PV2 = "fxmirrpv020000000000000000000002";

function legs(vg: VolumeGroup, lv: string): string[] {
  const seg = findLv(vg, lv)!.segments.find(isMirrorSeg) as MirrorSegment;
  return seg.mirrors.map((a) => (a.kind === "lv" ? a.lvName : a.pvId));
}

test("planRestoredLegs(): a restored PV under the first image makes the image that stayed the first (resync source)", () => {
  // Found by the torture suite (leg-faults, vanish-primary-returns): the first leg failed, writes went
  // on to the second, the PV came back with --restoremissing, and the next activation served and
  // copied the stale first leg, whose regions the log still called clean.
  const vg = fixtureB();
  const plan = planRestoredLegs(vg, new Set([PV1]), new Set());
  assert.deepEqual(legs(plan.vg, "lv_mirror"), ["lv_mirror_mimage_1", "lv_mirror_mimage_0"]);
  assert.deepEqual(legs(plan.vg, "lv_corelog"), ["lv_corelog_mimage_1", "lv_corelog_mimage_0"]);
  assert.deepEqual(
    plan.mirrors.map((m) => [m.lvName, m.logName, m.staleImages, m.newPrimary]),
    [
      ["lv_mirror", "lv_mirror_mlog", ["lv_mirror_mimage_0"], "lv_mirror_mimage_1"],
      ["lv_corelog", undefined, ["lv_corelog_mimage_0"], "lv_corelog_mimage_1"],
    ],
  );
  assert.deepEqual(validateVg(plan.vg), []);
  assert.deepEqual(legs(vg, "lv_mirror"), ["lv_mirror_mimage_0", "lv_mirror_mimage_1"], "the input is not modified");
});

test("planRestoredLegs(): a restored PV under a later image keeps the order but still asks for a full resync", () => {
  const plan = planRestoredLegs(fixtureB(), new Set([PV2]), new Set());
  assert.deepEqual(legs(plan.vg, "lv_mirror"), ["lv_mirror_mimage_0", "lv_mirror_mimage_1"]);
  assert.deepEqual(plan.mirrors.map((m) => [m.lvName, m.staleImages, m.newPrimary]), [
    ["lv_mirror", ["lv_mirror_mimage_1"], undefined],
    ["lv_corelog", ["lv_corelog_mimage_1"], undefined],
  ]);
});

test("planRestoredLegs(): no current image (every leg was away) leaves the order alone", () => {
  const plan = planRestoredLegs(fixtureB(), new Set([PV1]), new Set([PV2]));
  assert.deepEqual(legs(plan.vg, "lv_mirror"), ["lv_mirror_mimage_0", "lv_mirror_mimage_1"]);
  assert.equal(plan.mirrors[0]!.newPrimary, undefined);
});
