import type { LogicalVolume, VolumeGroup } from "./types.js";
import { cloneVg } from "./clone.js";
import { findLv, subLvNames } from "./lv-info.js";

/**
 * Removing LVs from the model. Pure: each function returns a new VG and leaves
 * its argument alone, so a caller can commit intermediate versions.
 */

/** The LV itself and every sub-LV it is built from (mirror legs, logs), as lvm2's lv_remove releases them. */
export function lvTreeNames(vg: VolumeGroup, lv: LogicalVolume): string[] {
  return [lv.name, ...subLvNames(vg, lv)];
}

/** Remove an LV and its sub-LVs (lv_remove_with_dependencies for linear, striped and mirror LVs). */
export function removeLvTree(vg: VolumeGroup, name: string): VolumeGroup {
  const lv = findLv(vg, name);
  if (!lv) return cloneVg(vg);
  const gone = new Set(lvTreeNames(vg, lv));
  const out = cloneVg(vg);
  out.lvs = out.lvs.filter((l) => !gone.has(l.name));
  return out;
}

/** Remove exactly one LV, leaving whatever it referenced (callers detach it first). */
export function removeSingleLv(vg: VolumeGroup, name: string): VolumeGroup {
  const out = cloneVg(vg);
  out.lvs = out.lvs.filter((l) => l.name !== name);
  return out;
}
