import { test } from "node:test";
import assert from "node:assert/strict";
import { parseUnits } from "../base/units.js";
import { RT, type ReportObject } from "./field-values.js";
import { lvObject, lvReport, MIRROR_VG, TEST_ENV, viewFromText } from "./test-helpers.js";
import type { VgView } from "./vg-view.js";

function lvsRows(v: VgView, fields: string, opts: { all?: boolean; segments?: boolean; env?: ReportObject["env"] } = {}): string[] {
  const r = lvReport(fields, "vg_name,lv_name", {}, undefined, opts.segments ? RT.SEGS : RT.LVS);
  for (const l of v.lvs) {
    if (!opts.all && !l.visible) continue;
    if (opts.segments || r.reportTypes & RT.SEGS) for (const seg of l.segs) r.add({ ...lvObject(v, l.name, opts.env), seg });
    else r.add(lvObject(v, l.name, opts.env));
  }
  return r.outputBasic();
}

test("lvs -a -o +devices: hidden LVs in brackets sorted by bare name, legs as LV areas, PVs by device", () => {
  const v = viewFromText(MIRROR_VG);
  const d = (s: string): string => s.padEnd("mir_mimage_0(0),mir_mimage_1(0)".length);
  assert.deepEqual(lvsRows(v, "lv_name,lv_attr,lv_size,mirror_log,devices", { all: true }), [
    `LV             Attr       LSize Log        ${d("Devices")}`,
    `lin            -wi------- 4.00m            ${d("/dev/fake0(0)")}`,
    "mir            mwi---m--- 8.00m [mir_mlog] mir_mimage_0(0),mir_mimage_1(0)",
    `[mir_mimage_0] Iwi---m--- 8.00m            ${d("/dev/fake0(4)")}`,
    `[mir_mimage_1] Iwi---m--- 8.00m            ${d("/dev/fake1(0)")}`,
    `[mir_mlog]     lwi---m--- 1.00m            ${d("/dev/fake2(0)")}`,
  ]);
});

test("a missing PV shows as [unknown] in devices and PE ranges", () => {
  const v = viewFromText(MIRROR_VG, { missing: [1] });
  const rows = lvsRows(v, "lv_name,devices,seg_pe_ranges", { all: true });
  assert.match(rows[4]!, /\[unknown\]\(0\)\s+\[unknown\]:0-7/);
});

test("segment fields in sectors: type, stripes, region size, start, PE ranges", () => {
  const v = viewFromText(MIRROR_VG);
  const env = { ...TEST_ENV, units: parseUnits("s")! };
  assert.deepEqual(lvsRows(v, "lv_name,segtype,stripes,seg_size,region_size,seg_start_pe,seg_pe_ranges", { segments: true, env }), [
    `LV   Type   #Str SSize  Region Start ${"PE Ranges".padEnd(33)}`,
    `lin  linear    1  8192S     0S     0 ${"/dev/fake0:0-3".padEnd(33)}`,
    "mir  mirror    2 16384S  1024S     0 mir_mimage_0:0-7 mir_mimage_1:0-7",
  ]);
});

test("lv_layout, lv_role and lv_parent of mirror parts", () => {
  const v = viewFromText(MIRROR_VG);
  const rows = lvsRows(v, "lv_name,lv_layout,lv_role,lv_parent", { all: true });
  assert.equal(rows[1], "lin            linear     public                     ");
  assert.equal(rows[2], "mir            mirror     public                     ");
  assert.equal(rows[3], "[mir_mimage_0] linear     private,mirror,image mir   ");
  assert.equal(rows[5], "[mir_mlog]     linear     private,mirror,log   mir   ");
});

test("tags are reported sorted; lv_path and lv_dm_path use the dev dir and dm name escaping", () => {
  const v = viewFromText(MIRROR_VG.replace(/\blin\b/g, "l-in"));
  const r = lvReport("lv_tags,lv_path,lv_dm_path", "lv_name", { headings: false });
  r.add(lvObject(v, "l-in", { ...TEST_ENV, devDir: "/tmp/x/dev/" }));
  assert.deepEqual(r.outputBasic(), ["alpha,zeta /tmp/x/dev/vgm/l-in /tmp/x/dev/mapper/vgm-l--in"]);
});

test("PV segments cover each PV: allocated pieces per LV segment area, free gaps merged", () => {
  const v = viewFromText(MIRROR_VG);
  const pv0 = v.pvs[0]!;
  assert.deepEqual(pv0.segments.map((s) => [s.startPe, s.lengthExtents, s.lvv?.name ?? "free"]), [[0, 4, "lin"], [4, 8, "mir_mimage_0"], [12, 3, "free"]]);
  assert.equal(pv0.allocExtents, 12);
  assert.equal(v.freeExtents, 45 - 12 - 8 - 1);
});

test("vg fields: counts, sizes, attr, metadata areas of present PVs", () => {
  const v = viewFromText(MIRROR_VG, { missing: [2] });
  const r = lvReport("vg_name,pv_count,lv_count,vg_attr,vg_size,vg_free,vg_missing_pv_count,vg_mda_count,vg_seqno", "vg_name", {}, undefined, RT.VGS);
  r.add({ env: TEST_ENV, vgv: v, lvv: undefined, seg: undefined, pvv: undefined, pvseg: undefined });
  assert.deepEqual(r.outputBasic(), [
    "VG  #PV #LV Attr   VSize  VFree  #PV Missing #VMda Seq",
    "vgm   3   2 wz-pn- 45.00m 24.00m           1     2   3",
  ]);
});
