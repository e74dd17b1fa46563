import type { ToolContext } from "./toolcontext.js";
import type { LoadedVg } from "./vg-store.js";
import type { LogicalVolume } from "../model/types.js";

/**
 * Where the LV commands meet activation. Activation (the mapper devices the
 * daemon serves) is another part of ulvm; until it is wired in, these hooks
 * report every LV as inactive and do nothing after a change, which is what
 * lvm2 does with activation disabled as far as metadata goes. The commands
 * call them at the points where lvm2 activates, reloads or deactivates.
 */
export interface LvActivationHooks {
  /** Whether the LV (or, for sub-LVs, its top-level LV) is active; lvremove/lvreduce ask only for active LVs. */
  isActive(ctx: ToolContext, loaded: LoadedVg, lv: LogicalVolume): Promise<boolean>;
  /** After lvcreate committed: activate as -a asked ("y", "n", "ay", "ey", ...). */
  activateNew(ctx: ToolContext, loaded: LoadedVg, lv: LogicalVolume, activate: string): Promise<void>;
  /** After lvextend/lvreduce/lvrename committed: reload the LV's tables if it is active. */
  reload(ctx: ToolContext, loaded: LoadedVg, lvName: string): Promise<void>;
  /** Before lvremove commits: deactivate the LV and its sub-LVs. */
  deactivate(ctx: ToolContext, loaded: LoadedVg, lv: LogicalVolume): Promise<void>;
}

const inactive: LvActivationHooks = {
  async isActive() {
    return false;
  },
  async activateNew() {},
  async reload() {},
  async deactivate() {},
};

let hooks: LvActivationHooks = inactive;

/** Install the real activation (the daemon or a future activate/ module does this). */
export function setLvActivationHooks(h: LvActivationHooks | undefined): void {
  hooks = h ?? inactive;
}

/**
 * The hooks for a command. With global/activation = 0 in ulvm.conf (lvm2's
 * setting of the same name) nothing is activated, reloaded or asked about:
 * the LV commands then change metadata only, like lvm2 without
 * device-mapper (what the differential tests compare against).
 */
export function lvActivation(ctx?: ToolContext): LvActivationHooks {
  if (ctx && !ctx.config.bool("global/activation", true)) return inactive;
  return hooks;
}
