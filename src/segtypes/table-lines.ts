import type { TableLine } from "../mapper/table.js";
import type { Area, LogicalVolume, Segment, VolumeGroup } from "../model/types.js";
import { findLv, isIntegritySeg, isMirrorSeg, isRaidSeg, isStripedSeg } from "../model/lv-info.js";
import type { IntegritySegment, MirrorSegment, RaidSegment } from "../model/types.js";
import { dmName } from "./dm-names.js";

/**
 * The table lines an LV activates to, one per segment, as lvm2's
 * add_target_line handlers build them (lib/striped/striped.c,
 * lib/mirror/mirrored.c): linear/striped lines point at PV devices with
 * sector offsets pe_start + pe * extent_size; mirror lines point at the
 * images' and log's own mapped devices (activated first).
 */
export interface TableEnv {
  /** The device name tables use for a PV, or undefined when the PV is missing. */
  pvDevice(pvId: string): string | undefined;
  /**
   * What to do about missing PVs: "complete" refuses; "degraded" lets a mirror
   * run without the legs (or log) on them; "partial" also maps any other area
   * on them to the error target (lvm2's --activationmode).
   */
  mode: "complete" | "degraded" | "partial";
  /** Ask mirrors to hold writes that failed on a leg until the daemon handled it. */
  handleErrors: boolean;
}

export class MissingDeviceError extends Error {
  constructor(readonly pvId: string, readonly lvName: string) {
    super(`LV ${lvName} uses a missing PV`);
  }
}

function pvOffset(vg: VolumeGroup, a: Area & { kind: "pv" }, env: TableEnv, lvName: string): { dev: string; offsetSectors: number } | undefined {
  const pv = vg.pvs.find((p) => p.id === a.pvId);
  const dev = env.pvDevice(a.pvId);
  if (!pv || dev === undefined) {
    if (env.mode === "partial") return undefined;
    throw new MissingDeviceError(a.pvId, lvName);
  }
  return { dev, offsetSectors: pv.peStartSectors + a.startPe * vg.extentSizeSectors };
}

function segmentLine(vg: VolumeGroup, lv: LogicalVolume, seg: Segment, env: TableEnv): TableLine {
  const E = vg.extentSizeSectors;
  const startSector = seg.startExtent * E;
  const lengthSectors = seg.extentCount * E;
  if (isStripedSeg(seg)) {
    if (seg.stripes.length === 1) {
      const a = seg.stripes[0]!;
      if (a.kind === "lv") return { startSector, lengthSectors, targetType: "linear", args: [dmName(vg.name, a.lvName), String(a.startLe * E)] };
      const o = pvOffset(vg, a, env, lv.name);
      if (!o) return { startSector, lengthSectors, targetType: "error", args: [] };
      return { startSector, lengthSectors, targetType: "linear", args: [o.dev, String(o.offsetSectors)] };
    }
    const args = [String(seg.stripes.length), String(seg.stripeSizeSectors)];
    for (const a of seg.stripes) {
      if (a.kind === "lv") {
        args.push(dmName(vg.name, a.lvName), String(a.startLe * E));
        continue;
      }
      const o = pvOffset(vg, a, env, lv.name);
      if (!o) return { startSector, lengthSectors, targetType: "error", args: [] };
      args.push(o.dev, String(o.offsetSectors));
    }
    return { startSector, lengthSectors, targetType: "striped", args };
  }
  if (isMirrorSeg(seg) && seg.extentsMoved !== undefined) return pvmoveLine(vg, lv, seg, env, startSector, lengthSectors);
  if (isMirrorSeg(seg)) {
    // POLICY: a leg (or log) on a missing PV is left out of the live table, as
    // dmeventd's "remove" fault policy leaves it out of the kernel mirror; the
    // metadata keeps it, with the PV flagged MISSING, until vgreduce
    // --removemissing or lvconvert --repair decide its fate.
    const legs = seg.mirrors.filter((a) => areaUsable(vg, a, env));
    if (legs.length === 0) {
      if (env.mode === "partial") return { startSector, lengthSectors, targetType: "error", args: [] };
      throw new MissingDeviceError(lvMissingPv(vg, seg.mirrors[0]!, env) ?? "", lv.name);
    }
    if (legs.length < seg.mirrors.length && env.mode === "complete") {
      throw new MissingDeviceError(lvMissingPv(vg, seg.mirrors.find((a) => !areaUsable(vg, a, env))!, env) ?? "", lv.name);
    }
    if (legs.length === 1) {
      // One image left (a failed leg, or a mirror under conversion): map straight to it.
      const a = legs[0]!;
      if (a.kind === "lv") return { startSector, lengthSectors, targetType: "linear", args: [dmName(vg.name, a.lvName), String(a.startLe * E)] };
      const o = pvOffset(vg, a, env, lv.name)!;
      return { startSector, lengthSectors, targetType: "linear", args: [o.dev, String(o.offsetSectors)] };
    }
    const region = String(seg.regionSizeSectors);
    const logUsable = seg.mirrorLog !== undefined && lvUsable(vg, seg.mirrorLog, env);
    const args: string[] = logUsable ? ["disk", "2", dmName(vg.name, seg.mirrorLog!), region] : ["core", "1", region];
    args.push(String(legs.length));
    for (const a of legs) {
      if (a.kind === "lv") args.push(dmName(vg.name, a.lvName), String(a.startLe * E));
      else {
        const o = pvOffset(vg, a, env, lv.name)!;
        args.push(o.dev, String(o.offsetSectors));
      }
    }
    if (env.handleErrors) args.push("1", "handle_errors");
    return { startSector, lengthSectors, targetType: "mirror", args };
  }
  if (isRaidSeg(seg)) return raidLine(vg, lv, seg, env, startSector, lengthSectors);
  if (isIntegritySeg(seg)) return { startSector, lengthSectors, targetType: "integrity", args: integrityArgs(vg, seg) };
  // lvm2's virtual segment types: a raid1 image or mirror leg replaced by "error" after its PV
  // was removed (vgreduce --removemissing --force) maps to the error target, as in lvm2.
  if (seg.type === "error" || seg.type === "zero") return { startSector, lengthSectors, targetType: seg.type, args: [] };
  throw new UnsupportedSegmentError(seg.type, lv.name);
}

/** lvm2's default mirror region size (activation/mirror_region_size, 2 MiB) in sectors. */
const DEFAULT_MIRROR_REGION_SECTORS = 4096;

/**
 * A pvmove segment (lib/mirror/mirrored.c _mirrored_add_target_line): when
 * wholly moved it is linear on its destination (area 1); the first
 * unfinished segment of the pvmove LV is a core-log mirror that copies from
 * area 0 (from scratch at every load: its progress is not kept); every later
 * one stays linear on its source (area 0), so one segment copies at a time.
 * The region size is adjusted_mirror_region_size's for the segment.
 */
function pvmoveLine(vg: VolumeGroup, lv: LogicalVolume, seg: MirrorSegment, env: TableEnv, startSector: number, lengthSectors: number): TableLine {
  const E = vg.extentSizeSectors;
  const linearOn = (a: Area): TableLine => {
    if (a.kind === "lv") return { startSector, lengthSectors, targetType: "linear", args: [dmName(vg.name, a.lvName), String(a.startLe * E)] };
    const o = pvOffset(vg, a, env, lv.name);
    if (!o) return { startSector, lengthSectors, targetType: "error", args: [] };
    return { startSector, lengthSectors, targetType: "linear", args: [o.dev, String(o.offsetSectors)] };
  };
  if (seg.extentsMoved! >= seg.extentCount) return linearOn(seg.mirrors[1]!);
  const running = lv.segments.find((s) => isMirrorSeg(s) && s.extentsMoved !== undefined && s.extentsMoved < s.extentCount);
  if (running !== seg) return linearOn(seg.mirrors[0]!);
  const regionMax = 2 ** Math.min(31, lowestSetBit(seg.extentCount)) * E;
  const region = seg.regionSizeSectors || Math.min(DEFAULT_MIRROR_REGION_SECTORS, regionMax);
  const args = ["core", "1", String(region), "2"];
  for (const a of seg.mirrors.slice(0, 2)) {
    if (a.kind === "lv") args.push(dmName(vg.name, a.lvName), String(a.startLe * E));
    else {
      const o = pvOffset(vg, a, env, lv.name);
      if (!o) return { startSector, lengthSectors, targetType: "error", args: [] };
      args.push(o.dev, String(o.offsetSectors));
    }
  }
  return { startSector, lengthSectors, targetType: "mirror", args };
}

/** ffs(n) - 1: the index of the lowest set bit. */
function lowestSetBit(n: number): number {
  let i = 0;
  while (n > 0 && n % 2 === 0) {
    n /= 2;
    i++;
  }
  return i;
}

/**
 * dm-raid's table line (`raid raid1 ...`), with its parameters in the order lvm2 emits them for
 * dm-raid >= 1.11 (libdm-deptree.c _raid_emit_segment_line): the chunk size
 * (0 for raid1), then nosync, rebuild i, min/max_recovery_rate, write_mostly
 * i, max_write_behind, region_size; then the slots as "<rmeta> <rimage>",
 * "- -" for a slot whose image is on a missing PV. NOTSYNCED (lvcreate
 * --nosync) loads as nosync, an image flagged REBUILD as "rebuild <slot>".
 */
/** libdm-deptree.c _integrity_emit_segment_line: fix_padding, block_size and internal_hash always, then the set options. */
function integrityArgs(vg: VolumeGroup, seg: IntegritySegment): string[] {
  const st = seg.settings;
  const opts = ["fix_padding", `block_size:${seg.blockSize}`, `internal_hash:${seg.internalHash}`];
  if (seg.metaDev !== undefined) opts.push(`meta_device:${dmName(vg.name, seg.metaDev)}`);
  if (seg.recalculate) opts.push("recalculate");
  if (st.journalSectors !== undefined) opts.push(`journal_sectors:${st.journalSectors}`);
  if (st.interleaveSectors !== undefined) opts.push(`interleave_sectors:${st.interleaveSectors}`);
  if (st.bufferSectors !== undefined) opts.push(`buffer_sectors:${st.bufferSectors}`);
  if (st.journalWatermark !== undefined) opts.push(`journal_watermark:${st.journalWatermark}`);
  if (st.commitTime !== undefined) opts.push(`commit_time:${st.commitTime}`);
  if (st.bitmapFlushInterval !== undefined) opts.push(`bitmap_flush_interval:${st.bitmapFlushInterval}`);
  if (st.sectorsPerBit !== undefined) opts.push(`sectors_per_bit:${st.sectorsPerBit}`);
  if (st.allowDiscards) opts.push("allow_discards");
  return [dmName(vg.name, seg.origin), "0", String(seg.tagSize), seg.mode, String(opts.length), ...opts];
}

function raidLine(vg: VolumeGroup, lv: LogicalVolume, seg: RaidSegment, env: TableEnv, startSector: number, lengthSectors: number): TableLine {
  const params: string[] = [];
  if (lv.status.includes("NOTSYNCED")) params.push("nosync");
  const flagged = (flag: string): number[] =>
    seg.raids.flatMap((r, slot) => (findLv(vg, r.image)?.status.includes(flag) ? [slot] : []));
  for (const slot of flagged("REBUILD")) params.push("rebuild", String(slot));
  if (seg.minRecoveryRate) params.push("min_recovery_rate", String(seg.minRecoveryRate));
  if (seg.maxRecoveryRate) params.push("max_recovery_rate", String(seg.maxRecoveryRate));
  for (const slot of flagged("WRITEMOSTLY")) params.push("write_mostly", String(slot));
  if (seg.writeBehind) params.push("max_write_behind", String(seg.writeBehind));
  if (seg.regionSizeSectors) params.push("region_size", String(seg.regionSizeSectors));
  // POLICY: as for a mirror leg, an image (or its rmeta) on a missing PV is
  // left out of the live table; the metadata keeps it, its PV flagged MISSING.
  // dev_manager.c add_areas_line: a visible image without WRITE was split off with
  // --trackchanges; it loads as "- -" too, so that the bitmap keeps what changes meanwhile.
  const tracked = (r: RaidSegment["raids"][number]): boolean => {
    const image = findLv(vg, r.image);
    return image !== undefined && image.status.includes("VISIBLE") && !image.status.includes("WRITE");
  };
  const slots = seg.raids.map((r) => (!tracked(r) && lvUsable(vg, r.image, env) && (r.meta === undefined || lvUsable(vg, r.meta, env)) ? r : undefined));
  const live = slots.filter((r) => r !== undefined).length;
  if (live < slots.length && seg.raids.some((r, i) => slots[i] === undefined && !tracked(r))) {
    const gone = seg.raids.find((r, i) => slots[i] === undefined && !tracked(r))!;
    const missing = lvMissingPvOf(vg, gone.image, env, 0) ?? (gone.meta ? lvMissingPvOf(vg, gone.meta, env, 0) : undefined) ?? "";
    if (live === 0) {
      if (env.mode === "partial") return { startSector, lengthSectors, targetType: "error", args: [] };
      throw new MissingDeviceError(missing, lv.name);
    }
    if (env.mode === "complete") throw new MissingDeviceError(missing, lv.name);
  }
  // dm's target is "raid"; the level is its first argument.
  const args = ["raid1", String(params.length + 1), "0", ...params, String(slots.length)];
  for (const r of slots) {
    if (!r) args.push("-", "-");
    else args.push(r.meta ? dmName(vg.name, r.meta) : "-", dmName(vg.name, r.image));
  }
  return { startSector, lengthSectors, targetType: "raid", args };
}

export class UnsupportedSegmentError extends Error {
  constructor(readonly segType: string, readonly lvName: string) {
    super(`Can't activate LV ${lvName}: segment type ${segType} is not supported by ulvm.`);
  }
}

/** Does an LV (and everything under it) sit on PVs that are present? */
export function lvUsable(vg: VolumeGroup, name: string, env: TableEnv): boolean {
  return lvMissingPvOf(vg, name, env, 0) === undefined;
}

function lvMissingPvOf(vg: VolumeGroup, name: string, env: TableEnv, depth: number): string | undefined {
  const lv = findLv(vg, name);
  if (!lv || depth > 32) return undefined;
  for (const s of lv.segments) {
    const areas = isStripedSeg(s) ? s.stripes : isMirrorSeg(s) ? s.mirrors : [];
    for (const a of areas) {
      if (a.kind === "pv") {
        if (env.pvDevice(a.pvId) === undefined) return a.pvId;
      } else if (!isMirrorSeg(s)) {
        const m = lvMissingPvOf(vg, a.lvName, env, depth + 1);
        if (m) return m;
      } else if (s.mirrors.every((x) => lvMissingPvOf(vg, x.kind === "lv" ? x.lvName : "", env, depth + 1) !== undefined)) {
        return lvMissingPvOf(vg, a.lvName, env, depth + 1);
      }
    }
  }
  return undefined;
}

function areaUsable(vg: VolumeGroup, a: Area, env: TableEnv): boolean {
  return a.kind === "pv" ? env.pvDevice(a.pvId) !== undefined : lvUsable(vg, a.lvName, env);
}

function lvMissingPv(vg: VolumeGroup, a: Area, env: TableEnv): string | undefined {
  return a.kind === "pv" ? a.pvId : lvMissingPvOf(vg, a.lvName, env, 0);
}

export function lvTableLines(vg: VolumeGroup, lv: LogicalVolume, env: TableEnv): TableLine[] {
  return lv.segments.map((s) => segmentLine(vg, lv, s, env));
}
