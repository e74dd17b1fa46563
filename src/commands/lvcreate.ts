import { readFileSync } from "node:fs";
import type { CommandDef } from "../cli/command-def.js";
import type { Args, OptionSpec } from "../cli/args.js";
import { AllocationError, CommandError, LvmError, UsageError } from "../errors/errors.js";
import { displaySize } from "../base/units.js";
import { userLvNameProblem, validVgName } from "../model/names.js";
import { VgEditor, effectivePolicy } from "../model/allocate-lv.js";
import type { AllocPolicyName } from "../model/allocate.js";
import { isMirrorSeg, isRaidSeg } from "../model/lv-info.js";
import { vgExtentCount } from "../model/extents.js";
import { vgFreeCount } from "../model/allocate-pv-maps.js";
import type { PvListEntry } from "../model/allocate-pv-maps.js";
import { vgNameArg } from "./common.js";
import {
  activateValue,
  allocValue,
  boolValue,
  extentsValue,
  invalidArgument,
  mirrorLogValue,
  noMatchingSyntax,
  numberValue,
  permissionValue,
  readaheadValue,
  regionSizeValue,
  sizeValue,
  tagValues,
  typeValue,
  usage,
} from "./lv-args.js";
import { commitLvChange, createPvList, displayLvName, lvEnv, pvListFreeExtents, readVgForUpdate, vgPvEntries } from "./lv-common.js";
import { initMirrorLog, zeroLvStart } from "./lv-io.js";
import { addRaidIntegrity } from "./raid-integrity.js";
import type { LoadedVg } from "./vg-store.js";
import type { LogicalVolume, VolumeGroup } from "../model/types.js";
import type { IntegrityRequest } from "../model/raid1-integrity.js";
import { lvActivation } from "./lv-activation.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * lvcreate for linear, striped, legacy mirror and raid1 LVs (tools/lvcreate.c
 * and _lv_create_an_lv in lib/metadata/lv_manip.c): the same checks in the
 * same order, the same messages, the same layout. Plain -m N makes what
 * global/mirror_segtype_default names: ulvm's default is "mirror" (lvm2
 * 2.03's is "raid1"); other raid levels are refused.
 */

const OO_LVCREATE = [
  "addtag", "alloc", "autobackup", "activate", "contiguous", "ignoreactivationskip", "ignoremonitoring", "major",
  "metadataprofile", "minor", "monitor", "name", "nosync", "noudevsync", "permission", "persistent", "readahead",
  "reportformat", "setactivationskip", "wipesignatures", "zero", "setautoactivation",
];
const COMMON = ["help", "longhelp", "version", "verbose", "debug", "quiet", "test", "yes", "config", "commandprofile", "profile", "devices", "devicesfile", "driverloaded", "nolocking", "lockopt", "nohints", "journal"];

export const LVCREATE_OPTIONS: OptionSpec[] = [
  { name: "size", short: "L", value: true },
  { name: "extents", short: "l", value: true },
  { name: "name", short: "n", value: true },
  { name: "stripes", short: "i", value: true },
  { name: "stripesize", short: "I", value: true },
  { name: "type", value: true },
  { name: "mirrors", short: "m", value: true },
  { name: "mirrorlog", value: true },
  { name: "corelog", value: false },
  { name: "regionsize", short: "R", value: true },
  { name: "nosync", value: false },
  { name: "addtag", value: true, repeat: true },
  { name: "readahead", short: "r", value: true },
  { name: "permission", short: "p", value: true },
  { name: "contiguous", short: "C", value: true },
  { name: "alloc", value: true },
  { name: "activate", short: "a", value: true, aliases: ["available"] },
  { name: "zero", short: "Z", value: true },
  { name: "wipesignatures", short: "W", value: true },
  { name: "autobackup", short: "A", value: true },
  { name: "persistent", short: "M", value: true },
  { name: "major", value: true },
  { name: "minor", value: true },
  { name: "setactivationskip", short: "k", value: true },
  { name: "ignoreactivationskip", short: "K", value: false },
  { name: "setautoactivation", value: true },
  { name: "monitor", value: true },
  { name: "ignoremonitoring", value: false },
  { name: "noudevsync", value: false },
  { name: "reportformat", value: true },
  { name: "metadataprofile", value: true },
  // Recognised so that they can be refused clearly: ulvm has no snapshots, thin or cache.
  { name: "snapshot", short: "s", value: false },
  { name: "virtualsize", short: "V", value: true },
  { name: "thin", short: "T", value: false },
  { name: "thinpool", value: true },
  { name: "cache", short: "H", value: false },
  { name: "cachepool", value: true },
  { name: "chunksize", short: "c", value: true },
  { name: "poolmetadatasize", value: true },
  { name: "minrecoveryrate", value: true },
  { name: "maxrecoveryrate", value: true },
  { name: "raidintegrity", value: true },
  { name: "raidintegritymode", value: true },
  { name: "raidintegrityblocksize", value: true },
];

/** Value checks run in the order the options appear, as lvm2 parses them. */
const VALUE_CHECKS: Record<string, (args: Args) => unknown> = {
  size: (a) => sizeValue(a, "size", "nonneg"),
  extents: (a) => extentsValue(a, "extents", "nonneg"),
  stripes: (a) => numberValue(a, "stripes", "unsigned"),
  stripesize: (a) => sizeValue(a, "stripesize", "nonneg", 2),
  type: (a) => typeValue(a),
  mirrors: (a) => numberValue(a, "mirrors", "plus"),
  mirrorlog: (a) => mirrorLogValue(a),
  regionsize: (a) => regionSizeValue(a),
  addtag: (a) => tagValues(a, "addtag"),
  readahead: (a) => readaheadValue(a),
  permission: (a) => permissionValue(a),
  contiguous: (a) => boolValue(a, "contiguous"),
  alloc: (a) => allocValue(a),
  activate: (a) => activateValue(a),
  zero: (a) => boolValue(a, "zero"),
  wipesignatures: (a) => boolValue(a, "wipesignatures"),
  autobackup: (a) => boolValue(a, "autobackup"),
  persistent: (a) => boolValue(a, "persistent"),
  major: (a) => numberValue(a, "major", "unsigned"),
  minor: (a) => numberValue(a, "minor", "unsigned"),
  setactivationskip: (a) => boolValue(a, "setactivationskip"),
  setautoactivation: (a) => boolValue(a, "setautoactivation"),
  monitor: (a) => boolValue(a, "monitor"),
  raidintegrity: (a) => boolValue(a, "raidintegrity"),
  raidintegrityblocksize: (a) => numberValue(a, "raidintegrityblocksize", "unsigned"),
};

export function checkOptionValues(args: Args, checks: Record<string, (args: Args) => unknown>): void {
  const seen = new Set<string>();
  for (const name of args.parsed.order) {
    if (seen.has(name)) continue;
    seen.add(name);
    checks[name]?.(args);
  }
}

/** "Command does not accept option: --opt value." for the first option outside the command's set. */
export function checkAcceptedOptions(args: Args, accepted: readonly string[]): void {
  for (const name of args.parsed.order) {
    if (accepted.includes(name) || COMMON.includes(name)) continue;
    const v = args.str(name);
    throw new UsageError(`Command does not accept option: --${name}${v === undefined ? "" : " " + v}.`, args.command, { runHelp: false });
  }
}

type Variant = "linear" | "striped" | "mirror" | "raid1";

/** OO_LVCREATE_RAID's integrity options (tools/command-lines.in): only the raid forms accept them. */
const OO_LVCREATE_RAID_INTEGRITY = ["raidintegrity", "raidintegritymode", "raidintegrityblocksize"];

/** What ulvm creates, named in the refusal of the other raid levels. */
const SUPPORTED_TYPES = "linear, striped, mirror and raid1";

interface CreateParams {
  variant: Variant;
  vgName: string;
  lvName: string | undefined;
  pvArgs: string[];
  sizeSectors: number | undefined;
  extents: { count: number; percent: "VG" | "FREE" | "PVS" | "LV" | "ORIGIN" | undefined } | undefined;
  stripes: number;
  stripeSizeSectors: number;
  mirrors: number;
  logCount: number;
  regionSizeSectors: number;
  nosync: boolean;
  /** raid1: KiB/s per device; 0 = unset. */
  minRecoveryRate: number;
  maxRecoveryRate: number;
  tags: string[];
  writable: boolean;
  allocArg: string | undefined;
  zero: boolean;
  wipeSignatures: boolean;
  zeroExplicit: boolean;
  activate: string;
  readahead: ReturnType<typeof readaheadValue>;
  persistent: boolean | undefined;
  major: number | undefined;
  minor: number | undefined;
  activationSkip: boolean | undefined;
  noAutoActivate: boolean;
  /** --raidintegrity y: what to layer under each raid1 image; undefined = no integrity. */
  integrity: IntegrityRequest | undefined;
}

/** _lvcreate_params and the command-definition matching in front of it: all exit-3 checks. */
function readParams(ctx: ToolContext, args: Args): CreateParams {
  checkOptionValues(args, VALUE_CHECKS);
  for (const unsupported of ["snapshot", "virtualsize", "thin", "thinpool", "cache", "cachepool", "chunksize", "poolmetadatasize"]) {
    if (args.has(unsupported)) throw new CommandError(`--${unsupported}: snapshots, thin and cache volumes are not supported by ulvm.`);
  }
  let type = typeValue(args);
  const mirrorsArg = numberValue(args, "mirrors", "plus");
  const stripesArg = numberValue(args, "stripes", "unsigned");
  if (type !== undefined && type.startsWith("raid") && type !== "raid1")
    // As lvm2 built without a segment type answers (exit 3), naming what ulvm makes instead.
    throw invalidArgument(args, "type", type, [`Segment type ${type} is not supported by ulvm (it creates ${SUPPORTED_TYPES} LVs).`]);
  if (type !== undefined && !["linear", "striped", "mirror", "raid1"].includes(type))
    throw new CommandError(`Segment type ${type} is not supported by ulvm (it creates ${SUPPORTED_TYPES} LVs).`);
  let onlyLinear = false;
  let variant: Variant;
  if (type === "linear") {
    variant = "linear";
    onlyLinear = true;
  } else if (type === "striped") variant = "striped";
  else if (type === "mirror") variant = "mirror";
  else if (type === "raid1") variant = "raid1";
  else if (mirrorsArg && mirrorsArg.value > 0) {
    // global/mirror_segtype_default: ulvm keeps "mirror" unless ulvm.conf says "raid1".
    const dflt = ctx.config.str("global/mirror_segtype_default", "mirror");
    if (stripesArg && stripesArg.value > 1) {
      if (dflt === "raid1") throw invalidArgument(args, "type", "raid10", [`Segment type raid10 is not supported by ulvm (it creates ${SUPPORTED_TYPES} LVs).`]);
      throw new UsageError("-m with -i makes a raid10 LV in lvm2, which ulvm does not support; use --type mirror for mirrored stripes.", args.command);
    }
    variant = dflt === "raid1" ? "raid1" : "mirror";
  } else if (args.has("stripes")) variant = "striped";
  else variant = "linear";
  void type;

  // The command definitions: a size is required, and each form takes its own options.
  if (!args.has("size") && !args.has("extents")) throw noMatchingSyntax(ctx.out, args.command);
  const sizeOpts = ["size", "extents"];
  let accepted: string[];
  if (variant === "mirror") accepted = [...OO_LVCREATE, ...sizeOpts, "type", "mirrors", "mirrorlog", "corelog", "regionsize", "stripes", "stripesize"];
  else if (variant === "raid1") accepted = [...OO_LVCREATE, ...sizeOpts, "type", "mirrors", "regionsize", "stripes", "stripesize", "minrecoveryrate", "maxrecoveryrate", ...OO_LVCREATE_RAID_INTEGRITY];
  else if (variant === "striped") accepted = [...OO_LVCREATE, ...sizeOpts, "type", "stripes", "stripesize"];
  else accepted = [...OO_LVCREATE, ...sizeOpts, "type"];
  // The linear form accepts --mirrors 0 and --stripes 1 (its "IO" options).
  if (variant !== "mirror" && variant !== "raid1" && mirrorsArg && mirrorsArg.value === 0) accepted.push("mirrors");
  if (variant === "linear" && stripesArg && stripesArg.value === 1 && !onlyLinear) accepted.push("stripes");
  if (variant === "linear" && onlyLinear && stripesArg && stripesArg.value === 1) accepted.push("stripes");
  checkAcceptedOptions(args, accepted);

  if (variant !== "mirror" && variant !== "raid1") {
    for (const o of ["nosync", "regionsize"]) if (args.has(o)) throw usage(args, `--${o} is supported only with mirrors or raids.`);
  }

  // Zeroing and signature wiping (default y).
  const zeroArg = boolValue(args, "zero");
  const wipeArg = boolValue(args, "wipesignatures");
  const zero = zeroArg ?? true;
  const wipeSignatures = wipeArg ?? zero;

  // Names (_lvcreate_name_params).
  let lvName = args.str("name");
  let vgName: string | undefined;
  if (lvName !== undefined) {
    let n = lvName;
    const dev = ctx.paths.devDir.endsWith("/") ? ctx.paths.devDir : ctx.paths.devDir + "/";
    if (n.startsWith(dev)) n = n.slice(dev.length);
    if (n.includes("/")) {
      const m = /^([^/]*)\/+([^/]*)$/.exec(n);
      if (!m) throw usage(args, `"${lvName}": Invalid path for Logical Volume.`);
      vgName = m[1]!;
      lvName = m[2]!;
    }
    const problem = userLvNameProblem(lvName, vgName ?? "");
    if (problem) throw usage(args, problem);
  }
  const positional = [...args.positional];
  if (positional.length) {
    const v = vgNameArg(positional.shift()!, ctx.paths.devDir);
    if (v.includes("/")) throw usage(args, "Volume group name expected (no slash)");
    if (vgName !== undefined && vgName !== v) throw usage(args, `Inconsistent volume group names given: "${vgName}" and "${v}"`);
    vgName = v;
  } else if (vgName === undefined) {
    const env = process.env.LVM_VG_NAME;
    if (!env) throw usage(args, "Please provide a volume group name");
    vgName = env;
  }
  if (!validVgName(vgName)) throw usage(args, `Volume group name ${vgName} has invalid characters`);

  // Sizes (_read_size_params).
  const size = sizeValue(args, "size", "nonneg");
  const ext = extentsValue(args, "extents", "nonneg");
  const stripeSize = sizeValue(args, "stripesize", "nonneg", 2);
  const region = regionSizeValue(args);
  const zeroes: string[] = [];
  for (const [name, v] of [
    ["extents", ext ? ext.count : undefined],
    ["regionsize", region],
    ["size", size?.sectors],
    ["stripes", stripesArg?.value],
    ["stripesize", stripeSize?.sectors],
  ] as const) {
    if (args.has(name) && v === 0) zeroes.push(`--${name} may not be zero.`);
  }
  if (zeroes.length) throw usage(args, zeroes.join("\n"));
  if (ext && size) throw usage(args, "Please specify either size or extents (not both).");

  // Stripes (get_stripe_params; raid1 refuses them first, in _read_raid_params).
  let stripes = stripesArg ? stripesArg.value : 1;
  if (variant === "raid1" && stripes > 1) throw usage(args, "Stripes argument cannot be used with segment type, raid1");
  let stripeSizeSectors = stripeSize ? stripeSize.sectors : 0;
  if (stripes < 1 || stripes > 128) throw usage(args, `Number of stripes (${stripes}) must be between 1 and 128.`);
  if (stripes === 1) {
    if (stripeSizeSectors) {
      ctx.out.print("Ignoring stripesize argument with single stripe.");
      stripeSizeSectors = 0;
    }
  } else {
    if (!stripeSizeSectors) {
      stripeSizeSectors = ctx.config.int("metadata/stripesize", 64) * 2;
      ctx.out.print(`Using default stripesize ${displaySize(stripeSizeSectors)}.`);
    }
    if (stripeSizeSectors > 2 ** 31) throw usage(args, `Stripe size cannot be larger than ${displaySize(2 ** 30)}.`);
    if (stripeSizeSectors < 8 || (stripeSizeSectors & (stripeSizeSectors - 1)) !== 0) throw usage(args, `Invalid stripe size ${displaySize(stripeSizeSectors)}.`);
  }

  // Mirrors (_read_mirror_and_raid_params).
  let mirrors = 1;
  if (mirrorsArg) {
    mirrors = mirrorsArg.value + 1;
    if (mirrors === 1) {
      if (variant === "mirror" || variant === "raid1") throw usage(args, `--mirrors must be at least 1 with segment type ${variant}.`);
      ctx.out.print("Redundant mirrors argument: default is 0");
    }
  } else mirrors = variant === "mirror" || variant === "raid1" ? 2 : 1;
  if (variant === "mirror" && mirrors > 8) throw usage(args, "Only up to 8 mirrors in mirror supported currently.");
  // DEFAULT_RAID1_MAX_IMAGES.
  if (variant === "raid1" && mirrors > 64) throw usage(args, "Only up to 64 mirrors in raid1 supported currently.");
  const nosync = args.has("nosync");
  let regionSizeSectors = region ?? defaultRegionSize(ctx);
  let logCount = 0;
  if (variant === "mirror") {
    const corelog = args.has("corelog");
    const ml = mirrorLogValue(args);
    logCount = ml ?? (corelog ? 0 : 1);
    if (corelog && logCount !== 0) throw usage(args, "Please use only one of --corelog or --mirrorlog.");
  } else if (variant !== "raid1") regionSizeSectors = 0;
  if (onlyLinear && stripes > 1) throw usage(args, "Cannot use stripes with linear type.");
  // _read_raid_params.
  let minRecoveryRate = 0;
  let maxRecoveryRate = 0;
  if (variant === "raid1") {
    if (stripes > 1) throw usage(args, "Stripes argument cannot be used with segment type, raid1");
    if (stripeSizeSectors) throw usage(args, "Stripe size argument cannot be used with segment type, raid1");
    // Rates are recorded in KiB/s per device (the argument is read in sectors).
    minRecoveryRate = Math.floor((sizeValue(args, "minrecoveryrate", "nonneg", 2)?.sectors ?? 0) / 2);
    maxRecoveryRate = Math.floor((sizeValue(args, "maxrecoveryrate", "nonneg", 2)?.sectors ?? 0) / 2);
    if (minRecoveryRate > maxRecoveryRate) throw usage(args, "Minimum recovery rate cannot be higher than maximum.");
  }

  // _read_raid_params: --raidintegrity y and its options (ignored without it, as lvm2 does).
  let integrity: IntegrityRequest | undefined;
  if (variant === "raid1" && boolValue(args, "raidintegrity") === true) {
    const modeArg = args.str("raidintegritymode");
    let mode: "J" | "B" | undefined;
    if (modeArg === "bitmap" || modeArg === "B") mode = "B";
    else if (modeArg === "journal" || modeArg === "J") mode = "J";
    else if (modeArg !== undefined) throw usage(args, 'Invalid raid integrity mode (use "bitmap" or "journal")');
    integrity = { mode, blockSize: numberValue(args, "raidintegrityblocksize", "unsigned")?.value, settings: {} };
  }

  // Allocation policy.
  const contiguous = boolValue(args, "contiguous") ?? false;
  let allocArg: string | undefined = contiguous ? "contiguous" : undefined;
  const a = allocValue(args);
  if (a !== undefined) allocArg = a;
  if (contiguous && allocArg !== "contiguous") throw usage(args, "Conflicting contiguous and alloc arguments.");

  const perm = permissionValue(args) ?? "rw";
  const activate = activateValue(args) ?? "y";
  return {
    variant,
    vgName,
    lvName,
    pvArgs: positional,
    sizeSectors: size?.sectors,
    extents: ext ? { count: ext.count, percent: ext.percent } : undefined,
    stripes,
    stripeSizeSectors,
    mirrors,
    logCount,
    regionSizeSectors,
    nosync,
    minRecoveryRate,
    maxRecoveryRate,
    tags: tagValues(args, "addtag"),
    writable: perm === "rw",
    allocArg: allocArg === "inherit" ? undefined : allocArg,
    zero,
    wipeSignatures,
    zeroExplicit: (zeroArg ?? wipeArg ?? false) === true,
    activate,
    readahead: readaheadValue(args),
    persistent: boolValue(args, "persistent"),
    major: numberValue(args, "major", "unsigned")?.value,
    minor: numberValue(args, "minor", "unsigned")?.value,
    activationSkip: boolValue(args, "setactivationskip"),
    noAutoActivate: boolValue(args, "setautoactivation") === false,
    integrity,
  };
}

/** get_default_region_size: activation/raid_region_size (or the old mirror_region_size) in KiB, default 2 MiB. */
export function defaultRegionSize(ctx: ToolContext): number {
  const mrs = 2 * ctx.config.int("activation/mirror_region_size", 0);
  const rrs = 2 * ctx.config.int("activation/raid_region_size", 0);
  let r = !mrs && !rrs ? 4096 : !mrs ? rrs : !rrs ? mrs : rrs;
  if (r & (r - 1)) r = roundDownPow2(r);
  if (r % 8) r = 4096;
  return r;
}

function roundDownPow2(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

/** adjusted_mirror_region_size: a region may not be larger than the LV. */
export function adjustedRegionSize(out: ToolContext["out"], extentSizeSectors: number, extents: number, regionSizeSectors: number): number {
  const max = extents * extentSizeSectors;
  if (max < 0xffffffff && regionSizeSectors > max) {
    const r = roundDownPow2(max);
    out.print(`Using reduced mirror region size of ${displaySize(r)}`);
    return r;
  }
  return regionSizeSectors;
}

export const lvcreate: CommandDef = {
  name: "lvcreate",
  summary: "Create a logical volume",
  usage: `  lvcreate - Create a logical volume

  Create a linear LV.
  lvcreate -L|--size Size[m|UNIT] VG
	[ -l|--extents Number[PERCENT] ]
	[    --type linear ]
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Create a striped LV.
  lvcreate -i|--stripes Number -L|--size Size[m|UNIT] VG
	[ -l|--extents Number[PERCENT] ]
	[ -I|--stripesize Size[k|UNIT] ]
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Create a mirror LV.
  lvcreate --type mirror -L|--size Size[m|UNIT] VG
	[ -l|--extents Number[PERCENT] ]
	[ -m|--mirrors [+]Number ]
	[ -i|--stripes Number ]
	[ -I|--stripesize Size[k|UNIT] ]
	[ -R|--regionsize Size[m|UNIT] ]
	[    --mirrorlog core|disk ]
	[    --nosync ]
	[ COMMON_OPTIONS ]
	[ PV ... ]

  Common options for command:
	[ -a|--activate y|n|ay ]
	[ -C|--contiguous y|n ]
	[ -n|--name String ]
	[ -p|--permission rw|r ]
	[ -r|--readahead auto|none|Number ]
	[ -W|--wipesignatures y|n ]
	[ -Z|--zero y|n ]
	[    --addtag Tag ]
	[    --alloc contiguous|cling|cling_by_tags|normal|anywhere|inherit ]

  PV arguments may select extents: PV:First-Last, PV:First-, PV:First+Count.
`,
  options: LVCREATE_OPTIONS,
  async run(ctx, args) {
    const p = readParams(ctx, args);
    const loaded = await readVgForUpdate(ctx, p.vgName);
    const vg = loaded.vg;
    const out = ctx.out;

    // _read_activation_params: read ahead must be a multiple of the page size.
    let readAhead: number | undefined;
    if (p.readahead?.kind === "none") readAhead = -1;
    else if (p.readahead?.kind === "sectors") {
      let ra = p.readahead.sectors;
      if (ra === 0) readAhead = -1;
      else {
        if (ra % 8) {
          ra = ra < 8 ? 8 : Math.floor(ra / 8) * 8;
          out.warn(`WARNING: Overriding readahead to ${ra} sectors, a multiple of 4K page size.`);
        }
        readAhead = ra;
      }
    }
    // get_and_validate_major_minor.
    if (args.count("minor") > 1) throw new CommandError("Option --minor may not be repeated.");
    if (args.count("major") > 1) throw new CommandError("Option -j|--major may not be repeated.");
    let fixedMinor: { major: number; minor: number } | undefined;
    if (p.persistent === false) {
      if (p.minor !== undefined || p.major !== undefined) throw new CommandError("Options --major and --minor are incompatible with -Mn.");
    } else {
      if (p.persistent === true && p.minor === undefined) throw new CommandError("Please specify minor number with --minor when using -My.");
      if (p.major !== undefined)
        out.warn(`WARNING: Ignoring supplied major number ${p.major} - kernel assigns major numbers dynamically. Using major number ${dmMajor()} instead.`);
      if (p.minor !== undefined) fixedMinor = { major: dmMajor(), minor: p.minor };
    }

    // _check_zero_parameters: nothing to zero on an inactive or read-only LV.
    let zero = p.zero;
    let wipe = p.wipeSignatures;
    const why = `${!p.writable ? "read-only " : ""}${p.activate === "n" ? "inactive " : ""}${p.activate === "ay" ? "auto activated " : ""}${p.activationSkip === true ? "skipped from activation " : ""}`;
    if (why) {
      if (p.zeroExplicit) {
        // lvm2 returns 0 from _lvcreate_single here, which the tool reports as success.
        out.error(`Cannot zero ${why}logical volume with option -Zy or -Wy.`);
        return 0;
      }
      zero = wipe = false;
    }

    // _update_extents_params.
    let extents: number;
    let approx = false;
    if (p.sizeSectors !== undefined) {
      let size = p.sizeSectors;
      const es = vg.extentSizeSectors;
      if (size % es) {
        size += es - (size % es);
        out.print(`Rounding up size to full physical extent ${displaySize(size)}`);
      }
      if (size > 0xffffffff * es)
        throw new CommandError(`Volume too large (${displaySize(size)}) for extent size ${displaySize(es)}. Upper limit is less than ${displaySize(0xffffffff * es)}.`);
      extents = size / es;
    } else extents = p.extents!.count;
    const pvh: PvListEntry[] = p.pvArgs.length ? createPvList(ctx, loaded, p.pvArgs, true) : vgPvEntries(loaded);
    const pvhSize = p.pvArgs.length ? pvh.length : vg.pvs.length;
    const freeCount = vgFreeCount(vg);
    const percent = p.extents?.percent;
    if (percent !== undefined) {
      const pct = p.extents!.count;
      // percent_of_extents: 64-bit arithmetic, a uint32_t result.
      const of = (n: number): number => Number(((BigInt(pct) * BigInt(n)) / 100n) % 2n ** 32n);
      if (percent === "VG") {
        extents = of(vgExtentCount(vg));
        if (extents > freeCount) {
          extents = freeCount;
          out.print(`Reducing ${pct}%VG to remaining free space ${displaySize(extents * vg.extentSizeSectors)} in VG.`);
        }
      } else if (percent === "FREE") extents = of(freeCount);
      else if (percent === "PVS") extents = of(p.pvArgs.length ? pvListFreeExtents(vg, pvh) : vgExtentCount(vg));
      else if (percent === "LV") throw new CommandError("Please express size as %FREE, %PVS or %VG.");
      else throw new CommandError("Internal error: Couldn't find origin volume.");
      approx = true;
      if (!extents) throw new CommandError("Calculated size of logical volume is 0 extents. Needs to be larger.");
      if (p.mirrors > 1) extents = Math.floor(extents / p.mirrors) || 1;
      const stripeExtents = Math.floor(p.stripeSizeSectors / vg.extentSizeSectors) || 1;
      const rest = extents % (p.stripes * stripeExtents);
      if (rest && freeCount < extents - rest + p.stripes * stripeExtents) {
        out.print(`Rounding size (${extents} extents) down to stripe boundary size (${extents - rest} extents)`);
        extents -= rest;
      }
      if (!extents) throw new CommandError("Adjusted size of logical volume is 0 extents. Needs to be larger.");
    }

    // _lv_create_an_lv.
    const ed = new VgEditor(vg, lvEnv(ctx));
    if (p.lvName !== undefined) {
      const used = ed.nameInUse(p.lvName);
      if (used.used) throw new CommandError(`${used.historical ? "historical " : ""}Logical Volume "${p.lvName}" already exists in volume group "${vg.name}"`);
    }
    let stripeSizeSectors = p.stripeSizeSectors;
    if (stripeSizeSectors > vg.extentSizeSectors) {
      out.print(`Reducing requested stripe size ${displaySize(stripeSizeSectors)} to maximum, physical extent size ${displaySize(vg.extentSizeSectors)}.`);
      stripeSizeSectors = vg.extentSizeSectors;
    }
    if (extents % p.stripes) {
      const n = extents + p.stripes - (extents % p.stripes);
      out.print(
        `Rounding size ${displaySize(extents * vg.extentSizeSectors)} (${extents} extents) up to stripe boundary size ${displaySize(n * vg.extentSizeSectors)} (${n} extents).`,
      );
      extents = n;
    }
    if (p.allocArg !== "anywhere" && p.stripes > pvhSize) throw new CommandError(`Number of stripes (${p.stripes}) must not exceed number of physical volumes (${pvhSize})`);
    const status = ["READ", ...(p.writable ? ["WRITE"] : []), "VISIBLE"];
    let regionSizeSectors = p.regionSizeSectors;
    if (p.variant === "mirror" || p.variant === "raid1") {
      regionSizeSectors = adjustedRegionSize(out, vg.extentSizeSectors, extents, regionSizeSectors);
      if (p.nosync) {
        out.warn(`WARNING: New ${p.variant} won't be synchronised. Don't read what you didn't write!`);
        status.push("NOTSYNCED");
      }
    }
    // raid_ensure_min_region_size: at most 2^21 regions (a verbose-only message on create).
    if (p.variant === "raid1") while ((extents * vg.extentSizeSectors) / regionSizeSectors > 2 ** 21) regionSizeSectors *= 2;
    if (!approx && freeCount < extents) throw new CommandError(`Volume group "${vg.name}" has insufficient free space (${freeCount} extents): ${extents} required.`);

    const lv = ed.createEmptyLv(p.lvName ?? "lvol%d", status, p.allocArg);
    lv.readAheadSectors = readAhead;
    if (fixedMinor) {
      lv.status.push("FIXED_MINOR");
      lv.major = fixedMinor.major;
      lv.minor = fixedMinor.minor;
    }
    lv.tags = [...p.tags];
    const policy: AllocPolicyName = effectivePolicy(vg, p.allocArg);
    const space = { pvs: pvh, policy, approx };
    try {
      ed.lvExtend(lv, {
        ...space,
        segtype: p.variant === "mirror" || p.variant === "raid1" ? p.variant : "striped",
        stripes: p.stripes,
        stripeSizeSectors: p.stripes > 1 ? stripeSizeSectors : 0,
        mirrors: p.mirrors,
        regionSizeSectors,
        extents,
      });
      // rhbz1269533: with 100%FREE a mirror leaves one extent for its disk log.
      if (p.variant === "mirror" && p.logCount && ed.vgFreeCount() === 0 && lvExtentsOf(lv) > 1) ed.lvReduce(lv, 1);
    } catch (e) {
      if (e instanceof AllocationError) throw new CommandError(e.message);
      throw e;
    }
    if (p.variant === "raid1") {
      // lv_extend's clear_metadata: lvm2 commits with the new LV skipped from activation and its
      // rmeta LVs visible, wipes the start of each rmeta (through a temporary activation), then
      // hides them again.
      const seg = lv.segments[0]!;
      const metas = isRaidSeg(seg) ? seg.raids.flatMap((r) => (r.meta !== undefined ? [ed.lv(r.meta)!] : [])) : [];
      if (!ctx.opts.test && metas.length) {
        lv.flags.push("ACTIVATION_SKIP");
        for (const m of metas) m.status.push("VISIBLE");
        await commitLvChange(ctx, loaded);
        for (const m of metas) await zeroLvStart(loaded, m);
        for (const m of metas) m.status = m.status.filter((w) => w !== "VISIBLE");
        lv.flags = lv.flags.filter((w) => w !== "ACTIVATION_SKIP");
      }
      if (isRaidSeg(seg)) {
        seg.minRecoveryRate = p.minRecoveryRate;
        seg.maxRecoveryRate = p.maxRecoveryRate;
      }
    }
    if (p.activationSkip === true) lv.flags.push("ACTIVATION_SKIP");
    if (p.noAutoActivate) lv.flags.push("NOAUTOACTIVATE");

    if (p.variant === "mirror" && p.logCount) {
      const seg = lv.segments[0]!;
      const region = isMirrorSeg(seg) ? seg.regionSizeSectors : regionSizeSectors;
      let log;
      try {
        log = ed.createMirrorLog(lv, p.logCount, region, space);
      } catch (e) {
        if (!(e instanceof LvmError)) throw e;
        // revert_new_lv: lvm2 removes the new LV and writes the VG back (a new seqno, same LVs).
        out.error(e.message);
        ed.lvRemove(lv);
        await commitLvChange(ctx, loaded);
        throw new CommandError("", {});
      }
      // lvm2 commits with the log visible, initialises it, then attaches it.
      if (!ctx.opts.test) {
        await commitLvChange(ctx, loaded);
        await initMirrorLog(loaded, log, p.nosync);
      }
      ed.attachMirrorLog(lv, log);
    }

    await commitLvChange(ctx, loaded);
    if (p.integrity) {
      await createWithIntegrity(ctx, loaded, ed, lv, p);
      out.print(`Logical volume "${lv.name}" created.`);
      return 0;
    }
    if (!ctx.opts.test) {
      // _should_wipe_lv / wipe_lv: the first 4 KiB of a new writable LV are zeroed. lvm2 does it
      // through the activated LV; ulvm writes the PVs directly, so it does it before activation,
      // when nothing (a mirror's resync above all) can be writing the same extents.
      const wipeIt = p.writable && (zero || wipe);
      if (wipeIt && zero) await zeroLvStart(loaded, lv);
      try {
        await lvActivation(ctx).activateNew(ctx, loaded, lv, p.activate);
      } catch (e) {
        if (!(e instanceof LvmError)) throw e;
        // deactivate_and_revert_new_lv: the new LV goes again, with a write of the VG.
        if (e.message) out.error(e.message);
        out.error(`Failed to activate new LV ${displayLvName(vg, lv.name)}.`);
        try {
          await lvActivation(ctx).deactivate(ctx, loaded, lv);
          ed.lvRemove(lv);
          await commitLvChange(ctx, loaded);
        } catch {
          out.error("Manual intervention may be required to remove abandoned LV(s) before retrying.");
        }
        throw new CommandError("");
      }
      if (!wipeIt) out.warn(`WARNING: Logical volume ${displayLvName(vg, lv.name)} not zeroed.`);
    }
    out.print(`Logical volume "${lv.name}" created.`);
    return 0;
  },
};

/**
 * The --raidintegrity tail of lvcreate: the new raid1 LV's start is zeroed
 * first (lvm2 wipes it later through the integrity devices; ulvm writes the
 * PVs directly, and the tags are computed at the first activation anyway),
 * then the integrity layers are added (lv_add_integrity_to_raid).
 */
async function createWithIntegrity(ctx: ToolContext, loaded: LoadedVg, ed: VgEditor, lv: LogicalVolume, p: CreateParams): Promise<void> {
  const out = ctx.out;
  if (!ctx.opts.test && p.writable && p.zero) await zeroLvStart(loaded, lv);
  try {
    await addRaidIntegrity(ctx, loaded, ed, lv, p.integrity!);
  } catch (e) {
    if (!(e instanceof LvmError)) throw e;
    // "Failed to add integrity." then revert_new_lv: the new LV and its sub-LVs go again.
    if (e.message) out.error(e.message);
    out.error("Failed to add integrity.");
    ed.lvRemove(lv);
    await commitLvChange(ctx, loaded);
    throw new CommandError("");
  }
  if (ctx.opts.test || p.activate === "n") return; // recalculate = 1 stays until the first activation
  // The first activation passes `recalculate`, which starts the tags' initialisation; then the flag
  // is cleared and the VG committed so that later activations do not restart it.
  try {
    await lvActivation(ctx).activateNew(ctx, loaded, lv, p.activate);
  } catch (e) {
    if (!(e instanceof LvmError)) throw e;
    if (e.message) out.error(e.message);
    throw new CommandError("Failed to activate integrity LV to initialize.");
  }
  for (const img of imagesOf(loaded.vg, lv)) for (const s of img.segments) if (s.type === "integrity" && !("opaque" in s)) s.recalculate = 0;
  await commitLvChange(ctx, loaded);
}

function imagesOf(vg: VolumeGroup, lv: LogicalVolume): LogicalVolume[] {
  const seg = lv.segments[0];
  return seg && isRaidSeg(seg) ? seg.raids.flatMap((r) => vg.lvs.filter((l) => l.name === r.image)) : [];
}

function lvExtentsOf(lv: { segments: Array<{ extentCount: number }> }): number {
  let n = 0;
  for (const s of lv.segments) n += s.extentCount;
  return n;
}

/** device-mapper's major as lvm2 finds it (/proc/devices; 0 when the driver is absent). */
function dmMajor(): number {
  try {
    const m = /^\s*(\d+)\s+device-mapper$/m.exec(readFileSync("/proc/devices", "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
