import { findLv } from "../model/lv-info.js";
import { pvmoveLvs, pvmoveSourcePv } from "../model/pvmove.js";
import type { LogicalVolume, VolumeGroup } from "../model/types.js";
import { loadVg } from "./vg-store.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * Background polling of moves in progress (lvm2's lv_spawn_background_polling,
 * without lvmpolld): a detached `pvmove -i 0 SRC` copies or waits for the
 * daemon's mirror, checkpoints and finishes. pvmove -b starts one; vgchange -ay
 * and lvchange -ay start one for each move their LVs sit on (not with
 * --poll n). Two pollers of one move never run together: each holds the
 * move's poll lock (pvmove.ts), a second one waits and then finds it done.
 */

/** The lock a poller of one move holds while it runs. */
export const pollLockName = (vg: string, pvmove: string): string => `M_${vg}_${pvmove}`;

/**
 * The lock an offline copier (a `pvmove` process copying with its own private
 * mapping, the LVs inactive) holds while it copies; the daemon takes it while
 * it activates an LV over that move. So the two never write the destination
 * at once: an activation during an offline copy is refused, and a copier that
 * finds the move active once it has the lock leaves the copy to the daemon.
 */
export const offlineCopyLockName = (vg: string, pvmove: string): string => `C_${vg}_${pvmove}`;

/** The pvmove LVs that `lv` is layered on (its areas point at them). */
function movesUnder(vg: VolumeGroup, lv: LogicalVolume): LogicalVolume[] {
  const out = new Set<LogicalVolume>();
  const visit = (l: LogicalVolume, depth: number): void => {
    if (depth > 8) return;
    for (const s of l.segments) {
      const areas = "stripes" in s ? s.stripes : "mirrors" in s ? s.mirrors : "raids" in s ? s.raids.flatMap((r) => [r.image, ...(r.meta ? [r.meta] : [])].map((lvName) => ({ kind: "lv" as const, lvName, startLe: 0 }))) : [];
      for (const a of areas) {
        if (a.kind !== "lv") continue;
        const sub = findLv(vg, a.lvName);
        if (!sub) continue;
        if (sub.status.includes("PVMOVE")) out.add(sub);
        else visit(sub, depth + 1);
      }
      if ("mirrorLog" in s && s.mirrorLog) {
        const log = findLv(vg, s.mirrorLog);
        if (log) visit(log, depth + 1);
      }
    }
  };
  visit(lv, 0);
  return [...out];
}

/**
 * Start background polling of the moves of VG `vgName` (those under `lvNames`
 * when given, else all). Returns how many were started.
 */
export async function spawnMovePolling(ctx: ToolContext, vgName: string, lvNames?: readonly string[]): Promise<number> {
  if (ctx.opts.test) return 0;
  const scan = await ctx.scan();
  const loaded = loadVg(scan, vgName, { readOnly: true });
  if (!loaded) return 0;
  const vg = loaded.vg;
  let moves = pvmoveLvs(vg);
  if (lvNames) {
    const under = new Set(lvNames.flatMap((n) => (findLv(vg, n) ? movesUnder(vg, findLv(vg, n)!) : [])));
    moves = moves.filter((m) => under.has(m));
  }
  let n = 0;
  for (const pm of moves) {
    const src = pvmoveSourcePv(vg, pm);
    if (!src) continue;
    await spawnPoller(ctx, [loaded.pvName(src)]);
    n++;
  }
  return n;
}

/** A detached `pvmove -i 0 [ARGS]`: lvm2 forks its poller; ulvm's is a process of its own. */
export async function spawnPoller(ctx: ToolContext, args: readonly string[]): Promise<void> {
  const { spawn } = await import("node:child_process");
  const script = process.argv[1];
  if (!script) return;
  const extra = ctx.opts.devices?.length ? ["--devices", ctx.opts.devices.join(",")] : [];
  const child = spawn(process.execPath, [script, "pvmove", "-i", "0", ...extra, ...args], { detached: true, stdio: "ignore", env: process.env });
  child.unref();
}
