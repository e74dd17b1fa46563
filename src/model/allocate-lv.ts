import type { Area, LogicalVolume, MirrorSegment, RaidSegment, Segment, StripedSegment, VolumeGroup } from "./types.js";
import { isIntegritySeg, isMirrorSeg, isRaidSeg, isStripedSeg, segAreaExtents, segAreas } from "./lv-info.js";
import { AllocationError, CommandError, InternalError } from "../errors/errors.js";
import { validLvName } from "./names.js";
import {
  allocateExtents,
  buildParallelAreas,
  calcAreaMultiple,
  lvLeCount,
  LvIndex,
  type AllocConfig,
  type AllocPolicyName,
  type AllocResult,
} from "./allocate.js";
import { vgFreeCount, type PvListEntry } from "./allocate-pv-maps.js";

/**
 * Building LVs from allocations, as lv_manip.c and mirror.c do: new empty
 * LVs (lv_create_empty, lvol%d names), lv_extend for linear, striped and
 * mirrored LVs (sub-LVs _mimage_N first), mirror logs, lv_reduce and
 * lv_remove (recursing into images and logs), renames with sub-LVs. Pure:
 * changes the VG in memory; commands commit and do the I/O.
 *
 * For lvconvert and repairs (all on one VgEditor over the working VG):
 *  - addMirrorImages(lv, {mirrors, stripes, logCount, pvs, policy, ...}):
 *    lvm2's add_mirror_images — N new legs (and a log) allocated away from
 *    the PVs the LV uses; a linear LV becomes LV_mimage_0 under a mirror
 *    segment. Returns the images and the (visible, unattached) log; then
 *    initMirrorLog (commands/lv-io.ts) and attachMirrorLog, as lvm2 does.
 *    For an existing disk-log mirror lvm2 first inserts a _mimagetmp_N
 *    layer (insertLayerForLv) and adds the legs to that; that sequence is
 *    lvconvert's.
 *  - createMirrorLog(lv, 1, regionSize, space) + attachMirrorLog: a disk
 *    log for a core-log mirror (add_mirror_log).
 *  - allocateExtents({lv: undefined, segtype: "mirror", mirrors: N,
 *    stripes, logCount, extents: le_count, parallelAreas:
 *    buildParallelAreas(vg, lv)}) for raw replacement space; addSegments
 *    turns a slot of the result into segments of any LV.
 *  - lvReduce / lvRemove for dropping legs and logs (remove the area from
 *    the mirror segment first, then lvRemove the image).
 */

/** What new LVs get stamped with; injected so tests are deterministic. */
export interface LvEnv {
  nowSeconds: number;
  hostname: string;
  newId: () => string;
  config?: AllocConfig;
}

/** How a request names its space: PV list (or the whole VG), policy, approximate. */
export interface SpaceSpec {
  pvs: readonly PvListEntry[];
  policy: AllocPolicyName;
  approx: boolean;
}

export interface ExtendParams extends SpaceSpec {
  segtype: "striped" | "mirror" | "raid1";
  stripes: number;
  stripeSizeSectors: number;
  /** Mirror legs (1 for linear/striped). */
  mirrors: number;
  regionSizeSectors: number;
  /** Logical extents to add (approx: at most). */
  extents: number;
}

const MIRROR_SYNC_LAYER = "_mimagetmp";

/** Resolve an LV's policy: its own unless inherit, then the VG's (normal when unset). */
export function effectivePolicy(vg: VolumeGroup, requested: string | undefined): AllocPolicyName {
  if (requested && requested !== "inherit") return requested as AllocPolicyName;
  return (vg.allocationPolicy as AllocPolicyName | undefined) ?? "normal";
}

export class VgEditor {
  readonly idx: LvIndex;
  constructor(
    readonly vg: VolumeGroup,
    readonly env: LvEnv,
  ) {
    this.idx = new LvIndex(vg);
  }

  lv(name: string): LogicalVolume | undefined {
    return this.idx.get(name);
  }

  /** generate_lv_name: `format` with %d replaced by one more than the highest number in use. */
  generateLvName(format: string): string {
    const at = format.indexOf("%d");
    const prefix = format.slice(0, at);
    let high = -1;
    const scan = (name: string): void => {
      if (!name.startsWith(prefix)) return;
      // sscanf("%d"): optional whitespace and sign, then digits; trailing text ignored.
      const m = /^[+-]?\d+/.exec(name.slice(prefix.length));
      if (!m) return;
      const i = Number(m[0]);
      if (Number.isFinite(i) && i > high) high = i;
    };
    for (const lv of this.vg.lvs) scan(lv.name);
    for (const n of historicalLvNames(this.vg)) scan(n);
    return prefix + String(high + 1) + format.slice(at + 2);
  }

  /** lv_name_is_used_in_vg. */
  nameInUse(name: string): { used: boolean; historical: boolean } {
    if (this.idx.get(name)) return { used: true, historical: false };
    if (historicalLvNames(this.vg).includes(name)) return { used: true, historical: true };
    return { used: false, historical: false };
  }

  /** lv_create_empty: a new LV without segments, appended to the VG. */
  createEmptyLv(nameOrFormat: string, status: string[], allocPolicy: string | undefined): LogicalVolume {
    const name = nameOrFormat.includes("%d") ? this.generateLvName(nameOrFormat) : nameOrFormat;
    const used = this.nameInUse(name);
    if (used.used) throw new CommandError(`Unable to create LV ${name} in Volume Group ${this.vg.name}: name already in use${used.historical ? " by historical LV" : ""}.`);
    const lv: LogicalVolume = {
      name,
      id: this.env.newId(),
      status: [...status],
      flags: [],
      tags: [],
      creationTime: this.env.nowSeconds,
      creationHost: this.env.hostname,
      lockArgs: undefined,
      allocationPolicy: allocPolicy === "inherit" ? undefined : allocPolicy,
      profile: undefined,
      readAheadSectors: undefined,
      major: undefined,
      minor: undefined,
      segments: [],
    };
    this.vg.lvs.push(lv);
    this.idx.add(lv);
    return lv;
  }

  /** Remove an LV that no longer has segments from the VG (unlink_lv_from_vg). */
  private unlink(lv: LogicalVolume): void {
    const i = this.vg.lvs.indexOf(lv);
    if (i !== -1) this.vg.lvs.splice(i, 1);
    this.idx.delete(lv.name);
  }

  // ---- extending ------------------------------------------------------------

  /**
   * lv_add_segment: one striped segment per allocation batch of slots
   * firstArea..firstArea+numAreas-1, appended to the LV, then merged with
   * its neighbours where lvm2 would.
   */
  addSegments(res: AllocResult, firstArea: number, numAreas: number, lv: LogicalVolume, stripeSizeSectors: number): void {
    let le = lvLeCount(lv);
    const areaMultiple = calcAreaMultiple("striped", numAreas, 0);
    for (const { batch, index } of res.slots[firstArea] ?? []) {
      const first = batch.areas[index];
      if (!first) continue;
      const stripes: Area[] = [];
      for (let s = 0; s < numAreas; s++) {
        const aa = batch.areas[index + s];
        if (!aa) throw new InternalError(`allocation batch is missing area ${index + s}`);
        stripes.push({ kind: "pv", pvId: aa.pvId, startPe: aa.pe });
      }
      const extents = first.len * areaMultiple;
      const seg: StripedSegment = {
        type: "striped",
        startExtent: le,
        extentCount: extents,
        tags: [],
        typeFlags: [],
        stripeSizeSectors: numAreas > 1 ? stripeSizeSectors : 0,
        stripes,
      };
      lv.segments.push(seg);
      le += extents;
    }
    mergeSegments(lv);
  }

  /**
   * lv_extend: allocate and add `extents` logical extents. A mirror without
   * segments first gets its image sub-LVs (_lv_insert_empty_sublvs); each
   * image then gets its stripes in parallel. Returns the extents added
   * (fewer than asked only for approximate requests).
   */
  lvExtend(lv: LogicalVolume, p: ExtendParams): number {
    const oldLe = lvLeCount(lv);
    const res = allocateExtents(
      {
        vg: this.vg,
        lv,
        segtype: p.segtype,
        stripes: p.stripes,
        mirrors: p.mirrors,
        // raid1: one rmeta per image, allocated with it (lv_extend passes mirrors as the log count).
        logCount: p.segtype === "raid1" ? (oldLe ? (isRaidSeg(lv.segments[0]!) ? lv.segments[0].raids.length : 0) : p.mirrors) : 0,
        regionSizeSectors: p.regionSizeSectors,
        extents: p.extents,
        pvs: p.pvs,
        policy: p.policy,
        approx: p.approx,
        parallelAreas: undefined,
        ...(this.env.config ? { config: this.env.config } : {}),
      },
      this.idx,
    );
    if (p.segtype === "raid1") {
      if (!oldLe) this.insertEmptyRaidImages(lv, p.regionSizeSectors, p.mirrors);
      this.extendLayeredRaid(res, lv, res.newExtents - res.logLen - oldLe);
    } else if (p.segtype !== "mirror") {
      this.addSegments(res, 0, res.areaCount, lv, p.stripeSizeSectors);
    } else {
      if (!oldLe) this.insertEmptyMirrorImages(lv, p.regionSizeSectors, p.mirrors);
      this.extendLayeredLv(res, lv, res.newExtents - oldLe, 0, p.stripes || 1, p.stripeSizeSectors);
    }
    return lvLeCount(lv) - oldLe;
  }

  /** _lv_insert_empty_sublvs for mirrors: the mirror segment and its empty images. */
  private insertEmptyMirrorImages(lv: LogicalVolume, regionSizeSectors: number, devices: number): void {
    const seg: MirrorSegment = {
      type: "mirror",
      startExtent: 0,
      extentCount: 0,
      tags: [],
      typeFlags: [],
      mirrorLog: undefined,
      regionSizeSectors,
      extentsMoved: undefined,
      mirrors: [],
    };
    for (let i = 0; i < devices; i++) {
      const name = devices > 1 ? `${lv.name}_mimage_${i}` : `${lv.name}_mimage`;
      // Images take the parent's policy (lvm2: "FIXME Should use ALLOC_INHERIT").
      const sub = this.createEmptyLv(name, ["READ", "WRITE"], lv.allocationPolicy);
      seg.mirrors.push({ kind: "lv", lvName: sub.name, startLe: 0 });
    }
    lv.segments.push(seg);
  }

  /**
   * _lv_insert_empty_sublvs for raid1: the raid segment and its empty
   * images, LV_rimage_N then LV_rmeta_N for each N (hidden, the parent's
   * policy), as lvm2 creates them.
   */
  private insertEmptyRaidImages(lv: LogicalVolume, regionSizeSectors: number, devices: number): void {
    const seg: RaidSegment = {
      type: "raid1",
      startExtent: 0,
      extentCount: 0,
      tags: [],
      typeFlags: [],
      regionSizeSectors,
      stripeSizeSectors: 0,
      writeBehind: 0,
      minRecoveryRate: 0,
      maxRecoveryRate: 0,
      dataOffset: undefined,
      raids: [],
    };
    for (let i = 0; i < devices; i++) {
      const image = this.createEmptyLv(`${lv.name}_rimage_${i}`, ["READ", "WRITE"], lv.allocationPolicy);
      const meta = this.createEmptyLv(`${lv.name}_rmeta_${i}`, ["READ", "WRITE"], lv.allocationPolicy);
      seg.raids.push({ meta: meta.name, image: image.name });
    }
    lv.segments.push(seg);
  }

  /** _lv_extend_layered_lv for raid1: each image from its slot, each rmeta from slot areaCount + N. */
  private extendLayeredRaid(res: AllocResult, lv: LogicalVolume, extents: number): void {
    const seg = lv.segments[0];
    if (!seg || !isRaidSeg(seg)) throw new InternalError(`${lv.name} has no raid segment to extend`);
    seg.raids.forEach((r, s) => {
      const image = this.idx.get(r.image);
      if (!image) throw new InternalError(`raid image ${r.image} not found`);
      this.addSegments(res, s, 1, image, 0);
      if (r.meta === undefined || !res.slots[res.areaCount + s]?.length) return;
      const meta = this.idx.get(r.meta);
      if (!meta) throw new InternalError(`raid metadata ${r.meta} not found`);
      this.addSegments(res, res.areaCount + s, 1, meta, 0);
    });
    seg.extentCount += extents;
  }

  /** _lv_extend_layered_lv: extend each image by its stripes, then the mirror segment. */
  private extendLayeredLv(res: AllocResult, lv: LogicalVolume, extents: number, firstArea: number, stripes: number, stripeSizeSectors: number): void {
    const seg = lv.segments[0];
    if (!seg || !isMirrorSeg(seg)) throw new InternalError(`${lv.name} has no mirror segment to extend`);
    let fa = firstArea;
    for (const a of seg.mirrors) {
      if (a.kind !== "lv") throw new InternalError(`mirror ${lv.name} has a PV area`);
      const sub = this.idx.get(a.lvName);
      if (!sub) throw new InternalError(`mirror image ${a.lvName} not found`);
      if (sub.segments.some(isMirrorSeg)) throw new CommandError(`Can't extend ${lv.name}: image ${sub.name} is itself mirrored (conversion in progress).`);
      this.addSegments(res, fa, stripes, sub, stripeSizeSectors);
      fa += stripes;
    }
    seg.extentCount += extents;
  }

  // ---- mirror logs and images -------------------------------------------------

  /**
   * The first half of add_mirror_log (lvcreate's disk log): allocate the log
   * away from the legs where possible and create it as a visible, not yet
   * attached LV named LV_mlog. lvm2 commits at this point, initialises the
   * log, then attaches it (attachMirrorLog) and commits again.
   */
  createMirrorLog(lv: LogicalVolume, logCount: number, regionSizeSectors: number, space: SpaceSpec, logAllocPolicy: string | undefined = lv.allocationPolicy): LogicalVolume {
    if (lv.segments.length !== 1) throw new CommandError("Multiple-segment mirror is not supported.");
    const seg = lv.segments[0]!;
    if (!isMirrorSeg(seg)) throw new CommandError(`${lv.name} is not a mirror.`);
    if (seg.mirrorLog) throw new CommandError(`Mirror ${this.vg.name}/${lv.name} already has a disk log.`);
    if (logCount > 1) throw new CommandError('Log type "mirrored" is DEPRECATED. Use RAID1 LV or disk log instead.');
    const parallel = buildParallelAreas(this.vg, lv, this.idx);
    let res: AllocResult;
    try {
      res = allocateExtents(
        {
          vg: this.vg,
          lv: undefined,
          segtype: "mirror",
          stripes: 0,
          mirrors: 0,
          logCount,
          regionSizeSectors,
          extents: lvLeCount(lv),
          pvs: space.pvs,
          policy: space.policy,
          approx: false,
          parallelAreas: parallel,
          ...(this.env.config ? { config: this.env.config } : {}),
        },
        this.idx,
      );
    } catch (e) {
      if (e instanceof AllocationError) throw new AllocationError(`${e.message}\nUnable to allocate extents for mirror log.`, { ...e.details });
      throw e;
    }
    // The log LV records the policy the command was given (lvcreate: the LV's own).
    return this.createLogLv(lv, res, logAllocPolicy);
  }

  /** _set_up_mirror_log/_create_mirror_log: name the log and give it the log slot of `res`. */
  private createLogLv(lv: LogicalVolume, res: AllocResult, allocPolicy: string | undefined): LogicalVolume {
    const seg = lv.segments[0];
    let base = lv.name;
    let suffix = "_mlog";
    const a0 = seg ? segAreas(seg)[0] : undefined;
    if (a0 && a0.kind === "lv" && a0.lvName.includes(MIRROR_SYNC_LAYER)) suffix = "_mlogtmp_%d";
    else if (lv.name.includes(MIRROR_SYNC_LAYER)) base = lv.name.slice(0, lv.name.indexOf(MIRROR_SYNC_LAYER));
    const log = this.createEmptyLv(base + suffix, ["READ", "WRITE", "VISIBLE"], allocPolicy);
    this.addSegments(res, res.areaCount, 1, log, 0);
    return log;
  }

  /** attach_mirror_log: the log becomes the mirror's (hidden). */
  attachMirrorLog(lv: LogicalVolume, log: LogicalVolume): void {
    const seg = lv.segments[0];
    if (!seg || !isMirrorSeg(seg)) throw new InternalError(`${lv.name} is not a mirror`);
    seg.mirrorLog = log.name;
    log.status = log.status.filter((s) => s !== "VISIBLE");
  }

  /**
   * add_mirror_images (lvconvert -m+N, MIRROR_BY_LV): allocate `mirrors`
   * new legs (and `logCount` logs) away from the PVs the LV uses, turn a
   * linear LV into a mirror (its segments move to LV_mimage_0), then add
   * the new images LV_mimage_N. Returns the new images and the log (visible
   * and unattached, to be initialised, then attached, as lvm2 does); the
   * caller sets the mirror's region size policy and sync state.
   */
  addMirrorImages(
    lv: LogicalVolume,
    p: SpaceSpec & { mirrors: number; stripes: number; stripeSizeSectors: number; regionSizeSectors: number; logCount: number; logAllocPolicy?: string },
  ): { images: LogicalVolume[]; log: LogicalVolume | undefined } {
    const parallel = buildParallelAreas(this.vg, lv, this.idx);
    let res: AllocResult;
    try {
      res = allocateExtents(
        {
          vg: this.vg,
          lv: undefined,
          segtype: "mirror",
          stripes: p.stripes,
          mirrors: p.mirrors,
          logCount: p.logCount,
          regionSizeSectors: p.regionSizeSectors,
          extents: lvLeCount(lv),
          pvs: p.pvs,
          policy: p.policy,
          approx: false,
          parallelAreas: parallel,
          ...(this.env.config ? { config: this.env.config } : {}),
        },
        this.idx,
      );
    } catch (e) {
      if (e instanceof AllocationError) throw new AllocationError(`${e.message}\nUnable to allocate extents for mirror(s).`, { ...e.details });
      throw e;
    }
    const log = p.logCount ? this.createLogLv(lv, res, p.logAllocPolicy) : undefined;
    const images = this.formMirror(res, lv, p.mirrors, p.stripes || 1, p.stripeSizeSectors, p.regionSizeSectors);
    return { images, log };
  }

  /** _form_mirror: layer the LV if needed, create the new images from `res`, add them as legs. */
  private formMirror(res: AllocResult, lv: LogicalVolume, mirrors: number, stripes: number, stripeSizeSectors: number, regionSizeSectors: number): LogicalVolume[] {
    const first = lv.segments[0];
    if (lv.segments.length !== 1 || !first || segAreas(first)[0]?.kind !== "lv") this.insertLayerForLv(lv, "_mimage_%d");
    const images: LogicalVolume[] = [];
    for (let m = 0; m < mirrors; m++) {
      const img = this.createEmptyLv(`${lv.name}_mimage_%d`, ["READ", "WRITE"], undefined);
      this.addSegments(res, m * stripes, stripes, img, stripeSizeSectors);
      images.push(img);
    }
    this.addMirrorLvs(lv, images, regionSizeSectors);
    return images;
  }

  /**
   * insert_layer_for_lv: move the LV's segments to a new hidden LV named
   * from `suffix` ("%d" numbered) and map the LV linearly onto it.
   */
  insertLayerForLv(lv: LogicalVolume, suffix: string): LogicalVolume {
    const status = ["READ", ...(lv.status.includes("WRITE") ? ["WRITE"] : [])];
    const layer = this.createEmptyLv(lv.name + suffix, status, undefined);
    layer.segments = lv.segments.map((s) => ({ ...s }));
    const le = lvLeCount(layer);
    lv.segments = [
      { type: "striped", startExtent: 0, extentCount: le, tags: [], typeFlags: [], stripeSizeSectors: 0, stripes: [{ kind: "lv", lvName: layer.name, startLe: 0 }] },
    ];
    return layer;
  }

  /** lv_add_mirror_lvs: make the single-area LV a mirror (if not yet) and append legs. */
  addMirrorLvs(lv: LogicalVolume, subLvs: LogicalVolume[], regionSizeSectors: number): void {
    let seg = lv.segments[0];
    if (lv.segments.length !== 1 || !seg || segAreas(seg)[0]?.kind !== "lv") throw new InternalError("Mirror layer must be inserted before adding mirrors.");
    if (!isMirrorSeg(seg)) {
      if (!isStripedSeg(seg) || seg.stripes.length > 1) throw new CommandError("Can't convert striped segment with multiple areas to mirrored.");
      const m: MirrorSegment = {
        type: "mirror",
        startExtent: seg.startExtent,
        extentCount: seg.extentCount,
        tags: seg.tags,
        typeFlags: [],
        mirrorLog: undefined,
        regionSizeSectors,
        extentsMoved: undefined,
        mirrors: [...seg.stripes],
      };
      lv.segments[0] = m;
      seg = m;
    }
    const ms = seg as MirrorSegment;
    if (regionSizeSectors && regionSizeSectors !== ms.regionSizeSectors) throw new CommandError(`Conflicting region_size ${regionSizeSectors} != ${ms.regionSizeSectors}.`);
    for (const sub of subLvs) {
      ms.mirrors.push({ kind: "lv", lvName: sub.name, startLe: 0 });
      sub.status = sub.status.filter((s) => s !== "VISIBLE");
    }
    for (const a of ms.mirrors) {
      const img = a.kind === "lv" ? this.idx.get(a.lvName) : undefined;
      if (img) img.status = img.status.filter((s) => s !== "VISIBLE");
    }
  }

  // ---- reducing and removing --------------------------------------------------

  /**
   * lv_reduce (_lv_reduce with delete): drop `extents` logical extents from
   * the end. Mirror legs shrink with their mirror; a segment dropped whole
   * takes its log with it; an LV left empty leaves the VG.
   */
  lvReduce(lv: LogicalVolume, extents: number): void {
    let count = extents;
    for (let i = lv.segments.length - 1; i >= 0 && count; i--) {
      const seg = lv.segments[i]!;
      let reduction: number;
      if (seg.extentCount <= count) {
        if (isMirrorSeg(seg) && seg.mirrorLog) {
          const log = this.idx.get(seg.mirrorLog);
          seg.mirrorLog = undefined;
          if (log) this.lvReduce(log, lvLeCount(log));
        }
        // A raid segment dropped whole takes its rmeta LVs with it.
        if (isRaidSeg(seg))
          for (const r of seg.raids) {
            const meta = r.meta !== undefined ? this.idx.get(r.meta) : undefined;
            if (meta) this.lvReduce(meta, lvLeCount(meta));
          }
        // An integrity segment dropped whole takes its imeta too (lv_remove's "Remove integrity metadata").
        if (isIntegritySeg(seg) && seg.metaDev !== undefined) {
          const meta = this.idx.get(seg.metaDev);
          seg.metaDev = undefined;
          if (meta) this.lvReduce(meta, lvLeCount(meta));
        }
        reduction = seg.extentCount;
        this.segmentReduce(seg, reduction);
        lv.segments.splice(i, 1);
      } else {
        reduction = count;
        this.segmentReduce(seg, reduction);
      }
      count -= reduction;
    }
    if (!lv.segments.length) this.unlink(lv);
  }

  /** _lv_segment_reduce: shorten every area; image LVs are reduced in turn. */
  private segmentReduce(seg: Segment, reduction: number): void {
    const areas = segAreas(seg);
    let areaReduction = reduction;
    if (isStripedSeg(seg)) {
      if (reduction % areas.length) throw new CommandError(`Segment extent reduction ${reduction} not divisible by #stripes ${areas.length}`);
      areaReduction = reduction / areas.length;
    } else if (isIntegritySeg(seg) && reduction !== seg.extentCount) throw new CommandError("Cannot reduce LV with integrity.");
    else if (!isMirrorSeg(seg) && !isRaidSeg(seg) && !isIntegritySeg(seg) && areas.length > 0) throw new CommandError(`Cannot reduce a ${seg.type} segment.`);
    for (const a of areas) {
      if (a.kind !== "lv") continue;
      const sub = this.idx.get(a.lvName);
      if (sub) this.lvReduce(sub, areaReduction);
    }
    seg.extentCount -= reduction;
  }

  /** lv_remove: release everything the LV and its sub-LVs hold. */
  lvRemove(lv: LogicalVolume): void {
    this.lvReduce(lv, lvLeCount(lv));
    this.unlink(lv);
  }

  // ---- renaming ------------------------------------------------------------------

  /**
   * lv_rename_update: rename the LV and its sub-LVs (LV_mimage_0 →
   * NEW_mimage_0, ...) and the references to them. Sub-LV names must start
   * with the old name and '_'.
   */
  lvRename(lv: LogicalVolume, newName: string): void {
    if (this.nameInUse(newName).used) throw new CommandError(`Logical Volume "${newName}" already exists in volume group "${this.vg.name}"`);
    const oldName = lv.name;
    const renames = new Map<string, string>();
    const visit = (l: LogicalVolume, level: number): void => {
      if (level > 0) {
        if (!l.name.startsWith(oldName) || l.name[oldName.length] !== "_")
          throw new CommandError(`Cannot rename "${oldName}": name format not recognized for internal LV "${l.name}"`);
        const nn = newName + l.name.slice(oldName.length);
        if (!validLvName(nn)) throw new CommandError(`Cannot rename "${l.name}". New logical volume name "${nn}" is invalid.`);
        if (this.nameInUse(nn).used && !renames.has(nn)) throw new CommandError(`Logical Volume "${nn}" already exists in volume group "${this.vg.name}"`);
        renames.set(l.name, nn);
      }
      for (const seg of l.segments) {
        if (isMirrorSeg(seg) && seg.mirrorLog) {
          const log = this.idx.get(seg.mirrorLog);
          if (log) visit(log, level + 1);
        }
        for (const a of segAreas(seg)) {
          if (a.kind !== "lv") continue;
          const sub = this.idx.get(a.lvName);
          if (sub) visit(sub, level + 1);
        }
      }
    };
    visit(lv, 0);
    renames.set(oldName, newName);
    for (const [from, to] of renames) {
      const l = this.idx.get(from);
      if (!l) continue;
      this.idx.delete(from);
      l.name = to;
    }
    for (const [, to] of renames) this.idx.add(this.vg.lvs.find((l) => l.name === to)!);
    for (const l of this.vg.lvs)
      for (const seg of l.segments) {
        for (const a of segAreas(seg)) if (a.kind === "lv" && renames.has(a.lvName)) a.lvName = renames.get(a.lvName)!;
        if (isMirrorSeg(seg) && seg.mirrorLog && renames.has(seg.mirrorLog)) seg.mirrorLog = renames.get(seg.mirrorLog)!;
      }
  }

  vgFreeCount(): number {
    return vgFreeCount(this.vg);
  }
}

/** lv_merge_segments for striped segments on PVs: neighbours that continue each other's areas become one. */
export function mergeSegments(lv: LogicalVolume): void {
  const out: Segment[] = [];
  for (const seg of lv.segments) {
    const prev = out[out.length - 1];
    if (prev && isStripedSeg(prev) && isStripedSeg(seg) && stripedCompatible(prev, seg)) {
      prev.extentCount += seg.extentCount;
      continue;
    }
    out.push(seg);
  }
  lv.segments = out;
}

function stripedCompatible(first: StripedSegment, second: StripedSegment): boolean {
  if (first.stripes.length !== second.stripes.length || first.stripeSizeSectors !== second.stripeSizeSectors) return false;
  const width = segAreaExtents(first);
  for (let s = 0; s < first.stripes.length; s++) {
    const a = first.stripes[s]!;
    const b = second.stripes[s]!;
    if (a.kind !== "pv" || b.kind !== "pv") return false;
    if (a.pvId !== b.pvId || a.startPe + width !== b.startPe) return false;
  }
  if (first.tags.length !== second.tags.length || first.tags.some((t) => !second.tags.includes(t))) return false;
  return true;
}

/** Names of historical LVs (metadata/record_lvs_history), which new LVs may not reuse. */
function historicalLvNames(vg: VolumeGroup): string[] {
  const h = vg.historicalLvs;
  if (!h) return [];
  const out: string[] = [];
  for (const node of h.children) if (node.kind === "section") out.push(node.name);
  return out;
}
