import type { CommandDef } from "../cli/command-def.js";
import { refuseRaidIntegrity } from "./integrity-guard.js";
import type { Args, OptionSpec } from "../cli/args.js";
import { AllocationError, CommandError } from "../errors/errors.js";
import { displaySize, type Sign } from "../base/units.js";
import { VgEditor, effectivePolicy } from "../model/allocate-lv.js";
import { lvLeCount, LvIndex } from "../model/allocate.js";
import { isMirrorSeg, isRaidSeg, isStripedSeg, isVisible, segAreaExtents, segAreas } from "../model/lv-info.js";
import { vgExtentCount } from "../model/extents.js";
import { vgFreeCount } from "../model/allocate-pv-maps.js";
import type { LogicalVolume, Segment } from "../model/types.js";
import type { PvListEntry } from "../model/allocate-pv-maps.js";
import { lvNameArg } from "./common.js";
import { allocValue, extentsValue, noMatchingSyntax, numberValue, sizeValue, typeValue, usage, type PercentOf } from "./lv-args.js";
import { checkAcceptedOptions, checkOptionValues } from "./lvcreate.js";
import { commitLvChange, createPvList, displayLvName, lvEnv, pvListFreeExtents, readVgForUpdate, vgPvEntries } from "./lv-common.js";
import { lvActivation } from "./lv-activation.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * lvextend, lvreduce and lvresize (tools/lvresize.c, lv_resize and its
 * helpers in lib/metadata/lv_manip.c) for linear, striped and mirror LVs:
 * sizes with +/- and percentages, the stripe and mirror rules, extension
 * contiguous to the last segment where the allocator finds it, and lvm2's
 * messages. Filesystem resizing (-r) is refused: ulvm LVs are not active
 * for fsadm to work on.
 */

type Mode = "extend" | "reduce" | "any";

const OPTIONS: OptionSpec[] = [
  { name: "size", short: "L", value: true },
  { name: "extents", short: "l", value: true },
  { name: "stripes", short: "i", value: true },
  { name: "stripesize", short: "I", value: true },
  { name: "mirrors", short: "m", value: true },
  { name: "resizefs", short: "r", value: false },
  { name: "nofsck", short: "n", value: false },
  { name: "force", short: "f", value: false, repeat: true },
  { name: "nosync", value: false },
  { name: "alloc", value: true },
  { name: "type", value: true },
  { name: "autobackup", short: "A", value: true },
  { name: "noudevsync", value: false },
  { name: "reportformat", value: true },
  { name: "poolmetadatasize", value: true },
  { name: "usepolicies", value: false, aliases: ["use-policies"] },
];

interface ResizeParams {
  mode: Mode;
  resize: "extend" | "reduce" | "any";
  vgName: string;
  lvName: string;
  pvArgs: string[];
  sign: Sign;
  size: number;
  extents: number;
  percent: PercentOf | undefined;
  stripes: number;
  stripeSize: number;
  mirrors: number;
  segtype: string | undefined;
  onlyLinear: boolean;
  nosync: boolean;
  resizefs: boolean;
  force: boolean;
  allocArg: string | undefined;
}

function readParams(ctx: ToolContext, args: Args, mode: Mode): ResizeParams {
  const sizeMode = mode === "extend" ? "nonneg" : mode === "reduce" ? "nonpos" : "any";
  checkOptionValues(args, {
    size: (a) => sizeValue(a, "size", sizeMode),
    extents: (a) => extentsValue(a, "extents", sizeMode),
    stripes: (a) => numberValue(a, "stripes", "signed"),
    stripesize: (a) => sizeValue(a, "stripesize", "any", 2),
    mirrors: (a) => numberValue(a, "mirrors", "signed"),
    alloc: (a) => allocValue(a),
    type: (a) => typeValue(a),
  });
  if (args.has("usepolicies") || args.has("poolmetadatasize")) throw new CommandError("Policy-based resize is supported only for snapshot, thin pool and vdo pool volumes.");
  // Command forms: "CMD --size S LV [PV...]" or "CMD LV PV..." (not lvreduce).
  const hasSize = args.has("size") || args.has("extents");
  if (mode === "reduce" && (!hasSize || args.positional.length !== 1))
    throw noMatchingSyntax(ctx.out, args.command, { correct: true, lines: ["lvreduce -L|--size [-]Size[m|UNIT] LV"] });
  if (!hasSize && args.positional.length < 2) throw noMatchingSyntax(ctx.out, args.command);
  if (hasSize && !args.positional.length)
    throw noMatchingSyntax(ctx.out, args.command, {
      correct: false,
      lines: mode === "extend" ? ["lvextend -L|--size [+]Size[m|UNIT] LV", "Extend an LV by a specified size."] : ["lvresize -L|--size [+|-]Size[m|UNIT] LV", "Resize an LV by a specified size."],
    });
  const accepted =
    mode === "reduce"
      ? ["size", "extents", "autobackup", "force", "nofsck", "noudevsync", "reportformat", "resizefs"]
      : ["size", "extents", "alloc", "autobackup", "force", "nofsck", "nosync", "noudevsync", "reportformat", "resizefs", "stripes", "stripesize", "type", ...(mode === "extend" ? ["mirrors"] : [])];
  checkAcceptedOptions(args, accepted);

  let segtype = typeValue(args);
  let onlyLinear = false;
  if (segtype === "linear") {
    segtype = "striped";
    onlyLinear = true;
  }
  const ext = extentsValue(args, "extents", sizeMode);
  const size = sizeValue(args, "size", sizeMode);
  let extents = ext?.count ?? 0;
  let sign: Sign = ext && extents ? ext.sign : undefined;
  let percent = ext && extents ? ext.percent : undefined;
  const zeroes: string[] = [];
  if (args.has("extents") && ext?.count === 0) zeroes.push("--extents may not be zero.");
  if (args.has("size") && size?.sectors === 0) zeroes.push("--size may not be zero.");
  for (const n of ["stripes", "stripesize"]) if (args.has(n) && /^[+-]?0+[a-zA-Z]?$/.test(args.str(n)!)) zeroes.push(`--${n} may not be zero.`);
  if (zeroes.length) throw usage(args, zeroes.join("\n"));
  let sizeSectors = 0;
  if (size && size.sectors) {
    sizeSectors = size.sectors;
    sign = size.sign;
    percent = undefined;
  }
  if (sizeSectors && extents) throw usage(args, "Please specify either size or extents but not both.");
  if (!extents && !sizeSectors && args.positional.length >= 2) {
    extents = 100;
    percent = "PVS";
    sign = "+";
  }
  if (mode === "extend" && sign === "-") throw usage(args, "Negative argument not permitted - use lvreduce.");
  if (mode === "reduce" && sign === "+") throw usage(args, "Positive sign not permitted - use lvextend.");
  if (!args.positional.length) throw usage(args, "Please provide the logical volume name.");
  const raw = args.positional[0]!;
  const n = lvNameArg(raw, ctx.paths.devDir);
  if (raw.includes("/") && !/^(?:.*\/)?[^/]+\/+[^/]+$/.test(raw)) throw usage(args, `"${raw}": Invalid path for Logical Volume.`);
  let vgName = n.vg;
  if (!vgName) {
    vgName = process.env.LVM_VG_NAME;
    if (!vgName) throw usage(args, "Please specify a logical volume path.");
  }
  if (!/^[A-Za-z0-9+_.-]+$/.test(n.lv) || n.lv.startsWith("-") || n.lv === "." || n.lv === "..") throw usage(args, `Logical volume name "${n.lv}" is invalid.`);
  let mirrors = 0;
  const m = numberValue(args, "mirrors", "signed");
  if (m) {
    if (m.sign) throw usage(args, "Mirrors argument may not be signed.");
    if (m.value) mirrors = m.value + 1;
  }
  const st = numberValue(args, "stripes", "signed");
  let stripes = st?.value ?? 0;
  if (stripes && st?.sign === "-") throw usage(args, "Stripes argument may not be negative.");
  if (onlyLinear && stripes > 1) throw usage(args, "Cannot use stripes with linear type.");
  const ss = sizeValue(args, "stripesize", "any", 2);
  if (ss && ss.sectors && ss.sign === "-") throw usage(args, "Stripesize may not be negative.");
  void stripes;
  return {
    mode,
    resize: mode,
    vgName,
    lvName: n.lv,
    pvArgs: args.positional.slice(1),
    sign,
    size: sizeSectors,
    extents,
    percent,
    stripes: (stripes = st?.value ?? 0),
    stripeSize: ss?.sectors ?? 0,
    mirrors,
    segtype,
    onlyLinear,
    nosync: args.has("nosync"),
    resizefs: args.has("resizefs"),
    force: args.has("force"),
    allocArg: allocValue(args),
  };
}

/** Physical extents an LV and its sub-LVs hold (_lv_pe_count). */
function lvPeCount(idx: LvIndex, lv: LogicalVolume): number {
  let n = 0;
  const seen = new Set<string>();
  const visit = (l: LogicalVolume): void => {
    if (seen.has(l.name)) return;
    seen.add(l.name);
    for (const s of l.segments) {
      const len = segAreaExtents(s);
      for (const a of segAreas(s)) {
        if (a.kind === "pv") n += len;
        else {
          const sub = idx.get(a.lvName);
          if (sub) visit(sub);
        }
      }
      if (isMirrorSeg(s) && s.mirrorLog) {
        const log = idx.get(s.mirrorLog);
        if (log) visit(log);
      }
    }
  };
  visit(lv);
  return n;
}

/** lv_mirror_count: legs of a mirror (1 for anything else). */
function mirrorCount(lv: LogicalVolume): number {
  const seg = lv.segments[0];
  if (!seg || !lv.segments.some(isMirrorSeg) || !isMirrorSeg(seg)) return 1;
  return seg.mirrors.filter((a) => a.kind === "lv").length || 1;
}

/** _lvseg_get_stripes: stripes (and size) of a segment, looking through a mirror into its images. */
function segStripes(idx: LvIndex, seg: Segment): { stripes: number; stripeSize: number } {
  let s: Segment = seg;
  if (isMirrorSeg(seg)) {
    for (const a of seg.mirrors) {
      if (a.kind !== "lv") continue;
      const first = idx.get(a.lvName)?.segments[0];
      if (first && isStripedSeg(first)) {
        s = first;
        break;
      }
    }
  }
  if (isStripedSeg(s)) return { stripes: s.stripes.length, stripeSize: s.stripeSizeSectors };
  return { stripes: 0, stripeSize: 0 };
}

/** percent_of_extents: computed in 64 bits, returned as a uint32_t. */
function percentOf(pct: number, count: number, roundup: boolean): number {
  return Number(((BigInt(pct) * BigInt(count) + (roundup ? 99n : 0n)) / 100n) % 2n ** 32n);
}

function makeResize(name: "lvextend" | "lvreduce" | "lvresize", mode: Mode, summary: string): CommandDef {
  return {
    name,
    summary,
    usage: `  ${name} - ${summary}

  ${name} -L|--size ${mode === "reduce" ? "-" : mode === "extend" ? "[+]" : "[+|-]"}Size[m|UNIT] LV
	[ -l|--extents ${mode === "reduce" ? "-" : mode === "extend" ? "[+]" : "[+|-]"}Number[PERCENT] ]
	[ -f|--force ]
	[ -r|--resizefs ]${mode === "reduce" ? "" : `
	[ -i|--stripes Number ]
	[ -I|--stripesize Size[k|UNIT] ]
	[    --alloc contiguous|cling|cling_by_tags|normal|anywhere|inherit ]
	[    --nosync ]`}
	[ COMMON_OPTIONS ]${mode === "reduce" ? "" : `
	[ PV ... ]

  ${name} LV PV ...
	(uses all free space of the PVs given)`}
`,
    options: mode === "reduce" ? OPTIONS.filter((o) => !["stripes", "stripesize", "mirrors", "nosync", "alloc", "type"].includes(o.name)) : OPTIONS,
    async run(ctx, args) {
      const p = readParams(ctx, args, mode);
      const loaded = await readVgForUpdate(ctx, p.vgName);
      const vg = loaded.vg;
      const out = ctx.out;
      const ed = new VgEditor(vg, lvEnv(ctx));
      let lv = ed.lv(p.lvName);
      if (!lv) throw new CommandError(`Logical volume ${p.lvName} not found in volume group ${vg.name}.`);
      const pvh: PvListEntry[] = p.pvArgs.length ? createPvList(ctx, loaded, p.pvArgs, true) : vgPvEntries(loaded);
      const pvhIsVg = !p.pvArgs.length;

      // _lvresize_check.
      refuseRaidIntegrity(vg, lv, mode === "extend" ? "extend" : "resize", mode === "reduce" ? "Cannot reduce LV with integrity." : undefined);
      if (lv.segments.some((s) => "opaque" in s)) throw new CommandError(`Cannot resize ${displayLvName(vg, lv.name)}: segment type ${lv.segments.find((s) => "opaque" in s)!.type} is not supported by ulvm.`);
      if (!isVisible(lv)) throw new CommandError(`Can't resize internal logical volume ${displayLvName(vg, lv.name)}.`);
      if (lv.status.includes("LOCKED")) throw new CommandError(`Can't resize locked logical volume ${displayLvName(vg, lv.name)}.`);
      const first = lv.segments[0];
      if (first && isMirrorSeg(first) && first.mirrors.some((a) => a.kind === "lv" && a.lvName.includes("_mimagetmp")))
        throw new CommandError(`Can't resize logical volume ${displayLvName(vg, lv.name)} while lvconvert in progress.`);
      let stripeSize = p.stripeSize;
      if (stripeSize) {
        if (stripeSize > 2 ** 31) throw new CommandError(`Stripe size cannot be larger than ${displaySize(2 ** 30)}.`);
        if (stripeSize > vg.extentSizeSectors) {
          out.print(`Reducing stripe size ${displaySize(stripeSize)} to maximum, physical extent size ${displaySize(vg.extentSizeSectors)}.`);
          stripeSize = vg.extentSizeSectors;
        }
        if (stripeSize & (stripeSize - 1)) throw new CommandError("Stripe size must be power of 2.");
      }

      // _lvresize_prepare: size to extents.
      let extents = p.extents;
      let sign = p.sign;
      let extentsArePes = false;
      let approx = false;
      const freeCount = vgFreeCount(vg);
      const leCount = lvLeCount(lv);
      if (p.size) {
        let size = p.size;
        const adjust = size % vg.extentSizeSectors;
        if (adjust) {
          if (sign !== "-") size += vg.extentSizeSectors;
          size -= adjust;
          out.print(`Rounding size to boundary between physical extents: ${displaySize(size)}.`);
        }
        // lp->extents is a uint32_t in lvm2: a huge size wraps around.
        extents = Math.floor(size / vg.extentSizeSectors) % 2 ** 32;
      } else if (extents && p.percent) {
        const up = sign !== "-";
        const old = extents;
        if (p.percent === "VG") {
          extents = percentOf(old, vgExtentCount(vg), up);
          if (!sign && extents > leCount + freeCount) {
            extents = leCount + freeCount;
            out.print(`Reducing ${old}%VG to remaining free space ${displaySize(extents * vg.extentSizeSectors)} in VG.`);
          }
        } else if (p.percent === "FREE") extents = percentOf(old, freeCount, up);
        else if (p.percent === "LV") extents = percentOf(old, leCount, up);
        else if (p.percent === "PVS") extents = percentOf(old, pvhIsVg ? vgExtentCount(vg) : pvListFreeExtents(vg, pvh), up);
        else throw new CommandError("Specified LV does not have an origin LV.");
        if (p.percent === "VG" || p.percent === "FREE" || p.percent === "PVS") extentsArePes = true;
        if (!sign && extentsArePes) approx = true;
        if (sign === "+" && p.percent === "FREE") approx = true;
      }

      // _lvresize_adjust_extents.
      const segLast = lv.segments[lv.segments.length - 1]!;
      const lastType = isMirrorSeg(segLast) ? "mirror" : isRaidSeg(segLast) ? "raid1" : "striped";
      if (p.segtype === "error" || p.segtype === "zero") throw new CommandError(`Segment type ${p.segtype} is not supported by ulvm.`);
      if (p.segtype !== undefined && p.segtype !== lastType) {
        if (p.segtype === "striped" || p.segtype === "error" || p.segtype === "zero") {
          if (lastType !== "striped") throw new CommandError(`VolumeType does not match (${p.segtype}).`);
        } else throw new CommandError(`VolumeType does not match (${p.segtype}).`);
      }
      let stripes = p.stripes;
      let mirrors = p.mirrors;
      const existingLogical = leCount;
      let existingPhysical = lvPeCount(ed.idx, lv);
      if (!existingPhysical) {
        existingPhysical = leCount;
        extentsArePes = false;
      }
      const existing = extentsArePes ? existingPhysical : existingLogical;
      let resize = p.resize;
      const reducing = sign === "-" || (!sign && extents < existing);
      let segSize = 0;
      if (!reducing) {
        // lv_mirror_count: a raid1 LV counts its images, as a mirror its legs.
        const segMirrors = isMirrorSeg(segLast) ? mirrorCount(lv) : isRaidSeg(segLast) ? segLast.raids.length : 0;
        if (!mirrors && segMirrors) {
          out.print(`Extending ${segMirrors} mirror images.`);
          mirrors = segMirrors;
        } else if ((mirrors || segMirrors) && mirrors !== segMirrors) throw new CommandError("Cannot vary number of mirrors in LV yet.");
        if (!(stripes === 1 || (stripes > 1 && stripeSize))) {
          let segStripeSize = 0;
          let segStripesN = 0;
          const base = isRaidSeg(segLast)
            ? ed.lv(segLast.raids[0]!.image)
            : segMirrors
              ? ed.lv((segLast as { mirrors: Array<{ lvName?: string }> }).mirrors[0]!.lvName ?? "")
              : lv;
          for (const s of base?.segments ?? []) {
            if (!isStripedSeg(s)) continue;
            const sz = s.stripeSizeSectors;
            const str = s.stripes.length;
            if ((segStripeSize && segStripeSize !== sz && sz && !stripeSize) || (segStripesN && segStripesN !== str && !stripes))
              throw new CommandError("Please specify number of stripes (-i) and stripesize (-I)");
            segStripeSize = sz;
            segStripesN = str;
          }
          if (!stripes) stripes = segStripesN;
          if (!stripeSize && stripes > 1) {
            if (segStripeSize) {
              out.print(`Using stripesize of last segment ${displaySize(segStripeSize)}`);
              stripeSize = segStripeSize;
            } else {
              stripeSize = ctx.config.int("metadata/stripesize", 64) * 2;
              out.print(`Using default stripesize ${displaySize(stripeSize)}`);
            }
          }
        }
        if (stripes > 1 && !stripeSize) throw new CommandError("Stripesize for striped segment should not be 0!");
        segSize = sign === "+" ? extents : extents - existing;
        if (extentsArePes && !isStripedSeg(segLast)) {
          const areaCount = segAreas(segLast).length;
          segSize = Math.floor((segSize * 1) / areaCount);
        }
        if (segSize >= 0xffffffff - existingLogical)
          throw new CommandError(`Unable to extend ${displayLvName(vg, lv.name)} by ${segSize} logical extents: exceeds limit (${0xffffffff}).`);
        extents = existingLogical + segSize;
      } else {
        if (stripes || stripeSize || mirrors) out.print("Ignoring stripes, stripesize and mirrors arguments when reducing.");
        let newExtents: number;
        if (sign === "-") {
          if (extents >= existing) throw new CommandError(`Unable to reduce ${displayLvName(vg, lv.name)} below 1 extent.`);
          newExtents = existing - extents;
        } else newExtents = extents;
        let logicalUsed = 0;
        let physicalUsed = 0;
        let ss = { stripes: 0, stripeSize: 0 };
        let segMirrors = 0;
        for (const s of lv.segments) {
          const segLogical = s.extentCount;
          const segPhysical = segAreaExtents(s) * segAreas(s).length;
          ss = segStripes(ed.idx, s);
          segMirrors = isMirrorSeg(s) ? mirrorCount(lv) : isRaidSeg(s) ? s.raids.length : 0;
          if (extentsArePes) {
            if (newExtents <= physicalUsed + segPhysical) {
              segSize = newExtents - physicalUsed;
              if (segMirrors) segSize = Math.floor(segSize / segMirrors);
              extents = logicalUsed + segSize;
              break;
            }
          } else if (newExtents <= logicalUsed + segLogical) {
            segSize = newExtents - logicalUsed;
            extents = newExtents;
            break;
          }
          logicalUsed += segLogical;
          physicalUsed += segPhysical;
        }
        stripeSize = ss.stripeSize;
        stripes = ss.stripes;
        mirrors = segMirrors;
      }
      if (!extents) throw new CommandError("New size of 0 not permitted.");
      if (extents === existingLogical) {
        if (!p.resizefs) throw new CommandError(`New size (${extents} extents) matches existing size (${existingLogical} extents).`);
        resize = "extend";
      }
      if (stripes > 1) {
        if (stripeSize < 8) throw new CommandError(`Invalid stripe size ${displaySize(stripeSize)}.`);
        let stripesExtents = stripes;
        if (stripeSize > vg.extentSizeSectors) stripesExtents *= Math.floor(stripeSize / vg.extentSizeSectors);
        const rest = segSize % stripesExtents;
        if (rest && (extents < existingLogical || !p.percent || freeCount >= extents - existingLogical - rest + stripesExtents)) {
          out.print(`Rounding size (${extents} extents) up to stripe boundary size for segment (${extents - rest + stripesExtents} extents).`);
          extents = extents - rest + stripesExtents;
        } else if (rest) {
          out.print(`Rounding size (${extents} extents) down to stripe boundary size for segment (${extents - rest} extents)`);
          extents -= rest;
        }
      }
      if (extents < existingLogical) {
        if (resize === "extend") throw new CommandError(`New size given (${extents} extents) not larger than existing size (${existingLogical} extents)`);
        resize = "reduce";
      } else if (extents > existingLogical) {
        if (resize === "reduce") throw new CommandError(`New size given (${extents} extents) not less than existing size (${existingLogical} extents)`);
        resize = "extend";
      } else if (!p.resizefs) throw new CommandError(`New size (${extents} extents) matches existing size (${existingLogical} extents)`);
      if (extents > existingLogical && first && (isMirrorSeg(first) || isRaidSeg(first)) && p.nosync && !lv.status.includes("NOTSYNCED")) lv.status.push("NOTSYNCED");

      if (resize === "reduce" && !pvhIsVg) out.print("Ignoring PVs on command line when reducing.");

      // _request_confirmation.
      if (p.resizefs || resize === "reduce") {
        const active = await lvActivation(ctx).isActive(ctx, loaded, lv);
        if (p.resizefs) {
          if (!active) throw new CommandError(`Logical volume ${displayLvName(vg, lv.name)} must be activated before resizing filesystem.`);
          throw new CommandError("ulvm cannot resize filesystems (--resizefs); resize the filesystem separately.");
        }
        if (active) {
          out.warn(`WARNING: Reducing active logical volume to ${displaySize(extents * vg.extentSizeSectors)}.`);
          out.warn("THIS MAY DESTROY YOUR DATA (filesystem etc.)");
          if (!p.force && !ctx.opts.yes && !(await ctx.confirm(`Do you really want to reduce ${displayLvName(vg, lv.name)}?`)))
            throw new CommandError(`Logical volume ${displayLvName(vg, lv.name)} NOT reduced.`);
        }
      }

      // _lvresize_volume.
      const oldExtents = existingLogical;
      try {
        if (resize === "reduce") ed.lvReduce(lv, oldExtents - extents);
        else {
          // --alloc (inherit included: it means the VG's policy) overrides the LV's own.
          const policy = effectivePolicy(vg, p.allocArg ?? lv.allocationPolicy);
          const seg0 = lv.segments[0]!;
          ed.lvExtend(lv, {
            pvs: pvh,
            policy,
            approx,
            segtype: lastType,
            stripes: stripes || 1,
            stripeSizeSectors: stripes > 1 ? stripeSize : 0,
            mirrors: lastType === "striped" ? mirrors || 1 : mirrors,
            regionSizeSectors: isMirrorSeg(seg0) || isRaidSeg(seg0) ? seg0.regionSizeSectors : 0,
            extents: extents - oldExtents,
          });
          if (lastType === "mirror" && oldExtents && lv.status.includes("NOTSYNCED")) {
            // lv_extend on a not-synced mirror asks for its sync state, which an inactive LV cannot give.
            out.error(`Unable to read sync percent while LV ${displayLvName(vg, lv.name)} is not locally active.`);
            if (!(await ctx.confirm(`Do full resync of extended portion of ${displayLvName(vg, lv.name)}? `))) throw new CommandError("");
          }
        }
      } catch (e) {
        if (e instanceof AllocationError) throw new CommandError(e.message);
        if (e instanceof CommandError && e.message === "") {
          e.silent = true;
        }
        throw e;
      }
      lv = ed.lv(p.lvName)!;
      const newLe = lvLeCount(lv);
      const disp = displayLvName(vg, lv.name);
      if (newLe === oldExtents) out.print(`Size of logical volume ${disp} unchanged from ${displaySize(oldExtents * vg.extentSizeSectors)} (${oldExtents} extents).`);
      else {
        out.print(
          `Size of logical volume ${disp} changed from ${displaySize(oldExtents * vg.extentSizeSectors)} (${oldExtents} extents) to ${displaySize(newLe * vg.extentSizeSectors)} (${newLe} extents).`,
        );
        await commitLvChange(ctx, loaded);
        if (!ctx.opts.test) await lvActivation(ctx).reload(ctx, loaded, lv.name);
      }
      out.print(`Logical volume ${disp} successfully resized.`);
      return 0;
    },
  };
}

export const lvextend: CommandDef = makeResize("lvextend", "extend", "Add space to a logical volume");
export const lvreduce: CommandDef = makeResize("lvreduce", "reduce", "Reduce the size of a logical volume");
export const lvresize: CommandDef = makeResize("lvresize", "any", "Resize a logical volume");

