import type { VolumeGroup } from "./types.js";
import { VgEditor, effectivePolicy, type LvEnv } from "./allocate-lv.js";
import type { PvListEntry } from "./allocate-pv-maps.js";
import { isMirrorSeg, isStripedSeg, segAreas } from "./lv-info.js";
import { LvmError } from "../errors/errors.js";

/**
 * Small allocation scenarios with the layouts lvm2 2.03.16 produces for them.
 * The unit tests (allocate.test.ts) run them on the pure model; the
 * integration test test/integration/lv/allocate-cases.test.ts replays each
 * one with the real lvm2 (mirror cases with the mirror oracle) and checks
 * that the expectations below are what lvm2 does, so they are not guesses.
 *
 * A case: PVs given by extent count (4 MiB extents), "filler" LVs f0, f1...
 * placed at fixed extents to shape the free space, then lvcreate/lvextend
 * steps. Expected segments read "LE+count linear pvI:PE",
 * "LE+count striped/N pvI:PE ...", "LE+count mirror/N log=NAME a:0 b:0".
 */
export interface AllocStep {
  cmd: "create" | "extend";
  lv: string;
  /** Logical extents to create or to add. */
  extents: number;
  stripes?: number;
  /** Extra legs (-m). */
  mirrors?: number;
  log?: "core" | "disk";
  policy?: "contiguous" | "cling" | "normal" | "anywhere";
  /** PV arguments: "1" (pv1) or "1:3-7" / "1:3-" ranges. */
  pvs?: string[];
}

export interface AllocCase {
  name: string;
  pvs: number[];
  fill?: Array<[pv: number, start: number, count: number]>;
  steps: AllocStep[];
  /** Expected segments by LV (only the LVs listed are checked), or the error of the last step. */
  expect: Record<string, string[]> | { error: string };
  /** Needs the mirror oracle to check against lvm2. */
  mirror?: boolean;
}

export const ALLOC_CASES: AllocCase[] = [
  { name: "a linear LV starts on the first PV", pvs: [10, 10], steps: [{ cmd: "create", lv: "a", extents: 5 }], expect: { a: ["0+5 linear pv0:0"] } },
  {
    name: "equal candidates keep PV order",
    pvs: [10, 12],
    fill: [[0, 4, 1], [1, 4, 1]],
    steps: [{ cmd: "create", lv: "a", extents: 3 }],
    expect: { a: ["0+3 linear pv0:5"] },
  },
  {
    name: "no area fits: the biggest goes first and the rest clings to its PV",
    pvs: [10, 10],
    fill: [[0, 4, 1], [1, 8, 1]],
    steps: [{ cmd: "create", lv: "a", extents: 9 }],
    expect: { a: ["0+8 linear pv1:0", "8+1 linear pv1:9"] },
  },
  {
    name: "the first PV with a big enough area wins, however big the others are",
    pvs: [10, 20],
    fill: [[0, 6, 4]],
    steps: [{ cmd: "create", lv: "a", extents: 6 }],
    expect: { a: ["0+6 linear pv0:0"] },
  },
  {
    name: "a smaller area after the first one on the same PV",
    pvs: [16],
    fill: [[0, 6, 1], [0, 10, 1]],
    steps: [{ cmd: "create", lv: "a", extents: 4 }],
    expect: { a: ["0+4 linear pv0:0"] },
  },
  {
    name: "the list quirk: a fitting smaller area is skipped after the first is re-sorted",
    pvs: [20],
    fill: [[0, 8, 1], [0, 14, 1]],
    steps: [{ cmd: "create", lv: "a", extents: 5 }],
    expect: { a: ["0+5 linear pv0:0"] },
  },
  {
    name: "stripes go on the first PVs that can hold them whole",
    pvs: [8, 12, 10, 6],
    steps: [{ cmd: "create", lv: "s", extents: 9, stripes: 3 }],
    expect: { s: ["0+9 striped/3 pv0:0 pv1:0 pv2:0"] },
  },
  {
    name: "stripes split when no PV set has room for them whole",
    pvs: [5, 5, 9],
    fill: [[2, 2, 1]],
    steps: [{ cmd: "create", lv: "s", extents: 12, stripes: 2 }],
    expect: { s: ["0+10 striped/2 pv2:3 pv0:0", "10+2 striped/2 pv1:0 pv2:0"] },
  },
  {
    name: "stripes need that many PVs with space",
    pvs: [10, 10],
    fill: [[1, 0, 10]],
    steps: [{ cmd: "create", lv: "s", extents: 4, stripes: 2 }],
    expect: { error: "Insufficient suitable allocatable extents for logical volume s: 4 more required" },
  },
  {
    name: "extending continues right after the last segment",
    pvs: [20, 20],
    steps: [
      { cmd: "create", lv: "a", extents: 5 },
      { cmd: "extend", lv: "a", extents: 4 },
    ],
    expect: { a: ["0+9 linear pv0:0"] },
  },
  {
    name: "extending prefers the LV's own PV when the next extents are taken",
    pvs: [20, 30],
    fill: [[0, 5, 1]],
    steps: [
      { cmd: "create", lv: "a", extents: 5 },
      { cmd: "extend", lv: "a", extents: 4 },
    ],
    expect: { a: ["0+5 linear pv0:0", "5+4 linear pv0:6"] },
  },
  {
    name: "a PV list restricts an extension",
    pvs: [20, 20, 20],
    steps: [
      { cmd: "create", lv: "a", extents: 5 },
      { cmd: "extend", lv: "a", extents: 3, pvs: ["2"] },
    ],
    expect: { a: ["0+5 linear pv0:0", "5+3 linear pv2:0"] },
  },
  {
    name: "a PV range that holds the whole LV beats an earlier, smaller one",
    pvs: [20, 20],
    steps: [{ cmd: "create", lv: "a", extents: 6, pvs: ["1:10-12", "0:4-"] }],
    expect: { a: ["0+6 linear pv0:4"] },
  },
  {
    name: "contiguous: one area or nothing",
    pvs: [10, 10],
    fill: [[0, 5, 1], [1, 5, 1]],
    steps: [{ cmd: "create", lv: "a", extents: 6, policy: "contiguous" }],
    expect: { error: "Insufficient suitable contiguous allocatable extents for logical volume a: 6 more required" },
  },
  {
    name: "contiguous extension must follow on",
    pvs: [20, 20],
    fill: [[0, 5, 1]],
    steps: [
      { cmd: "create", lv: "a", extents: 5 },
      { cmd: "extend", lv: "a", extents: 2, policy: "contiguous" },
    ],
    expect: { error: "Insufficient suitable contiguous allocatable extents for logical volume a: 2 more required" },
  },
  {
    name: "cling: extensions stay on the LV's PVs",
    pvs: [10, 20],
    fill: [[0, 5, 1]],
    steps: [
      { cmd: "create", lv: "a", extents: 5 },
      { cmd: "extend", lv: "a", extents: 6, policy: "cling" },
    ],
    expect: { error: "Insufficient suitable allocatable extents for logical volume a: 2 more required" },
  },
  {
    name: "anywhere: two stripes on one PV",
    pvs: [20],
    fill: [[0, 10, 1]],
    steps: [{ cmd: "create", lv: "s", extents: 8, stripes: 2, policy: "anywhere" }],
    expect: { s: ["0+8 striped/2 pv0:0 pv0:11"] },
  },
  {
    name: "mirror: legs on the first PVs, log on the next",
    pvs: [20, 20, 20],
    mirror: true,
    steps: [{ cmd: "create", lv: "m", extents: 10, mirrors: 1 }],
    expect: { m: ["0+10 mirror/2 log=m_mlog m_mimage_0:0 m_mimage_1:0"], m_mimage_0: ["0+10 linear pv0:0"], m_mimage_1: ["0+10 linear pv1:0"], m_mlog: ["0+1 linear pv2:0"] },
  },
  {
    name: "mirror: the log goes on the last free PV",
    pvs: [20, 20, 20, 20],
    mirror: true,
    steps: [{ cmd: "create", lv: "m", extents: 10, mirrors: 1 }],
    expect: { m_mimage_0: ["0+10 linear pv0:0"], m_mimage_1: ["0+10 linear pv1:0"], m_mlog: ["0+1 linear pv3:0"] },
  },
  {
    name: "mirror on two PVs: the log shares a leg's PV",
    pvs: [20, 20],
    mirror: true,
    steps: [{ cmd: "create", lv: "m", extents: 10, mirrors: 1 }],
    expect: { m_mimage_0: ["0+10 linear pv0:0"], m_mimage_1: ["0+10 linear pv1:0"], m_mlog: ["0+1 linear pv1:10"] },
  },
  {
    name: "mirror with a core log",
    pvs: [20, 20],
    mirror: true,
    steps: [{ cmd: "create", lv: "m", extents: 10, mirrors: 1, log: "core" }],
    expect: { m: ["0+10 mirror/2 log=core m_mimage_0:0 m_mimage_1:0"], m_mimage_0: ["0+10 linear pv0:0"], m_mimage_1: ["0+10 linear pv1:0"] },
  },
  {
    name: "three-way mirror with striped legs",
    pvs: [20, 20, 20, 20, 20, 20, 20],
    mirror: true,
    steps: [{ cmd: "create", lv: "m", extents: 8, mirrors: 2, stripes: 2 }],
    expect: {
      m_mimage_0: ["0+8 striped/2 pv0:0 pv1:0"],
      m_mimage_1: ["0+8 striped/2 pv2:0 pv3:0"],
      m_mimage_2: ["0+8 striped/2 pv4:0 pv5:0"],
      m_mlog: ["0+1 linear pv6:0"],
    },
  },
  {
    name: "mirror extension grows every leg",
    pvs: [20, 20, 20],
    mirror: true,
    steps: [
      { cmd: "create", lv: "m", extents: 6, mirrors: 1 },
      { cmd: "extend", lv: "m", extents: 4 },
    ],
    expect: { m: ["0+10 mirror/2 log=m_mlog m_mimage_0:0 m_mimage_1:0"], m_mimage_0: ["0+10 linear pv0:0"], m_mimage_1: ["0+10 linear pv1:0"], m_mlog: ["0+1 linear pv2:0"] },
  },
  {
    name: "mirror legs follow the PV list",
    pvs: [20, 20, 20, 20],
    mirror: true,
    steps: [{ cmd: "create", lv: "m", extents: 5, mirrors: 1, pvs: ["3", "1", "2"] }],
    expect: { m_mimage_0: ["0+5 linear pv3:0"], m_mimage_1: ["0+5 linear pv1:0"], m_mlog: ["0+1 linear pv2:0"] },
  },
  {
    name: "the seed: 2.8 GiB mirror over three 3 GiB PVs",
    pvs: [767, 767, 767],
    mirror: true,
    steps: [{ cmd: "create", lv: "mirror_test", extents: 717, mirrors: 1, pvs: ["0", "1", "2"] }],
    expect: {
      mirror_test: ["0+717 mirror/2 log=mirror_test_mlog mirror_test_mimage_0:0 mirror_test_mimage_1:0"],
      mirror_test_mimage_0: ["0+717 linear pv0:0"],
      mirror_test_mimage_1: ["0+717 linear pv1:0"],
      mirror_test_mlog: ["0+1 linear pv2:0"],
    },
  },
];

/** One segment in the notation of the cases. */
export function segmentText(vg: VolumeGroup, lvName: string): string[] {
  const lv = vg.lvs.find((l) => l.name === lvName);
  if (!lv) return ["(missing)"];
  const idx = new Map(vg.pvs.map((p, i) => [p.id, i]));
  return lv.segments.map((s) => {
    const areas = segAreas(s)
      .map((a) => (a.kind === "pv" ? `pv${idx.get(a.pvId)}:${a.startPe}` : `${a.lvName}:${a.startLe}`))
      .join(" ");
    if (isStripedSeg(s)) return `${s.startExtent}+${s.extentCount} ${s.stripes.length > 1 ? `striped/${s.stripes.length}` : "linear"} ${areas}`;
    if (isMirrorSeg(s)) return `${s.startExtent}+${s.extentCount} mirror/${s.mirrors.length} log=${s.mirrorLog ?? "core"} ${areas}`;
    return `${s.startExtent}+${s.extentCount} ${s.type} ${areas}`;
  });
}

/** A VG of PVs with these extent counts (4 MiB extents, 1 MiB pe_start) and the case's fillers. */
export function caseVg(c: AllocCase): VolumeGroup {
  const vg: VolumeGroup = {
    name: "vg",
    id: "vgid".padEnd(32, "0"),
    seqno: 1,
    format: "lvm2",
    status: ["RESIZEABLE", "READ", "WRITE"],
    flags: [],
    tags: [],
    systemId: undefined,
    lockType: undefined,
    lockArgs: undefined,
    extentSizeSectors: 8192,
    maxLv: 0,
    maxPv: 0,
    allocationPolicy: undefined,
    profile: undefined,
    metadataCopies: 0,
    pvs: c.pvs.map((n, i) => ({
      id: `pv${i}`.padEnd(32, "x"),
      deviceHint: `/dev/d${i}`,
      deviceIdType: undefined,
      deviceId: undefined,
      status: ["ALLOCATABLE"],
      flags: [],
      tags: [],
      devSizeSectors: 2048 + n * 8192,
      peStartSectors: 2048,
      peCount: n,
      baStartSectors: undefined,
      baSizeSectors: undefined,
    })),
    lvs: [],
    historicalLvs: undefined,
  };
  (c.fill ?? []).forEach(([pv, start, count], i) => {
    vg.lvs.push({
      name: `f${i}`,
      id: `f${i}`.padEnd(32, "0"),
      status: ["READ", "WRITE", "VISIBLE"],
      flags: [],
      tags: [],
      creationTime: 0,
      creationHost: "h",
      lockArgs: undefined,
      allocationPolicy: undefined,
      profile: undefined,
      readAheadSectors: undefined,
      major: undefined,
      minor: undefined,
      segments: [{ type: "striped", startExtent: 0, extentCount: count, tags: [], typeFlags: [], stripeSizeSectors: 0, stripes: [{ kind: "pv", pvId: vg.pvs[pv]!.id, startPe: start }] }],
    });
  });
  return vg;
}

/** The PV list of a step ("1", "1:3-7", "1:3-"), as create_pv_list builds it. */
export function stepPvs(vg: VolumeGroup, specs: readonly string[] | undefined): PvListEntry[] {
  const entry = (i: number): PvListEntry["pv"] => {
    const pv = vg.pvs[i]!;
    return { pvId: pv.id, name: `/dev/d${i}`, peCount: pv.peCount, tags: pv.tags };
  };
  if (!specs) return vg.pvs.map((_, i) => ({ pv: entry(i), ranges: undefined }));
  const out: PvListEntry[] = [];
  for (const s of specs) {
    const m = /^(\d+)(?::(\d+)-(\d*))?$/.exec(s)!;
    const i = Number(m[1]);
    const pe = vg.pvs[i]!.peCount;
    let e = out.find((x) => x.pv.pvId === vg.pvs[i]!.id);
    if (!e) out.push((e = { pv: entry(i), ranges: [] }));
    const start = m[2] === undefined ? 0 : Number(m[2]);
    const end = m[2] === undefined || m[3] === "" ? pe - 1 : Number(m[3]);
    e.ranges!.push({ start, count: end - start + 1 });
  }
  return out;
}

/** Run a case on the model; returns the VG, or the lvm2 message of a failing step. */
export function runCase(c: AllocCase, env: LvEnv = { nowSeconds: 0, hostname: "h", newId: (() => { let n = 0; return () => `id${n++}`.padEnd(32, "0"); })() }): { vg: VolumeGroup; error?: string } {
  const vg = caseVg(c);
  const ed = new VgEditor(vg, env);
  try {
    for (const st of c.steps) {
      const pvs = stepPvs(vg, st.pvs);
      if (st.cmd === "create") {
        const lv = ed.createEmptyLv(st.lv, ["READ", "WRITE", "VISIBLE"], st.policy);
        const mirror = (st.mirrors ?? 0) > 0;
        const policy = effectivePolicy(vg, st.policy);
        ed.lvExtend(lv, {
          pvs,
          policy,
          approx: false,
          segtype: mirror ? "mirror" : "striped",
          stripes: st.stripes ?? 1,
          stripeSizeSectors: (st.stripes ?? 1) > 1 ? 128 : 0,
          mirrors: mirror ? st.mirrors! + 1 : 1,
          regionSizeSectors: mirror ? Math.min(4096, 2 ** Math.floor(Math.log2(st.extents * 8192))) : 0,
          extents: st.extents,
        });
        if (mirror && st.log !== "core") {
          const seg = lv.segments[0]!;
          const log = ed.createMirrorLog(lv, 1, isMirrorSeg(seg) ? seg.regionSizeSectors : 4096, { pvs, policy, approx: false });
          ed.attachMirrorLog(lv, log);
        }
      } else {
        const lv = ed.lv(st.lv)!;
        const last = lv.segments[lv.segments.length - 1]!;
        const mirror = isMirrorSeg(last);
        const first = lv.segments[0]!;
        ed.lvExtend(lv, {
          pvs,
          policy: effectivePolicy(vg, st.policy ?? lv.allocationPolicy),
          approx: false,
          segtype: mirror ? "mirror" : "striped",
          stripes: st.stripes ?? 1,
          stripeSizeSectors: (st.stripes ?? 1) > 1 ? 128 : 0,
          mirrors: mirror && isMirrorSeg(first) ? first.mirrors.length : 1,
          regionSizeSectors: isMirrorSeg(first) ? first.regionSizeSectors : 0,
          extents: st.extents,
        });
      }
    }
  } catch (e) {
    if (e instanceof LvmError) return { vg, error: e.message };
    throw e;
  }
  return { vg };
}
