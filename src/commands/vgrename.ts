import type { CommandDef } from "../cli/command-def.js";
import { CommandError } from "../errors/errors.js";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseId } from "../base/uuid.js";
import { backupDir } from "../config/paths.js";
import { vgLockName } from "./lock.js";
import { daemonStatus } from "./activation.js";
import { loadVg } from "./vg-store.js";
import { commitChange, forEachVg, nameError, noMatchingSyntax, readVgForChange, vgArg, vgByUuid } from "./vg-common.js";

/**
 * vgrename (tools/vgrename.c): rename a VG given by name or by VG UUID. Both
 * names are locked (in a fixed order) for the whole read-change-commit; the
 * new name is written to every PV in one commit.
 */
export const vgrename: CommandDef = {
  name: "vgrename",
  summary: "Rename a volume group",
  usage: `  vgrename - Rename a volume group

  Rename a VG.
  vgrename VG VG_new
	[ COMMON_OPTIONS ]

  Rename a VG by specifying the VG UUID.
  vgrename String VG_new
	[ COMMON_OPTIONS ]

  Common options for command:
	[ -A|--autobackup y|n ]
	[ -f|--force ]
	[    --reportformat basic|json ]
`,
  options: [
    { name: "autobackup", short: "A", value: true },
    { name: "force", short: "f", value: false, repeat: true },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    if (args.positional.length !== 2) throw noMatchingSyntax(ctx, "vgrename");
    const oldArg = vgArg(ctx, args.positional[0]!);
    const newName = vgArg(ctx, args.positional[1]!);
    const devDir = ctx.paths.devDir.endsWith("/") ? ctx.paths.devDir : ctx.paths.devDir + "/";
    const maxLen = 128 - devDir.length - 2;
    if (newName.length > maxLen) throw new CommandError(`New volume group path exceeds maximum length of ${maxLen}!`);
    const bad = nameError(newName);
    if (bad) throw new CommandError(`${bad}\nNew volume group name "${newName}" is invalid.`);
    if (existsSync(join(ctx.paths.devDir, newName))) throw new CommandError(`${join(ctx.paths.devDir, newName)}: already exists in filesystem`);
    if (oldArg === newName) throw new CommandError("Old and new volume group names must differ");
    // The old name may be a VG UUID: find the VG's name first, then lock both names in one order.
    const scan = await ctx.scan();
    let oldName = oldArg;
    if (!scan.vgNames().includes(oldArg)) {
      const byId = vgByUuid(scan, oldArg);
      if (byId) {
        ctx.out.print(`Processing VG ${byId} because of matching UUID ${oldArg}`);
        oldName = byId;
      }
    }
    if (oldName === newName) throw new CommandError("New VG name must differ from the old VG name.");
    await ctx.locks.acquireAll([vgLockName(oldName), vgLockName(newName)]);
    return forEachVg(ctx, [oldName], async () => {
      const loaded = await readVgForChange(ctx, oldName);
      const fresh = await ctx.scan();
      if (fresh.vgNames().includes(newName)) throw new CommandError(`New VG name "${newName}" already exists`);
      const newAsId = parseId(newName);
      if (newAsId) {
        const clash = fresh.vgNames().find((n) => loadVg(fresh, n)?.vg.id === newAsId);
        if (clash) throw new CommandError(`New VG name "${newName}" matches the UUID of existing VG ${clash}`);
      }
      // ulvm's daemon cannot rename live devices: a VG with active LVs keeps its name.
      const active = (await daemonStatus(ctx)).find((a) => a.vg === oldName);
      if (active) throw new CommandError(`Cannot rename VG ${oldName} while LV ${active.lv} is active.`);
      loaded.vg.name = newName;
      await commitChange(ctx, loaded);
      // The commit backed the VG up under its new name; the old backup goes (lvm2's backup_remove).
      rmSync(join(ctx.config.str("backup/backup_dir", backupDir(ctx.paths)), oldName), { force: true });
      ctx.out.print(`Volume group "${oldArg}" successfully renamed to "${newName}"`);
    });
  },
};
