/**
 * The health model of the status page and the metrics, after Cockpit's LVM
 * pages: each leg has a state, an LV's health is computed from its legs, a
 * VG's is the worst of its LVs', and the page's the worst of all.
 *
 *   ok        every leg in sync (an initial sync counts as ok: it is not a
 *             loss of redundancy, and mdadm's users ask not to be alarmed by it)
 *   degraded  a leg failed, is absent or is being rebuilt, but a complete
 *             copy of the data remains: repair to restore redundancy (amber)
 *   partial   no complete copy is left: data is unavailable (red)
 */
export type LvHealth = "ok" | "degraded" | "partial";
export const LV_HEALTH_STATES: readonly LvHealth[] = ["ok", "degraded", "partial"];

/**
 * in_sync: holds all data. syncing: alive, being filled by an initial sync
 * (resync) or a rebuild (recover). failed: dead after an I/O error. absent:
 * no device (a missing PV).
 */
export type LegState = "in_sync" | "syncing" | "failed" | "absent";
export const LEG_STATES: readonly LegState[] = ["in_sync", "syncing", "failed", "absent"];

export type Color = "green" | "amber" | "red";

export function colorOf(h: LvHealth): Color {
  return h === "ok" ? "green" : h === "degraded" ? "amber" : "red";
}

const RANK: Record<LvHealth, number> = { ok: 0, degraded: 1, partial: 2 };

export function worst(hs: Iterable<LvHealth>): LvHealth {
  let w: LvHealth = "ok";
  for (const h of hs) if (RANK[h] > RANK[w]) w = h;
  return w;
}

/**
 * An LV's health from its legs. `initialSync` says the syncing legs are
 * being filled by a first sync of a new LV (every leg alive), not rebuilt
 * after a loss; `lostData` that some region has no readable copy left.
 */
export function lvHealth(legs: readonly LegState[], opts: { initialSync: boolean; lostData: boolean }): LvHealth {
  if (legs.length === 0) return opts.lostData ? "partial" : "ok";
  if (opts.lostData) return "partial";
  const inSync = legs.filter((l) => l === "in_sync").length;
  const syncing = legs.filter((l) => l === "syncing").length;
  if (opts.initialSync && syncing > 0 && inSync + syncing === legs.length) return "ok";
  if (inSync === legs.length) return "ok";
  // During an initial sync no leg is in sync yet, but the first leg is the source and holds the data.
  if (inSync === 0 && !(opts.initialSync && syncing > 0)) return "partial";
  return "degraded";
}
