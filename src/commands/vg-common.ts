import { CommandError, LvmError, NotFoundError, UsageError } from "../errors/errors.js";
import type { Args } from "../cli/args.js";
import { validVgName } from "../model/names.js";
import { vgLockName } from "./lock.js";
import type { ToolContext } from "./toolcontext.js";
import { loadVg, type LoadedVg } from "./vg-store.js";
import type { DeviceScan } from "./scan.js";
import { parseId } from "../base/uuid.js";

/**
 * What the VG and PV management commands share: lvm2's process_each_vg loop
 * (one VG at a time, each under its lock, failures counted), vg_read for
 * update (with its refusals), and the command-line matching errors lvm2's
 * command table produces.
 */

/** A failure of one VG in a process_each_vg loop: lvm2 adds "Cannot process volume group VG". */
export function cannotProcess(vgName: string, ...lines: string[]): CommandError {
  return new CommandError([...lines, `Cannot process volume group ${vgName}`].join("\n"));
}

/** lvm2's command-line matcher found no command definition: exit 3. */
export function noMatchingSyntax(ctx: ToolContext, command: string, syntax?: string): UsageError {
  const lines = [`No command with matching syntax recognised.  Run '${command} --help' for more information.`];
  if (syntax !== undefined) {
    // With a single definition lvm2 also shows it, on stdout.
    ctx.out.write(`  ${syntax}\n\n`);
    lines.push("Correct command syntax is:");
  }
  return new UsageError(lines.join("\n"), command, { runHelp: false });
}

export function doesNotAcceptArgument(command: string, arg: string): UsageError {
  return new UsageError(`Command does not accept argument: ${arg}.`, command, { runHelp: false });
}

export function doesNotAcceptOption(command: string, option: string): UsageError {
  return new UsageError(`Command does not accept option: --${option}.`, command, { runHelp: false });
}

/** An argument lvm2's option parser rejects: "Invalid argument for --opt: value" + "Error during parsing of command line." */
export function invalidArgument(command: string, option: string, value: string, ...before: string[]): UsageError {
  return new UsageError([...before, `Invalid argument for --${option}: ${value}`, "Error during parsing of command line."].join("\n"), command, { runHelp: false });
}

const TAG_RE = /^[A-Za-z0-9_+.\-/=!:&#]+$/;

/** tag_arg: an optional leading '@', then 1..1024 tag characters. */
export function tagArgs(args: Args, name: string): string[] {
  return args.strs(name).map((v) => {
    const t = v.startsWith("@") ? v.slice(1) : v;
    if (!t.length || t.length > 1024 || !TAG_RE.test(t)) throw invalidArgument(args.command, name, v);
    return t;
  });
}

/** A y/n option value as lvm2's yes_no_arg reads it. */
export function yesNoArg(args: Args, name: string): boolean | undefined {
  const v = args.str(name);
  if (v === undefined) return undefined;
  if (/^(y|yes)$/i.test(v)) return true;
  if (/^(n|no)$/i.test(v)) return false;
  throw invalidArgument(args.command, name, v);
}

/** An unsigned number option (uint32_arg), with lvm2's rejection of signs and garbage. */
export function uintArg(args: Args, name: string): number | undefined {
  const v = args.str(name);
  if (v === undefined) return undefined;
  if (!/^\+?\d+$/.test(v) || Number(v) > 0xffffffff) throw invalidArgument(args.command, name, v);
  return Number(v);
}

/** Strip the device directory from a VG argument, as skip_dev_dir does. */
export function vgArg(ctx: ToolContext, arg: string): string {
  let s = arg;
  for (const dir of [ctx.paths.devDir, "/dev"]) {
    const prefix = dir.endsWith("/") ? dir : dir + "/";
    if (s.startsWith(prefix)) {
      s = s.slice(prefix.length);
      break;
    }
  }
  while (s.endsWith("/")) s = s.slice(0, -1);
  return s;
}

export interface ReadForChangeOptions {
  /** The command copes with missing PVs (cmd->handles_missing_pvs). */
  handlesMissingPvs?: boolean;
  /** Allow an exported VG (none of ours do). */
  allowExported?: boolean;
}

/**
 * vg_read with READ_FOR_UPDATE: take the VG lock, read the newest metadata,
 * and refuse what lvm2 refuses (exported, read-only, PVs missing) with its
 * lines followed by "Cannot process volume group VG". lvm2 imports the VG a
 * second time for the update, which repeats "Couldn't find device" for
 * absent PVs; so do we.
 */
export async function readVgForChange(ctx: ToolContext, vgName: string, opts: ReadForChangeOptions = {}): Promise<LoadedVg> {
  if (!validVgName(vgName)) throw cannotProcess(vgName, `Volume group name "${vgName}" has invalid characters.`);
  let loaded: LoadedVg;
  try {
    loaded = await ctx.readVg(vgName, { lock: true });
  } catch (e) {
    if (e instanceof NotFoundError) throw cannotProcess(vgName, e.message);
    throw e;
  }
  const vg = loaded.vg;
  if (!opts.allowExported && vg.status.includes("EXPORTED")) throw cannotProcess(vgName, `Volume group ${vgName} is exported`);
  if (!vg.status.includes("WRITE")) throw cannotProcess(vgName, `Volume group ${vgName} is read-only.`);
  if (!opts.handlesMissingPvs && loaded.isPartial()) {
    throw cannotProcess(vgName, `Cannot change VG ${vgName} while PVs are missing.`, "See vgreduce --removemissing and vgextend --restoremissing.");
  }
  for (const w of loaded.absentPvWarnings()) ctx.out.warn(w);
  return loaded;
}

/** Commit, then repeat lvm2's "Couldn't find device" lines that follow every write of a VG with absent PVs. */
export async function commitChange(ctx: ToolContext, loaded: LoadedVg): Promise<void> {
  await ctx.commit(loaded);
  for (const w of loaded.absentPvWarnings(loaded.vg)) ctx.out.warn(w);
}

/**
 * The VGs a command names (VG names or @tags), or every VG when none is
 * named, in lvm2's order (sorted by name when all are taken). Unknown names
 * are kept: processing them reports "not found".
 */
export async function selectVgs(ctx: ToolContext, positional: readonly string[]): Promise<string[]> {
  const scan = await ctx.scan();
  const all = scan.vgNames();
  if (!positional.length) return all;
  const out: string[] = [];
  for (const p of positional) {
    if (p.startsWith("@")) {
      const tag = p.slice(1);
      for (const n of all) if (loadVg(scan, n)?.vg.tags.includes(tag) && !out.includes(n)) out.push(n);
      continue;
    }
    let n = vgArg(ctx, p);
    if (!all.includes(n)) {
      // A VG UUID names its VG (toollib's process_each_vg).
      const byId = vgByUuid(scan, n);
      if (byId) {
        ctx.out.print(`Processing VG ${byId} because of matching UUID ${n}`);
        n = byId;
      }
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** The name of the VG whose UUID `text` is (with or without dashes), if any. */
export function vgByUuid(scan: DeviceScan, text: string): string | undefined {
  const id = parseId(text);
  if (!id) return undefined;
  return scan.vgNames().find((v) => loadVg(scan, v)?.vg.id === id);
}

/**
 * process_each_vg: run `fn` for each VG in turn, each failure printed and
 * counted, the VG's lock released before the next one. Returns lvm2's exit
 * status (5 if any VG failed).
 */
export async function forEachVg(ctx: ToolContext, names: readonly string[], fn: (name: string) => Promise<void>): Promise<number> {
  let failed = 0;
  for (const name of names) {
    try {
      await fn(name);
    } catch (e) {
      if (!(e instanceof LvmError) || e instanceof UsageError) throw e;
      if (!e.silent && e.message) ctx.out.error(e.message);
      failed++;
    } finally {
      await ctx.locks.release(vgLockName(name));
    }
  }
  return failed ? 5 : 0;
}

/** A failure whose lines were already printed (exit 5). */
export function silentFailure(): CommandError {
  const e = new CommandError("");
  e.silent = true;
  return e;
}

/** lvm2's display_name_error for a name that fails validate_name, or undefined when the name is valid. */
export function nameError(name: string): string | undefined {
  if (!name.length) return "Name is zero length.";
  if (name[0] === "-") return "Name cannot start with hyphen.";
  if (name === "." || name === "..") return "Name starts with . or .. and has no following character(s).";
  if (!/^[A-Za-z0-9._+-]+$/.test(name)) return "Name contains invalid character, valid set includes: [a-zA-Z0-9.-_+].";
  if (name.length > 127) return "Name length exceeds maximum limit of 127.";
  return undefined;
}
