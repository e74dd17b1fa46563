import type { CommandDef } from "../cli/command-def.js";
import { CommandError, LvmError, UsageError } from "../errors/errors.js";
import { existsSync } from "node:fs";
import { displaySize } from "../base/units.js";
import { openBlockDevice } from "./device-open.js";
import { writeLabel } from "../format/pv-write.js";
import { PV_MIN_SIZE_SECTORS } from "../format/pv-layout.js";
import { peMaps } from "../model/extents.js";
import { pvAllocatedExtents } from "../model/extents.js";
import { sizeOption } from "./common.js";
import { vgLockName } from "./lock.js";
import type { ScannedDevice } from "./scan.js";
import type { ToolContext } from "./toolcontext.js";
import { loadVg, type LoadedVg } from "./vg-store.js";
import { commitChange, noMatchingSyntax, readVgForChange } from "./vg-common.js";

/**
 * pvresize (tools/pvresize.c, lib/metadata/pv_manip.c pv_resize_single): fit
 * a PV to its device's size or to --setphysicalvolumesize. In a VG the PV's
 * extent count follows (never cutting allocated extents) and the VG is
 * committed; lvm2 stores dev_size minus pe_start there, and so do we. An
 * orphan PV gets its label's device size rewritten.
 */
interface Tally {
  total: number;
  done: number;
}

/** The size to use and the checks and questions before it, as pv_resize_single; undefined = not resized. */
async function targetSize(ctx: ToolContext, name: string, deviceSectors: number, requested: number | undefined): Promise<number | undefined> {
  if (!requested) return deviceSectors;
  const yes = ctx.opts.yes;
  if (requested > deviceSectors) {
    ctx.out.warn(`WARNING: ${name}: Overriding real size ${displaySize(deviceSectors)}. You could lose data.`);
    if (!yes && !(await ctx.confirm(`${name}: Requested size ${displaySize(requested)} exceeds real size ${displaySize(deviceSectors)}. Proceed? `))) {
      ctx.out.error(`Physical Volume ${name} not resized.`);
      return undefined;
    }
  } else if (requested < deviceSectors) {
    if (!yes && !(await ctx.confirm(`${name}: Requested size ${displaySize(requested)} is less than real size ${displaySize(deviceSectors)}. Proceed? `))) {
      ctx.out.error(`Physical Volume ${name} not resized.`);
      return undefined;
    }
  }
  if (requested !== deviceSectors) ctx.out.warn(`WARNING: ${name}: Pretending size is ${requested} not ${deviceSectors} sectors.`);
  return requested;
}

function checkMinimum(name: string, sizeSectors: number, peStartSectors: number): void {
  if (sizeSectors < PV_MIN_SIZE_SECTORS) throw new CommandError(`Size must exceed minimum of ${PV_MIN_SIZE_SECTORS} sectors on PV ${name}.`);
  if (sizeSectors < peStartSectors) throw new CommandError(`Size must exceed physical extent start of ${peStartSectors} sectors on PV ${name}.`);
}

async function resizeVgPv(ctx: ToolContext, loaded: LoadedVg, pvId: string, requested: number | undefined, t: Tally): Promise<boolean> {
  t.total++;
  const sd = loaded.deviceOf(pvId)!;
  const name = sd.entry.name;
  const vg = loaded.vg;
  const pv = vg.pvs.find((p) => p.id === pvId)!;
  try {
    if ((sd.label?.metadataAreas.length ?? 0) > 1) throw new CommandError(`Resizing PV ${name} with a second metadata area at its end is not supported by ulvm yet.`);
    const size = await targetSize(ctx, name, Math.floor(sd.sizeBytes / 512), requested);
    if (size === undefined) return false;
    checkMinimum(name, size, pv.peStartSectors);
    // _text_pv_resize: in a VG the size recorded excludes the area before pe_start.
    const usable = size - pv.peStartSectors;
    const newCount = Math.floor(usable / vg.extentSizeSectors);
    if (!newCount) throw new CommandError(`Size must leave space for at least one physical extent of ${vg.extentSizeSectors} sectors on PV ${name}.`);
    if (newCount < pv.peCount) {
      const allocated = pvAllocatedExtents(vg, pv);
      if (newCount < allocated) throw new CommandError(`${name}: cannot resize to ${newCount} extents as ${allocated} are allocated.`);
      const map = peMaps(vg).get(pv.id) ?? [];
      if (map.slice(newCount).some((o) => o !== undefined)) throw new CommandError(`${name}: cannot resize to ${newCount} extents as later ones are allocated.`);
    }
    pv.devSizeSectors = usable;
    pv.peCount = newCount;
    await commitChange(ctx, loaded);
    ctx.out.print(`Physical volume "${name}" changed`);
    t.done++;
    return true;
  } catch (e) {
    if (!(e instanceof LvmError) || e instanceof UsageError) throw e;
    if (e.message) ctx.out.error(e.message);
    return false;
  }
}

async function resizeOrphan(ctx: ToolContext, sd: ScannedDevice, requested: number | undefined, t: Tally): Promise<boolean> {
  t.total++;
  const name = sd.entry.name;
  const label = sd.label!;
  try {
    if (label.metadataAreas.length > 1) throw new CommandError(`Resizing PV ${name} with a second metadata area at its end is not supported by ulvm yet.`);
    const size = await targetSize(ctx, name, Math.floor(sd.sizeBytes / 512), requested);
    if (size === undefined) return false;
    checkMinimum(name, size, Math.floor((label.dataAreas[0]?.offsetBytes ?? 1048576) / 512));
    if (!ctx.opts.test) {
      const dev = await openBlockDevice(sd.entry.name, { write: true });
      try {
        await writeLabel(dev, { ...label, deviceSizeBytes: size * 512 });
        await dev.flush();
      } finally {
        await dev.close();
      }
    }
    ctx.out.print(`Physical volume "${name}" changed`);
    t.done++;
    return true;
  } catch (e) {
    if (!(e instanceof LvmError) || e instanceof UsageError) throw e;
    if (e.message) ctx.out.error(e.message);
    return false;
  }
}

export const pvresize: CommandDef = {
  name: "pvresize",
  summary: "Resize physical volume(s)",
  usage: `  pvresize - Resize physical volume(s)

  pvresize PV ...
	[    --setphysicalvolumesize Size[m|UNIT] ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
`,
  options: [
    { name: "setphysicalvolumesize", value: true },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    if (!args.positional.length) throw noMatchingSyntax(ctx, "pvresize", "pvresize PV ...");
    const setSize = sizeOption(args, "setphysicalvolumesize", 2048);
    if (setSize?.sign === "-") throw new UsageError("Physical volume size may not be negative", "pvresize", { runHelp: false });
    const requested = setSize?.sectors || undefined;
    await ctx.locks.acquire("P_orphans");
    const scan = await ctx.scan(true);
    const t: Tally = { total: 0, done: 0 };
    let failed = 0;
    const wanted: ScannedDevice[] = [];
    const notPvs: string[] = [];
    for (const arg of args.positional) {
      const sd = existsSync(arg) ? await ctx.findDevice(arg) : undefined;
      if (!sd) {
        ctx.out.error(`Cannot use ${arg}: device not found`);
        failed++;
      } else if (!sd.label) notPvs.push(arg);
      else if (!wanted.includes(sd)) wanted.push(sd);
    }
    const owner = new Map<string, string>();
    for (const v of scan.vgNames()) for (const pv of loadVg(scan, v)?.vg.pvs ?? []) owner.set(pv.id, v);
    const vgNames = [...new Set(wanted.map((d) => owner.get(d.label!.pvIdRaw)).filter((v): v is string => v !== undefined))].sort();
    for (const vgName of vgNames) {
      const ids = wanted.filter((d) => owner.get(d.label!.pvIdRaw) === vgName).map((d) => d.label!.pvIdRaw);
      try {
        const loaded = await readVgForChange(ctx, vgName);
        for (const pv of [...loaded.vg.pvs]) if (ids.includes(pv.id) && loaded.deviceOf(pv.id)) if (!(await resizeVgPv(ctx, loaded, pv.id, requested, t))) failed++;
      } catch (e) {
        if (!(e instanceof CommandError)) throw e;
        ctx.out.error(e.message);
        for (const d of wanted) if (owner.get(d.label!.pvIdRaw) === vgName) notPvs.push(d.entry.name);
      } finally {
        await ctx.locks.release(vgLockName(vgName));
      }
    }
    for (const d of wanted) if (!owner.has(d.label!.pvIdRaw)) if (!(await resizeOrphan(ctx, d, requested, t))) failed++;
    for (const n of notPvs) {
      ctx.out.error(`Failed to find physical volume "${n}".`);
      failed++;
    }
    ctx.out.print(`${t.done} physical volume(s) resized or updated / ${t.total - t.done} physical volume(s) not resized`);
    return failed ? 5 : 0;
  },
};
