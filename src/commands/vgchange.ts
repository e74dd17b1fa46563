import type { CommandDef } from "../cli/command-def.js";
import type { Args } from "../cli/args.js";
import { CommandError, NotFoundError, UsageError } from "../errors/errors.js";
import { newId } from "../base/uuid.js";
import type { VolumeGroup } from "../model/types.js";
import { isVisible } from "../model/lv-info.js";
import { daemonStatus } from "./activation.js";
import type { ToolContext } from "./toolcontext.js";
import { cannotProcess, commitChange, doesNotAcceptOption, forEachVg, invalidArgument, noMatchingSyntax, readVgForChange, selectVgs, tagArgs, uintArg, yesNoArg } from "./vg-common.js";
import { spawnMovePolling } from "./pvmove-poll.js";
import { ACTIVATE_VALUES, vgchangeActivate, type VgActivationChange } from "./vgchange-activate.js";

/**
 * vgchange (tools/vgchange.c): change VG attributes, one commit per VG, in
 * lvm2's order (max LVs, max PVs, resizeable, autoactivation, tags, UUID,
 * allocation policy, profile); "-a"/"--refresh" go to the activation hook.
 */
const ALLOC_POLICIES = ["contiguous", "cling", "cling_by_tags", "normal", "anywhere", "inherit"];

interface VgChanges {
  maxLv: number | undefined;
  maxPv: number | undefined;
  resizeable: boolean | undefined;
  autoActivation: boolean | undefined;
  delTags: string[];
  addTags: string[];
  uuid: boolean;
  alloc: string | undefined;
  profile: { set: string } | { detach: true } | undefined;
}

/** Apply the changes to the working VG; throws lvm2's message for the first one that cannot be made. */
function applyChanges(vg: VolumeGroup, c: VgChanges, activeLvs: number): void {
  const resizeable = (): boolean => vg.status.includes("RESIZEABLE");
  if (c.maxLv !== undefined) {
    if (!resizeable()) throw new CommandError(`Volume group "${vg.name}" must be resizeable to change MaxLogicalVolume`);
    const visible = vg.lvs.filter(isVisible).length;
    if (c.maxLv && c.maxLv < visible) throw new CommandError(`MaxLogicalVolume is less than the current number ${visible} of LVs for ${vg.name}`);
    vg.maxLv = c.maxLv;
  }
  if (c.maxPv !== undefined) {
    if (!resizeable()) throw new CommandError(`Volume group "${vg.name}" must be resizeable to change MaxPhysicalVolumes`);
    if (c.maxPv && c.maxPv < vg.pvs.length) throw new CommandError(`MaxPhysicalVolumes is less than the current number ${vg.pvs.length} of PVs for "${vg.name}"`);
    vg.maxPv = c.maxPv;
  }
  if (c.resizeable !== undefined) {
    if (c.resizeable && resizeable()) throw new CommandError(`Volume group "${vg.name}" is already resizeable`);
    if (!c.resizeable && !resizeable()) throw new CommandError(`Volume group "${vg.name}" is already not resizeable`);
    if (c.resizeable) vg.status.push("RESIZEABLE");
    else vg.status = vg.status.filter((s) => s !== "RESIZEABLE");
  }
  if (c.autoActivation !== undefined) {
    const off = vg.flags.includes("NOAUTOACTIVATE");
    if (c.autoActivation !== off) throw new CommandError(`Volume group autoactivation is already ${c.autoActivation ? "yes" : "no"}.`);
    if (c.autoActivation) vg.flags = vg.flags.filter((f) => f !== "NOAUTOACTIVATE");
    else vg.flags.push("NOAUTOACTIVATE");
  }
  for (const t of c.delTags) vg.tags = vg.tags.filter((x) => x !== t);
  for (const t of c.addTags) if (!vg.tags.includes(t)) vg.tags.push(t);
  if (c.uuid) {
    if (activeLvs) throw new CommandError("Volume group has active logical volumes");
    vg.id = newId();
  }
  if (c.alloc !== undefined) {
    const current = vg.allocationPolicy ?? "normal";
    if (c.alloc === current) throw new CommandError(`Volume group allocation policy is already ${current}`);
    if (c.alloc === "inherit") throw new CommandError("Volume Group allocation policy cannot inherit from anything");
    vg.allocationPolicy = c.alloc === "normal" ? undefined : c.alloc;
  }
  if (c.profile !== undefined) vg.profile = "set" in c.profile ? c.profile.set : undefined;
}

function parseChanges(args: Args): VgChanges {
  const alloc = args.str("alloc");
  if (alloc !== undefined && !ALLOC_POLICIES.includes(alloc)) throw invalidArgument("vgchange", "alloc", alloc, `Unrecognised allocation policy ${alloc}`);
  const metadataProfile = args.str("metadataprofile") ?? args.str("profile");
  if (metadataProfile !== undefined && args.has("detachprofile")) throw new UsageError("Only one of --metadataprofile and --detachprofile permitted.", "vgchange", { runHelp: false });
  return {
    maxLv: uintArg(args, "logicalvolume"),
    maxPv: uintArg(args, "maxphysicalvolumes"),
    resizeable: yesNoArg(args, "resizeable"),
    autoActivation: yesNoArg(args, "setautoactivation"),
    delTags: tagArgs(args, "deltag"),
    addTags: tagArgs(args, "addtag"),
    uuid: args.has("uuid"),
    alloc,
    profile: args.has("detachprofile") ? { detach: true } : metadataProfile !== undefined ? { set: metadataProfile } : undefined,
  };
}

const UPDATE_SAFE = ["addtag", "deltag", "metadataprofile", "profile", "detachprofile"];
const UPDATE_UNSAFE = ["logicalvolume", "maxphysicalvolumes", "resizeable", "setautoactivation", "uuid", "physicalextentsize", "alloc", "vgmetadatacopies", "pvmetadatacopies"];
/** Options lvm2 has that ulvm does not implement yet: refused plainly rather than ignored. */
const NOT_SUPPORTED = ["physicalextentsize", "vgmetadatacopies", "pvmetadatacopies", "systemid", "locktype", "lockstart", "lockstop", "clustered"];

async function activeLvCount(ctx: ToolContext, vg: string): Promise<number> {
  return (await daemonStatus(ctx)).filter((s) => s.vg === vg).length;
}

export const vgchange: CommandDef = {
  name: "vgchange",
  summary: "Change volume group attributes",
  usage: `  vgchange - Change volume group attributes

  Change a general VG attribute. 
  For options listed in parentheses, any one is 
  required, after which the others are optional.
  vgchange
	( -l|--logicalvolume Number,
	  -p|--maxphysicalvolumes Number,
	  -u|--uuid,
	  -s|--physicalextentsize Size[m|UNIT],
	  -x|--resizeable y|n,
	     --addtag Tag,
	     --deltag Tag,
	     --alloc contiguous|cling|cling_by_tags|normal|anywhere|inherit,
	     --pvmetadatacopies 0|1|2,
	     --vgmetadatacopies all|unmanaged|Number,
	     --detachprofile,
	     --metadataprofile String,
	     --setautoactivation y|n )

	[ -A|--autobackup y|n ]
	[ -S|--select String ]
	[ -f|--force ]
	[    --poll y|n ]
	[    --ignoremonitoring ]
	[    --noudevsync ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
	[ VG|Tag|Select ... ]

  Activate or deactivate LVs.
  vgchange -a|--activate y|n|ay
	[ -K|--ignoreactivationskip ]
	[ -P|--partial ]
	[ -A|--autobackup y|n ]
	[ -S|--select String ]
	[ -f|--force ]
	[    --activationmode partial|degraded|complete ]
	[    --sysinit ]
	[    --readonly ]
	[    --ignorelockingfailure ]
	[    --monitor y|n ]
	[    --poll y|n ]
	[    --autoactivation String ]
	[    --ignoremonitoring ]
	[    --noudevsync ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
	[ VG|Tag|Select ... ]

  Reactivate LVs using the latest metadata.
  vgchange --refresh
	[ COMMON_OPTIONS ]
	[ VG|Tag|Select ... ]
`,
  options: [
    { name: "activate", short: "a", value: true },
    { name: "resizeable", short: "x", value: true, aliases: ["resizable"] },
    { name: "logicalvolume", short: "l", value: true },
    { name: "maxphysicalvolumes", short: "p", value: true },
    { name: "uuid", short: "u", value: false },
    { name: "physicalextentsize", short: "s", value: true },
    { name: "addtag", value: true, repeat: true },
    { name: "deltag", value: true, repeat: true },
    { name: "alloc", value: true },
    { name: "pvmetadatacopies", value: true },
    { name: "vgmetadatacopies", value: true, aliases: ["metadatacopies"] },
    { name: "detachprofile", value: false },
    { name: "metadataprofile", value: true },
    { name: "setautoactivation", value: true },
    { name: "autobackup", short: "A", value: true },
    { name: "select", short: "S", value: true },
    { name: "force", short: "f", value: false, repeat: true },
    { name: "poll", value: true },
    { name: "ignoremonitoring", value: false },
    { name: "noudevsync", value: false },
    { name: "reportformat", value: true },
    { name: "monitor", value: true },
    { name: "sysinit", value: false },
    { name: "ignorelockingfailure", value: false },
    { name: "refresh", value: false },
    { name: "systemid", value: true },
    { name: "lockstart", value: false },
    { name: "lockstop", value: false },
    { name: "locktype", value: true },
    { name: "activationmode", value: true },
    { name: "partial", short: "P", value: false },
    { name: "ignoreactivationskip", short: "K", value: false },
    { name: "readonly", value: false },
    { name: "autoactivation", value: true },
    { name: "clustered", short: "c", value: true },
  ],
  async run(ctx, args) {
    const update = [...UPDATE_SAFE, ...UPDATE_UNSAFE].some((o) => args.has(o));
    const unsafe = UPDATE_UNSAFE.some((o) => args.has(o));
    const activate = args.str("activate");
    const noupdate = activate !== undefined || args.has("refresh") || args.has("monitor") || args.has("poll");
    if (!update && !noupdate && !NOT_SUPPORTED.some((o) => args.has(o))) throw noMatchingSyntax(ctx, "vgchange");
    if (update && (activate !== undefined || args.has("refresh"))) {
      // lvm2's command table has no definition combining them.
      throw doesNotAcceptOption("vgchange", activate !== undefined ? "activate" : "refresh");
    }
    for (const o of NOT_SUPPORTED) if (args.has(o)) throw new CommandError(`vgchange --${o} is not supported by ulvm yet.`);
    if (activate !== undefined && !ACTIVATE_VALUES.includes(activate)) throw invalidArgument("vgchange", "activate", activate);
    if (activate !== undefined && args.has("refresh")) throw new UsageError("Only one of -a and --refresh permitted.", "vgchange", { runHelp: false });
    if (args.has("select")) throw new CommandError("vgchange --select is not supported by ulvm yet.");
    const changes = update ? parseChanges(args) : undefined;
    const names = await selectVgs(ctx, args.positional);
    return forEachVg(ctx, names, async (name) => {
      if (changes) {
        // Tag and profile changes are safe with PVs missing; the others are not (lvm2's update_partial_unsafe).
        const loaded = await readVgForChange(ctx, name, { handlesMissingPvs: !unsafe });
        applyChanges(loaded.vg, changes, changes.uuid ? await activeLvCount(ctx, name) : 0);
        await commitChange(ctx, loaded);
        ctx.out.print(`Volume group "${loaded.vg.name}" successfully changed`);
        return;
      }
      let change: VgActivationChange | undefined;
      if (activate !== undefined) {
        change = {
          kind: "activate",
          value: activate,
          activationMode: args.str("activationmode"),
          partial: args.has("partial"),
          ignoreActivationSkip: args.has("ignoreactivationskip"),
          readOnly: args.has("readonly"),
        };
      } else if (args.has("refresh")) change = { kind: "refresh" };
      try {
        await ctx.readVg(name, { lock: false });
      } catch (e) {
        if (e instanceof NotFoundError) throw cannotProcess(name, e.message);
        throw e;
      }
      // --monitor / --poll alone: ulvm has no dmeventd or lvmpolld; the daemon monitors and polls by itself.
      if (change) await vgchangeActivate(ctx, name, change);
      // vgchange.c _poll_lvs_in_vg: activation resumes the moves in progress, unless --poll n.
      if (change?.kind === "activate" && !change.value.includes("n") && args.str("poll") !== "n") {
        const n = await spawnMovePolling(ctx, name);
        if (n) ctx.out.print(`Background polling started for ${n} logical volume(s) in volume group "${name}"`);
      }
    });
  },
};
