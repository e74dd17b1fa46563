import { raidHasIntegrity } from "./integrity-guard.js";
import type { CommandDef } from "../cli/command-def.js";
import { UsageError, CommandError, NotFoundError } from "../errors/errors.js";
import { findLv, isRaidSeg, isVisible, lvTypeName, pvIdsOfLv } from "../model/lv-info.js";
import { sizeValue } from "./lv-args.js";
import { zeroLvStart } from "./lv-io.js";
import type { LoadedVg } from "./vg-store.js";
import { lvNameArg, vgNameArg, exitFor } from "./common.js";
import { activateLv, activationModeArg, daemonStatus, deactivateLv, isLvActive, messageLv, reloadVg } from "./activation.js";
import type { LogicalVolume, VolumeGroup } from "../model/types.js";
import type { ToolContext } from "./toolcontext.js";
import type { Args } from "../cli/args.js";
import { ALLOC_NAMES } from "./vgcreate.js";
import { isAutoActivation, lvAutoActivates } from "./autoactivation.js";
import { spawnMovePolling } from "./pvmove-poll.js";

/**
 * lvchange (tools/lvchange.c): activation (-a y|n, --activationmode) and the
 * attributes that live in metadata (-p, --addtag/--deltag, -r, --alloc,
 * -k/--setactivationskip). Metadata changes are committed first, then the
 * daemon reloads the LV if it is active.
 */
function activateArg(v: string | undefined, cmd: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (/^(y|ay|ey|sy|ly)$/.test(v)) return true;
  if (/^(n|an|en|sn|ln)$/.test(v)) return false;
  throw new UsageError(`Invalid argument for --activate: ${v}`, cmd);
}

async function lvTargets(ctx: ToolContext, args: Args): Promise<Array<{ vg: string; lv: string | undefined }>> {
  const out: Array<{ vg: string; lv: string | undefined }> = [];
  for (const a of args.positional) {
    const { vg, lv } = lvNameArg(a, ctx.paths.devDir);
    if (vg === undefined) out.push({ vg: vgNameArg(lv, ctx.paths.devDir), lv: undefined });
    else out.push({ vg, lv });
  }
  return out;
}

export const lvchange: CommandDef = {
  name: "lvchange",
  summary: "Change the attributes of logical volume(s)",
  usage: `  lvchange - Change the attributes of logical volume(s)

  Change a general LV attribute.
  lvchange VG|LV|Tag|Select ...
	[ -p|--permission rw|r ]
	[ -r|--readahead auto|none|Number ]
	[ -k|--setactivationskip y|n ]
	[    --setautoactivation y|n ]
	[    --addtag Tag ]
	[    --deltag Tag ]
	[    --alloc contiguous|cling|cling_by_tags|normal|anywhere|inherit ]
	[ COMMON_OPTIONS ]

  Reactivate an LV using the latest metadata.
  lvchange --refresh VG|LV|Tag|Select ...
	[ COMMON_OPTIONS ]

  Change the raid1 properties of an LV.
  lvchange --writemostly PV[:y|n|t] | --writebehind Number | --minrecoveryrate Size[k|UNIT] | --maxrecoveryrate Size[k|UNIT] | --resync LV_raid1 ...
	[ COMMON_OPTIONS ]

  Activate or deactivate an LV.
  lvchange -a|--activate y|n|ay VG|LV|Tag|Select ...
	[    --activationmode partial|degraded|complete ]
	[ -K|--ignoreactivationskip ]
	[ COMMON_OPTIONS ]

  Resynchronize or check a raid LV.
  lvchange --syncaction check|repair VG|LV_raid|Tag|Select ...
	[ COMMON_OPTIONS ]
`,
  options: [
    { name: "activate", short: "a", value: true },
    { name: "activationmode", value: true },
    { name: "permission", short: "p", value: true },
    { name: "readahead", short: "r", value: true },
    { name: "setactivationskip", short: "k", value: true },
    { name: "setautoactivation", value: true },
    { name: "ignoreactivationskip", short: "K", value: false },
    { name: "addtag", value: true, repeat: true },
    { name: "deltag", value: true, repeat: true },
    { name: "alloc", value: true },
    { name: "force", short: "f", value: false, repeat: true },
    { name: "select", short: "S", value: true },
    { name: "monitor", value: true },
    { name: "poll", value: true },
    { name: "ignoremonitoring", value: false },
    { name: "noudevsync", value: false },
    { name: "reportformat", value: true },
    { name: "refresh", value: false },
    { name: "syncaction", value: true },
    { name: "writemostly", value: true, repeat: true },
    { name: "writebehind", value: true },
    { name: "minrecoveryrate", value: true },
    { name: "maxrecoveryrate", value: true },
    { name: "resync", value: false },
    { name: "yes", short: "y", value: false },
  ],
  async run(ctx, args) {
    const activate = activateArg(args.str("activate"), "lvchange");
    const mode = activationModeArg(args.str("activationmode"), "lvchange");
    const perm = args.str("permission");
    if (perm !== undefined && perm !== "r" && perm !== "rw") throw new UsageError(`Invalid argument for --permission: ${perm}`, "lvchange");
    const alloc = args.str("alloc");
    if (alloc !== undefined && !ALLOC_NAMES.includes(alloc)) throw new UsageError(`Invalid argument for --alloc: ${alloc}`, "lvchange");
    const ra = args.str("readahead");
    let readAhead: number | undefined | "auto" = undefined;
    if (ra !== undefined) {
      if (ra === "auto") readAhead = "auto";
      else if (ra === "none") readAhead = -1;
      else if (/^\d+$/.test(ra)) readAhead = Number(ra);
      else throw new UsageError(`Invalid argument for --readahead: ${ra}`, "lvchange");
    }
    const syncAction = args.str("syncaction");
    if (syncAction !== undefined) {
      // lvmcmdline.c syncaction_arg: only these two get past the parser.
      if (syncAction !== "check" && syncAction !== "repair") throw new UsageError(`Invalid argument for --syncaction: ${syncAction}`, "lvchange");
      if (args.positional.length === 0) throw new UsageError("No command with matching syntax recognised.  Run 'lvchange --help' for more information.", undefined, { runHelp: false });
      return lvchangeSyncAction(ctx, args, syncAction);
    }
    if (args.has("writemostly") || args.has("writebehind") || args.has("minrecoveryrate") || args.has("maxrecoveryrate") || args.has("resync")) {
      if (args.positional.length === 0) throw new UsageError("No command with matching syntax recognised.  Run 'lvchange --help' for more information.", undefined, { runHelp: false });
      return lvchangeRaid(ctx, args);
    }
    const skip = args.yesNo("setactivationskip");
    const autoAct = args.yesNo("setautoactivation");
    const autoOnly = isAutoActivation(args.str("activate") ?? "");
    const metaChange = perm !== undefined || alloc !== undefined || readAhead !== undefined || skip !== undefined || autoAct !== undefined || args.has("addtag") || args.has("deltag");
    const refresh = args.has("refresh");
    if (activate === undefined && !metaChange && !refresh) {
      throw new UsageError("No command with matching syntax recognised.  Run 'lvchange --help' for more information.", undefined, { runHelp: false });
    }
    if (args.positional.length === 0) throw new UsageError("No command with matching syntax recognised.  Run 'lvchange --help' for more information.", undefined, { runHelp: false });
    let failures = 0;
    for (const t of await lvTargets(ctx, args)) {
      const loaded = await ctx.readVg(t.vg, { lock: true });
      const names = t.lv !== undefined ? [t.lv] : loaded.vg.lvs.filter(isVisible).map((l) => l.name);
      for (const name of names) {
        const lv = findLv(loaded.vg, name);
        if (!lv) {
          ctx.out.error(`Failed to find logical volume "${t.vg}/${name}"`);
          failures++;
          continue;
        }
        if (!isVisible(lv)) {
          ctx.out.error(`Operation not permitted on hidden LV ${t.vg}/${name}.`);
          failures++;
          continue;
        }
        if (metaChange) {
          let changed = false;
          if (perm !== undefined) {
            const hasWrite = lv.status.includes("WRITE");
            if (perm === "r" && hasWrite) {
              lv.status = lv.status.filter((s) => s !== "WRITE");
              changed = true;
            } else if (perm === "rw" && !hasWrite) {
              lv.status.push("WRITE");
              changed = true;
            } else {
              ctx.out.error(`Logical volume ${t.vg}/${name} is already ${perm === "r" ? "read only" : "writable"}.`);
            }
          }
          if (alloc !== undefined) {
            lv.allocationPolicy = alloc === "inherit" ? undefined : alloc;
            changed = true;
          }
          if (readAhead !== undefined) {
            lv.readAheadSectors = readAhead === "auto" ? undefined : readAhead;
            changed = true;
          }
          if (skip !== undefined) {
            lv.flags = lv.flags.filter((f) => f !== "ACTIVATION_SKIP");
            if (skip) lv.flags.push("ACTIVATION_SKIP");
            changed = true;
          }
          if (autoAct !== undefined) {
            lv.flags = lv.flags.filter((f) => f !== "NOAUTOACTIVATE");
            if (!autoAct) lv.flags.push("NOAUTOACTIVATE");
            changed = true;
          }
          for (const tag of args.strs("addtag")) if (!lv.tags.includes(tag)) {
            lv.tags.push(tag);
            changed = true;
          }
          for (const tag of args.strs("deltag")) if (lv.tags.includes(tag)) {
            lv.tags = lv.tags.filter((x) => x !== tag);
            changed = true;
          }
          if (changed) {
            await ctx.commit(loaded);
            ctx.out.print(`Logical volume ${t.vg}/${name} changed.`);
            await reloadVg(ctx, t.vg);
          }
        }
        if (refresh) {
          // lv_refresh: reload the live tables from the committed metadata (an inactive LV has none:
          // nothing to do). For raid1 this re-admits an image whose PV came back; its superblock's
          // failed bit then makes the target recover only the regions the bitmap marks dirty.
          if (await isLvActive(ctx, t.vg, name)) await reloadVg(ctx, t.vg);
          continue;
        }
        if (activate === true) {
          if (lv.flags.includes("ACTIVATION_SKIP") && !args.has("ignoreactivationskip") && t.lv === undefined) continue;
          if (autoOnly && !lvAutoActivates(ctx.config, loaded.vg, lv)) continue;
          try {
            await activateLv(ctx, t.vg, name, mode);
            // lv_spawn_background_polling: the moves under the LV go on, unless --poll n.
            if (args.str("poll") !== "n") await spawnMovePolling(ctx, t.vg, [name]);
          } catch (e) {
            if (e instanceof CommandError || e instanceof NotFoundError) {
              ctx.out.error(e.message);
              failures++;
              continue;
            }
            throw e;
          }
        } else if (activate === false) {
          try {
            await deactivateLv(ctx, t.vg, name);
          } catch (e) {
            if (e instanceof Error && "exitCode" in e) {
              ctx.out.error(e.message);
              failures++;
              continue;
            }
            throw e;
          }
        }
      }
    }
    return exitFor(failures);
  },
};

/**
 * The raid LVs the command names (process_each_lv for a command that takes
 * LV_raid only): a named LV of another type is refused with `refusal`'s
 * first line and "Command not permitted"; other LVs of a named VG are
 * skipped. Calls `fn` for each raid LV (with its VG read and locked); a
 * thrown LvmError is printed and counted. Returns the failure count.
 */
async function forEachRaidLv(
  ctx: ToolContext,
  args: Args,
  refusal: (name: string, lv: LogicalVolume) => string,
  fn: (loaded: LoadedVg, lv: LogicalVolume) => Promise<void>,
): Promise<number> {
  let failures = 0;
  for (const t of await lvTargets(ctx, args)) {
    const loaded = await ctx.readVg(t.vg, { lock: true });
    const vg: VolumeGroup = loaded.vg;
    const named = t.lv !== undefined;
    const lvs = named ? [findLv(vg, t.lv!)] : vg.lvs.filter(isVisible);
    for (const lv of lvs) {
      if (!lv) {
        ctx.out.error(`Failed to find logical volume "${t.vg}/${t.lv}"`);
        failures++;
        continue;
      }
      const name = `${vg.name}/${lv.name}`;
      if (!/^raid/.test(lv.segments[0]?.type ?? "")) {
        if (named) {
          ctx.out.error(refusal(name, lv));
          ctx.out.error(`Command not permitted on LV ${name}.`);
          failures++;
        }
        continue;
      }
      try {
        await fn(loaded, lv);
      } catch (e) {
        if (e instanceof Error && "exitCode" in e) {
          ctx.out.error(e.message);
          failures++;
          continue;
        }
        throw e;
      }
    }
  }
  return failures;
}

/**
 * lvchange --syncaction check|repair (tools/lvchange.c
 * _lvchange_syncaction_single, lib/activate/activate.c lv_raid_message):
 * raid LVs only (the command line takes LV_raid), active, and only from
 * "idle"; then the message goes to the LV's dm-raid target. The scrub runs
 * in the daemon; `lvs -o +raid_sync_action,raid_mismatch_count` follows it.
 */
async function lvchangeSyncAction(ctx: ToolContext, args: Args, msg: string): Promise<number> {
  const status = await daemonStatus(ctx);
  const failures = await forEachRaidLv(
    ctx,
    args,
    (name, lv) => `Command on LV ${name} does not accept LV type ${lvTypeName(lv)}.`,
    async (loaded, lv) => {
      const name = `${loaded.vg.name}/${lv.name}`;
      // With integrity the read path tells the good copy from the bad one, and check rewrites the
      // bad one; repair's "first leg wins" could copy a rotten block over a good one.
      if (msg === "repair" && raidHasIntegrity(loaded.vg, lv)) throw new CommandError("Use syncaction check to detect and correct integrity checksum mismatches.");
      const top = status.find((s) => s.vg === loaded.vg.name && s.lv === lv.name)?.devices.find((d) => d.lvName === lv.name);
      if (!top) throw new CommandError("Unable to send message to an inactive logical volume.");
      const now = top.raid?.syncAction;
      if (now === undefined) throw new CommandError(`Kernel driver does not support this action: ${msg}`);
      if (now !== "idle") throw new CommandError(`${name} state is currently "${now}".  Unable to switch to "${msg}".`);
      await messageLv(ctx, loaded.vg.name, lv.name, msg);
    },
  );
  return exitFor(failures);
}


/**
 * The raid1 properties of lvchange (tools/lvchange.c _lvchange_writemostly,
 * _lvchange_recovery_rate, _lvchange_resync): `--writemostly PV[:y|n|t]`
 * (repeatable) and `--writebehind N` set WRITEMOSTLY on the images on those
 * PVs and the segment's writebehind; `--minrecoveryrate/--maxrecoveryrate`
 * (KiB/s per device) the resync and scrub rates; each commits and reloads the
 * LV when it is active. `--resync` zeroes every rmeta's first 4 KiB (a fresh
 * set: full resync at the next activation), deactivating the LV first, as
 * lvm2 does, when it is active.
 */
async function lvchangeRaid(ctx: ToolContext, args: Args): Promise<number> {
  const status = await daemonStatus(ctx);
  // toollib.c _check_lv_rules, space before the period included. (A mirror takes --resync in
  // lvm2; ulvm's --resync here is raid1's.)
  const types = args.has("writemostly") || args.has("writebehind") ? "raid1" : "raid";
  const failures = await forEachRaidLv(
    ctx,
    args,
    (name) => `Command on LV ${name} uses options that require LV types ${types} .`,
    async (loaded, lv) => {
      const vg = loaded.vg;
      const name = `${vg.name}/${lv.name}`;
      const seg = lv.segments[0];
      if (!seg || !isRaidSeg(seg)) return;
      const top = status.find((x) => x.vg === vg.name && x.lv === lv.name)?.devices.find((d) => d.lvName === lv.name);
      if (args.has("resync")) {
        await resyncRaid(ctx, loaded, lv, top !== undefined, args);
        return;
      }
      if (args.has("writemostly") || args.has("writebehind")) {
        // lv_raid_in_sync: an inactive LV counts as in sync unless NOTSYNCED (ulvm's rule, as for conversions).
        const inSync = top?.raid ? top.raid.syncedSectors === top.raid.totalSectors && !/[aD-]/.test(top.raid.health) : !lv.status.includes("NOTSYNCED");
        if (!inSync) throw new CommandError(`Unable to change write${args.has("writemostly") ? "mostly" : "behind"} on ${name} while it is not in-sync.`);
        if (args.has("writebehind")) {
          const wb = args.str("writebehind")!;
          if (!/^\d+$/.test(wb)) throw new UsageError(`Invalid argument for --writebehind: ${wb}`, "lvchange");
          seg.writeBehind = Number(wb);
        }
        for (const spec of args.strs("writemostly")) {
          const m = /^(.*?)(?::([ynt]))?$/.exec(spec)!;
          const pvName = m[1]!;
          const mode = m[2] ?? "y";
          const pv = loaded.vg.pvs.find((p) => loaded.deviceOf(p.id)?.entry.name === pvName || p.deviceHint === pvName);
          if (!pv) throw new CommandError(`${pvName} not found in volume group, ${vg.name}`);
          for (const r of seg.raids) {
            const image = findLv(vg, r.image);
            if (!image || !pvIdsOfLv(vg, image).has(pv.id)) continue;
            const on = image.status.includes("WRITEMOSTLY");
            const want = mode === "y" ? true : mode === "n" ? false : !on;
            image.status = image.status.filter((x) => x !== "WRITEMOSTLY");
            if (want) image.status.push("WRITEMOSTLY");
          }
        }
        if (seg.raids.every((r) => findLv(vg, r.image)?.status.includes("WRITEMOSTLY")))
          throw new CommandError(`Can't set all images of raid1 LV ${name} to writemostly.`);
      }
      if (args.has("minrecoveryrate")) seg.minRecoveryRate = Math.floor((sizeValue(args, "minrecoveryrate", "nonneg", 2)?.sectors ?? 0) / 2);
      if (args.has("maxrecoveryrate")) seg.maxRecoveryRate = Math.floor((sizeValue(args, "maxrecoveryrate", "nonneg", 2)?.sectors ?? 0) / 2);
      if (seg.maxRecoveryRate && seg.maxRecoveryRate < seg.minRecoveryRate) throw new CommandError("Minimum recovery rate cannot be higher than maximum.");
      await ctx.commit(loaded);
      ctx.out.print(`Logical volume ${name} changed.`);
      if (top) await reloadVg(ctx, vg.name);
    },
  );
  return exitFor(failures);
}

/** _lvchange_resync for raid: deactivate (asked), zero every rmeta's first 4 KiB, clear NOTSYNCED, reactivate. */
async function resyncRaid(ctx: ToolContext, loaded: LoadedVg, lv: LogicalVolume, active: boolean, args: Args): Promise<void> {
  const vg = loaded.vg;
  const name = `${vg.name}/${lv.name}`;
  const seg = lv.segments[0]!;
  if (!isRaidSeg(seg)) return;
  if (active) {
    if (!args.has("yes") && !ctx.opts.yes && !(await ctx.confirm(`Do you really want to deactivate logical volume ${name} to resync it?`)))
      throw new CommandError(`Logical volume ${name} not resynced.`);
    try {
      await deactivateLv(ctx, vg.name, lv.name);
    } catch (e) {
      if (e instanceof Error && "exitCode" in e) throw new CommandError(`Can't resync open logical volume ${name}.`);
      throw e;
    }
  }
  if (lv.status.includes("NOTSYNCED")) {
    lv.status = lv.status.filter((x) => x !== "NOTSYNCED");
    await ctx.commit(loaded);
  }
  for (const r of seg.raids) {
    const meta = r.meta !== undefined ? findLv(vg, r.meta) : undefined;
    if (meta) await zeroLvStart(loaded, meta);
  }
  if (active) await activateLv(ctx, vg.name, lv.name);
}
