import { CommandError } from "../errors/errors.js";
import { VgEditor, effectivePolicy } from "../model/allocate-lv.js";
import { findLv } from "../model/lv-info.js";
import { isLvPartial } from "../model/mirror-repair.js";
import {
  clearRaidRebuild,
  isLinearLv,
  raidAllocNewImages,
  raidAttachNewImages,
  raidExtractImages,
  raidRemoveTopLayer,
  raidSegOf,
} from "../model/raid1-convert.js";
import type { LogicalVolume } from "../model/types.js";
import { reloadVg } from "./activation.js";
import { commitLvChange, createPvList, displayLvName, isPvMissing, lvEnv, vgPvEntries } from "./lv-common.js";
import { zeroLvStart } from "./lv-io.js";
import { defaultRegionSize } from "./lvcreate.js";
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

/** _lv_get_nr_failed_components: images with a sub-LV on a missing PV or with an error segment. */
export function failedRaidComponents(loaded: LoadedVg, lv: LogicalVolume): number {
  const seg = raidSegOf(lv);
  if (!seg) return 0;
  const vg = loaded.vg;
  const missing = new Set(vg.pvs.filter((pv) => isPvMissing(loaded, pv)).map((pv) => pv.id));
  const degraded = (name: string | undefined): boolean => {
    if (name === undefined) return false;
    const sub = findLv(vg, name);
    return !sub || isLvPartial(vg, sub, missing) || sub.segments.some((s) => s.type === "error");
  };
  return seg.raids.filter((r) => degraded(r.image) || degraded(r.meta)).length;
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
