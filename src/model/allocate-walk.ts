import type { LogicalVolume, Segment, VolumeGroup } from "./types.js";
import { isMirrorSeg, isRaidSeg, isStripedSeg, segAreaExtents, segAreas } from "./lv-info.js";
import { AllocationError } from "../errors/errors.js";

/**
 * Walking LVs the way lv_manip.c does for the allocator: name lookups,
 * the segment at an LE, _for_each_pv (PV pieces of one segment, through
 * mirror images and logs, with parallel area indexes), the PVs an LV uses
 * per segment run (build_parallel_areas_from_lv) and the disk log size.
 */

/** PVs used by one LE range of an LV (build_parallel_areas_from_lv): allocations there must avoid them. */
export interface SegPvs {
  le: number;
  len: number;
  pvIds: string[];
}

/** A segment together with the LV it belongs to. */
export interface SegRef {
  lv: LogicalVolume;
  seg: Segment;
}

/** Name → LV lookups and segment walks over the model, as lv_manip.c does them on its in-memory LVs. */
export class LvIndex {
  private readonly byName = new Map<string, LogicalVolume>();
  constructor(readonly vg: VolumeGroup) {
    for (const lv of vg.lvs) this.byName.set(lv.name, lv);
  }
  get(name: string): LogicalVolume | undefined {
    return this.byName.get(name);
  }
  add(lv: LogicalVolume): void {
    this.byName.set(lv.name, lv);
  }
  delete(name: string): void {
    this.byName.delete(name);
  }
}

export function lastSeg(lv: LogicalVolume): SegRef | undefined {
  const seg = lv.segments[lv.segments.length - 1];
  return seg ? { lv, seg } : undefined;
}

export function findSegByLe(lv: LogicalVolume, le: number): Segment | undefined {
  // Segments are sorted by start extent; binary search keeps long LVs cheap.
  const segs = lv.segments;
  let lo = 0;
  let hi = segs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segs[mid]!;
    if (le < s.startExtent) hi = mid - 1;
    else if (le >= s.startExtent + s.extentCount) lo = mid + 1;
    else return s;
  }
  return undefined;
}

/** _calc_area_multiple for the segment types handled here. */
export function calcAreaMultiple(segtype: "striped" | "mirror" | "raid1", areaCount: number, stripes: number): number {
  if (!areaCount) return 1;
  if (segtype === "striped") return areaCount;
  if (stripes) return stripes;
  return 1;
}

function segTypeName(seg: Segment): "striped" | "mirror" | "other" {
  if (isStripedSeg(seg)) return "striped";
  if (isMirrorSeg(seg) || isRaidSeg(seg)) return "mirror";
  return "other";
}

function segAreaMultiple(seg: Segment): number {
  const t = segTypeName(seg);
  if (t === "striped") return calcAreaMultiple("striped", segAreas(seg).length, 0);
  return 1;
}

/** For striped mirrors the parallel areas are counted through the mirror layer (_stripes_per_mimage). */
export function stripesPerMimage(idx: LvIndex, seg: Segment): number {
  const first = isMirrorSeg(seg) || isRaidSeg(seg) ? segAreas(seg)[0] : undefined;
  if (first && first.kind === "lv") {
    const img = idx.get(first.lvName);
    const last = img?.segments[img.segments.length - 1];
    if (last && isStripedSeg(last)) return last.stripes.length;
  }
  return 1;
}

/** The physical piece of an LV segment area, as a pv_segment. */
export interface PvSegment {
  pvId: string;
  pe: number;
  len: number;
}

/**
 * _for_each_pv: call `fn` for the PV areas of the one segment at lv:le
 * (recursing into sub-LVs, but again only into the segment at that LE), with
 * the parallel area index. `fn` returns 1 to go on, 2 to stop. Only the
 * first segment is looked at, even when `len` spans more (as lvm2 does).
 */
export function forEachPv(
  idx: LvIndex,
  lv: LogicalVolume,
  le: number,
  len: number,
  seg: Segment | undefined,
  maxSegLen: { v: number } | undefined,
  firstArea: number,
  maxAreas: number,
  topLevelAreaIndex: number,
  onlySingleAreaSegments: boolean,
  fn: (peg: PvSegment, s: number) => number,
): number {
  if (!seg) seg = findSegByLe(lv, le);
  if (!seg) throw new AllocationError(`Failed to find segment for ${lv.name} extent ${le}`);
  let remaining = seg.extentCount - (le - seg.startExtent);
  if (remaining > len) remaining = len;
  if (maxSegLen && maxSegLen.v > remaining) maxSegLen.v = remaining;
  const areaMultiple = segAreaMultiple(seg);
  const areaLen = Math.floor(remaining / areaMultiple) || 1;
  let stripesPer = 1;
  if (topLevelAreaIndex === -1) stripesPer = stripesPerMimage(idx, seg);
  const areas = segAreas(seg);
  const areaExtents = segAreaExtents(seg);
  let r = 1;
  for (let s = firstArea; s < areas.length && (!maxAreas || s <= maxAreas); s++) {
    const a = areas[s]!;
    if (a.kind === "lv") {
      const sub = idx.get(a.lvName);
      if (!sub) continue;
      r = forEachPv(
        idx,
        sub,
        a.startLe + Math.floor((le - seg.startExtent) / areaMultiple),
        areaLen,
        undefined,
        maxSegLen,
        0,
        stripesPer === 1 && onlySingleAreaSegments ? 1 : 0,
        topLevelAreaIndex !== -1 ? topLevelAreaIndex : s * stripesPer,
        onlySingleAreaSegments,
        fn,
      );
    } else {
      r = fn({ pvId: a.pvId, pe: a.startPe, len: areaExtents }, topLevelAreaIndex !== -1 ? topLevelAreaIndex + s : s);
    }
    if (r !== 1) return r;
  }
  if (!onlySingleAreaSegments && isMirrorSeg(seg) && seg.mirrorLog) {
    const log = idx.get(seg.mirrorLog);
    if (log) {
      let n = 0;
      for (const ls of log.segments) n += ls.extentCount;
      r = forEachPv(idx, log, 0, n, undefined, undefined, 0, 0, 0, onlySingleAreaSegments, fn);
      if (r !== 1) return r;
    }
  }
  return 1;
}

/** build_parallel_areas_from_lv(lv, 0, 0): per segment run, the PVs it uses (legs, stripes and log). */
export function buildParallelAreas(vg: VolumeGroup, lv: LogicalVolume, idx = new LvIndex(vg)): SegPvs[] {
  const out: SegPvs[] = [];
  let le = 0;
  let count = 0;
  for (const s of lv.segments) count += s.extentCount;
  do {
    const spvs: SegPvs = { le, len: count - le, pvIds: [] };
    out.push(spvs);
    const max = { v: spvs.len };
    forEachPv(idx, lv, le, spvs.len, undefined, max, 0, 0, -1, false, (peg) => {
      if (!spvs.pvIds.includes(peg.pvId)) spvs.pvIds.push(peg.pvId);
      return 1;
    });
    spvs.len = max.v;
    le = spvs.le + spvs.len;
  } while (le < count);
  return out;
}

/** _mirror_log_extents: the disk log holds a 1 KiB header and one bit per region. */
/**
 * _raid_rmeta_extents (raid_manip.c): the dm-raid superblock and the MD
 * bitmap superblock (4 KiB each) plus one bit per region, in extents.
 */
export function raidRmetaExtents(rimageExtents: number, regionSizeSectors: number, extentSizeSectors: number): number {
  const regions = Math.floor((rimageExtents * extentSizeSectors) / regionSizeSectors);
  const bytes = 2 * 4096 + Math.ceil(regions / 8);
  return Math.ceil(Math.ceil(bytes / 512) / extentSizeSectors);
}

export function mirrorLogExtents(regionSizeSectors: number, extentSizeSectors: number, areaLen: number): number {
  const areaSize = areaLen * extentSizeSectors;
  const regionCount = Math.ceil(areaSize / regionSizeSectors);
  const bitsetBytes = Math.ceil(regionCount / 32) * 4;
  const logSectors = Math.ceil((1024 + bitsetBytes) / 512);
  return Math.ceil(logSectors / extentSizeSectors);
}

export function lvLeCount(lv: LogicalVolume): number {
  let n = 0;
  for (const s of lv.segments) n += s.extentCount;
  return n;
}
