import type { Area, LogicalVolume, MirrorSegment, Segment, StripedSegment, VolumeGroup } from "./types.js";
import { isMirrorSeg, isRaid, isStripedSeg, isVisible, pvIdsOfLv, segAreaExtents, topLevelLv } from "./lv-info.js";
import { allocateExtents, type AllocPolicyName, type SegPvs } from "./allocate.js";
import { mergeSegments, type VgEditor } from "./allocate-lv.js";
import type { PeRange, PvListEntry } from "./allocate-pv-maps.js";
import { AllocationError, CommandError, InternalError } from "../errors/errors.js";

/**
 * pvmove's metadata, as lvm2 builds it (tools/pvmove.c _set_up_pvmove_lv,
 * lib/metadata/lv_manip.c insert_layer_for_segments_on_pv,
 * lib/metadata/mirror.c _add_mirrors_that_preserve_segments,
 * lv_add_mirror_areas, split_parent_segments_for_layer,
 * remove_mirrors_from_segments, remove_layers_for_segments):
 *
 *  - a hidden LV `pvmove%d` with status PVMOVE + LOCKED and contiguous
 *    allocation, one segment per moved area, appended in LV order;
 *  - every moved area of an LV is re-pointed at `pvmoveN:<le>`, the LV
 *    becomes LOCKED;
 *  - each pvmove segment becomes a 2-way "mirror" segment (area 0 = the
 *    source extents, area 1 = the newly allocated ones), split where the new
 *    space is not contiguous, with `extents_moved` = 0 and the default
 *    mirror region size (2 MiB) adjusted to pvmoveN's length
 *    (adjusted_mirror_region_size); lvm2 refuses a mirror segment without one;
 *  - a checkpoint sets a segment's extents_moved to its length;
 *  - the finish keeps area 1 of the moved segments (area 0 of the others),
 *    points the LVs back at PVs, unlocks and merges them, drops pvmoveN.
 * Pure: the VG changes in memory; commands commit and copy.
 */
export const PVMOVE_NAME_FORMAT = "pvmove%d";

/** activation/mirror_region_size's default (2 MiB), in sectors. */
const DEFAULT_REGION_SECTORS = 4096;

export function isPvmoveLv(lv: LogicalVolume): boolean {
  return lv.status.includes("PVMOVE");
}

/** The pvmove LVs of a VG (moves in progress). */
export function pvmoveLvs(vg: VolumeGroup): LogicalVolume[] {
  return vg.lvs.filter(isPvmoveLv);
}

/** The source PV of a pvmove LV: area 0 of its first segment (lvm2's move_pv), through pvmoveN_mimage_0 for an --atomic move. */
export function pvmoveSourcePv(vg: VolumeGroup, lv: LogicalVolume): string | undefined {
  const first = (l: LogicalVolume | undefined): Area | undefined => {
    const s = l?.segments[0];
    return s && isMirrorSeg(s) ? s.mirrors[0] : s && isStripedSeg(s) ? s.stripes[0] : undefined;
  };
  let a = first(lv);
  if (a?.kind === "lv") {
    const name = a.lvName;
    a = first(vg.lvs.find((l) => l.name === name));
  }
  return a?.kind === "pv" ? a.pvId : undefined;
}

/** An --atomic move's two images (lvm2's MIRROR_BY_SEGMENTED_LV): [pvmoveN_mimage_0 (source), pvmoveN_mimage_1 (copy)], or undefined. */
export function atomicImages(vg: VolumeGroup, pvmove: LogicalVolume): [LogicalVolume, LogicalVolume] | undefined {
  const s = pvmove.segments[0];
  if (!s || !isMirrorSeg(s) || s.mirrors[0]?.kind !== "lv") return undefined;
  const [a, b] = s.mirrors.map((m) => (m.kind === "lv" ? vg.lvs.find((l) => l.name === m.lvName) : undefined));
  return a && b ? [a, b] : undefined;
}

/** The pvmove segments (mirror segments with extents_moved). */
function moveSegs(pvmove: LogicalVolume): MirrorSegment[] {
  return pvmove.segments.filter((s): s is MirrorSegment => isMirrorSeg(s) && s.extentsMoved !== undefined);
}

/** lvm2's copy_percent over a pvmove LV: Σ extents copied / Σ extents; `running` adds the live copy of the running segment. */
export function pvmoveProgress(pvmove: LogicalVolume, runningCopied = 0): { copied: number; total: number } {
  let copied = 0;
  let total = 0;
  for (const s of moveSegs(pvmove)) {
    total += s.extentCount;
    copied += s.extentsMoved!;
  }
  return { copied: Math.min(total, copied + runningCopied), total };
}

/** The segment being copied: the first one not wholly moved (undefined when all are). */
export function runningSegment(pvmove: LogicalVolume): MirrorSegment | undefined {
  return moveSegs(pvmove).find((s) => s.extentsMoved! < s.extentCount);
}

/** A checkpoint: the segment's copy is complete. */
export function markSegmentMoved(seg: MirrorSegment): void {
  seg.extentsMoved = seg.extentCount;
}

/** lv_split_segment for striped segments: one segment becomes two at logical extent `le`. */
export function splitStripedSegment(lv: LogicalVolume, le: number): void {
  const i = lv.segments.findIndex((s) => le > s.startExtent && le < s.startExtent + s.extentCount);
  if (i === -1) return;
  const seg = lv.segments[i]!;
  if (!isStripedSeg(seg)) throw new InternalError(`Cannot split ${seg.type} segment of ${lv.name}.`);
  const k = seg.stripes.length;
  const firstLen = le - seg.startExtent;
  if (firstLen % k) throw new InternalError(`Segment of ${lv.name} cannot split at ${le}: not on a stripe boundary.`);
  const advance = firstLen / k;
  const second: StripedSegment = {
    ...seg,
    tags: [...seg.tags],
    typeFlags: [...seg.typeFlags],
    startExtent: le,
    extentCount: seg.extentCount - firstLen,
    stripes: seg.stripes.map((a): Area => (a.kind === "pv" ? { kind: "pv", pvId: a.pvId, startPe: a.startPe + advance } : { kind: "lv", lvName: a.lvName, startLe: a.startLe + advance })),
  };
  seg.extentCount = firstLen;
  lv.segments.splice(i + 1, 0, second);
}

export interface PvmoveRequest {
  srcPvId: string;
  /** PE ranges of the source to move; undefined = the whole PV. */
  srcRanges: readonly PeRange[] | undefined;
  /** -n: only this LV's extents. */
  lvName: string | undefined;
  /** Allocatable destination PVs (the source already left out unless `anywhere`). */
  dest: readonly PvListEntry[];
  policy: AllocPolicyName;
  /** allocation/pvmove_max_segment_size_mb in extents (at least 1); undefined or 0 = no limit. */
  maxSegmentExtents?: number;
  /** --atomic: one mirror over two segmented images, copied (and aborted) as a whole. */
  atomic?: boolean;
}

export interface PvmoveSetup {
  pvmove: LogicalVolume;
  movedLvs: string[];
  /** LVs left alone because another pvmove holds them. */
  skippedLocked: string[];
}

const inRanges = (pe: number, len: number, ranges: readonly PeRange[] | undefined): boolean =>
  !ranges || ranges.some((r) => pe >= r.start && pe + len <= r.start + r.count);

/**
 * _split_large_segments_for_pvmove (lvm2 2.03.36, allocation/
 * pvmove_max_segment_size_mb): an LV segment with an area on the source
 * (within the ranges) longer than the limit is split into chunks of the
 * limit (rounded down to whole stripes, at least one stripe each), so each
 * becomes a pvmove segment of its own with a checkpoint after it.
 */
function splitLargeSegments(lv: LogicalVolume, srcPvId: string, ranges: readonly PeRange[] | undefined, maxExtents: number | undefined): void {
  if (!maxExtents) return;
  for (let i = 0; i < lv.segments.length; i++) {
    const seg = lv.segments[i]!;
    if (!isStripedSeg(seg)) continue;
    const w = segAreaExtents(seg);
    const k = seg.stripes.length;
    // _match_seg_area_to_pe_range: an area on the source that overlaps a range.
    const onSource = seg.stripes.some((a) => a.kind === "pv" && a.pvId === srcPvId && (!ranges || ranges.some((r) => a.startPe < r.start + r.count && r.start < a.startPe + w)));
    if (!onSource) continue;
    const chunk = k < 2 ? maxExtents : Math.max(1, Math.floor(maxExtents / k)) * k;
    for (let at = chunk; at < seg.extentCount; at += chunk) splitStripedSegment(lv, seg.startExtent + at);
  }
}

/** _align_segment_boundary_to_pe_range: split the LV's segments where a source range starts or ends inside an area on the source PV. */
function alignToRanges(lv: LogicalVolume, srcPvId: string, ranges: readonly PeRange[] | undefined): void {
  if (!ranges) return;
  for (let again = true; again; ) {
    again = false;
    for (const seg of lv.segments) {
      if (!isStripedSeg(seg)) continue;
      const w = segAreaExtents(seg);
      for (const a of seg.stripes) {
        if (a.kind !== "pv" || a.pvId !== srcPvId) continue;
        for (const r of ranges) {
          for (const cut of [r.start, r.start + r.count]) {
            if (cut > a.startPe && cut < a.startPe + w) {
              splitStripedSegment(lv, seg.startExtent + (cut - a.startPe) * seg.stripes.length);
              again = true;
              break;
            }
          }
          if (again) break;
        }
        if (again) break;
      }
      if (again) break;
    }
  }
}

/**
 * _set_up_pvmove_lv and lv_add_mirrors(MIRROR_BY_SEG): build pvmoveN over
 * the source extents and allocate their destinations. Throws lvm2's
 * messages ("No data to move for vg.", the allocator's) and leaves the VG
 * changed only on success (callers work on a clone).
 */
export function setUpPvmove(ed: VgEditor, req: PvmoveRequest): PvmoveSetup {
  const vg = ed.vg;
  const usesSource = (lv: LogicalVolume): boolean => lv.segments.some((s) => isStripedSeg(s) && s.stripes.some((a) => a.kind === "pv" && a.pvId === req.srcPvId));
  const selected = (lv: LogicalVolume): boolean => req.lvName === undefined || lv.name === req.lvName || topLevelLv(vg, lv).name === req.lvName;
  // Pass 1: redundancy. A leg or image never lands on a PV its mirror or raid LV already uses.
  let dest = [...req.dest];
  for (const lv of vg.lvs) {
    if (!isVisible(lv) || isPvmoveLv(lv) || !(isRaid(lv) || lv.segments.some(isMirrorSeg))) continue;
    const pvs = pvIdsOfLv(vg, lv);
    if (!pvs.has(req.srcPvId) || !selected(lv)) continue;
    dest = dest.filter((e) => !pvs.has(e.pv.pvId));
  }
  const pvmove = ed.createEmptyLv(PVMOVE_NAME_FORMAT, ["READ", "WRITE", "PVMOVE", "LOCKED"], "contiguous");
  const movedLvs: string[] = [];
  const skippedLocked: string[] = [];
  // Pass 2: the LVs whose own segments sit on the source PV (plain LVs, mirror images, raid images, logs).
  for (const lv of vg.lvs) {
    if (lv === pvmove || isPvmoveLv(lv) || !usesSource(lv) || !selected(lv)) continue;
    if (lv.status.includes("LOCKED")) {
      skippedLocked.push(lv.name);
      continue;
    }
    splitLargeSegments(lv, req.srcPvId, req.srcRanges, req.maxSegmentExtents);
    alignToRanges(lv, req.srcPvId, req.srcRanges);
    let changed = false;
    for (const seg of lv.segments) {
      if (!isStripedSeg(seg)) continue;
      const w = segAreaExtents(seg);
      seg.stripes.forEach((a, s) => {
        if (a.kind !== "pv" || a.pvId !== req.srcPvId || !inRanges(a.startPe, w, req.srcRanges)) return;
        // _extend_layer_lv_for_segment: a linear segment of pvmoveN takes the area over.
        const le = pvmove.segments.reduce((n, x) => n + x.extentCount, 0);
        pvmove.segments.push({ type: "striped", startExtent: le, extentCount: w, tags: [], typeFlags: [], stripeSizeSectors: 0, stripes: [{ kind: "pv", pvId: a.pvId, startPe: a.startPe }] });
        seg.stripes[s] = { kind: "lv", lvName: pvmove.name, startLe: le };
        changed = true;
      });
    }
    if (changed) {
      if (!lv.status.includes("LOCKED")) lv.status.push("LOCKED");
      movedLvs.push(lv.name);
    }
  }
  if (!pvmove.segments.length) {
    ed.lvRemove(pvmove);
    const lines = skippedLocked.length ? ["All data on source PV skipped. It contains locked, hidden or non-top level LVs only."] : [];
    throw new CommandError([...lines, `No data to move for ${vg.name}.`].join("\n"));
  }
  try {
    addMirrorAreas(ed, pvmove, dest, req.policy, req.atomic ?? false);
  } catch (e) {
    // lv_add_mirrors' own line follows the allocator's (then pvmove.c's "Failed to convert ...").
    if (e instanceof AllocationError) throw new AllocationError(`${e.message}\nUnable to allocate mirror extents for ${vg.name}/${pvmove.name}.`);
    throw e;
  }
  for (const name of movedLvs) splitParentSegmentsForLayer(vg, ed.lv(name)!, pvmove);
  return { pvmove, movedLvs, skippedLocked };
}

/** build_parallel_areas_from_lv(pvmove, use_pvmove_parent_lv=1): per pvmove segment, the PVs its parent segment uses. */
function pvmoveParallelAreas(vg: VolumeGroup, pvmove: LogicalVolume): SegPvs[] {
  const out: SegPvs[] = [];
  for (const seg of pvmove.segments) {
    const pvIds: string[] = [];
    const add = (id: string): void => {
      if (!pvIds.includes(id)) pvIds.push(id);
    };
    for (const a of isStripedSeg(seg) ? seg.stripes : []) if (a.kind === "pv") add(a.pvId);
    for (const lv of vg.lvs) {
      for (const ps of lv.segments) {
        if (!isStripedSeg(ps) || !ps.stripes.some((a) => a.kind === "lv" && a.lvName === pvmove.name && a.startLe === seg.startExtent)) continue;
        for (const a of ps.stripes) if (a.kind === "pv") add(a.pvId);
      }
    }
    out.push({ le: seg.startExtent, len: seg.extentCount, pvIds });
  }
  return out;
}

/**
 * _add_mirrors_that_preserve_segments: the destination for every pvmove
 * segment, each split where the new space is not contiguous. Then either
 * lv_add_mirror_areas (MIRROR_BY_SEG): each segment becomes a 2-way mirror
 * segment of its own; or, with --atomic, lv_add_segmented_mirror_image
 * (MIRROR_BY_SEGMENTED_LV): pvmoveN's segments move into pvmoveN_mimage_0,
 * pvmoveN_mimage_1 gets the new extents segment for segment, and pvmoveN is
 * one mirror segment over the two (extents_moved 0, no log), so the copy and
 * an --abort cover everything at once.
 */
function addMirrorAreas(ed: VgEditor, pvmove: LogicalVolume, dest: readonly PvListEntry[], policy: AllocPolicyName, atomic: boolean): void {
  const vg = ed.vg;
  const extents = pvmove.segments.reduce((n, s) => n + s.extentCount, 0);
  const res = allocateExtents({
    vg,
    lv: undefined,
    segtype: "mirror",
    stripes: 1,
    mirrors: 1,
    logCount: 0,
    regionSizeSectors: 0,
    extents,
    pvs: dest,
    policy,
    approx: false,
    parallelAreas: pvmoveParallelAreas(vg, pvmove),
  });
  // adjusted_mirror_region_size(extent_size, le_count, default 2 MiB): at most the largest power-of-2 extent count dividing le_count.
  let pow = 1;
  while (extents % (pow * 2) === 0 && pow < 2 ** 30) pow *= 2;
  const region = Math.min(DEFAULT_REGION_SECTORS, pow * vg.extentSizeSectors);
  let le = 0;
  const copies: Area[] = [];
  for (const { batch, index } of res.slots[0] ?? []) {
    const aa = batch.areas[index];
    if (!aa) continue;
    let i = pvmove.segments.findIndex((s) => s.startExtent === le);
    if (i === -1) {
      splitStripedSegment(pvmove, le);
      i = pvmove.segments.findIndex((s) => s.startExtent === le);
    }
    if (aa.len < pvmove.segments[i]!.extentCount) splitStripedSegment(pvmove, le + aa.len);
    const seg = pvmove.segments[i]! as Segment;
    if (!isStripedSeg(seg)) throw new InternalError(`pvmove segment at ${le} is already mirrored.`);
    if (atomic) {
      copies.push({ kind: "pv", pvId: aa.pvId, startPe: aa.pe });
      le += seg.extentCount;
      continue;
    }
    const m: MirrorSegment = {
      type: "mirror",
      startExtent: seg.startExtent,
      extentCount: seg.extentCount,
      tags: seg.tags,
      typeFlags: [],
      mirrorLog: undefined,
      regionSizeSectors: region,
      extentsMoved: 0,
      mirrors: [seg.stripes[0]!, { kind: "pv", pvId: aa.pvId, startPe: aa.pe }],
    };
    pvmove.segments[i] = m;
    le += m.extentCount;
  }
  if (le !== extents) throw new InternalError(`pvmove allocation covered ${le} of ${extents} extents.`);
  if (atomic) insertSegmentedImages(ed, pvmove, copies, region);
}

/** lv_add_segmented_mirror_image: insert_layer_for_lv(pvmoveN, "_mimage_0"), the copy image "_mimage_1", one mirror segment over both. */
function insertSegmentedImages(ed: VgEditor, pvmove: LogicalVolume, copies: readonly Area[], region: number): void {
  // Both images: READ and WRITE as pvmoveN (insert_layer_for_lv keeps LVM_WRITE), hidden, inherit.
  const orig = ed.createEmptyLv(`${pvmove.name}_mimage_0`, ["READ", "WRITE"], undefined);
  orig.segments = pvmove.segments;
  const copy = ed.createEmptyLv(`${pvmove.name}_mimage_1`, ["READ", "WRITE"], undefined);
  copy.segments = orig.segments.map((s, i) => ({ type: "striped", startExtent: s.startExtent, extentCount: s.extentCount, tags: [], typeFlags: [], stripeSizeSectors: 0, stripes: [{ ...copies[i]! }] }));
  const extents = orig.segments.reduce((n, s) => n + s.extentCount, 0);
  pvmove.segments = [
    {
      type: "mirror",
      startExtent: 0,
      extentCount: extents,
      tags: [],
      typeFlags: [],
      mirrorLog: undefined,
      regionSizeSectors: region,
      extentsMoved: 0,
      mirrors: [
        { kind: "lv", lvName: orig.name, startLe: 0 },
        { kind: "lv", lvName: copy.name, startLe: 0 },
      ],
    },
  ];
}

/** split_parent_segments_for_layer: each LV area pointing at the layer covers exactly one layer segment. */
function splitParentSegmentsForLayer(vg: VolumeGroup, lv: LogicalVolume, layer: LogicalVolume): void {
  void vg;
  for (let i = 0; i < lv.segments.length; i++) {
    const seg = lv.segments[i]!;
    if (!isStripedSeg(seg)) continue;
    const w = segAreaExtents(seg);
    for (const a of seg.stripes) {
      if (a.kind !== "lv" || a.lvName !== layer.name) continue;
      const cut = layer.segments.find((l) => l.startExtent > a.startLe && l.startExtent < a.startLe + w);
      if (cut) {
        splitStripedSegment(lv, seg.startExtent + (cut.startExtent - a.startLe) * seg.stripes.length);
        break;
      }
    }
  }
}

/** The area `off` extents into `a`. */
const areaAt = (a: Area, off: number): Area => (a.kind === "pv" ? { kind: "pv", pvId: a.pvId, startPe: a.startPe + off } : { kind: "lv", lvName: a.lvName, startLe: a.startLe + off });

/**
 * pvmove_finish (and --abort): each segment keeps its destination when it
 * was wholly moved, else its source (an --atomic move: mimage_1 when done,
 * mimage_0 when not or on `abort`, as _detach_pvmove_mirror); the LVs point
 * at PVs again, split where the kept areas are, unlocked and merged;
 * pvmoveN (and its images) go. Returns the LVs changed.
 */
export function finishPvmove(ed: VgEditor, pvmove: LogicalVolume, abort = false): string[] {
  const vg = ed.vg;
  // The kept extents as [start, len, area] over pvmoveN's logical extents.
  const kept: Array<{ start: number; len: number; area: Area }> = [];
  const images = atomicImages(vg, pvmove);
  if (images) {
    const s = pvmove.segments[0] as MirrorSegment;
    const done = !abort && s.extentsMoved !== undefined && s.extentsMoved >= s.extentCount;
    for (const x of images[done ? 1 : 0].segments) {
      if (!isStripedSeg(x) || x.stripes.length !== 1) throw new CommandError(`Segment is not linear: ${vg.name}/${images[done ? 1 : 0].name}:${x.startExtent}`);
      kept.push({ start: x.startExtent, len: x.extentCount, area: x.stripes[0]! });
    }
  } else {
    for (const s of pvmove.segments) {
      if (!isMirrorSeg(s)) throw new CommandError(`Segment is not mirrored: ${vg.name}/${pvmove.name}:${s.startExtent}`);
      const done = s.extentsMoved !== undefined && s.extentsMoved >= s.extentCount && s.mirrors.length > 1;
      kept.push({ start: s.startExtent, len: s.extentCount, area: s.mirrors[done ? 1 : 0]! });
    }
  }
  const keptAt = (le: number): { area: Area; len: number } | undefined => {
    const k = kept.find((x) => le >= x.start && le < x.start + x.len);
    return k && { area: areaAt(k.area, le - k.start), len: k.start + k.len - le };
  };
  const changed: string[] = [];
  for (const lv of vg.lvs) {
    if (lv === pvmove || images?.includes(lv)) continue;
    let touched = false;
    for (let i = 0; i < lv.segments.length; i++) {
      const seg = lv.segments[i]!;
      if (!isStripedSeg(seg)) continue;
      const w = segAreaExtents(seg);
      // An area over more than one kept piece: split the LV's segment there first (_remove_pvmove_layer's split).
      const short = seg.stripes.map((a) => (a.kind === "lv" && a.lvName === pvmove.name ? keptAt(a.startLe) : undefined)).find((k) => k && k.len < w);
      if (short) {
        splitStripedSegment(lv, seg.startExtent + short.len * seg.stripes.length);
        i--;
        continue;
      }
      seg.stripes.forEach((a, s) => {
        if (a.kind !== "lv" || a.lvName !== pvmove.name) return;
        const k = keptAt(a.startLe);
        if (!k) throw new CommandError(`Layer boundary mismatch: ${vg.name}/${pvmove.name}:${a.startLe}-${a.startLe + w - 1} on ${lv.name}:${seg.startExtent}.`);
        seg.stripes[s] = { ...k.area };
        touched = true;
      });
    }
    if (touched) {
      lv.status = lv.status.filter((f) => f !== "LOCKED");
      mergeSegments(lv);
      changed.push(lv.name);
    }
  }
  pvmove.segments = [];
  ed.lvRemove(pvmove);
  for (const img of images ?? []) {
    img.segments = [];
    ed.lvRemove(img);
  }
  return changed;
}
