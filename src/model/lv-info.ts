import type { Area, IntegritySegment, LogicalVolume, MirrorSegment, RaidSegment, Segment, StripedSegment, VolumeGroup } from "./types.js";

/**
 * Derived facts about LVs that lvm2 computes on read instead of storing
 * (MIRROR_IMAGE, MIRROR_LOG, MIRRORED...): who uses whom, sizes, visibility.
 */
export function lvExtents(lv: LogicalVolume): number {
  let n = 0;
  for (const s of lv.segments) n += s.extentCount;
  return n;
}

export function isVisible(lv: LogicalVolume): boolean {
  return lv.status.includes("VISIBLE");
}

export function findLv(vg: VolumeGroup, name: string): LogicalVolume | undefined {
  return vg.lvs.find((l) => l.name === name);
}

export function isMirrorSeg(s: Segment): s is MirrorSegment {
  return s.type === "mirror" && !("opaque" in s);
}

export function isStripedSeg(s: Segment): s is StripedSegment {
  return s.type === "striped" && !("opaque" in s);
}

export function isRaidSeg(s: Segment): s is RaidSegment {
  return s.type === "raid1" && !("opaque" in s);
}

export function isIntegritySeg(s: Segment): s is IntegritySegment {
  return s.type === "integrity" && !("opaque" in s);
}

/**
 * The integrity segment that uses `name` as its origin (`_iorig`) or metadata
 * (`_imeta`) LV, and its LV: lvm2's lv_is_integrity_origin and the
 * INTEGRITY_METADATA flag it derives on import.
 */
export function integrityParentOf(vg: VolumeGroup, name: string): { lv: LogicalVolume; seg: IntegritySegment; meta: boolean } | undefined {
  for (const lv of vg.lvs)
    for (const seg of lv.segments) {
      if (!isIntegritySeg(seg)) continue;
      if (seg.origin === name || seg.metaDev === name) return { lv, seg, meta: seg.metaDev === name };
    }
  return undefined;
}

/** A raid1 LV (lvm2's lv_is_raid for the one level ulvm models). */
export function isRaid(lv: LogicalVolume): boolean {
  return lv.segments.some(isRaidSeg);
}

/**
 * Areas of a segment whatever its type. For raid, the data images (rimage)
 * only, each from LE 0; the rmeta LVs are in raidMetaNames.
 */
export function segAreas(s: Segment): Area[] {
  if ("opaque" in s) return s.areas;
  if (s.type === "striped") return s.stripes;
  if (s.type === "mirror") return s.mirrors;
  if (s.type === "integrity") return [{ kind: "lv", lvName: s.origin, startLe: 0 }];
  return s.raids.map((r) => ({ kind: "lv", lvName: r.image, startLe: 0 }));
}

/** The rmeta LVs of a raid segment, in slot order (none for other types). */
export function raidMetaNames(s: Segment): string[] {
  if (!isRaidSeg(s)) return [];
  return s.raids.flatMap((r) => (r.meta === undefined ? [] : [r.meta]));
}

/** Extents each area of a segment covers. */
export function segAreaExtents(s: Segment): number {
  if ("opaque" in s) return s.areaExtents;
  return s.type === "striped" ? s.extentCount / s.stripes.length : s.extentCount;
}

/** The raid LV (and segment, slot) that has `name` as an rimage or rmeta, if any. */
export function raidParentOf(vg: VolumeGroup, name: string): { lv: LogicalVolume; seg: RaidSegment; slot: number; meta: boolean } | undefined {
  for (const lv of vg.lvs)
    for (const seg of lv.segments) {
      if (!isRaidSeg(seg)) continue;
      const slot = seg.raids.findIndex((r) => r.image === name || r.meta === name);
      if (slot !== -1) return { lv, seg, slot, meta: seg.raids[slot]!.meta === name };
    }
  return undefined;
}

export function isRaidImage(vg: VolumeGroup, lv: LogicalVolume): boolean {
  const p = raidParentOf(vg, lv.name);
  return p !== undefined && !p.meta;
}

export function isRaidMeta(vg: VolumeGroup, lv: LogicalVolume): boolean {
  return raidParentOf(vg, lv.name)?.meta === true;
}

export function isMirror(lv: LogicalVolume): boolean {
  return lv.segments.some(isMirrorSeg);
}

/** The LV (and segment) that has `name` as a mirror leg, if any. */
export function mirrorParentOfImage(vg: VolumeGroup, name: string): { lv: LogicalVolume; seg: MirrorSegment; leg: number } | undefined {
  for (const lv of vg.lvs)
    for (const seg of lv.segments) {
      if (!isMirrorSeg(seg)) continue;
      const leg = seg.mirrors.findIndex((a) => a.kind === "lv" && a.lvName === name);
      if (leg !== -1) return { lv, seg, leg };
    }
  return undefined;
}

/** The mirror whose log is `name`, if any. */
export function mirrorParentOfLog(vg: VolumeGroup, name: string): { lv: LogicalVolume; seg: MirrorSegment } | undefined {
  for (const lv of vg.lvs)
    for (const seg of lv.segments) if (isMirrorSeg(seg) && seg.mirrorLog === name) return { lv, seg };
  return undefined;
}

export function isMirrorImage(vg: VolumeGroup, lv: LogicalVolume): boolean {
  return mirrorParentOfImage(vg, lv.name) !== undefined;
}

export function isMirrorLog(vg: VolumeGroup, lv: LogicalVolume): boolean {
  return mirrorParentOfLog(vg, lv.name) !== undefined;
}

/** Every LV that `lv` is built from (legs, logs), recursively, children before parents not guaranteed. */
export function subLvNames(vg: VolumeGroup, lv: LogicalVolume): string[] {
  const out: string[] = [];
  const visit = (l: LogicalVolume): void => {
    for (const s of l.segments) {
      if (isRaidSeg(s))
        for (const r of s.raids) {
          if (r.meta !== undefined) push(r.meta);
          push(r.image);
        }
      for (const a of segAreas(s)) if (a.kind === "lv") push(a.lvName);
      if (isMirrorSeg(s) && s.mirrorLog) push(s.mirrorLog);
      if (isIntegritySeg(s) && s.metaDev !== undefined) push(s.metaDev);
    }
  };
  const push = (n: string): void => {
    if (out.includes(n)) return;
    out.push(n);
    const sub = findLv(vg, n);
    if (sub) visit(sub);
  };
  visit(lv);
  return out;
}

/** The visible LV at the top of a stack of sub-LVs (itself when it is visible or a root). */
export function topLevelLv(vg: VolumeGroup, lv: LogicalVolume): LogicalVolume {
  let cur = lv;
  for (let guard = 0; guard < 64; guard++) {
    const p = mirrorParentOfImage(vg, cur.name)?.lv ?? mirrorParentOfLog(vg, cur.name)?.lv ?? raidParentOf(vg, cur.name)?.lv;
    if (!p) return cur;
    cur = p;
  }
  return cur;
}

/** PV ids an LV uses directly or through its sub-LVs. */
export function pvIdsOfLv(vg: VolumeGroup, lv: LogicalVolume): Set<string> {
  const ids = new Set<string>();
  const visit = (l: LogicalVolume, depth: number): void => {
    if (depth > 64) return;
    for (const s of l.segments) {
      for (const a of segAreas(s)) {
        if (a.kind === "pv") ids.add(a.pvId);
        else {
          const sub = findLv(vg, a.lvName);
          if (sub) visit(sub, depth + 1);
        }
      }
      if (isMirrorSeg(s) && s.mirrorLog) {
        const log = findLv(vg, s.mirrorLog);
        if (log) visit(log, depth + 1);
      }
      for (const m of raidMetaNames(s)) {
        const meta = findLv(vg, m);
        if (meta) visit(meta, depth + 1);
      }
    }
  };
  visit(lv, 0);
  return ids;
}

/**
 * lvm2's name of an LV's type in "Command on LV ... does not accept LV type X."
 * (toollib.c _check_lv_types): linear or striped for striped segments, the
 * first segment's type otherwise (mirror, raid1, error...).
 */
export function lvTypeName(lv: LogicalVolume): string {
  const segs = lv.segments;
  if (segs.length > 0 && segs.every(isStripedSeg)) return segs.some((s) => isStripedSeg(s) && s.stripes.length > 1) ? "striped" : "linear";
  return segs[0]?.type ?? "linear";
}
