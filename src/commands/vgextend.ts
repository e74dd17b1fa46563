import type { CommandDef } from "../cli/command-def.js";
import { CommandError } from "../errors/errors.js";
import { existsSync } from "node:fs";
import { PV_CREATE_OPTIONS, pvCreateParams, createPv } from "./pvcreate.js";
import { pvEntryFor, setPvUsedFlag } from "./vg-pvs.js";
import { loadVg, type LoadedVg } from "./vg-store.js";
import type { ToolContext } from "./toolcontext.js";
import type { ScannedDevice } from "./scan.js";
import { commitChange, forEachVg, noMatchingSyntax, readVgForChange, silentFailure, vgArg } from "./vg-common.js";
import { canonical } from "./device-list.js";
import { planRestoredLegs } from "../model/restored-legs.js";
import { findLv } from "../model/lv-info.js";
import { isLvPartial } from "../model/mirror-repair.js";
import { initMirrorLog } from "./lv-io.js";
import { resetActiveMirrorLog } from "./activation.js";

/**
 * vgextend (tools/vgextend.c): devices that are not PVs yet are initialised
 * first (before the VG is read, as lvm2's pvcreate_each_device does), then
 * the PVs join the VG in one commit. --restoremissing clears the MISSING flag
 * of PVs that came back.
 */

/** The PV of the VG whose device is `name` (find_pv_in_vg). */
export function findPvByDevice(loaded: LoadedVg, name: string): string | undefined {
  const real = canonical(name);
  for (const pv of loaded.vg.pvs) {
    const sd = loaded.deviceOf(pv.id);
    if (sd && (sd.entry.real === real || sd.entry.name === name)) return pv.id;
  }
  return undefined;
}

/**
 * pvcreate_each_device for vgextend: refuse devices that belong to a VG
 * (all of them are checked before anything is written), then initialise the
 * ones that are not PVs. Returns false after printing lvm2's lines.
 */
async function preparePvs(ctx: ToolContext, names: readonly string[], args: Parameters<typeof pvCreateParams>[0]): Promise<boolean> {
  const p = { ...pvCreateParams(args), force: 0 };
  const scan = await ctx.scan(true);
  const owners = new Map<string, string>();
  for (const v of scan.vgNames()) for (const pv of loadVg(scan, v)?.vg.pvs ?? []) owners.set(pv.id, v);
  const toCreate: string[] = [];
  let ok = true;
  for (const name of names) {
    const sd = await ctx.findDevice(name);
    if (!sd) {
      const unreachable = await ctx.unreachableReason(name);
      if (unreachable !== undefined) ctx.out.error(`Cannot use ${name}: ${unreachable}`);
      else if (!existsSync(name)) ctx.out.error(`No device found for ${name}.`);
      else ctx.out.error(`Cannot use ${name}: device is rejected by filter config (devices/scan in ulvm.conf)`);
      ok = false;
      continue;
    }
    if (sd.label) {
      const owner = owners.get(sd.label.pvIdRaw);
      if (owner !== undefined) {
        // lvm2 names the owning VG in both lines.
        ctx.out.error(`Physical volume '${name}' is already in volume group '${owner}'`);
        ctx.out.error(`Unable to add physical volume '${name}' to volume group '${owner}'`);
        ctx.out.error(`${name}: physical volume not initialized.`);
        ok = false;
      }
      continue;
    }
    if (!toCreate.includes(name)) toCreate.push(name);
  }
  if (!ok) return false;
  for (const name of toCreate) if (!(await createPv(ctx, name, p))) return false;
  return true;
}

async function restoreMissing(ctx: ToolContext, vgName: string, names: readonly string[]): Promise<void> {
  const loaded = await readVgForChange(ctx, vgName, { handlesMissingPvs: true });
  let fixed = 0;
  const restored = new Set<string>();
  for (const name of names) {
    const id = findPvByDevice(loaded, name);
    const pv = loaded.vg.pvs.find((x) => x.id === id);
    if (!pv) {
      ctx.out.warn(`WARNING: PV ${name} not found in VG ${vgName}`);
      continue;
    }
    const before = loaded.original.pvs.find((x) => x.id === pv.id);
    if (pv.flags.includes("MISSING")) {
      pv.flags = pv.flags.filter((f) => f !== "MISSING");
      restored.add(pv.id);
      fixed++;
    } else if (before?.flags.includes("MISSING")) {
      fixed++; // an unused PV whose flag the read already cleared
    } else ctx.out.warn(`WARNING: PV ${name} was not missing in VG ${vgName}`);
  }
  if (!fixed) throw new CommandError("No PV has been restored.");
  await resyncRestoredMirrors(ctx, loaded, restored);
  await commitChange(ctx, loaded);
  ctx.out.print(`Volume group "${vgName}" successfully extended`);
}

/**
 * Mirror images on a PV that comes back missed every write made while it was
 * away: never a source (planRestoredLegs puts an image that stayed first),
 * and every region is resynced. The log is reset before the commit that lets
 * the images back into the tables, so a crash in between cannot leave a log
 * that calls a stale image in sync. An active mirror running without the
 * images does not use its log meanwhile: the log is rewritten on the PVs.
 */
async function resyncRestoredMirrors(ctx: ToolContext, loaded: LoadedVg, restored: ReadonlySet<string>): Promise<void> {
  const stillMissing = new Set(loaded.vg.pvs.filter((pv) => !loaded.deviceOf(pv.id) || pv.flags.includes("MISSING")).map((pv) => pv.id));
  const plan = planRestoredLegs(loaded.vg, restored, stillMissing);
  if (!plan.mirrors.length) return;
  loaded.vg = plan.vg;
  for (const m of plan.mirrors) {
    ctx.out.warn(
      `WARNING: Mirror ${loaded.vg.name}/${m.lvName}: ${m.staleImages.join(", ")} on the restored PV missed writes; every region will be resynchronised${m.newPrimary ? ` from ${m.newPrimary}` : ""}.`,
    );
    if (!m.logName || ctx.opts.test) continue;
    const log = findLv(loaded.vg, m.logName);
    if (!log || isLvPartial(loaded.vg, log, stillMissing)) continue;
    const r = await resetActiveMirrorLog(ctx, loaded.vg.name, m.lvName);
    if (!r.reset) await initMirrorLog(loaded, log, false);
  }
}

async function extend(ctx: ToolContext, vgName: string, names: readonly string[]): Promise<void> {
  // "It is always ok to add new PVs to a VG - even if there are missing PVs."
  const loaded = await readVgForChange(ctx, vgName, { handlesMissingPvs: true });
  const vg = loaded.vg;
  if (!vg.status.includes("RESIZEABLE")) throw new CommandError(`Volume group ${vg.name} is not resizeable.`);
  const added: ScannedDevice[] = [];
  for (const name of names) {
    const sd = await ctx.findDevice(name);
    if (!sd || !sd.label) throw new CommandError(`PV ${name} cannot be added to VG ${vg.name}.`);
    if (vg.pvs.some((pv) => pv.id === sd.label!.pvIdRaw)) {
      throw new CommandError(`Physical volume '${name} (${sd.label.pvIdRaw})' already in the VG.\nPV ${name} cannot be added to VG ${vg.name}.`);
    }
    if (vg.maxPv && vg.pvs.length >= vg.maxPv) {
      throw new CommandError(`No space for '${name}' - volume group '${vg.name}' holds max ${vg.maxPv} physical volume(s).\nPV ${name} cannot be added to VG ${vg.name}.`);
    }
    const pv = pvEntryFor(sd, vg.extentSizeSectors);
    if (pv.peCount === 0) throw new CommandError(`${name}: Physical volume too small for extent size ${vg.extentSizeSectors} sectors.\nPV ${name} cannot be added to VG ${vg.name}.`);
    vg.pvs.push(pv);
    loaded.devices.set(pv.id, sd);
    added.push(sd);
  }
  // lvm2's vg_write writes the labels of new PVs (PV_EXT_USED) before the metadata.
  await setPvUsedFlag(ctx, added, true);
  await commitChange(ctx, loaded);
  ctx.out.print(`Volume group "${vg.name}" successfully extended`);
}

export const vgextend: CommandDef = {
  name: "vgextend",
  summary: "Add physical volumes to a volume group",
  usage: `  vgextend - Add physical volumes to a volume group

  vgextend VG PV ...
	[ -A|--autobackup y|n ]
	[ -f|--force ]
	[ -Z|--zero y|n ]
	[ -M|--metadatatype lvm2 ]
	[    --labelsector Number ]
	[    --metadatasize Size[m|UNIT] ]
	[    --pvmetadatacopies 0|1|2 ]
	[    --metadataignore y|n ]
	[    --dataalignment Size[k|UNIT] ]
	[    --dataalignmentoffset Size[k|UNIT] ]
	[    --reportformat basic|json ]
	[    --restoremissing ]
	[ COMMON_OPTIONS ]
`,
  options: [
    ...PV_CREATE_OPTIONS.filter((o) => !["uuid", "restorefile", "norestorefile", "setphysicalvolumesize", "bootloaderareasize"].includes(o.name)),
    { name: "autobackup", short: "A", value: true },
    { name: "metadatatype", short: "M", value: true },
    { name: "restoremissing", value: false },
  ],
  async run(ctx, args) {
    if (args.positional.length < 2) throw noMatchingSyntax(ctx, "vgextend", "vgextend VG PV ...");
    const vgName = vgArg(ctx, args.positional[0]!);
    const names = args.positional.slice(1);
    await ctx.locks.acquire("P_orphans");
    if (args.has("restoremissing")) return forEachVg(ctx, [vgName], (n) => restoreMissing(ctx, n, names));
    if (!(await preparePvs(ctx, names, args))) throw silentFailure();
    return forEachVg(ctx, [vgName], (n) => extend(ctx, n, names));
  },
};
