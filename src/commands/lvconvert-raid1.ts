import { CommandError } from "../errors/errors.js";
import { VgEditor, effectivePolicy } from "../model/allocate-lv.js";
import { findLv, segAreas } from "../model/lv-info.js";
import { isLvPartial, removeMirrorImages } from "../model/mirror-repair.js";
import {
  clearRaidRebuild,
  isLinearLv,
  mirrorToRaid1Alloc,
  mirrorToRaid1Attach,
  raid1ToMirror,
  raid1ToMirrorLog,
  raidAllocNewImages,
  raidAttachNewImages,
  raidExtractImages,
  raidRemoveTopLayer,
  raidReplaceExtractAttach,
  raidReplaceFinish,
  raidReplaceMatches,
  lvIsOnPvs,
  raidMergeImage,
  raidSegOf,
  raidSplitAndTrack,
  raidSplitImage,
  raidSubLvPvIds,
  raidTrackingImage,
  type RaidAddPlan,
} from "../model/raid1-convert.js";
import type { LogicalVolume } from "../model/types.js";
import { activateLv, daemonStatus, deactivateLv, isLvActive, reloadVg } from "./activation.js";
import { commitLvChange, createPvList, displayLvName, isPvAllocatable, isPvMissing, lvEnv, vgPvEntries } from "./lv-common.js";
import { pvAllocatedExtents } from "../model/extents.js";
import type { PvListEntry } from "../model/allocate-pv-maps.js";
import { initMirrorLog, zeroLvStart } from "./lv-io.js";
import { defaultRegionSize } from "./lvcreate.js";
import { syncOf } from "./conversion-progress.js";
import type { ToolContext } from "./toolcontext.js";
import type { LoadedVg } from "./vg-store.js";

/**
 * lvconvert for raid1 LVs at the metadata level (tools/lvconvert.c
 * _lvconvert_raid, lib/metadata/raid_manip.c): `-m N|+N|-N` on a raid1 LV,
 * and `-m N` / `--type raid1` on a linear LV. See model/raid1-convert.ts for
 * the stages lvm2 commits and the order of the sub-LVs.
 *
 * lvm2 refuses these on an LV that is not active ("must be active to perform
 * this operation") and asks the kernel whether the array is in sync; ulvm
 * changes the metadata of an inactive LV, which counts as in sync unless it
 * is NOTSYNCED (lvm2 checks that separately). When the daemon has the LV,
 * every commit is followed by a reload (reloadVg), as lvm2 reloads.
 */

export interface RaidImageRequest {
  /** The image count asked for (1 = linear). */
  newCount: number;
  pvArgs: string[];
  alloc: string | undefined;
}

/** lvseg_name of the LV's first segment, as lvm2 names it in prompts. */
function segName(lv: LogicalVolume): string {
  if (raidSegOf(lv)) return "raid1";
  if (isLinearLv(lv)) return "linear";
  return lv.segments[0]?.type ?? "linear";
}

async function commitReload(ctx: ToolContext, loaded: LoadedVg): Promise<void> {
  await commitLvChange(ctx, loaded);
  await reloadVg(ctx, loaded.vg.name);
}

function missingPvIds(loaded: LoadedVg): Set<string> {
  return new Set(loaded.vg.pvs.filter((pv) => isPvMissing(loaded, pv)).map((pv) => pv.id));
}

/** _sublv_is_degraded: a sub-LV on a missing PV or with an error segment. */
function subLvDegraded(loaded: LoadedVg, missing: ReadonlySet<string>): (sub: LogicalVolume | undefined) => boolean {
  return (sub) => !!sub && (isLvPartial(loaded.vg, sub, missing) || sub.segments.some((s) => s.type === "error"));
}

/** _lv_get_nr_failed_components: images with a sub-LV on a missing PV or with an error segment. */
export function failedRaidComponents(loaded: LoadedVg, lv: LogicalVolume): number {
  const seg = raidSegOf(lv);
  if (!seg) return 0;
  const vg = loaded.vg;
  const degraded = subLvDegraded(loaded, missingPvIds(loaded));
  const sub = (name: string | undefined): LogicalVolume | undefined => (name === undefined ? undefined : findLv(vg, name));
  return seg.raids.filter((r) => degraded(sub(r.image)) || degraded(sub(r.meta))).length;
}

/** lv_raid_change_image_count: add or remove raid1 images (a linear LV becomes raid1, one image makes it linear). */
export async function changeRaidImageCount(ctx: ToolContext, loaded: LoadedVg, lvName: string, req: RaidImageRequest): Promise<number> {
  const vg = loaded.vg;
  const lv = findLv(vg, lvName)!;
  const disp = displayLvName(vg.name, lv.name);
  const seg = raidSegOf(lv);
  const oldCount = seg ? seg.raids.length : 1;
  const newCount = req.newCount;
  if (newCount > 64) throw new CommandError(`Only up to 64 mirrors in raid1 LV ${disp} supported currently.`);
  if (newCount !== 1) {
    const level = oldCount === 1 ? "raid1 with " : "";
    const resil = newCount < oldCount ? "reducing" : "enhancing";
    if (!(await ctx.confirm(`Are you sure you want to convert ${segName(lv)} LV ${disp} to ${level}${newCount} images ${resil} resilience?`)))
      throw new CommandError(`Logical volume ${disp} NOT converted.`);
  }
  let ok = true;
  if (seg && newCount >= oldCount && failedRaidComponents(loaded, lv)) {
    ctx.out.error(`Can't change number of mirrors of degraded ${disp}.`);
    ctx.out.error(`Please run "lvconvert --repair ${disp}" first.`);
    ok = false;
  }
  if (oldCount === newCount) {
    ctx.out.warn(`WARNING: ${disp} already has image count of ${newCount}.`);
    if (!ok) throw new CommandError("");
  } else if (newCount < oldCount) {
    await removeImages(ctx, loaded, lv, newCount, req);
  } else {
    await addImages(ctx, loaded, lv, newCount, req);
  }
  ctx.out.print(`Logical volume ${disp} successfully converted.`);
  return 0;
}

async function addImages(ctx: ToolContext, loaded: LoadedVg, lv: LogicalVolume, newCount: number, req: RaidImageRequest): Promise<void> {
  if (lv.status.includes("NOTSYNCED")) throw new CommandError("Can't add image to out-of-sync RAID LV: use 'lvchange --resync' first.");
  const ed = new VgEditor(loaded.vg, lvEnv(ctx));
  const pvs = req.pvArgs.length ? createPvList(ctx, loaded, req.pvArgs, true) : vgPvEntries(loaded);
  const space = { pvs, policy: effectivePolicy(loaded.vg, req.alloc ?? lv.allocationPolicy), approx: false };
  const plan = raidAllocNewImages(ed, lv, newCount, space, vgPvEntries(loaded), defaultRegionSize(ctx));
  // _clear_lvs: commit with the new LVs visible, then wipe the start of each new rmeta.
  if (!ctx.opts.test) {
    await commitLvChange(ctx, loaded);
    for (const m of plan.metas) await zeroLvStart(loaded, m);
  }
  raidAttachNewImages(ed, lv, plan);
  await commitReload(ctx, loaded);
  if (clearRaidRebuild(loaded.vg, lv)) await commitLvChange(ctx, loaded);
}

async function removeImages(ctx: ToolContext, loaded: LoadedVg, lv: LogicalVolume, newCount: number, req: RaidImageRequest): Promise<void> {
  const vg = loaded.vg;
  const disp = displayLvName(vg.name, lv.name);
  const ed = new VgEditor(vg, lvEnv(ctx));
  const targets = req.pvArgs.length ? createPvList(ctx, loaded, req.pvArgs, false).map((e) => e.pv.pvId) : vg.pvs.map((p) => p.id);
  const removal = raidExtractImages(ed, lv, newCount, new Set(targets), new Set(targets).size, req.pvArgs.length > 0);
  if (newCount === 1) {
    if (!(await ctx.confirm(`Are you sure you want to convert raid1 LV ${disp} to type linear losing all resilience?`)))
      throw new CommandError(`Logical volume ${disp} NOT converted to "linear".`);
    raidRemoveTopLayer(ed, lv, removal);
  }
  await commitReload(ctx, loaded);
  for (const r of removal) ed.lvRemove(r);
  await commitReload(ctx, loaded);
}

/** A yes/no question that -y does not answer (lvm2's bare yes_no_prompt). */
async function ask(ctx: ToolContext, question: string): Promise<boolean> {
  return ctx.opts.prompt ? ctx.opts.prompt(question) : false;
}

/**
 * lvconvert --type raid1 on a mirror (_takeover_from_mirrored_to_raid1,
 * _convert_mirror_to_raid1): rmeta per image on that image's PVs (committed
 * visible, then wiped), the disk log removed (remove_mirror_log: an inactive
 * mirror asks "Full resync required ...", which -y does not answer; lvm2
 * asks it after committing the new rmeta LVs and leaves them behind on "n",
 * ulvm asks first and leaves nothing), images renamed _rimage_N.
 */
export async function convertMirrorToRaid1(ctx: ToolContext, loaded: LoadedVg, lvName: string): Promise<number> {
  const vg = loaded.vg;
  const lv = findLv(vg, lvName)!;
  const disp = displayLvName(vg.name, lv.name);
  if (!(await ctx.confirm(`Are you sure you want to convert mirror LV ${disp} to raid1 type?`))) {
    throw new CommandError(`Logical volume ${disp} NOT converted.\nConverting ${disp} from mirror is directly possible to the following layout:\n  raid1`);
  }
  const seg = lv.segments[0]!;
  const logName = "mirrorLog" in seg ? seg.mirrorLog : undefined;
  if (logName && !(await isLvActive(ctx, vg.name, lv.name))) {
    if (!(await ask(ctx, `Full resync required to convert inactive mirror volume ${disp} to core log. Proceed?`)))
      throw new CommandError(`Logical volume ${disp} NOT converted.\nFailed to remove mirror log.`);
  }
  const ed = new VgEditor(vg, lvEnv(ctx));
  const metas = mirrorToRaid1Alloc(ed, lv, vgPvEntries(loaded), effectivePolicy(vg, undefined), defaultRegionSize(ctx));
  if (!ctx.opts.test) {
    await commitLvChange(ctx, loaded);
    for (const m of metas) await zeroLvStart(loaded, findLv(loaded.vg, m)!);
  }
  if (logName) {
    const r = removeMirrorImages(loaded.vg, lv.name, { count: 0, isRemovable: () => false, preferredOnly: true, removeLog: true });
    for (const st of r.stages) {
      st.seqno = loaded.vg.seqno; // the stages were cloned before the commit above
      loaded.vg = st;
      await commitLvChange(ctx, loaded);
    }
    r.result.seqno = loaded.vg.seqno;
    loaded.vg = r.result;
    const lv2 = findLv(loaded.vg, lvName)!;
    lv2.status = lv2.status.filter((f) => f !== "NOTSYNCED");
  }
  const ed2 = new VgEditor(loaded.vg, lvEnv(ctx));
  mirrorToRaid1Attach(ed2, findLv(loaded.vg, lvName)!, metas);
  await commitReload(ctx, loaded);
  ctx.out.print(`Logical volume ${disp} successfully converted.`);
  return 0;
}

/**
 * lvconvert --type mirror on a raid1 LV (_raid1_to_mirrored_wrapper,
 * _convert_raid1_to_mirror): a disk log is allocated, committed visible and
 * initialised (in sync), the rmeta LVs are extracted, the images renamed
 * _mimage_N, the log attached; commit, remove the extracted LVs, commit.
 * lvm2 passes no image count to this takeover: -m is ignored.
 */
export async function convertRaid1ToMirror(ctx: ToolContext, loaded: LoadedVg, lvName: string, pvArgs: string[]): Promise<number> {
  const vg = loaded.vg;
  const lv = findLv(vg, lvName)!;
  const disp = displayLvName(vg.name, lv.name);
  const seg = raidSegOf(lv)!;
  if (!(await ctx.confirm(`Are you sure you want to convert ${disp} back to the older mirror type?`))) throw new CommandError(`Logical volume ${disp} NOT converted to "mirror".`);
  const count = seg.raids.length;
  if (count < 2) throw new CommandError(`can't convert ${disp} to fewer than 2 data_copies.`);
  if (count > 8)
    throw new CommandError(`Unable to convert raid1 LV ${disp} with ${count} images to mirror.\nAt least reduce to the maximum of 8 images with "lvconvert -m7 ${disp}".`);
  const ed = new VgEditor(vg, lvEnv(ctx));
  const pvs = pvArgs.length ? createPvList(ctx, loaded, pvArgs, true) : vgPvEntries(loaded);
  const log = raid1ToMirrorLog(ed, lv, seg.regionSizeSectors, { pvs, policy: effectivePolicy(vg, undefined), approx: false });
  await commitLvChange(ctx, loaded);
  if (!ctx.opts.test) await initMirrorLog(loaded, log, true);
  const removal = raid1ToMirror(ed, lv, log, seg.regionSizeSectors);
  await commitReload(ctx, loaded);
  for (const r of removal) ed.lvRemove(r);
  await commitReload(ctx, loaded);
  ctx.out.print(`Logical volume ${disp} successfully converted.`);
  return 0;
}

/** A command failure whose messages were already printed (lvm2's return_0 / return_ECMD_FAILED). */
function silentFailure(): CommandError {
  const e = new CommandError("");
  e.silent = true;
  return e;
}

/** create_pv_list(..., 0) for the PVs named, else &vg->pvs; the allocator then skips what it may not use. */
export function raidAllocPvs(ctx: ToolContext, loaded: LoadedVg, pvArgs: readonly string[]): PvListEntry[] {
  if (!pvArgs.length) return vgPvEntries(loaded);
  return createPvList(ctx, loaded, pvArgs, false).filter((e) => {
    const pv = loaded.vg.pvs.find((p) => p.id === e.pv.pvId);
    return !!pv && isPvAllocatable(loaded, pv);
  });
}

/**
 * lv_raid_replace (_lv_raid_rebuild_or_replace, rebuild = 0): replace the
 * images (rimage + rmeta pairs) that are degraded or use a PV of
 * `removePvIds` by new pairs allocated from `allocPvs` away from every PV
 * the LV's sub-LVs use. When that space is short and the LV is partial, one
 * pair fewer is tried each time (lvm2's "Attempting to replace N instead").
 * Commits: the new pairs in their slots with REBUILD and the old ones
 * renamed *_extracted (reload: the new images recover in full); then the old
 * ones removed, REBUILD dropped, the new ones renamed after their slots
 * (reload). `zeroMeta`: wipe the start of each new rmeta before the first
 * commit (the repair path; --replace leaves it to REBUILD, as lvm2 does).
 * Prints its errors and throws a silent failure; returns false when there
 * was nothing to replace.
 */
export async function replaceRaidImages(ctx: ToolContext, loaded: LoadedVg, lvName: string, removePvIds: ReadonlySet<string>, allocPvs: PvListEntry[], zeroMeta: boolean): Promise<boolean> {
  const vg = loaded.vg;
  const lv = findLv(vg, lvName)!;
  const disp = displayLvName(vg.name, lv.name);
  const seg = raidSegOf(lv)!;
  const missing = missingPvIds(loaded);
  const matches = raidReplaceMatches(vg, lv, removePvIds, subLvDegraded(loaded, missing));
  if (!matches.length) {
    if (removePvIds.size) {
      ctx.out.error(`Logical volume ${disp} does not contain devices specified to replace.`);
      throw silentFailure();
    }
    ctx.out.print(`${disp} does not contain devices specified to replace.`);
    return false;
  }
  if (matches.length === seg.raids.length) {
    ctx.out.error(`Unable to replace all PVs from ${disp} at once.`);
    throw silentFailure();
  }
  const avoid = raidSubLvPvIds(vg, lv);
  const pvs = allocPvs.filter((e) => !avoid.has(e.pv.pvId));
  const ed = new VgEditor(vg, lvEnv(ctx));
  const space = { pvs, policy: effectivePolicy(vg, lv.allocationPolicy), approx: false };
  let count = matches.length;
  let plan: RaidAddPlan | undefined;
  for (;;) {
    try {
      plan = raidAllocNewImages(ed, lv, seg.raids.length + count, space, vgPvEntries(loaded), defaultRegionSize(ctx));
      break;
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      ctx.out.error(e.message);
      if (!isLvPartial(vg, lv, missing)) {
        ctx.out.error(`LV ${disp} in not partial.`);
        throw silentFailure();
      }
      count--;
      // ulvm does not reallocate a partial multi-segment image in place (_remove_partial_multi_segment_image).
      if (!count) throw silentFailure();
      ctx.out.error(`Failed to replace ${count} devices.  Attempting to replace ${count + 1} instead.`);
    }
  }
  let rp;
  try {
    const targets = removePvIds.size ? removePvIds : new Set(vg.pvs.map((p) => p.id));
    rp = raidReplaceExtractAttach(ed, lv, plan, targets, removePvIds.size > 0);
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    ctx.out.error(e.message);
    throw silentFailure();
  }
  if (zeroMeta && !ctx.opts.test) for (const m of plan.metas) await zeroLvStart(loaded, m);
  await commitReload(ctx, loaded);
  raidReplaceFinish(new VgEditor(loaded.vg, lvEnv(ctx)), findLv(loaded.vg, lvName)!, rp);
  await commitReload(ctx, loaded);
  return true;
}

/**
 * lvconvert --repair on a raid1 LV (_lvconvert_repair_pvs_raid): ask (or
 * follow activation/raid_fault_policy with --use-policies), then replace
 * the images on missing PVs from `pvArgs` (else the VG's PVs).
 */
export async function repairRaid1(ctx: ToolContext, loaded: LoadedVg, lvName: string, pvArgs: string[], usePolicies: boolean): Promise<number> {
  const vg = loaded.vg;
  const disp = displayLvName(vg.name, lvName);
  const allocPvs = raidAllocPvs(ctx, loaded, pvArgs);
  let doIt = true;
  if (usePolicies) {
    const policy = ctx.config.str("activation/raid_fault_policy", "warn");
    doIt = policy === "allocate" || policy === "replace";
  } else if (!(await ctx.confirm("Attempt to replace failed RAID images (requires full device resync)?"))) doIt = false;
  if (!doIt) {
    if (usePolicies) ctx.out.warn(`Use 'lvconvert --repair ${disp}' to replace failed device.`);
    return 0;
  }
  // _failed_pv_list: missing PVs that still hold extents.
  const failed = new Set(vg.pvs.filter((pv) => isPvMissing(loaded, pv) && pvAllocatedExtents(vg, pv) > 0).map((pv) => pv.id));
  try {
    await replaceRaidImages(ctx, loaded, lvName, failed, allocPvs, true);
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    if (!e.silent) ctx.out.error(e.message);
    ctx.out.error(`Failed to replace faulty devices in ${disp}.`);
    throw silentFailure();
  }
  ctx.out.print(`Faulty devices in ${disp} successfully replaced.`);
  return 0;
}

/** _raid_in_sync: an active LV asks the daemon; an inactive one counts as in sync (see above). */
async function raidInSync(ctx: ToolContext, vg: string, lv: string): Promise<boolean> {
  const st = (await daemonStatus(ctx)).find((s) => s.vg === vg && s.lv === lv);
  const sync = syncOf(st);
  return !sync || sync.insync >= sync.total;
}

/** The PV ids of a PV list given on the command line, else of every PV (lvm2 passes &vg->pvs). */
function targetPvIds(ctx: ToolContext, loaded: LoadedVg, pvArgs: readonly string[]): Set<string> {
  return new Set(pvArgs.length ? createPvList(ctx, loaded, [...pvArgs], false).map((e) => e.pv.pvId) : loaded.vg.pvs.map((p) => p.id));
}

/**
 * lvconvert --splitmirrors 1 --name NEW (lv_raid_split): one image leaves
 * the raid1 LV as the independent LV NEW (its rmeta removed, the remaining
 * images renumbered); from two images the LV becomes linear (asked first).
 * Commits: the split with the removed LVs still present (reload; the new LV
 * is activated when the raid LV is active), then without them.
 */
export async function splitRaid1(ctx: ToolContext, loaded: LoadedVg, lvName: string, splitName: string, newCount: number, pvArgs: string[]): Promise<number> {
  const vg = loaded.vg;
  const lv = findLv(vg, lvName)!;
  const disp = displayLvName(vg.name, lv.name);
  const seg = raidSegOf(lv)!;
  if (seg.raids.length - newCount !== 1) throw new CommandError(`Unable to split more than one image from ${disp}.`);
  const ed = new VgEditor(vg, lvEnv(ctx));
  const used = ed.nameInUse(splitName);
  if (used.used) throw new CommandError(`${used.historical ? "historical " : ""}Logical Volume "${splitName}" already exists in ${vg.name}.`);
  if (!(await raidInSync(ctx, vg.name, lv.name))) throw new CommandError(`Unable to split ${disp} while it is not in-sync.`);
  if (newCount === 1 && !(await ctx.confirm(`Are you sure you want to split raid1 LV ${disp} losing all resilience?`)))
    throw new CommandError(`Logical volume ${disp} NOT split.`);
  let targets = targetPvIds(ctx, loaded, pvArgs);
  let given = pvArgs.length > 0;
  const tracking = raidTrackingImage(vg, lv);
  if (tracking) {
    if (!lvIsOnPvs(tracking, targets)) throw new CommandError(`Unable to split additional image from ${disp} while tracking changes for ${displayLvName(vg.name, tracking.name)}.`);
    // get_pv_list_for_lv: only the tracked image may go.
    targets = new Set(tracking.segments.flatMap((s) => segAreas(s).flatMap((a) => (a.kind === "pv" ? [a.pvId] : []))));
    given = true;
  }
  const active = await isLvActive(ctx, vg.name, lv.name);
  const { split, removal } = raidSplitImage(ed, lv, splitName, targets, targets.size, given);
  await commitReload(ctx, loaded);
  if (active && !ctx.opts.test) await activateLv(ctx, vg.name, split.name);
  const ed2 = new VgEditor(loaded.vg, lvEnv(ctx));
  for (const r of removal) ed2.lvRemove(findLv(loaded.vg, r.name)!);
  await commitReload(ctx, loaded);
  return 0;
}

/**
 * lvconvert --splitmirrors 1 --trackchanges (lv_raid_split_and_track): the
 * last image on the PVs given becomes visible and read-only; the raid table
 * then carries "- -" for its slot, so the array's bitmap keeps every region
 * written meanwhile. Commit, reload, activate the image when the raid LV is
 * active (read-only).
 */
export async function splitAndTrackRaid1(ctx: ToolContext, loaded: LoadedVg, lvName: string, pvArgs: string[]): Promise<number> {
  const vg = loaded.vg;
  const lv = findLv(vg, lvName)!;
  const disp = displayLvName(vg.name, lv.name);
  const seg = raidSegOf(lv)!;
  if (!(await raidInSync(ctx, vg.name, lv.name))) throw new CommandError(`Unable to split image from ${disp} while not in-sync.`);
  if (raidTrackingImage(vg, lv)) throw new CommandError("Cannot track more than one split image at a time.");
  if (seg.raids.length === 2 && !(await ctx.confirm(`Are you sure you want to split and track raid1 LV ${disp} losing resilience for any newly written data?`)))
    throw new CommandError(`Logical volume ${disp} NOT split.`);
  const image = raidSplitAndTrack(vg, lv, targetPvIds(ctx, loaded, pvArgs));
  if (!image) throw new CommandError("Unable to find image to satisfy request.");
  const active = await isLvActive(ctx, vg.name, lv.name);
  await commitReload(ctx, loaded);
  const idisp = displayLvName(vg.name, image.name);
  ctx.out.print(`${idisp} split from ${disp} for read-only purposes.`);
  if (active && !ctx.opts.test) await activateLv(ctx, vg.name, image.name);
  if (seg.raids.length === 2) ctx.out.warn(`WARNING: Any newly written data will be non-resilient on LV ${disp} during the split!`);
  ctx.out.print(`Use 'lvconvert --merge ${idisp}' to merge back into ${disp}.`);
  return 0;
}

/**
 * lvconvert --mergemirrors (and --merge) on an image split with
 * --trackchanges (lv_raid_merge): the image is deactivated, hidden and
 * writable again; commit and reload: the slot comes back and recovers the
 * regions its bitmap marks.
 */
export async function mergeRaidImage(ctx: ToolContext, loaded: LoadedVg, imageName: string): Promise<number> {
  const vg = loaded.vg;
  const image = findLv(vg, imageName)!;
  const idisp = displayLvName(vg.name, image.name);
  if (image.status.includes("WRITE")) throw new CommandError(`${idisp} cannot be merged because --trackchanges was not used.`);
  const p = image.name.indexOf("_rimage_");
  if (p < 0) throw new CommandError(`Unable to merge non-raid image ${idisp}.`);
  const lv = findLv(vg, image.name.slice(0, p));
  if (!lv) throw new CommandError(`Unable to find containing RAID array for ${idisp}.`);
  const disp = displayLvName(vg.name, lv.name);
  const r = raidSegOf(lv)?.raids.find((x) => x.image === image.name);
  if (!r || r.meta === undefined) throw new CommandError(`Failed to find meta for ${idisp} in RAID array ${disp}.`);
  if (!ctx.opts.test) await deactivateLv(ctx, vg.name, image.name);
  raidMergeImage(lv, image);
  await commitReload(ctx, loaded);
  ctx.out.print(`${idisp} successfully merged back into ${disp}.`);
  return 0;
}
