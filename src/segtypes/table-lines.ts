import type { TableLine } from "../mapper/table.js";
import type { Area, LogicalVolume, Segment, VolumeGroup } from "../model/types.js";
import { findLv, isMirrorSeg, isStripedSeg } from "../model/lv-info.js";
import { dmName } from "./dm-names.js";

/**
 * The table lines an LV activates to, one per segment, as lvm2's
 * add_target_line handlers build them (lib/striped/striped.c,
 * lib/mirror/mirrored.c): linear/striped lines point at PV devices with
 * sector offsets pe_start + pe * extent_size; mirror lines point at the
 * images' and log's own mapped devices (activated first).
 */
export interface TableEnv {
  /** The device name tables use for a PV, or undefined when the PV is missing. */
  pvDevice(pvId: string): string | undefined;
  /** Activation with missing PVs: map their areas to the error target instead of failing. */
  partial: boolean;
  /** Ask mirrors to hold writes that failed on a leg until the daemon handled it. */
  handleErrors: boolean;
}

export class MissingDeviceError extends Error {
  constructor(readonly pvId: string, readonly lvName: string) {
    super(`LV ${lvName} uses a missing PV`);
  }
}

function pvOffset(vg: VolumeGroup, a: Area & { kind: "pv" }, env: TableEnv, lvName: string): { dev: string; offsetSectors: number } | undefined {
  const pv = vg.pvs.find((p) => p.id === a.pvId);
  const dev = env.pvDevice(a.pvId);
  if (!pv || dev === undefined) {
    if (env.partial) return undefined;
    throw new MissingDeviceError(a.pvId, lvName);
  }
  return { dev, offsetSectors: pv.peStartSectors + a.startPe * vg.extentSizeSectors };
}

function segmentLine(vg: VolumeGroup, lv: LogicalVolume, seg: Segment, env: TableEnv): TableLine {
  const E = vg.extentSizeSectors;
  const startSector = seg.startExtent * E;
  const lengthSectors = seg.extentCount * E;
  if (isStripedSeg(seg)) {
    if (seg.stripes.length === 1) {
      const a = seg.stripes[0]!;
      if (a.kind === "lv") return { startSector, lengthSectors, targetType: "linear", args: [dmName(vg.name, a.lvName), String(a.startLe * E)] };
      const o = pvOffset(vg, a, env, lv.name);
      if (!o) return { startSector, lengthSectors, targetType: "error", args: [] };
      return { startSector, lengthSectors, targetType: "linear", args: [o.dev, String(o.offsetSectors)] };
    }
    const args = [String(seg.stripes.length), String(seg.stripeSizeSectors)];
    for (const a of seg.stripes) {
      if (a.kind === "lv") {
        args.push(dmName(vg.name, a.lvName), String(a.startLe * E));
        continue;
      }
      const o = pvOffset(vg, a, env, lv.name);
      if (!o) return { startSector, lengthSectors, targetType: "error", args: [] };
      args.push(o.dev, String(o.offsetSectors));
    }
    return { startSector, lengthSectors, targetType: "striped", args };
  }
  if (isMirrorSeg(seg)) {
    if (seg.mirrors.length === 1) {
      // A mirror reduced to one image (during conversion) maps straight to it.
      const a = seg.mirrors[0]!;
      if (a.kind === "lv") return { startSector, lengthSectors, targetType: "linear", args: [dmName(vg.name, a.lvName), String(a.startLe * E)] };
    }
    const region = String(seg.regionSizeSectors);
    const args: string[] = seg.mirrorLog !== undefined ? ["disk", "2", dmName(vg.name, seg.mirrorLog), region] : ["core", "1", region];
    args.push(String(seg.mirrors.length));
    for (const a of seg.mirrors) {
      if (a.kind === "lv") args.push(dmName(vg.name, a.lvName), String(a.startLe * E));
      else {
        const o = pvOffset(vg, a, env, lv.name);
        args.push(o ? o.dev : "error", String(o ? o.offsetSectors : 0));
      }
    }
    if (env.handleErrors) args.push("1", "handle_errors");
    return { startSector, lengthSectors, targetType: "mirror", args };
  }
  throw new UnsupportedSegmentError(seg.type, lv.name);
}

export class UnsupportedSegmentError extends Error {
  constructor(readonly segType: string, readonly lvName: string) {
    super(`Can't activate LV ${lvName}: segment type ${segType} is not supported by ulvm.`);
  }
}

export function lvTableLines(vg: VolumeGroup, lv: LogicalVolume, env: TableEnv): TableLine[] {
  return lv.segments.map((s) => segmentLine(vg, lv, s, env));
}

/** LV names a segment's table refers to (its images and log), which must be active first. */
export function lvDependencies(vg: VolumeGroup, lv: LogicalVolume): string[] {
  const out: string[] = [];
  for (const s of lv.segments) {
    if (isStripedSeg(s)) for (const a of s.stripes) if (a.kind === "lv") out.push(a.lvName);
    if (isMirrorSeg(s)) {
      for (const a of s.mirrors) if (a.kind === "lv") out.push(a.lvName);
      if (s.mirrorLog !== undefined) out.push(s.mirrorLog);
    }
  }
  return out.filter((n, i) => out.indexOf(n) === i && findLv(vg, n) !== undefined);
}
