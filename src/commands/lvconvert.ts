import type { CommandDef } from "../cli/command-def.js";
import { raidHasIntegrity, refuseRaidIntegrity } from "./integrity-guard.js";
import type { Args, OptionSpec } from "../cli/args.js";
import { CommandError, LvmError, UsageError } from "../errors/errors.js";
import { VgEditor, effectivePolicy, type SpaceSpec } from "../model/allocate-lv.js";
import { findLv, isMirrorSeg, isVisible, lvExtents, lvTypeName } from "../model/lv-info.js";
import { isLvPartial, mirrorImages, planMirrorRepair, removeMirrorImages } from "../model/mirror-repair.js";
import type { LogicalVolume, MirrorSegment, VolumeGroup } from "../model/types.js";
import { lvNameArg } from "./common.js";
import { allocValue, boolValue, mirrorLogValue, noMatchingSyntax, numberValue, regionSizeValue } from "./lv-args.js";
import { lvconvertRaidIntegrity, repairStaleIntegrityImages } from "./raid-integrity.js";
import { commitLvChange, createPvList, displayLvName, isPvMissing, lvEnv, readVgForUpdate, vgPvEntries } from "./lv-common.js";
import { initMirrorLog } from "./lv-io.js";
import { adjustedRegionSize } from "./lvcreate.js";
import { daemonStatus, reloadVg, resetActiveMirrorLog } from "./activation.js";
import { copyPercent, syncOf, waitForConversion } from "./conversion-progress.js";
import type { ToolContext } from "./toolcontext.js";
import type { LoadedVg } from "./vg-store.js";
import { vgLockName } from "./lock.js";
import { isLinearLv, raidSegOf } from "../model/raid1-convert.js";
import { changeRaidImageCount, convertMirrorToRaid1, convertRaid1ToMirror, mergeRaidImage, raidAllocPvs, repairRaid1, replaceRaidImages, splitAndTrackRaid1, splitRaid1 } from "./lvconvert-raid1.js";
import { raidTrackingImage } from "../model/raid1-convert.js";
import { userLvNameProblem } from "../model/names.js";

/**
 * lvconvert for legacy mirrors (tools/lvconvert.c _lvconvert_mirrors*):
 *  - `-m N` / `-m +N` / `-m -N` / `--type linear|mirror`: add or remove legs;
 *    a linear LV becomes a mirror whose first leg is its old extents;
 *  - `--mirrorlog core|disk`, `--corelog`: change the log;
 *  - `--repair [--use-policies]`: drop legs and logs on missing PVs, then
 *    replace them from free extents (asked, or by activation/
 *    mirror_image_fault_policy and mirror_log_fault_policy);
 *  - `VG/LV` alone: wait for a conversion in progress.
 * While new legs copy, "VG/LV: Converted: N%" is printed every --interval
 * seconds (a progress bar on a terminal) unless -b.
 *
 * Crash safety of adding a leg: a new leg holds nothing, so before the
 * metadata names it, the mirror's disk log must say "out of sync" for every
 * region (a fresh log, or the active mirror's log reset by the daemon); a
 * crash at any point then resyncs from the first leg, never from the new one.
 */
const OPTIONS: OptionSpec[] = [
  { name: "mirrors", short: "m", value: true },
  { name: "type", value: true },
  { name: "mirrorlog", value: true },
  { name: "corelog", value: false },
  { name: "regionsize", short: "R", value: true },
  { name: "repair", value: false },
  { name: "replace", value: true, repeat: true },
  { name: "usepolicies", value: false, aliases: ["use-policies"] },
  { name: "background", short: "b", value: false },
  { name: "interval", short: "i", value: true },
  { name: "force", short: "f", value: false, repeat: true },
  { name: "alloc", value: true },
  { name: "stripes", value: true },
  { name: "stripesize", short: "I", value: true },
  { name: "nosync", value: false },
  { name: "autobackup", short: "A", value: true },
  { name: "noudevsync", value: false },
  { name: "reportformat", value: true },
  { name: "splitmirrors", value: true },
  { name: "name", short: "n", value: true },
  { name: "trackchanges", value: false },
  { name: "mergemirrors", value: false },
  { name: "merge", value: false },
  { name: "raidintegrity", value: true },
  { name: "raidintegritymode", value: true },
  { name: "raidintegrityblocksize", value: true },
];

interface Request {
  vg: string;
  lv: string;
  pvArgs: string[];
  intervalSec: number;
  background: boolean;
}

/** get_default_region_size: activation/raid_region_size (or mirror_region_size) KiB, default 2 MiB. */
function defaultRegionSectors(ctx: ToolContext): number {
  const kib = ctx.config.int("activation/raid_region_size", 0) || ctx.config.int("activation/mirror_region_size", 0) || 2048;
  let r = 1;
  while (r * 2 <= kib * 2) r *= 2;
  return r % 8 ? 4096 : r;
}

function mirrorSeg(lv: LogicalVolume): MirrorSegment | undefined {
  const s = lv.segments[0];
  return lv.segments.length === 1 && s && isMirrorSeg(s) ? s : undefined;
}

async function syncState(ctx: ToolContext, vg: string, lv: string): Promise<{ active: boolean; inSync: boolean }> {
  const st = (await daemonStatus(ctx)).find((s) => s.vg === vg && s.lv === lv);
  if (!st) return { active: false, inSync: true };
  const s = syncOf(st)!;
  return { active: true, inSync: s.insync >= s.total };
}

/** Commit each of lvm2's intermediate versions, then the result (when it is not the last stage). */
async function commitStages(ctx: ToolContext, loaded: LoadedVg, stages: readonly VolumeGroup[], result: VolumeGroup): Promise<void> {
  for (const stage of stages) {
    loaded.vg = stage;
    await commitLvChange(ctx, loaded);
  }
  if (stages[stages.length - 1] !== result) {
    loaded.vg = result;
    await commitLvChange(ctx, loaded);
  }
}

async function commitAndReload(ctx: ToolContext, loaded: LoadedVg): Promise<void> {
  await commitLvChange(ctx, loaded);
  await reloadVg(ctx, loaded.vg.name);
}

/** Space for new legs and logs: the PVs named (with ranges), else every allocatable PV of the VG. */
function space(ctx: ToolContext, loaded: LoadedVg, pvArgs: string[], allocArg: string | undefined, lv: LogicalVolume): SpaceSpec {
  const pvs = pvArgs.length ? createPvList(ctx, loaded, pvArgs, true) : vgPvEntries(loaded);
  return { pvs, policy: effectivePolicy(loaded.vg, allocArg ?? lv.allocationPolicy), approx: false };
}

/**
 * Bring `lv` to `images` legs and `logs` disk logs (0 or 1). Returns whether
 * legs were added (the caller then waits for the copy).
 */
export async function convertMirror(ctx: ToolContext, loaded: LoadedVg, lvName: string, images: number, logs: number, opts: { pvArgs: string[]; alloc?: string; regionSectors?: number }): Promise<{ added: boolean; changed: boolean }> {
  const vg = loaded.vg;
  const lv = findLv(vg, lvName)!;
  const seg = mirrorSeg(lv);
  const oldImages = seg ? seg.mirrors.length : 1;
  const oldLogs = seg?.mirrorLog ? 1 : 0;
  if (images === 1) logs = 0;
  if (images === oldImages && logs === oldLogs) return { added: false, changed: false };
  if (images > oldImages) {
    const st = await syncState(ctx, vg.name, lvName);
    if (seg && !st.inSync) throw new CommandError("Can't add mirror to out-of-sync mirrored LV: use lvchange --resync first.");
    let region = opts.regionSectors ?? seg?.regionSizeSectors ?? defaultRegionSectors(ctx);
    if (!seg) region = adjustedRegionSize(ctx.out, vg.extentSizeSectors, lvExtents(lv), region);
    // Existing disk log: make every region out of sync before the new leg exists in the metadata.
    if (seg?.mirrorLog && logs === 1) {
      const r = await resetActiveMirrorLog(ctx, vg.name, lvName);
      if (!r.active && !ctx.opts.test) await initMirrorLog(loaded, findLv(vg, seg.mirrorLog)!, false);
    }
    const ed = new VgEditor(vg, lvEnv(ctx));
    const sp = space(ctx, loaded, opts.pvArgs, opts.alloc, lv);
    const newLog = seg ? (logs > oldLogs ? 1 : 0) : logs;
    const { log } = ed.addMirrorImages(lv, { ...sp, mirrors: images - oldImages, stripes: 1, stripeSizeSectors: 0, regionSizeSectors: region, logCount: newLog });
    if (log) {
      // As lvm2: commit with the log visible and unattached, initialise it (all regions out of sync), attach it.
      await commitLvChange(ctx, loaded);
      if (!ctx.opts.test) await initMirrorLog(loaded, log, false);
      ed.attachMirrorLog(lv, log);
    } else if (seg && !seg.mirrorLog) {
      // Core log: the whole mirror resyncs on its next (re)load anyway.
    }
    await commitAndReload(ctx, loaded);
    return { added: true, changed: true };
  }
  // Fewer legs and/or no log.
  const pvIds = new Set(opts.pvArgs.length ? createPvList(ctx, loaded, opts.pvArgs, false).map((e) => e.pv.pvId) : []);
  const onNamedPvs = (img: LogicalVolume, v: VolumeGroup): boolean => {
    for (const s of img.segments) for (const a of "stripes" in s ? s.stripes : []) if (a.kind === "pv" && pvIds.has(a.pvId)) return true;
    void v;
    return false;
  };
  if (images < oldImages || logs < oldLogs) {
    const r = removeMirrorImages(vg, lvName, { count: oldImages - images, isRemovable: onNamedPvs, preferredOnly: false, removeLog: logs < oldLogs });
    await commitStages(ctx, loaded, r.stages, r.result);
    await reloadVg(ctx, vg.name);
  }
  if (logs > oldLogs && images === oldImages) {
    // core → disk on an existing mirror: a fresh log (all out of sync) is attached; the mirror resyncs.
    const lv2 = findLv(loaded.vg, lvName)!;
    const ed = new VgEditor(loaded.vg, lvEnv(ctx));
    const log = ed.createMirrorLog(lv2, 1, mirrorSeg(lv2)!.regionSizeSectors, space(ctx, loaded, opts.pvArgs, opts.alloc, lv2));
    await commitLvChange(ctx, loaded);
    if (!ctx.opts.test) await initMirrorLog(loaded, log, false);
    ed.attachMirrorLog(lv2, log);
    await commitAndReload(ctx, loaded);
    return { added: true, changed: true };
  }
  return { added: false, changed: true };
}

function parseMirrors(args: Args): { sign: "+" | "-" | undefined; n: number } | undefined {
  const v = args.str("mirrors");
  if (v === undefined) return undefined;
  const m = /^([+-]?)(\d+)$/.exec(v);
  if (!m) throw new UsageError(`Invalid argument for --mirrors: ${v}\n  Error during parsing of command line.`, undefined, { runHelp: false });
  return { sign: (m[1] || undefined) as "+" | "-" | undefined, n: Number(m[2]) };
}

async function waitIfActive(ctx: ToolContext, req: Request, loaded: LoadedVg): Promise<void> {
  const lv = findLv(loaded.vg, req.lv);
  const st = await syncState(ctx, req.vg, req.lv);
  const name = displayLvName(req.vg, req.lv);
  if (!st.active) {
    ctx.out.print(`Logical volume ${name} converted.`);
    return;
  }
  ctx.out.print(`Logical volume ${name} being converted.`);
  if (req.background) return;
  await ctx.locks.release(vgLockName(req.vg)); // lvm2 polls without the VG lock
  await waitForConversion(ctx, req.vg, req.lv, lv ? lvExtents(lv) : 1, loaded.vg.extentSizeSectors * 512, req.intervalSec);
}

/** How --repair replaces what failed: by the fault policies (--use-policies), not at all (--force), or by asking. */
interface RepairOptions {
  usePolicies: boolean;
  force: boolean;
}

/**
 * `lvconvert --repair --use-policies -b VG/LV`, as dmeventd runs it: the
 * daemon's fault policy calls this (through commands/, as the CLI would).
 */
export function repairByPolicy(ctx: ToolContext, vg: string, lv: string): Promise<number> {
  return repair(ctx, { vg, lv, pvArgs: [], intervalSec: 0, background: true }, { usePolicies: true, force: false });
}

async function repair(ctx: ToolContext, req: Request, opts: RepairOptions): Promise<number> {
  const loaded = await readVgForUpdate(ctx, req.vg, { handlesMissingPvs: true });
  const vg = loaded.vg;
  const lv = findLv(vg, req.lv);
  if (!lv) throw new CommandError(`Failed to find logical volume "${req.vg}/${req.lv}"`);
  const name = displayLvName(vg, lv.name);
  const seg = mirrorSeg(lv);
  if (raidHasIntegrity(vg, lv)) {
    const done = await repairStaleIntegrityImages(ctx, loaded, lv, opts.usePolicies);
    if (done !== undefined) return done;
  }
  refuseRaidIntegrity(vg, lv, "repair");
  if (!seg && raidSegOf(lv)) return repairRaid1(ctx, loaded, lv.name, req.pvArgs, opts.usePolicies);
  if (!seg) {
    // lvm2's command definition takes only mirror, raid, thin pool and cache LVs for --repair.
    throw new CommandError(`Command on LV ${name} does not accept LV type ${lvTypeName(lv)}.\nCommand not permitted on LV ${name}.`);
  }
  const missing = new Set(vg.pvs.filter((pv) => isPvMissing(loaded, pv)).map((pv) => pv.id));
  if (!isLvPartial(vg, lv, missing)) {
    ctx.out.print(`Volume ${name} is consistent. Nothing to repair.`);
    return 0;
  }
  const originalImages = seg.mirrors.length;
  const originalLogs = seg.mirrorLog ? 1 : 0;
  const plan = planMirrorRepair(vg, lv.name, missing);
  const failedImages = mirrorImages(vg, lv.name).filter((i) => isLvPartial(vg, i, missing)).length;
  const failedLogs = seg.mirrorLog && isLvPartial(vg, findLv(vg, seg.mirrorLog)!, missing) ? 1 : 0;
  await commitStages(ctx, loaded, plan.stages, plan.result);
  await reloadVg(ctx, req.vg);
  if (plan.removedLv) throw new CommandError(`No usable images left in ${name}.`);
  if (failedImages) ctx.out.print(`Mirror status: ${failedImages} of ${originalImages} images failed.`);
  if (failedLogs) ctx.out.print(`Mirror log status: ${failedLogs} of ${originalLogs} images failed.`);
  let replaceImages: boolean;
  let replaceLogs: boolean;
  if (opts.usePolicies) {
    replaceImages = ctx.config.str("activation/mirror_image_fault_policy", "remove") !== "remove";
    replaceLogs = ctx.config.str("activation/mirror_log_fault_policy", "allocate") !== "remove";
  } else if (opts.force) {
    replaceImages = replaceLogs = false;
  } else {
    replaceImages = replaceLogs = true;
    if (!ctx.opts.yes) {
      if (failedLogs && !(await ctx.confirm("Attempt to replace failed mirror log?"))) replaceLogs = false;
      if (failedImages && !(await ctx.confirm("Attempt to replace failed mirror images (requires full device resync)?"))) replaceImages = false;
    }
  }
  let images = replaceImages ? originalImages : originalImages - failedImages;
  if (images === 1) replaceLogs = false;
  let logs = replaceLogs ? originalLogs : originalLogs - failedLogs;
  let added = false;
  while (replaceImages || replaceLogs) {
    ctx.out.warn(`WARNING: Trying to up-convert to ${images} images, ${logs} logs.`);
    try {
      added = (await convertMirror(ctx, loaded, lv.name, images, logs, { pvArgs: req.pvArgs, regionSectors: seg.regionSizeSectors })).added;
      break;
    } catch (e) {
      if (!(e instanceof LvmError)) throw e;
      ctx.out.error(e.message);
      if (images > 2) images--;
      else if (logs > 0) logs--;
      else break;
    }
  }
  const after = findLv(loaded.vg, lv.name);
  const afterSeg = after ? mirrorSeg(after) : undefined;
  const nowImages = afterSeg ? afterSeg.mirrors.length : 1;
  const nowLogs = afterSeg?.mirrorLog ? 1 : 0;
  if (replaceImages && nowImages !== originalImages) ctx.out.warn(`WARNING: Failed to replace ${originalImages - nowImages} of ${originalImages} images in volume ${name}.`);
  if (replaceLogs && nowLogs !== originalLogs) ctx.out.warn(`WARNING: Failed to replace ${originalLogs - nowLogs} of ${originalLogs} logs in volume ${name}.`);
  if (added && !req.background) {
    const st = await syncState(ctx, req.vg, lv.name);
    if (st.active) {
      await ctx.locks.release(vgLockName(req.vg));
      await waitForConversion(ctx, req.vg, lv.name, lvExtents(after ?? lv), loaded.vg.extentSizeSectors * 512, req.intervalSec);
    }
  }
  return 0;
}

/** _raid_split_image_conversion: no conversion of a raid1 LV tracking a split image, nor of that image. */
function raidSplitImageConversion(vg: VolumeGroup, lv: LogicalVolume): void {
  const disp = displayLvName(vg.name, lv.name);
  if (raidTrackingImage(vg, lv)) throw new CommandError(`Conversion of tracking raid1 LV ${disp} is not supported.`);
  const p = lv.name.indexOf("_rimage_");
  if (p < 0 || !vg.lvs.some((l) => raidSegOf(l)?.raids.some((r) => r.image === lv.name))) return;
  // As lvm2: dm_strncpy(raidlv_name, lv->name, s - lv->name) keeps one character less than the raid LV's name.
  const top = findLv(vg, lv.name.slice(0, p - 1));
  if (!top) throw new CommandError(`Failed to find RaidLV of RAID subvolume ${disp}.`);
  if (raidTrackingImage(vg, top)) throw new CommandError(`Conversion of tracked raid1 subvolume ${disp} is not supported.`);
}

/**
 * lvconvert --splitmirrors N (--name NEW | --trackchanges) on a raid1 LV
 * (_lvconvert_raid's split branch; legacy mirrors are not split by ulvm).
 */
async function splitMirrors(ctx: ToolContext, req: Request, args: Args): Promise<number> {
  const track = args.has("trackchanges");
  let name = args.str("name");
  if (name === undefined && !track) {
    throw noMatchingSyntax(ctx.out, "lvconvert", {
      correct: false,
      lines: ["lvconvert --splitmirrors Number -n|--name LV_new LV", "Split images from a raid1 or mirror LV and use them to create a new LV."],
    });
  }
  const n = numberValue(args, "splitmirrors", "unsigned")!.value;
  if (name !== undefined) {
    if (name.includes("/")) {
      const v = name.slice(0, name.lastIndexOf("/"));
      if (v !== req.vg) throw new CommandError(`Logical volume names must have the same volume group ("${req.vg}" or "${v}")`);
      name = name.slice(name.lastIndexOf("/") + 1);
    }
    const problem = userLvNameProblem(name, req.vg);
    if (problem) throw new CommandError(problem);
  }
  const loaded = await readVgForUpdate(ctx, req.vg);
  const lv = findLv(loaded.vg, req.lv);
  if (!lv) throw new CommandError(`Failed to find logical volume "${req.vg}/${req.lv}"`);
  const disp = displayLvName(req.vg, req.lv);
  if (!isVisible(lv)) throw new CommandError(`Operation not permitted on hidden LV ${disp}.`);
  refuseRaidIntegrity(loaded.vg, lv, "split", "Integrity must be removed before splitting.");
  const seg = raidSegOf(lv);
  if (!seg) {
    if (mirrorSeg(lv)) throw new CommandError(`Splitting images of mirror LV ${disp} is not supported by ulvm.`);
    throw new CommandError(`Command on LV ${disp} does not accept LV type ${lvTypeName(lv)}.\nCommand not permitted on LV ${disp}.`);
  }
  raidSplitImageConversion(loaded.vg, lv);
  const count = seg.raids.length - n;
  if (count < 1) throw new CommandError("Unable to split images by specified amount.");
  if (track && n !== 1) throw new CommandError(`Exactly one image must be split off from ${disp} when tracking changes.`);
  if (track) return splitAndTrackRaid1(ctx, loaded, lv.name, req.pvArgs);
  return splitRaid1(ctx, loaded, lv.name, name!, count, req.pvArgs);
}

/** lvconvert --mergemirrors LV... (and --merge on an LV that is no snapshot): lv_raid_merge for each. */
async function mergeMirrors(ctx: ToolContext, args: Args): Promise<number> {
  let ret = 0;
  for (const a of args.positional) {
    const { vg, lv } = lvNameArg(a, ctx.paths.devDir);
    if (vg === undefined) throw new UsageError(`Path "${a}" is not a logical volume.`, "lvconvert");
    try {
      const loaded = await readVgForUpdate(ctx, vg);
      const lvObj = findLv(loaded.vg, lv);
      if (!lvObj) throw new CommandError(`Failed to find logical volume "${vg}/${lv}"`);
      if (!isVisible(lvObj)) throw new CommandError(`Operation not permitted on hidden LV ${displayLvName(vg, lv)}.`);
      await mergeRaidImage(ctx, loaded, lv);
    } catch (e) {
      if (!(e instanceof CommandError) || args.positional.length === 1) throw e;
      if (e.message) ctx.out.error(e.message);
      ret = 5;
    }
  }
  return ret;
}

/** lvconvert --replace PV... vg/raid1lv [PV...] (lvconvert_replace_pv_cmd → lv_raid_replace). */
async function replacePvs(ctx: ToolContext, req: Request, replaceArgs: string[]): Promise<number> {
  const loaded = await readVgForUpdate(ctx, req.vg);
  const lv = findLv(loaded.vg, req.lv);
  if (!lv) throw new CommandError(`Failed to find logical volume "${req.vg}/${req.lv}"`);
  const name = displayLvName(loaded.vg, lv.name);
  refuseRaidIntegrity(loaded.vg, lv, "replace PVs of");
  if (!raidSegOf(lv)) {
    throw new CommandError(`Command on LV ${name} does not accept LV type ${lvTypeName(lv)}.\nCommand not permitted on LV ${name}.`);
  }
  const allocPvs = raidAllocPvs(ctx, loaded, req.pvArgs);
  const remove = new Set(createPvList(ctx, loaded, replaceArgs, false).map((e) => e.pv.pvId));
  await replaceRaidImages(ctx, loaded, lv.name, remove, allocPvs, false);
  return 0;
}

/**
 * Whether lvm2 takes the raid path (_lvconvert_raid) for this LV: a raid1 LV
 * (-m, --type raid1|linear), or a linear LV given -m with --type raid1 or,
 * without --type, when global/mirror_segtype_default is "raid1" (ulvm's
 * default stays "mirror").
 */
function raid1Route(ctx: ToolContext, lv: LogicalVolume, type: string | undefined, mirrorsGiven: boolean): boolean {
  if (raidSegOf(lv)) return type === undefined || type === "raid1" || type === "linear";
  if (!isLinearLv(lv) || !mirrorsGiven) return false;
  if (type === "raid1") return true;
  return type === undefined && ctx.config.str("global/mirror_segtype_default", "mirror") === "raid1";
}

export const lvconvert: CommandDef = {
  name: "lvconvert",
  summary: "Change logical volume layout",
  usage: `  lvconvert - Change logical volume layout

  Convert LV to type mirror (also see type raid1),
  (also see lvconvert --mirrors).
  lvconvert --type mirror LV
	[ -m|--mirrors [+|-]Number ]
	[ -R|--regionsize Size[m|UNIT] ]
	[ -i|--interval Number ]
	[    --mirrorlog core|disk ]
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Change the number of mirror images in the LV.
  lvconvert -m|--mirrors [+|-]Number LV_linear_mirror
	[ -A|--autobackup y|n ]
	[ -b|--background ]
	[ -i|--interval Number ]
	[ -R|--regionsize Size[m|UNIT] ]
	[    --mirrorlog core|disk ]
	[    --alloc contiguous|cling|cling_by_tags|normal|anywhere|inherit ]
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Change the type of mirror log used by a mirror LV.
  lvconvert --mirrorlog core|disk LV_mirror
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Convert LV to type raid1 (from linear or mirror), or a raid1 LV to type mirror or linear.
  lvconvert --type raid1|mirror|linear LV_linear_mirror_raid1
	[ -m|--mirrors [+|-]Number ]
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Replace specific PV(s) in a raid LV with another PV.
  lvconvert --replace PV LV_raid
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Split images from a raid1 LV and use them to create a new LV,
  or split one image and track the changes made to it.
  lvconvert --splitmirrors Number --name LV_new LV_raid1
	[ COMMON_OPTIONS ]
	[ PV ... ]
  lvconvert --splitmirrors Number --trackchanges LV_raid1
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Merge a raid1 image that was split off with --trackchanges back into its raid1 LV.
  lvconvert --mergemirrors LV_linear_raid1_image ...
	[ COMMON_OPTIONS ]

  Replace failed PVs in a raid1 or mirror LV.
  lvconvert --repair LV_mirror_raid
	[ -b|--background ]
	[ -i|--interval Number ]
	[    --usepolicies ]
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Poll LV to continue conversion.
  lvconvert --raidintegrity y|n LV_raid
	[    --raidintegritymode String ]
	[    --raidintegrityblocksize Number ]
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Add or remove data integrity checksums to raid images.
  lvconvert LV_mirror
	[ -b|--background ]
	[ -i|--interval Number ]
	[ COMMON_OPTIONS ]
`,
  options: OPTIONS,
  async run(ctx, args) {
    if (args.positional.length === 0) throw new UsageError("Please provide logical volume path", "lvconvert");
    const { vg, lv } = lvNameArg(args.positional[0]!, ctx.paths.devDir);
    if (vg === undefined) throw new UsageError(`Path "${args.positional[0]}" is not a logical volume.`, "lvconvert");
    const intervalArg = args.str("interval");
    if (intervalArg !== undefined && !/^\+?\d+$/.test(intervalArg)) {
      throw new UsageError(intervalArg.startsWith("-") ? "Argument to --interval cannot be negative." : `Invalid argument for --interval: ${intervalArg}`, "lvconvert");
    }
    const req: Request = {
      vg,
      lv,
      pvArgs: args.positional.slice(1),
      intervalSec: intervalArg !== undefined ? Number(intervalArg) : ctx.config.int("activation/polling_interval", 15),
      background: args.has("background"),
    };
    if (args.has("stripes") || args.has("stripesize")) throw new CommandError("--stripes or --stripesize argument is only valid when converting to striped or raid.");
    if (args.has("raidintegrity")) return convertIntegrity(ctx, args, vg, lv);
    if (args.has("mergemirrors") || args.has("merge")) return mergeMirrors(ctx, args);
    if (args.has("splitmirrors")) return splitMirrors(ctx, req, args);
    if (args.has("repair")) return repair(ctx, req, { usePolicies: args.has("usepolicies"), force: args.has("force") });
    if (args.has("replace")) return replacePvs(ctx, req, args.strs("replace"));
    const mirrors = parseMirrors(args);
    const type = args.str("type");
    if (type !== undefined && type !== "mirror" && type !== "linear" && type !== "raid1") throw new CommandError(`Conversion using --type ${type} is not supported.`);
    if (args.has("corelog") && args.has("mirrorlog")) throw new UsageError("--mirrorlog and --corelog are incompatible.", "lvconvert");
    const logArg = args.has("corelog") ? 0 : mirrorLogValue(args);
    if (logArg === 2) throw new CommandError('Log type "mirrored" is DEPRECATED. Use RAID1 LV or disk log instead.');
    const region = regionSizeValue(args);
    const alloc = allocValue(args);
    if (mirrors === undefined && type === undefined && logArg === undefined) {
      // lvconvert VG/LV: resume waiting for a conversion.
      const loaded = await ctx.readVg(vg, { lock: false });
      const lvObj = findLv(loaded.vg, lv);
      if (!lvObj) throw new CommandError(`Failed to find logical volume "${vg}/${lv}"`);
      const st = (await daemonStatus(ctx)).find((s) => s.vg === vg && s.lv === lv);
      if (!st || !mirrorSeg(lvObj)) {
        ctx.out.print(`Logical volume ${displayLvName(vg, lv)} is not being converted.`);
        return 0;
      }
      if (copyPercent(syncOf(st)!, lvExtents(lvObj)) >= 100) {
        ctx.out.print(`${displayLvName(vg, lv)}: Converted: 100.00%`);
        return 0;
      }
      if (req.background) return 0;
      await waitForConversion(ctx, vg, lv, lvExtents(lvObj), loaded.vg.extentSizeSectors * 512, req.intervalSec);
      return 0;
    }
    const loaded = await readVgForUpdate(ctx, vg);
    const lvObj = findLv(loaded.vg, lv);
    if (!lvObj) throw new CommandError(`Failed to find logical volume "${vg}/${lv}"`);
    if (!isVisible(lvObj)) throw new CommandError(`Operation not permitted on hidden LV ${displayLvName(vg, lv)}.`);
    raidSplitImageConversion(loaded.vg, lvObj);
    // lvconvert.c / raid_manip.c: to linear needs integrity removed first; other conversions are lvm2's refusal.
    if (type === "linear" || mirrors?.n === 0) refuseRaidIntegrity(loaded.vg, lvObj, "convert", "Integrity must be removed before converting raid to linear.");
    else if (type !== undefined) refuseRaidIntegrity(loaded.vg, lvObj, "convert", "This conversion is not supported for raid with integrity.");
    else refuseRaidIntegrity(loaded.vg, lvObj, "change the images of");
    if (type === "raid1" && mirrorSeg(lvObj) && mirrors === undefined) {
      if (logArg !== undefined) throw new CommandError("--corelog and --mirrorlog are only compatible with mirror devices");
      return convertMirrorToRaid1(ctx, loaded, lv);
    }
    if (type === "mirror" && raidSegOf(lvObj)) {
      return convertRaid1ToMirror(ctx, loaded, lv, req.pvArgs);
    }
    const raidRoute = raid1Route(ctx, lvObj, type, mirrors !== undefined);
    if (raidRoute) {
      if (logArg !== undefined) throw new CommandError("--corelog and --mirrorlog are only compatible with mirror devices");
      const cur = raidSegOf(lvObj)?.raids.length ?? 1;
      let count = cur;
      if (type === "linear") {
        if (mirrors && mirrors.n !== 0) throw new CommandError("Cannot specify mirrors with linear type.");
        count = 1;
      } else if (mirrors) count = mirrors.sign === "+" ? cur + mirrors.n : mirrors.sign === "-" ? cur - mirrors.n : mirrors.n + 1;
      if (count < 1) throw new CommandError("Unable to reduce images by specified amount.");
      return changeRaidImageCount(ctx, loaded, lv, { newCount: count, pvArgs: req.pvArgs, alloc });
    }
    if (type === "raid1") throw new CommandError(`Conversion using --type ${type} is not supported.`);
    if (type === "mirror" && mirrors === undefined) throw new CommandError("Conversions to --type mirror require -m/--mirrors");
    const seg = mirrorSeg(lvObj);
    if (!seg && lvObj.segments.some((s) => s.type !== "striped")) throw new CommandError(`Cannot convert LV ${displayLvName(vg, lv)}.`);
    const oldImages = seg ? seg.mirrors.length : 1;
    let images = oldImages;
    if (type === "linear") {
      if (mirrors && mirrors.n !== 0) throw new CommandError("Cannot specify mirrors with linear type.");
      images = 1;
    } else if (mirrors) {
      images = mirrors.sign === "+" ? oldImages + mirrors.n : mirrors.sign === "-" ? oldImages - mirrors.n : mirrors.n + 1;
    }
    if (images < 1) throw new CommandError(`Unable to reduce images by specified amount - only ${oldImages - 1} in ${displayLvName(vg, lv)}`);
    if (images > 8) throw new CommandError("Only up to 8 images in mirror supported currently.");
    if (images === 1 && !seg) {
      ctx.out.warn(`WARNING: Logical volume ${displayLvName(vg, lv)} is already not mirrored.`);
      return 0;
    }
    if (!seg && logArg !== undefined && mirrors === undefined) throw new CommandError("--corelog and --mirrorlog are only compatible with mirror devices");
    const logs = logArg ?? (seg ? (seg.mirrorLog ? 1 : 0) : 1);
    const r = await convertMirror(ctx, loaded, lv, images, logs, { pvArgs: req.pvArgs, ...(alloc ? { alloc } : {}), ...(region ? { regionSectors: region } : {}) });
    if (!r.changed) return 0;
    if (r.added) await waitIfActive(ctx, req, loaded);
    else ctx.out.print(`Logical volume ${displayLvName(vg, lv)} converted.`);
    return 0;
  },
};

/** lvconvert --raidintegrity y|n LV_raid: the command line takes raid LVs only (lvconvert_integrity). */
async function convertIntegrity(ctx: ToolContext, args: Args, vg: string, lv: string): Promise<number> {
  const add = boolValue(args, "raidintegrity")!;
  const modeArg = args.str("raidintegritymode");
  let mode: "J" | "B" | undefined;
  if (modeArg === "bitmap" || modeArg === "B") mode = "B";
  else if (modeArg === "journal" || modeArg === "J") mode = "J";
  else if (modeArg !== undefined) throw new CommandError('Invalid raid integrity mode (use "bitmap" or "journal")');
  const loaded = await readVgForUpdate(ctx, vg, { handlesMissingPvs: true });
  const lvObj = findLv(loaded.vg, lv);
  if (!lvObj) throw new CommandError(`Failed to find logical volume "${vg}/${lv}"`);
  const name = displayLvName(vg, lv);
  if (!isVisible(lvObj)) throw new CommandError(`Operation not permitted on hidden LV ${name}.`);
  if (!raidSegOf(lvObj)) throw new CommandError(`Command on LV ${name} does not accept LV type ${lvTypeName(lvObj)}.\nCommand not permitted on LV ${name}.`);
  return lvconvertRaidIntegrity(ctx, loaded, lvObj, add, { mode, blockSize: numberValue(args, "raidintegrityblocksize", "unsigned")?.value, settings: {} });
}
