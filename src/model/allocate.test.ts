import { test } from "node:test";
import assert from "node:assert/strict";
import { ALLOC_CASES, caseVg, runCase, segmentText, stepPvs } from "./allocate-cases.js";
import { allocateExtents, buildParallelAreas, forEachPv, LvIndex, mirrorLogExtents } from "./allocate.js";
import { PvArea, PvMap, consumePvArea, createPvMaps, pvMapsSize, reinsertChangedPvArea, vgFreeRuns } from "./allocate-pv-maps.js";
import { VgEditor, effectivePolicy, mergeSegments } from "./allocate-lv.js";
import { validateVg } from "./validate.js";
import { isMirrorSeg } from "./lv-info.js";
import { AllocationError } from "../errors/errors.js";
import type { LogicalVolume, VolumeGroup } from "./types.js";

/** Deterministic environment for new LVs. */
function env(): { nowSeconds: number; hostname: string; newId: () => string } {
  let n = 0;
  return { nowSeconds: 1700000000, hostname: "host", newId: () => `id${n++}`.padEnd(32, "0") };
}

// ---- the lvm2-checked scenarios -------------------------------------------------

for (const c of ALLOC_CASES) {
  test(`allocator: ${c.name}`, () => {
    const r = runCase(c);
    if ("error" in c.expect) {
      assert.equal(r.error, c.expect.error);
      return;
    }
    assert.equal(r.error, undefined, `unexpected error: ${r.error}`);
    for (const [lv, segs] of Object.entries(c.expect)) assert.deepEqual(segmentText(r.vg, lv), segs, `segments of ${lv}`);
    assert.deepEqual(validateVg(r.vg), [], "the result is valid metadata");
  });
}

// ---- PV maps: lvm2's list discipline ----------------------------------------------

function areaList(m: PvMap): string {
  return m.areas().map((a) => `${a.start}+${a.count}`).join(" ");
}

test("PvMap keeps areas largest first, equal sizes in arrival order", () => {
  const m = new PvMap({ pvId: "p", name: "p", peCount: 100, tags: [] });
  for (const [s, c] of [[0, 5], [10, 9], [30, 5], [50, 9]] as const) m.insert(new PvArea(m, s, c, c), false);
  assert.equal(areaList(m), "10+9 50+9 0+5 30+5");
  assert.equal(m.peCount, 28);
});

test("reinsertChangedPvArea sorts by what is left unreserved but compares with the others' full size", () => {
  const m = new PvMap({ pvId: "p", name: "p", peCount: 100, tags: [] });
  const a = new PvArea(m, 0, 10, 10);
  const b = new PvArea(m, 20, 6, 6);
  m.insert(a, false);
  m.insert(b, false);
  a.unreserved = 6; // equal to b's count: goes after it
  reinsertChangedPvArea(a);
  assert.equal(areaList(m), "20+6 0+10");
  assert.equal(m.peCount, 16, "reinsertion keeps the free count");
});

test("consumePvArea takes extents from the front and re-sorts the rest", () => {
  const m = new PvMap({ pvId: "p", name: "p", peCount: 100, tags: [] });
  const a = new PvArea(m, 0, 10, 10);
  const b = new PvArea(m, 20, 6, 6);
  m.insert(a, false);
  m.insert(b, false);
  consumePvArea(a, 7);
  assert.equal(areaList(m), "20+6 7+3");
  assert.equal(pvMapsSize([m]), 9);
  consumePvArea(b, 6);
  assert.equal(areaList(m), "7+3");
});

test("vgFreeRuns lists maximal free runs per PV", () => {
  const vg = caseVg({ name: "", pvs: [10, 4], fill: [[0, 2, 3], [0, 5, 1], [1, 0, 4]], steps: [], expect: {} });
  const runs = vgFreeRuns(vg);
  assert.deepEqual(runs.get(vg.pvs[0]!.id), [
    { start: 0, count: 2 },
    { start: 6, count: 4 },
  ]);
  assert.deepEqual(runs.get(vg.pvs[1]!.id), []);
});

test("createPvMaps intersects PV ranges with free space, one map per PV", () => {
  const vg = caseVg({ name: "", pvs: [20, 20], fill: [[0, 5, 5]], steps: [], expect: {} });
  const maps = createPvMaps(stepPvs(vg, ["0:3-12", "1:0-1", "0:15-"]), vgFreeRuns(vg));
  assert.equal(maps.length, 2);
  assert.equal(areaList(maps[0]!), "15+5 10+3 3+2");
  assert.equal(areaList(maps[1]!), "0+2");
});

// ---- helpers the allocator uses ------------------------------------------------------

test("mirrorLogExtents: one extent for ordinary mirrors, more for huge ones with tiny extents", () => {
  assert.equal(mirrorLogExtents(4096, 8192, 717), 1);
  assert.equal(mirrorLogExtents(1024, 2, 10), 2, "1 KiB header + 4-byte bitmap = 3 sectors, in 1 KiB extents");
  // 2 regions per extent of 1 sector: 1 Mi regions → 128 KiB bitmap → 257 KiB of log.
  assert.equal(mirrorLogExtents(2, 1, 2 * 1024 * 1024), 2 + 256);
});

test("forEachPv looks at the one segment at the LE asked, through mirror images, with area indexes", () => {
  const r = runCase({ name: "", pvs: [10, 10, 10], steps: [{ cmd: "create", lv: "m", extents: 4, mirrors: 1 }], expect: {} });
  const idx = new LvIndex(r.vg);
  const seen: string[] = [];
  forEachPv(idx, idx.get("m")!, 0, 4, undefined, undefined, 0, 0, -1, false, (peg, s) => {
    seen.push(`${s}:${r.vg.pvs.findIndex((p) => p.id === peg.pvId)}:${peg.pe}+${peg.len}`);
    return 1;
  });
  assert.deepEqual(seen, ["0:0:0+4", "1:1:0+4", "0:2:0+1"], "legs by index, then the log (index restarts at 0)");
});

test("buildParallelAreas: one entry per segment run, with every PV the LV uses there", () => {
  const r = runCase({
    name: "",
    pvs: [5, 5],
    steps: [{ cmd: "create", lv: "a", extents: 8 }],
    expect: {},
  });
  const areas = buildParallelAreas(r.vg, r.vg.lvs.find((l) => l.name === "a")!);
  const id = (i: number): string => r.vg.pvs[i]!.id;
  assert.deepEqual(areas, [
    { le: 0, len: 5, pvIds: [id(0)] },
    { le: 5, len: 3, pvIds: [id(1)] },
  ]);
});

test("allocateExtents reports lvm2's shortage message before trying", () => {
  const vg = caseVg({ name: "", pvs: [5, 5], steps: [], expect: {} });
  assert.throws(
    () => allocateExtents({ vg, lv: undefined, segtype: "striped", stripes: 1, mirrors: 1, logCount: 0, regionSizeSectors: 0, extents: 11, pvs: stepPvs(vg, undefined), policy: "normal", approx: false, parallelAreas: undefined }),
    (e: unknown) => e instanceof AllocationError && e.message === "Insufficient free space: 11 extents needed, but only 10 available",
  );
});

test("approximate allocations take what there is", () => {
  const vg = caseVg({ name: "", pvs: [5, 5], fill: [[0, 0, 2]], steps: [], expect: {} });
  const ed = new VgEditor(vg, env());
  const lv = ed.createEmptyLv("a", ["READ", "WRITE", "VISIBLE"], undefined);
  const got = ed.lvExtend(lv, { pvs: stepPvs(vg, undefined), policy: "normal", approx: true, segtype: "striped", stripes: 1, stripeSizeSectors: 0, mirrors: 1, regionSizeSectors: 0, extents: 100 });
  assert.equal(got, 8);
  assert.deepEqual(segmentText(vg, "a"), ["0+5 linear pv1:0", "5+3 linear pv0:2"]);
});

test("a striped request must divide by its stripes", () => {
  const vg = caseVg({ name: "", pvs: [10, 10], steps: [], expect: {} });
  assert.throws(
    () => allocateExtents({ vg, lv: undefined, segtype: "striped", stripes: 2, mirrors: 1, logCount: 0, regionSizeSectors: 0, extents: 5, pvs: stepPvs(vg, undefined), policy: "normal", approx: false, parallelAreas: undefined }),
    /Number of extents requested \(5\) needs to be divisible by 2\./,
  );
});

test("with mirror_logs_require_separate_pvs a 2-PV mirror has nowhere for its log", () => {
  // The extra pass that lets a log share a leg's PV is off, so the log-only allocation fails.
  const vg = caseVg({ name: "", pvs: [20, 20], steps: [], expect: {} });
  const ed = new VgEditor(vg, { ...env(), config: { maximiseCling: true, mirrorLogsRequireSeparatePvs: true, clingTagList: undefined } });
  const lv = ed.createEmptyLv("m", ["READ", "WRITE", "VISIBLE"], undefined);
  ed.lvExtend(lv, { pvs: stepPvs(vg, undefined), policy: "normal", approx: false, segtype: "mirror", stripes: 1, stripeSizeSectors: 0, mirrors: 2, regionSizeSectors: 4096, extents: 5 });
  assert.throws(
    () => ed.createMirrorLog(lv, 1, 4096, { pvs: stepPvs(vg, undefined), policy: "normal", approx: false }),
    (e: unknown) => e instanceof AllocationError && e.message === "Insufficient free space for log allocation for logical volume .\nUnable to allocate extents for mirror log.",
  );
});

test("cling_tag_list: an extension clings to PVs sharing a tag", () => {
  const vg = caseVg({ name: "", pvs: [6, 20, 20], steps: [], expect: {} });
  vg.pvs[0]!.tags = ["site1"];
  vg.pvs[1]!.tags = ["site2"];
  vg.pvs[2]!.tags = ["site1"];
  const ed = new VgEditor(vg, { ...env(), config: { maximiseCling: true, mirrorLogsRequireSeparatePvs: false, clingTagList: ["@site1", "@site2"] } });
  const lv = ed.createEmptyLv("a", ["READ", "WRITE", "VISIBLE"], undefined);
  const pvs = stepPvs(vg, undefined);
  ed.lvExtend(lv, { pvs, policy: "normal", approx: false, segtype: "striped", stripes: 1, stripeSizeSectors: 0, mirrors: 1, regionSizeSectors: 0, extents: 6 });
  ed.lvExtend(lv, { pvs, policy: "cling", approx: false, segtype: "striped", stripes: 1, stripeSizeSectors: 0, mirrors: 1, regionSizeSectors: 0, extents: 4 });
  assert.deepEqual(segmentText(vg, "a"), ["0+6 linear pv0:0", "6+4 linear pv2:0"], "site1's other PV, not the first PV with space");
});

// ---- building LVs -------------------------------------------------------------------

test("effectivePolicy: the LV's own policy, else the VG's, else normal", () => {
  const vg = caseVg({ name: "", pvs: [1], steps: [], expect: {} });
  assert.equal(effectivePolicy(vg, undefined), "normal");
  assert.equal(effectivePolicy(vg, "inherit"), "normal");
  vg.allocationPolicy = "cling";
  assert.equal(effectivePolicy(vg, undefined), "cling");
  assert.equal(effectivePolicy(vg, "anywhere"), "anywhere");
});

test("generateLvName numbers past the highest lvol in use, as sscanf reads them", () => {
  const vg = caseVg({ name: "", pvs: [10], steps: [], expect: {} });
  const ed = new VgEditor(vg, env());
  assert.equal(ed.generateLvName("lvol%d"), "lvol0");
  for (const n of ["lvol3", "lvol1_mimage_0", "lvolx", "lvol007a"]) ed.createEmptyLv(n, ["READ"], undefined);
  assert.equal(ed.generateLvName("lvol%d"), "lvol8");
});

test("createEmptyLv refuses a name in use", () => {
  const vg = caseVg({ name: "", pvs: [10], steps: [], expect: {} });
  const ed = new VgEditor(vg, env());
  ed.createEmptyLv("a", ["READ"], undefined);
  assert.throws(() => ed.createEmptyLv("a", ["READ"], undefined), /Unable to create LV a in Volume Group vg: name already in use\./);
});

test("mirror creation order and flags: parent, images, log; sub-LVs hidden", () => {
  const r = runCase({ name: "", pvs: [10, 10, 10], steps: [{ cmd: "create", lv: "m", extents: 4, mirrors: 1 }], expect: {} });
  assert.deepEqual(r.vg.lvs.map((l) => `${l.name}:${l.status.join(",")}`), ["m:READ,WRITE,VISIBLE", "m_mimage_0:READ,WRITE", "m_mimage_1:READ,WRITE", "m_mlog:READ,WRITE"]);
  const seg = r.vg.lvs[0]!.segments[0]!;
  assert.ok(isMirrorSeg(seg));
  assert.equal(seg.regionSizeSectors, 4096);
});

test("lvReduce of a mirror shortens every leg and keeps the log", () => {
  const r = runCase({ name: "", pvs: [10, 10, 10], steps: [{ cmd: "create", lv: "m", extents: 6, mirrors: 1 }], expect: {} });
  const ed = new VgEditor(r.vg, env());
  ed.lvReduce(ed.lv("m")!, 2);
  assert.deepEqual(segmentText(r.vg, "m"), ["0+4 mirror/2 log=m_mlog m_mimage_0:0 m_mimage_1:0"]);
  assert.deepEqual(segmentText(r.vg, "m_mimage_1"), ["0+4 linear pv1:0"]);
  assert.deepEqual(segmentText(r.vg, "m_mlog"), ["0+1 linear pv2:0"]);
  assert.deepEqual(validateVg(r.vg), []);
});

test("lvRemove of a mirror takes its images and log with it", () => {
  const r = runCase({ name: "", pvs: [10, 10, 10], steps: [{ cmd: "create", lv: "m", extents: 6, mirrors: 1 }, { cmd: "create", lv: "b", extents: 2 }], expect: {} });
  const ed = new VgEditor(r.vg, env());
  ed.lvRemove(ed.lv("m")!);
  assert.deepEqual(r.vg.lvs.map((l) => l.name), ["b"]);
  assert.deepEqual(vgFreeRuns(r.vg).get(r.vg.pvs[1]!.id), [{ start: 0, count: 10 }]);
});

test("lvReduce frees a striped LV's tail on every stripe and refuses uneven cuts", () => {
  const r = runCase({ name: "", pvs: [10, 10], steps: [{ cmd: "create", lv: "s", extents: 8, stripes: 2 }], expect: {} });
  const ed = new VgEditor(r.vg, env());
  assert.throws(() => ed.lvReduce(ed.lv("s")!, 3), /Segment extent reduction 3 not divisible by #stripes 2/);
  ed.lvReduce(ed.lv("s")!, 2);
  assert.deepEqual(segmentText(r.vg, "s"), ["0+6 striped/2 pv0:0 pv1:0"]);
});

test("lvRename renames sub-LVs and every reference to them", () => {
  const r = runCase({ name: "", pvs: [10, 10, 10], steps: [{ cmd: "create", lv: "m", extents: 3, mirrors: 1 }], expect: {} });
  const ed = new VgEditor(r.vg, env());
  ed.lvRename(ed.lv("m")!, "data");
  assert.deepEqual(r.vg.lvs.map((l) => l.name), ["data", "data_mimage_0", "data_mimage_1", "data_mlog"]);
  assert.deepEqual(segmentText(r.vg, "data"), ["0+3 mirror/2 log=data_mlog data_mimage_0:0 data_mimage_1:0"]);
  assert.deepEqual(validateVg(r.vg), []);
  assert.ok(ed.lv("data_mlog"), "the name index follows");
  assert.equal(ed.lv("m_mlog"), undefined);
});

test("lvRename refuses names in use, for the LV and for its sub-LVs", () => {
  const r = runCase({ name: "", pvs: [10, 10, 10], steps: [{ cmd: "create", lv: "m", extents: 2, mirrors: 1 }, { cmd: "create", lv: "x", extents: 1 }], expect: {} });
  const ed = new VgEditor(r.vg, env());
  assert.throws(() => ed.lvRename(ed.lv("m")!, "x"), /Logical Volume "x" already exists in volume group "vg"/);
  ed.createEmptyLv("y_mlog", ["READ"], undefined);
  assert.throws(() => ed.lvRename(ed.lv("m")!, "y"), /Logical Volume "y_mlog" already exists/);
  assert.ok(ed.lv("m_mimage_0"), "nothing renamed after a refusal");
});

test("mergeSegments joins neighbours that continue each other on every stripe", () => {
  const lv = {
    segments: [
      { type: "striped", startExtent: 0, extentCount: 4, tags: [], typeFlags: [], stripeSizeSectors: 128, stripes: [{ kind: "pv", pvId: "a", startPe: 0 }, { kind: "pv", pvId: "b", startPe: 5 }] },
      { type: "striped", startExtent: 4, extentCount: 2, tags: [], typeFlags: [], stripeSizeSectors: 128, stripes: [{ kind: "pv", pvId: "a", startPe: 2 }, { kind: "pv", pvId: "b", startPe: 7 }] },
      { type: "striped", startExtent: 6, extentCount: 2, tags: [], typeFlags: [], stripeSizeSectors: 128, stripes: [{ kind: "pv", pvId: "a", startPe: 9 }, { kind: "pv", pvId: "b", startPe: 8 }] },
    ],
  } as unknown as LogicalVolume;
  mergeSegments(lv);
  assert.deepEqual(lv.segments.map((s) => `${s.startExtent}+${s.extentCount}`), ["0+6", "6+2"]);
});

test("addMirrorImages: the seed's lvconvert -m1 puts the new leg on the spare and the log on sdb3", () => {
  // After the failed leg was removed the mirror became linear on sdb1 (pv0); sdb4 (pv3) joined the VG.
  const vg: VolumeGroup = caseVg({ name: "", pvs: [767, 767, 767, 767], steps: [], expect: {} });
  const ed = new VgEditor(vg, env());
  const lv = ed.createEmptyLv("mirror_test", ["READ", "WRITE", "VISIBLE"], undefined);
  lv.segments.push({ type: "striped", startExtent: 0, extentCount: 717, tags: [], typeFlags: [], stripeSizeSectors: 0, stripes: [{ kind: "pv", pvId: vg.pvs[0]!.id, startPe: 0 }] });
  vg.pvs.splice(1, 1); // sdb2 is gone
  const pvs = stepPvs(vg, ["0", "2", "1"]); // sdb1 sdb4 sdb3
  const { images, log } = ed.addMirrorImages(lv, { pvs, policy: "normal", approx: false, mirrors: 1, stripes: 1, stripeSizeSectors: 0, regionSizeSectors: 4096, logCount: 1 });
  assert.deepEqual(images.map((i) => i.name), ["mirror_test_mimage_1"]);
  assert.ok(log);
  ed.attachMirrorLog(lv, log);
  assert.deepEqual(segmentText(vg, "mirror_test"), ["0+717 mirror/2 log=mirror_test_mlog mirror_test_mimage_0:0 mirror_test_mimage_1:0"]);
  assert.deepEqual(segmentText(vg, "mirror_test_mimage_0"), ["0+717 linear pv0:0"], "the old extents become leg 0");
  assert.deepEqual(segmentText(vg, "mirror_test_mimage_1"), ["0+717 linear pv2:0"], "sdb4");
  assert.deepEqual(segmentText(vg, "mirror_test_mlog"), ["0+1 linear pv1:0"], "sdb3");
  assert.deepEqual(validateVg(vg), []);
});
