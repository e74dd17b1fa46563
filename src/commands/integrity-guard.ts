import type { LogicalVolume, VolumeGroup } from "../model/types.js";
import { findLv, isIntegritySeg, isRaidSeg } from "../model/lv-info.js";
import { CommandError } from "../errors/errors.js";

/**
 * The commands ulvm does not yet teach about integrity layers refuse a raid1
 * LV with integrity instead of rewriting its images as if they were linear
 * (which would leave the _iorig/_imeta LVs dangling). lvm2's own message is
 * used where lvm2 refuses too.
 */

/** lv_raid_has_integrity: some image of the LV's raid segment is an integrity layer. */
export function raidHasIntegrity(vg: VolumeGroup, lv: LogicalVolume): boolean {
  const seg = lv.segments[0];
  if (!seg || !isRaidSeg(seg)) return false;
  return seg.raids.some((r) => {
    const s = findLv(vg, r.image)?.segments[0];
    return s !== undefined && isIntegritySeg(s);
  });
}

/** Throw `message` (lvm2's) or ulvm's "not yet" for `operation` when the LV is raid1 with integrity. */
export function refuseRaidIntegrity(vg: VolumeGroup, lv: LogicalVolume, operation: string, lvm2Message?: string): void {
  if (!raidHasIntegrity(vg, lv)) return;
  throw new CommandError(lvm2Message ?? `ulvm cannot ${operation} raid1 LV ${vg.name}/${lv.name} with integrity yet.`);
}
