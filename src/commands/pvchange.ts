import type { CommandDef } from "../cli/command-def.js";
import { CommandError, LvmError, UsageError } from "../errors/errors.js";
import { existsSync } from "node:fs";
import { newId } from "../base/uuid.js";
import { openBlockDevice } from "./device-open.js";
import { PV_EXT_USED, type PvLabelDisk } from "../format/label.js";
import { writeLabel } from "../format/pv-write.js";
import type { PhysicalVolume, VolumeGroup } from "../model/types.js";
import { segAreas } from "../model/lv-info.js";
import { daemonStatus } from "./activation.js";
import { vgLockName } from "./lock.js";
import type { ScannedDevice } from "./scan.js";
import type { ToolContext } from "./toolcontext.js";
import { loadVg, type LoadedVg } from "./vg-store.js";
import { commitChange, doesNotAcceptArgument, noMatchingSyntax, readVgForChange, tagArgs, yesNoArg } from "./vg-common.js";

/**
 * pvchange (tools/pvchange.c): allocatability (-x), tags and a new random
 * UUID (-u) of PVs. A PV in a VG is changed through its VG (one commit per
 * PV, under the VG lock); an orphan PV through its label (-x and tags are
 * refused for orphans, as lvm2 does).
 */
interface PvChangeRequest {
  allocatable: boolean | undefined;
  addTags: string[];
  delTags: string[];
  uuid: boolean;
  force: number;
}

interface Tally {
  total: number;
  done: number;
  failed: number;
}

/** Give a PV a new id everywhere the VG refers to it. */
function renamePvId(vg: VolumeGroup, oldId: string, newIdRaw: string): void {
  for (const pv of vg.pvs) if (pv.id === oldId) pv.id = newIdRaw;
  for (const lv of vg.lvs)
    for (const seg of lv.segments) {
      const areas = segAreas(seg);
      for (const a of areas) if (a.kind === "pv" && a.pvId === oldId) a.pvId = newIdRaw;
    }
}

async function rewriteLabel(sd: ScannedDevice, label: PvLabelDisk): Promise<void> {
  const dev = await openBlockDevice(sd.entry.name, { write: true });
  try {
    await writeLabel(dev, label);
    await dev.flush();
  } finally {
    await dev.close();
  }
}

/** _pvchange_single for a PV of a loaded VG. */
async function changeVgPv(ctx: ToolContext, loaded: LoadedVg, pvId: string, req: PvChangeRequest, t: Tally): Promise<void> {
  t.total++;
  const sd = loaded.deviceOf(pvId)!;
  const name = sd.entry.name;
  try {
    const pv = loaded.vg.pvs.find((p) => p.id === pvId) as PhysicalVolume;
    let done = false;
    if (req.uuid && (await daemonStatus(ctx)).some((s) => s.vg === loaded.vg.name)) throw new CommandError(`Volume group containing ${name} has active logical volumes`);
    if (req.allocatable !== undefined) {
      const is = pv.status.includes("ALLOCATABLE");
      if (req.allocatable && is) ctx.out.warn(`Physical volume "${name}" is already allocatable.`);
      else if (!req.allocatable && !is) ctx.out.warn(`Physical volume "${name}" is already unallocatable.`);
      else {
        if (req.allocatable) pv.status.push("ALLOCATABLE");
        else pv.status = pv.status.filter((s) => s !== "ALLOCATABLE");
        done = true;
      }
    }
    if (req.addTags.length || req.delTags.length) {
      for (const tag of req.addTags) if (!pv.tags.includes(tag)) pv.tags.push(tag);
      for (const tag of req.delTags) pv.tags = pv.tags.filter((x) => x !== tag);
      done = true;
    }
    if (req.uuid) {
      // lvm2 writes the label with the new id first, then the VG metadata.
      const id = newId();
      if (!ctx.opts.test && sd.label) await rewriteLabel(sd, { ...sd.label, pvIdRaw: id });
      renamePvId(loaded.vg, pvId, id);
      loaded.devices.set(id, sd);
      done = true;
    }
    if (!done) {
      ctx.out.print(`Physical volume ${name} not changed`);
      return;
    }
    try {
      await commitChange(ctx, loaded);
    } catch (e) {
      if (e instanceof LvmError) throw new CommandError(`${e.message}\nFailed to store physical volume "${name}" in volume group "${loaded.vg.name}"`);
      throw e;
    }
    ctx.out.print(`Physical volume "${name}" changed`);
    t.done++;
  } catch (e) {
    if (!(e instanceof LvmError) || e instanceof UsageError) throw e;
    if (e.message) ctx.out.error(e.message);
    ctx.out.error(`Physical volume ${name} not changed`);
    t.failed++;
  }
}

/** _pvchange_single for an orphan PV: only -u is possible. */
async function changeOrphan(ctx: ToolContext, sd: ScannedDevice, req: PvChangeRequest, t: Tally): Promise<void> {
  t.total++;
  const name = sd.entry.name;
  const label = sd.label!;
  try {
    if (req.addTags.length || req.delTags.length) throw new CommandError(`Can't change tag on Physical Volume ${name} not in volume group`);
    if (label.extVersion >= 2 && label.extFlags & PV_EXT_USED && req.force !== 2) {
      throw new CommandError(`PV ${name} is used by a VG but its metadata is missing.\nCan't change PV '${name}' without -ff.`);
    }
    if (req.allocatable !== undefined) throw new CommandError(`Allocatability not supported by orphan lvm2 format PV ${name}`);
    if (!req.uuid) {
      ctx.out.print(`Physical volume ${name} not changed`);
      return;
    }
    if (!ctx.opts.test) await rewriteLabel(sd, { ...label, pvIdRaw: newId() });
    ctx.out.print(`Physical volume "${name}" changed`);
    t.done++;
  } catch (e) {
    if (!(e instanceof LvmError) || e instanceof UsageError) throw e;
    if (e.message) ctx.out.error(e.message);
    ctx.out.error(`Physical volume ${name} not changed`);
    t.failed++;
  }
}

export const pvchange: CommandDef = {
  name: "pvchange",
  summary: "Change attributes of physical volume(s)",
  usage: `  pvchange - Change attributes of physical volume(s)

  Change properties of all PVs.
  pvchange -a|--all
	( -x|--allocatable y|n,
	  -u|--uuid,
	     --addtag Tag,
	     --deltag Tag,
	     --metadataignore y|n )

	[ COMMON_OPTIONS ]

  Change properties of specified PVs.
  pvchange
	( -x|--allocatable y|n,
	  -u|--uuid,
	     --addtag Tag,
	     --deltag Tag,
	     --metadataignore y|n )
	 PV|Select ...
	[ -S|--select String ]
	[ COMMON_OPTIONS ]

  Common options for command:
	[ -A|--autobackup y|n ]
	[ -f|--force ]
	[ -u|--uuid ]
	[    --reportformat basic|json ]
`,
  options: [
    { name: "all", short: "a", value: false },
    { name: "allocatable", short: "x", value: true },
    { name: "uuid", short: "u", value: false },
    { name: "addtag", value: true, repeat: true },
    { name: "deltag", value: true, repeat: true },
    { name: "metadataignore", value: true },
    { name: "select", short: "S", value: true },
    { name: "autobackup", short: "A", value: true },
    { name: "force", short: "f", value: false, repeat: true },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    const changes = ["allocatable", "uuid", "addtag", "deltag", "metadataignore"].some((o) => args.has(o));
    if (!changes) throw noMatchingSyntax(ctx, "pvchange");
    if (args.has("all") && args.positional.length) throw doesNotAcceptArgument("pvchange", args.positional[0]!);
    if (!args.has("all") && !args.positional.length) throw noMatchingSyntax(ctx, "pvchange");
    if (args.has("metadataignore")) throw new CommandError("pvchange --metadataignore is not supported by ulvm yet.");
    if (args.has("select")) throw new CommandError("pvchange --select is not supported by ulvm yet.");
    const req: PvChangeRequest = {
      allocatable: yesNoArg(args, "allocatable"),
      addTags: tagArgs(args, "addtag"),
      delTags: tagArgs(args, "deltag"),
      uuid: args.has("uuid"),
      force: args.count("force"),
    };
    await ctx.locks.acquire("P_orphans");
    const scan = await ctx.scan(true);
    const t: Tally = { total: 0, done: 0, failed: 0 };
    // Which PVs: the devices named, or every PV.
    const wanted: ScannedDevice[] = [];
    const notPvs: string[] = [];
    if (args.has("all")) wanted.push(...scan.devices.filter((d) => d.label && scan.pvDevices.get(d.label.pvIdRaw) === d));
    else {
      for (const arg of args.positional) {
        const sd = existsSync(arg) ? await ctx.findDevice(arg) : undefined;
        if (!sd) {
          ctx.out.error(`Cannot use ${arg}: device not found`);
          t.failed++;
        } else if (!sd.label) notPvs.push(arg);
        else if (!wanted.includes(sd)) wanted.push(sd);
      }
    }
    // process_each_pv: the PVs of each VG (under its lock), then the orphans.
    const owner = new Map<string, string>();
    for (const v of scan.vgNames()) for (const pv of loadVg(scan, v)?.vg.pvs ?? []) owner.set(pv.id, v);
    const vgNames = [...new Set(wanted.map((d) => owner.get(d.label!.pvIdRaw)).filter((v): v is string => v !== undefined))].sort();
    for (const vgName of vgNames) {
      const ids = wanted.filter((d) => owner.get(d.label!.pvIdRaw) === vgName).map((d) => d.label!.pvIdRaw);
      try {
        const loaded = await readVgForChange(ctx, vgName);
        for (const pv of [...loaded.vg.pvs]) if (ids.includes(pv.id) && loaded.deviceOf(pv.id)) await changeVgPv(ctx, loaded, pv.id, req, t);
      } catch (e) {
        if (!(e instanceof CommandError)) throw e;
        ctx.out.error(e.message);
        for (const d of wanted) if (owner.get(d.label!.pvIdRaw) === vgName) notPvs.push(d.entry.name);
      } finally {
        await ctx.locks.release(vgLockName(vgName));
      }
    }
    for (const d of wanted) if (!owner.has(d.label!.pvIdRaw)) await changeOrphan(ctx, d, req, t);
    for (const n of notPvs) {
      ctx.out.error(`Failed to find physical volume "${n}".`);
      t.failed++;
    }
    const notChanged = t.total - t.done;
    ctx.out.print(`${t.done} physical volume${t.done === 1 ? "" : "s"} changed / ${notChanged} physical volume${notChanged === 1 ? "" : "s"} not changed`);
    return t.failed ? 5 : 0;
  },
};
