import { statSync } from "node:fs";
import { formatId } from "../base/uuid.js";
import { formatSize, type UnitSpec } from "../base/units.js";
import type { FieldDef, ObjectType } from "./engine.js";
import { FIELD_ROWS, type FieldObject } from "./field-table.js";
import { allocName, copyPercent, hasFlag, lvAttr, mirrorImageInSync, pvAttr, raidActiveStatus, raidHealthy, raidSyncPercent, vgAttr } from "./lv-attr.js";
import { makePercent, percentText, PERCENT_100, PERCENT_INVALID } from "./percent.js";
import { formatLvTime } from "./time-format.js";
import { EMPTY, NUM_UNDEF, num, str, strList, type FieldKind, type Value } from "./value.js";
import type { LvView, PvSegView, PvView, SegView, VgView } from "./vg-view.js";

/**
 * How each report field is computed (lib/report/report.c's _*_disp functions),
 * keyed by field name. Objects follow lvm2's report_object(): a row carries a
 * VG, an LV, a segment, a PV and a PV segment as the report type needs; a PV
 * segment of free space carries no LV ("free" LV and segment in lvm2).
 */
export interface ReportEnv {
  units: UnitSpec;
  /** --nosuffix clears it. */
  suffix: boolean;
  /** ULVM_DEV_DIR with a trailing '/'. */
  devDir: string;
  /** --binary: binary fields as 0/1. */
  binary: boolean;
}

export interface ReportObject {
  env: ReportEnv;
  vgv: VgView | undefined;
  lvv: LvView | undefined;
  seg: SegView | undefined;
  pvv: PvView | undefined;
  pvseg: PvSegView | undefined;
}

/** lvm2's report types (report_type_t bits). */
export const RT = {
  VGS: 1, PVS: 2, LVS: 4, LABEL: 8, SEGS: 16, PVSEGS: 32, LVSINFO: 64, LVSSTATUS: 128, LVSINFOSTATUS: 256,
} as const;

export const REPORT_TYPES: readonly ObjectType[] = [
  { id: RT.VGS, desc: "Volume Group", prefix: "vg_" },
  { id: RT.LVS, desc: "Logical Volume", prefix: "lv_" },
  { id: RT.LVSINFO, desc: "Logical Volume Device Info", prefix: "lv_" },
  { id: RT.LVSSTATUS, desc: "Logical Volume Device Status", prefix: "lv_" },
  { id: RT.LVSINFOSTATUS, desc: "Logical Volume Device Info and Status Combined", prefix: "lv_" },
  { id: RT.PVS, desc: "Physical Volume", prefix: "pv_" },
  { id: RT.LABEL, desc: "Physical Volume Label", prefix: "pv_" },
  { id: RT.SEGS, desc: "Logical Volume Segment", prefix: "seg_" },
  { id: RT.PVSEGS, desc: "Physical Volume Segment", prefix: "pvseg_" },
];

const OBJECT_TYPE: Record<FieldObject, number> = {
  lv: RT.LVS, lvinfo: RT.LVSINFO, lvstatus: RT.LVSSTATUS, lvinfostatus: RT.LVSINFOSTATUS,
  label: RT.LABEL, pv: RT.PVS, vg: RT.VGS, seg: RT.SEGS, pvseg: RT.PVSEGS,
};

type Fn = (o: ReportObject) => Value;

// ---- helpers -------------------------------------------------------------

const size = (o: ReportObject, sectors: number): Value => ({ text: formatSize(sectors, o.env.units, o.env.suffix, "unit"), sort: sectors });
const undefNum: Value = { text: "", sort: NUM_UNDEF };
const minusOne: Value = { text: "-1", sort: NUM_UNDEF };
const pct = (p: number): Value => ({ text: percentText(p), sort: p });
const invalidPct = pct(PERCENT_INVALID);

/**
 * Cpy%Sync of an integrity image (lv.c lvseg_percent_with_info_and_seg_status,
 * SEG_STATUS_INTEGRITY): the tags' initialisation while it runs, blank before
 * it starts and once it is done (dm-integrity then reports "-").
 */
function integrityRecalcPct(l: { state?: { integrity?: { providedDataSectors: number; recalcSector: number | undefined } } | undefined }): Value {
  const st = l.state?.integrity;
  if (!st || !st.recalcSector) return invalidPct;
  if (st.recalcSector === st.providedDataSectors) return pct(PERCENT_100);
  return pct(makePercent(st.recalcSector, st.providedDataSectors));
}
const tags = (t: readonly string[]): Value => strList(t, ",", true);

/** _binary_disp: the word (or 1) when set, "" (or 0) otherwise. */
const bin = (o: ReportObject, set: boolean, word: string): Value =>
  o.env.binary ? { text: set ? "1" : "0", sort: set ? 1 : 0 } : { text: set ? word : "", sort: set ? 1 : 0 };
/** _binary_undef_disp. */
const binUndef = (o: ReportObject): Value => (o.env.binary ? minusOne : { text: "unknown", sort: NUM_UNDEF });

/** The `_iorig` LV under an integrity LV (lv_is_integrity's seg_lv(first_seg(lv), 0)). */
function integrityOriginView(l: LvView): LvView | undefined {
  const seg = l.integritySeg;
  return seg ? l.vgv.lvs.find((v) => v.name === seg.origin) : undefined;
}

/** _lvname_disp: hidden LVs in brackets, sorted by the bare name. */
export function lvNameValue(lvv: LvView): Value {
  return lvv.visible ? str(lvv.name) : str(`[${lvv.name}]`, lvv.name);
}

/** dm_build_dm_name: VG and LV joined by '-', with '-' inside names doubled. */
export function dmName(vg: string, lv: string): string {
  return `${vg.replace(/-/g, "--")}-${lv.replace(/-/g, "--")}`;
}

/**
 * LV fields. A PV segment of free space reports lvm2's "free" LV instead: no
 * name, visible, no segments, allocation policy unknown (`free`).
 */
const L = (fn: (l: LvView, o: ReportObject) => Value, free: Value | Fn = EMPTY): Fn => (o) =>
  o.lvv ? fn(o.lvv, o) : typeof free === "function" ? free(o) : free;
const freeVg = (o: ReportObject): string => o.vgv?.name ?? "";
const S = (fn: (s: SegView, o: ReportObject) => Value, free?: (o: ReportObject) => Value): Fn => (o) =>
  o.seg ? fn(o.seg, o) : free ? free(o) : EMPTY;
const P = (fn: (p: PvView, o: ReportObject) => Value): Fn => (o) => (o.pvv ? fn(o.pvv, o) : EMPTY);
/** VG fields; orphan PVs report lvm2's dummy VG (empty name, format lvm2). */
const V = (fn: (v: VgView, o: ReportObject) => Value, orphan: Value = EMPTY): Fn => (o) => (o.vgv ? fn(o.vgv, o) : orphan);

function lvLayoutRole(l: LvView): { layout: string[]; role: string[] } {
  const layout: string[] = [];
  const role: string[] = [];
  let pub = true;
  if (l.isMirrorImage) {
    role.push("mirror", "image");
    pub = false;
  } else if (l.isMirrorLog) {
    role.push("mirror", "log");
    if (l.isMirror) layout.push("mirror");
    pub = false;
  } else if (l.isPvmove) {
    role.push("pvmove");
    layout.push("mirror");
    pub = false;
  } else if (l.isMirror) layout.push("mirror");
  if (!layout.length) {
    let linear = false;
    let striped = false;
    for (const s of l.segs) {
      if (s.typeName === "linear") linear = true;
      else if (s.typeName === "striped") striped = true;
    }
    if (linear) layout.push("linear");
    if (striped) layout.push("striped");
    if (!linear && !striped) layout.push("unknown");
  }
  role.unshift(pub ? "public" : "private");
  return { layout, role };
}

/** _format_pvsegs: "dev(pe)" / "lv(0)" (devices) or "dev:a-b" / "lv:0-n" (pe ranges). */
export function segDevices(s: SegView, ranges: boolean): string[] {
  const vgv = s.lvv.vgv;
  return s.areas.map((a) => {
    let name: string;
    let start: number;
    let len: number;
    if (a.kind === "pv") {
      name = vgv.pvById.get(a.pvId)?.name ?? "[unknown]";
      start = a.startPe;
      len = s.areaExtents;
    } else {
      const sub = vgv.lvByName.get(a.lvName);
      name = a.lvName;
      // Debian's lvm2 (2.03.16) prints extent 0 for every LV area, also
      // for the areas of moved LVs over pvmove0 at other LEs (checked against it).
      start = 0;
      len = sub?.leCount ?? 0;
    }
    return ranges ? `${name}:${start}-${start + len - 1}` : `${name}(${start})`;
  });
}

/** lvm2's pvmove source PV of an LV, if it is a pvmove LV. */
function movePv(l: LvView): PvView | undefined {
  if (!l.isMirror) return undefined; // pvmove segments are mirror segments
  for (const s of l.segs) {
    if (s.mirror?.extentsMoved === undefined) continue;
    let a = s.areas[0];
    if (a?.kind === "lv") a = l.vgv.lvByName.get(a.lvName)?.segs[0]?.areas[0];
    if (a?.kind === "pv") return l.vgv.pvById.get(a.pvId);
  }
  return undefined;
}

function convertLv(l: LvView): LvView | undefined {
  const a = l.segs[0]?.areas[0];
  if (!l.isMirror || a?.kind !== "lv" || !/_mimagetmp_\d+$/.test(a.lvName)) return undefined;
  return l.vgv.lvByName.get(a.lvName);
}

function lvParent(l: LvView): LvView | undefined {
  if (l.visible) return undefined;
  return l.imageOf?.lvv ?? l.logOf?.lvv;
}

function readAhead(o: ReportObject, sectors: number | undefined): Value {
  if (sectors === undefined) return { text: "auto", sort: Number.MAX_VALUE };
  return size(o, sectors < 0 ? 0 : sectors);
}

let rdevCache: Map<string, { major: number; minor: number }> | undefined;
function devNumbers(p: PvView): { major: number; minor: number } | undefined {
  const name = p.device?.entry.name;
  if (!name) return undefined;
  rdevCache ??= new Map();
  let r = rdevCache.get(name);
  if (!r) {
    try {
      const st = statSync(name);
      const rdev = st.isBlockDevice() ? st.rdev : 0;
      r = { major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((Math.floor(rdev / 1048576) & 0xfff) << 8) };
    } catch {
      r = { major: 0, minor: 0 };
    }
    rdevCache.set(name, r);
  }
  return r;
}

// ---- the values ------------------------------------------------------------

const VALUES: Record<string, Fn> = {
  // LV
  lv_uuid: L((l) => str(formatId(l.lv.id))),
  lv_name: L((l) => lvNameValue(l)),
  lv_full_name: L((l) => str(`${l.vgv.name}/${l.name}`), (o) => str(`${freeVg(o)}/`)),
  lv_path: L(
    (l, o) => str(l.visible && l.segs[0]?.seg.type !== "thin-pool" ? `${o.env.devDir}${l.vgv.name}/${l.name}` : ""),
    (o) => str(freeVg(o) ? `${o.env.devDir}${freeVg(o)}/` : ""),
  ),
  lv_dm_path: L(
    (l, o) => str(`${o.env.devDir}mapper/${dmName(l.vgv.name, l.name)}`),
    (o) => str(freeVg(o) ? `${o.env.devDir}mapper/${dmName(freeVg(o), "")}` : ""),
  ),
  lv_parent: L((l) => {
    const p = lvParent(l);
    return p ? lvNameValue(p) : EMPTY;
  }),
  lv_layout: L((l) => strList(lvLayoutRole(l).layout), strList(["unknown"])),
  lv_role: L((l) => strList(lvLayoutRole(l).role), strList(["public"])),
  lv_initial_image_sync: L((l, o) => bin(o, l.isMirror && !l.notSynced, "initial image sync")),
  lv_image_synced: L((l, o) => bin(o, l.isMirrorImage && mirrorImageInSync(l), "image synced")),
  lv_merging: L((_l, o) => bin(o, false, "merging")),
  lv_converting: L((_l, o) => bin(o, false, "converting")),
  lv_allocation_policy: L((l) => str(allocName(l.lv.allocationPolicy, true)), str("unknown")),
  lv_allocation_locked: L((l, o) => bin(o, l.lv.status.includes("LOCKED"), "allocation locked")),
  lv_fixed_minor: L((l, o) => bin(o, l.lv.status.includes("FIXED_MINOR"), "fixed minor")),
  lv_skip_activation: L((l, o) => bin(o, hasFlag(l.lv, "ACTIVATION_SKIP"), "skip activation")),
  lv_autoactivation: L((l, o) => bin(o, !hasFlag(l.lv, "NOAUTOACTIVATE"), "enabled"), (o) => bin(o, true, "enabled")),
  lv_when_full: L(() => str("")),
  lv_active: L((l) => str(l.active ? "active" : "")),
  lv_active_locally: L((l, o) => bin(o, l.active, "active locally")),
  lv_active_remotely: L((_l, o) => bin(o, false, "active remotely")),
  lv_active_exclusively: L((l, o) => bin(o, l.active, "active exclusively")),
  lv_major: L((l) => num(l.lv.major ?? -1), minusOne),
  lv_minor: L((l) => num(l.lv.minor ?? -1), minusOne),
  lv_read_ahead: L((l, o) => readAhead(o, l.lv.readAheadSectors), (o) => size(o, 0)),
  lv_size: L((l, o) => size(o, l.sizeSectors), (o) => size(o, 0)),
  lv_metadata_size: L(() => undefNum),
  seg_count: L((l) => num(l.segs.length), num(0)),
  // _origin_disp and friends: ulvm has no snapshots; an integrity LV's origin is its _iorig.
  origin: L((l) => {
    const o = integrityOriginView(l);
    return o ? lvNameValue(o) : EMPTY;
  }),
  origin_uuid: L((l) => {
    const o = integrityOriginView(l);
    return o ? str(formatId(o.lv.id)) : EMPTY;
  }),
  origin_size: L((l, o) => {
    const v = integrityOriginView(l);
    return v ? size(o, v.sizeSectors) : { text: "", sort: 0 };
  }),
  lv_ancestors: L(() => strList([])),
  lv_full_ancestors: L(() => strList([])),
  lv_descendants: L(() => strList([])),
  lv_full_descendants: L(() => strList([])),
  raid_mismatch_count: L((l) => {
    const st = raidActiveStatus(l);
    return st ? num(st.mismatchCount) : undefNum;
  }, undefNum),
  raid_sync_action: L((l) => str(raidActiveStatus(l)?.syncAction ?? "")),
  raid_mismatch_places: L((l) => {
    const sc = raidActiveStatus(l)?.scrub;
    if (!sc) return strList([]);
    const items = sc.places.map((p) => `${p.sector}+${p.sectors}${p.legs.map((x) => `@${x}`).join("")}${p.readError ? "!" : ""}`);
    if (sc.placesOmitted > 0) items.push(`+${sc.placesOmitted}more`);
    return strList(items);
  }),
  // _raidwritebehind_disp and friends: first_seg(lv)'s value when the LV is raid type and it is set.
  raid_write_behind: L((l) => (l.raidSeg?.writeBehind ? num(l.raidSeg.writeBehind) : undefNum)),
  raid_min_recovery_rate: L((l) => (l.raidSeg?.minRecoveryRate ? num(l.raidSeg.minRecoveryRate) : undefNum)),
  raid_max_recovery_rate: L((l) => (l.raidSeg?.maxRecoveryRate ? num(l.raidSeg.maxRecoveryRate) : undefNum)),
  // _raidintegritymode_disp / _raidintegrityblocksize_disp: the raid LV's first image's settings, or the integrity LV's own.
  raidintegritymode: L((l) => {
    const mode = (l.raidIntegritySeg ?? l.integritySeg)?.mode[0];
    return str(mode === "B" ? "bitmap" : mode === "J" ? "journal" : "");
  }),
  raidintegrityblocksize: L((l) => {
    const s = l.raidIntegritySeg ?? l.integritySeg;
    return s ? num(s.blockSize) : minusOne;
  }, minusOne),
  // _integritymismatches_disp: an integrity LV's dm-integrity count; a raid LV's sum over its images
  // (lv_raid_integrity_total_mismatches); blank when inactive.
  integritymismatches: L((l) => {
    if (l.integritySeg) return l.state?.integrity ? num(l.state.integrity.mismatches) : undefNum;
    if (!l.raidIntegritySeg || !l.raidSeg) return undefNum;
    let total = 0;
    for (const r of l.raidSeg.raids) {
      const img = l.vgv.lvs.find((v) => v.name === r.image);
      const st = img?.state?.integrity;
      if (!st) return undefNum;
      total += st.mismatches;
    }
    return num(total);
  }),
  move_pv: L((l) => str(movePv(l)?.name ?? "")),
  move_pv_uuid: L((l) => {
    const p = movePv(l);
    return str(p ? formatId(p.id) : "");
  }),
  convert_lv: L((l) => {
    const c = convertLv(l);
    return c ? lvNameValue(c) : EMPTY;
  }),
  convert_lv_uuid: L((l) => str(convertLv(l) ? formatId(convertLv(l)!.lv.id) : "")),
  mirror_log: L((l) => {
    const log = l.mirrorLog;
    return log ? lvNameValue(log) : EMPTY;
  }),
  mirror_log_uuid: L((l) => str(l.mirrorLog ? formatId(l.mirrorLog.lv.id) : "")),
  data_lv: L(() => EMPTY),
  data_lv_uuid: L(() => EMPTY),
  metadata_lv: L(() => EMPTY),
  metadata_lv_uuid: L(() => EMPTY),
  pool_lv: L(() => EMPTY),
  pool_lv_uuid: L(() => EMPTY),
  lv_tags: L((l) => tags(l.lv.tags), strList([])),
  lv_profile: L((l) => str(l.lv.profile ?? "")),
  lv_lockargs: L((l) => str(l.lv.lockArgs ?? "")),
  lv_time: L((l) => ({ text: formatLvTime(l.lv.creationTime), sort: l.lv.creationTime ?? 0 }), { text: "", sort: 0 }),
  lv_time_removed: L(() => ({ text: "", sort: 0 }), { text: "", sort: 0 }),
  lv_host: L((l) => str(l.lv.creationHost ?? "")),
  lv_modules: L((l) => strList(l.isMirror || l.isPvmove ? ["mirror"] : [], ",", true), strList([])),
  lv_historical: L((_l, o) => bin(o, false, "historical")),
  writecache_block_size: L(() => minusOne, minusOne),

  // LV with device info
  lv_kernel_major: L((l) => num(l.state && l.state.major !== undefined && l.state.major >= 0 ? l.state.major : -1), minusOne),
  lv_kernel_minor: L((l) => num(l.state && l.state.minor !== undefined && l.state.minor >= 0 ? l.state.minor : -1), minusOne),
  lv_kernel_read_ahead: L((l, o) => (l.state ? size(o, l.state.readAheadSectors ?? 0) : minusOne), minusOne),
  lv_permissions: L((l) => {
    if (l.isPvmove) return EMPTY;
    if (l.lv.status.includes("WRITE")) return str(!l.state ? "unknown" : l.state.readOnly ? "read-only-override" : "writeable");
    return str(l.lv.status.includes("READ") ? "read-only" : "unknown");
  }, str("unknown")),
  lv_suspended: L((l, o) => (l.state ? bin(o, l.state.suspended, "suspended") : binUndef(o)), binUndef),
  lv_live_table: L((l, o) => (l.state ? bin(o, l.state.active, "live table present") : binUndef(o)), binUndef),
  lv_inactive_table: L((l, o) => (l.state ? bin(o, false, "inactive table present") : binUndef(o)), binUndef),
  lv_device_open: L((l, o) => (l.state ? bin(o, l.state.openCount > 0, "open") : binUndef(o)), binUndef),

  // LV with device status
  data_percent: L(() => invalidPct, invalidPct),
  snap_percent: L(() => invalidPct, invalidPct),
  metadata_percent: L(() => invalidPct, invalidPct),
  copy_percent: L((l) => (l.integritySeg ? integrityRecalcPct(l) : l.raidSeg ? pct(raidSyncPercent(l)) : l.isMirror ? pct(copyPercent(l)) : invalidPct), invalidPct),
  sync_percent: L((l) => (l.integritySeg ? integrityRecalcPct(l) : l.raidSeg ? pct(raidSyncPercent(l)) : l.isMirror ? pct(copyPercent(l)) : invalidPct), invalidPct),
  cache_total_blocks: L(() => undefNum),
  cache_used_blocks: L(() => undefNum),
  cache_dirty_blocks: L(() => undefNum),
  cache_read_hits: L(() => undefNum),
  cache_read_misses: L(() => undefNum),
  cache_write_hits: L(() => undefNum),
  cache_write_misses: L(() => undefNum),
  kernel_cache_settings: L(() => strList([])),
  kernel_cache_policy: L(() => EMPTY),
  kernel_metadata_format: L(() => undefNum),
  // _lvhealthstatus_disp (lvm2 says "unknown" without activation; ulvm always knows: inactive is healthy).
  lv_health_status: L((l) => {
    if (l.partial) return str("partial");
    if (!l.isRaidType) return str("");
    if (!raidHealthy(l)) return str("refresh needed");
    if (l.raidSeg) return str((raidActiveStatus(l)?.mismatchCount ?? 0) > 0 ? "mismatches exist" : "");
    return str(!l.raidOf?.meta && l.lv.status.includes("WRITEMOSTLY") ? "writemostly" : "");
  }),
  kernel_discards: L(() => EMPTY),
  lv_check_needed: L((_l, o) => binUndef(o), binUndef),
  lv_merge_failed: L((_l, o) => binUndef(o), binUndef),
  lv_snapshot_invalid: L((_l, o) => binUndef(o), binUndef),
  vdo_operating_mode: L(() => undefNum),
  vdo_compression_state: L(() => undefNum),
  vdo_index_state: L(() => undefNum),
  vdo_used_size: L(() => undefNum),
  vdo_saving_percent: L(() => undefNum),
  writecache_total_blocks: L(() => undefNum),
  writecache_free_blocks: L(() => undefNum),
  writecache_writeback_blocks: L(() => undefNum),
  writecache_error: L(() => undefNum),
  lv_attr: L((l) => str(lvAttr(l))),

  // PV label
  pv_fmt: P((p) => str(p.pv || p.device?.label ? "lvm2" : "")),
  pv_uuid: P((p) => str(p.id ? formatId(p.id) : "")),
  dev_size: P((p, o) => size(o, p.devSizeSectors)),
  pv_name: P((p) => str(p.name)),
  pv_major: P((p) => num(devNumbers(p)?.major ?? 0)),
  pv_minor: P((p) => num(devNumbers(p)?.minor ?? 0)),
  pv_mda_free: P((p, o) => size(o, p.mdas.minFreeSectors)),
  pv_mda_size: P((p, o) => size(o, p.mdas.minSizeSectors)),
  pv_ext_vsn: P((p) => (p.device?.label ? num(p.device.label.extVersion) : undefNum)),

  // PV
  pe_start: P((p, o) => size(o, p.peStartSectors)),
  pv_size: P((p, o) => size(o, p.reportSizeSectors)),
  pv_free: P((p, o) => size(o, p.freeSectors)),
  pv_used: P((p, o) => size(o, p.peCount ? p.allocExtents * p.peSizeSectors : 0)),
  pv_attr: P((p) => str(pvAttr(p))),
  pv_allocatable: P((p, o) => bin(o, p.allocatable, "allocatable")),
  pv_exported: P((p, o) => bin(o, p.exported, "exported")),
  pv_missing: P((p, o) => bin(o, p.missing, "missing")),
  pv_pe_count: P((p) => num(p.peCount)),
  pv_pe_alloc_count: P((p) => num(p.allocExtents)),
  pv_tags: P((p) => tags(p.pv?.tags ?? [])),
  pv_mda_count: P((p) => num(p.mdas.count)),
  pv_mda_used_count: P((p) => num(p.mdas.usedCount)),
  pv_ba_start: P((p, o) => size(o, p.pv?.baStartSectors ?? Math.floor((p.device?.label?.bootloaderAreas[0]?.offsetBytes ?? 0) / 512))),
  pv_ba_size: P((p, o) => size(o, p.pv?.baSizeSectors ?? Math.floor((p.device?.label?.bootloaderAreas[0]?.sizeBytes ?? 0) / 512))),
  pv_in_use: P((p, o) => bin(o, p.used, "used")),
  pv_duplicate: P((_p, o) => bin(o, false, "duplicate")),
  pv_device_id: P((p) => str(p.pv?.deviceId ?? "")),
  pv_device_id_type: P((p) => str(p.pv?.deviceIdType ?? "")),

  // VG
  vg_fmt: V(() => str("lvm2"), str("lvm2")),
  vg_uuid: V((v) => str(formatId(v.vg.id))),
  vg_name: V((v) => str(v.name)),
  vg_attr: V((v) => str(vgAttr(v)), str("r-----")),
  vg_permissions: V((v) => str(v.vg.status.includes("WRITE") ? "writeable" : "read-only"), str("read-only")),
  vg_extendable: V((v, o) => bin(o, v.vg.status.includes("RESIZEABLE"), "extendable"), { text: "", sort: 0 }),
  vg_exported: V((v, o) => bin(o, v.exported, "exported"), { text: "", sort: 0 }),
  vg_autoactivation: V((v, o) => bin(o, !hasFlag(v.vg, "NOAUTOACTIVATE"), "enabled"), { text: "enabled", sort: 1 }),
  vg_partial: V((v, o) => bin(o, v.missingPvCount > 0, "partial"), { text: "", sort: 0 }),
  vg_allocation_policy: V((v) => str(allocName(v.vg.allocationPolicy, false)), str("unknown")),
  vg_clustered: V((v, o) => bin(o, v.vg.status.includes("CLUSTERED"), "clustered"), { text: "", sort: 0 }),
  vg_shared: V((v, o) => bin(o, !!v.vg.lockType && v.vg.lockType !== "none", "shared"), { text: "", sort: 0 }),
  vg_size: V((v, o) => size(o, v.extentCount * v.vg.extentSizeSectors), { text: "0 ", sort: 0 }),
  vg_free: V((v, o) => size(o, v.freeExtents * v.vg.extentSizeSectors), { text: "0 ", sort: 0 }),
  vg_sysid: V((v) => str(v.vg.systemId ?? "")),
  vg_systemid: V((v) => str(v.vg.systemId ?? "")),
  vg_lock_type: V((v) => str(v.vg.lockType && v.vg.lockType !== "none" ? v.vg.lockType : "")),
  vg_lock_args: V((v) => str(v.vg.lockArgs ?? "")),
  vg_extent_size: V((v, o) => size(o, v.vg.extentSizeSectors), { text: "0 ", sort: 0 }),
  vg_extent_count: V((v) => num(v.extentCount), num(0)),
  vg_free_count: V((v) => num(v.freeExtents), num(0)),
  max_lv: V((v) => num(v.vg.maxLv), num(0)),
  max_pv: V((v) => num(v.vg.maxPv), num(0)),
  pv_count: V((v) => num(v.pvs.length), num(0)),
  vg_missing_pv_count: V((v) => num(v.missingPvCount), num(0)),
  lv_count: V((v) => num(v.visibleLvCount), num(0)),
  snap_count: V(() => num(0), num(0)),
  vg_seqno: V((v) => num(v.vg.seqno), num(0)),
  vg_tags: V((v) => tags(v.vg.tags), strList([])),
  vg_profile: V((v) => str(v.vg.profile ?? "")),
  vg_mda_count: V((v) => num(v.mdas().count), num(0)),
  vg_mda_used_count: V((v) => num(v.mdas().usedCount), num(0)),
  vg_mda_free: V((v, o) => size(o, v.mdas().inUseMinFreeSectors), { text: "0 ", sort: 0 }),
  vg_mda_size: V((v, o) => size(o, v.mdas().inUseMinSizeSectors), { text: "0 ", sort: 0 }),
  vg_mda_copies: V((v) => (v.vg.metadataCopies ? num(v.vg.metadataCopies) : { text: "unmanaged", sort: NUM_UNDEF }), { text: "unmanaged", sort: NUM_UNDEF }),

  // LV segment
  segtype: S((s) => str(s.typeName), () => str("free")),
  stripes: S((s) => num(s.areas.length), () => num(0)),
  data_stripes: S((s) => num(s.areas.length), () => num(0)),
  reshape_len: S(() => undefNum, () => undefNum),
  reshape_len_le: S(() => undefNum, () => undefNum),
  data_copies: S(() => num(1), () => undefNum),
  data_offset: S(() => undefNum, () => undefNum),
  new_data_offset: S(() => undefNum, () => undefNum),
  parity_chunks: S(() => undefNum, () => num(4294967295)),
  stripe_size: S((s, o) => size(o, s.stripeSizeSectors), (o) => size(o, 0)),
  region_size: S((s, o) => size(o, s.regionSizeSectors), (o) => size(o, 0)),
  chunk_size: S((_s, o) => size(o, 0), (o) => size(o, 0)),
  thin_count: S(() => undefNum, () => undefNum),
  discards: S(() => EMPTY),
  cache_metadata_format: S(() => undefNum, () => undefNum),
  cache_mode: S(() => EMPTY),
  zero: S((_s, o) => binUndef(o), (o) => binUndef(o)),
  transaction_id: S(() => undefNum, () => undefNum),
  thin_id: S(() => undefNum, () => undefNum),
  seg_start: S((s, o) => size(o, s.seg.startExtent * s.lvv.vgv.vg.extentSizeSectors), (o) => size(o, 0)),
  seg_start_pe: S((s) => num(s.seg.startExtent), () => num(0)),
  seg_size: S(
    (s, o) => size(o, s.seg.extentCount * s.lvv.vgv.vg.extentSizeSectors),
    (o) => size(o, (o.pvseg?.lengthExtents ?? 0) * (o.vgv?.vg.extentSizeSectors ?? 0)),
  ),
  seg_size_pe: S((s) => num(s.seg.extentCount), (o) => num(o.pvseg?.lengthExtents ?? 0)),
  seg_tags: S((s) => tags(s.seg.tags), () => strList([])),
  seg_pe_ranges: S((s) => strList(segDevices(s, true), " "), () => strList([])),
  seg_le_ranges: S((s) => strList(segLeRanges(s), ","), () => strList([])),
  seg_metadata_le_ranges: S(() => strList([]), () => strList([])),
  devices: S((s) => strList(segDevices(s, false), ","), () => strList([])),
  metadata_devices: S(() => strList([]), () => strList([])),
  seg_monitor: S((s) => str(s.mirror ? (s.lvv.state?.monitoring ?? "") : ""), () => EMPTY),
  cache_policy: S(() => EMPTY),
  cache_settings: S(() => strList([]), () => strList([])),
  vdo_compression: S((_s, o) => bin(o, false, "enabled"), (o) => bin(o, false, "enabled")),
  vdo_deduplication: S((_s, o) => bin(o, false, "enabled"), (o) => bin(o, false, "enabled")),
  vdo_use_metadata_hints: S((_s, o) => bin(o, false, "enabled"), (o) => bin(o, false, "enabled")),
  vdo_minimum_io_size: S(() => undefNum, () => undefNum),
  vdo_block_map_cache_size: S(() => undefNum, () => undefNum),
  vdo_block_map_era_length: S(() => undefNum, () => undefNum),
  vdo_use_sparse_index: S((_s, o) => bin(o, false, "enabled"), (o) => bin(o, false, "enabled")),
  vdo_index_memory_size: S(() => undefNum, () => undefNum),
  vdo_slab_size: S(() => undefNum, () => undefNum),
  vdo_ack_threads: S(() => undefNum, () => undefNum),
  vdo_bio_threads: S(() => undefNum, () => undefNum),
  vdo_bio_rotation: S(() => undefNum, () => undefNum),
  vdo_cpu_threads: S(() => undefNum, () => undefNum),
  vdo_hash_zone_threads: S(() => undefNum, () => undefNum),
  vdo_logical_threads: S(() => undefNum, () => undefNum),
  vdo_physical_threads: S(() => undefNum, () => undefNum),
  vdo_max_discard: S(() => undefNum, () => undefNum),
  vdo_write_policy: S(() => EMPTY),
  vdo_header_size: S(() => undefNum, () => undefNum),

  // PV segment
  pvseg_start: (o) => num(o.pvseg?.startPe ?? 0),
  pvseg_size: (o) => num(o.pvseg?.lengthExtents ?? 0),
};

/** seg_le_ranges: like seg_pe_ranges, hidden LVs in brackets, joined by ','. */
function segLeRanges(s: SegView): string[] {
  const ranges = segDevices(s, true);
  return ranges.map((r, i) => {
    const a = s.areas[i]!;
    if (a.kind !== "lv") return r;
    const sub = s.lvv.vgv.lvByName.get(a.lvName);
    return sub && !sub.visible ? `[${a.lvName}]${r.slice(a.lvName.length)}` : r;
  });
}

const KIND: Record<string, FieldKind> = { STR: "STR", NUM: "NUM", BIN: "NUM", SIZ: "SIZ", PCT: "PCT", TIM: "TIM", STR_LIST: "STR_LIST", SNUM: "NUM" };

const RESERVED: Record<string, ReadonlyArray<{ names: readonly string[]; value: number | string }>> = {
  lv_read_ahead: [{ names: ["auto"], value: Number.MAX_VALUE }],
  lv_when_full: [{ names: ["", "undefined"], value: "" }],
  vg_mda_copies: [{ names: ["unmanaged"], value: NUM_UNDEF }],
  vg_permissions: [
    { names: ["writeable", "rw", "read-write"], value: "writeable" },
    { names: ["read-only", "r", "ro"], value: "read-only" },
  ],
  lv_permissions: [
    { names: ["writeable", "rw", "read-write"], value: "writeable" },
    { names: ["read-only", "r", "ro"], value: "read-only" },
    { names: ["read-only-override", "ro-override", "r-override", "R"], value: "read-only-override" },
  ],
};
const BINARY_WORDS: Record<string, readonly string[]> = {
  pv_allocatable: ["allocatable"], pv_exported: ["exported"], pv_missing: ["missing"], pv_in_use: ["used", "in use"],
  pv_duplicate: ["duplicate"], vg_extendable: ["extendable"], vg_exported: ["exported"], vg_partial: ["partial"],
  vg_clustered: ["clustered"], vg_shared: ["shared"], lv_initial_image_sync: ["initial image sync", "sync"],
  lv_image_synced: ["image synced", "synced"], lv_merging: ["merging"], lv_converting: ["converting"],
  lv_allocation_locked: ["allocation locked", "locked"], lv_fixed_minor: ["fixed minor", "fixed"],
  lv_active_locally: ["active locally", "active", "locally"], lv_active_remotely: ["active remotely", "active", "remotely"],
  lv_active_exclusively: ["active exclusively", "active", "exclusively"], lv_merge_failed: ["merge failed", "failed"],
  lv_snapshot_invalid: ["snapshot invalid", "invalid"], lv_suspended: ["suspended"],
  lv_live_table: ["live table present", "live table", "live"], lv_inactive_table: ["inactive table present", "inactive table", "inactive"],
  lv_device_open: ["open"], lv_skip_activation: ["skip activation", "skip"], zero: ["zero"], lv_check_needed: ["check needed", "needed"],
};

/** The field table: columns.h rows joined with their value functions. */
/** Fields lvm2 does not have (their descriptions say so): out of `-o help` and `-o all`. */
const ULVM_ONLY_FIELDS: ReadonlySet<string> = new Set(["raid_mismatch_places"]);

export const REPORT_FIELDS: readonly FieldDef<ReportObject>[] = FIELD_ROWS.filter((r) => VALUES[r[4]] !== undefined).map((r) => {
  const [obj, kind, heading, width, id, desc] = r;
  const words = BINARY_WORDS[id];
  const reserved = RESERVED[id] ?? (words ? [{ names: [...words, "yes"], value: 1 }, { names: [...words, "no"], value: 0 }] : undefined);
  return {
    type: OBJECT_TYPE[obj],
    kind: KIND[kind]!,
    heading,
    width,
    id,
    desc,
    ...(ULVM_ONLY_FIELDS.has(id) ? { unlisted: true } : {}),
    value: VALUES[id]!,
    ...(reserved ? { reserved } : {}),
  };
});
