import { formatId } from "../../base/uuid.js";
import { findLv, isMirror, isRaid, pvIdsOfLv } from "../../model/lv-info.js";
import type { VolumeGroup } from "../../model/types.js";
import type { EventInput } from "./event-types.js";

/**
 * lv-degraded or lv-partial for an LV standing on missing PVs, or undefined
 * when none of its PVs is missing. A mirror or raid1 LV still has a copy of
 * everything (degraded); any other LV has lost part of its data (partial),
 * as lvs's "partial" health. A resync is never one of these: only a missing
 * PV is (mdadm's initial build reported as DegradedArray is the complaint).
 */
export function degradedEvent(vg: VolumeGroup, lvName: string, missingPvIds: ReadonlySet<string>, why: string): EventInput | undefined {
  const lv = findLv(vg, lvName);
  if (!lv) return undefined;
  const missing = [...pvIdsOfLv(vg, lv)].filter((id) => missingPvIds.has(id));
  if (missing.length === 0) return undefined;
  const pvNames = missing.map((id) => {
    const hint = vg.pvs.find((p) => p.id === id)?.deviceHint;
    return hint && hint !== "[unknown]" ? hint : formatId(id);
  });
  const redundant = isRaid(lv) || isMirror(lv);
  return {
    name: redundant ? "lv-degraded" : "lv-partial",
    vg: vg.name,
    lv: lvName,
    pv: pvNames[0],
    details: { missingPvs: pvNames },
    message: `${redundant ? "running without" : "lost part of its data with"} ${pvNames.join(", ")} (${why})`,
  };
}
