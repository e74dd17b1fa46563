import { CommandError, LvmError } from "../errors/errors.js";
import { isVisible } from "../model/lv-info.js";
import type { ToolContext } from "./toolcontext.js";
import { activateLv, activationModeArg, daemonStatus, deactivateLv, reloadVg } from "./activation.js";
import { loadVg } from "./vg-store.js";
import { isAutoActivation, lvAutoActivates } from "./autoactivation.js";

/**
 * `vgchange -a|--activate` and `vgchange --refresh` (tools/vgchange.c
 * _vgchange_activate): every visible LV of the VG is (de)activated through the
 * daemon; LVs flagged ACTIVATION_SKIP are left alone unless -K. Deactivation
 * refuses while any LV is open, as lvm2 does.
 */
export type VgActivationChange =
  | { kind: "activate"; value: string; activationMode: string | undefined; partial: boolean; ignoreActivationSkip: boolean; readOnly: boolean }
  | { kind: "refresh" };

export async function vgchangeActivate(ctx: ToolContext, vgName: string, change: VgActivationChange): Promise<void> {
  if (change.kind === "refresh") {
    await reloadVg(ctx, vgName);
    return;
  }
  const on = !/n/.test(change.value);
  // -aay: only what autoactivation allows (NOAUTOACTIVATE, auto_activation_volume_list).
  const auto = isAutoActivation(change.value);
  const mode = change.partial ? "partial" : activationModeArg(change.activationMode, "vgchange");
  const scan = await ctx.scan();
  const loaded = loadVg(scan, vgName);
  if (!loaded) throw new CommandError(`Volume group "${vgName}" not found`);
  const lvs = loaded.vg.lvs.filter(isVisible);
  const activeNames = async (): Promise<Set<string>> => new Set((await daemonStatus(ctx)).filter((s) => s.vg === vgName).map((s) => s.lv));
  let failed = false;
  if (on) {
    for (const lv of lvs) {
      if (lv.flags.includes("ACTIVATION_SKIP") && !change.ignoreActivationSkip) continue;
      if (auto && !lvAutoActivates(ctx.config, loaded.vg, lv)) continue;
      try {
        await activateLv(ctx, vgName, lv.name, mode);
      } catch (e) {
        if (!(e instanceof LvmError)) throw e;
        ctx.out.error(e.message);
        failed = true;
      }
    }
  } else {
    const status = (await daemonStatus(ctx)).filter((s) => s.vg === vgName);
    const open = status.filter((s) => s.openCount > 0);
    if (open.length) throw new CommandError(`Can't deactivate volume group "${vgName}" with ${open.length} open logical volume(s)`);
    for (const s of status) {
      try {
        await deactivateLv(ctx, vgName, s.lv);
      } catch (e) {
        if (!(e instanceof LvmError)) throw e;
        ctx.out.error(e.message);
        failed = true;
      }
    }
  }
  const now = ctx.opts.test ? 0 : (await activeNames()).size;
  ctx.out.print(`${now} logical volume(s) in volume group "${vgName}" now active`);
  if (failed) {
    const e = new CommandError("");
    e.silent = true;
    throw e;
  }
}

/** lvm2's activation values for -a: y|n|ay plus their aliases. */
export const ACTIVATE_VALUES = ["e", "ey", "ye", "s", "sy", "ys", "y", "a", "ay", "ya", "n", "en", "ne", "ln", "nl", "ly", "yl"];
