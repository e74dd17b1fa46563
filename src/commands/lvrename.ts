import type { CommandDef } from "../cli/command-def.js";
import { refuseRaidIntegrity } from "./integrity-guard.js";
import { CommandError, UsageError } from "../errors/errors.js";
import { VgEditor } from "../model/allocate-lv.js";
import { isVisible } from "../model/lv-info.js";
import { RESERVED_LV_PREFIXES, RESERVED_LV_SUBSTRINGS, validVgName } from "../model/names.js";
import { checkAcceptedOptions } from "./lvcreate.js";
import { commitLvChange, lvEnv, readVgForUpdate } from "./lv-common.js";
import { lvActivation } from "./lv-activation.js";
import { vgNameArg } from "./common.js";
import { noMatchingSyntax } from "./lv-args.js";

/**
 * lvrename (tools/lvrename.c, lv_rename_update): "VG OLD NEW" or
 * "VG/OLD [VG/]NEW". Sub-LVs are renamed with their LV (OLD_mimage_0 →
 * NEW_mimage_0, OLD_mlog → NEW_mlog) and every reference follows.
 */
export const lvrename: CommandDef = {
  name: "lvrename",
  summary: "Rename a logical volume",
  usage: `  lvrename - Rename a logical volume

  lvrename VG LV LV_new
	[ COMMON_OPTIONS ]

  lvrename LV LV_new
	[ COMMON_OPTIONS ]

  Common options for command:
	[ -A|--autobackup y|n ]
	[    --noudevsync ]
	[    --reportformat basic|json ]
`,
  options: [
    { name: "autobackup", short: "A", value: true },
    { name: "noudevsync", value: false },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    checkAcceptedOptions(args, ["autobackup", "noudevsync", "reportformat"]);
    const argv = args.positional;
    const dev = ctx.paths.devDir;
    /** extract_vgname: the VG of "vg/lv" (or $LVM_VG_NAME), with lvm2's complaint otherwise. */
    const extractVg = (name: string): string | undefined => {
      const s = vgNameArg(name, dev);
      const i = s.indexOf("/");
      if (i !== -1) {
        const rest = s.slice(i).replace(/^\/+/, "");
        if (rest.includes("/")) {
          ctx.out.error(`"${name}": Invalid path for Logical Volume.`);
          return undefined;
        }
        return s.slice(0, i);
      }
      const env = process.env.LVM_VG_NAME;
      if (env) return env;
      ctx.out.error(`Path required for Logical Volume "${name}".`);
      return undefined;
    };
    let vgName: string | undefined;
    let oldName: string;
    let newName: string;
    if (argv.length === 3) {
      vgName = vgNameArg(argv[0]!, dev);
      oldName = argv[1]!;
      newName = argv[2]!;
      if (oldName.includes("/")) {
        const v = extractVg(oldName);
        if (v !== undefined && v !== vgName) throw new UsageError(`Please use a single volume group name ("${vgName}" or "${v}")`, args.command);
      }
    } else if (argv.length === 2) {
      oldName = argv[0]!;
      newName = argv[1]!;
      vgName = extractVg(oldName);
    } else throw noMatchingSyntax(ctx.out, args.command);
    if (vgName === undefined || !validVgName(vgName)) throw new UsageError("Please provide a valid volume group name", args.command);
    if (newName.includes("/")) {
      const v = extractVg(newName);
      if (v !== undefined && v !== vgName) throw new UsageError(`Logical volume names must have the same volume group ("${vgName}" or "${v}")`, args.command);
    }
    oldName = oldName.slice(oldName.lastIndexOf("/") + 1);
    newName = newName.slice(newName.lastIndexOf("/") + 1);
    const maxLen = 128 - vgName.length - 3;
    if (newName.length > maxLen) throw new UsageError(`New logical volume name "${newName}" may not exceed ${maxLen} characters.`, args.command);
    if (!newName) throw new UsageError("New logical volume name may not be blank", args.command);
    const pre = RESERVED_LV_PREFIXES.find((p) => newName.startsWith(p));
    if (pre) throw new UsageError(`Names starting "${pre}" are reserved. Please choose a different LV name.`, args.command);
    const sub = RESERVED_LV_SUBSTRINGS.find((r) => newName.includes(r));
    if (sub) throw new UsageError(`Names including "${sub}" are reserved. Please choose a different LV name.`, args.command);
    if (!validVgName(newName)) throw new UsageError(`New logical volume name "${newName}" is invalid`, args.command);
    if (oldName === newName) throw new UsageError("Old and new logical volume names must differ", args.command);

    const loaded = await readVgForUpdate(ctx, vgName);
    const vg = loaded.vg;
    const ed = new VgEditor(vg, lvEnv(ctx));
    const lv = ed.lv(oldName);
    if (!lv) throw new CommandError(`Existing logical volume "${oldName}" not found in volume group "${vgName}"`);
    if (!isVisible(lv)) throw new CommandError(`Cannot rename internal LV "${lv.name}".`);
    if (lv.status.includes("LOCKED")) throw new CommandError(`Cannot rename locked LV ${lv.name}`);
    refuseRaidIntegrity(vg, lv, "rename");
    ed.lvRename(lv, newName);
    await commitLvChange(ctx, loaded);
    if (!ctx.opts.test) await lvActivation(ctx).reload(ctx, loaded, newName);
    ctx.out.print(`Renamed "${oldName}" to "${newName}" in volume group "${vgName}"`);
    return 0;
  },
};
