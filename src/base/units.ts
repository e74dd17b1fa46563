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

/** --units argument: a unit character, optionally preceded by a count ("4m"). */
export interface UnitSpec {
  /** 'r','h','R','H' human; else the unit character; 'U' for custom multiples. */
  type: string;
  /** Bytes per unit (0 for human). */
  factorBytes: number;
}

const BIN = "bskmgtpe";
const DEC = "BSKMGTPE";

export function parseUnits(text: string): UnitSpec | undefined {
  const m = /^(\d*\.?\d*)([a-zA-Z])$/.exec(text);
  if (!m) return undefined;
  const count = m[1] === "" ? 1 : Number(m[1]);
  const u = m[2]!;
  if ("hHrR".includes(u)) return m[1] === "" ? { type: u, factorBytes: 0 } : undefined;
  let factor: number;
  if (BIN.includes(u)) factor = u === "b" ? 1 : u === "s" ? 512 : 1024 ** (BIN.indexOf(u) - 1);
  else if (DEC.includes(u)) factor = u === "B" ? 1 : u === "S" ? 512 : 1000 ** (DEC.indexOf(u) - 1);
  else return undefined;
  if (!(count > 0)) return undefined;
  return { type: count === 1 ? u : "U", factorBytes: factor * count };
}

const SHARED = [" Exabyte", " Petabyte", " Terabyte", " Gigabyte", " Megabyte", " Kilobyte", " Byte    "];
const SHARED_SHORT = [" EB", " PB", " TB", " GB", " MB", " KB", " B"];
const B1024_LONG = [" Exbibyte", " Pebibyte", " Tebibyte", " Gibibyte", " Mebibyte", " Kibibyte", " Byte    "];
const B1024_SHORT = [" EiB", " PiB", " TiB", " GiB", " MiB", " KiB", " B"];
const B1024_UNIT = ["e", "p", "t", "g", "m", "k", "b"];
const B1000_LONG = [" Exabyte", " Petabyte", " Terabyte", " Gigabyte", " Megabyte", " Kilobyte", " Byte    "];
const B1000_SHORT = [" EB", " PB", " TB", " GB", " MB", " kB", " B "];
const B1000_UNIT = ["E", "P", "T", "G", "M", "K", "B"];

export type SuffixStyle = "long" | "short" | "unit";

/**
 * dm_size_to_string for use_si_units = 1 (lvm2's default): `sectors` rendered
 * in `unit`, with or without the suffix.
 */
export function formatSize(sectors: number, unit: UnitSpec, includeSuffix: boolean, style: SuffixStyle = "unit"): string {
  const pick = (long: string[], short: string[], one: string[], s: number): string =>
    style === "long" ? long[s]! : style === "short" ? short[s]! : one[s]!;
  const t = unit.type;
  let table: { long: string[]; short: string[]; one: string[] } | undefined;
  let s = -1;
  if (B1000_UNIT.includes(t)) {
    table = { long: B1000_LONG, short: B1000_SHORT, one: B1000_UNIT };
    s = B1000_UNIT.indexOf(t);
  } else if (B1024_UNIT.includes(t)) {
    table = { long: B1024_LONG, short: B1024_SHORT, one: B1024_UNIT };
    s = B1024_UNIT.indexOf(t);
  }
  const special = t === "S" || t === "s" ? { long: " Sectors ", short: " Se", one: "S" } : t === "U" ? { long: " Units   ", short: " Un", one: "U" } : undefined;
  if (sectors === 0) {
    if (!includeSuffix) return "0";
    if (table) return "0" + pick(table.long, table.short, table.one, s);
    if (special) return "0" + (style === "long" ? special.long : style === "short" ? special.short : special.one);
    return "0" + (style === "long" ? "         " : style === "short" ? "   " : " ");
  }
  const bytes = sectors * 512;
  if (table || special) {
    const precision = t === "b" || t === "B" || t === "s" || t === "S" ? 0 : 2;
    const v = bytes / unit.factorBytes;
    const suffix = !includeSuffix ? "" : table ? pick(table.long, table.short, table.one, s) : style === "long" ? special!.long : style === "short" ? special!.short : special!.one;
    return cFixed(v, precision) + suffix;
  }
  // Human-readable: the largest unit not above the size.
  const decimal = t === "H" || t === "R";
  const base = decimal ? 1000 : 1024;
  let byte = base ** 6;
  let i = 0;
  while (i < 6 && bytes < byte) {
    byte /= base;
    i++;
  }
  // i: 0=E ... 5=K, 6=B (byte == 1)
  let prefix = "";
  if (i < 6 && (t === "r" || t === "R")) {
    const d = (100 * bytes) / byte;
    if (Math.floor(d) !== roundHalfEven(d)) prefix = "<";
  }
  const idx = Math.min(i, 6);
  const tables = decimal ? { long: B1000_LONG, short: B1000_SHORT, one: B1000_UNIT } : { long: B1024_LONG, short: B1024_SHORT, one: B1024_UNIT };
  const precision = idx === 6 ? 0 : 2;
  const suffix = pick(tables.long, tables.short, tables.one, idx);
  return prefix + cFixed(bytes / byte, precision) + suffix;
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

/** lvm2's default report unit ('r'): "2.80g", "<14.00m", "0". */
export const UNITS_R: UnitSpec = { type: "r", factorBytes: 0 };
export const UNITS_H: UnitSpec = { type: "h", factorBytes: 0 };

/** display_size(): "2.80 GiB" as used in messages and *display output. */
export function displaySize(sectors: number): string {
  return formatSize(sectors, UNITS_H, true, "short");
}

void SHARED;
void SHARED_SHORT;
