import type { PhysicalVolume, VolumeGroup } from "./types.js";
import { segAreaExtents, segAreas } from "./lv-info.js";

/** Who holds each physical extent: the LV name and its segment's LE, per PV. */
export interface PeOwner {
  lvName: string;
  /** Index of the segment in the LV. */
  segIndex: number;
  /** Index of the area within the segment. */
  areaIndex: number;
}

/** Allocated extents of each PV, as a per-PE array of owners (undefined = free). */
export function peMaps(vg: VolumeGroup): Map<string, Array<PeOwner | undefined>> {
  const maps = new Map<string, Array<PeOwner | undefined>>();
  for (const pv of vg.pvs) maps.set(pv.id, new Array<PeOwner | undefined>(pv.peCount).fill(undefined));
  for (const lv of vg.lvs)
    lv.segments.forEach((seg, segIndex) => {
      const len = segAreaExtents(seg);
      segAreas(seg).forEach((a, areaIndex) => {
        if (a.kind !== "pv") return;
        const m = maps.get(a.pvId);
        if (!m) return;
        for (let i = 0; i < len; i++) if (a.startPe + i < m.length) m[a.startPe + i] = { lvName: lv.name, segIndex, areaIndex };
      });
    });
  return maps;
}

export function pvAllocatedExtents(vg: VolumeGroup, pv: PhysicalVolume): number {
  let n = 0;
  for (const lv of vg.lvs)
    for (const seg of lv.segments) {
      const len = segAreaExtents(seg);
      for (const a of segAreas(seg)) if (a.kind === "pv" && a.pvId === pv.id) n += len;
    }
  return n;
}

export function vgExtentCount(vg: VolumeGroup): number {
  let n = 0;
  for (const pv of vg.pvs) n += pv.peCount;
  return n;
}

export function vgFreeExtents(vg: VolumeGroup): number {
  let n = 0;
  for (const pv of vg.pvs) n += pv.peCount - pvAllocatedExtents(vg, pv);
  return n;
}

/** Free runs of a PV: [startPe, count] in PE order. */
export function freeRuns(map: ReadonlyArray<PeOwner | undefined>): Array<{ startPe: number; count: number }> {
  const runs: Array<{ startPe: number; count: number }> = [];
  let i = 0;
  while (i < map.length) {
    if (map[i] !== undefined) {
      i++;
      continue;
    }
    const start = i;
    while (i < map.length && map[i] === undefined) i++;
    runs.push({ startPe: start, count: i - start });
  }
  return runs;
}
