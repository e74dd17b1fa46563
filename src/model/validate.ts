import type { VolumeGroup } from "./types.js";
import { findLv, isMirrorSeg, isRaidSeg, segAreaExtents, segAreas, lvExtents } from "./lv-info.js";
import { validLvName, validVgName } from "./names.js";

/**
 * Consistency checks in the spirit of lvm2's check_lv_segments (merge.c) and
 * vg_validate (metadata.c). Returns a list of problems; empty means valid.
 * Every commit runs this first, so invalid metadata is never written.
 */
export function validateVg(vg: VolumeGroup): string[] {
  const p: string[] = [];
  if (!validVgName(vg.name)) p.push(`invalid VG name ${vg.name}`);
  if (!(vg.extentSizeSectors > 0)) p.push(`invalid extent size ${vg.extentSizeSectors}`);
  const pvIds = new Set<string>();
  for (const pv of vg.pvs) {
    if (pvIds.has(pv.id)) p.push(`duplicate PV id ${pv.id}`);
    pvIds.add(pv.id);
  }
  const names = new Set<string>();
  for (const lv of vg.lvs) {
    if (names.has(lv.name)) p.push(`duplicate LV name ${lv.name}`);
    names.add(lv.name);
    if (!validLvName(lv.name)) p.push(`invalid LV name ${lv.name}`);
  }
  p.push(...allocationProblems(vg));
  return p;
}

/**
 * What makes metadata unusable whatever else it says: an extent past the end
 * of its PV, an extent owned twice, a reference to a PV or LV that does not
 * exist, segments that do not follow each other. Readers skip a copy with
 * such problems (loadVg), as lvm2 cannot import or use one either.
 */
export function allocationProblems(vg: VolumeGroup): string[] {
  const p: string[] = [];
  // Each PE belongs to at most one area, and lies inside its PV.
  const used = new Map<string, Uint8Array>();
  for (const pv of vg.pvs) used.set(pv.id, new Uint8Array(pv.peCount));
  const lvUsers = new Map<string, number>();
  const layerLes: Record<string, Uint8Array> = {};
  for (const lv of vg.lvs) {
    let next = 0;
    if (lv.segments.length === 0) p.push(`LV ${lv.name} has no segments`);
    for (const seg of lv.segments) {
      if (seg.startExtent !== next) p.push(`LV ${lv.name}: segment at LE ${seg.startExtent} does not follow LE ${next}`);
      next = seg.startExtent + seg.extentCount;
      if (seg.extentCount <= 0) p.push(`LV ${lv.name}: empty segment`);
      const areas = segAreas(seg);
      const len = segAreaExtents(seg);
      if (!Number.isInteger(len)) p.push(`LV ${lv.name}: segment length ${seg.extentCount} not divisible by its area count`);
      for (const a of areas) {
        if (a.kind === "pv") {
          const m = used.get(a.pvId);
          if (!m) {
            p.push(`LV ${lv.name} uses a PV not in the VG`);
            continue;
          }
          if (a.startPe < 0 || a.startPe + len > m.length) {
            p.push(`LV ${lv.name}: extents ${a.startPe}-${a.startPe + len - 1} past the end of PV ${a.pvId}`);
            continue;
          }
          for (let i = 0; i < len; i++) {
            if (m[a.startPe + i]) p.push(`PE ${a.startPe + i} of PV ${a.pvId} is allocated twice (LV ${lv.name})`);
            m[a.startPe + i] = 1;
          }
        } else {
          const sub = findLv(vg, a.lvName);
          if (!sub) p.push(`LV ${lv.name} uses unknown LV ${a.lvName}`);
          else if (a.startLe + len > lvExtents(sub)) p.push(`LV ${lv.name} uses LEs past the end of ${a.lvName}`);
          else if (sub.status.includes("PVMOVE")) {
            // A pvmove layer is shared by every moved area (lvm2's insert_layer_for_segments_on_pv): each of its LEs has one user.
            const used = (layerLes[a.lvName] ??= new Uint8Array(lvExtents(sub)));
            for (let i = a.startLe; i < a.startLe + len; i++) {
              if (used[i]) p.push(`LE ${i} of ${a.lvName} is used twice (LV ${lv.name})`);
              used[i] = 1;
            }
            continue;
          }
          lvUsers.set(a.lvName, (lvUsers.get(a.lvName) ?? 0) + 1);
        }
      }
      if (isMirrorSeg(seg)) {
        if (seg.mirrors.length < 1) p.push(`mirror ${lv.name} has no legs`);
        for (const a of seg.mirrors) {
          if (a.kind !== "lv") continue;
          const img = findLv(vg, a.lvName);
          if (img && lvExtents(img) !== seg.extentCount && !(seg.extentsMoved !== undefined)) p.push(`mirror image ${a.lvName} is ${lvExtents(img)} extents, segment is ${seg.extentCount}`);
        }
        if (seg.mirrorLog !== undefined) {
          if (!findLv(vg, seg.mirrorLog)) p.push(`mirror ${lv.name} has unknown log ${seg.mirrorLog}`);
          lvUsers.set(seg.mirrorLog, (lvUsers.get(seg.mirrorLog) ?? 0) + 1);
          if (!seg.regionSizeSectors) p.push(`mirror ${lv.name} has a log but no region size`);
        }
        if (seg.regionSizeSectors && (seg.regionSizeSectors & (seg.regionSizeSectors - 1)) !== 0) p.push(`mirror ${lv.name}: region size ${seg.regionSizeSectors} is not a power of two`);
      }
      if (isRaidSeg(seg)) {
        if (seg.raids.length < 1) p.push(`raid1 ${lv.name} has no images`);
        for (const r of seg.raids) {
          const img = findLv(vg, r.image);
          if (img && lvExtents(img) !== seg.extentCount) p.push(`raid image ${r.image} is ${lvExtents(img)} extents, segment is ${seg.extentCount}`);
          if (r.meta === undefined) continue;
          if (!findLv(vg, r.meta)) p.push(`LV ${lv.name} uses unknown LV ${r.meta}`);
          lvUsers.set(r.meta, (lvUsers.get(r.meta) ?? 0) + 1);
        }
      }
    }
  }
  for (const [name, n] of lvUsers) if (n > 1) p.push(`LV ${name} is used by ${n} segments`);
  return p;
}
