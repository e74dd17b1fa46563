import { makePercent, PERCENT_100, PERCENT_INVALID } from "./percent.js";
import type { LvView, PvView, VgView } from "./vg-view.js";
import type { RaidDeviceStatus } from "./activation-state.js";
import { raidParentOf } from "../model/lv-info.js";

/**
 * lvm2's attribute strings (lib/metadata/lv.c lv_attr_dup_with_info_and_seg_status,
 * vg.c vg_attr_dup, pv.c pv_attr_dup) and the mirror sync facts behind
 * Cpy%Sync and the i/I image character (activate.c lv_mirror_percent,
 * lv_manip.c copy_percent). State comes from the LV's ActivationState.
 */
const ALLOC_CHARS: Record<string, string> = { contiguous: "c", cling: "l", cling_by_tags: "l", normal: "n", anywhere: "a", inherit: "i" };

export function allocChar(policy: string | undefined, inheritDefault: boolean): string {
  if (policy === undefined) return inheritDefault ? "i" : "n";
  return ALLOC_CHARS[policy] ?? "-";
}

/** get_alloc_string(): lvm2 reads cling_by_tags as cling. */
export function allocName(policy: string | undefined, inheritDefault: boolean): string {
  if (policy === undefined) return inheritDefault ? "inherit" : "normal";
  return policy === "cling_by_tags" ? "cling" : policy;
}

export function hasFlag(words: { status: string[]; flags: string[] }, w: string): boolean {
  return words.status.includes(w) || words.flags.includes(w);
}

/**
 * lv_mirror_percent: the mirror's region sync as a dm percent, or undefined
 * when lvm2 could not ask the kernel (mirror not active). A mirror reduced to
 * a single one-leg segment counts as in sync.
 */
export function mirrorSyncPercent(lvv: LvView): number | undefined {
  if (lvv.segs.length === 1 && lvv.segs[0]!.areas.length === 1) return PERCENT_100;
  const st = lvv.state;
  if (!st?.active || !st.mirrorSegments?.length) return undefined;
  let n = 0;
  let d = 0;
  for (const s of st.mirrorSegments) {
    n += s.inSyncRegions;
    d += s.totalRegions;
  }
  return makePercent(n, d);
}

/** Cpy%Sync of a mirror (copy_percent): whole extents copied per segment. */
export function copyPercent(lvv: LvView): number {
  if (!lvv.isMirror) return PERCENT_INVALID;
  const p = mirrorSyncPercent(lvv);
  if (p === undefined || p === PERCENT_INVALID) return PERCENT_INVALID;
  const status = lvv.state?.mirrorSegments ?? [];
  const mirrorSegs = lvv.segs.filter((s) => s.mirror && s.areas.length > 1);
  let numerator = 0;
  let denominator = 0;
  let mirrorIndex = 0;
  for (const s of lvv.segs) {
    denominator += s.areaExtents;
    if (s.mirror && s.areas.length > 1) {
      if (status.length === 1 && mirrorSegs.length > 1) continue; // one status for all mirror segments: counted below
      const st = status[mirrorIndex++];
      numerator += st && st.totalRegions ? Math.floor((s.areaExtents * st.inSyncRegions) / st.totalRegions) : 0;
    } else numerator += s.areaExtents;
  }
  if (status.length === 1 && mirrorSegs.length > 1) {
    const st = status[0]!;
    const extents = mirrorSegs.reduce((n, s) => n + s.areaExtents, 0);
    numerator += st.totalRegions ? Math.floor((extents * st.inSyncRegions) / st.totalRegions) : 0;
  }
  return denominator ? makePercent(numerator, denominator) : PERCENT_100;
}

/**
 * The dm-raid status behind a raid1 LV or one of its sub-LVs, with the slot
 * of the sub-LV; undefined when the LV (or its raid1 LV) is not active.
 */
function raidStatus(lvv: LvView): { status: RaidDeviceStatus; slot: number | undefined } | undefined {
  if (!lvv.state?.active) return undefined;
  if (lvv.raidSeg) return lvv.state.raid ? { status: lvv.state.raid, slot: undefined } : undefined;
  const parent = raidParentOf(lvv.vgv.vg, lvv.lv.name);
  if (!parent) return undefined;
  const st = lvv.vgv.activation.lvState(lvv.vgv.name, parent.lv.name)?.raid;
  return st ? { status: st, slot: parent.slot } : undefined;
}

/** lv_raid_healthy: no dead slot (the raid1 LV), or this slot not dead (a sub-LV); an inactive LV counts as healthy. */
export function raidHealthy(lvv: LvView): boolean {
  const r = raidStatus(lvv);
  if (!r) return true;
  return r.slot === undefined ? !r.status.health.includes("D") : r.status.health[r.slot] !== "D";
}

/** lv_raid_image_in_sync: the image's slot is 'A'; not active counts as not in sync. */
export function raidImageInSync(lvv: LvView): boolean {
  const r = raidStatus(lvv);
  return r !== undefined && r.slot !== undefined && r.status.health[r.slot] === "A";
}

/** lv_raid_percent: dm-raid's sync ratio (sectors), or invalid when inactive. */
export function raidSyncPercent(lvv: LvView): number {
  const st = lvv.raidSeg && lvv.state?.active ? lvv.state.raid : undefined;
  return st ? makePercent(st.syncedSectors, st.totalSectors) : PERCENT_INVALID;
}

/** The raid1 LV's mismatch count and sync action while active. */
export function raidActiveStatus(lvv: LvView): RaidDeviceStatus | undefined {
  return lvv.raidSeg && lvv.state?.active ? lvv.state.raid : undefined;
}

/** lv_mirror_image_in_sync. */
export function mirrorImageInSync(lvv: LvView): boolean {
  const parent = lvv.imageOf?.lvv;
  if (!parent) return false;
  return mirrorSyncPercent(parent) === PERCENT_100;
}

/** The 10 characters of lv_attr. */
export function lvAttr(lvv: LvView): string {
  const lv = lvv.lv;
  const st = lvv.state;
  const c: string[] = new Array<string>(10).fill("-");
  const firstType = lvv.firstType;
  if (lvv.isPvmove) c[0] = "p";
  else if (lvv.raidOf?.meta || lvv.integrityOf?.meta) c[0] = "e";
  // An _iorig keeps '-': Debian's lvm2 2.03.16 has no case for it (newer lvm2 shows 'i'/'I').
  else if (lvv.integritySeg) c[0] = "g";
  else if (lvv.isMirror) c[0] = lvv.notSynced ? "M" : "m";
  else if (lvv.raidSeg) c[0] = lvv.notSynced ? "R" : "r";
  else if (firstType?.startsWith("raid")) c[0] = "r";
  else if (firstType === "thin") c[0] = "V";
  else if (firstType === "thin-pool") c[0] = "t";
  else if (firstType === "cache" || firstType === "writecache") c[0] = "C";
  else if (firstType === "vdo-pool") c[0] = "d";
  else if (firstType === "error" || firstType === "zero") c[0] = "v";
  else if (lvv.isMirrorImage) c[0] = mirrorImageInSync(lvv) ? "i" : "I";
  // lv_raid_image_in_sync: "not active locally" counts as not in sync.
  else if (lvv.raidOf) c[0] = raidImageInSync(lvv) ? "i" : "I";
  else if (lvv.isMirrorLog) c[0] = "l";
  else if (firstType === "snapshot") c[0] = "s";

  if (lvv.isPvmove) c[1] = "-";
  else if (lv.status.includes("WRITE")) c[1] = "w";
  else if (lv.status.includes("READ")) c[1] = "r";

  c[2] = allocChar(lv.allocationPolicy, true);
  if (lv.status.includes("LOCKED")) c[2] = c[2]!.toUpperCase();
  c[3] = lv.status.includes("FIXED_MINOR") ? "m" : "-";

  if (st) {
    c[4] = st.suspended ? "s" : st.active ? "a" : "d";
    if (c[1] !== "r" && st.readOnly) c[1] = "R";
    c[5] = st.openCount > 0 ? "o" : "-";
  }

  if (firstType === "thin" || firstType === "thin-pool") c[6] = "t";
  else if (firstType === "cache" || firstType === "cache-pool" || firstType === "writecache") c[6] = "C";
  else if (firstType?.startsWith("raid") || lvv.raidOf) c[6] = "r";
  else if (lvv.isMirror || lvv.isMirrorImage || lvv.isMirrorLog || lvv.isPvmove) c[6] = "m";
  else if (firstType === "snapshot") c[6] = "s";
  else if (lvv.segs.some((s) => "opaque" in s.seg && !KNOWN_OPAQUE.has(s.seg.type) && !s.seg.type.startsWith("raid"))) c[6] = "u";
  else if (firstType === "error" || firstType === "zero") c[6] = "v";

  if (lvv.partial) c[8] = "p";
  // Inactive raid is assumed healthy, without mismatches; a write-mostly image shows 'w'.
  else if (lvv.isRaidType && !raidHealthy(lvv)) c[8] = "r";
  else if (lvv.raidSeg) {
    if ((raidActiveStatus(lvv)?.mismatchCount ?? 0) > 0) c[8] = "m";
  } else if (lvv.raidOf && !lvv.raidOf.meta && hasFlag(lv, "WRITEMOSTLY")) c[8] = "w";
  c[9] = hasFlag(lv, "ACTIVATION_SKIP") ? "k" : "-";
  return c.join("");
}

const KNOWN_OPAQUE = new Set(["thin", "thin-pool", "cache", "cache-pool", "writecache", "snapshot", "error", "zero", "vdo", "vdo-pool", "integrity"]);

/** vg_attr: permissions, resizeable, exported, partial, allocation, cluster/shared. */
export function vgAttr(vgv: VgView): string {
  const vg = vgv.vg;
  return [
    vg.status.includes("WRITE") ? "w" : "r",
    vg.status.includes("RESIZEABLE") ? "z" : "-",
    vg.status.includes("EXPORTED") ? "x" : "-",
    vgv.missingPvCount ? "p" : "-",
    allocChar(vg.allocationPolicy, false),
    vg.status.includes("CLUSTERED") ? "c" : vg.lockType && vg.lockType !== "none" ? "s" : "-",
  ].join("");
}

/** pv_attr: allocatable (or used), exported, missing. */
export function pvAttr(pvv: PvView): string {
  return (pvv.allocatable ? "a" : pvv.used ? "u" : "-") + (pvv.exported ? "x" : "-") + (pvv.missing ? "m" : "-");
}
