import type { CommandDef } from "../cli/command-def.js";
import { CommandError, NotFoundError } from "../errors/errors.js";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { backupDir, ensureDir } from "../config/paths.js";
import { exportVgText } from "../format/vg-export.js";
import { cloneVg } from "../model/clone.js";
import type { VolumeGroup } from "../model/types.js";
import { writeFileAtomic } from "./backup.js";
import type { LoadedVg } from "./vg-store.js";
import { cannotProcess, forEachVg, selectVgs } from "./vg-common.js";

/**
 * vgcfgbackup (tools/vgcfgbackup.c): write the VG's metadata, file style, to
 * `-f FILE` (a "%s" in the name becomes the VG name; the description is the
 * command line) or to the backup directory (description "Created *after*
 * executing '...'"). The text is the in-memory view: a missing PV is shown
 * with the MISSING flag and device "[unknown]" although nothing was written.
 */

/** The VG as lvm2 exports it from memory: device hints from this scan, missing PVs flagged. */
export function exportView(loaded: LoadedVg): VolumeGroup {
  const vg = cloneVg(loaded.vg);
  for (const pv of vg.pvs) {
    const d = loaded.deviceOf(pv.id);
    if (d) pv.deviceHint = d.entry.name;
    else {
      pv.deviceHint = "[unknown]";
      if (!pv.flags.includes("MISSING")) pv.flags.push("MISSING");
    }
  }
  return vg;
}

/** dm_snprintf(template, vg_name): the first %s becomes the VG name, %% a percent sign. */
function expandTemplate(template: string, vgName: string): string {
  let used = false;
  return template.replace(/%(%|s)/g, (_m, c: string) => {
    if (c === "%") return "%";
    if (used) return "";
    used = true;
    return vgName;
  });
}

export const vgcfgbackup: CommandDef = {
  name: "vgcfgbackup",
  summary: "Backup volume group configuration(s)",
  usage: `  vgcfgbackup - Backup volume group configuration(s)

  vgcfgbackup
	[ -f|--file String ]
	[    --foreign ]
	[    --ignorelockingfailure ]
	[    --readonly ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
	[ VG ... ]
`,
  options: [
    { name: "file", short: "f", value: true },
    { name: "foreign", value: false },
    { name: "ignorelockingfailure", value: false },
    { name: "readonly", value: false },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    const file = args.str("file");
    const names = await selectVgs(ctx, args.positional);
    let lastFile: string | undefined;
    return forEachVg(ctx, names, async (name) => {
      let loaded: LoadedVg;
      try {
        loaded = await ctx.readVg(name, { lock: false });
      } catch (e) {
        if (e instanceof NotFoundError) throw cannotProcess(name, e.message);
        throw e;
      }
      const vg = exportView(loaded);
      if (file !== undefined) {
        const path = expandTemplate(file, vg.name);
        if (lastFile === path) throw new CommandError("VGs must be backed up into different files. Use %s in filename for VG name.");
        lastFile = path;
        writeFileAtomic(path, exportVgText(vg, { style: "file", description: ctx.commandLine }));
      } else {
        if (loaded.isPartial()) throw new CommandError("No backup taken: specify filename with -f to backup with missing PVs.");
        if (vg.lvs.some((lv) => lv.segments.some((s) => "opaque" in s))) throw new CommandError("No backup taken: specify filename with -f to backup with unknown segments.");
        const dir = ctx.config.str("backup/backup_dir", backupDir(ctx.paths));
        ensureDir(dir);
        writeFileAtomic(join(dir, vg.name), exportVgText(vg, { style: "file", description: `Created *after* executing '${ctx.commandLine}'` }));
      }
      ctx.out.print(`Volume group "${name}" successfully backed up.`);
    });
  },
};
