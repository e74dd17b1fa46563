import type { Config } from "../config/config.js";
import type { LogicalVolume, VolumeGroup } from "../model/types.js";

/**
 * Which LVs `-aay` (autoactivation: vgchange -aay at boot, lvchange -aay)
 * activates, as lvm2 decides (lib/activate/activate.c, lv_passes_auto_activation_filter,
 * and vg/lv_is_autoactivatable):
 *   - a VG flagged NOAUTOACTIVATE (vgcreate/vgchange --setautoactivation n)
 *     autoactivates nothing; an LV flagged NOAUTOACTIVATE (lvcreate/lvchange
 *     --setautoactivation n) is skipped;
 *   - activation/auto_activation_volume_list, when set, must match the LV:
 *     "vg" (every LV of the VG), "vg/lv", "@tag" (a tag of the VG or of the LV).
 *     Unset = every LV passes; set to [] = none does. "@*" matches host tags,
 *     which ulvm does not have (tags/hosttags): it matches nothing.
 */
export const AUTO_ACTIVATION_LIST = "activation/auto_activation_volume_list";

export function isAutoActivation(value: string): boolean {
  return /^(a|ay|ya)$/.test(value);
}

export function vgAutoActivates(vg: VolumeGroup): boolean {
  return !vg.flags.includes("NOAUTOACTIVATE");
}

export function lvPassesAutoActivationList(list: readonly string[] | undefined, vg: VolumeGroup, lv: LogicalVolume): boolean {
  if (list === undefined) return true;
  for (const item of list) {
    if (item.startsWith("@")) {
      const tag = item.slice(1);
      if (tag !== "*" && (vg.tags.includes(tag) || lv.tags.includes(tag))) return true;
    } else if (!item.includes("/")) {
      if (item === vg.name) return true;
    } else if (item === `${vg.name}/${lv.name}`) return true;
  }
  return false;
}

/** Does `-aay` activate this LV? */
export function lvAutoActivates(config: Config, vg: VolumeGroup, lv: LogicalVolume): boolean {
  if (!vgAutoActivates(vg) || lv.flags.includes("NOAUTOACTIVATE")) return false;
  return lvPassesAutoActivationList(config.strList(AUTO_ACTIVATION_LIST), vg, lv);
}
