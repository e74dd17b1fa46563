import type { CommandDef } from "../cli/command-def.js";
import type { Args } from "../cli/args.js";
import { UsageError } from "../errors/errors.js";
import { displaySize } from "../base/units.js";
import { formatId } from "../base/uuid.js";
import type { ToolContext } from "./toolcontext.js";
import { forEachLv, forEachPv, reportEnv, reportFormatFromArgs, selectVgs } from "./reports.js";
import { Inventory } from "../report/inventory.js";
import { allocName } from "../report/lv-attr.js";
import type { PvView } from "../report/vg-view.js";

/**
 * pvscan (the display form), vgscan and lvscan (tools/pvscan.c, vgscan.c,
 * lvscan.c). ulvm keeps no device cache, so --cache and --mknodes have
 * nothing to refresh; the listings match lvm2's.
 */
/** These commands take no positional arguments. */
function noArguments(args: Args): void {
  const a = args.positional[0];
  if (a !== undefined) throw new UsageError(`Command does not accept argument: ${a}.`, args.command, { runHelp: false });
}

function print(ctx: ToolContext, lines: readonly string[]): void {
  if (lines.length) ctx.out.write(lines.map((l) => `  ${l}\n`).join(""));
}

async function pvscanRun(ctx: ToolContext, args: Args): Promise<number> {
  reportFormatFromArgs(args);
  if (args.has("cache") || args.has("listvg") || args.has("listlvs") || args.has("activate")) {
    // No lvmetad/online files in ulvm: nothing to record.
    return 0;
  }
  noArguments(args);
  if (args.has("novolumegroup") && args.has("exported")) throw new UsageError("Options -e and -n are incompatible", args.command, { runHelp: false });
  if (args.has("exported") || args.has("novolumegroup")) {
    ctx.out.warn(`WARNING: only considering physical volumes ${args.has("exported") ? "of exported volume group(s)" : "in no volume group"}`);
  }
  const env = reportEnv(ctx, args);
  const size = (s: number): string => displaySize(s, env.units, env.suffix);
  const inv = await Inventory.load(ctx);
  // Column widths come from every labelled device and VG name lvm2 has cached (the orphan VG counts).
  let pvLen = 0;
  for (const d of inv.labelledDevices()) pvLen = Math.max(pvLen, d.entry.name.length);
  let vgLen = "#orphans_lvm2".length;
  for (const n of inv.vgNames) vgLen = Math.max(vgLen, n.length);
  pvLen += 2;
  vgLen += 2;
  const lines: string[] = [];
  let found = 0;
  let newFound = 0;
  let total = 0;
  let totalNew = 0;
  const show = (p: PvView): void => {
    if (args.has("exported") && !p.exported) return;
    if (args.has("novolumegroup") && !p.orphan) return;
    found++;
    const dataSize = p.peCount * p.peSizeSectors;
    if (p.orphan) {
      newFound++;
      totalNew += p.sizeSectors;
      total += p.sizeSectors;
    } else total += dataSize;
    if (args.has("short")) {
      lines.push(p.name);
      return;
    }
    let name = p.name;
    let len = pvLen;
    if (args.has("uuid")) {
      name = `${p.name.padEnd(pvLen - 2)} with UUID ${formatId(p.id)}`;
      len += 50;
    }
    const free = (p.peCount - p.allocExtents) * p.peSizeSectors;
    if (p.orphan) lines.push(`PV ${name.padEnd(len)}    ${" ".padEnd(vgLen)} lvm2 [${size(p.sizeSectors)}]`);
    else if (p.exported) lines.push(`PV ${name.padEnd(len)}  is in exported VG ${p.vgv!.name} [${size(dataSize)} / ${size(free)} free]`);
    else lines.push(`PV ${name.padEnd(len)} VG ${p.vgv!.name.padEnd(vgLen)} lvm2 [${size(dataSize)} / ${size(free)} free]`);
  };
  const failures = forEachPv(ctx, inv, args.positional, show);
  if (!found) lines.push("No matching physical volumes found");
  else {
    lines.push(
      `Total: ${found} [${size(total)}] / in use: ${found - newFound} [${size(total - totalNew)}] / in no VG: ${newFound} [${size(totalNew)}]`,
    );
  }
  print(ctx, lines);
  return failures ? 5 : 0;
}

async function vgscanRun(ctx: ToolContext, args: Args): Promise<number> {
  noArguments(args);
  reportFormatFromArgs(args);
  if (args.has("cache")) {
    ctx.out.warn("Ignoring vgscan --cache command because lvmetad is no longer used.");
    return 0;
  }
  const inv = await Inventory.load(ctx);
  const { vgs, failures } = selectVgs(ctx, inv, undefined);
  print(
    ctx,
    vgs.map((v) => `Found ${v.exported ? "exported " : ""}volume group "${v.name}" using metadata type lvm2`),
  );
  return failures ? 5 : 0;
}

async function lvscanRun(ctx: ToolContext, args: Args): Promise<number> {
  noArguments(args);
  reportFormatFromArgs(args);
  if (args.has("cache")) {
    ctx.out.warn("Ignoring lvscan --cache because lvmetad is no longer used.");
    return 0;
  }
  const env = reportEnv(ctx, args);
  const inv = await Inventory.load(ctx);
  const lines: string[] = [];
  const all = args.has("all");
  const failures = forEachLv(ctx, inv, args.positional, all, (l) => {
    if (!all && !l.visible) return;
    const active = l.active ? "ACTIVE   " : "inactive ";
    lines.push(
      `${active}${"        "} '${env.devDir}${l.vgv.name}/${l.name}' [${displaySize(l.sizeSectors, env.units, env.suffix)}] ${allocName(l.lv.allocationPolicy, true)}`,
    );
  });
  print(ctx, lines);
  return failures ? 5 : 0;
}

export const pvscan: CommandDef = {
  name: "pvscan",
  summary: "List all physical volumes",
  usage: `  pvscan - List all physical volumes

  Display PV information.
  pvscan
	[ -e|--exported ]
	[ -n|--novolumegroup ]
	[ -s|--short ]
	[ -u|--uuid ]
	[    --ignorelockingfailure ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
`,
  options: [
    { name: "exported", short: "e", value: false },
    { name: "novolumegroup", short: "n", value: false },
    { name: "short", short: "s", value: false },
    { name: "uuid", short: "u", value: false },
    { name: "ignorelockingfailure", value: false },
    { name: "reportformat", value: true },
    { name: "cache", value: false, aliases: ["cache_long"] },
    { name: "activate", short: "a", value: true },
    { name: "major", short: "j", value: true },
    { name: "minor", value: true },
    { name: "noudevsync", value: false },
    { name: "listvg", value: false },
    { name: "listlvs", value: false },
  ],
  run: pvscanRun,
};

export const vgscan: CommandDef = {
  name: "vgscan",
  summary: "Search for all volume groups",
  usage: `  vgscan - Search for all volume groups

  vgscan
	[    --ignorelockingfailure ]
	[    --mknodes ]
	[    --notifydbus ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
`,
  options: [
    { name: "ignorelockingfailure", value: false },
    { name: "mknodes", value: false },
    { name: "notifydbus", value: false },
    { name: "reportformat", value: true },
    { name: "cache", value: false, aliases: ["cache_long"] },
    { name: "partial", short: "P", value: false },
  ],
  run: vgscanRun,
};

export const lvscan: CommandDef = {
  name: "lvscan",
  summary: "List all logical volumes in all volume groups",
  usage: `  lvscan - List all logical volumes in all volume groups

  lvscan
	[ -a|--all ]
	[ -b|--blockdevice ]
	[    --ignorelockingfailure ]
	[    --readonly ]
	[    --reportformat basic|json ]
	[ COMMON_OPTIONS ]
`,
  options: [
    { name: "all", short: "a", value: false },
    { name: "blockdevice", short: "b", value: false },
    { name: "ignorelockingfailure", value: false },
    { name: "readonly", value: false },
    { name: "reportformat", value: true },
    { name: "cache", value: false, aliases: ["cache_long"] },
    { name: "partial", short: "P", value: false },
  ],
  run: lvscanRun,
};
