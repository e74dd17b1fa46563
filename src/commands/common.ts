import { UsageError } from "../errors/errors.js";
import { parseSizeArg, SizeArgError, type SizeArg } from "../base/units.js";
import type { Args } from "../cli/args.js";

/** A size option (-L, --metadatasize...) in sectors, with lvm2's error lines. */
export function sizeOption(args: Args, name: string, defaultFactorSectors = 2048, allowPercent = false): SizeArg | undefined {
  const v = args.str(name);
  if (v === undefined) return undefined;
  try {
    return parseSizeArg(v, defaultFactorSectors, allowPercent);
  } catch (e) {
    if (e instanceof SizeArgError) {
      throw new UsageError([...e.lines, `Invalid argument for --${name}: ${v}`, "Error during parsing of command line."].join("\n"), args.command, { getopt: false, runHelp: false, parseError: true });
    }
    throw e;
  }
}

/** lvm2's "Invalid argument for --opt: value" followed by "Error during parsing of command line." */
export function badArgument(args: Args, name: string, value: string): UsageError {
  return new UsageError(`Invalid argument for --${name}: ${value}\n  Error during parsing of command line.`, args.command, { runHelp: false });
}

/** Strip "/dev/" style prefixes from a VG name argument (lvm2 accepts /dev/vg). */
export function vgNameArg(arg: string, devDir: string): string {
  let s = arg;
  const prefix = devDir.endsWith("/") ? devDir : devDir + "/";
  if (s.startsWith(prefix)) s = s.slice(prefix.length);
  while (s.endsWith("/")) s = s.slice(0, -1);
  return s;
}

/** Split "vg/lv", "/dev/vg/lv" or "lv" (with a default VG) into names. */
export function lvNameArg(arg: string, devDir: string, defaultVg?: string): { vg: string | undefined; lv: string } {
  let s = arg;
  const prefix = devDir.endsWith("/") ? devDir : devDir + "/";
  if (s.startsWith(prefix)) s = s.slice(prefix.length);
  if (s.startsWith("mapper/")) {
    // /dev/mapper/vg-lv: dashes in names are doubled there
    const m = /^mapper\/((?:[^-]|--)+)-((?:[^-]|--)+)$/.exec(s);
    if (m) return { vg: m[1]!.replace(/--/g, "-"), lv: m[2]!.replace(/--/g, "-") };
  }
  const i = s.indexOf("/");
  if (i === -1) return { vg: defaultVg, lv: s };
  return { vg: s.slice(0, i), lv: s.slice(i + 1) };
}

/** Fail with exit 5 if any item failed, as lvm2's process_each_* loops do. */
export function exitFor(failures: number): number {
  return failures ? 5 : 0;
}
