/**
 * The building block lvconvert needs, VgEditor.addMirrorImages (lvm2's
 * add_mirror_images: linear → mirror, new legs away from the LV's PVs, the
 * log allocated with them), against what lvm2's own
 *   lvconvert --type mirror -mN VG/LV [PV...]
 * writes (mirror oracle). Layouts and LV order must agree. This is the
 * seed's step 7 ("lvconvert -m1 mirror_test sdb1 sdb4 sdb3") and variants.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { Lab, type RunResult } from "../../helpers/lab.js";
import { DeviceScan } from "../../../src/commands/scan.js";
import { listNamedDevices } from "../../../src/commands/device-list.js";
import { loadVg } from "../../../src/commands/vg-store.js";
import { VgEditor } from "../../../src/model/allocate-lv.js";
import { segmentText } from "../../../src/model/allocate-cases.js";
import type { PvListEntry } from "../../../src/model/allocate-pv-maps.js";
import type { VolumeGroup } from "../../../src/model/types.js";
import { ORACLE, oracleUnavailable } from "./lv-diff.js";

function oracle(lab: Lab, args: string[]): RunResult {
  const env = { ...lab.env, LVM_SYSTEM_DIR: lab.lvmDir, LVM_SUPPRESS_FD_WARNINGS: "1", ULVM_ORACLE_MIRROR: "1" };
  const r = spawnSync(ORACLE, args, { env, encoding: "utf8" });
  return { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

async function readVg(devs: string[]): Promise<VolumeGroup> {
  const scan = await DeviceScan.run(listNamedDevices(devs));
  return loadVg(scan, "vg")!.vg;
}

function layout(vg: VolumeGroup): string[] {
  return vg.lvs.flatMap((l) => [
    `${l.name} [${l.status.join(",")}]${l.allocationPolicy ? " " + l.allocationPolicy : ""}`,
    ...segmentText(vg, l.name).map((s) => "  " + s),
    ...l.segments.map((s) => ("regionSizeSectors" in s ? `  region ${s.regionSizeSectors}` : "")).filter((x) => x),
  ]);
}

interface Case {
  name: string;
  sizes: number[];
  vgDisks: number[];
  lvExtents: number;
  lvPvs: number[];
  mirrors: number;
  convertPvs: number[] | undefined;
  corelog?: boolean;
}

const CASES: Case[] = [
  { name: "the seed's rebuild: new leg on the spare, log on sdb3", sizes: [100, 100, 100, 100], vgDisks: [0, 2, 3], lvExtents: 20, lvPvs: [0], mirrors: 1, convertPvs: [0, 3, 2] },
  { name: "no PV list: the leg and the log avoid the LV's PV", sizes: [100, 60, 80, 100], vgDisks: [0, 1, 2, 3], lvExtents: 10, lvPvs: [1], mirrors: 1, convertPvs: undefined },
  { name: "two new legs", sizes: [100, 100, 100, 100], vgDisks: [0, 1, 2, 3], lvExtents: 12, lvPvs: [2], mirrors: 2, convertPvs: undefined },
  { name: "a two-segment LV", sizes: [40, 40, 100, 100], vgDisks: [0, 1, 2, 3], lvExtents: 14, lvPvs: [0, 1], mirrors: 1, convertPvs: undefined },
  { name: "core log", sizes: [100, 100, 100], vgDisks: [0, 1, 2], lvExtents: 10, lvPvs: [0], mirrors: 1, convertPvs: undefined, corelog: true },
];

for (const c of CASES) {
  test(`addMirrorImages matches lvm2's lvconvert: ${c.name}`, { skip: oracleUnavailable() }, async () => {
    const lab = new Lab("ulvm-addimg-");
    try {
      c.sizes.forEach((s, i) => lab.addDisk(`d${i}`, s));
      const loops = lab.attachLoops();
      const dev = (i: number): string => loops.get(`d${i}`)!;
      const must = (args: string[]): void => {
        const r = oracle(lab, args);
        assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      };
      must(["pvcreate", ...c.sizes.map((_, i) => dev(i))]);
      must(["vgcreate", "vg", ...c.vgDisks.map(dev)]);
      must(["lvcreate", "-l", String(c.lvExtents), "-n", "lv", "vg", ...c.lvPvs.map(dev)]);
      const devs = c.vgDisks.map(dev);
      const before = await readVg(devs);
      must(["lvconvert", "-y", "--type", "mirror", "-m", String(c.mirrors), ...(c.corelog ? ["--mirrorlog", "core"] : []), "vg/lv", ...(c.convertPvs ?? []).map(dev)]);
      const after = await readVg(devs);

      const ed = new VgEditor(before, { nowSeconds: 0, hostname: "h", newId: () => "x".repeat(32) });
      const entry = (i: number): PvListEntry => {
        const pv = before.pvs[c.vgDisks.indexOf(i)]!;
        return { pv: { pvId: pv.id, name: dev(i), peCount: pv.peCount, tags: [] }, ranges: undefined };
      };
      const pvs = c.convertPvs ? c.convertPvs.map(entry) : c.vgDisks.map(entry);
      const lv = ed.lv("lv")!;
      const { log } = ed.addMirrorImages(lv, { pvs, policy: "normal", approx: false, mirrors: c.mirrors, stripes: 1, stripeSizeSectors: 0, regionSizeSectors: 4096, logCount: c.corelog ? 0 : 1 });
      if (log) ed.attachMirrorLog(lv, log);
      assert.deepEqual(layout(before), layout(after));
    } finally {
      lab.cleanup();
    }
  });
}
