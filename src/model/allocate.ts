import type { LogicalVolume, VolumeGroup } from "./types.js";
import { segAreas } from "./lv-info.js";
import { AllocationError } from "../errors/errors.js";
import { calcAreaMultiple, forEachPv, lastSeg, lvLeCount, LvIndex, mirrorLogExtents, raidRmetaExtents, stripesPerMimage, type PvSegment, type SegPvs, type SegRef } from "./allocate-walk.js";

export { buildParallelAreas, calcAreaMultiple, findSegByLe, forEachPv, lastSeg, lvLeCount, LvIndex, mirrorLogExtents, raidRmetaExtents } from "./allocate-walk.js";
export type { PvSegment, SegPvs, SegRef } from "./allocate-walk.js";
import {
  consumePvArea,
  createPvMaps,
  pvMapsSize,
  reinsertChangedPvArea,
  vgFreeRuns,
  type AllocPv,
  type PvArea,
  type PvListEntry,
  type PvMap,
} from "./allocate-pv-maps.js";

/**
 * The extent allocator, a faithful model of lvm2 2.03.16's
 * (lib/metadata/lv_manip.c: _alloc_init, _allocate,
 * _find_max_parallel_space_for_one_policy, _find_some_parallel_space,
 * _check_pva, _alloc_parallel_area). Layouts must match lvm2's extent for
 * extent, so this follows its control flow closely, quirks included; the
 * quirks that matter are noted where they happen. Pure: it reads the VG and
 * returns the areas chosen; building segments from them is allocate-lv.ts.
 *
 * Units follow lvm2: "extents" of a request are logical extents of the LV;
 * an allocation is `areaCount` parallel areas (stripes × mirror legs), each
 * area_len = extents / areaMultiple physical extents long, plus
 * `logAreaCount` log areas of `logLen` extents.
 */

/** lvm2's alloc_policy_t order: each pass tries the policies up to the requested one. */
export const ALLOC_CONTIGUOUS = 1;
export const ALLOC_CLING = 2;
export const ALLOC_CLING_BY_TAGS = 3;
export const ALLOC_NORMAL = 4;
export const ALLOC_ANYWHERE = 5;

export type AllocPolicyName = "contiguous" | "cling" | "cling_by_tags" | "normal" | "anywhere";
const POLICY_BY_NAME: Record<AllocPolicyName, number> = {
  contiguous: ALLOC_CONTIGUOUS,
  cling: ALLOC_CLING,
  cling_by_tags: ALLOC_CLING_BY_TAGS,
  normal: ALLOC_NORMAL,
  anywhere: ALLOC_ANYWHERE,
};

export function policyNumber(name: AllocPolicyName): number {
  return POLICY_BY_NAME[name];
}

/** The allocation settings of lvm.conf that change layouts, with lvm2's defaults. */
export interface AllocConfig {
  /** allocation/maximise_cling (default 1). */
  maximiseCling: boolean;
  /** allocation/mirror_logs_require_separate_pvs (default 0). */
  mirrorLogsRequireSeparatePvs: boolean;
  /** allocation/cling_tag_list: entries like "@site1" or "@*"; undefined = unset. */
  clingTagList: readonly string[] | undefined;
}

export const DEFAULT_ALLOC_CONFIG: AllocConfig = { maximiseCling: true, mirrorLogsRequireSeparatePvs: false, clingTagList: undefined };

export interface AllocRequest {
  vg: VolumeGroup;
  /** The LV being extended: its last segment is what contiguous/cling follow on from. */
  lv: LogicalVolume | undefined;
  /**
   * Segment type of the new space: "striped" (also linear), "mirror" or
   * "raid1". For raid1 `logCount` is the number of rmeta areas (one per
   * image, or 0 when extending images whose rmeta need no more space): each
   * image's area is allocated `logLen` extents longer and split, rmeta
   * first (alloc_and_split_meta); the rmeta pieces are slots areaCount.. .
   */
  segtype: "striped" | "mirror" | "raid1";
  /** Stripes per leg; 0 for a log-only request. */
  stripes: number;
  /** Mirror legs (1 = none); 0 for a log-only request. */
  mirrors: number;
  /** Parallel log areas to allocate (1 for a mirror log). */
  logCount: number;
  regionSizeSectors: number;
  /** Logical extents to add (for approximate requests: at most this many). */
  extents: number;
  /** The allocatable PVs in preference order, with optional PE ranges. */
  pvs: readonly PvListEntry[];
  /** Requested policy, already resolved from inherit (never "inherit"). */
  policy: AllocPolicyName;
  /** Take as much as possible up to `extents` (percentage sizes). */
  approx: boolean;
  parallelAreas: readonly SegPvs[] | undefined;
  config?: AllocConfig;
}

/** One piece of physical space chosen for one parallel area. */
export interface AllocedArea {
  pvId: string;
  pe: number;
  len: number;
}

/** One call of _alloc_parallel_area: areas for every parallel slot at once. */
export interface AllocBatch {
  /** Indexed by slot: data areas 0..areaCount-1, then log areas; undefined when empty. */
  areas: Array<AllocedArea | undefined>;
}

export interface AllocResult {
  /** Total logical extents of the LV after the allocation (ah->new_extents). */
  newExtents: number;
  areaCount: number;
  areaMultiple: number;
  logAreaCount: number;
  logLen: number;
  /** Per slot, the batches that gave it space, in order (ah->alloced_areas). */
  slots: Array<Array<{ batch: AllocBatch; index: number }>>;
}

// Flags of alloc_parms (A_*).
const A_CONTIGUOUS_TO_LVSEG = 0x01;
const A_CLING_TO_LVSEG = 0x02;
const A_CLING_TO_ALLOCED = 0x04;
const A_CLING_BY_TAGS = 0x08;
const A_CAN_SPLIT = 0x10;
const A_AREA_COUNT_MATCHES = 0x20;
const A_POSITIONAL_FILL = 0x40;
const A_PARTITION_BY_TAGS = 0x80;

const enum AreaUse {
  PREFERRED,
  USE_AREA,
  NEXT_PV,
  NEXT_AREA,
}

interface AllocParms {
  alloc: number;
  flags: number;
  prevSeg: SegRef | undefined;
  extentsStillNeeded: number;
}

interface AreaUsed {
  pva: PvArea | undefined;
  used: number;
}

interface AllocState {
  parms: AllocParms;
  areas: AreaUsed[];
  logAreaCountStillNeeded: number;
  allocated: number;
  numPositionalAreas: number;
}

/** The allocation handle (struct alloc_handle) and the allocation itself. */
class Allocator {
  alloc: number;
  readonly approx: boolean;
  newExtents: number;
  readonly areaCount: number;
  readonly parityCount = 0;
  readonly areaMultiple: number;
  readonly logAreaCount: number;
  readonly logLen: number;
  /** raid: each data area carries its rmeta at its front (ah->alloc_and_split_meta). */
  readonly allocAndSplitMeta: boolean;
  splitMetadataIsAllocated = false;
  totalAreaLen = 0;
  readonly maximiseCling: boolean;
  readonly mirrorLogsSeparate: boolean;
  readonly clingTags: readonly string[] | undefined;
  readonly parallelAreas: readonly SegPvs[] | undefined;
  readonly slots: Array<Array<{ batch: AllocBatch; index: number }>>;
  readonly idx: LvIndex;
  private readonly pvById = new Map<string, AllocPv>();

  constructor(readonly req: AllocRequest, idx: LvIndex) {
    const cfg = req.config ?? DEFAULT_ALLOC_CONFIG;
    this.idx = idx;
    const existing = req.lv ? lvLeCount(req.lv) : 0;
    let stripes = req.stripes;
    if (req.mirrors && !stripes) stripes = 1;
    const areaCount = req.mirrors > 1 ? req.mirrors * stripes : stripes;
    if (!(areaCount + req.logCount)) throw new AllocationError("Internal error: _alloc_init called for non-virtual segment with no disk space.");
    this.areaCount = areaCount;
    this.alloc = policyNumber(req.policy);
    this.areaMultiple = calcAreaMultiple(req.segtype, areaCount, stripes);
    this.mirrorLogsSeparate = cfg.mirrorLogsRequireSeparatePvs;
    let total = req.mirrors || stripes ? req.extents : 0;
    if (req.segtype === "raid1") {
      // raid1 images are as long as the LV (raid_rimage_extents); rmeta grows only when the bitmap does.
      this.logAreaCount = 0;
      if (req.logCount) {
        const cur = raidRmetaExtents(existing, req.regionSizeSectors, req.vg.extentSizeSectors);
        const next = raidRmetaExtents(existing + req.extents, req.regionSizeSectors, req.vg.extentSizeSectors);
        this.logLen = !existing ? next : Math.abs(next - cur);
      } else this.logLen = 0;
      this.allocAndSplitMeta = this.logLen > 0;
      total += this.logLen;
    } else {
      this.allocAndSplitMeta = false;
      this.logAreaCount = req.logCount;
      this.logLen = req.logCount ? mirrorLogExtents(req.regionSizeSectors, req.vg.extentSizeSectors, Math.floor((existing + req.extents) / this.areaMultiple)) : 0;
    }
    if (req.mirrors || stripes) total += existing;
    this.newExtents = total;
    this.slots = [];
    const slotCount = req.segtype === "raid1" && req.logCount ? areaCount * 2 : areaCount + req.logCount;
    for (let s = 0; s < slotCount; s++) this.slots.push([]);
    this.parallelAreas = req.parallelAreas;
    this.clingTags = cfg.clingTagList && cfg.clingTagList.length ? cfg.clingTagList : undefined;
    this.maximiseCling = cfg.maximiseCling;
    this.approx = req.approx;
    for (const e of req.pvs) this.pvById.set(e.pv.pvId, e.pv);
  }

  private tagsOf(pvId: string): readonly string[] {
    return this.pvById.get(pvId)?.tags ?? this.req.vg.pvs.find((p) => p.id === pvId)?.tags ?? [];
  }

  /**
   * _match_pv_tags: does PV 1 carry a cling_tag_list tag that is also in
   * `toMatch` (any shared tag for "@*")? `toMatch` undefined matches any.
   */
  private matchPvTags(pv1Tags: readonly string[], toMatch: readonly string[] | undefined): boolean {
    for (const entry of this.clingTags ?? []) {
      if (!entry.startsWith("@") || entry.length < 2) continue;
      const tag = entry.slice(1);
      if (tag === "*") {
        if (toMatch && !pv1Tags.some((t) => toMatch.includes(t))) continue;
        return true;
      }
      if (!pv1Tags.includes(tag) || (toMatch && !toMatch.includes(tag))) continue;
      return true;
    }
    return false;
  }

  private pvsHaveMatchingTag(pv1: string, pv2: string): boolean {
    return this.matchPvTags(this.tagsOf(pv1), this.tagsOf(pv2));
  }

  // ---- _sufficient_pes_free -------------------------------------------------

  private sufficientPesFree(maps: readonly PvMap[], allocated: number, logStillNeeded: number, extentsStillNeeded: number): void {
    const areaExtentsNeeded = Math.floor(((extentsStillNeeded - allocated) * this.areaCount) / this.areaMultiple);
    const parity = Math.floor(((extentsStillNeeded - allocated) * this.parityCount) / this.areaMultiple);
    const meta = logStillNeeded ? this.logLen : 0;
    const total = areaExtentsNeeded + parity + meta;
    const free = pvMapsSize(maps);
    if (total > free) throw new AllocationError(`Insufficient free space: ${total} extents needed, but only ${free} available`, { needed: total, available: free });
  }

  // ---- _init_alloc_parms ----------------------------------------------------

  private initAllocParms(alloc: number, prevSeg: SegRef | undefined, canSplit: boolean, allocated: number, extentsStillNeeded: number): AllocParms {
    const p: AllocParms = { alloc, flags: 0, prevSeg, extentsStillNeeded };
    if (prevSeg && this.areaCount + this.parityCount === segAreas(prevSeg.seg).length) {
      p.flags |= A_AREA_COUNT_MATCHES;
      if (alloc === ALLOC_CONTIGUOUS) p.flags |= A_CONTIGUOUS_TO_LVSEG | A_POSITIONAL_FILL;
      else if (alloc === ALLOC_CLING || alloc === ALLOC_CLING_BY_TAGS) p.flags |= A_CLING_TO_LVSEG | A_POSITIONAL_FILL;
    } else if (alloc === ALLOC_CLING || alloc === ALLOC_CLING_BY_TAGS) {
      // A cling allocation that follows a successful contiguous one must use the same PVs.
      p.flags |= A_CLING_TO_ALLOCED | A_POSITIONAL_FILL;
    }
    if (alloc === ALLOC_CLING_BY_TAGS) p.flags |= A_CLING_BY_TAGS;
    // lvm2 tests `alloc & A_POSITIONAL_FILL` here, which is never set for the
    // policy value, so contiguous + cling_tag_list always partitions by tags.
    if (alloc === ALLOC_CONTIGUOUS && this.clingTags) p.flags |= A_PARTITION_BY_TAGS;
    // Normal allocations prefer the disks already used once something was found
    // (the condition is true whenever the allocation is not complete).
    if (this.maximiseCling && alloc === ALLOC_NORMAL && allocated !== p.extentsStillNeeded) p.flags |= A_CLING_TO_ALLOCED;
    if (canSplit) p.flags |= A_CAN_SPLIT;
    return p;
  }

  // ---- area reservation -----------------------------------------------------

  private reserveArea(st: AllocState, pva: PvArea, required: number, ixPva: number): void {
    // Grow the array as lvm2 reallocs it (doubling), new entries empty.
    while (ixPva >= st.areas.length) {
      const n = st.areas.length || 1;
      for (let i = 0; i < n; i++) st.areas.push({ pva: undefined, used: 0 });
    }
    const a = st.areas[ixPva]!;
    a.pva = pva;
    a.used = required;
  }

  /** _is_condition for _check_cling/_check_contiguous. */
  private isCondition(st: AllocState, pva: PvArea, cond: (peg: PvSegment, pva: PvArea) => boolean, peg: PvSegment, s: number): number {
    const positional = (st.parms.flags & A_POSITIONAL_FILL) !== 0;
    if (positional && st.areas[s]?.pva) return 1;
    if (!cond(peg, pva)) return 1;
    if (positional && s >= st.numPositionalAreas) return 1;
    if (positional && s >= st.areas.length) return 1;
    if (positional) this.reserveArea(st, pva, pva.count, s);
    return 2;
  }

  private checkCling(useTags: boolean, prev: SegRef, pva: PvArea, st: AllocState): boolean {
    const cond = useTags
      ? (peg: PvSegment, a: PvArea): boolean => this.pvsHaveMatchingTag(peg.pvId, a.map.pv.pvId)
      : (peg: PvSegment, a: PvArea): boolean => peg.pvId === a.map.pv.pvId;
    let le: number;
    let len: number;
    if (this.maximiseCling) {
      // "Check entire LV": but only the segment at LE 0 is visited.
      le = 0;
      len = prev.seg.startExtent + prev.seg.extentCount;
    } else {
      le = prev.seg.startExtent + prev.seg.extentCount - 1;
      len = 1;
    }
    const r = forEachPv(this.idx, prev.lv, le, len, undefined, undefined, 0, 0, -1, true, (peg, s) => this.isCondition(st, pva, cond, peg, s));
    return r === 2;
  }

  private checkContiguous(prev: SegRef, pva: PvArea, st: AllocState): boolean {
    const cond = (peg: PvSegment, a: PvArea): boolean => peg.pvId === a.map.pv.pvId && peg.pe + peg.len === a.start;
    const r = forEachPv(this.idx, prev.lv, prev.seg.startExtent + prev.seg.extentCount - 1, 1, undefined, undefined, 0, 0, -1, true, (peg, s) =>
      this.isCondition(st, pva, cond, peg, s),
    );
    return r === 2;
  }

  private checkClingToAlloced(useTags: boolean, pva: PvArea, st: AllocState): boolean {
    const positional = (st.parms.flags & A_POSITIONAL_FILL) !== 0;
    // Log areas are allocated whole in the first batch; nothing to cling to before that.
    if (st.logAreaCountStillNeeded) return false;
    for (let s = 0; s < this.areaCount; s++) {
      if (positional && st.areas[s]?.pva) continue;
      for (const { batch, index } of this.slots[s]!) {
        const aa = batch.areas[index];
        if (!aa) continue;
        const match = useTags ? this.pvsHaveMatchingTag(pva.map.pv.pvId, aa.pvId) : pva.map.pv.pvId === aa.pvId;
        if (match) {
          if (positional) this.reserveArea(st, pva, pva.count, s);
          return true;
        }
      }
    }
    return false;
  }

  private pvIsParallel(pvId: string, parallelPvs: readonly string[]): boolean {
    for (const p of parallelPvs) {
      if (p === pvId) return true;
      if (this.clingTags && this.pvsHaveMatchingTag(p, pvId)) return true;
    }
    return false;
  }

  /** _check_pva: decide whether to try this free area. */
  private checkPva(pva: PvArea, stillNeeded: number, st: AllocState, alreadyFoundOne: boolean, iterationCount: number, logIterationCount: number): AreaUse {
    const parms = st.parms;
    if (!pva.unreserved) return AreaUse.NEXT_AREA;
    if (iterationCount) for (const a of st.areas) if (a.pva === pva) return AreaUse.NEXT_AREA;
    let found = false;
    if (!iterationCount && !logIterationCount && parms.flags & (A_CONTIGUOUS_TO_LVSEG | A_CLING_TO_LVSEG | A_CLING_TO_ALLOCED)) {
      const prev = parms.prevSeg;
      if (prev && (parms.flags & A_CONTIGUOUS_TO_LVSEG || (this.maximiseCling && parms.flags & A_AREA_COUNT_MATCHES)) && this.checkContiguous(prev, pva, st)) found = true;
      else if (parms.flags & A_CONTIGUOUS_TO_LVSEG) return AreaUse.NEXT_AREA;
      else if (prev && (parms.flags & A_CLING_TO_LVSEG || (this.maximiseCling && parms.flags & A_AREA_COUNT_MATCHES)) && this.checkCling(false, prev, pva, st)) found = true;
      else if (parms.flags & A_CLING_TO_ALLOCED && this.checkClingToAlloced(false, pva, st)) found = true;
      else {
        if (!(parms.flags & A_CLING_BY_TAGS) || !this.clingTags) return AreaUse.NEXT_PV;
        if (parms.flags & A_AREA_COUNT_MATCHES) {
          if (prev && this.checkCling(true, prev, pva, st)) found = true;
        } else if (this.checkClingToAlloced(true, pva, st)) found = true;
        if (!found) return AreaUse.NEXT_PV;
      }
    }
    if (!found) {
      // Normal/anywhere: is it big enough on its own?
      if (
        pva.unreserved * this.areaMultiple < stillNeeded &&
        ((!(parms.flags & A_CAN_SPLIT) && !this.logAreaCount) || (alreadyFoundOne && parms.alloc !== ALLOC_ANYWHERE))
      )
        return AreaUse.NEXT_PV;
    }
    if (parms.flags & A_POSITIONAL_FILL) return AreaUse.PREFERRED;
    return AreaUse.USE_AREA;
  }

  /** _calc_required_extents: how much of this area to reserve; splits it in the list. */
  private calcRequiredExtents(pva: PvArea, ixPva: number, maxToAllocate: number, alloc: number): number {
    let required = Math.floor(maxToAllocate / this.areaMultiple);
    if (alloc === ALLOC_ANYWHERE) {
      if (ixPva >= this.areaCount + this.parityCount) required = this.logLen;
    } else if (required < this.logLen) required = this.logLen;
    if (required >= pva.unreserved) {
      required = pva.unreserved;
      pva.unreserved = 0;
    } else {
      pva.unreserved -= required;
      reinsertChangedPvArea(pva);
    }
    return required;
  }

  private clearAreas(st: AllocState): void {
    st.numPositionalAreas = 0;
    for (const a of st.areas) a.pva = undefined;
  }

  private resetUnreserved(maps: readonly PvMap[]): void {
    for (const m of maps) {
      // Walk the live list as dm_list_iterate_items does: a moved area continues from its new place.
      for (let a = m.head.next; a !== m.head; a = a.next) {
        if (a.unreserved !== a.count) {
          a.unreserved = a.count;
          reinsertChangedPvArea(a);
        }
      }
    }
  }

  /** _limit_to_one_area_per_tag (contiguous with cling_tag_list). */
  private limitToOneAreaPerTag(st: AllocState, ixLogOffset: number, ix: { v: number }): void {
    let s = 0;
    let u = 0;
    let pvTags: string[] = [];
    while (s < st.areas.length && st.areas[s]!.pva) {
      if (u === ixLogOffset) pvTags = [];
      const pva = st.areas[s]!.pva!;
      if (!this.matchPvTags(pva.map.pv.tags, pvTags)) {
        pvTags.push(...pva.map.pv.tags);
        if (s !== u) st.areas[u] = { ...st.areas[s]! };
        u++;
      } else ix.v--;
      s++;
    }
    if (u < st.areas.length) st.areas[u]!.pva = undefined;
  }

  /** _alloc_parallel_area: turn the chosen areas into allocated extents. */
  private allocParallelArea(maxToAllocate: number, st: AllocState, ixLogOffset: number): void {
    const totalAreaCount = this.areaCount + this.parityCount + st.logAreaCountStillNeeded;
    if (!totalAreaCount) return;
    let areaLen = Math.floor(maxToAllocate / this.areaMultiple);
    for (let s = 0; s < this.areaCount + this.parityCount; s++) if (areaLen > st.areas[s]!.used) areaLen = st.areas[s]!.used;
    const split = this.allocAndSplitMeta && !this.splitMetadataIsAllocated;
    const batch: AllocBatch = { areas: new Array<AllocedArea | undefined>(split ? totalAreaCount * 2 : totalAreaCount).fill(undefined) };
    let ixLogSkip = 0;
    let len = areaLen;
    for (let s = 0; s < totalAreaCount; s++) {
      if (s === this.areaCount + this.parityCount) {
        ixLogSkip = ixLogOffset - this.areaCount;
        len = this.logLen;
      }
      const pva = st.areas[s + ixLogSkip]!.pva!;
      if (split) {
        // "The metadata area goes at the front of the allocated space."
        const smeta = s + this.areaCount + this.parityCount;
        if (this.logLen > pva.count) throw new AllocationError("Metadata does not fit on a single PV.");
        batch.areas[smeta] = { pvId: pva.map.pv.pvId, pe: pva.start, len: this.logLen };
        consumePvArea(pva, this.logLen);
        this.slots[smeta]!.push({ batch, index: smeta });
      }
      const dataLen = split ? len - this.logLen : len;
      if (!dataLen) continue;
      const aa: AllocedArea = { pvId: pva.map.pv.pvId, pe: pva.start, len: dataLen };
      batch.areas[s] = aa;
      consumePvArea(pva, dataLen);
      this.slots[s]!.push({ batch, index: s });
    }
    if (this.allocAndSplitMeta) this.splitMetadataIsAllocated = true;
    this.totalAreaLen += areaLen;
    st.allocated += areaLen * this.areaMultiple;
  }

  /** _find_some_parallel_space: one pass over the PVs choosing parallel areas. */
  private findSomeParallelSpace(maps: readonly PvMap[], st: AllocState, parallelPvs: readonly string[] | undefined, maxToAllocate: number): void {
    const parms = st.parms;
    let ix = 0;
    let preferredCount = 0;
    let iterationCount = 0;
    let logIterationCount = 0;
    const devicesNeeded = this.areaCount + this.parityCount;

    this.clearAreas(st);
    this.resetUnreserved(maps);

    if (!(parms.flags & A_POSITIONAL_FILL)) st.numPositionalAreas = 0;
    else if (parms.flags & (A_CONTIGUOUS_TO_LVSEG | A_CLING_TO_LVSEG)) st.numPositionalAreas = stripesPerMimage(this.idx, parms.prevSeg!.seg) * segAreas(parms.prevSeg!.seg).length;
    else if (parms.flags & A_CLING_TO_ALLOCED) st.numPositionalAreas = this.areaCount;

    for (;;) {
      const lastIx = ix;
      for (const pvm of maps) {
        if (pvm.isEmpty()) continue;
        let skip = false;
        if (parms.alloc !== ALLOC_ANYWHERE) {
          if (!logIterationCount && parallelPvs && this.pvIsParallel(pvm.pv.pvId, parallelPvs)) skip = true;
          else if (logIterationCount) {
            // Avoid PVs already set aside for the log.
            for (let s = devicesNeeded; s < ix + st.numPositionalAreas; s++) {
              const a = st.areas[s];
              if (a?.pva && a.pva.map.pv.pvId === pvm.pv.pvId) skip = true;
            }
          } else if (iterationCount) {
            // Second pass: avoid PVs already used in an uncommitted area.
            for (let s = 0; s < devicesNeeded; s++) {
              const a = st.areas[s];
              if (a?.pva && a.pva.map.pv.pvId === pvm.pv.pvId) skip = true;
            }
          }
        }
        if (!skip) {
          let alreadyFoundOne = false;
          // The live list: reserving part of an area re-sorts it, and the walk continues from its new place.
          for (let pva = pvm.head.next; pva !== pvm.head; pva = pva.next) {
            const use = this.checkPva(pva, maxToAllocate, st, alreadyFoundOne, iterationCount, logIterationCount);
            if (use === AreaUse.PREFERRED) {
              preferredCount++;
              break;
            }
            if (use === AreaUse.NEXT_PV) break;
            if (use === AreaUse.NEXT_AREA) continue;
            // USE_AREA: except with anywhere, a later (smaller) area of this PV replaces the first.
            if (!alreadyFoundOne || parms.alloc === ALLOC_ANYWHERE) {
              ix++;
              alreadyFoundOne = true;
            }
            const slot = ix + st.numPositionalAreas - 1;
            const required = this.calcRequiredExtents(pva, slot, maxToAllocate, parms.alloc);
            this.reserveArea(st, pva, required, slot);
          }
        }
        // next_pv:
        if (
          (parms.alloc === ALLOC_ANYWHERE && ix + st.numPositionalAreas >= devicesNeeded + st.logAreaCountStillNeeded) ||
          (preferredCount === st.numPositionalAreas && st.numPositionalAreas === devicesNeeded + st.logAreaCountStillNeeded)
        )
          break;
      }
      const again =
        (parms.alloc === ALLOC_ANYWHERE && lastIx !== ix && ix < devicesNeeded + st.logAreaCountStillNeeded) ||
        // With cling_to_alloced and normal, a second pass fills gaps in the preferred areas.
        (parms.alloc === ALLOC_NORMAL &&
          preferredCount > 0 &&
          (preferredCount < st.numPositionalAreas || st.logAreaCountStillNeeded > 0) &&
          (parms.flags & A_CLING_TO_ALLOCED) !== 0 &&
          !iterationCount++) ||
        // An extra pass may put the log on a PV already used by the data.
        (parms.alloc === ALLOC_NORMAL &&
          preferredCount === st.numPositionalAreas &&
          !this.mirrorLogsSeparate &&
          ix + preferredCount >= devicesNeeded &&
          ix + preferredCount < devicesNeeded + st.logAreaCountStillNeeded &&
          !logIterationCount++);
      if (!again) break;
    }

    if (preferredCount < st.numPositionalAreas && !(parms.flags & A_CLING_TO_ALLOCED) && !ix) return;
    if (ix + preferredCount < devicesNeeded + st.logAreaCountStillNeeded) return;

    // Sort so the biggest areas are used (glibc's qsort here is a stable merge sort).
    const sortRange = (from: number, n: number): void => {
      const part = st.areas.slice(from, from + n).map((a) => ({ pva: a.pva, used: a.used }));
      part.sort((l, r) => r.used - l.used);
      for (let i = 0; i < n; i++) st.areas[from + i] = part[i]!;
    };
    if (logIterationCount) {
      if (ix > devicesNeeded + 1) sortRange(devicesNeeded, ix - devicesNeeded);
    } else if (ix > 1) sortRange(st.numPositionalAreas, ix);

    // Fill gaps in the preferred areas from the sorted part.
    if (preferredCount && preferredCount !== st.numPositionalAreas) {
      for (let s = 0; s < devicesNeeded; s++) {
        if (!st.areas[s]!.pva) {
          const src = st.areas[st.numPositionalAreas]!;
          st.areas[s]!.pva = src.pva;
          st.areas[s]!.used = src.used;
          st.areas[st.numPositionalAreas++]!.pva = undefined;
        }
      }
    }

    // The log goes on the smallest area that can hold it.
    let tooSmallForLog = 0;
    let ixLogOffset = 0;
    if (st.logAreaCountStillNeeded) {
      while (tooSmallForLog < st.numPositionalAreas + ix && st.areas[st.numPositionalAreas + ix - 1 - tooSmallForLog]!.used < this.logLen) tooSmallForLog++;
      if (this.mirrorLogsSeparate && tooSmallForLog && tooSmallForLog >= devicesNeeded) return;
      if (st.numPositionalAreas + ix < tooSmallForLog + this.logAreaCount) return;
      ixLogOffset = st.numPositionalAreas + ix - (tooSmallForLog + this.logAreaCount);
    }

    if (ix + st.numPositionalAreas < devicesNeeded) return;

    if (parms.flags & A_PARTITION_BY_TAGS && !st.numPositionalAreas) {
      const ixRef = { v: ix };
      this.limitToOneAreaPerTag(st, ixLogOffset, ixRef);
      ix = ixRef.v;
      if (st.logAreaCountStillNeeded) {
        tooSmallForLog = 0;
        while (tooSmallForLog < ix && st.areas[ix - 1 - tooSmallForLog]!.pva && st.areas[ix - 1 - tooSmallForLog]!.used < this.logLen) tooSmallForLog++;
        if (ix < tooSmallForLog + this.logAreaCount) return;
        ixLogOffset = ix - tooSmallForLog - this.logAreaCount;
      }
      if (ix < devicesNeeded + (st.logAreaCountStillNeeded ? st.logAreaCountStillNeeded + tooSmallForLog : 0)) return;
    }

    this.allocParallelArea(maxToAllocate, st, ixLogOffset);
    // The log is always allocated the first time.
    st.logAreaCountStillNeeded = 0;
  }

  /** _find_max_parallel_space_for_one_policy. */
  private findMaxParallelSpaceForOnePolicy(parms: AllocParms, maps: readonly PvMap[], st: AllocState): void {
    st.parms = parms;
    do {
      let parallelPvs: readonly string[] | undefined;
      let maxToAllocate = parms.extentsStillNeeded - st.allocated;
      if (this.parallelAreas) {
        const prev = parms.prevSeg;
        const nextLe = (prev ? prev.seg.startExtent + prev.seg.extentCount : 0) + Math.floor(st.allocated / this.areaMultiple);
        for (const spvs of this.parallelAreas) {
          if (nextLe >= spvs.le + spvs.len) continue;
          const split = this.allocAndSplitMeta && !this.splitMetadataIsAllocated ? this.logLen : 0;
          const maxTmp = maxToAllocate + st.allocated - split;
          if (maxTmp > (spvs.le + spvs.len) * this.areaMultiple) maxToAllocate = (spvs.le + spvs.len) * this.areaMultiple - st.allocated + split;
          parallelPvs = spvs.pvIds;
          break;
        }
      }
      const oldAllocated = st.allocated;
      this.findSomeParallelSpace(maps, st, parallelPvs, maxToAllocate);
      if (oldAllocated === st.allocated) {
        if (this.maximiseCling && (parms.alloc === ALLOC_CLING || parms.alloc === ALLOC_CLING_BY_TAGS) && parms.flags & A_CLING_TO_LVSEG && parms.flags & A_POSITIONAL_FILL)
          parms.flags &= ~A_POSITIONAL_FILL;
        else if (parms.alloc === ALLOC_NORMAL && parms.flags & A_CLING_TO_ALLOCED) parms.flags &= ~A_CLING_TO_ALLOCED;
        else break;
      } else if (this.maximiseCling && parms.alloc === ALLOC_NORMAL && !(parms.flags & A_CLING_TO_ALLOCED)) parms.flags |= A_CLING_TO_ALLOCED;
    } while (parms.alloc !== ALLOC_CONTIGUOUS && st.allocated !== parms.extentsStillNeeded && parms.flags & A_CAN_SPLIT && (!this.approx || pvMapsSize(maps)));
  }

  /** _allocate. */
  run(): void {
    const req = this.req;
    const lv = req.lv;
    let canSplit = true;
    const st: AllocState = {
      parms: { alloc: 0, flags: 0, prevSeg: undefined, extentsStillNeeded: 0 },
      areas: [],
      logAreaCountStillNeeded: this.logAreaCount,
      allocated: lv ? lvLeCount(lv) : 0,
      numPositionalAreas: 0,
    };
    if (st.allocated >= this.newExtents && !this.logAreaCount) return;
    if (this.areaMultiple > 1 && (this.newExtents - st.allocated) % this.areaMultiple)
      throw new AllocationError(`Number of extents requested (${this.newExtents - st.allocated}) needs to be divisible by ${this.areaMultiple}.`);
    if (this.alloc === ALLOC_CONTIGUOUS) canSplit = false;
    const prevSeg = lv ? lastSeg(lv) : undefined;
    const maps = createPvMaps(req.pvs, vgFreeRuns(req.vg));
    let areasSize = maps.length;
    if (areasSize && areasSize < this.areaCount + this.parityCount + this.logAreaCount) {
      if (this.alloc !== ALLOC_ANYWHERE && this.mirrorLogsSeparate)
        throw new AllocationError("Not enough PVs with free space available for parallel allocation.\nConsider --alloc anywhere if desperate.");
      areasSize = this.areaCount + this.parityCount + this.logAreaCount;
    }
    if (prevSeg) areasSize += stripesPerMimage(this.idx, prevSeg.seg) * segAreas(prevSeg.seg).length;
    for (let i = 0; i < areasSize; i++) st.areas.push({ pva: undefined, used: 0 });

    // cling includes implicit cling_by_tags (which does nothing without cling_tag_list).
    if (this.alloc === ALLOC_CLING) this.alloc = ALLOC_CLING_BY_TAGS;

    for (let alloc = ALLOC_CONTIGUOUS; alloc <= this.alloc; alloc++) {
      if (alloc === ALLOC_CLING_BY_TAGS && !this.clingTags) continue;
      const oldAllocated = st.allocated;
      if (!this.approx) this.sufficientPesFree(maps, st.allocated, st.logAreaCountStillNeeded, this.newExtents);
      const parms = this.initAllocParms(alloc, prevSeg, canSplit, st.allocated, this.newExtents);
      this.findMaxParallelSpaceForOnePolicy(parms, maps, st);
      // If only the log is missing, carry on with the later policies up to normal.
      if (st.allocated === this.newExtents && st.logAreaCountStillNeeded && this.alloc < ALLOC_NORMAL) {
        this.alloc = ALLOC_NORMAL;
        continue;
      }
      if ((st.allocated === this.newExtents && !st.logAreaCountStillNeeded) || (!canSplit && st.allocated !== oldAllocated)) break;
    }

    const lvName = lv ? lv.name : "";
    if (st.allocated !== this.newExtents) {
      const contig = canSplit ? "" : "contiguous ";
      if (!this.approx) {
        const more = Math.floor(((this.newExtents - st.allocated) * this.areaCount) / this.areaMultiple);
        throw new AllocationError(`Insufficient suitable ${contig}allocatable extents for logical volume ${lvName}: ${more} more required`, { more });
      }
      if (!st.allocated) throw new AllocationError(`Insufficient suitable ${contig}allocatable extents found for logical volume ${lvName}.`);
      this.newExtents = st.allocated;
    }
    if (st.logAreaCountStillNeeded) throw new AllocationError(`Insufficient free space for log allocation for logical volume ${lvName}.`);
  }
}

/**
 * allocate_extents(): choose the space for a request. Throws AllocationError
 * with lvm2's message when it cannot be satisfied. `idx` lets callers that
 * change the VG around the call share one name index.
 */
export function allocateExtents(req: AllocRequest, idx?: LvIndex): AllocResult {
  const a = new Allocator(req, idx ?? new LvIndex(req.vg));
  a.run();
  return { newExtents: a.newExtents, areaCount: a.areaCount, areaMultiple: a.areaMultiple, logAreaCount: a.logAreaCount, logLen: a.logLen, slots: a.slots };
}
