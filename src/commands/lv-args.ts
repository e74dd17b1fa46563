import { UsageError } from "../errors/errors.js";
import type { Args } from "../cli/args.js";
import { parseSizeArg, SizeArgError, type Sign } from "../base/units.js";

/**
 * Option values as lvm2's argument parsers read them (tools/lvmcmdline.c:
 * _size_arg and its signed variants, _extents_arg, int_arg, yes_no_arg,
 * readahead_arg, regionsize_mb_arg, ...). A bad value is a command-line
 * error: lvm2's reason (if any), "Invalid argument for --opt: value",
 * "Error during parsing of command line.", exit 3.
 */
export function invalidArgument(args: Args, name: string, value: string, reasons: readonly string[] = []): UsageError {
  return new UsageError([...reasons, `Invalid argument for --${name}: ${value}`, "Error during parsing of command line."].join("\n"), args.command, { runHelp: false });
}

/** A command-line error followed by "Run `CMD --help' for more information." (exit 3). */
export function usage(args: Args, message: string): UsageError {
  return new UsageError(message, args.command);
}

export type PercentOf = "VG" | "FREE" | "PVS" | "LV" | "ORIGIN";

export interface SizeValue {
  sign: Sign;
  sectors: number;
}

/** --size and friends: `mode` says which signs the option allows (lvm2's psize/ssize/nsize/size parsers). */
export function sizeValue(args: Args, name: string, mode: "any" | "nonneg" | "nonpos" | "unsigned", factorSectors = 2048): SizeValue | undefined {
  const v = args.str(name);
  if (v === undefined) return undefined;
  let parsed;
  try {
    parsed = parseSizeArg(v, factorSectors, false);
  } catch (e) {
    if (e instanceof SizeArgError) throw invalidArgument(args, name, v, e.lines);
    throw e;
  }
  if (mode === "nonneg" && parsed.sign === "-") throw invalidArgument(args, name, v, ["Size may not be negative."]);
  if (mode === "nonpos" && parsed.sign === "+") throw invalidArgument(args, name, v, ["Size may not be positive."]);
  if (mode === "unsigned" && parsed.sign) throw invalidArgument(args, name, v, ["Size may not be relative/signed."]);
  return { sign: parsed.sign, sectors: parsed.sectors };
}

export interface ExtentsValue {
  sign: Sign;
  count: number;
  percent: PercentOf | undefined;
}

const PERCENT_NAMES: Array<[string[], PercentOf]> = [
  [["v", "vg"], "VG"],
  [["l", "lv"], "LV"],
  [["p", "pv", "pvs"], "PVS"],
  [["f", "fr", "free"], "FREE"],
  [["o", "or", "origin"], "ORIGIN"],
];

/** --extents: [+-]N or N%{VG,FREE,PVS,LV,ORIGIN} (integers only, as in 2.03.16). */
export function extentsValue(args: Args, name: string, mode: "any" | "nonneg" | "nonpos" | "unsigned"): ExtentsValue | undefined {
  const v = args.str(name);
  if (v === undefined) return undefined;
  let s = v;
  let sign: Sign;
  if (s[0] === "+" || s[0] === "-") {
    sign = s[0] as Sign;
    s = s.slice(1);
  }
  const m = /^(\d+)(.*)$/.exec(s);
  // strtoull: a value past 2^64-1 is a parse error (ERANGE).
  if (!m || BigInt(m[1]!) > 0xffffffffffffffffn) throw invalidArgument(args, name, v);
  const count = Number(m[1]);
  let percent: PercentOf | undefined;
  if (m[2] !== "") {
    if (!m[2]!.startsWith("%")) throw invalidArgument(args, name, v);
    const what = m[2]!.slice(1);
    const hit = PERCENT_NAMES.find(([names]) => names.includes(what.toLowerCase()));
    if (!hit) throw invalidArgument(args, name, v, [`Specified %${what} is unknown.`]);
    percent = hit[1];
    // lvm2 prints UINT32_MAX with %d, hence -1.
    if (count >= 0xffffffff) throw invalidArgument(args, name, v, ["Percentage is too big (>=-1%)."]);
  }
  if (mode === "nonneg" && sign === "-") throw invalidArgument(args, name, v, ["Extents may not be negative."]);
  if (mode === "nonpos" && sign === "+") throw invalidArgument(args, name, v, ["Extents may not be positive."]);
  if (mode === "unsigned" && sign) throw invalidArgument(args, name, v, ["Extents may not be relative/signed."]);
  return { sign, count: Math.min(count, 0xffffffff), percent };
}

/** int_arg (no minus), int_arg_with_plus ("Number may not be negative."), int_arg_with_sign. */
export function numberValue(args: Args, name: string, mode: "unsigned" | "plus" | "signed"): { sign: Sign; value: number } | undefined {
  const v = args.str(name);
  if (v === undefined) return undefined;
  const m = /^([+-]?)(\d+)$/.exec(v);
  if (!m || BigInt(m[2]!) > 0xffffffffffffffffn) throw invalidArgument(args, name, v);
  const sign = (m[1] || undefined) as Sign;
  if (mode === "unsigned" && sign === "-") throw invalidArgument(args, name, v);
  if (mode === "plus" && sign === "-") throw invalidArgument(args, name, v, ["Number may not be negative."]);
  return { sign, value: Math.min(Number(m[2]), 0xffffffff) };
}

/** yes_no_arg: exactly "y" or "n". */
export function boolValue(args: Args, name: string): boolean | undefined {
  const v = args.str(name);
  if (v === undefined) return undefined;
  if (v === "y") return true;
  if (v === "n") return false;
  throw invalidArgument(args, name, v);
}

export type ActivateValue = "y" | "n" | "ay" | "ey" | "sy" | "ly";

/** activation_arg. */
export function activateValue(args: Args, name = "activate"): ActivateValue | undefined {
  const v = args.str(name);
  if (v === undefined) return undefined;
  const map: Record<string, ActivateValue> = { e: "ey", ey: "ey", ye: "ey", s: "sy", sy: "sy", ys: "sy", y: "y", a: "ay", ay: "ay", ya: "ay", n: "n", en: "n", ne: "n", sn: "n", ns: "n", l: "ly", ly: "ly", yl: "ly", ln: "n", nl: "n" };
  const r = map[v];
  if (!r) throw invalidArgument(args, name, v);
  return r;
}

export const ALLOC_POLICY_NAMES = ["contiguous", "cling", "cling_by_tags", "normal", "anywhere", "inherit"] as const;
export type AllocArg = (typeof ALLOC_POLICY_NAMES)[number];

/** alloc_arg. */
export function allocValue(args: Args): AllocArg | undefined {
  const v = args.str("alloc");
  if (v === undefined) return undefined;
  if (!(ALLOC_POLICY_NAMES as readonly string[]).includes(v)) throw invalidArgument(args, "alloc", v, [`Unrecognised allocation policy ${v}`]);
  return v as AllocArg;
}

/** readahead_arg: "auto", "none", or a size in sectors (no minus). undefined = not given. */
export function readaheadValue(args: Args): { kind: "auto" } | { kind: "none" } | { kind: "sectors"; sectors: number } | undefined {
  const v = args.str("readahead");
  if (v === undefined) return undefined;
  if (v.toLowerCase() === "auto") return { kind: "auto" };
  if (v.toLowerCase() === "none") return { kind: "none" };
  let parsed;
  try {
    parsed = parseSizeArg(v, 1, false);
  } catch (e) {
    if (e instanceof SizeArgError) throw invalidArgument(args, "readahead", v, e.lines);
    throw e;
  }
  if (parsed.sign === "-") throw invalidArgument(args, "readahead", v);
  return { kind: "sectors", sectors: parsed.sectors };
}

/** permission_arg. */
export function permissionValue(args: Args): "rw" | "r" | undefined {
  const v = args.str("permission");
  if (v === undefined) return undefined;
  if (v === "rw" || v === "wr") return "rw";
  if (v === "r") return "r";
  throw invalidArgument(args, "permission", v);
}

/** regionsize_mb_arg (page size 4 KiB). */
export function regionSizeValue(args: Args): number | undefined {
  const v = args.str("regionsize");
  if (v === undefined) return undefined;
  let parsed;
  try {
    parsed = parseSizeArg(v, 2048, false);
  } catch (e) {
    if (e instanceof SizeArgError) throw invalidArgument(args, "regionsize", v, e.lines);
    throw e;
  }
  if (parsed.sign === "-") throw invalidArgument(args, "regionsize", v, ["Region size may not be negative."]);
  const n = parsed.sectors;
  if (n > 0xffffffff) throw invalidArgument(args, "regionsize", v, [`Region size is too big (max ${0xffffffff}).`]);
  if (!n) throw invalidArgument(args, "regionsize", v, ["Region size may not be zero."]);
  if (n % 8) throw invalidArgument(args, "regionsize", v, ["Region size must be a multiple of machine memory page size (4096 bytes)."]);
  if ((n & (n - 1)) !== 0) throw invalidArgument(args, "regionsize", v, ["Region size must be a power of 2."]);
  return n;
}

/** mirrorlog: core | disk | mirrored → log count 0, 1, 2. */
export function mirrorLogValue(args: Args): number | undefined {
  const v = args.str("mirrorlog");
  if (v === undefined) return undefined;
  if (v === "core") return 0;
  if (v === "disk") return 1;
  if (v === "mirrored") return 2;
  throw invalidArgument(args, "mirrorlog", v, [`Mirror log type "${v}" is unknown.`]);
}

const TAG_RE = /^[A-Za-z0-9_+.\-/=!:&#]+$/;

export function validTag(tag: string): boolean {
  return tag.length > 0 && tag.length <= 1024 && TAG_RE.test(tag);
}

/** tag_arg: an optional leading '@', then tag characters. */
export function tagValues(args: Args, name: string): string[] {
  return args.strs(name).map((v) => {
    const t = v.startsWith("@") ? v.slice(1) : v;
    if (!validTag(t)) throw invalidArgument(args, name, v);
    return t;
  });
}

/** The segment types lvm2 knows; ulvm creates only linear/striped/mirror. */
export const KNOWN_SEGTYPES = [
  "linear", "striped", "mirror", "snapshot", "thin", "thin-pool", "cache", "cache-pool", "writecache", "integrity",
  "error", "zero", "raid0", "raid0_meta", "raid1", "raid10", "raid4", "raid5", "raid5_n", "raid5_la", "raid5_ra",
  "raid5_ls", "raid5_rs", "raid6", "raid6_zr", "raid6_nr", "raid6_nc", "raid6_ls_6", "raid6_rs_6", "raid6_la_6",
  "raid6_ra_6", "raid6_n_6", "vdo", "vdo-pool", "raid",
];

/** segtype_arg: an unknown name is refused while parsing. */
export function typeValue(args: Args): string | undefined {
  const v = args.str("type");
  if (v === undefined) return undefined;
  if (!KNOWN_SEGTYPES.includes(v)) throw invalidArgument(args, "type", v, [`WARNING: Unrecognised segment type ${v}`]);
  return v;
}

/**
 * No command definition matches (lvmcmdline.c _find_command): the error,
 * then, when lvm2 can tell, the syntax of the one form the command has
 * ("Correct command syntax is:") or of the nearest form ("Nearest similar
 * command has syntax:"), printed as print_usage does (on stdout).
 */
export function noMatchingSyntax(out: { error(l: string): void; warn(l: string): void; print(l: string): void; write(t: string): void }, command: string, hint?: { correct: boolean; lines: string[] }): UsageError {
  out.error(`No command with matching syntax recognised.  Run '${command} --help' for more information.`);
  if (hint) {
    out.warn(hint.correct ? "Correct command syntax is:" : "Nearest similar command has syntax:");
    for (const l of hint.lines) out.print(l);
    out.write("\n");
  }
  return new UsageError("", command, { runHelp: false });
}
