import { hostname } from "node:os";
import { newId } from "../base/uuid.js";
import { CommandError, LvmError, NotFoundError } from "../errors/errors.js";
import { DEFAULT_ALLOC_CONFIG, type AllocConfig } from "../model/allocate.js";
import type { LvEnv } from "../model/allocate-lv.js";
import type { PeRange, PvListEntry } from "../model/allocate-pv-maps.js";
import { vgFreeRuns } from "../model/allocate-pv-maps.js";
import type { PhysicalVolume, VolumeGroup } from "../model/types.js";
import { canonical } from "./device-list.js";
import { isNbdUri } from "../nbd/nbd-uri.js";
import type { ToolContext } from "./toolcontext.js";
import type { LoadedVg } from "./vg-store.js";
import { validTag } from "./lv-args.js";

/** Shared by the LV commands: reading the VG for a change, PV lists, the environment new LVs get. */

/** lvm.conf allocation settings that change layouts (config section "allocation"). */
export function allocConfig(ctx: ToolContext): AllocConfig {
  const c = ctx.config;
  const tags = c.strList("allocation/cling_tag_list");
  return {
    maximiseCling: c.bool("allocation/maximise_cling", DEFAULT_ALLOC_CONFIG.maximiseCling),
    mirrorLogsRequireSeparatePvs: c.bool("allocation/mirror_logs_require_separate_pvs", DEFAULT_ALLOC_CONFIG.mirrorLogsRequireSeparatePvs),
    clingTagList: tags,
  };
}

export function lvEnv(ctx: ToolContext): LvEnv {
  return {
    nowSeconds: Math.floor(Date.now() / 1000),
    hostname: hostname(),
    newId,
    config: allocConfig(ctx),
  };
}

/**
 * Read a VG to change it (vg_read for update): a missing VG, a read-only VG
 * and a VG with missing PVs (unless the command copes with them) end the
 * command with lvm2's lines and "Cannot process volume group VG".
 */
export async function readVgForUpdate(ctx: ToolContext, vgName: string, opts: { handlesMissingPvs?: boolean } = {}): Promise<LoadedVg> {
  let loaded: LoadedVg;
  try {
    loaded = await ctx.readVg(vgName, { lock: true });
  } catch (e) {
    if (e instanceof NotFoundError) throw new CommandError(`${e.message}\nCannot process volume group ${vgName}`);
    throw e;
  }
  const vg = loaded.vg;
  if (vg.status.includes("EXPORTED")) throw new CommandError(`Volume group ${vgName} is exported\nCannot process volume group ${vgName}`);
  if (!vg.status.includes("WRITE")) throw new CommandError(`Volume group ${vgName} is read-only.\nCannot process volume group ${vgName}`);
  if (!opts.handlesMissingPvs && (loaded.isPartial() || vg.pvs.some((pv) => pv.flags.includes("MISSING"))))
    throw new CommandError(`Cannot change VG ${vgName} while PVs are missing.\nSee vgreduce --removemissing and vgextend --restoremissing.\nCannot process volume group ${vgName}`);
  return loaded;
}

export function isPvMissing(loaded: LoadedVg, pv: PhysicalVolume): boolean {
  return !loaded.deviceOf(pv.id) || pv.flags.includes("MISSING");
}

export function isPvAllocatable(loaded: LoadedVg, pv: PhysicalVolume): boolean {
  return pv.status.includes("ALLOCATABLE") && !isPvMissing(loaded, pv);
}

function allocPv(loaded: LoadedVg, pv: PhysicalVolume): PvListEntry["pv"] {
  return { pvId: pv.id, name: loaded.pvName(pv.id), peCount: pv.peCount, tags: pv.tags };
}

/** &vg->pvs: every PV the allocator may use, in VG order, whole. */
export function vgPvEntries(loaded: LoadedVg): PvListEntry[] {
  return loaded.vg.pvs.filter((pv) => isPvAllocatable(loaded, pv)).map((pv) => ({ pv: allocPv(loaded, pv), ranges: undefined }));
}

/** find_pv_in_vg: the PV whose device is this path (any alias of it). */
export function findPvByName(loaded: LoadedVg, name: string): PhysicalVolume | undefined {
  const real = canonical(name);
  for (const pv of loaded.vg.pvs) {
    const sd = loaded.deviceOf(pv.id);
    if (sd && (sd.entry.real === real || sd.entry.name === name)) return pv;
  }
  return undefined;
}

/**
 * _parse_pes: ":first-last", ":first-", ":-last", ":first+count", ":first",
 * repeatable ("PV:0-9:20-29"). Ranges may not overlap or pass the PV's end.
 */
export function parsePeRanges(spec: string | undefined, pvName: string, peCount: number, ranges: PeRange[]): void {
  const add = (start: number, count: number): void => {
    for (const r of ranges) {
      if ((start < r.start && start + count - 1 >= r.start) || (start >= r.start && r.start + r.count - 1 >= start))
        throw new CommandError(`Overlapping PE ranges specified (${start}-${start + count - 1}, ${r.start}-${r.start + r.count - 1}) on ${pvName}.`);
    }
    ranges.push({ start, count });
  };
  if (spec === undefined) {
    add(0, peCount);
    return;
  }
  let c = 0;
  const err = (): never => {
    throw new CommandError(`Physical extent parsing error at ${spec.slice(c)}.`);
  };
  const num = (): number => {
    const m = /^\d+/.exec(spec.slice(c));
    if (!m) return err();
    const v = Number(m[0]);
    if (v > 0xffffffff) err();
    c += m[0].length;
    return v;
  };
  while (c < spec.length) {
    if (spec[c] !== ":") err();
    c++;
    if (spec[c] === ":" || c >= spec.length) err();
    let start = 0;
    // end = size - 1 computed in unsigned arithmetic, as lvm2 does.
    let end = (peCount - 1) >>> 0;
    if (/\d/.test(spec[c] ?? "")) {
      start = num();
      if (c >= spec.length || spec[c] === ":") end = start;
    }
    if (spec[c] === "-") {
      c++;
      if (/\d/.test(spec[c] ?? "")) end = num();
    } else if (spec[c] === "+") {
      c++;
      if (/\d/.test(spec[c] ?? "")) {
        const len = num();
        end = (start + (len ? len - 1 : 0)) >>> 0;
      }
    }
    if (c < spec.length && spec[c] !== ":") err();
    if (start > end || end > ((peCount - 1) >>> 0)) throw new CommandError(`PE range error: start extent ${start} to end extent ${end}.`);
    add(start, end - start + 1);
  }
}

/** Free extents of the PV list's ranges (pv_list_extents_free). */
export function pvListFreeExtents(vg: VolumeGroup, entries: readonly PvListEntry[]): number {
  const runs = vgFreeRuns(vg);
  let n = 0;
  for (const e of entries) {
    for (const r of e.ranges ?? [{ start: 0, count: e.pv.peCount }]) {
      for (const run of runs.get(e.pv.pvId) ?? []) {
        const s = Math.max(run.start, r.start);
        const t = Math.min(run.start + run.count, r.start + r.count);
        if (t > s) n += t - s;
      }
    }
  }
  return n;
}

/**
 * create_pv_list: PV arguments ("PV", "PV:ranges", "@tag") in the order
 * given; a PV named twice gathers its ranges. With `allocatableOnly`, PVs
 * that cannot take extents are skipped with lvm2's warnings.
 */
export function createPvList(ctx: ToolContext, loaded: LoadedVg, argv: readonly string[], allocatableOnly: boolean): PvListEntry[] {
  const vg = loaded.vg;
  const out: PvListEntry[] = [];
  const runs = vgFreeRuns(vg);
  const addEntry = (pv: PhysicalVolume, spec: string | undefined): void => {
    const name = loaded.pvName(pv.id);
    if (allocatableOnly && !pv.status.includes("ALLOCATABLE")) {
      ctx.out.warn(`WARNING: Physical volume ${name} not allocatable.`);
      return;
    }
    if (allocatableOnly && isPvMissing(loaded, pv)) {
      ctx.out.warn(`WARNING: Physical volume ${name} is missing.`);
      return;
    }
    if (allocatableOnly && !(runs.get(pv.id) ?? []).length) {
      ctx.out.warn(`WARNING: No free extents on physical volume "${name}".`);
      return;
    }
    let e = out.find((x) => x.pv.pvId === pv.id);
    if (!e) {
      e = { pv: allocPv(loaded, pv), ranges: [] };
      out.push(e);
    }
    parsePeRanges(spec, name, pv.peCount, e.ranges!);
  };
  for (const arg of argv) {
    if (arg.startsWith("@")) {
      const tag = arg.slice(1);
      if (!validTag(tag)) {
        ctx.out.error(`Skipping invalid tag ${tag}.`);
        continue;
      }
      for (const pv of vg.pvs) if (pv.tags.includes(tag)) addEntry(pv, undefined);
      continue;
    }
    const colon = pvRangeColon(arg, (n) => findPvByName(loaded, n) !== undefined);
    const pvName = colon === -1 ? arg : arg.slice(0, colon);
    const pv = findPvByName(loaded, pvName);
    if (!pv) throw new CommandError(`Physical Volume "${pvName}" not found in Volume Group "${vg.name}".`);
    if (isPvMissing(loaded, pv) && !loaded.deviceOf(pv.id)) throw new CommandError("Failed to create PV entry for missing device.");
    addEntry(pv, colon === -1 ? undefined : arg.slice(colon));
  }
  if (!out.length) throw new CommandError("No specified PVs have space available.");
  return out;
}

/**
 * Where "PV:PE-ranges" splits. A path splits at its first colon, as lvm2
 * does. An NBD URI has colons of its own (scheme, port, maybe its socket
 * path), so it splits at the first colon after its scheme that leaves a
 * known PV before it; with none, the whole argument is the name.
 */
function pvRangeColon(arg: string, isPv: (name: string) => boolean): number {
  if (!isNbdUri(arg)) return arg.indexOf(":");
  for (let at = arg.indexOf(":", arg.indexOf("://") + 3); at !== -1; at = arg.indexOf(":", at + 1)) {
    if (isPv(arg.slice(0, at))) return at;
  }
  return -1;
}

/** "vg/lv" as lvm2's display_lvname prints it. */
export const displayLvName = (vg: VolumeGroup | string, lv: string): string => `${typeof vg === "string" ? vg : vg.name}/${lv}`;

/** Turn an LvmError's multi-line message into lvm2's separate lines (main prints it). */
export function isLvmError(e: unknown): e is LvmError {
  return e instanceof LvmError;
}

/**
 * Commit for the LV commands. In test mode (-t) lvm2 writes nothing and says
 * nothing more than its TEST MODE banner (its "Test mode: Skipping metadata
 * writing." is a verbose-only line), so the commit is skipped here.
 */
export async function commitLvChange(ctx: ToolContext, loaded: LoadedVg): Promise<void> {
  if (ctx.opts.test) return;
  await ctx.commit(loaded);
}
