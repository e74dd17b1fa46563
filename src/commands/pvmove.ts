import type { CommandDef } from "../cli/command-def.js";
import type { Args, OptionSpec } from "../cli/args.js";
import { AllocationError, CommandError, UsageError } from "../errors/errors.js";
import { VgEditor, effectivePolicy } from "../model/allocate-lv.js";
import { findLv, isMirrorSeg } from "../model/lv-info.js";
import { finishPvmove, markSegmentMoved, pvmoveLvs, pvmoveProgress, pvmoveSourcePv, runningSegment, setUpPvmove } from "../model/pvmove.js";
import type { LogicalVolume } from "../model/types.js";
import type { PeRange } from "../model/allocate-pv-maps.js";
import { allocValue } from "./lv-args.js";
import { commitLvChange, createPvList, lvEnv, parsePeRanges, readVgForUpdate, vgPvEntries } from "./lv-common.js";
import { daemonStatus, reloadVg } from "./activation.js";
import { displayPercent } from "./conversion-progress.js";
import { ProgressBar, progressBarWanted } from "./progress-bar.js";
import { MIRROR_CHECK_FAILED, copyOffline } from "./pvmove-copy.js";
import { offlineCopyLockName, pollLockName, spawnPoller } from "./pvmove-poll.js";
import { loadVg, type LoadedVg } from "./vg-store.js";
import { vgLockName } from "./lock.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * pvmove (tools/pvmove.c, tools/pvmove_poll.c, tools/polldaemon.c): move the
 * extents of a PV elsewhere through the temporary mirror LV pvmoveN
 * (model/pvmove.ts builds its metadata). One segment copies at a time; a
 * checkpoint (extents_moved) is committed when it is in sync, then the next
 * segment starts; at the end the LVs point at their new extents.
 *  - LVs active in the daemon: their tables are reloaded over pvmoveN, the
 *    daemon's mirror copies under the running clients and this command polls
 *    it (without the VG lock, as lvm2's poller), printing "  PV: Moved: N%".
 *  - Nothing active: the command copies itself, through an in-process mapper
 *    (pvmove-copy.ts), with the same tables the daemon would load.
 * `pvmove` without a PV resumes every move in progress; `--abort` stops at
 * the last checkpoint (moved segments stay on their destination).
 */
const OPTIONS: OptionSpec[] = [
  { name: "name", short: "n", value: true },
  { name: "background", short: "b", value: false },
  { name: "interval", short: "i", value: true },
  { name: "abort", value: false },
  { name: "atomic", value: false },
  { name: "alloc", value: true },
  { name: "autobackup", short: "A", value: true },
  { name: "noudevsync", value: false },
  { name: "reportformat", value: true },
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function intervalArg(ctx: ToolContext, args: Args): number {
  const v = args.str("interval");
  if (v === undefined) return ctx.config.int("activation/polling_interval", 15);
  if (!/^\+?\d+$/.test(v)) throw new UsageError(`Invalid argument for --interval: ${v}\n  Error during parsing of command line.`, undefined, { runHelp: false });
  return Number(v.replace("+", ""));
}

interface MoveRun {
  vgName: string;
  pvmoveName: string;
  /** The source PV's name, for the progress lines. */
  srcName: string;
  intervalSec: number;
  abort: boolean;
  /** The VG's extent size, for the terminal bar's rate. */
  extentBytes?: number;
  /** The terminal bar's start: when and how many extents were already copied. */
  /** The terminal bar, from the first progress report on. */
  bar?: ProgressBar;
}

/** The device of the VG whose PV is named `pvName` (with optional ranges after ':'). */
async function vgOfPv(ctx: ToolContext, pvName: string): Promise<{ vgName: string; pvId: string } | undefined> {
  const sd = await ctx.findDevice(pvName);
  if (!sd?.label) return undefined;
  const scan = await ctx.scan();
  for (const v of scan.vgNames()) if (loadVg(scan, v, { readOnly: true })?.vg.pvs.some((p) => p.id === sd.label!.pvIdRaw)) return { vgName: v, pvId: sd.label.pvIdRaw };
  throw new CommandError(`Physical volume ${pvName} not in a volume group.`);
}

/** The daemon's view of the running pvmove mirror, when an LV over it is active there. */
async function onlineSync(ctx: ToolContext, vgName: string, pvmoveName: string): Promise<{ insync: number; total: number; failed: boolean } | undefined> {
  for (const a of await daemonStatus(ctx)) {
    if (a.vg !== vgName) continue;
    const d = a.devices.find((x) => x.lvName === pvmoveName);
    if (d) return d.sync ? { insync: d.sync.insyncRegions, total: d.sync.totalRegions, failed: d.sync.legHealth.some((h) => h !== "A") } : { insync: 1, total: 1, failed: false };
  }
  return undefined;
}


function printProgress(ctx: ToolContext, run: MoveRun, pm: LogicalVolume, runningCopied: number): void {
  if (run.intervalSec <= 0) return;
  const p = pvmoveProgress(pm, runningCopied);
  const percent = p.total ? (100 * p.copied) / p.total : 100;
  if (progressBarWanted()) {
    // On a terminal: one bar rewritten in place, with the recent rate and the ETA; lvm2's last line at the end.
    const extentBytes = run.extentBytes ?? 0;
    const bar = (run.bar ??= new ProgressBar({ label: run.srcName, total: p.total * extentBytes }));
    bar.update(p.copied * extentBytes, displayPercent(percent));
    bar.draw();
    if (percent < 100) return;
    bar.finish();
  }
  ctx.out.print(`${run.srcName}: Moved: ${displayPercent(percent)}%`);
  ctx.out.flush?.();
}

/** Copy (or wait for the daemon to copy) every remaining segment, checkpoint each, then finish. */
async function runMove(ctx: ToolContext, run: MoveRun): Promise<void> {
  // One poller per move (a second waits, then finds it done); --abort never waits for one.
  const pollLock = pollLockName(run.vgName, run.pvmoveName);
  if (!run.abort) await ctx.locks.acquire(pollLock);
  try {
    await pollMove(ctx, run);
  } finally {
    await ctx.locks.release(pollLock);
  }
}

async function pollMove(ctx: ToolContext, run: MoveRun): Promise<void> {
  for (;;) {
    const loaded = await readVgForUpdate(ctx, run.vgName);
    run.extentBytes = loaded.vg.extentSizeSectors * 512;
    const pm = findLv(loaded.vg, run.pvmoveName);
    if (!pm) {
      // Finished or aborted by another pvmove meanwhile.
      await ctx.locks.release(vgLockName(run.vgName));
      return;
    }
    const seg = run.abort ? undefined : runningSegment(pm);
    if (!seg) {
      await finish(ctx, loaded, pm, run);
      return;
    }
    const segStart = seg.startExtent;
    const online = await onlineSync(ctx, run.vgName, run.pvmoveName);
    if (online) {
      // The daemon's mirror copies; poll it without the VG lock.
      await ctx.locks.release(vgLockName(run.vgName));
      let last = 0;
      for (;;) {
        const s = await onlineSync(ctx, run.vgName, run.pvmoveName);
        if (!s) {
          // Aborted (or finished) by another command meanwhile: pvmoveN is gone from the metadata.
          const now = await readVgForUpdate(ctx, run.vgName);
          await ctx.locks.release(vgLockName(run.vgName));
          if (!findLv(now.vg, run.pvmoveName)) return;
          throw new CommandError(`${run.srcName}: Skipping inactive LV. Try lvchange or vgchange.`);
        }
        if (s.failed) throw new CommandError(MIRROR_CHECK_FAILED);
        const copied = s.total ? Math.floor((seg.extentCount * s.insync) / s.total) : seg.extentCount;
        if (s.insync >= s.total) break;
        if (Date.now() - last >= run.intervalSec * 1000 && run.intervalSec > 0) {
          printProgress(ctx, run, pm, copied);
          last = Date.now();
        }
        await sleep(100);
      }
    } else {
      // As lvm2's poller, the copy runs without the VG lock (pvmoveN and its LVs are LOCKED):
      // `pvmove --abort` may take the move away meanwhile, which the checkpoint below notices.
      await ctx.locks.release(vgLockName(run.vgName));
      const copyLock = offlineCopyLockName(run.vgName, run.pvmoveName);
      await ctx.locks.acquire(copyLock);
      try {
        // Activated meanwhile (vgchange/lvchange -ay): the daemon's mirror copies; poll it instead.
        if (await onlineSync(ctx, run.vgName, run.pvmoveName)) continue;
        printProgress(ctx, run, pm, 0);
        await copyOffline(ctx, loaded, run.pvmoveName, (copied) => printProgress(ctx, run, pm, copied), run.intervalSec);
      } finally {
        await ctx.locks.release(copyLock);
      }
    }
    // Checkpoint: the segment is on its destination; the next one starts copying on the reload.
    const again = await readVgForUpdate(ctx, run.vgName);
    const pm2 = findLv(again.vg, run.pvmoveName);
    const s2 = pm2?.segments.find((s) => s.startExtent === segStart);
    if (pm2 && s2 && isMirrorSeg(s2)) {
      markSegmentMoved(s2);
      await commitLvChange(ctx, again);
      await reloadVg(ctx, run.vgName);
    }
    await ctx.locks.release(vgLockName(run.vgName));
  }
}

async function finish(ctx: ToolContext, loaded: LoadedVg, pm: LogicalVolume, run: MoveRun): Promise<void> {
  if (!run.abort) printProgress(ctx, run, pm, 0);
  const ed = new VgEditor(loaded.vg, lvEnv(ctx));
  finishPvmove(ed, findLv(loaded.vg, pm.name)!, run.abort);
  await commitLvChange(ctx, loaded);
  await reloadVg(ctx, run.vgName);
  await ctx.locks.release(vgLockName(run.vgName));
}

/** Every move in progress (of the VGs given, or all): [vg, pvmove LV, source PV name]. */
async function movesInProgress(ctx: ToolContext): Promise<Array<{ vgName: string; pvmoveName: string; srcName: string }>> {
  const scan = await ctx.scan();
  const out: Array<{ vgName: string; pvmoveName: string; srcName: string }> = [];
  for (const v of scan.vgNames()) {
    const l = loadVg(scan, v, { readOnly: true });
    if (!l) continue;
    for (const pm of pvmoveLvs(l.vg)) {
      const src = pvmoveSourcePv(l.vg, pm);
      out.push({ vgName: v, pvmoveName: pm.name, srcName: src ? l.pvName(src) : "[unknown]" });
    }
  }
  return out;
}

async function startMove(ctx: ToolContext, args: Args, srcArg: string, destArgs: string[]): Promise<MoveRun | undefined> {
  const colon = srcArg.indexOf(":");
  const srcName = colon === -1 ? srcArg : srcArg.slice(0, colon);
  const where = await vgOfPv(ctx, srcName);
  if (!where) throw new CommandError(`Failed to find physical volume "${srcName}".`);
  const intervalSec = intervalArg(ctx, args);
  let loaded: LoadedVg;
  try {
    loaded = await readVgForUpdate(ctx, where.vgName);
  } catch (e) {
    // lvm2 reads the VG while it looks for the PV (process_each_pv): a VG it cannot
    // change means the PV was not found, a command-line error (exit 3).
    if (e instanceof CommandError && e.message.includes("while PVs are missing")) throw new UsageError(`${e.message}\nFailed to find physical volume "${srcName}".`, "pvmove");
    throw e;
  }
  const vg = loaded.vg;
  const srcPv = vg.pvs.find((p) => p.id === where.pvId)!;
  const existing = pvmoveLvs(vg).find((pm) => pvmoveSourcePv(vg, pm) === srcPv.id);
  if (existing) {
    ctx.out.print(`Detected pvmove in progress for ${srcName}.`);
    if (destArgs.length || colon !== -1 || args.has("name")) ctx.out.warn("WARNING: Ignoring remaining command line arguments.");
    await ctx.locks.release(vgLockName(vg.name));
    return { vgName: vg.name, pvmoveName: existing.name, srcName, intervalSec, abort: args.has("abort") };
  }
  if (args.has("abort")) {
    // _read_poll_id_from_pvname: a notice (log_print), not a failure.
    ctx.out.print(`${srcName}: No pvmove in progress - already finished or aborted.`);
    await ctx.locks.release(vgLockName(vg.name));
    return undefined;
  }
  let srcRanges: PeRange[] | undefined;
  if (colon !== -1) {
    srcRanges = [];
    parsePeRanges(srcArg.slice(colon), srcName, srcPv.peCount, srcRanges);
  }
  const lvName = args.str("name");
  if (lvName !== undefined) {
    if (!lvName || lvName.includes("/")) {
      const slash = lvName.indexOf("/");
      if (slash === -1 || lvName.slice(0, slash) !== vg.name) throw new CommandError(lvName ? "Named LV and old PV must be in the same VG." : "--name takes a logical volume name.");
    }
    const bare = lvName.includes("/") ? lvName.slice(lvName.indexOf("/") + 1) : lvName;
    if (!findLv(vg, bare)) throw new CommandError(`Logical volume ${bare} not found.`);
  }
  const policy = effectivePolicy(vg, allocValue(args));
  // _get_allocatable_pvs: the DST PVs (or the VG's), never the source unless anywhere, never full ones.
  let dest = destArgs.length ? createPvList(ctx, loaded, destArgs, true) : vgPvEntries(loaded);
  if (policy !== "anywhere") dest = dest.filter((e) => e.pv.pvId !== srcPv.id);
  const used = new Set<string>();
  dest = dest.filter((e) => {
    const pv = vg.pvs.find((p) => p.id === e.pv.pvId)!;
    void used;
    return pv.peCount > 0 && hasFree(loaded, pv.id);
  });
  if (!dest.length) throw new CommandError("No extents available for allocation.");
  const ed = new VgEditor(vg, lvEnv(ctx));
  let pvmoveName: string;
  try {
    const s = setUpPvmove(ed, { srcPvId: srcPv.id, srcRanges, lvName: lvName?.includes("/") ? lvName.slice(lvName.indexOf("/") + 1) : lvName, dest, policy, atomic: args.has("atomic"), maxSegmentExtents: maxSegmentExtents(ctx, vg.extentSizeSectors) });
    for (const n of s.skippedLocked) ctx.out.print(`Skipping locked LV ${n}.`);
    pvmoveName = s.pvmove.name;
  } catch (e) {
    if (e instanceof AllocationError) throw new CommandError(`${e.message}\nFailed to convert pvmove LV to mirrored.`);
    throw e;
  }
  await commitLvChange(ctx, loaded);
  await reloadVg(ctx, vg.name);
  await ctx.locks.release(vgLockName(vg.name));
  if (ctx.opts.test) return undefined;
  return { vgName: vg.name, pvmoveName, srcName, intervalSec, abort: false };
}

/** allocation/pvmove_max_segment_size_mb (lvm2 2.03.36) in extents, rounded down, at least 1; 0 = no limit. */
function maxSegmentExtents(ctx: ToolContext, extentSizeSectors: number): number {
  const mb = ctx.config.int("allocation/pvmove_max_segment_size_mb", 0);
  if (mb <= 0) return 0;
  return Math.max(1, Math.floor((mb * 2048) / extentSizeSectors));
}

function hasFree(loaded: LoadedVg, pvId: string): boolean {
  const pv = loaded.vg.pvs.find((p) => p.id === pvId)!;
  const used = new Array<boolean>(pv.peCount).fill(false);
  let n = 0;
  for (const lv of loaded.vg.lvs)
    for (const s of lv.segments) {
      const areas = "stripes" in s ? s.stripes : "mirrors" in s ? s.mirrors : [];
      const w = "stripes" in s ? s.extentCount / Math.max(1, s.stripes.length) : s.extentCount;
      for (const a of areas) if (a.kind === "pv" && a.pvId === pvId) for (let i = 0; i < w; i++) if (!used[a.startPe + i]) ((used[a.startPe + i] = true), n++);
    }
  return n < pv.peCount;
}

export const pvmove: CommandDef = {
  name: "pvmove",
  summary: "Move extents from one physical volume to another",
  usage: "  pvmove PV\n\t[ -n|--name LV ]\n\t[    --alloc contiguous|cling|cling_by_tags|normal|anywhere|inherit ]\n\t[    --atomic ]\n\t[ COMMON_OPTIONS ]\n\t[ PV ... ]\n\n  pvmove\n\t[ COMMON_OPTIONS ]\n\n  Common options for command:\n\t[ -b|--background ]\n\t[ -i|--interval Number ]\n\t[    --abort ]\n",
  options: OPTIONS,
  async run(ctx: ToolContext, args: Args): Promise<number> {
    const intervalSec = intervalArg(ctx, args);
    const runs: MoveRun[] = [];
    if (args.positional.length) {
      const [src, ...dest] = args.positional;
      const r = await startMove(ctx, args, src!, dest);
      if (r) runs.push(r);
    } else {
      for (const m of await movesInProgress(ctx)) runs.push({ ...m, intervalSec, abort: args.has("abort") });
    }
    if (args.has("background") && !args.has("abort")) {
      // lvm2 forks a poller; ulvm's resumes in a detached `pvmove` of its own.
      for (const r of runs) await spawnPoller(ctx, [r.srcName]);
      return 0;
    }
    for (const r of runs) await runMove(ctx, r);
    return 0;
  },
};
