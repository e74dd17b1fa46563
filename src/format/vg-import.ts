import { FormatError } from "../errors/errors.js";
import { formatId, parseId } from "../base/uuid.js";
import type { ConfigNode, ConfigScalar, ConfigSection, ConfigSetting } from "./text/config-tree.js";
import { findNode, findSection, findSetting, subsections } from "./text/config-tree.js";
import { parseConfig } from "./text/parser.js";
import type { Area, IntegritySettings, LogicalVolume, PhysicalVolume, RaidImage, Segment, VolumeGroup } from "../model/types.js";
import { LV_FLAG_WORDS, PV_FLAG_WORDS, VG_FLAG_WORDS, LV_SEGTYPE_FLAG_WORDS } from "./flags.js";

/**
 * Text metadata (LVM2 "Text Format Volume Group", version 1) → VolumeGroup.
 * Follows lib/format_text/import_vsn1.c: the first top-level section is the VG,
 * header keys may sit anywhere at top level, every sub-section of an LV is a
 * segment, area names resolve to PV section names first, then LV names.
 */
export interface ImportedVg {
  vg: VolumeGroup;
  description: string | undefined;
  creationHost: string | undefined;
  creationTime: number | undefined;
}

function fail(message: string, node?: ConfigNode): never {
  throw new FormatError(message, node ? { line: node.line } : {});
}

function getInt(sec: ConfigSection, key: string): number | undefined {
  const s = findSetting(sec, key);
  if (!s) return undefined;
  if (s.value.kind !== "int") return undefined;
  return s.value.value;
}

function requireUint(sec: ConfigSection, key: string, message: string, max = 0xffffffff): number {
  const s = findSetting(sec, key);
  if (!s || s.value.kind !== "int" || s.value.value < 0 || s.value.value > max) fail(message, s ?? sec);
  return s.value.value;
}

function optUint(sec: ConfigSection, key: string, message: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const s = findSetting(sec, key);
  if (!s) return undefined;
  if (s.value.kind !== "int" || s.value.value < 0 || s.value.value > max) fail(message, s);
  return s.value.value;
}

function getStr(sec: ConfigSection, key: string): string | undefined {
  const s = findSetting(sec, key);
  if (!s || s.value.kind !== "string") return undefined;
  return s.value.value;
}

function stringList(s: ConfigSetting, message: string): string[] {
  const items: readonly ConfigScalar[] = s.value.kind === "array" ? s.value.items : [s.value];
  const out: string[] = [];
  for (const it of items) {
    if (it.kind !== "string") fail(message, s);
    out.push(it.value);
  }
  return out;
}

function readId(sec: ConfigSection, message: string): string {
  const s = findSetting(sec, "id");
  if (!s || s.value.kind !== "string") fail(message, s ?? sec);
  const raw = parseId(s.value.value);
  if (!raw) fail("Invalid uuid.", s);
  return raw;
}

/** status (required) and flags (optional): known words only in status; unknown flags are dropped, as lvm2 does. */
function readFlags(sec: ConfigSection, table: Record<string, "status" | "compat" | "both">, what: string): { status: string[]; flags: string[] } {
  const st = findSetting(sec, "status");
  if (!st) fail(`Couldn't read status flags for ${what}.`, sec);
  const status = stringList(st, `Couldn't read status flags for ${what}.`);
  for (const w of status) {
    const kind = table[w];
    if (kind === undefined || kind === "compat") {
      // MISSING is accepted in status for old metadata; PARTIAL in old VG backups.
      if (w === "PARTIAL") continue;
      fail(`Unknown status flag '${w}'.`, st);
    }
  }
  const fl = findSetting(sec, "flags");
  const flags = fl ? stringList(fl, `Could not read flags.`).filter((w) => table[w] !== undefined) : [];
  return { status: status.filter((w) => w !== "PARTIAL"), flags };
}

function readTags(sec: ConfigSection, message: string): string[] {
  const t = findSetting(sec, "tags");
  return t ? stringList(t, message) : [];
}

function readPv(sec: ConfigSection): PhysicalVolume {
  if (sec.children.length === 0) fail("Empty pv section.", sec);
  const id = readId(sec, "Couldn't read uuid for physical volume.");
  const { status, flags } = readFlags(sec, PV_FLAG_WORDS, "physical volume");
  // MISSING may appear in status in old metadata: normalise it into flags.
  const statusClean = status.filter((w) => w !== "MISSING");
  const flagsAll = status.includes("MISSING") && !flags.includes("MISSING") ? [...flags, "MISSING"] : flags;
  const devSize = optUint(sec, "dev_size", "Couldn't read dev size for physical volume.");
  const peStart = findSetting(sec, "pe_start");
  if (!peStart || peStart.value.kind !== "int" || peStart.value.value < 0) fail("Couldn't read extent start value (pe_start) for physical volume.", sec);
  const peCount = findSetting(sec, "pe_count");
  if (!peCount || peCount.value.kind !== "int" || peCount.value.value < 0 || peCount.value.value > 0xffffffff) fail("Couldn't find extent count (pe_count) for physical volume.", sec);
  const baStart = optUint(sec, "ba_start", "Found incomplete bootloader area specification for PV.");
  const baSize = optUint(sec, "ba_size", "Found incomplete bootloader area specification for PV.");
  if ((baStart === undefined) !== (baSize === undefined)) fail(`Found incomplete bootloader area specification for PV.`, sec);
  return {
    id,
    deviceHint: getStr(sec, "device"),
    deviceIdType: getStr(sec, "device_id_type"),
    deviceId: getStr(sec, "device_id"),
    status: statusClean,
    flags: flagsAll,
    tags: readTags(sec, `Couldn't read tags for physical volume ${formatId(id)}.`),
    devSizeSectors: devSize ?? 0,
    peStartSectors: peStart.value.value,
    peCount: peCount.value.value,
    baStartSectors: baStart,
    baSizeSectors: baSize,
  };
}

const COMMON_SEG_KEYS = new Set(["start_extent", "extent_count", "type", "tags", "reshape_count", "data_copies"]);

function readAreas(sec: ConfigSection, key: string, pvNames: Map<string, string>, lvNames: Set<string>, lvName: string): Area[] {
  const s = findSetting(sec, key);
  if (!s || s.value.kind !== "array") fail(`Couldn't find ${key} array for segment ${sec.name} of logical volume ${lvName}.`, s ?? sec);
  const items = s.value.items;
  if (items.length === 0) fail(`Zero areas not allowed for segment ${sec.name}`, s);
  const out: Area[] = [];
  for (let i = 0; i < items.length; i += 2) {
    const nameV = items[i]!;
    const offV = items[i + 1];
    if (nameV.kind !== "string") fail(`Bad volume name in areas array for segment ${sec.name}.`, s);
    if (!offV) fail(`Missing offset in areas array for segment ${sec.name}.`, s);
    if (offV.kind !== "int" || offV.value < 0 || offV.value > 0xffffffff) fail(`Bad offset in areas array for segment ${sec.name}.`, s);
    const pvId = pvNames.get(nameV.value);
    if (pvId !== undefined) out.push({ kind: "pv", pvId, startPe: offV.value });
    else if (lvNames.has(nameV.value)) out.push({ kind: "lv", lvName: nameV.value, startLe: offV.value });
    else fail(`Couldn't find volume '${nameV.value}' for segment '${sec.name}'.`, s);
  }
  return out;
}

function readSegment(sec: ConfigSection, lvName: string, pvNames: Map<string, string>, lvNames: Set<string>): Segment {
  if (sec.children.length === 0) fail("Empty segment section.", sec);
  const startExtent = requireUint(sec, "start_extent", `Couldn't read 'start_extent' for segment '${sec.name}' of logical volume ${lvName}.`);
  const extentCount = requireUint(sec, "extent_count", `Couldn't read 'extent_count' for segment '${sec.name}' of logical volume ${lvName}.`);
  const typeS = findSetting(sec, "type");
  if (!typeS) fail(`Couldn't read segtype for logical volume ${lvName}.`, sec);
  if (typeS.value.kind !== "string") fail("Segment type must be a string.", typeS);
  const [typeName = "", ...typeFlags] = typeS.value.value.split("+");
  for (const f of typeFlags) if (!LV_SEGTYPE_FLAG_WORDS.has(f)) fail(`Unknown segment type flag ${f}.`, typeS);
  const tags = readTags(sec, `Couldn't read tags for a segment of ${lvName}.`);
  const common = { startExtent, extentCount, tags, typeFlags };
  if (typeName === "striped" && typeFlags.length === 0) {
    const stripeCount = requireUint(sec, "stripe_count", `Couldn't read 'stripe_count' for segment '${sec.name}' of logical volume ${lvName}.`);
    let stripeSize = 0;
    if (stripeCount > 1) stripeSize = requireUint(sec, "stripe_size", `Couldn't read stripe_size for segment ${sec.name} of logical volume ${lvName}.`);
    const stripes = readAreas(sec, "stripes", pvNames, lvNames, lvName);
    if (stripes.length !== stripeCount) fail(`Incorrect number of areas in area array for segment '${sec.name}'.`, sec);
    if (extentCount % stripeCount !== 0) fail(`Segment extent count ${extentCount} not divisible by stripe count ${stripeCount} in LV ${lvName}.`, sec);
    return { ...common, type: "striped", stripeSizeSectors: stripeSize, stripes };
  }
  if (typeName === "mirror" && typeFlags.length === 0) {
    const mirrorCount = requireUint(sec, "mirror_count", `Couldn't read 'mirror_count' for segment '${sec.name}'.`);
    const extentsMoved = optUint(sec, "extents_moved", `Couldn't read 'extents_moved' for segment ${sec.name} of logical volume ${lvName}.`, 0xffffffff);
    const regionSize = optUint(sec, "region_size", `Couldn't read 'region_size' for segment ${sec.name} of logical volume ${lvName}.`, 0xffffffff);
    const logS = findSetting(sec, "mirror_log");
    let mirrorLog: string | undefined;
    if (logS) {
      if (logS.value.kind !== "string" || !lvNames.has(logS.value.value)) fail(`Unrecognised mirror log in segment ${sec.name} of logical volume ${lvName}.`, logS);
      mirrorLog = logS.value.value;
      if (!regionSize) fail(`Missing region size for mirror log for segment ${sec.name} of logical volume ${lvName}.`, sec);
    }
    const mirrors = readAreas(sec, "mirrors", pvNames, lvNames, lvName);
    if (mirrors.length !== mirrorCount) fail(`Incorrect number of areas in area array for segment '${sec.name}'.`, sec);
    return { ...common, type: "mirror", mirrorLog, regionSizeSectors: regionSize ?? 0, extentsMoved, mirrors };
  }
  if (typeName === "raid1" && typeFlags.length === 0) return readRaid1(sec, lvName, lvNames, common);
  if (typeName === "integrity" && typeFlags.length === 0) return readIntegrity(sec, lvName, lvNames, common);
  // Unknown to this version: keep the text, collect areas from any list of (name, offset) pairs.
  const raw = sec.children.filter((c) => !COMMON_SEG_KEYS.has(c.name));
  const areas: Area[] = [];
  for (const c of raw) {
    if (c.kind !== "setting" || c.value.kind !== "array") continue;
    const items = c.value.items;
    for (let i = 0; i + 1 < items.length; i += 2) {
      const n = items[i]!;
      const o = items[i + 1]!;
      if (n.kind !== "string" || o.kind !== "int") continue;
      const pvId = pvNames.get(n.value);
      if (pvId !== undefined) areas.push({ kind: "pv", pvId, startPe: o.value });
      else if (lvNames.has(n.value)) areas.push({ kind: "lv", lvName: n.value, startLe: o.value });
    }
  }
  const stripeCount = getInt(sec, "stripe_count") ?? getInt(sec, "device_count") ?? 1;
  return { ...common, type: typeS.value.value, opaque: true, areas, areaExtents: Math.floor(extentCount / Math.max(1, stripeCount)), raw };
}

/** lib/integrity/integrity.c _integrity_text_import, with its messages (SEG_LOG_ERROR's suffix). */
function readIntegrity(sec: ConfigSection, lvName: string, lvNames: Set<string>, common: Pick<Segment, "startExtent" | "extentCount" | "tags" | "typeFlags">): Segment {
  const where = ` segment ${sec.name} of logical volume ${lvName}.`;
  const originS = findSetting(sec, "origin");
  if (!originS) fail("origin not specified in" + where, sec);
  if (originS.value.kind !== "string") fail("origin must be a string in" + where, originS);
  const origin = originS.value.value;
  if (!lvNames.has(origin)) fail(`Unknown LV specified for integrity origin ${origin} in` + where, originS);
  const dataSectors = requireUint(sec, "data_sectors", "integrity data_sectors must be set in" + where, Number.MAX_SAFE_INTEGER);
  const mode = getStr(sec, "mode");
  if (mode === undefined) fail("integrity mode must be set in" + where, sec);
  if (mode.length > 7) fail("integrity mode invalid in" + where, sec);
  const tagSize = requireUint(sec, "tag_size", "integrity tag_size must be set in" + where);
  const blockSize = requireUint(sec, "block_size", "integrity block_size invalid in" + where);
  const internalHash = getStr(sec, "internal_hash");
  if (internalHash === undefined) fail("integrity internal_hash must be set in" + where, sec);
  let metaDev: string | undefined;
  const metaS = findSetting(sec, "meta_dev");
  if (metaS) {
    if (metaS.value.kind !== "string") fail("meta_dev must be a string in" + where, metaS);
    metaDev = metaS.value.value;
    if (!lvNames.has(metaDev)) fail(`Unknown logical volume ${metaDev} specified for integrity in` + where, metaS);
  }
  const recalculate = optUint(sec, "recalculate", "integrity recalculate error in" + where, 0xffffffff) ?? 0;
  const opt = (key: string, max = 0xffffffff): number | undefined => optUint(sec, key, "Unknown integrity_setting in" + where, max);
  const settings: IntegritySettings = {};
  const put = (name: keyof IntegritySettings, v: number | undefined): void => {
    if (v !== undefined) settings[name] = v;
  };
  put("journalSectors", opt("journal_sectors"));
  put("interleaveSectors", opt("interleave_sectors"));
  put("bufferSectors", opt("buffer_sectors"));
  put("journalWatermark", opt("journal_watermark"));
  put("commitTime", opt("commit_time"));
  put("bitmapFlushInterval", opt("bitmap_flush_interval"));
  put("sectorsPerBit", opt("sectors_per_bit", Number.MAX_SAFE_INTEGER));
  put("allowDiscards", opt("allow_discards"));
  return { ...common, type: "integrity", origin, dataSectors, mode, tagSize, blockSize, internalHash, metaDev, recalculate, settings };
}

/** lib/raid/raid.c _raid_text_import for raid1, with its messages. */
function readRaid1(sec: ConfigSection, lvName: string, lvNames: Set<string>, common: Pick<Segment, "startExtent" | "extentCount" | "tags" | "typeFlags">): Segment {
  const deviceCount = optUint(sec, "device_count", `Couldn't read 'device_count' or 'stripe_count' for segment '${sec.name}'.`, 0xffffffff);
  const stripeCount = optUint(sec, "stripe_count", `Couldn't read 'device_count' or 'stripe_count' for segment '${sec.name}'.`, 0xffffffff);
  if (deviceCount === undefined && stripeCount === undefined) fail(`Couldn't read 'device_count' or 'stripe_count' for segment '${sec.name}'.`, sec);
  if (deviceCount !== undefined && stripeCount !== undefined) fail(`Only one of 'device_count' and 'stripe_count' allowed for segment '${sec.name}'.`, sec);
  const areaCount = (deviceCount ?? 0) + (stripeCount ?? 0);
  const num = (key: string): number | undefined => optUint(sec, key, `Couldn't read '${key}' for segment ${sec.name} of logical volume ${lvName}.`, 0xffffffff);
  const regionSize = num("region_size");
  const stripeSize = num("stripe_size");
  const writeBehind = num("writebehind");
  const minRate = num("min_recovery_rate");
  const maxRate = num("max_recovery_rate");
  const dataOffsetS = findSetting(sec, "data_offset");
  const dataOffset = dataOffsetS ? (dataOffsetS.value.kind === "int" && dataOffsetS.value.value >= 0 ? dataOffsetS.value.value : 0) : undefined;
  const list = findSetting(sec, "raids");
  if (!list || list.value.kind !== "array") fail(`Couldn't find RAID array for segment ${sec.name} of logical volume ${lvName}.`, list ?? sec);
  if (areaCount === 0) fail(`No areas found for segment ${sec.name}`, sec);
  const items = list.value.items;
  const raids: RaidImage[] = [];
  const nameAt = (i: number): string => {
    const v = items[i]!;
    if (v.kind !== "string") fail(`Bad volume name in areas array for segment ${sec.name}.`, list);
    if (!lvNames.has(v.value)) fail(`Couldn't find volume '${v.value}' for segment '${sec.name}'.`, list);
    return v.value;
  };
  let i = 0;
  for (; i < items.length && raids.length < areaCount; i++) {
    // Metadata device first: lvm2 knows it only by "_rmeta_" in its name.
    let meta: string | undefined = nameAt(i);
    if (meta.includes("_rmeta_")) i++;
    else meta = undefined;
    if (i >= items.length) fail(`Missing data device in areas array for segment ${sec.name}.`, list);
    raids.push({ meta, image: nameAt(i) });
  }
  if (i < items.length || raids.length < areaCount) fail(`Incorrect number of areas in area array for segment '${sec.name}'.`, list);
  return {
    ...common,
    type: "raid1",
    regionSizeSectors: regionSize ?? 0,
    stripeSizeSectors: stripeSize ?? 0,
    writeBehind: writeBehind ?? 0,
    minRecoveryRate: minRate ?? 0,
    maxRecoveryRate: maxRate ?? 0,
    dataOffset,
    raids,
  };
}

function readLv(sec: ConfigSection, pvNames: Map<string, string>, lvNames: Set<string>): LogicalVolume {
  const name = sec.name;
  if (sec.children.length === 0) fail(`Empty logical volume section for ${name}.`, sec);
  const id = readId(sec, `Couldn't read uuid for logical volume ${name}.`);
  const { status, flags } = readFlags(sec, LV_FLAG_WORDS, `logical volume ${name}`);
  const ctS = findSetting(sec, "creation_time");
  const chS = findSetting(sec, "creation_host");
  let creationTime: number | undefined;
  let creationHost: string | undefined;
  if (ctS) {
    if (ctS.value.kind !== "int" || ctS.value.value < 0) fail(`Invalid creation_time for logical volume ${name}.`, ctS);
    creationTime = ctS.value.value;
    if (!chS || chS.value.kind !== "string") fail(`Couldn't read creation_host for logical volume ${name}.`, sec);
    creationHost = chS.value.value;
  } else if (chS) fail(`Missing creation_time for logical volume ${name}.`, sec);
  const raS = findSetting(sec, "read_ahead");
  let readAhead: number | undefined;
  if (raS) {
    if (raS.value.kind !== "int") fail(`Couldn't read read_ahead for logical volume ${name}.`, raS);
    readAhead = raS.value.value === 0 ? undefined : raS.value.value;
  }
  let major: number | undefined;
  let minor: number | undefined;
  if (status.includes("FIXED_MINOR")) {
    major = getInt(sec, "major");
    minor = getInt(sec, "minor");
    if (minor === undefined) fail(`Couldn't read minor number for logical volume ${name}.`, sec);
  }
  const segCount = findSetting(sec, "segment_count");
  if (!segCount || segCount.value.kind !== "int") fail(`Couldn't read segment count for logical volume ${name}.`, sec);
  const segments = subsections(sec).map((s) => readSegment(s, name, pvNames, lvNames));
  if (segments.length !== segCount.value.value) fail(`segment_count and actual number of segments disagree for logical volume ${name}.`, sec);
  if (segments.length === 0) fail(`Empty logical volume section for ${name}.`, sec);
  segments.sort((a, b) => a.startExtent - b.startExtent);
  let next = 0;
  for (const s of segments) {
    if (s.startExtent !== next) fail(`Logical volume ${name} has ${s.startExtent < next ? "overlapping" : "missing"} segments at LE ${Math.min(next, s.startExtent)}.`, sec);
    if (s.extentCount === 0) fail(`Logical volume ${name} has a zero-length segment.`, sec);
    next = s.startExtent + s.extentCount;
  }
  const alloc = getStr(sec, "allocation_policy");
  return {
    name,
    id,
    status,
    flags,
    tags: readTags(sec, `Couldn't read tags for logical volume ${name}.`),
    creationTime,
    creationHost,
    lockArgs: getStr(sec, "lock_args"),
    allocationPolicy: alloc === "inherit" ? undefined : alloc,
    profile: getStr(sec, "profile"),
    readAheadSectors: readAhead,
    major,
    minor,
    segments,
  };
}

/** Convert a parsed tree to a VG. Throws FormatError with lvm2's wording. */
export function importVg(root: ConfigSection): ImportedVg {
  const contents = findSetting(root, "contents");
  const version = findSetting(root, "version");
  if (!contents || contents.value.kind !== "string" || contents.value.value !== "Text Format Volume Group") fail("Can't process text format file - missing contents field.");
  if (!version || version.value.kind !== "int" || version.value.value !== 1) fail("Can't process text format file - unrecognised version field.");
  const vgSec = root.children.find((c): c is ConfigSection => c.kind === "section");
  if (!vgSec) fail("Couldn't find volume group in file.");
  const name = vgSec.name;
  const fmt = getStr(vgSec, "format");
  if (fmt !== undefined && fmt !== "lvm2") fail(`Unrecognised format ${fmt} for volume group ${name}.`);
  const id = readId(vgSec, `Couldn't read uuid for volume group ${name}.`);
  const seqno = findSetting(vgSec, "seqno");
  if (!seqno || seqno.value.kind !== "int" || seqno.value.value < 0 || seqno.value.value > 0xffffffff) fail(`Couldn't read 'seqno' for volume group ${name}.`, vgSec);
  let flagsRead: { status: string[]; flags: string[] };
  try {
    flagsRead = readFlags(vgSec, VG_FLAG_WORDS, `volume group ${name}`);
  } catch (e) {
    if (e instanceof FormatError && e.message.startsWith("Unknown status flag")) throw e;
    fail(`Error reading flags of volume group ${name}.`, vgSec);
  }
  // WRITE_LOCKED (lvmlockd) reads back as WRITE.
  if (flagsRead.flags.includes("WRITE_LOCKED")) {
    flagsRead.flags = flagsRead.flags.filter((f) => f !== "WRITE_LOCKED");
    if (!flagsRead.status.includes("WRITE")) flagsRead.status.push("WRITE");
  }
  const extentSize = findSetting(vgSec, "extent_size");
  if (!extentSize || extentSize.value.kind !== "int" || extentSize.value.value <= 0) fail(`Couldn't read extent size for volume group ${name}.`, vgSec);
  const maxLv = requireUint(vgSec, "max_lv", `Couldn't read 'max_lv' for volume group ${name}.`);
  const maxPv = requireUint(vgSec, "max_pv", `Couldn't read 'max_pv' for volume group ${name}.`);
  const pvsSec = findSection(vgSec, "physical_volumes");
  if (!pvsSec) fail(`Couldn't find section 'physical_volumes'.`, vgSec);
  const pvNames = new Map<string, string>();
  const pvs: PhysicalVolume[] = [];
  for (const s of subsections(pvsSec)) {
    const pv = readPv(s);
    if (pvs.some((p) => p.id === pv.id)) fail(`Duplicate PV ${formatId(pv.id)} in volume group ${name}.`, s);
    pvNames.set(s.name, pv.id);
    pvs.push(pv);
  }
  const lvsSec = findSection(vgSec, "logical_volumes");
  const lvSecs = lvsSec ? subsections(lvsSec) : [];
  const lvNames = new Set<string>();
  for (const s of lvSecs) {
    if (lvNames.has(s.name)) fail(`Duplicate logical volume name ${s.name} in volume group ${name}.`, s);
    lvNames.add(s.name);
  }
  const lvs = lvSecs.map((s) => readLv(s, pvNames, lvNames));
  const alloc = getStr(vgSec, "allocation_policy");
  const vg: VolumeGroup = {
    name,
    id,
    seqno: seqno.value.value,
    format: fmt,
    status: flagsRead.status,
    flags: flagsRead.flags,
    tags: readTags(vgSec, `Couldn't read tags for volume group ${name}.`),
    systemId: getStr(vgSec, "system_id"),
    lockType: getStr(vgSec, "lock_type"),
    lockArgs: getStr(vgSec, "lock_args"),
    extentSizeSectors: extentSize.value.value,
    maxLv,
    maxPv,
    allocationPolicy: alloc === "normal" || alloc === "inherit" ? undefined : alloc,
    profile: getStr(vgSec, "profile"),
    metadataCopies: getInt(vgSec, "metadata_copies") ?? 0,
    pvs,
    lvs,
    historicalLvs: findSection(vgSec, "historical_logical_volumes"),
  };
  const d = findNode(root, "description");
  const ch = findNode(root, "creation_host");
  const ct = findNode(root, "creation_time");
  return {
    vg,
    description: d?.kind === "setting" && d.value.kind === "string" ? d.value.value : undefined,
    creationHost: ch?.kind === "setting" && ch.value.kind === "string" ? ch.value.value : undefined,
    creationTime: ct?.kind === "setting" && ct.value.kind === "int" ? ct.value.value : undefined,
  };
}

/** Parse and import metadata text. */
export function parseVgText(text: string, source?: string): ImportedVg {
  return importVg(parseConfig(text, source === undefined ? {} : { source }));
}
