import type { LvActivationHooks } from "./lv-activation.js";
import { activateLv, daemonStatus, deactivateLv, reloadVg } from "./activation.js";
import { topLevelLv } from "../model/lv-info.js";

/**
 * The LV commands' activation hooks (lv-activation.ts), served by the ulvm
 * daemon: lvcreate activates unless -an, lvextend/lvreduce/lvrename reload
 * what is active, lvremove deactivates first, as lvm2 does with
 * device-mapper.
 */
export const daemonLvActivation: LvActivationHooks = {
  async isActive(ctx, loaded, lv) {
    const top = topLevelLv(loaded.vg, lv);
    return (await daemonStatus(ctx)).some((s) => s.vg === loaded.vg.name && s.lv === top.name);
  },
  async activateNew(ctx, loaded, lv, activate) {
    if (activate === "n" || activate === "an" || activate === "en" || activate === "ln") return;
    await activateLv(ctx, loaded.vg.name, lv.name);
  },
  async reload(ctx, loaded) {
    await reloadVg(ctx, loaded.vg.name);
  },
  async deactivate(ctx, loaded, lv) {
    await deactivateLv(ctx, loaded.vg.name, topLevelLv(loaded.vg, lv).name);
  },
};
