import type { CommandDef } from "../cli/command-def.js";
import { UsageError, CommandError } from "../errors/errors.js";
import { newId } from "../base/uuid.js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { displaySize } from "../base/units.js";
import { validVgName } from "../model/names.js";
import type { VolumeGroup } from "../model/types.js";
import { PV_CREATE_OPTIONS, pvCreateParams } from "./pvcreate.js";
import { sizeOption, vgNameArg } from "./common.js";
import { nameError } from "./vg-common.js";
import { vgLockName } from "./lock.js";
import { LoadedVg } from "./vg-store.js";
import { addPvsToVg, setPvUsedFlag } from "./vg-pvs.js";

/** Extent sizes (lib/metadata/vg.c vg_check_new_extent_size): a power of two, or a multiple of 128 KiB. */
export function extentSizeProblem(sectors: number): string | undefined {
  if (!sectors) return "Physical extent size may not be zero";
  const pow2 = (sectors & (sectors - 1)) === 0;
  if (!pow2 && sectors % 256) return `Physical Extent size must be a multiple of ${displaySize(256)} when not a power of 2.`;
  return undefined;
}

export const ALLOC_NAMES = ["contiguous", "cling", "cling_by_tags", "normal", "anywhere", "inherit"];

export const vgcreate: CommandDef = {
  name: "vgcreate",
  summary: "Create a volume group",
  usage: `  vgcreate - Create a volume group

  vgcreate VG_new PV ...
	[ -A|--autobackup y|n ]
	[ -c|--clustered y|n ]
	[ -l|--maxlogicalvolumes Number ]
	[ -p|--maxphysicalvolumes Number ]
	[ -M|--metadatatype lvm2 ]
	[ -s|--physicalextentsize Size[m|UNIT] ]
	[ -f|--force ]
	[ -Z|--zero y|n ]
	[    --addtag Tag ]
	[    --alloc contiguous|cling|cling_by_tags|normal|anywhere|inherit ]
	[    --metadataprofile String ]
	[    --labelsector Number ]
	[    --metadatasize Size[m|UNIT] ]
	[    --pvmetadatacopies 0|1|2 ]
	[    --vgmetadatacopies all|unmanaged|Number ]
	[    --reportformat basic|json ]
	[    --dataalignment Size[k|UNIT] ]
	[    --dataalignmentoffset Size[k|UNIT] ]
	[    --shared ]
	[    --systemid String ]
	[    --locktype sanlock|dlm|none ]
	[    --setautoactivation y|n ]
	[ COMMON_OPTIONS ]
`,
  options: [
    ...PV_CREATE_OPTIONS.filter((o) => o.name !== "uuid" && o.name !== "restorefile" && o.name !== "norestorefile"),
    { name: "autobackup", short: "A", value: true },
    { name: "clustered", short: "c", value: true },
    { name: "maxlogicalvolumes", short: "l", value: true },
    { name: "maxphysicalvolumes", short: "p", value: true },
    { name: "metadatatype", short: "M", value: true },
    { name: "physicalextentsize", short: "s", value: true },
    { name: "addtag", value: true, repeat: true },
    { name: "alloc", value: true },
    { name: "metadataprofile", value: true },
    { name: "vgmetadatacopies", value: true, aliases: ["metadatacopies"] },
    { name: "shared", value: false },
    { name: "systemid", value: true },
    { name: "locktype", value: true },
    { name: "setautoactivation", value: true },
  ],
  async run(ctx, args) {
    if (args.positional.length === 0) throw new UsageError("Please provide volume group name and physical volumes", "vgcreate");
    const name = vgNameArg(args.positional[0]!, ctx.paths.devDir);
    const devs = args.positional.slice(1);
    if (devs.length === 0) throw new UsageError("Please enter physical volume name(s)", "vgcreate");
    if (args.yesNo("clustered")) throw new UsageError("The clustered option is deprecated, see --shared.", "vgcreate");
    const pe = sizeOption(args, "physicalextentsize", 2048);
    if (pe?.sign === "-") throw new UsageError("Physical extent size may not be negative.", "vgcreate");
    const extentSize = pe?.sectors ?? 8192;
    const maxLv = args.uint("maxlogicalvolumes") ?? 0;
    const maxPv = args.uint("maxphysicalvolumes") ?? 0;
    const alloc = args.str("alloc");
    if (alloc !== undefined && !ALLOC_NAMES.includes(alloc)) throw new UsageError(`Invalid argument for --alloc: ${alloc}`, "vgcreate");
    if (alloc === "inherit") throw new UsageError("Volume Group allocation policy cannot inherit from anything", "vgcreate");
    const p = pvCreateParams(args);
    if (!validVgName(name)) {
      // lvm2's validate_new_vg_name: why, which name, and a usage error (exit 3).
      const why = nameError(name);
      throw new UsageError(`${why ? `${why}\n` : ""}New volume group name "${name}" is invalid.`, "vgcreate");
    }
    if (existsSync(join(ctx.paths.devDir, name))) throw new CommandError(`${join(ctx.paths.devDir, name)}: already exists in filesystem`);
    const sizeProblem = extentSizeProblem(extentSize);
    if (sizeProblem) throw new CommandError(sizeProblem);
    await ctx.locks.acquireAll(["P_orphans", vgLockName(name)]);
    const scan = await ctx.scan(true);
    if (scan.vgNames().includes(name)) throw new CommandError(`A volume group called ${name} already exists.`);
    const vg: VolumeGroup = {
      name,
      id: newId(),
      seqno: 0,
      format: "lvm2",
      status: ["RESIZEABLE", "READ", "WRITE"],
      flags: args.yesNo("setautoactivation") === false ? ["NOAUTOACTIVATE"] : [],
      tags: args.strs("addtag"),
      systemId: args.str("systemid") || undefined,
      lockType: undefined,
      lockArgs: undefined,
      extentSizeSectors: extentSize,
      maxLv,
      maxPv,
      allocationPolicy: alloc === undefined || alloc === "normal" ? undefined : alloc,
      profile: args.str("metadataprofile"),
      metadataCopies: 0,
      pvs: [],
      lvs: [],
      historicalLvs: undefined,
    };
    const loaded = LoadedVg.fresh(vg);
    if (!(await addPvsToVg(ctx, loaded, devs, p))) return 5;
    if (maxPv && vg.pvs.length > maxPv) throw new CommandError(`No space for '${devs[maxPv]}' - volume group '${name}' holds max ${maxPv} physical volume(s).`);
    await ctx.commit(loaded);
    await setPvUsedFlag(ctx, vg.pvs.map((pv) => loaded.deviceOf(pv.id)!), true);
    ctx.out.print(`Volume group "${name}" successfully created`);
    return 0;
  },
};
