import * as os from "node:os";
import { formatId } from "../base/uuid.js";
import type { ConfigNode, ConfigScalar, ConfigSection } from "./text/config-tree.js";
import type { Area, IntegritySegment, LogicalVolume, Segment, VolumeGroup } from "../model/types.js";
import { LV_FLAG_ORDER, PV_FLAG_ORDER, VG_FLAG_ORDER, orderFlags } from "./flags.js";
import { ULVM_VERSION } from "../base/version.js";

/**
 * VolumeGroup → metadata text, line for line as lvm2's formatter writes it
 * (lib/format_text/export.c). Two styles:
 *  - "disk": no indentation, no trailing comments, VG section first, header
 *    after it (the text on disk must begin with the VG name);
 *  - "file": a TAB per level, size/hint comments aligned to tab stops, header
 *    first (vgcfgbackup and /etc/lvm/backup style).
 */
export type ExportStyle = "disk" | "file";

export interface ExportOptions {
  style: ExportStyle;
  description: string;
  /** Seconds since the epoch; defaults to now. */
  nowSeconds?: number;
  /** Host name written as creation_host; defaults to os.hostname(). */
  hostname?: string;
}

const COMMENT_TAB = 6;
const MAX_INDENT = 5;

const TABS = ["", "\t", "\t\t", "\t\t\t", "\t\t\t\t", "\t\t\t\t\t"];

/**
 * Lines go into one growing string (V8 keeps it as a rope until the end):
 * exporting a VG of 1,000 LVs is ~20,000 lines, mostly in a fresh process
 * where every call runs in the interpreter, so the per-line work is minimal.
 */
class Formatter {
  private buf = "";
  private indent = 0;
  private readonly disk: boolean;
  constructor(style: ExportStyle) {
    this.disk = style === "disk";
  }

  inc(): void {
    if (++this.indent > MAX_INDENT) this.indent = MAX_INDENT;
  }
  dec(): void {
    this.indent = Math.max(0, this.indent - 1);
  }
  nl(): void {
    this.buf += "\n";
  }
  out(text: string, comment?: string): void {
    if (this.disk) {
      this.buf += text + "\n";
      return;
    }
    if (comment === undefined) {
      this.buf += TABS[this.indent] + text + "\n";
      return;
    }
    // Line comments up on tab stops, as _out_with_comment_file does.
    let i = Math.floor((text.length + 8 * this.indent) / 8) + 1;
    let tabs = "";
    do tabs += "\t";
    while (++i < COMMENT_TAB);
    this.buf += TABS[this.indent] + text + tabs + comment + "\n";
  }
  /** A line whose value is a size in sectors, commented in readable units. */
  outSize(sectors: number, text: string): void {
    this.out(text, this.disk ? undefined : sectorsComment(sectors));
  }
  text(): string {
    return this.buf;
  }
}

/** "# 4 Megabytes": the %g of the size in the largest unit not exceeding 1024. */
const sizeComments = new Map<number, string>();
export function sectorsComment(sectors: number): string {
  let c = sizeComments.get(sectors);
  if (c === undefined) {
    c = sectorsCommentUncached(sectors);
    sizeComments.set(sectors, c);
  }
  return c;
}

function sectorsCommentUncached(sectors: number): string {
  const units = ["Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Petabytes", "Exabytes"];
  let d = sectors / 2;
  let i = 0;
  while (d > 1024 && i < units.length - 1) {
    d /= 1024;
    i++;
  }
  return `# ${formatG(d)} ${units[i]}`;
}

/** printf("%g") for the values sizes produce (no exponent form needed below 1e6). */
export function formatG(d: number): string {
  if (d === 0) return "0";
  if (Math.abs(d) >= 1e6 || Math.abs(d) < 1e-4) {
    const [m, e] = d.toExponential(5).split("e");
    const mant = String(Number(m));
    const exp = Number(e);
    return `${mant}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return String(Number(d.toPrecision(6)));
}

export function escapeDoubleQuotes(s: string): string {
  return s.replace(/[\\"]/g, (c) => "\\" + c);
}

function q(s: string): string {
  return `"${escapeDoubleQuotes(s)}"`;
}

function strList(words: readonly string[]): string {
  return "[" + words.map((w) => `"${w}"`).join(", ") + "]";
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const p2 = (n: number): string => String(n).padStart(2, "0");

/** C's ctime() in local time, without the trailing newline. */
export function ctime(seconds: number): string {
  const d = new Date(seconds * 1000);
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

const isoCache = new Map<number, string>();
/** strftime("%Y-%m-%d %T %z") in local time (memoised: many LVs share a creation time). */
export function isoLocal(seconds: number): string {
  let v = isoCache.get(seconds);
  if (v === undefined) {
    v = isoLocalUncached(seconds);
    isoCache.set(seconds, v);
  }
  return v;
}

function isoLocalUncached(seconds: number): string {
  const d = new Date(seconds * 1000);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const a = Math.abs(off);
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${sign}${p2(Math.floor(a / 60))}${p2(a % 60)}`;
}

function printHeader(f: Formatter, opts: ExportOptions, now: number, host: string): void {
  f.out(`# Generated by ulvm version ${ULVM_VERSION} (LVM2 text format): ${ctime(now)}`);
  f.nl(); // ctime()'s own newline
  f.out(`contents = "Text Format Volume Group"`);
  f.out(`version = 1`);
  f.nl();
  f.out(`description = ${q(opts.description)}`);
  f.nl();
  f.out(`creation_host = ${q(host)}\t# ${os.type()} ${host} ${os.release()} ${os.version()} ${os.machine()}`);
  f.out(`creation_time = ${now}\t# ${ctime(now)}`);
  f.nl();
}

function pvNameMap(vg: VolumeGroup): Map<string, string> {
  const m = new Map<string, string>();
  vg.pvs.forEach((pv, i) => m.set(pv.id, `pv${i}`));
  return m;
}

function printAreas(f: Formatter, key: string, areas: readonly Area[], pvNames: Map<string, string>): void {
  f.nl();
  f.out(`${key} = [`);
  f.inc();
  areas.forEach((a, i) => {
    const last = i === areas.length - 1 ? "" : ",";
    if (a.kind === "pv") f.out(`"${pvNames.get(a.pvId) ?? "pv?"}", ${a.startPe}${last}`);
    else f.out(`"${a.lvName}", ${a.startLe}${last}`);
  });
  f.dec();
  f.out("]");
}

function scalarText(v: ConfigScalar): string {
  if (v.kind === "string") return q(v.value);
  return String(v.value);
}

/** Re-emit settings of a segment type this version does not model. */
function printRaw(f: Formatter, nodes: readonly ConfigNode[]): void {
  for (const n of nodes) {
    if (n.kind === "section") {
      f.out(`${n.name} {`);
      f.inc();
      printRaw(f, n.children);
      f.dec();
      f.out("}");
    } else if (n.value.kind === "array") {
      f.out(`${n.name} = [${n.value.items.map(scalarText).join(", ")}]`);
    } else f.out(`${n.name} = ${scalarText(n.value)}`);
  }
}

function printSegment(f: Formatter, vg: VolumeGroup, n: number, seg: Segment, pvNames: Map<string, string>): void {
  f.out(`segment${n} {`);
  f.inc();
  f.out(`start_extent = ${seg.startExtent}`);
  f.outSize(seg.extentCount * vg.extentSizeSectors, `extent_count = ${seg.extentCount}`);
  f.nl();
  const typeName = seg.type + seg.typeFlags.map((t) => "+" + t).join("");
  f.out(`type = "${typeName}"`);
  if (seg.tags.length) f.out(`tags = ${strList(seg.tags)}`);
  if ("opaque" in seg) {
    printRaw(f, seg.raw);
  } else if (seg.type === "striped") {
    f.out(`stripe_count = ${seg.stripes.length}`, seg.stripes.length === 1 ? "# linear" : undefined);
    if (seg.stripes.length > 1) f.outSize(seg.stripeSizeSectors, `stripe_size = ${seg.stripeSizeSectors}`);
    printAreas(f, "stripes", seg.stripes, pvNames);
  } else if (seg.type === "raid1") {
    // lib/raid/raid.c _raid_text_export_raid, then out_areas(f, seg, "raid").
    f.out(`device_count = ${seg.raids.length}`);
    if (seg.regionSizeSectors) f.out(`region_size = ${seg.regionSizeSectors}`);
    if (seg.stripeSizeSectors) f.out(`stripe_size = ${seg.stripeSizeSectors}`);
    if (seg.writeBehind) f.out(`writebehind = ${seg.writeBehind}`);
    if (seg.minRecoveryRate) f.out(`min_recovery_rate = ${seg.minRecoveryRate}`);
    if (seg.maxRecoveryRate) f.out(`max_recovery_rate = ${seg.maxRecoveryRate}`);
    if (seg.dataOffset !== undefined) f.out(`data_offset = ${seg.dataOffset}`);
    f.nl();
    f.out("raids = [");
    f.inc();
    seg.raids.forEach((r, i) => {
      const last = i === seg.raids.length - 1 ? "" : ",";
      f.out(r.meta !== undefined ? `"${r.meta}", "${r.image}"${last}` : `"${r.image}"${last}`);
    });
    f.dec();
    f.out("]");
  } else if (seg.type === "integrity") {
    printIntegrity(f, seg);
  } else {
    f.out(`mirror_count = ${seg.mirrors.length}`);
    if (seg.extentsMoved !== undefined) f.outSize(seg.extentsMoved * vg.extentSizeSectors, `extents_moved = ${seg.extentsMoved}`);
    if (seg.mirrorLog !== undefined) f.out(`mirror_log = "${seg.mirrorLog}"`);
    if (seg.regionSizeSectors) f.out(`region_size = ${seg.regionSizeSectors}`);
    printAreas(f, "mirrors", seg.mirrors, pvNames);
  }
  f.dec();
  f.out("}");
}

/** lib/integrity/integrity.c _integrity_text_export: the keys and their order. */
function printIntegrity(f: Formatter, seg: IntegritySegment): void {
  f.out(`origin = "${seg.origin}"`);
  f.out(`data_sectors = ${seg.dataSectors}`);
  f.out(`mode = "${seg.mode}"`);
  f.out(`tag_size = ${seg.tagSize}`);
  f.out(`block_size = ${seg.blockSize}`);
  f.out(`internal_hash = "${seg.internalHash}"`);
  if (seg.metaDev !== undefined) f.out(`meta_dev = "${seg.metaDev}"`);
  if (seg.recalculate) f.out(`recalculate = ${seg.recalculate}`);
  const s = seg.settings;
  if (s.journalSectors !== undefined) f.out(`journal_sectors = ${s.journalSectors}`);
  if (s.interleaveSectors !== undefined) f.out(`interleave_sectors = ${s.interleaveSectors}`);
  if (s.bufferSectors !== undefined) f.out(`buffer_sectors = ${s.bufferSectors}`);
  if (s.journalWatermark !== undefined) f.out(`journal_watermark = ${s.journalWatermark}`);
  if (s.commitTime !== undefined) f.out(`commit_time = ${s.commitTime}`);
  // lvm2 tests these two by value, not by their _set flag: a 0 is not written.
  if (s.bitmapFlushInterval) f.out(`bitmap_flush_interval = ${s.bitmapFlushInterval}`);
  if (s.sectorsPerBit) f.out(`sectors_per_bit = ${s.sectorsPerBit}`);
  if (s.allowDiscards !== undefined) f.out(`allow_discards = ${s.allowDiscards}`);
}

function printLv(f: Formatter, vg: VolumeGroup, lv: LogicalVolume, pvNames: Map<string, string>): void {
  f.nl();
  f.out(`${lv.name} {`);
  f.inc();
  f.out(`id = "${formatId(lv.id)}"`);
  f.out(`status = ${strList(orderFlags(lv.status, LV_FLAG_ORDER))}`);
  f.out(`flags = ${strList(orderFlags(lv.flags, LV_FLAG_ORDER))}`);
  if (lv.tags.length) f.out(`tags = ${strList(lv.tags)}`);
  if (lv.creationTime) {
    f.out(`creation_time = ${lv.creationTime}`, `# ${isoLocal(lv.creationTime)}`);
    f.out(`creation_host = ${q(lv.creationHost ?? "")}`);
  }
  if (lv.lockArgs !== undefined) f.out(`lock_args = ${q(lv.lockArgs)}`);
  if (lv.allocationPolicy !== undefined && lv.allocationPolicy !== "inherit") f.out(`allocation_policy = "${lv.allocationPolicy}"`);
  if (lv.profile !== undefined) f.out(`profile = ${q(lv.profile)}`);
  if (lv.readAheadSectors === -1) f.out(`read_ahead = -1`, "# None");
  else if (lv.readAheadSectors !== undefined) f.out(`read_ahead = ${lv.readAheadSectors}`);
  if (lv.major !== undefined && lv.major >= 0) f.out(`major = ${lv.major}`);
  if (lv.minor !== undefined && lv.minor >= 0) f.out(`minor = ${lv.minor}`);
  f.out(`segment_count = ${lv.segments.length}`);
  f.nl();
  lv.segments.forEach((seg, i) => printSegment(f, vg, i + 1, seg, pvNames));
  f.dec();
  f.out("}");
}

/** Whether an LV is user-visible (VISIBLE status word). */
function isVisible(lv: LogicalVolume): boolean {
  return lv.status.includes("VISIBLE");
}

export function exportVgText(vg: VolumeGroup, opts: ExportOptions): string {
  const f = new Formatter(opts.style);
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  const host = opts.hostname ?? os.hostname();
  const pvNames = pvNameMap(vg);
  if (opts.style === "file") printHeader(f, opts, now, host);
  f.out(`${vg.name} {`);
  f.inc();
  f.out(`id = "${formatId(vg.id)}"`);
  f.out(`seqno = ${vg.seqno}`);
  f.out(`format = "${vg.format ?? "lvm2"}"`, "# informational");
  f.out(`status = ${strList(orderFlags(vg.status, VG_FLAG_ORDER))}`);
  f.out(`flags = ${strList(orderFlags(vg.flags, VG_FLAG_ORDER))}`);
  if (vg.tags.length) f.out(`tags = ${strList(vg.tags)}`);
  if (vg.systemId) f.out(`system_id = ${q(vg.systemId)}`);
  if (vg.lockType) {
    f.out(`lock_type = ${q(vg.lockType)}`);
    if (vg.lockArgs) f.out(`lock_args = ${q(vg.lockArgs)}`);
  }
  f.outSize(vg.extentSizeSectors, `extent_size = ${vg.extentSizeSectors}`);
  f.out(`max_lv = ${vg.maxLv}`);
  f.out(`max_pv = ${vg.maxPv}`);
  if (vg.allocationPolicy !== undefined && vg.allocationPolicy !== "normal" && vg.allocationPolicy !== "inherit") {
    f.nl();
    f.out(`allocation_policy = "${vg.allocationPolicy}"`);
  }
  if (vg.profile) f.out(`profile = ${q(vg.profile)}`);
  f.out(`metadata_copies = ${vg.metadataCopies}`);
  f.nl();
  f.out("physical_volumes {");
  f.inc();
  for (const pv of vg.pvs) {
    f.nl();
    f.out(`${pvNames.get(pv.id)} {`);
    f.inc();
    f.out(`id = "${formatId(pv.id)}"`);
    f.out(`device = ${q(pv.deviceHint ?? "[unknown]")}`, "# Hint only");
    f.nl();
    if (pv.deviceIdType && pv.deviceId) {
      f.out(`device_id_type = ${q(pv.deviceIdType)}`);
      f.out(`device_id = ${q(pv.deviceId)}`);
    }
    f.out(`status = ${strList(orderFlags(pv.status.filter((s) => s !== "MISSING"), PV_FLAG_ORDER))}`);
    // MISSING belongs in flags (old metadata had it in status; it is read from either).
    f.out(`flags = ${strList(orderFlags(pv.status.includes("MISSING") ? [...pv.flags, "MISSING"] : pv.flags, PV_FLAG_ORDER))}`);
    if (pv.tags.length) f.out(`tags = ${strList(pv.tags)}`);
    f.outSize(pv.devSizeSectors, `dev_size = ${pv.devSizeSectors}`);
    f.out(`pe_start = ${pv.peStartSectors}`);
    f.outSize(vg.extentSizeSectors * pv.peCount, `pe_count = ${pv.peCount}`);
    if (pv.baStartSectors && pv.baSizeSectors) {
      f.out(`ba_start = ${pv.baStartSectors}`);
      f.outSize(pv.baSizeSectors, `ba_size = ${pv.baSizeSectors}`);
    }
    f.dec();
    f.out("}");
  }
  f.dec();
  f.out("}");
  f.nl();
  if (vg.lvs.length) {
    f.out("logical_volumes {");
    f.inc();
    for (const lv of vg.lvs) if (isVisible(lv)) printLv(f, vg, lv, pvNames);
    for (const lv of vg.lvs) if (!isVisible(lv)) printLv(f, vg, lv, pvNames);
    f.dec();
    f.out("}");
  }
  f.nl();
  if (vg.historicalLvs) printRaw(f, [vg.historicalLvs as ConfigSection]);
  f.dec();
  f.out("}");
  if (opts.style === "disk") printHeader(f, opts, now, host);
  return f.text();
}
