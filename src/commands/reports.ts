import type { CommandDef } from "../cli/command-def.js";
import type { Args, OptionSpec } from "../cli/args.js";
import { CommandError, UsageError } from "../errors/errors.js";
import { parseUnits, UNITS_R, type UnitSpec } from "../base/units.js";
import { canonical } from "./device-list.js";
import { lvNameArg, vgNameArg } from "./common.js";
import type { ToolContext } from "./toolcontext.js";
import { Report, ReportSetupError, type ReportFlags } from "../report/engine.js";
import { REPORT_FIELDS, REPORT_TYPES, RT, type ReportEnv, type ReportObject } from "../report/field-values.js";
import { Inventory } from "../report/inventory.js";
import type { LvView, PvView, VgView } from "../report/vg-view.js";

/**
 * pvs, vgs and lvs (tools/reporter.c): pick the columns (-o, with lvm2's
 * +/-/# forms), sort keys (-O) and selection (-S), work out the report type
 * the columns need (an lvs with `devices` becomes a segment report, a pvs
 * with LV columns a PV-segment report), walk the VGs, LVs, segments or PVs
 * lvm2 would walk, and print basic, --rows, --nameprefixes or JSON output.
 */
export const REPORT_OPTIONS: OptionSpec[] = [
  { name: "all", short: "a", value: false },
  { name: "options", short: "o", value: true, repeat: true },
  { name: "select", short: "S", value: true, repeat: true },
  { name: "sort", short: "O", value: true, repeat: true },
  { name: "aligned", value: false },
  { name: "binary", value: false },
  { name: "configreport", value: true, repeat: true },
  { name: "foreign", value: false },
  { name: "ignorelockingfailure", value: false },
  { name: "logonly", value: false },
  { name: "nameprefixes", value: false },
  { name: "noheadings", value: false },
  { name: "nosuffix", value: false },
  { name: "readonly", value: false },
  { name: "reportformat", value: true },
  { name: "rows", value: false },
  { name: "separator", value: true },
  { name: "shared", value: false },
  { name: "unbuffered", value: false },
  { name: "units", value: true },
  { name: "unquoted", value: false },
  { name: "partial", short: "P", value: false },
  { name: "ignoreskippedcluster", value: false },
  { name: "trustcache", value: false },
];

export type ReportCommand = "lvs" | "vgs" | "pvs";

const DEFAULTS: Record<number, { cols: string; verbose: string; sort: string }> = {
  [RT.LVS]: {
    cols: "lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,data_percent,metadata_percent,move_pv,mirror_log,copy_percent,convert_lv",
    verbose: "lv_name,vg_name,seg_count,lv_attr,lv_size,lv_major,lv_minor,lv_kernel_major,lv_kernel_minor,pool_lv,origin,data_percent,metadata_percent,move_pv,copy_percent,mirror_log,convert_lv,lv_uuid,lv_profile",
    sort: "vg_name,lv_name",
  },
  [RT.VGS]: {
    cols: "vg_name,pv_count,lv_count,snap_count,vg_attr,vg_size,vg_free",
    verbose: "vg_name,vg_attr,vg_extent_size,pv_count,lv_count,snap_count,vg_size,vg_free,vg_uuid,vg_profile",
    sort: "vg_name",
  },
  [RT.LABEL]: {
    cols: "pv_name,vg_name,pv_fmt,pv_attr,pv_size,pv_free",
    verbose: "pv_name,vg_name,pv_fmt,pv_attr,pv_size,pv_free,dev_size,pv_uuid",
    sort: "pv_name",
  },
  [RT.SEGS]: {
    cols: "lv_name,vg_name,lv_attr,stripes,segtype,seg_size",
    verbose: "lv_name,vg_name,lv_attr,seg_start,seg_size,stripes,segtype,stripesize,chunksize",
    sort: "vg_name,lv_name,seg_start",
  },
  [RT.PVSEGS]: {
    cols: "pv_name,vg_name,pv_fmt,pv_attr,pv_size,pv_free,pvseg_start,pvseg_size",
    verbose: "pv_name,vg_name,pv_fmt,pv_attr,pv_size,pv_free,pvseg_start,pvseg_size,lv_name,seg_start_pe,segtype,seg_pe_ranges",
    sort: "pv_name,pvseg_start",
  },
};

/** report_prefix of a report type ("lv", "seg", "pv", "pvseg", "vg"): JSON section name and -o -field prefix. */
const PREFIX: Record<number, string> = { [RT.LVS]: "lv", [RT.VGS]: "vg", [RT.LABEL]: "pv", [RT.SEGS]: "seg", [RT.PVSEGS]: "pvseg" };

export type ReportFormat = "basic" | "json" | "json_std";

/** Units, suffix and report format: shared by reports and the *display commands. */
export function unitsFromArgs(args: Args): UnitSpec {
  const u = args.str("units");
  if (u === undefined) return UNITS_R;
  const spec = parseUnits(u);
  if (!spec) throw new UsageError("Invalid units specification", args.command);
  return spec;
}

export function reportFormatFromArgs(args: Args): ReportFormat {
  const f = args.str("reportformat");
  if (f === undefined || f === "basic") return "basic";
  if (f === "json" || f === "json_std") return f;
  throw new UsageError(`Invalid argument for --reportformat: ${f}\nError during parsing of command line.`, args.command, { runHelp: false });
}

export function reportEnv(ctx: ToolContext, args: Args): ReportEnv {
  const dev = ctx.paths.devDir;
  return {
    units: unitsFromArgs(args),
    suffix: !args.has("nosuffix"),
    devDir: dev.endsWith("/") ? dev : dev + "/",
    binary: args.has("binary"),
  };
}

/** -o processing (_get_report_options): replace, +add, -remove, #compact, in the order given. */
function columnList(args: Args, defaults: string, prefix: string): { cols: string; compact: string | undefined } {
  let list = defaults.split(",").filter((s) => s);
  let compact: string | undefined;
  for (const o of args.strs("options")) {
    if (o === "") throw new CommandError("Invalid options string: ");
    const action = o[0];
    const body = action === "+" || action === "-" || action === "#" ? o.slice(1) : o;
    const items = body.split(",").filter((s) => s);
    if (action === "+") list = list.concat(items);
    else if (action === "-") for (const it of items) removeOption(list, prefix, it);
    else if (action === "#") compact = body;
    else list = items;
  }
  return { cols: list.join(","), compact };
}

/** _del_option_from_list: the last entry equal to `name`, with or without the report prefix. */
function removeOption(list: string[], prefix: string, name: string): void {
  const strip = (s: string): string => {
    if (!s.startsWith(prefix)) return s;
    const r = s.slice(prefix.length);
    return r.startsWith("_") ? r.slice(1) : r;
  };
  const a = strip(name);
  for (let i = list.length - 1; i >= 0; i--) {
    if (list[i] === name || strip(list[i]!) === a) {
      list.splice(i, 1);
      return;
    }
  }
}

interface Walk {
  ctx: ToolContext;
  inv: Inventory;
  env: ReportEnv;
  report: Report<ReportObject>;
  all: boolean;
  failures: number;
}

const obj = (w: Walk, o: Partial<ReportObject>): ReportObject => ({
  env: w.env, vgv: undefined, lvv: undefined, seg: undefined, pvv: undefined, pvseg: undefined, ...o,
});

/** The VGs named by arguments (or all), with lvm2's not-found errors. */
export function selectVgs(
  ctx: ToolContext,
  inv: Inventory,
  names: readonly string[] | undefined,
  tags: readonly string[] = [],
  /** process_each_lv reads VGs holding LVs with the tags as well. */
  lvTags = false,
): { vgs: VgView[]; failures: number } {
  const out: VgView[] = [];
  let failures = 0;
  if (!names || (names.length === 0 && tags.length === 0)) {
    for (const n of inv.vgNames) {
      const v = inv.vg(n);
      if (v) out.push(v);
    }
    return { vgs: out, failures };
  }
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) continue;
    seen.add(n);
    const v = inv.vgNames.includes(n) ? inv.vg(n) : undefined;
    if (!v) {
      ctx.out.error(`Volume group "${n}" not found`);
      ctx.out.error(`Cannot process volume group ${n}`);
      failures++;
      continue;
    }
    out.push(v);
  }
  if (tags.length) {
    for (const n of inv.vgNames) {
      if (seen.has(n)) continue;
      const v = inv.vg(n, false);
      if (!v) continue;
      if (v.vg.tags.some((t) => tags.includes(t)) || (lvTags && v.vg.lvs.some((l) => l.tags.some((t) => tags.includes(t))))) {
        inv.vg(n);
        out.push(v);
        seen.add(n);
      }
    }
  }
  return { vgs: out, failures };
}

/**
 * process_each_lv: LVs of the named VGs or "vg/lv" arguments (all when none),
 * hidden ones only with -a or when named. Calls `each` in lvm2's order.
 */
export function forEachLv(
  ctx: ToolContext,
  inv: Inventory,
  positional: readonly string[],
  all: boolean,
  each: (lvv: LvView) => void,
  /** vgs and pvs read exported VGs (lvm2's READ_ALLOW_EXPORTED); lvs, lvdisplay, lvscan do not. */
  allowExported = false,
): number {
  const vgNames: string[] = [];
  const lvNames = new Map<string, Set<string>>();
  const wholeVg = new Set<string>();
  const tags: string[] = [];
  for (const a of positional) {
    if (a.startsWith("@")) {
      tags.push(a.slice(1));
      continue;
    }
    const { vg, lv } = lvNameArg(a, ctx.paths.devDir);
    if (vg === undefined) {
      const name = vgNameArg(lv, ctx.paths.devDir);
      if (!vgNames.includes(name)) vgNames.push(name);
      wholeVg.add(name);
    } else {
      if (!vgNames.includes(vg)) vgNames.push(vg);
      let s = lvNames.get(vg);
      if (!s) lvNames.set(vg, (s = new Set()));
      s.add(lv);
    }
  }
  const { vgs, failures } = selectVgs(ctx, inv, positional.length ? vgNames : undefined, tags, true);
  let failed = failures;
  for (const v of vgs) {
    if (v.exported && !allowExported) {
      // process_each_lv does not read exported VGs; naming one is an error.
      if (wholeVg.has(v.name) || lvNames.has(v.name)) {
        ctx.out.error(`Volume group ${v.name} is exported`);
        failed++;
      }
      continue;
    }
    const named = wholeVg.has(v.name) ? undefined : lvNames.get(v.name);
    const processAll = (!named && (tags.length === 0 || wholeVg.has(v.name))) || (tags.length > 0 && v.vg.tags.some((t) => tags.includes(t)));
    const found = new Set<string>();
    for (const l of v.lvs) {
      if (l.segs[0]?.seg.type === "snapshot") continue;
      // Hidden LVs only with --all or when named.
      if (!named && !l.visible && !all) continue;
      let take = processAll;
      if (named?.has(l.name)) {
        found.add(l.name);
        take = true;
      }
      if (!take && tags.length > 0 && l.lv.tags.some((t) => tags.includes(t))) take = true;
      if (take) each(l);
    }
    for (const n of named ?? []) {
      if (found.has(n)) continue;
      ctx.out.error(`Failed to find logical volume "${v.name}/${n}"`);
      failed++;
    }
  }
  return failed;
}

/**
 * process_each_pv: PVs of every VG (missing ones included) then orphans,
 * restricted to the devices or @tags named. Calls `each` in lvm2's order.
 */
export function forEachPv(ctx: ToolContext, inv: Inventory, positional: readonly string[], each: (pvv: PvView) => void, all = false): number {
  const tags = positional.filter((a) => a.startsWith("@")).map((a) => a.slice(1));
  const devArgs = positional.filter((a) => !a.startsWith("@"));
  let failures = 0;
  const wanted = new Map<string, string>();
  for (const d of devArgs) {
    const real = canonical(d);
    const sd = inv.scan.byReal(real);
    if (!sd) {
      ctx.out.error(`Cannot use ${d}: device not found`);
      failures++;
      continue;
    }
    wanted.set(real, d);
  }
  const processAll = positional.length === 0;
  const done = new Set<string>();
  const visit = (p: PvView): void => {
    const real = p.device?.entry.real;
    const named = real !== undefined && wanted.has(real);
    const byTag = tags.length > 0 && (p.pv?.tags.some((t) => tags.includes(t)) ?? false);
    if (!processAll && !named && !byTag) return;
    if (named) done.add(real);
    each(p);
  };
  for (const n of inv.vgNames) {
    const v = inv.vg(n);
    if (!v) continue;
    for (const p of v.pvs) visit(p);
  }
  for (const p of inv.orphans()) visit(p);
  // pvs -a: devices that are not PVs as well.
  if (all && processAll) for (const p of inv.nonPvs()) each(p);
  for (const [real, name] of wanted) {
    if (done.has(real)) continue;
    ctx.out.error(`Failed to find physical volume "${name}".`);
    failures++;
  }
  return failures;
}

/** JSON framing of one report (libdm's report group with a single report). */
export function jsonLines(section: string, rows: readonly string[]): string[] {
  const out = ["{", `    "report": [`, `        {`, `            "${section}": [`];
  rows.forEach((r, i) => out.push(`                ${r}${i === rows.length - 1 ? "" : ","}`));
  out.push("            ]", "        }", "    ]", "}");
  return out;
}

/** Run pvs/vgs/lvs. */
export async function runReport(ctx: ToolContext, args: Args, command: ReportCommand): Promise<number> {
  const format = reportFormatFromArgs(args);
  const env = reportEnv(ctx, args);
  const segments = args.has("segments");
  const initialType =
    command === "lvs" ? (segments ? RT.SEGS : RT.LVS) : command === "vgs" ? RT.VGS : segments ? RT.PVSEGS : RT.LABEL;
  const defaults = DEFAULTS[initialType]!;
  const prefix = PREFIX[initialType]!;
  const { cols, compact } = columnList(args, args.has("verbose") ? defaults.verbose : defaults.cols, prefix);
  const keys = args.has("sort") ? args.str("sort") : defaults.sort;
  const selection = args.has("select") ? args.str("select") : undefined;

  const json = format !== "basic";
  const flags: ReportFlags = {
    aligned: true, buffered: true, headings: true, fieldPrefixes: false, quoted: true, columnsAsRows: false, separator: " ",
  };
  if (args.has("separator")) {
    flags.separator = args.str("separator")!;
    flags.aligned = false;
  }
  if (args.has("aligned")) flags.aligned = true;
  if (args.has("unbuffered") && !args.has("sort")) flags.buffered = false;
  if (args.has("noheadings")) flags.headings = false;
  if (args.has("nameprefixes")) {
    flags.aligned = false;
    flags.fieldPrefixes = true;
  }
  if (args.has("unquoted")) flags.quoted = false;
  if (args.has("rows")) flags.columnsAsRows = true;
  if (json) {
    flags.aligned = false;
    flags.headings = false;
    flags.columnsAsRows = false;
    flags.buffered = true;
  }

  const inv = await Inventory.load(ctx);
  let report: Report<ReportObject>;
  try {
    report = new Report(REPORT_TYPES, REPORT_FIELDS, initialType, cols, keys, flags, selection);
    if (compact !== undefined) report.compactFields(compact);
  } catch (e) {
    if (e instanceof ReportSetupError) {
      for (const l of e.warnLines) ctx.out.warn(l);
      for (const l of e.errorLines) ctx.out.error(l);
      // The report never joined lvm2's JSON group: only the outer "report" array is printed.
      if (json) ctx.out.write(["{", `    "report": [`, "    ]", "}"].map((l) => `  ${l}\n`).join(""));
      return e.helpOnly ? 0 : 5;
    }
    throw e;
  }

  // _get_final_report_type
  let t = report.reportTypes;
  if (t & RT.SEGS) t |= RT.LVS;
  if (t & RT.PVSEGS) t |= RT.PVS;
  const lvish = RT.LVS | RT.LVSINFO | RT.LVSSTATUS | RT.LVSINFOSTATUS;
  const argsArePvs = command === "pvs";
  if (t & lvish && t & (RT.PVS | RT.LABEL) && !argsArePvs) {
    ctx.out.error(`Can't report LV and PV fields at the same time in report type "${prefix}".`);
    if (json) ctx.out.write(["{", `    "report": [`, "    ]", "}"].map((l) => `  ${l}\n`).join(""));
    return 5;
  }
  let finalType: number;
  if (t & RT.PVSEGS || (t & (RT.PVS | RT.LABEL) && t & lvish)) finalType = RT.PVSEGS;
  else if (t & RT.PVS || (t & RT.LABEL && t & RT.VGS)) finalType = RT.PVS;
  else if (t & RT.SEGS) finalType = RT.SEGS;
  else if (t & lvish) finalType = RT.LVS;
  else if (t & RT.LABEL) finalType = RT.LABEL;
  else finalType = RT.VGS;

  const w: Walk = { ctx, inv, env, report, all: args.has("all"), failures: 0 };
  const positional = args.positional;
  switch (finalType) {
    case RT.LVS:
      w.failures += forEachLv(ctx, inv, positional, w.all, (lvv) => report.add(obj(w, { vgv: lvv.vgv, lvv })), command !== "lvs");
      break;
    case RT.SEGS:
      w.failures += forEachLv(
        ctx,
        inv,
        positional,
        w.all,
        (lvv) => {
          for (const seg of lvv.segs) report.add(obj(w, { vgv: lvv.vgv, lvv, seg }));
        },
        command !== "lvs",
      );
      break;
    case RT.VGS: {
      const tags = positional.filter((a) => a.startsWith("@")).map((a) => a.slice(1));
      const names = positional.filter((a) => !a.startsWith("@")).map((a) => vgNameArg(a, ctx.paths.devDir));
      const { vgs, failures } = selectVgs(ctx, inv, positional.length ? names : undefined, tags);
      w.failures += failures;
      for (const v of vgs) report.add(obj(w, { vgv: v }));
      break;
    }
    case RT.PVS:
    case RT.LABEL:
    case RT.PVSEGS:
      if (argsArePvs) w.failures += walkPvs(w, positional, finalType);
      else {
        const names = positional.filter((a) => !a.startsWith("@")).map((a) => vgNameArg(a, ctx.paths.devDir));
        const { vgs, failures } = selectVgs(ctx, inv, positional.length ? names : undefined);
        w.failures += failures;
        for (const v of vgs) for (const p of v.pvs) addPv(w, p, finalType);
      }
      break;
  }
  emit(ctx, format, prefix, [], report, args.has("binary"));
  return w.failures ? 5 : 0;
}

function addPv(w: Walk, p: PvView, type: number): void {
  if (type !== RT.PVSEGS) {
    w.report.add(obj(w, { vgv: p.vgv, pvv: p }));
    return;
  }
  if (!p.segments.length && p.orphan) {
    // lvm2 gives an orphan one free segment as long as its PE count (0).
    w.report.add(obj(w, { vgv: undefined, pvv: p, pvseg: { pvv: p, startPe: 0, lengthExtents: 0, lvv: undefined, seg: undefined, areaIndex: 0 } }));
    return;
  }
  for (const s of p.segments) w.report.add(obj(w, { vgv: p.vgv, pvv: p, pvseg: s, lvv: s.lvv, seg: s.seg }));
}

function walkPvs(w: Walk, positional: readonly string[], type: number): number {
  if (type === RT.LABEL) {
    // process_each_label: every labelled device (PVs of VGs whose device is gone have no label).
    let failures = 0;
    const devs = w.inv.labelledDevices();
    const byReal = new Map(devs.map((d) => [d.entry.real, d]));
    const views = new Map<string, PvView>();
    for (const n of w.inv.vgNames) for (const p of w.inv.vg(n)?.pvs ?? []) if (p.device) views.set(p.device.entry.real, p);
    for (const p of w.inv.orphans()) if (p.device) views.set(p.device.entry.real, p);
    const list = positional.length
      ? positional.flatMap((a) => {
          const d = byReal.get(canonical(a));
          if (!d) {
            w.ctx.out.error(w.inv.scan.byReal(canonical(a)) ? `No physical volume label read from ${a}.` : `Cannot use ${a}: device not found`);
            failures++;
            return [];
          }
          return [d];
        })
      : devs;
    for (const d of list) {
      const p = views.get(d.entry.real);
      if (p) w.report.add(obj(w, { vgv: undefined, pvv: p }));
    }
    return failures;
  }
  return forEachPv(w.ctx, w.inv, positional, (p) => addPv(w, p, type), w.all);
}

function emit(ctx: ToolContext, format: ReportFormat, section: string, _rows: string[], report?: Report<ReportObject>, binary = false): void {
  if (format === "basic") {
    if (!report) return;
    const lines = report.outputBasic();
    if (lines.length) ctx.out.write(lines.map((l) => `  ${l}\n`).join(""));
    return;
  }
  const rows = report ? report.outputJsonRows(format === "json_std", binary) : [];
  ctx.out.write(jsonLines(section, rows).map((l) => `  ${l}\n`).join(""));
}

const USAGE_TAIL = `	[    --aligned ]
	[    --binary ]
	[    --configreport log|vg|lv|pv|pvseg|seg ]
	[    --foreign ]
	[    --ignorelockingfailure ]
	[    --logonly ]
	[    --nameprefixes ]
	[    --noheadings ]
	[    --nosuffix ]
	[    --readonly ]
	[    --reportformat basic|json|json_std ]
	[    --rows ]
	[    --separator String ]
	[    --shared ]
	[    --unbuffered ]
	[    --units [Number]r|R|h|H|b|B|s|S|k|K|m|M|g|G|t|T|p|P|e|E ]
	[    --unquoted ]
	[ COMMON_OPTIONS ]
`;

export const lvs: CommandDef = {
  name: "lvs",
  summary: "Display information about logical volumes",
  usage: `  lvs - Display information about logical volumes

  lvs
	[ -H|--history ]
	[ -a|--all ]
	[ -o|--options String ]
	[ -S|--select String ]
	[ -O|--sort String ]
	[    --segments ]
${USAGE_TAIL}	[ VG|LV|Tag ... ]
`,
  options: [...REPORT_OPTIONS, { name: "segments", value: false }, { name: "history", short: "H", value: false }],
  run: (ctx, args) => runReport(ctx, args, "lvs"),
};

export const vgs: CommandDef = {
  name: "vgs",
  summary: "Display information about volume groups",
  usage: `  vgs - Display information about volume groups

  vgs
	[ -a|--all ]
	[ -o|--options String ]
	[ -S|--select String ]
	[ -O|--sort String ]
${USAGE_TAIL}	[ VG|Tag ... ]
`,
  options: REPORT_OPTIONS,
  run: (ctx, args) => runReport(ctx, args, "vgs"),
};

export const pvs: CommandDef = {
  name: "pvs",
  summary: "Display information about physical volumes",
  usage: `  pvs - Display information about physical volumes

  pvs
	[ -a|--all ]
	[ -o|--options String ]
	[ -S|--select String ]
	[ -O|--sort String ]
	[    --segments ]
${USAGE_TAIL}	[ PV|Tag ... ]
`,
  options: [...REPORT_OPTIONS, { name: "segments", value: false }],
  run: (ctx, args) => runReport(ctx, args, "pvs"),
};
