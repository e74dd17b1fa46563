import type { CommandDef } from "../cli/command-def.js";
import { CommandError } from "../errors/errors.js";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { backupDir } from "../config/paths.js";
import { isVisible } from "../model/lv-info.js";
import { cloneVg } from "../model/clone.js";
import { openBlockDevice } from "./device-open.js";
import { checkMdaHeader, MDA_HEADER_BYTES } from "../format/mda.js";
import { clearMdaHeader } from "../format/pv-write.js";
import { daemonStatus } from "./activation.js";
import { writeOrphanPv } from "./pv-orphan.js";
import type { ToolContext } from "./toolcontext.js";
import { wipeOutdatedPvs, type LoadedVg } from "./vg-store.js";
import { commitChange, forEachVg, noMatchingSyntax, readVgForChange, selectVgs } from "./vg-common.js";

/**
 * vgremove (tools/vgremove.c, lib/metadata/metadata.c vg_remove): after a
 * confirmation (or -f/-y) the VG's LVs are removed in one commit, then every
 * metadata area of the VG's PVs is emptied (the rings keep their old copies)
 * and the PVs become orphans (PV_EXT_USED cleared). PVs marked MISSING keep
 * their label, as in lvm2.
 */

/** Empty both header slots of every metadata area of the VG's present PVs (vg_remove_mdas). */
async function clearVgMdas(loaded: LoadedVg): Promise<void> {
  for (const pv of loaded.vg.pvs) {
    const sd = loaded.deviceOf(pv.id);
    if (!sd?.label) continue;
    const dev = await openBlockDevice(sd.entry.name, { write: true });
    try {
      for (const locn of sd.label.metadataAreas) {
        const hbuf = new Uint8Array(MDA_HEADER_BYTES);
        await dev.read(locn.offsetBytes, hbuf);
        const check = checkMdaHeader(hbuf, locn.offsetBytes);
        if (!check.badFields) await clearMdaHeader(dev, check.header);
      }
      await dev.flush();
    } finally {
      await dev.close();
    }
  }
}

async function removeVg(ctx: ToolContext, name: string, force: number): Promise<void> {
  const loaded = await readVgForChange(ctx, name, { handlesMissingPvs: true });
  const vg = loaded.vg;
  const visible = vg.lvs.filter(isVisible);
  const missing = loaded.missingPvIds().length;
  if (visible.length) {
    if (!force) {
      if (missing) ctx.out.warn(`WARNING: ${missing} physical volumes are currently missing from the system.`);
      if (!(await ctx.confirm(`Do you really want to remove volume group "${name}" containing ${visible.length} logical volumes?`))) {
        throw new CommandError(`Volume group "${name}" not removed`);
      }
    }
    const active = (await daemonStatus(ctx)).filter((s) => s.vg === name);
    if (active.length) throw new CommandError(`Logical volume ${name}/${active[0]!.lv} is active: deactivate the volume group first (vgchange -an ${name}).`);
    // Every LV goes: the visible ones with their sub-LVs, and any leftover hidden one.
    const next = cloneVg(vg);
    next.lvs = [];
    loaded.vg = next;
    if (!ctx.opts.test) await wipeOutdatedPvs(loaded, (l) => ctx.out.warn(l));
    await commitChange(ctx, loaded);
    for (const lv of visible) ctx.out.print(`Logical volume "${lv.name}" successfully removed.`);
  }
  if (!force && loaded.isPartial()) {
    throw new CommandError(`Volume group "${name}" not found, is inconsistent or has PVs missing.\nConsider vgreduce --removemissing if metadata is inconsistent.`);
  }
  if (ctx.opts.test) {
    ctx.out.print(`Volume group "${name}" successfully removed`);
    return;
  }
  await clearVgMdas(loaded);
  let ok = true;
  for (const pv of loaded.vg.pvs) {
    const sd = loaded.deviceOf(pv.id);
    if (!sd || pv.flags.includes("MISSING")) continue;
    try {
      await writeOrphanPv(ctx, sd);
    } catch (e) {
      ctx.out.error(`Failed to remove physical volume "${sd.entry.name}" from volume group "${name}"`);
      ok = false;
      void e;
    }
  }
  rmSync(join(ctx.config.str("backup/backup_dir", backupDir(ctx.paths)), name), { force: true });
  if (!ok) throw new CommandError(`Volume group "${name}" not properly removed`);
  ctx.out.print(`Volume group "${name}" successfully removed`);
}

export const vgremove: CommandDef = {
  name: "vgremove",
  summary: "Remove volume group(s)",
  usage: `  vgremove - Remove volume group(s)

  vgremove VG|Tag|Select ...
	[ -f|--force ]
	[ -S|--select String ]
	[    --noudevsync ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
`,
  options: [
    { name: "force", short: "f", value: false, repeat: true },
    { name: "select", short: "S", value: true },
    { name: "noudevsync", value: false },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    if (!args.positional.length) throw noMatchingSyntax(ctx, "vgremove", "vgremove VG|Tag|Select ...");
    if (args.has("select")) throw new CommandError("vgremove --select is not supported by ulvm yet.");
    // -f, or -y, skips the question; -ff is the same as -f here.
    const force = args.count("force") || (args.has("yes") ? 1 : 0);
    await ctx.locks.acquire("P_orphans");
    const names = await selectVgs(ctx, args.positional);
    return forEachVg(ctx, names, (n) => removeVg(ctx, n, force));
  },
};
