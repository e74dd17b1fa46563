import type { CommandDef } from "../cli/command-def.js";
import { CommandError, UsageError } from "../errors/errors.js";
import { existsSync } from "node:fs";
import { formatId } from "../base/uuid.js";
import { pvAllocatedExtents } from "../model/extents.js";
import { findLv, isMirror, isVisible } from "../model/lv-info.js";
import { removeLvTree } from "../model/lv-remove.js";
import { isLvPartial, planMirrorRepair, type MirrorRepairPlan } from "../model/mirror-repair.js";
import type { VolumeGroup } from "../model/types.js";
import { raidRemoveMissing, raidSegOf } from "../model/raid1-convert.js";
import type { ToolContext } from "./toolcontext.js";
import type { LoadedVg } from "./vg-store.js";
import { writeOrphanPv } from "./pv-orphan.js";
import { isLvActive, reloadVg } from "./activation.js";
import { commitChange, doesNotAcceptArgument, doesNotAcceptOption, forEachVg, noMatchingSyntax, readVgForChange, vgArg } from "./vg-common.js";
import { findPvByDevice } from "./vgextend.js";
import type { ScannedDevice } from "./scan.js";

/**
 * vgreduce (tools/vgreduce.c): remove named PVs, all unused PVs (-a), or the
 * missing PVs (--removemissing), which with --force first repairs or removes
 * the LVs that use them, committing the VG at each step as lvm2 does.
 */

/** Ask the daemon (if one runs) to bring active LVs in line with the new metadata; a refusal is a warning. */
export async function reloadActive(ctx: ToolContext, vgName: string): Promise<void> {
  try {
    await reloadVg(ctx, vgName);
  } catch (e) {
    ctx.out.warn(`WARNING: Failed to reload active logical volumes of ${vgName}: ${(e as Error).message}`);
  }
}

/** Commit one version of the VG (a repair stage), keeping the seqno sequence. */
async function commitStage(ctx: ToolContext, loaded: LoadedVg, vg: VolumeGroup): Promise<void> {
  vg.seqno = loaded.vg.seqno;
  loaded.vg = vg;
  await commitChange(ctx, loaded);
}

/** lvm2's (2.02-era) mirror fault messages, which the user story shows for vgreduce --removemissing --force. */
export function mirrorRepairWarnings(vgName: string, plan: MirrorRepairPlan): string[] {
  if (plan.unchanged || plan.removedLv) return [];
  const lv = `${vgName}/${plan.lvName}`;
  const out = [`WARNING: Bad device removed from mirror volume, ${lv}`];
  if (plan.collapsed) out.push(`WARNING: Mirror volume, ${lv} converted to linear due to device failure.`);
  else if (plan.logFailed) out.push(`WARNING: Mirror volume, ${lv} disk log removed due to device failure.`);
  return out;
}

/** _consolidate_vg: report partial LVs; without any, drop the missing PVs. Returns false when partial LVs remain. */
function consolidate(ctx: ToolContext, loaded: LoadedVg): boolean {
  const vg = loaded.vg;
  const missing = new Set(loaded.missingPvIds());
  let ok = true;
  for (const lv of vg.lvs) {
    if (isLvPartial(vg, lv, missing)) {
      ctx.out.warn(`WARNING: Partial LV ${lv.name} needs to be repaired or removed. `);
      ok = false;
    }
  }
  if (!ok) {
    ctx.out.error(`There are still partial LVs in VG ${vg.name}.`);
    ctx.out.error("To remove them unconditionally use: vgreduce --removemissing --force.");
    ctx.out.error("To remove them unconditionally from mirror LVs use: vgreduce --removemissing --mirrorsonly --force.");
    ctx.out.warn("WARNING: Proceeding to remove empty missing PVs.");
    // lvm2 announces it but removes nothing while partial LVs remain; the write still records MISSING.
    return false;
  }
  for (const id of missing) {
    const pv = vg.pvs.find((p) => p.id === id);
    if (!pv) continue;
    // _remove_pv: lvm2 stops at the first PV it cannot drop (the VG is still written).
    if (vg.pvs.length === 1) {
      ctx.out.error("Volume Groups must always contain at least one PV.");
      return false;
    }
    if (pvAllocatedExtents(vg, pv)) {
      ctx.out.error(`LVs still present on PV with UUID ${formatId(id)}: Can't remove from VG ${vg.name}.`);
      return false;
    }
    vg.pvs = vg.pvs.filter((p) => p !== pv);
  }
  return true;
}

/**
 * _make_vg_consistent: repair mirrors and remove other partial LVs, one LV at
 * a time, committing each step as lvm2 does, then drop the missing PVs when
 * nothing uses them. Exported for other repair paths (the daemon, lvconvert).
 */
export async function makeConsistent(ctx: ToolContext, loaded: LoadedVg, mirrorsOnly: boolean): Promise<void> {
  const skipped = new Set<string>();
  for (;;) {
    const vg = loaded.vg;
    const missing = new Set(loaded.missingPvIds());
    let changed = false;
    for (const lv of vg.lvs) {
      if (skipped.has(lv.name) || !isLvPartial(vg, lv, missing)) continue;
      const seg = lv.segments[0];
      if (raidSegOf(lv)) {
        // lv_raid_remove_missing: the failed images and their rmeta become "error" LVs; one commit.
        raidRemoveMissing(vg, lv, (sub) => isLvPartial(vg, sub, missing));
        await commitStage(ctx, loaded, vg);
        changed = true;
        break;
      }
      if (seg && "opaque" in seg && seg.type.startsWith("raid")) throw new CommandError(`Repairing RAID LV ${vg.name}/${lv.name} is not supported by ulvm.`);
      if (isMirror(lv) && isVisibleOrTop(vg, lv.name)) {
        let plan: MirrorRepairPlan;
        try {
          plan = planMirrorRepair(vg, lv.name, missing);
        } catch (e) {
          throw new CommandError((e as Error).message);
        }
        if (plan.removedLv) ctx.out.error(`No usable images left in ${vg.name}/${lv.name}.`);
        // lvm2 asks for the sync state before dropping a primary leg; an inactive mirror cannot tell.
        if (plan.primaryRemoved && !(await isLvActive(ctx, vg.name, lv.name))) ctx.out.error(`Unable to determine mirror sync status of ${vg.name}/${lv.name}.`);
        for (const stage of plan.stages) await commitStage(ctx, loaded, stage);
        if (plan.removedLv) ctx.out.print(`Logical volume "${lv.name}" successfully removed.`);
        for (const w of mirrorRepairWarnings(vg.name, plan)) ctx.out.warn(w);
        changed = true;
        break;
      }
      if (mirrorsOnly && !isMirror(lv)) {
        ctx.out.error(`Non-mirror-image LV ${lv.name} found: can't remove.`);
        skipped.add(lv.name);
        continue;
      }
      if (!isVisible(lv)) continue;
      ctx.out.warn(`WARNING: Removing partial LV ${vg.name}/${lv.name}.`);
      await commitStage(ctx, loaded, removeLvTree(vg, lv.name));
      ctx.out.print(`Logical volume "${lv.name}" successfully removed.`);
      changed = true;
      break;
    }
    if (!changed) break;
  }
  consolidate(ctx, loaded);
}

/** A mirror LV that is not itself a leg or log of another mirror (those are repaired through their parent). */
function isVisibleOrTop(vg: VolumeGroup, name: string): boolean {
  const lv = findLv(vg, name);
  if (!lv) return false;
  if (isVisible(lv)) return true;
  return !vg.lvs.some((l) => l.segments.some((s) => s.type === "mirror" && "mirrors" in s && (s.mirrors.some((a) => a.kind === "lv" && a.lvName === name) || s.mirrorLog === name)));
}

async function removeMissing(ctx: ToolContext, vgName: string, force: boolean, mirrorsOnly: boolean): Promise<void> {
  const loaded = await readVgForChange(ctx, vgName, { handlesMissingPvs: true });
  if (!loaded.isPartial()) {
    ctx.out.print(`Volume group "${vgName}" is already consistent.`);
    return;
  }
  let fixed: boolean;
  if (force) {
    await makeConsistent(ctx, loaded, mirrorsOnly);
    fixed = true;
  } else fixed = consolidate(ctx, loaded);
  try {
    await commitChange(ctx, loaded);
  } catch (e) {
    ctx.out.error(`Failed to write out a consistent VG for ${vgName}`);
    throw e;
  }
  // Active LVs follow the repaired metadata (lvm2 reloads them at each step).
  if (force) await reloadActive(ctx, vgName);
  if (!fixed) {
    const err = new CommandError("");
    err.silent = true;
    throw err;
  }
  ctx.out.print(`Wrote out consistent volume group ${vgName}.`);
}

/** vgreduce VG PV... and vgreduce -a VG: each PV in VG order, one commit each. */
async function removePvs(ctx: ToolContext, vgName: string, names: readonly string[] | "all"): Promise<number> {
  let failed = 0;
  const wanted = new Set<string>();
  const unresolved: string[] = [];
  if (names !== "all") {
    for (const n of names) {
      if (!existsSync(n) || !(await ctx.findDevice(n))) {
        ctx.out.error(`Cannot use ${n}: device not found`);
        failed++;
        continue;
      }
      unresolved.push(n);
    }
  }
  let loaded: LoadedVg;
  try {
    loaded = await readVgForChange(ctx, vgName);
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    ctx.out.error(e.message);
    for (const n of unresolved) ctx.out.error(`Failed to find physical volume "${n}".`);
    return 5;
  }
  const vg = loaded.vg;
  const notInVg: string[] = [];
  if (names === "all") for (const pv of vg.pvs) wanted.add(pv.id);
  else {
    for (const n of unresolved) {
      const id = findPvByDevice(loaded, n);
      if (id) wanted.add(id);
      else notInVg.push(n);
    }
  }
  const order = vg.pvs.filter((pv) => wanted.has(pv.id)).map((pv) => pv.id);
  for (const id of order) {
    const pv = loaded.vg.pvs.find((p) => p.id === id)!;
    const sd = loaded.deviceOf(id) as ScannedDevice;
    const name = sd.entry.name;
    if (!loaded.vg.status.includes("RESIZEABLE")) {
      ctx.out.error(`Volume group ${vg.name} is not resizeable.`);
      failed++;
      continue;
    }
    if (pvAllocatedExtents(loaded.vg, pv)) {
      ctx.out.error(`Physical volume "${name}" still in use`);
      failed++;
      continue;
    }
    if (loaded.vg.pvs.length === 1) {
      ctx.out.error(`Can't remove final physical volume "${name}" from volume group "${vg.name}"`);
      failed++;
      continue;
    }
    const others = loaded.vg.pvs.filter((p) => p !== pv);
    if (!others.some((p) => loaded.deviceOf(p.id)?.label?.metadataAreas.length)) {
      ctx.out.error(`Cannot remove final metadata area on "${name}" from "${vg.name}"`);
      failed++;
      continue;
    }
    loaded.vg.pvs = others;
    try {
      await commitChange(ctx, loaded);
    } catch (e) {
      ctx.out.error(`Removal of physical volume "${name}" from "${vg.name}" failed`);
      throw e;
    }
    await writeOrphanPv(ctx, sd);
    ctx.out.print(`Removed "${name}" from volume group "${vg.name}"`);
  }
  // process_each_pv reports the named devices it did not find in the VG last.
  for (const n of notInVg) {
    ctx.out.error(`Failed to find physical volume "${n}".`);
    failed++;
  }
  return failed ? 5 : 0;
}

export const vgreduce: CommandDef = {
  name: "vgreduce",
  summary: "Remove physical volume(s) from a volume group",
  usage: `  vgreduce - Remove physical volume(s) from a volume group

  Remove a PV from a VG.
  vgreduce VG PV ...
	[ COMMON_OPTIONS ]

  Remove all unused PVs from a VG.
  vgreduce -a|--all VG
	[ COMMON_OPTIONS ]

  Remove all missing PVs from a VG.
  vgreduce --removemissing VG
	[    --mirrorsonly ]
	[ COMMON_OPTIONS ]

  Common options for command:
	[ -A|--autobackup y|n ]
	[ -f|--force ]
	[    --reportformat basic|json ]
`,
  options: [
    { name: "all", short: "a", value: false },
    { name: "removemissing", value: false },
    { name: "mirrorsonly", value: false },
    { name: "force", short: "f", value: false, repeat: true },
    { name: "autobackup", short: "A", value: true },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    const pos = args.positional;
    const repairing = args.has("removemissing");
    if (args.has("mirrorsonly") && !repairing) throw doesNotAcceptOption("vgreduce", "mirrorsonly");
    if (!pos.length) throw noMatchingSyntax(ctx, "vgreduce");
    if ((repairing || args.has("all")) && pos.length > 1) throw doesNotAcceptArgument("vgreduce", pos[1]!);
    if (repairing && args.has("all")) throw new UsageError("No command with matching syntax recognised.  Run 'vgreduce --help' for more information.", "vgreduce", { runHelp: false });
    if (!repairing && !args.has("all") && pos.length === 1) throw noMatchingSyntax(ctx, "vgreduce");
    const vgName = vgArg(ctx, pos[0]!);
    await ctx.locks.acquire("P_orphans");
    if (repairing) return forEachVg(ctx, [vgName], (n) => removeMissing(ctx, n, args.count("force") > 0, args.has("mirrorsonly")));
    let code = 0;
    const r = await forEachVg(ctx, [vgName], async (n) => {
      code = await removePvs(ctx, n, args.has("all") ? "all" : pos.slice(1));
    });
    return r || code;
  },
};
