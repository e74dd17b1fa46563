import type { LogicalVolume, OpaqueSegment, RaidSegment, VolumeGroup } from "./types.js";
import { isRaidSeg, isStripedSeg, segAreas } from "./lv-info.js";
import { AllocationError, CommandError, InternalError } from "../errors/errors.js";
import { allocateExtents, buildParallelAreas, lvLeCount, raidRmetaExtents, type AllocResult } from "./allocate.js";
import type { SpaceSpec, VgEditor } from "./allocate-lv.js";

/**
 * raid1 image changes at the metadata level, as lib/metadata/raid_manip.c
 * does them (lvconvert -m, linear <-> raid1). Pure: the VgEditor's VG is
 * changed in memory; the command commits between the stages lvm2 commits
 * and does the I/O (zeroing new rmeta LVs).
 *
 * Adding images (_raid_add_images):
 *  1. raidAllocNewImages: allocate each new rmeta+rimage pair away from the
 *     PVs the LV uses (a linear LV first gets LV_rmeta_0 on its own PVs);
 *     the new LVs are visible, unattached, flagged REBUILD. lvm2 commits
 *     here, then wipes the first 4 KiB of every new rmeta (_clear_lvs).
 *  2. raidAttachNewImages: a linear LV moves its segments to LV_rimage_0
 *     (insert_layer_for_lv) and becomes raid1; the new pairs take the next
 *     slots and are hidden. Commit (and reload).
 *  3. clearRaidRebuild: the REBUILD flags go (after the reload passed them
 *     to the kernel); commit again if any was set.
 * For a linear LV lvm2 drops REBUILD at stage 2 unless dm-raid >= 1.9.0
 * says it can rebuild with empty metadata; without a kernel to ask (the
 * oracle, and ulvm, whose new array is all freshly zeroed rmeta anyway and
 * so resyncs whole from image 0) the flags go then, and there is no third
 * commit.
 *
 * Removing images (_raid_remove_images): raidExtractImages picks the images
 * (error-segment images first, then the last ones on the named PVs), renames
 * them LV_rimage_N_extracted / LV_rmeta_N_extracted, visible, and shifts and
 * renames the remaining pairs down; with one image left raidRemoveTopLayer
 * makes the LV linear again (its segments come back from LV_rimage_0, which
 * keeps an "error" segment until it is removed). Commit with the extracted
 * LVs still present, remove them, commit again.
 */

export interface RaidAddPlan {
  fromLinear: boolean;
  metas: LogicalVolume[];
  images: LogicalVolume[];
  regionSizeSectors: number;
}

/** The raid1 segment of an LV (its only segment), if it is one. */
export function raidSegOf(lv: LogicalVolume): RaidSegment | undefined {
  const s = lv.segments[0];
  return lv.segments.length === 1 && s && isRaidSeg(s) ? s : undefined;
}

/** seg_is_linear: one striped segment of one area (or several such). */
export function isLinearLv(lv: LogicalVolume): boolean {
  return lv.segments.length > 0 && lv.segments.every((s) => isStripedSeg(s) && s.stripes.length === 1);
}

/** raid_ensure_min_region_size: double the region size until there are at most 2^21 regions. */
export function ensureMinRegionSize(sizeSectors: number, regionSizeSectors: number): number {
  let r = regionSizeSectors;
  while (sizeSectors / r > 2 ** 21) r *= 2;
  return r;
}

function addStatus(lv: LogicalVolume, flag: string): void {
  if (!lv.status.includes(flag)) lv.status.push(flag);
}

function dropStatus(lv: LogicalVolume, flag: string): void {
  lv.status = lv.status.filter((s) => s !== flag);
}

/** get_pv_list_for_lv: the PVs an LV's segments use, in order of use, whole. */
function pvsOfLv(lv: LogicalVolume, allPvs: SpaceSpec["pvs"]): SpaceSpec["pvs"] {
  const ids: string[] = [];
  for (const s of lv.segments) for (const a of segAreas(s)) if (a.kind === "pv" && !ids.includes(a.pvId)) ids.push(a.pvId);
  return ids.flatMap((id) => allPvs.filter((e) => e.pv.pvId === id)).map((e) => ({ pv: e.pv, ranges: undefined }));
}

function allocOrThrow(fn: () => AllocResult): AllocResult {
  try {
    return fn();
  } catch (e) {
    if (e instanceof AllocationError) throw new CommandError(e.message);
    throw e;
  }
}

/**
 * lvm2's _alloc_rmeta_for_lv: one rmeta for `image` (sized for its extents
 * and the region size), on the PVs the image uses, named after `owner`.
 */
function allocRmetaFor(ed: VgEditor, owner: string, image: LogicalVolume, regionSectors: number, policy: SpaceSpec["policy"], vgPvs: SpaceSpec["pvs"]): LogicalVolume {
  const res = allocOrThrow(() =>
    allocateExtents(
      {
        vg: ed.vg,
        lv: undefined,
        segtype: "striped",
        stripes: 1,
        mirrors: 1,
        logCount: 0,
        regionSizeSectors: regionSectors,
        extents: raidRmetaExtents(lvLeCount(image), regionSectors, ed.vg.extentSizeSectors),
        pvs: pvsOfLv(image, vgPvs),
        policy,
        approx: false,
        parallelAreas: undefined,
        ...(ed.env.config ? { config: ed.env.config } : {}),
      },
      ed.idx,
    ),
  );
  const meta = ed.createEmptyLv(`${owner}_rmeta_%d`, ["READ", "WRITE", "VISIBLE", "REBUILD"], undefined);
  ed.addSegments(res, 0, 1, meta, 0);
  return meta;
}

/**
 * Stage 1 of adding images (see above). `space` is where new pairs may go
 * (the PVs named, else the VG's); `vgPvs` every allocatable PV (a linear
 * LV's rmeta_0 goes on its own PVs); `defaultRegionSectors` is
 * get_default_region_size for a linear LV.
 */
export function raidAllocNewImages(ed: VgEditor, lv: LogicalVolume, newCount: number, space: SpaceSpec, vgPvs: SpaceSpec["pvs"], defaultRegionSectors: number): RaidAddPlan {
  const vg = ed.vg;
  const seg = raidSegOf(lv);
  const fromLinear = !seg;
  if (!seg && !isLinearLv(lv)) throw new CommandError(`Unable to add RAID images to ${vg.name}/${lv.name} of segment type ${lv.segments[0]?.type ?? "linear"}.`);
  const oldCount = seg ? seg.raids.length : 1;
  const count = newCount - oldCount;
  const le = lvLeCount(lv);
  const metas: LogicalVolume[] = [];
  const images: LogicalVolume[] = [];
  let region = seg?.regionSizeSectors ?? 0;
  if (fromLinear) {
    region = ensureMinRegionSize(le * vg.extentSizeSectors, defaultRegionSectors);
    metas.push(allocRmetaFor(ed, lv.name, lv, region, space.policy, vgPvs));
  }
  // _alloc_image_components: the new pairs, away from the LV's PVs.
  const parallel = buildParallelAreas(vg, lv, ed.idx);
  const res = allocOrThrow(() =>
    allocateExtents(
      {
        vg,
        lv: undefined,
        segtype: "raid1",
        stripes: 1,
        mirrors: count,
        logCount: count,
        regionSizeSectors: region,
        extents: le,
        pvs: space.pvs,
        policy: space.policy,
        approx: false,
        parallelAreas: parallel,
        ...(ed.env.config ? { config: ed.env.config } : {}),
      },
      ed.idx,
    ),
  );
  for (let s = 0; s < count; s++) {
    const meta = ed.createEmptyLv(`${lv.name}_rmeta_%d`, ["READ", "WRITE", "VISIBLE", "REBUILD"], undefined);
    ed.addSegments(res, res.areaCount + s, 1, meta, 0);
    metas.push(meta);
    const image = ed.createEmptyLv(`${lv.name}_rimage_%d`, ["READ", "WRITE", "VISIBLE", "REBUILD"], undefined);
    ed.addSegments(res, s, 1, image, 0);
    images.push(image);
  }
  if (fromLinear) {
    // The data LVs were named from _rimage_0 (the linear LV is not yet _rimage_0): shift the names up.
    for (let i = images.length - 1; i >= 0; i--) renameLv(ed, images[i]!, `${lv.name}_rimage_${i + 1}`);
  }
  return { fromLinear, metas, images, regionSizeSectors: region };
}

function renameLv(ed: VgEditor, lv: LogicalVolume, name: string): void {
  ed.idx.delete(lv.name);
  lv.name = name;
  ed.idx.add(lv);
}

/** Stage 2 of adding images: attach the new pairs (a linear LV becomes raid1 over LV_rimage_0). */
export function raidAttachNewImages(ed: VgEditor, lv: LogicalVolume, plan: RaidAddPlan): void {
  let seg = raidSegOf(lv);
  const metas = [...plan.metas];
  if (plan.fromLinear) {
    const layer = ed.insertLayerForLv(lv, "_rimage_0");
    const meta0 = metas.shift()!;
    const raid: RaidSegment = {
      type: "raid1",
      startExtent: 0,
      extentCount: lvLeCount(layer),
      tags: [],
      typeFlags: [],
      regionSizeSectors: plan.regionSizeSectors,
      stripeSizeSectors: 0,
      writeBehind: 0,
      minRecoveryRate: 0,
      maxRecoveryRate: 0,
      dataOffset: undefined,
      raids: [{ meta: meta0.name, image: layer.name }],
    };
    lv.segments = [raid];
    seg = raid;
    // No dm-raid to say it rebuilds with empty metadata: the whole new array resyncs (see above).
    for (const l of [meta0, ...metas, ...plan.images]) dropStatus(l, "REBUILD");
    dropStatus(meta0, "VISIBLE");
  }
  if (!seg) throw new InternalError(`${lv.name} is not raid1`);
  plan.images.forEach((image, i) => {
    seg.raids.push({ meta: metas[i]!.name, image: image.name });
  });
  for (const l of [...metas, ...plan.images]) dropStatus(l, "VISIBLE");
}

/** Stage 3: drop REBUILD from the sub-LVs; true when any had it. */
export function clearRaidRebuild(vg: VolumeGroup, lv: LogicalVolume): boolean {
  const seg = raidSegOf(lv);
  if (!seg) return false;
  let any = false;
  for (const r of seg.raids) {
    for (const n of [r.image, r.meta]) {
      const sub = n === undefined ? undefined : vg.lvs.find((l) => l.name === n);
      if (sub?.status.includes("REBUILD")) {
        any = true;
        dropStatus(sub, "REBUILD");
      }
    }
  }
  return any;
}

export function errorSegment(extentCount: number): OpaqueSegment {
  return { type: "error", opaque: true, startExtent: 0, extentCount, tags: [], typeFlags: [], areas: [], areaExtents: extentCount, raw: [] };
}

function isErrorLv(lv: LogicalVolume | undefined): boolean {
  return lv?.segments[0]?.type === "error";
}

function lvOnPvs(lv: LogicalVolume | undefined, pvIds: ReadonlySet<string>): boolean {
  if (!lv) return false;
  return lv.segments.some((s) => segAreas(s).some((a) => a.kind === "pv" && pvIds.has(a.pvId)));
}

/**
 * _raid_extract_images with shifting: take `oldCount - newCount` images off
 * (first those with error segments, then from the last slot down, the ones
 * on `targetPvIds`), renamed *_extracted and visible. `targetCount` is the
 * size of the PV list (lvm2 refuses when it is smaller than the count).
 * `pvListGiven`: the PVs were named on the command line.
 */
export function raidExtractImages(ed: VgEditor, lv: LogicalVolume, newCount: number, targetPvIds: ReadonlySet<string>, targetCount: number, pvListGiven: boolean): LogicalVolume[] {
  const seg = raidSegOf(lv);
  if (!seg) throw new InternalError(`${lv.name} is not raid1`);
  const disp = `${ed.vg.name}/${lv.name}`;
  let extract = seg.raids.length - newCount;
  if (targetCount < extract) throw new CommandError(`Unable to remove ${extract} images:  Only ${targetCount} device${targetCount === 1 ? "" : "s"} given.\nFailed to extract images from ${disp}.`);
  const out: LogicalVolume[] = [];
  // As lvm2: the loop's modulo follows the shrinking area count.
  for (let ss = seg.raids.length * 2 - 1; ss >= 0 && extract; ss--) {
    const n = seg.raids.length;
    const s = ss % n;
    const r = seg.raids[s];
    if (!r) continue;
    const image = ed.lv(r.image);
    const meta = r.meta !== undefined ? ed.lv(r.meta) : undefined;
    if (Math.floor(ss / n)) {
      if (!isErrorLv(image) && !isErrorLv(meta)) continue;
      if (pvListGiven)
        throw new CommandError(
          `${disp} has components with error targets that must be removed first: ${ed.vg.name}/${r.image}.\nTry removing the PV list and rerun. the command.\nFailed to extract images from ${disp}.`,
        );
    } else if (!lvOnPvs(image, targetPvIds) && !lvOnPvs(meta, targetPvIds)) continue;
    // _extract_image_components, then _shift_and_rename_image_components.
    seg.raids.splice(s, 1);
    for (const l of [meta, image]) {
      if (!l) continue;
      addStatus(l, "VISIBLE");
      renameLv(ed, l, `${l.name}_extracted`);
      out.push(l);
    }
    for (let i = s; i < seg.raids.length; i++) {
      const rr = seg.raids[i]!;
      if (rr.meta !== undefined) {
        const m = ed.lv(rr.meta)!;
        renameLv(ed, m, `${lv.name}_rmeta_${i}`);
        rr.meta = m.name;
      }
      const im = ed.lv(rr.image)!;
      renameLv(ed, im, `${lv.name}_rimage_${i}`);
      rr.image = im.name;
    }
    extract--;
  }
  if (extract) throw new CommandError(`Unable to extract enough images to satisfy request.\nFailed to extract images from ${disp}.`);
  return out;
}

/** _raid_remove_top_layer: a one-image raid1 LV becomes linear; rmeta_0 and rimage_0 join `removal`. */
export function raidRemoveTopLayer(ed: VgEditor, lv: LogicalVolume, removal: LogicalVolume[]): void {
  const seg = raidSegOf(lv);
  if (!seg || seg.raids.length !== 1) throw new InternalError("Unable to remove RAID layer when there is more than one sub-lv.");
  const r = seg.raids[0]!;
  const meta = r.meta !== undefined ? ed.lv(r.meta) : undefined;
  const image = ed.lv(r.image)!;
  if (meta) {
    addStatus(meta, "VISIBLE");
    removal.push(meta);
  }
  addStatus(image, "VISIBLE");
  removal.push(image);
  // remove_layer_from_lv: the LV takes the layer's segments; the layer keeps an error segment.
  lv.segments = image.segments;
  image.segments = [errorSegment(lvLeCount(lv))];
  dropStatus(lv, "NOTSYNCED");
  dropStatus(lv, "WRITEMOSTLY");
}

// ---- mirror <-> raid1 (takeover) ------------------------------------------------

/**
 * Stage 1 of _convert_mirror_to_raid1: one rmeta per mirror image, each
 * allocated on the PVs of its image (_alloc_rmeta_for_lv), named
 * LV_rmeta_N, visible and flagged REBUILD. lvm2 commits here and wipes them;
 * then the disk log (if any) goes (remove_mirror_log), then
 * mirrorToRaid1Attach. Returns the rmeta LVs' names in image order.
 */
export function mirrorToRaid1Alloc(ed: VgEditor, lv: LogicalVolume, vgPvs: SpaceSpec["pvs"], policy: SpaceSpec["policy"], defaultRegionSectors: number): string[] {
  const seg = lv.segments[0];
  if (lv.segments.length !== 1 || !seg || seg.type !== "mirror") throw new InternalError(`${lv.name} is not a mirror`);
  const names: string[] = [];
  for (const a of segAreas(seg)) {
    if (a.kind !== "lv") throw new InternalError(`mirror ${lv.name} has a PV area`);
    const image = ed.lv(a.lvName)!;
    if (!isLinearLv(image)) throw new CommandError(`Internal error: Unable to allocate RAID metadata area for non-linear LV ${ed.vg.name}/${image.name}.`);
    names.push(allocRmetaFor(ed, lv.name, image, defaultRegionSectors, policy, vgPvs).name);
  }
  return names;
}

/** The rest of _convert_mirror_to_raid1 (the log already gone): attach the rmeta LVs, rename _mimage_N to _rimage_N, raid1. */
export function mirrorToRaid1Attach(ed: VgEditor, lv: LogicalVolume, metaNames: readonly string[]): void {
  const seg = lv.segments[0];
  if (lv.segments.length !== 1 || !seg || seg.type !== "mirror" || !("mirrors" in seg)) throw new InternalError(`${lv.name} is not a mirror`);
  const raids: RaidSegment["raids"] = [];
  seg.mirrors.forEach((a, s) => {
    if (a.kind !== "lv") throw new InternalError(`mirror ${lv.name} has a PV area`);
    const meta = ed.lv(metaNames[s]!)!;
    dropStatus(meta, "REBUILD");
    dropStatus(meta, "VISIBLE");
    const image = ed.lv(a.lvName)!;
    renameLv(ed, image, `${lv.name}_rimage_${s}`);
    raids.push({ meta: meta.name, image: image.name });
  });
  const raid: RaidSegment = {
    type: "raid1",
    startExtent: seg.startExtent,
    extentCount: seg.extentCount,
    tags: seg.tags,
    typeFlags: [],
    regionSizeSectors: seg.regionSizeSectors,
    stripeSizeSectors: 0,
    writeBehind: 0,
    minRecoveryRate: 0,
    maxRecoveryRate: 0,
    dataOffset: undefined,
    raids,
  };
  lv.segments = [raid];
}

/**
 * prepare_mirror_log for _convert_raid1_to_mirror: a disk log LV_mlog away
 * from the LV's PVs, visible, with the VG's allocation policy recorded (lvm2
 * passes vg->alloc). lvm2 commits, initialises it, then (raid1ToMirror)
 * attaches it.
 */
export function raid1ToMirrorLog(ed: VgEditor, lv: LogicalVolume, regionSizeSectors: number, space: SpaceSpec): LogicalVolume {
  let res: AllocResult;
  try {
    res = allocateExtents(
      {
        vg: ed.vg,
        lv: undefined,
        segtype: "mirror",
        stripes: 0,
        mirrors: 0,
        logCount: 1,
        regionSizeSectors,
        extents: lvLeCount(lv),
        pvs: space.pvs,
        policy: space.policy,
        approx: false,
        parallelAreas: buildParallelAreas(ed.vg, lv, ed.idx),
        ...(ed.env.config ? { config: ed.env.config } : {}),
      },
      ed.idx,
    );
  } catch (e) {
    if (e instanceof AllocationError) throw new CommandError(`${e.message}\nUnable to allocate extents for mirror log.`);
    throw e;
  }
  const log = ed.createEmptyLv(`${lv.name}_mlog`, ["READ", "WRITE", "VISIBLE"], ed.vg.allocationPolicy ?? "normal");
  log.tags = [...lv.tags];
  ed.addSegments(res, res.areaCount, 1, log, 0);
  return log;
}

/**
 * The rest of _convert_raid1_to_mirror: the rmeta LVs are extracted (renamed
 * *_extracted, visible, an error segment in place of their extents), the
 * images renamed _mimage_N, the segment becomes a mirror with `log`
 * attached. Returns the extracted LVs: lvm2 commits with them, then removes
 * them and commits again.
 */
export function raid1ToMirror(ed: VgEditor, lv: LogicalVolume, log: LogicalVolume, regionSizeSectors: number): LogicalVolume[] {
  const seg = raidSegOf(lv);
  if (!seg) throw new InternalError(`${lv.name} is not raid1`);
  const removal: LogicalVolume[] = [];
  for (const r of seg.raids) {
    if (r.meta === undefined) continue;
    const meta = ed.lv(r.meta)!;
    addStatus(meta, "VISIBLE");
    renameLv(ed, meta, `${meta.name}_extracted`);
    meta.segments = [errorSegment(lvLeCount(meta))];
    removal.push(meta);
  }
  const mirrors = seg.raids.map((r) => {
    const image = ed.lv(r.image)!;
    renameLv(ed, image, image.name.replace(/_rimage_(\d+)$/, "_mimage_$1"));
    return { kind: "lv" as const, lvName: image.name, startLe: 0 };
  });
  lv.segments = [
    {
      type: "mirror",
      startExtent: seg.startExtent,
      extentCount: seg.extentCount,
      tags: seg.tags,
      typeFlags: [],
      mirrorLog: log.name,
      regionSizeSectors,
      extentsMoved: undefined,
      mirrors,
    },
  ];
  dropStatus(log, "VISIBLE");
  return removal;
}

// ---- replacing images (lvconvert --repair / --replace) ---------------------------

/**
 * _lv_raid_rebuild_or_replace (replace): the slots whose image or rmeta is
 * degraded (`isDegraded`: on a missing PV, or an error segment) or uses one
 * of `removePvIds`, in slot order.
 */
export function raidReplaceMatches(vg: VolumeGroup, lv: LogicalVolume, removePvIds: ReadonlySet<string>, isDegraded: (sub: LogicalVolume | undefined) => boolean): number[] {
  const seg = raidSegOf(lv);
  if (!seg) throw new InternalError(`${lv.name} is not raid1`);
  const byName = (n: string | undefined): LogicalVolume | undefined => (n === undefined ? undefined : vg.lvs.find((l) => l.name === n));
  const out: number[] = [];
  seg.raids.forEach((r, s) => {
    const image = byName(r.image);
    const meta = byName(r.meta);
    if (isDegraded(image) || isDegraded(meta) || lvOnPvs(image, removePvIds) || lvOnPvs(meta, removePvIds)) out.push(s);
  });
  return out;
}

/** _avoid_pvs_with_other_images_of_lv: the PVs any sub-LV of the raid1 LV uses (none may take a new pair). */
export function raidSubLvPvIds(vg: VolumeGroup, lv: LogicalVolume): Set<string> {
  const seg = raidSegOf(lv);
  const ids = new Set<string>();
  for (const r of seg?.raids ?? []) {
    for (const n of [r.image, r.meta]) {
      const sub = n === undefined ? undefined : vg.lvs.find((l) => l.name === n);
      for (const s of sub?.segments ?? []) for (const a of segAreas(s)) if (a.kind === "pv") ids.add(a.pvId);
    }
  }
  return ids;
}

export interface RaidReplacePlan {
  /** The old pairs, renamed *_extracted and visible: removed after the first commit. */
  extracted: LogicalVolume[];
  /** The new sub-LVs and the names they take after the first commit (LV_rmeta_N / LV_rimage_N of their slot). */
  renames: Array<[LogicalVolume, string]>;
}

/**
 * The rest of the replace before its first commit: `_raid_extract_images`
 * without shifting takes `plan.images.length` pairs off (first those with
 * error segments, then from the last slot down the ones on `targetPvIds`),
 * renamed *_extracted and visible, leaving their slots empty; each empty
 * slot, in slot order, takes the next new pair (allocated by
 * raidAllocNewImages, still named LV_rmeta_M / LV_rimage_M with M past the
 * last slot, flagged REBUILD), hidden. lvm2 commits that, removes the
 * extracted LVs, drops REBUILD, renames the new pairs after their slots and
 * commits again.
 */
export function raidReplaceExtractAttach(ed: VgEditor, lv: LogicalVolume, plan: RaidAddPlan, targetPvIds: ReadonlySet<string>, pvListGiven: boolean): RaidReplacePlan {
  const seg = raidSegOf(lv);
  if (!seg) throw new InternalError(`${lv.name} is not raid1`);
  const disp = `${ed.vg.name}/${lv.name}`;
  const n = seg.raids.length;
  let extract = plan.images.length;
  const failed = `\nFailed to remove the specified images from ${disp}.`;
  if (targetPvIds.size < extract) throw new CommandError(`Unable to remove ${extract} images:  Only ${targetPvIds.size} device${targetPvIds.size === 1 ? "" : "s"} given.${failed}`);
  const emptied = new Set<number>();
  const extracted: LogicalVolume[] = [];
  for (let ss = n * 2 - 1; ss >= 0 && extract; ss--) {
    const s = ss % n;
    if (emptied.has(s)) continue;
    const r = seg.raids[s]!;
    const image = ed.lv(r.image);
    const meta = r.meta !== undefined ? ed.lv(r.meta) : undefined;
    if (Math.floor(ss / n)) {
      if (!isErrorLv(image) && !isErrorLv(meta)) continue;
      if (pvListGiven) throw new CommandError(`${disp} has components with error targets that must be removed first: ${ed.vg.name}/${r.image}.\nTry removing the PV list and rerun. the command.${failed}`);
    } else if (!lvOnPvs(image, targetPvIds) && !lvOnPvs(meta, targetPvIds)) continue;
    for (const l of [meta, image]) {
      if (!l) continue;
      addStatus(l, "VISIBLE");
      renameLv(ed, l, `${l.name}_extracted`);
      extracted.push(l);
    }
    emptied.add(s);
    extract--;
  }
  if (extract) throw new CommandError(`Unable to extract enough images to satisfy request.${failed}`);
  const renames: Array<[LogicalVolume, string]> = [];
  let next = 0;
  for (let s = 0; s < n; s++) {
    if (!emptied.has(s)) continue;
    const meta = plan.metas[next]!;
    const image = plan.images[next]!;
    next++;
    seg.raids[s] = { meta: meta.name, image: image.name };
    dropStatus(meta, "VISIBLE");
    dropStatus(image, "VISIBLE");
    renames.push([meta, `${lv.name}_rmeta_${s}`], [image, `${lv.name}_rimage_${s}`]);
  }
  return { extracted, renames };
}

/** After the first commit: the extracted LVs go, REBUILD goes, the new pairs take their slots' names. */
export function raidReplaceFinish(ed: VgEditor, lv: LogicalVolume, plan: RaidReplacePlan): void {
  const seg = raidSegOf(lv);
  if (!seg) throw new InternalError(`${lv.name} is not raid1`);
  for (const l of plan.extracted) ed.lvRemove(l);
  clearRaidRebuild(ed.vg, lv);
  for (const [l, name] of plan.renames) {
    const old = l.name;
    renameLv(ed, l, name);
    for (const r of seg.raids) {
      if (r.meta === old) r.meta = name;
      if (r.image === old) r.image = name;
    }
  }
}

/**
 * lv_raid_remove_missing (vgreduce --removemissing --force): every slot
 * whose image or rmeta is partial gets both replaced by an "error" segment
 * of the same length (replace_lv_with_error_segment). Returns whether any
 * slot changed.
 */
export function raidRemoveMissing(vg: VolumeGroup, lv: LogicalVolume, isPartial: (sub: LogicalVolume) => boolean): boolean {
  const seg = raidSegOf(lv);
  if (!seg) throw new InternalError(`${lv.name} is not raid1`);
  const byName = (n: string | undefined): LogicalVolume | undefined => (n === undefined ? undefined : vg.lvs.find((l) => l.name === n));
  let changed = false;
  for (const r of seg.raids) {
    const image = byName(r.image);
    const meta = byName(r.meta);
    if (!(image && isPartial(image)) && !(meta && isPartial(meta))) continue;
    for (const l of [image, meta]) {
      if (!l) continue;
      l.segments = [errorSegment(lvLeCount(l) || 1)];
    }
    changed = true;
  }
  return changed;
}

// ---- split / track / merge ----------------------------------------------------

/** _lv_is_raid_with_tracking: the last image that is visible and not writable (split with --trackchanges). */
export function raidTrackingImage(vg: VolumeGroup, lv: LogicalVolume): LogicalVolume | undefined {
  const seg = raidSegOf(lv);
  if (!seg) return undefined;
  let tracking: LogicalVolume | undefined;
  for (const r of seg.raids) {
    const im = vg.lvs.find((l) => l.name === r.image);
    if (im && im.status.includes("VISIBLE") && !im.status.includes("WRITE")) tracking = im;
  }
  return tracking;
}

/** lv_is_on_pvs for one sub-LV, by PV id. */
export function lvIsOnPvs(lv: LogicalVolume | undefined, pvIds: ReadonlySet<string>): boolean {
  return lvOnPvs(lv, pvIds);
}

/**
 * lv_raid_split after its checks: extract one image (with shifting, as
 * _raid_extract_images does) from `targetPvIds`, name the extracted rimage
 * `splitName` (an independent LV that keeps its segments), and with one
 * image left make the LV linear. Returns the LVs lvm2 removes after the
 * first commit: the extracted rmeta (and rmeta_0 / rimage_0 of the layer).
 */
export function raidSplitImage(ed: VgEditor, lv: LogicalVolume, splitName: string, targetPvIds: ReadonlySet<string>, targetCount: number, pvListGiven: boolean): { split: LogicalVolume; removal: LogicalVolume[] } {
  const seg = raidSegOf(lv);
  if (!seg) throw new InternalError(`${lv.name} is not raid1`);
  const newCount = seg.raids.length - 1;
  const out = raidExtractImages(ed, lv, newCount, targetPvIds, targetCount, pvListGiven);
  // out is [rmeta, rimage]: the data LV becomes the new LV, the rmeta goes.
  const split = out.find((l) => l.name.includes("_rimage_"))!;
  const removal = out.filter((l) => l !== split);
  renameLv(ed, split, splitName);
  if (newCount === 1) raidRemoveTopLayer(ed, lv, removal);
  return { split, removal };
}

/** lv_raid_split_and_track: the last image on `pvIds` becomes visible and read-only; undefined when none is. */
export function raidSplitAndTrack(vg: VolumeGroup, lv: LogicalVolume, pvIds: ReadonlySet<string>): LogicalVolume | undefined {
  const seg = raidSegOf(lv);
  if (!seg) throw new InternalError(`${lv.name} is not raid1`);
  for (let s = seg.raids.length - 1; s >= 0; s--) {
    const im = vg.lvs.find((l) => l.name === seg.raids[s]!.image);
    if (!lvOnPvs(im, pvIds)) continue;
    addStatus(im!, "VISIBLE");
    dropStatus(im!, "WRITE");
    return im;
  }
  return undefined;
}

/** lv_raid_merge's change: the image is hidden again and takes the raid LV's WRITE. */
export function raidMergeImage(lv: LogicalVolume, image: LogicalVolume): void {
  dropStatus(image, "VISIBLE");
  if (lv.status.includes("WRITE")) addStatus(image, "WRITE");
}
