import type { CommandDef } from "../cli/command-def.js";
import { CommandError, LvmError } from "../errors/errors.js";
import { noMatchingSyntax } from "./lv-args.js";
import { VgEditor } from "../model/allocate-lv.js";
import { integrityParentOf, isMirrorImage, isMirrorLog, isRaidImage, isRaidMeta, isVisible } from "../model/lv-info.js";
import type { LogicalVolume } from "../model/types.js";
import { checkAcceptedOptions } from "./lvcreate.js";
import { commitLvChange, displayLvName, lvEnv, readVgForUpdate } from "./lv-common.js";
import { lvActivation } from "./lv-activation.js";
import { vgNameArg } from "./common.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * lvremove (tools/lvremove.c → process_each_lv → lv_remove_single): LVs
 * named as VG/LV, whole VGs (their visible LVs) or @tags. Per VG the LVs go
 * in metadata order and are written in one commit at the end — and only if
 * every one of them could be removed; the "successfully removed" lines come
 * after that commit. Sub-LVs of mirrors go with their mirror and cannot be
 * removed on their own. Only active LVs prompt (lvm2 asks "Do you really
 * want to remove active logical volume"); inactive ones go without asking.
 */
export const lvremove: CommandDef = {
  name: "lvremove",
  summary: "Remove logical volume(s) from the system",
  usage: `  lvremove - Remove logical volume(s) from the system

  lvremove VG|LV|Tag|Select ...
	[ -A|--autobackup y|n ]
	[ -f|--force ]
	[ -S|--select String ]
	[    --nohistory ]
	[    --noudevsync ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
`,
  options: [
    { name: "force", short: "f", value: false, repeat: true },
    { name: "autobackup", short: "A", value: true },
    { name: "select", short: "S", value: true },
    { name: "nohistory", value: false },
    { name: "noudevsync", value: false },
    { name: "reportformat", value: true },
  ],
  async run(ctx, args) {
    checkAcceptedOptions(args, ["force", "autobackup", "nohistory", "noudevsync", "reportformat"]);
    if (args.has("select")) throw new CommandError("--select is not supported by ulvm.");
    if (!args.positional.length) throw noMatchingSyntax(ctx.out, args.command, { correct: true, lines: ["lvremove VG|LV|Tag|Select ..."] });
    // Group the arguments by VG: whole VGs, named LVs, tags.
    const whole = new Set<string>();
    const named = new Map<string, string[]>();
    const tags: string[] = [];
    for (const arg of args.positional) {
      if (arg.startsWith("@")) {
        tags.push(arg.slice(1));
        continue;
      }
      const s = vgNameArg(arg, ctx.paths.devDir);
      const m = /^mapper\/((?:[^-]|--)+)-((?:[^-]|--)+)$/.exec(s);
      if (m) {
        const vg = m[1]!.replace(/--/g, "-");
        named.set(vg, [...(named.get(vg) ?? []), m[2]!.replace(/--/g, "-")]);
        continue;
      }
      const i = s.indexOf("/");
      if (i === -1) {
        whole.add(s);
        continue;
      }
      const vg = s.slice(0, i);
      const lv = s.slice(i + 1).replace(/^\/+/, "");
      if (!lv || lv.includes("/")) {
        ctx.out.error(`"${arg}": Invalid path for Logical Volume.`);
        return 5;
      }
      named.set(vg, [...(named.get(vg) ?? []), lv]);
    }
    let vgNames = [...new Set([...whole, ...named.keys()])];
    if (tags.length) {
      const scan = await ctx.scan();
      vgNames = [...new Set([...vgNames, ...scan.vgNames()])];
    }
    vgNames.sort();
    let exit = 0;
    for (const vgName of vgNames) {
      try {
        exit = Math.max(exit, await removeInVg(ctx, vgName, whole.has(vgName), named.get(vgName) ?? [], tags, args.count("force"), args.has("yes")));
      } catch (e) {
        if (!(e instanceof LvmError)) throw e;
        if (e.message) ctx.out.error(e.message);
        exit = Math.max(exit, e.exitCode);
      }
    }
    return exit;
  },
};

async function removeInVg(ctx: ToolContext, vgName: string, all: boolean, names: string[], tags: string[], force: number, yes: boolean): Promise<number> {
  const loaded = await readVgForUpdate(ctx, vgName, { handlesMissingPvs: true });
  const vg = loaded.vg;
  const ed = new VgEditor(vg, lvEnv(ctx));
  const unfound = [...names];
  const chosen: LogicalVolume[] = [];
  const tagsMatchVg = tags.some((t) => vg.tags.includes(t));
  for (const lv of vg.lvs) {
    if (!names.length && !all && !tags.length) break;
    const isNamed = names.includes(lv.name);
    // Hidden LVs only when named.
    if (!isNamed && !isVisible(lv)) continue;
    let take = all || tagsMatchVg;
    if (isNamed) {
      take = true;
      for (let i = unfound.indexOf(lv.name); i !== -1; i = unfound.indexOf(lv.name)) unfound.splice(i, 1);
    }
    if (!take && tags.some((t) => lv.tags.includes(t))) take = true;
    if (take) chosen.push(lv);
  }
  let failed = false;
  const messages: string[] = [];
  const removed = new Set<string>();
  for (const lv of chosen) {
    if (removed.has(lv.name) || !ed.lv(lv.name)) continue;
    const disp = displayLvName(vg, lv.name);
    if (isMirrorImage(vg, lv)) {
      ctx.out.error(`Can't remove logical volume ${disp} used by a mirror.`);
      failed = true;
      continue;
    }
    if (isMirrorLog(vg, lv)) {
      ctx.out.error(`Can't remove logical volume ${disp} used as mirror log.`);
      failed = true;
      continue;
    }
    if (isRaidImage(vg, lv) || isRaidMeta(vg, lv)) {
      ctx.out.error(`Can't remove logical volume ${disp} used as RAID device.`);
      failed = true;
      continue;
    }
    // An integrity layer's _iorig or _imeta: removing it alone would leave the layer pointing at
    // nothing (lvm2 has no message of its own for this; it goes with its raid1 LV).
    if (integrityParentOf(vg, lv.name)) {
      ctx.out.error(`Can't remove logical volume ${disp} used by integrity.`);
      failed = true;
      continue;
    }
    if (lv.status.includes("LOCKED")) {
      ctx.out.error(`Can't remove locked logical volume ${disp}.`);
      failed = true;
      continue;
    }
    // Segments that hold no extents (the "error" segment lvm2 leaves in a detached mirror image
    // between the two commits of a repair) are removed like any other; others are refused.
    const unsupported = lv.segments.find((s) => "opaque" in s && s.areas.length > 0);
    if (unsupported) {
      ctx.out.error(`Can't remove ${disp}: segment type ${unsupported.type} is not supported by ulvm.`);
      failed = true;
      continue;
    }
    // _lv_remove_check_in_use: only an active visible LV is asked about.
    const active = await lvActivation(ctx).isActive(ctx, loaded, lv);
    if (active && isVisible(lv) && !force && !yes) {
      if (!(await ctx.confirm(`Do you really want to remove active logical volume ${disp}?`))) {
        ctx.out.error(`Logical volume ${disp} not removed.`);
        failed = true;
        continue;
      }
    }
    if (active && !ctx.opts.test) await lvActivation(ctx).deactivate(ctx, loaded, lv);
    const visible = isVisible(lv);
    const before = new Set(vg.lvs.map((l) => l.name));
    ed.lvRemove(lv);
    for (const n of before) if (!ed.lv(n)) removed.add(n);
    if (visible) messages.push(`Logical volume "${lv.name}" successfully removed.`);
  }
  let exit = failed ? 5 : 0;
  if (!failed && removed.size) {
    await commitLvChange(ctx, loaded);
    for (const m of messages) ctx.out.print(m);
  }
  for (const n of unfound) {
    ctx.out.error(`Failed to find logical volume "${vgName}/${n}"`);
    exit = 5;
  }
  return exit;
}
