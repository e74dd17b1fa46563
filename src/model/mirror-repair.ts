import type { LogicalVolume, MirrorSegment, OpaqueSegment, Segment, VolumeGroup } from "./types.js";
import { cloneVg } from "./clone.js";
import { findLv, isMirrorSeg, lvExtents, pvIdsOfLv } from "./lv-info.js";
import { removeLvTree, removeSingleLv } from "./lv-remove.js";

/**
 * Repairing legacy "mirror" LVs after a PV failure, as lvm2 does in
 * mirror_remove_missing (tools/lvconvert.c) and _remove_mirror_images
 * (lib/metadata/mirror.c): images on missing PVs are dropped, a mirror left
 * with one image becomes a linear LV that keeps its name and UUID and takes
 * over the surviving image's extents, a mirror whose log failed continues
 * with a core log, a mirror with no image left is removed.
 *
 * Pure: every function takes a VG and returns new ones. lvm2 commits the
 * metadata several times during one repair (detach, then one write before
 * each sub-LV is deleted, then a final write); `stages` lists those versions
 * in order so that a caller who wants lvm2's seqno steps commits each one,
 * and a caller who does not (the daemon) commits only `result`. Every stage
 * is valid metadata that lvm2 reads, so a crash between commits leaves a
 * usable VG (at worst with visible leftover sub-LVs, as lvm2 would).
 */

/** The result of a staged change: the versions to commit in order; `result` is the last one (also the last stage when stages are given). */
export interface StagedChange {
  stages: VolumeGroup[];
  result: VolumeGroup;
}

export interface RemoveImagesOptions {
  /** How many images to take away. */
  count: number;
  /** Images that go first (lvm2's is_removable, e.g. "lies on a missing PV" or "lies on these PVs"). */
  isRemovable: (image: LogicalVolume, vg: VolumeGroup) => boolean;
  /** Only remove removable images (true), or take the balance from the last legs (false). */
  preferredOnly: boolean;
  /** Drop the log too: the mirror continues with a core log. */
  removeLog: boolean;
}

export interface RemoveImagesOutcome {
  /** Image LVs removed. */
  removedImages: string[];
  /** The primary leg (leg 0) was among them: lvm2 checks (and, inactive, cannot tell) the mirror's sync state first. */
  primaryRemoved: boolean;
  /** The log LV removed (failed, asked for, or no longer needed after a collapse). */
  removedLog: string | undefined;
  /** One image was left: the LV is linear now. */
  collapsed: boolean;
}

/** An LV is partial when it or anything it is built from uses a missing PV (vg_mark_partial_lvs). */
export function isLvPartial(vg: VolumeGroup, lv: LogicalVolume, missingPvIds: ReadonlySet<string>): boolean {
  for (const id of pvIdsOfLv(vg, lv)) if (missingPvIds.has(id)) return true;
  return false;
}

/** Names of partial LVs in VG order. */
export function partialLvNames(vg: VolumeGroup, missingPvIds: ReadonlySet<string>): string[] {
  return vg.lvs.filter((lv) => isLvPartial(vg, lv, missingPvIds)).map((lv) => lv.name);
}

function mirrorSegOf(vg: VolumeGroup, lvName: string): { lv: LogicalVolume; seg: MirrorSegment } {
  const lv = findLv(vg, lvName);
  if (!lv) throw new Error(`mirror repair: no LV ${lvName}`);
  const seg = lv.segments[0];
  if (!seg || !isMirrorSeg(seg)) throw new Error(`mirror repair: ${lvName} is not a mirror`);
  if (lv.segments.length !== 1) throw new Error(`Multiple-segment mirror is not supported.`);
  if (seg.mirrors.some((a) => a.kind !== "lv")) throw new Error(`Mirror ${lvName} has PV areas (pvmove); repair it with pvmove --abort.`);
  return { lv, seg };
}

/** Image LVs of a mirror, leg order. */
export function mirrorImages(vg: VolumeGroup, lvName: string): LogicalVolume[] {
  const { seg } = mirrorSegOf(vg, lvName);
  return seg.mirrors.map((a) => findLv(vg, a.kind === "lv" ? a.lvName : "")!).filter((l) => l !== undefined);
}

/** lvm2's _get_log_count: 0 for a core log, the log's own leg count for a mirrored log, else 1. */
export function mirrorLogCount(vg: VolumeGroup, lvName: string): number {
  const { seg } = mirrorSegOf(vg, lvName);
  if (!seg.mirrorLog) return 0;
  const log = findLv(vg, seg.mirrorLog);
  const lseg = log?.segments[0];
  return lseg && isMirrorSeg(lseg) ? lseg.mirrors.length : 1;
}

function makeVisible(lv: LogicalVolume): void {
  if (!lv.status.includes("VISIBLE")) lv.status.push("VISIBLE");
}

function errorSegment(extentCount: number): OpaqueSegment {
  return { type: "error", opaque: true, startExtent: 0, extentCount, tags: [], typeFlags: [], areas: [], areaExtents: extentCount, raw: [] };
}

/**
 * Stage 1 of lvm2's _remove_mirror_images: choose the images to remove
 * (removable ones are shifted to the end of the leg list, then legs are cut
 * from the end), detach them and, if asked or when one image is left, the
 * log. With one image left the LV takes over that image's segments and the
 * emptied image keeps an "error" segment until it is deleted (lvm2's
 * remove_layer_from_lv). Detached LVs become visible, as in lvm2.
 */
export function detachMirrorImages(
  vg: VolumeGroup,
  lvName: string,
  opts: RemoveImagesOptions,
): { vg: VolumeGroup; orphans: string[]; layer: string | undefined; log: string | undefined; removed: number; primaryRemoved: boolean } {
  const out = cloneVg(vg);
  const { lv, seg } = mirrorSegOf(out, lvName);
  const legs = [...seg.mirrors];
  const oldCount = legs.length;
  let shifted = 0;
  let primaryRemoved = false;
  for (let s = legs.length - 1; s >= 0 && shifted < opts.count; s--) {
    const a = legs[s]!;
    const img = a.kind === "lv" ? findLv(out, a.lvName) : undefined;
    if (!img || !opts.isRemovable(img, out)) continue;
    if (s === 0) primaryRemoved = true;
    legs.splice(s, 1);
    legs.push(a);
    shifted++;
  }
  const removed = opts.preferredOnly ? shifted : opts.count;
  const keep = oldCount - removed;
  if (removed === 0 && !opts.removeLog) return { vg: out, orphans: [], layer: undefined, log: undefined, removed: 0, primaryRemoved: false };
  if (keep < 1) throw new Error(`mirror repair: cannot remove all images of ${lvName}`);
  const orphans: string[] = [];
  for (const a of legs.slice(keep)) {
    if (a.kind !== "lv") continue;
    const img = findLv(out, a.lvName);
    if (img) makeVisible(img);
    orphans.push(a.lvName);
  }
  seg.mirrors = legs.slice(0, keep);
  let layer: string | undefined;
  let log: string | undefined;
  const detachLog = (): void => {
    if (!seg.mirrorLog) return;
    const l = findLv(out, seg.mirrorLog);
    if (l) makeVisible(l);
    log = seg.mirrorLog;
    seg.mirrorLog = undefined;
  };
  if (keep === 1) {
    // remove_layer_from_lv: the mirror LV takes the last image's segments.
    const a = seg.mirrors[0]!;
    const img = findLv(out, a.kind === "lv" ? a.lvName : "")!;
    makeVisible(img);
    detachLog();
    layer = img.name;
    const moved: Segment[] = img.segments;
    lv.segments = moved;
    img.segments = [errorSegment(lvExtents(lv))];
    lv.status = lv.status.filter((w) => w !== "NOTSYNCED");
  } else if (opts.removeLog) detachLog();
  return { vg: out, orphans, layer, log, removed, primaryRemoved };
}

/**
 * lvm2's _delete_lv for each detached LV: the LV inherits the mirror's tags
 * and the VG is committed (when they shared no tag, which is always the case
 * for sub-LVs made by lvcreate), then the LV is removed in memory. Returns one
 * stage per commit lvm2 makes and the VG after the last removal.
 */
export function deleteDetachedLvs(vg: VolumeGroup, mirrorLvName: string, names: readonly string[]): StagedChange {
  const stages: VolumeGroup[] = [];
  let cur = vg;
  for (const name of names) {
    const mirror = findLv(cur, mirrorLvName);
    const sub = findLv(cur, name);
    if (!sub) continue;
    const mtags = mirror?.tags ?? [];
    if (!mtags.some((t) => sub.tags.includes(t))) {
      const next = cloneVg(cur);
      const s = findLv(next, name)!;
      for (const t of mtags) if (!s.tags.includes(t)) s.tags.push(t);
      stages.push(next);
      cur = next;
    }
    cur = removeSingleLv(cur, name);
  }
  return { stages, result: cur };
}

/**
 * lvm2's remove_mirror_images for one mirror: detach (one commit), then
 * delete the detached image LVs, the emptied layer and the log (one commit
 * before each). The VG after the last deletion is `result`; it is not a
 * stage: lvm2's callers commit it themselves.
 */
export function removeMirrorImages(vg: VolumeGroup, lvName: string, opts: RemoveImagesOptions): StagedChange & RemoveImagesOutcome {
  const d = detachMirrorImages(vg, lvName, opts);
  if (d.removed === 0 && d.log === undefined) return { stages: [], result: d.vg, removedImages: [], removedLog: undefined, collapsed: false, primaryRemoved: false };
  const del = deleteDetachedLvs(d.vg, lvName, [...d.orphans, ...(d.layer ? [d.layer] : []), ...(d.log ? [d.log] : [])]);
  return {
    stages: [d.vg, ...del.stages],
    result: del.result,
    removedImages: d.orphans,
    removedLog: d.log,
    collapsed: d.layer !== undefined,
    primaryRemoved: d.primaryRemoved,
  };
}

export interface MirrorRepairPlan extends StagedChange, RemoveImagesOutcome {
  lvName: string;
  /** No image survived: the LV and its sub-LVs were removed. */
  removedLv: boolean;
  /** The log was lost to the failure (not just dropped by a collapse). */
  logFailed: boolean;
  /** Nothing of this mirror was on a missing PV. */
  unchanged: boolean;
}

/**
 * mirror_remove_missing: repair one mirror LV whose images or log lie on
 * missing PVs. The last stage is the repaired VG.
 */
export function planMirrorRepair(vg: VolumeGroup, lvName: string, missingPvIds: ReadonlySet<string>): MirrorRepairPlan {
  const partial = (l: LogicalVolume, v: VolumeGroup): boolean => isLvPartial(v, l, missingPvIds);
  const images = mirrorImages(vg, lvName);
  const failedImages = images.filter((i) => partial(i, vg)).length;
  const { seg } = mirrorSegOf(vg, lvName);
  const logLv = seg.mirrorLog ? findLv(vg, seg.mirrorLog) : undefined;
  const oldLogCount = mirrorLogCount(vg, lvName);
  let failedLogs = 0;
  if (logLv && partial(logLv, vg)) {
    const lseg = logLv.segments[0];
    failedLogs = lseg && isMirrorSeg(lseg) ? mirrorImages(vg, logLv.name).filter((i) => partial(i, vg)).length : 1;
  }
  const logCount = oldLogCount - failedLogs;
  const base = { lvName, removedImages: [] as string[], removedLog: undefined as string | undefined, collapsed: false, removedLv: false, logFailed: failedLogs > 0 && logCount === 0, primaryRemoved: false };
  if (failedImages === 0 && failedLogs === 0) return { ...base, stages: [], result: vg, unchanged: true, logFailed: false };
  if (failedImages === images.length) {
    // "No usable images left": the LV goes, with its sub-LVs, in one commit.
    const result = removeLvTree(vg, lvName);
    return { ...base, stages: [result], result, removedLv: true, unchanged: false };
  }
  const stages: VolumeGroup[] = [];
  let cur = vg;
  // _lv_update_mirrored_log: a mirrored log first loses its failed legs.
  if (logCount > 0 && logLv && oldLogCount !== logCount) {
    const r = removeMirrorImages(cur, logLv.name, { count: oldLogCount - logCount, isRemovable: partial, preferredOnly: true, removeLog: false });
    stages.push(...r.stages);
    cur = r.result;
  }
  let removedImages: string[] = [];
  let removedLog: string | undefined;
  let collapsed = false;
  let primaryRemoved = false;
  if (failedImages > 0) {
    const r = removeMirrorImages(cur, lvName, { count: failedImages, isRemovable: partial, preferredOnly: true, removeLog: logCount === 0 });
    stages.push(...r.stages);
    cur = r.result;
    removedImages = r.removedImages;
    removedLog = r.removedLog;
    collapsed = r.collapsed;
    primaryRemoved = r.primaryRemoved;
  }
  // _lv_update_log_type: still a mirror but its log failed: continue with a core log.
  const stillMirror = !collapsed;
  if (stillMirror && logCount === 0 && mirrorLogCount(cur, lvName) > 0) {
    const notSynced = cloneVg(cur);
    const lv = findLv(notSynced, lvName)!;
    // An inactive mirror switched to a core log resyncs fully (remove_mirror_log).
    lv.status = lv.status.filter((w) => w !== "NOTSYNCED");
    const r = removeMirrorImages(notSynced, lvName, { count: 0, isRemovable: () => false, preferredOnly: true, removeLog: true });
    stages.push(...r.stages);
    cur = r.result;
    removedLog = r.removedLog;
  }
  // lv_update_and_reload: the final commit of this LV's repair.
  stages.push(cur);
  return { ...base, stages, result: cur, removedImages, removedLog, collapsed, primaryRemoved, unchanged: false };
}
