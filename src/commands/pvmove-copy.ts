import { openDataDevice } from "./device-open.js";
import { Activator } from "../activate/activator.js";
import { deviceTree } from "../activate/device-tree.js";
import { MapperRegistry } from "../mapper/mapper-registry.js";
import { defaultTargetTypes } from "../mapper/target-types.js";
import { stopSharedCopyEngine } from "../mapper/copy-threads/copy-engine.js";
import { findLv } from "../model/lv-info.js";
import { runningSegment } from "../model/pvmove.js";
import { CommandError } from "../errors/errors.js";
import type { LoadedVg } from "./vg-store.js";
import type { ToolContext } from "./toolcontext.js";

/**
 * poll_mirror_progress's failure: the running segment's mirror has a failed
 * leg (the source failing reads, the destination failing writes), so its
 * copy cannot finish. As lvm2, the poller stops and pvmoveN stays with its
 * checkpoints: `pvmove --abort` keeps each segment wholly on one side (the
 * source still has every write: mirror-target.ts stillWritten), or `pvmove`
 * tries again.
 */
export const MIRROR_CHECK_FAILED = "ABORTING: Mirror percentage check failed.";

/**
 * The copy of an inactive pvmove: lvm2 activates pvmoveN itself and lets the
 * kernel's mirror copy. ulvm does the same in this process: the pvmove LV's
 * device tree (the same tables the daemon would load: the running segment
 * a core-log mirror, the others linear) is loaded into a private mapper
 * registry over the PV devices, and the mirror target's own resync copies
 * the running segment. Returns when it is in sync; the caller checkpoints.
 */
export async function copyOffline(ctx: ToolContext, loaded: LoadedVg, pvmoveName: string, onProgress: (copiedExtents: number) => void, intervalSec: number): Promise<void> {
  const pm = findLv(loaded.vg, pvmoveName);
  const seg = pm && runningSegment(pm);
  if (!seg) return;
  const rateKib = ctx.config.int("activation/mirror_resync_rate", 0);
  const registry = new MapperRegistry(
    {
      openDevice: (name) => openDataDevice(name),
      releaseDevice: (_name, dev) => dev.close(),
    },
    defaultTargetTypes({ mirror: { resyncRateBytesPerSec: Math.max(0, rateKib) * 1024 } }),
  );
  const nodes = deviceTree(loaded.vg, pvmoveName, {
    pvDevice: (pvId) => (loaded.vg.pvs.find((p) => p.id === pvId)?.flags.includes("MISSING") ? undefined : loaded.deviceOf(pvId)?.entry.name),
    mode: "complete",
    handleErrors: false,
  });
  const activator = new Activator(registry);
  await activator.apply(nodes);
  const top = registry.get(nodes[nodes.length - 1]!.name)!;
  try {
    let last = Date.now();
    for (;;) {
      let insync = 0;
      let total = 0;
      for (const l of top.statusLines()) {
        if (l.status.type !== "mirror") continue;
        insync += l.status.insyncRegions;
        total += l.status.totalRegions;
        if (l.status.legs.some((g) => g.health !== "A")) throw new CommandError(MIRROR_CHECK_FAILED);
      }
      if (insync >= total) break;
      if (intervalSec > 0 && Date.now() - last >= intervalSec * 1000) {
        onProgress(Math.floor((seg.extentCount * insync) / Math.max(1, total)));
        last = Date.now();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await top.flush();
  } finally {
    await activator.remove(nodes.map((n) => n.name));
    // The copy threads are unref'd, yet a resumed move whose copy ended right
    // after a checkpoint was left with a referenced worker port and never exited
    // (found by the torn-metadata replay of pvmove): this process is done with them.
    await stopSharedCopyEngine();
  }
}
