/**
 * Sizes as lvm2 reads and prints them.
 *
 * Reading (tools/lvmcmdline.c _size_arg): an optional sign, a decimal number,
 * then one of k m g t p e (powers of 1024, either case), b (bytes, must be a
 * multiple of 512) or s (sectors); no suffix means the command's default unit
 * (MiB for -L). The result is in 512-byte sectors, truncated.
 *
 * Printing (libdm-string.c dm_size_to_string): sizes in sectors rendered in a
 * unit: 'r'/'h' (human, binary; 'R'/'H' decimal; 'r' adds '<' when rounding
 * hides a remainder), a fixed unit (b s k m g t p e binary, B S K M G T P E
 * decimal) or a custom multiple ("4m" shows sizes as multiples of 4 MiB).
 */
export type Sign = "+" | "-" | undefined;

export interface SizeArg {
  sign: Sign;
  /** Size in 512-byte sectors (when percent is undefined). */
  sectors: number;
  /** %VG, %FREE, %PVS, %LV, %ORIGIN: the number and the base. */
  percent: { value: number; of: "VG" | "FREE" | "PVS" | "LV" | "ORIGIN" } | undefined;
}

export class SizeArgError extends Error {
  /** lvm2's lines, printed before "Invalid argument for --opt: value". */
  constructor(readonly lines: string[]) {
    super(lines.join("\n"));
  }
}

const SUFFIXES = "kmgtpebs";

/** Parse a size argument; `defaultFactorSectors` applies when no unit is given (2048 for MiB). */
export function parseSizeArg(text: string, defaultFactorSectors: number, allowPercent = false): SizeArg {
  let val = text;
  let sign: Sign;
  if (val[0] === "+" || val[0] === "-") {
    sign = val[0] as Sign;
    val = val.slice(1);
  }
  if (val[0] === "+" || val[0] === "-") throw new SizeArgError(["Multiple sign symbols detected."]);
  if (!/^[0-9.]/.test(val)) throw new SizeArgError(["Size requires number argument."]);
  const m = /^(\d*\.?\d*(?:[eE][+-]?\d+)?)/.exec(val)!;
  const numText = m[1]!;
  if (numText === "" || numText === ".") throw new SizeArgError([`Can't parse size argument at '${val[0] ?? ""}'.`]);
  let v = Number(numText);
  const rest = val.slice(numText.length);
  if (allowPercent && rest.startsWith("%")) {
    const of = percentBase(rest.slice(1));
    if (v >= 0xffffffff) throw new SizeArgError([`Percentage is too big (>=${0xffffffff}%).`]);
    return { sign, sectors: 0, percent: { value: v, of } };
  }
  if (rest.length) {
    const i = SUFFIXES.indexOf(rest[0]!.toLowerCase());
    if (i < 0) throw new SizeArgError(["Can't parse size argument."]);
    if (i === 7) {
      // already sectors
    } else if (i === 6) {
      const bytes = Math.trunc(v);
      const adj = bytes % 512;
      if (adj) throw new SizeArgError([`Size is not a multiple of 512. Try using ${bytes + 512 - adj - 512} or ${bytes + 512 - adj}.`]);
      v /= 512;
    } else {
      for (let k = i; k > 0; k--) v *= 1024;
      v *= 2;
    }
  } else v *= defaultFactorSectors;
  if (v >= 2 ** 55) throw new SizeArgError(["Size is too big (>=16EiB)."]);
  return { sign, sectors: Math.trunc(v), percent: undefined };
}

function percentBase(s: string): "VG" | "FREE" | "PVS" | "LV" | "ORIGIN" {
  const u = s.toUpperCase();
  if (u === "V" || u === "VG") return "VG";
  if (u === "L" || u === "LV") return "LV";
  if (u === "P" || u === "PV" || u === "PVS") return "PVS";
  if (u === "F" || u === "FR" || u === "FREE") return "FREE";
  if (u === "O" || u === "OR" || u === "ORIGIN") return "ORIGIN";
  throw new SizeArgError([`Specified %${s} is unknown.`]);
}

/** Extents argument (-l): [+-]N or N%VG|%FREE|%PVS|%LV|%ORIGIN. */
export interface ExtentsArg {
  sign: Sign;
  count: number;
  percent: SizeArg["percent"];
}

export function parseExtentsArg(text: string): ExtentsArg | undefined {
  let val = text;
  let sign: Sign;
  if (val[0] === "+" || val[0] === "-") {
    sign = val[0] as Sign;
    val = val.slice(1);
  }
  const m = /^(\d+)(.*)$/.exec(val);
  if (!m) return undefined;
  const count = Number(m[1]);
  if (m[2] === "") return { sign, count, percent: undefined };
  if (!m[2]!.startsWith("%")) return undefined;
  try {
    return { sign, count: 0, percent: { value: count, of: percentBase(m[2]!.slice(1)) } };
  } catch {
    return undefined;
  }
}

/**
 * --units argument (libdm-string.c dm_units_to_factor, strict mode): an
 * optional count then one unit character. `type` is the character lvm2 keeps
 * (the unit itself, 'U' for a custom multiple such as "4m", or h/H/r/R for
 * human-readable output); `factorBytes` is the size of one unit.
 */
export interface UnitSpec {
  type: string;
  /** Bytes per unit (unused for human-readable types). */
  factorBytes: number;
}

const KIB_FACTORS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5, e: 1024 ** 6 };
const KB_FACTORS: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** Parse --units; undefined when lvm2 would say "Invalid units specification". */
export function parseUnits(text: string): UnitSpec | undefined {
  let rest = text;
  let count = 1;
  let custom = 0;
  if (/^[0-9]/.test(rest)) {
    // strtod for the value, strtoull for its integer part (as lvm2 does both).
    const m = /^([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)/.exec(rest)!;
    custom = Number(m[1]);
    count = Number(/^[0-9]+/.exec(rest)![0]);
    if (Math.abs(count - custom) < Number.EPSILON) custom = 0;
    rest = rest.slice(m[1]!.length);
  }
  if (rest.length > 1) return undefined;
  const u = rest[0] ?? "";
  let type = count === 1 ? u : "U";
  let multiplier: number;
  if ("hHrR".includes(u) && u !== "") {
    multiplier = 1;
    count = 1;
    type = u;
  } else if (u === "b" || u === "B") multiplier = 1;
  else if (u === "s" || u === "S") multiplier = 512;
  else if (KIB_FACTORS[u] !== undefined) multiplier = KIB_FACTORS[u]!;
  else if (KB_FACTORS[u] !== undefined) multiplier = KB_FACTORS[u]!;
  else return undefined;
  const factor = Math.abs(custom) < Number.EPSILON ? count * multiplier : Math.trunc(custom * multiplier);
  if (!factor) return undefined;
  return { type, factorBytes: factor };
}

/** dm_size_to_string's suffix table: [long, short, unit] per index. */
const SIZE_STR: ReadonlyArray<readonly [string, string, string]> = [
  ["         ", "   ", " "], // 0: unknown unit
  [" Exabyte", " EB", "E"], [" Petabyte", " PB", "P"], [" Terabyte", " TB", "T"], [" Gigabyte", " GB", "G"],
  [" Megabyte", " MB", "M"], [" Kilobyte", " KB", "K"], [" Byte    ", " B", "B"], // 1..7: shared (si_unit_consistency = 0)
  [" Exbibyte", " EiB", "e"], [" Pebibyte", " PiB", "p"], [" Tebibyte", " TiB", "t"], [" Gibibyte", " GiB", "g"],
  [" Mebibyte", " MiB", "m"], [" Kibibyte", " KiB", "k"], [" Byte    ", " B", "b"], // 8..14: powers of 1024
  [" Exabyte", " EB", "E"], [" Petabyte", " PB", "P"], [" Terabyte", " TB", "T"], [" Gigabyte", " GB", "G"],
  [" Megabyte", " MB", "M"], [" Kilobyte", " kB", "K"], // 15..20: powers of 1000
  [" Byte    ", " B ", "B"], [" Units   ", " Un", "U"], [" Sectors ", " Se", "S"], // 21..23: special
];
const BASE_UNKNOWN = 0;
const BASE_1024 = 8;
const BASE_1000 = 15;
const BASE_SPECIAL = 21;
const PREFIXES_1000 = "EPTGMK";
const PREFIXES_1024 = "eptgmk";
const SPECIAL = "BUS";

export type SuffixStyle = "long" | "short" | "unit";
const STYLE_INDEX: Record<SuffixStyle, 0 | 1 | 2> = { long: 0, short: 1, unit: 2 };

const formatted = new Map<string, string>();

/**
 * dm_size_to_string with si_unit_consistency = 1 (lvm2's default): `sectors`
 * rendered in `unit`; the suffix style is "unit" for reports ("4.00m"),
 * "short" for messages and *display ("4.00 MiB"). Human-readable types always
 * carry a suffix; 'r'/'R' add '<' when rounding hides a remainder.
 * Memoised: a report prints the same few sizes over and over.
 */
export function formatSize(sectors: number, unit: UnitSpec, includeSuffix: boolean, style: SuffixStyle = "unit"): string {
  const key = `${sectors}|${unit.type}|${unit.factorBytes}|${includeSuffix ? 1 : 0}|${style}`;
  let v = formatted.get(key);
  if (v === undefined) {
    if (formatted.size > 4096) formatted.clear();
    v = formatSizeUncached(sectors, unit, includeSuffix, style);
    formatted.set(key, v);
  }
  return v;
}

function formatSizeUncached(sectors: number, unit: UnitSpec, includeSuffix: boolean, style: SuffixStyle = "unit"): string {
  const t = unit.type;
  const col = STYLE_INDEX[style];
  let base = BASE_UNKNOWN;
  let s = 0;
  if (t.length === 1 && PREFIXES_1000.includes(t)) {
    base = BASE_1000;
    s = PREFIXES_1000.indexOf(t);
  } else if (t.length === 1 && PREFIXES_1024.includes(t)) {
    base = BASE_1024;
    s = PREFIXES_1024.indexOf(t);
  } else if (t.length === 1 && SPECIAL.includes(t.toUpperCase())) {
    base = BASE_SPECIAL;
    s = SPECIAL.indexOf(t.toUpperCase());
  }
  if (sectors === 0) {
    if (base === BASE_UNKNOWN) s = 0;
    return "0" + (includeSuffix ? SIZE_STR[base + s]![col] : "");
  }
  const bytes = sectors * 512;
  let byte: number;
  let prefix = "";
  let suffix = includeSuffix;
  if (base !== BASE_UNKNOWN) {
    byte = unit.factorBytes;
  } else {
    const units = t === "H" || t === "R" ? 1000 : 1024;
    base = units === 1000 ? BASE_1000 : BASE_1024;
    byte = units ** 6;
    for (s = 0; s < 6 && bytes < byte; s++) byte /= units;
    if (s < 6 && (t === "r" || t === "R")) {
      const d = (100 * bytes) / byte;
      if (Math.abs(Math.floor(d) - roundHalfEven(d)) >= Number.EPSILON) prefix = "<";
    }
    suffix = true;
  }
  const first = SIZE_STR[base + s]![2].toUpperCase();
  const precision = first === "B" || first === "S" ? 0 : 2;
  return prefix + cFixed(bytes / byte, precision) + (suffix ? SIZE_STR[base + s]![col] : "");
}

/** nearbyint() in the default rounding mode: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** printf("%.*f"): like toFixed, but exact binary ties round to even as glibc does. */
export function cFixed(x: number, precision: number): string {
  const scaled = x * 10 ** precision;
  if (Number.isFinite(scaled) && Math.abs(scaled - Math.trunc(scaled)) === 0.5) {
    return (roundHalfEven(scaled) / 10 ** precision).toFixed(precision);
  }
  return x.toFixed(precision);
}

/** lvm2's default units (global/units = "r"): "2.80g", "<14.00m", "0 ". */
export const UNITS_R: UnitSpec = { type: "r", factorBytes: 0 };
export const UNITS_H: UnitSpec = { type: "h", factorBytes: 0 };

/** display_size(): "2.80 GiB" as used in messages and *display output (default units 'r'). */
export function displaySize(sectors: number, unit: UnitSpec = UNITS_R, includeSuffix = true): string {
  return formatSize(sectors, unit, includeSuffix, "short");
}
