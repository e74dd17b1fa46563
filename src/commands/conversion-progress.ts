import { DaemonClient } from "../daemon/control-client.js";
import type { ActiveLvStatus } from "../daemon/protocol.js";
import { cFixed } from "../base/units.js";
import type { ToolContext } from "./toolcontext.js";
import { ProgressBar, progressBarWanted } from "./progress-bar.js";

/**
 * Waiting for a mirror to finish copying, as lvm2's polldaemon does for
 * lvconvert: "vg/lv: Converted: N%" every --interval seconds until 100%.
 * The percentage is lvm2's (copy_percent): whole extents copied,
 * floor(extents * in-sync regions / regions), over the LV's extents.
 * On a terminal a progress bar with rate and ETA replaces the periodic lines.
 * The VG lock is not held while waiting (lvm2 polls without it too).
 */
export interface SyncSample {
  insync: number;
  total: number;
}

export function syncOf(st: ActiveLvStatus | undefined): SyncSample | undefined {
  if (!st) return undefined;
  const top = st.devices[st.devices.length - 1];
  if (!top?.sync) return { insync: 1, total: 1 }; // no mirror (any more): nothing to copy
  return { insync: top.sync.insyncRegions, total: top.sync.totalRegions };
}

/** lvm2's copy percentage for a mirror of `extents` extents. */
export function copyPercent(s: SyncSample, extents: number): number {
  if (s.total === 0 || extents === 0) return 100;
  const copied = Math.floor((extents * s.insync) / s.total);
  return (100 * copied) / extents;
}

/** display_percent: "%.2f", with values in (0, 0.01) shown as 0.01 and (99.99, 100) as 99.99. */
export function displayPercent(p: number): string {
  if (p > 0 && p < 0.01) return "0.01";
  if (p > 99.99 && p < 100) return "99.99";
  return cFixed(p, 2);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sample(ctx: ToolContext, vg: string, lv: string): Promise<SyncSample | undefined> {
  const c = await DaemonClient.tryConnect(ctx.paths);
  if (!c) return undefined;
  try {
    const r = await c.request<{ lvs: ActiveLvStatus[] }>({ op: "status" });
    return syncOf(r.lvs.find((s) => s.vg === vg && s.lv === lv));
  } finally {
    c.close();
  }
}

/** Poll until the mirror is in sync. Returns false when the LV stopped being active meanwhile. */
export async function waitForConversion(ctx: ToolContext, vg: string, lv: string, extents: number, extentBytes: number, intervalSec: number): Promise<boolean> {
  const name = `${vg}/${lv}`;
  const tty = progressBarWanted();
  const lvBytes = extents * extentBytes;
  let s = await sample(ctx, vg, lv);
  if (!s) return false;
  if (!tty) {
    for (;;) {
      const p = copyPercent(s, extents);
      ctx.out.print(`${name}: Converted: ${displayPercent(p)}%`);
      if (p >= 100) return true;
      // Sleep the interval, but notice completion (and print it) as soon as it happens.
      const until = Date.now() + Math.max(0, intervalSec) * 1000;
      let next: SyncSample | undefined = s;
      do {
        await sleep(Math.min(200, Math.max(10, until - Date.now())));
        next = await sample(ctx, vg, lv);
        if (!next) return false;
        if (copyPercent(next, extents) >= 100) break;
      } while (Date.now() < until);
      s = next;
    }
  }
  const progress = new ProgressBar({ label: name, total: lvBytes });
  for (;;) {
    const p = copyPercent(s, extents);
    progress.update((s.insync / Math.max(1, s.total)) * lvBytes, displayPercent(p));
    progress.draw();
    if (p >= 100) {
      progress.finish();
      ctx.out.print(`${name}: Converted: 100.00%`);
      return true;
    }
    await sleep(200);
    const n = await sample(ctx, vg, lv);
    if (!n) {
      progress.finish();
      return false;
    }
    s = n;
  }
}
