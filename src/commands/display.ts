import type { CommandDef } from "../cli/command-def.js";
import type { Args, OptionSpec } from "../cli/args.js";
import { UsageError } from "../errors/errors.js";
import { displaySize } from "../base/units.js";
import { formatId } from "../base/uuid.js";
import { isRaidSeg } from "../model/lv-info.js";
import type { ToolContext } from "./toolcontext.js";
import { vgNameArg } from "./common.js";
import { forEachLv, forEachPv, REPORT_OPTIONS, reportEnv, runReport, selectVgs } from "./reports.js";
import { Inventory } from "../report/inventory.js";
import { Report, ReportSetupError } from "../report/engine.js";
import { REPORT_FIELDS, REPORT_TYPES, RT, type ReportEnv, type ReportObject } from "../report/field-values.js";
import { allocName } from "../report/lv-attr.js";
import { formatLvTime } from "../report/time-format.js";
import type { LvView, PvView, SegView, VgView } from "../report/vg-view.js";

/**
 * pvdisplay, vgdisplay, lvdisplay (tools/*display.c, lib/display/display.c):
 * lvm2's labelled blocks, -c colon lines, -s short forms, -m maps, and -C
 * (--columns), which is the matching report command. State such as "LV
 * Status" and "# open" comes from the activation state, as lvm2 reads it
 * from device-mapper; ulvm always reports as a system that has one.
 */
const DISPLAY_REPORT_OPTIONS = REPORT_OPTIONS.filter((o) => o.name !== "all" && o.name !== "reportformat");

interface Out {
  lines: string[];
}

const size = (env: ReportEnv, sectors: number): string => displaySize(sectors, env.units, env.suffix);

/** Options a *display command only accepts with -C. */
function checkNotColumns(args: Args, names: readonly string[], message = "Incompatible options selected."): void {
  for (const n of names) if (args.has(n)) throw new UsageError(message, args.command, { runHelp: false });
}

/** -S for the non-report forms: a report with no columns, used only to select. */
function selector(args: Args, type: number): Report<ReportObject> | undefined | "error" {
  const sel = args.str("select");
  if (!sel) return undefined;
  return new Report(REPORT_TYPES, REPORT_FIELDS, type, "", undefined, {
    aligned: false, buffered: true, headings: false, fieldPrefixes: false, quoted: true, columnsAsRows: false, separator: " ",
  }, sel);
}

function withSelector<T>(ctx: ToolContext, args: Args, type: number, fn: (sel: Report<ReportObject> | undefined) => T): T | 0 | 5 {
  let sel: Report<ReportObject> | undefined;
  try {
    sel = selector(args, type) as Report<ReportObject> | undefined;
  } catch (e) {
    if (e instanceof ReportSetupError) {
      for (const l of e.warnLines) ctx.out.warn(l);
      for (const l of e.errorLines) ctx.out.error(l);
      return e.helpOnly ? 0 : 5;
    }
    throw e;
  }
  return fn(sel);
}

const blank = (env: ReportEnv): ReportObject => ({ env, vgv: undefined, lvv: undefined, seg: undefined, pvv: undefined, pvseg: undefined });

// ---- pvdisplay ---------------------------------------------------------------

export function pvFullLines(env: ReportEnv, p: PvView, o: Out): void {
  const peSize = p.peSizeSectors;
  o.lines.push(`--- ${peSize ? "" : "NEW "}Physical volume ---`);
  o.lines.push(`PV Name               ${p.name}`);
  o.lines.push(`VG Name               ${p.orphan ? "" : p.vgv!.name}${p.exported ? " (exported)" : ""}`);
  const dataSize = p.peCount * peSize;
  let pvSize: number;
  let unusable: number;
  if (p.sizeSectors > dataSize + p.peStartSectors) {
    pvSize = p.sizeSectors;
    unusable = pvSize - dataSize;
  } else {
    pvSize = dataSize + p.peStartSectors;
    unusable = pvSize - p.sizeSectors;
  }
  if (dataSize) o.lines.push(`PV Size               ${size(env, pvSize)} / not usable ${size(env, unusable)}`);
  else o.lines.push(`PV Size               ${size(env, pvSize)}`);
  const free = p.peCount - p.allocExtents;
  if (p.peCount && p.allocatable) o.lines.push(`Allocatable           yes ${!free && p.peCount ? "(but full)" : ""}`);
  else o.lines.push("Allocatable           NO");
  o.lines.push(`PE Size               ${size(env, peSize)}`);
  o.lines.push(`Total PE              ${p.peCount}`);
  o.lines.push(`Free PE               ${free}`);
  o.lines.push(`Allocated PE          ${p.allocExtents}`);
  o.lines.push(`PV UUID               ${formatId(p.id)}`);
  o.lines.push(" ");
}

function pvStatusBits(p: PvView): number {
  let s = 0;
  if (p.allocatable) s |= 0x8;
  if (p.exported) s |= 0x2;
  if (p.missing && !p.orphan) s |= 0x800000;
  return s;
}

function pvColonLine(p: PvView): string {
  const status = pvStatusBits(p);
  return [
    p.name, p.orphan ? "" : p.vgv!.name, p.sizeSectors, -1, status, status & 0x8, -1,
    p.peSizeSectors / 2, p.peCount, p.peCount - p.allocExtents, p.allocExtents, formatId(p.id),
  ].join(":");
}

function pvSegmentLines(env: ReportEnv, p: PvView, o: Out): void {
  if (p.peSizeSectors) o.lines.push("--- Physical Segments ---");
  for (const s of p.segments) {
    o.lines.push(`Physical extent ${s.startPe} to ${s.startPe + s.lengthExtents - 1}:`);
    if (s.lvv && s.seg) {
      o.lines.push(`  Logical volume\t${env.devDir}${s.lvv.vgv.name}/${s.lvv.name}`);
      o.lines.push(`  Logical extents\t${s.seg.seg.startExtent} to ${s.seg.seg.startExtent + s.seg.seg.extentCount - 1}`);
    } else o.lines.push("  FREE");
  }
  o.lines.push(" ");
}

async function pvdisplayRun(ctx: ToolContext, args: Args): Promise<number> {
  if (args.has("columns")) {
    if (args.has("colon") || args.has("maps") || args.has("short")) throw new UsageError("Incompatible options selected", args.command, { runHelp: false });
    return runReport(ctx, args, "pvs");
  }
  checkNotColumns(args, ["aligned", "all", "binary", "noheadings", "options", "separator", "sort", "unbuffered"], "Incompatible options selected");
  if (args.has("colon") && args.has("maps")) throw new UsageError("Option -c not allowed with option -m", args.command, { runHelp: false });
  if (args.has("colon") && args.has("short")) throw new UsageError("Option -c is not allowed with option -s", args.command, { runHelp: false });
  const env = reportEnv(ctx, args);
  const inv = await Inventory.load(ctx);
  const r = withSelector(ctx, args, RT.PVS, (sel) => {
    const o: Out = { lines: [] };
    const failures = forEachPv(ctx, inv, args.positional, (p) => {
      if (sel && !sel.selects({ ...blank(env), vgv: p.vgv, pvv: p })) return;
      const sz = p.orphan ? p.sizeSectors : (p.peCount - p.allocExtents) * p.peSizeSectors;
      if (args.has("short")) {
        o.lines.push(`Device "${p.name}" has a capacity of ${size(env, sz)}`);
        return;
      }
      if (p.exported) o.lines.push(`Physical volume "${p.name}" of volume group "${p.vgv!.name}" is exported`);
      if (p.orphan) o.lines.push(`"${p.name}" is a new physical volume of "${size(env, sz)}"`);
      if (args.has("colon")) {
        o.lines.push(pvColonLine(p));
        return;
      }
      pvFullLines(env, p, o);
      if (args.has("maps")) pvSegmentLines(env, p, o);
    });
    print(ctx, o);
    return failures ? 5 : 0;
  });
  return r;
}

// ---- vgdisplay ---------------------------------------------------------------

function openLvCount(v: VgView): number {
  let n = 0;
  for (const l of v.lvs) if (l.visible && (l.state?.openCount ?? 0) > 0) n++;
  return n;
}

export function vgFullLines(env: ReportEnv, v: VgView, o: Out): void {
  const vg = v.vg;
  const mdas = v.mdas();
  o.lines.push("--- Volume group ---");
  o.lines.push(`VG Name               ${vg.name}`);
  o.lines.push(`System ID             ${vg.systemId ?? ""}`);
  o.lines.push("Format                lvm2");
  o.lines.push(`Metadata Areas        ${mdas.count}`);
  o.lines.push(`Metadata Sequence No  ${vg.seqno}`);
  const r = vg.status.includes("READ");
  const w = vg.status.includes("WRITE");
  o.lines.push(`VG Access             ${r && w ? "read/write" : r ? "read" : w ? "write" : "error"}`);
  o.lines.push(`VG Status             ${v.exported ? "exported/" : ""}${vg.status.includes("RESIZEABLE") ? "" : "NOT "}resizable`);
  if (vg.status.includes("CLUSTERED")) {
    o.lines.push("Clustered             yes");
    o.lines.push("Shared                no");
  }
  o.lines.push(`MAX LV                ${vg.maxLv}`);
  o.lines.push(`Cur LV                ${v.visibleLvCount}`);
  o.lines.push(`Open LV               ${openLvCount(v)}`);
  o.lines.push(`Max PV                ${vg.maxPv}`);
  o.lines.push(`Cur PV                ${v.pvs.length}`);
  o.lines.push(`Act PV                ${v.pvs.length - v.missingPvCount}`);
  const ext = vg.extentSizeSectors;
  o.lines.push(`VG Size               ${size(env, v.extentCount * ext)}`);
  o.lines.push(`PE Size               ${size(env, ext)}`);
  o.lines.push(`Total PE              ${v.extentCount}`);
  const alloc = v.extentCount - v.freeExtents;
  o.lines.push(`Alloc PE / Size       ${alloc} / ${size(env, alloc * ext)}`);
  o.lines.push(`Free  PE / Size       ${v.freeExtents} / ${size(env, v.freeExtents * ext)}`);
  o.lines.push(`VG UUID               ${formatId(vg.id)}`);
  o.lines.push(" ");
}

function vgColonLine(v: VgView): string {
  const vg = v.vg;
  const r = vg.status.includes("READ");
  const w = vg.status.includes("WRITE");
  let status = 0;
  if (vg.status.includes("EXPORTED")) status |= 0x2;
  if (vg.status.includes("RESIZEABLE")) status |= 0x4;
  if (r) status |= 0x100;
  if (w) status |= 0x200;
  if (vg.status.includes("CLUSTERED")) status |= 0x400;
  const ext = vg.extentSizeSectors;
  return [
    vg.name, r && w ? "r/w" : r ? "r" : w ? "w" : "", status, -1, vg.maxLv, v.visibleLvCount, openLvCount(v), -1, vg.maxPv,
    v.pvs.length, v.pvs.length - v.missingPvCount, v.extentCount * (ext / 2), ext / 2, v.extentCount,
    v.extentCount - v.freeExtents, v.freeExtents, formatId(vg.id),
  ].join(":");
}

function vgShortLine(env: ReportEnv, v: VgView): string {
  const ext = v.vg.extentSizeSectors;
  return `"${v.name}" ${size(env, v.extentCount * ext).padEnd(9)} [${size(env, (v.extentCount - v.freeExtents) * ext).padEnd(9)} used / ${size(env, v.freeExtents * ext)} free]`;
}

function pvShortLines(p: PvView, o: Out): void {
  o.lines.push(`PV Name               ${p.name}     `);
  o.lines.push(`PV UUID               ${formatId(p.id)}`);
  o.lines.push(`PV Status             ${p.allocatable ? "" : "NOT "}allocatable`);
  o.lines.push(`Total PE / Free PE    ${p.peCount} / ${p.peCount - p.allocExtents}`);
  o.lines.push(" ");
}

async function vgdisplayRun(ctx: ToolContext, args: Args): Promise<number> {
  if (args.has("columns")) {
    if (args.has("colon") || args.has("activevolumegroups") || args.has("short")) {
      throw new UsageError("Incompatible options selected", args.command, { runHelp: false });
    }
    return runReport(ctx, args, "vgs");
  }
  checkNotColumns(args, ["aligned", "binary", "noheadings", "options", "separator", "sort", "unbuffered"]);
  if (args.has("colon") && args.has("short")) throw new UsageError("Option -c is not allowed with option -s", args.command, { runHelp: false });
  if (args.positional.length && args.has("activevolumegroups")) {
    throw new UsageError("Option -A is not allowed with volume group names", args.command, { runHelp: false });
  }
  const env = reportEnv(ctx, args);
  const inv = await Inventory.load(ctx);
  return withSelector(ctx, args, RT.VGS, (sel) => {
    const tags = args.positional.filter((a) => a.startsWith("@")).map((a) => a.slice(1));
    const names = args.positional.filter((a) => !a.startsWith("@")).map((a) => vgNameArg(a, ctx.paths.devDir));
    const { vgs, failures } = selectVgs(ctx, inv, args.positional.length ? names : undefined, tags);
    const o: Out = { lines: [] };
    for (const v of vgs) {
      if (sel && !sel.selects({ ...blank(env), vgv: v })) continue;
      if (args.has("activevolumegroups") && !v.lvs.some((l) => l.active)) continue;
      if (args.has("colon")) {
        o.lines.push(vgColonLine(v));
        continue;
      }
      if (args.has("short")) {
        o.lines.push(vgShortLine(env, v));
        continue;
      }
      vgFullLines(env, v, o);
      if (args.has("verbose")) {
        for (const l of v.lvs) if (l.visible && l.segs[0]?.seg.type !== "snapshot") lvFullLines(env, l, o);
        o.lines.push("--- Physical volumes ---");
        for (const p of v.pvs) pvShortLines(p, o);
      }
    }
    print(ctx, o);
    return failures ? 5 : 0;
  });
}

// ---- lvdisplay ---------------------------------------------------------------

export function lvFullLines(env: ReportEnv, l: LvView, o: Out): void {
  const lv = l.lv;
  const st = l.state;
  const inKernel = st !== undefined;
  const writable = lv.status.includes("WRITE");
  const access = writable && inKernel && st.readOnly ? "read/write (activated read only)" : writable ? "read/write" : "read only";
  o.lines.push("--- Logical volume ---");
  if (l.visible) {
    if (l.segs[0]?.seg.type !== "thin-pool") o.lines.push(`LV Path                ${env.devDir}${l.vgv.name}/${l.name}`);
    o.lines.push(`LV Name                ${l.name}`);
  } else o.lines.push(`Internal LV Name       ${l.name}`);
  o.lines.push(`VG Name                ${l.vgv.name}`);
  o.lines.push(`LV UUID                ${formatId(lv.id)}`);
  o.lines.push(`LV Write Access        ${access}`);
  o.lines.push(`LV Creation host, time ${lv.creationHost ?? ""}, ${formatLvTime(lv.creationTime)}`);
  if (inKernel && st.suspended) o.lines.push("LV Status              suspended");
  else o.lines.push(`LV Status              ${inKernel && st.active ? "" : "NOT "}available${l.partial ? " (partial)" : ""}`);
  if (inKernel) o.lines.push(`# open                 ${st.openCount}`);
  o.lines.push(`LV Size                ${size(env, l.sizeSectors)}`);
  o.lines.push(`Current LE             ${l.leCount}`);
  // lv_is_mirrored: legacy mirrors and raid1 (lv_mirror_count: its images).
  if (l.isMirror) o.lines.push(`Mirrored volumes       ${l.segs[0]?.areas.length ?? 0}`);
  else if (l.raidSeg) o.lines.push(`Mirrored volumes       ${l.raidSeg.raids.length}`);
  o.lines.push(`Segments               ${l.segs.length}`);
  o.lines.push(`Allocation             ${allocName(lv.allocationPolicy, true)}`);
  const ra = lv.readAheadSectors;
  if (ra === undefined) o.lines.push("Read ahead sectors     auto");
  else if (ra < 0) o.lines.push("Read ahead sectors     0");
  else o.lines.push(`Read ahead sectors     ${ra}`);
  const raNumber = ra === undefined ? 0xffffffff : ra < 0 ? 0 : ra;
  if (inKernel && st.readAheadSectors !== undefined && raNumber !== st.readAheadSectors) o.lines.push(`- currently set to     ${st.readAheadSectors}`);
  if (lv.status.includes("FIXED_MINOR")) {
    if (lv.major !== undefined && lv.major >= 0) o.lines.push(`Persistent major       ${lv.major}`);
    o.lines.push(`Persistent minor       ${lv.minor ?? -1}`);
  }
  // An LV the daemon serves only over NBD has no block device number to show.
  if (inKernel && st.major !== undefined) o.lines.push(`Block device           ${st.major}:${st.minor ?? 0}`);
  o.lines.push(" ");
}

function stripeLines(s: SegView, i: number, pre: string, o: Out): void {
  const a = s.areas[i]!;
  if (a.kind === "pv") {
    o.lines.push(`${pre}Physical volume\t${s.lvv.vgv.pvById.get(a.pvId)?.name ?? "Missing"}`);
    o.lines.push(`${pre}Physical extents\t${a.startPe} to ${a.startPe + s.areaExtents - 1}`);
  } else {
    const sub = s.lvv.vgv.lvByName.get(a.lvName);
    o.lines.push(`${pre}Logical volume\t${sub ? a.lvName : "Missing"}`);
    if (sub) o.lines.push(`${pre}Logical extents\t${a.startLe} to ${a.startLe + s.areaExtents - 1}`);
  }
}

function lvSegmentLines(env: ReportEnv, l: LvView, o: Out): void {
  o.lines.push("--- Segments ---");
  for (const s of l.segs) {
    const first = s.seg.startExtent;
    o.lines.push(`Logical extents ${first} to ${first + s.seg.extentCount - 1}:`);
    o.lines.push(`  Type\t\t${s.typeName}`);
    if (s.mirror) {
      o.lines.push(`  Monitoring\t\t${l.state?.monitoring ?? ""}`);
      o.lines.push(`  Mirrors\t\t${s.areas.length}`);
      o.lines.push(`  Mirror size\t\t${s.areaExtents}`);
      if (s.mirror.mirrorLog) o.lines.push(`  Mirror log volume\t${s.mirror.mirrorLog}`);
      if (s.regionSizeSectors) o.lines.push(`  Mirror region size\t${size(env, s.regionSizeSectors)}`);
      o.lines.push("  Mirror original:");
      stripeLines(s, 0, "    ", o);
      o.lines.push("  Mirror destinations:");
      for (let i = 1; i < s.areas.length; i++) stripeLines(s, i, "    ", o);
      o.lines.push(" ");
    } else if (isRaidSeg(s.seg)) {
      // lib/raid/raid.c _raid_display: each data LV as display_stripe shows it, then the metadata LVs.
      s.seg.raids.forEach((r, i) => {
        o.lines.push(`  Raid Data LV ${i}`);
        const sub = s.lvv.vgv.lvByName.get(r.image);
        o.lines.push(`    Logical volume\t${sub ? r.image : "Missing"}`);
        if (sub) o.lines.push(`    Logical extents\t0 to ${s.seg.extentCount - 1}`);
      });
      s.seg.raids.forEach((r, i) => {
        if (r.meta !== undefined) o.lines.push(`  Raid Metadata LV ${i}\t${r.meta}`);
      });
      o.lines.push(" ");
    } else if (s.seg.type === "striped" && !("opaque" in s.seg)) {
      if (s.areas.length === 1) stripeLines(s, 0, "  ", o);
      else {
        o.lines.push(`  Stripes\t\t${s.areas.length}`);
        o.lines.push(`  Stripe size\t\t${size(env, s.stripeSizeSectors)}`);
        for (let i = 0; i < s.areas.length; i++) {
          o.lines.push(`  Stripe ${i}:`);
          stripeLines(s, i, "    ", o);
        }
      }
      o.lines.push(" ");
    }
  }
  o.lines.push(" ");
}

function lvColonLine(env: ReportEnv, l: LvView): string {
  const st = l.state;
  const inKernel = st !== undefined;
  let access = 0;
  if (l.lv.status.includes("READ")) access |= 1;
  if (l.lv.status.includes("WRITE")) access |= 2;
  if (inKernel && st.readOnly) access |= 4;
  const ra = l.lv.readAheadSectors;
  return [
    `${env.devDir}${l.vgv.name}/${l.name}`, l.vgv.name, access, inKernel ? 1 : 0, -1, inKernel ? st.openCount : 0, l.sizeSectors, l.leCount, -1,
    l.lv.allocationPolicy === "contiguous" ? 2 : 0, ra === undefined ? -1 : ra < 0 ? 0 : ra,
    inKernel ? (st.major ?? -1) : -1, inKernel ? (st.minor ?? -1) : -1,
  ].join(":");
}

async function lvdisplayRun(ctx: ToolContext, args: Args): Promise<number> {
  if (args.has("columns")) {
    if (args.has("colon") || args.has("maps")) throw new UsageError("Incompatible options selected", args.command, { runHelp: false });
    return runReport(ctx, args, "lvs");
  }
  checkNotColumns(args, ["aligned", "binary", "noheadings", "options", "separator", "sort", "unbuffered"]);
  if (args.has("colon") && args.has("maps")) throw new UsageError("Options -c and -m are incompatible.", args.command, { runHelp: false });
  const env = reportEnv(ctx, args);
  const inv = await Inventory.load(ctx);
  return withSelector(ctx, args, RT.LVS, (sel) => {
    const o: Out = { lines: [] };
    const all = args.has("all");
    const failures = forEachLv(ctx, inv, args.positional, true, (l) => {
      if (!all && !l.visible) return;
      if (sel && !sel.selects({ ...blank(env), vgv: l.vgv, lvv: l })) return;
      if (args.has("colon")) {
        o.lines.push(lvColonLine(env, l));
        return;
      }
      lvFullLines(env, l, o);
      if (args.has("maps")) lvSegmentLines(env, l, o);
    });
    print(ctx, o);
    return failures ? 5 : 0;
  });
}

function print(ctx: ToolContext, o: Out): void {
  if (o.lines.length) ctx.out.write(o.lines.map((l) => `  ${l}\n`).join(""));
}

// ---- command definitions -----------------------------------------------------

const UNITS_LINE = "	[    --units [Number]r|R|h|H|b|B|s|S|k|K|m|M|g|G|t|T|p|P|e|E ]\n";

export const pvdisplay: CommandDef = {
  name: "pvdisplay",
  summary: "Display various attributes of physical volume(s)",
  usage: `  pvdisplay - Display various attributes of physical volume(s)

  pvdisplay
	[ -a|--all ]
	[ -c|--colon ]
	[ -C|--columns ]
	[ -m|--maps ]
	[ -o|--options String ]
	[ -S|--select String ]
	[ -s|--short ]
	[ -O|--sort String ]
	[    --aligned ]
	[    --binary ]
	[    --configreport log|vg|lv|pv|pvseg|seg ]
	[    --foreign ]
	[    --ignorelockingfailure ]
	[    --logonly ]
	[    --noheadings ]
	[    --nosuffix ]
	[    --readonly ]
	[    --separator String ]
	[    --shared ]
	[    --unbuffered ]
${UNITS_LINE}	[ COMMON_OPTIONS ]
	[ PV|Tag ... ]
`,
  options: [
    ...DISPLAY_REPORT_OPTIONS,
    { name: "all", short: "a", value: false },
    { name: "reportformat", value: true },
    { name: "colon", short: "c", value: false },
    { name: "columns", short: "C", value: false },
    { name: "maps", short: "m", value: false },
    { name: "short", short: "s", value: false },
  ],
  run: pvdisplayRun,
};

export const vgdisplay: CommandDef = {
  name: "vgdisplay",
  summary: "Display volume group information",
  usage: `  vgdisplay - Display volume group information

  vgdisplay
	[ -A|--activevolumegroups ]
	[ -c|--colon ]
	[ -C|--columns ]
	[ -o|--options String ]
	[ -S|--select String ]
	[ -s|--short ]
	[ -O|--sort String ]
	[    --aligned ]
	[    --binary ]
	[    --configreport log|vg|lv|pv|pvseg|seg ]
	[    --foreign ]
	[    --ignorelockingfailure ]
	[    --logonly ]
	[    --noheadings ]
	[    --nosuffix ]
	[    --readonly ]
	[    --shared ]
	[    --separator String ]
	[    --unbuffered ]
${UNITS_LINE}	[ COMMON_OPTIONS ]
	[ VG|Tag ... ]
`,
  options: [
    ...DISPLAY_REPORT_OPTIONS,
    { name: "reportformat", value: true },
    { name: "activevolumegroups", short: "A", value: false },
    { name: "colon", short: "c", value: false },
    { name: "columns", short: "C", value: false },
    { name: "short", short: "s", value: false },
  ],
  run: vgdisplayRun,
};

export const lvdisplay: CommandDef = {
  name: "lvdisplay",
  summary: "Display information about a logical volume",
  usage: `  lvdisplay - Display information about a logical volume

  lvdisplay
	[ -a|--all ]
	[ -c|--colon ]
	[ -C|--columns ]
	[ -H|--history ]
	[ -m|--maps ]
	[ -o|--options String ]
	[ -O|--sort String ]
	[ -S|--select String ]
	[    --aligned ]
	[    --binary ]
	[    --configreport log|vg|lv|pv|pvseg|seg ]
	[    --foreign ]
	[    --ignorelockingfailure ]
	[    --logonly ]
	[    --noheadings ]
	[    --nosuffix ]
	[    --readonly ]
	[    --segments ]
	[    --separator String ]
	[    --shared ]
	[    --unbuffered ]
${UNITS_LINE}	[ COMMON_OPTIONS ]
	[ VG|LV|Tag ... ]
`,
  options: [
    ...DISPLAY_REPORT_OPTIONS,
    { name: "all", short: "a", value: false },
    { name: "reportformat", value: true },
    { name: "colon", short: "c", value: false },
    { name: "columns", short: "C", value: false },
    { name: "maps", short: "m", value: false },
    { name: "history", short: "H", value: false },
    { name: "segments", value: false },
  ] satisfies OptionSpec[],
  run: lvdisplayRun,
};

