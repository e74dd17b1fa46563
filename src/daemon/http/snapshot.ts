import type { Daemon } from "../daemon.js";
import { ULVM_VERSION } from "../../base/version.js";
import type { MirrorStatus, RaidStatus } from "../../mapper/status.js";
import { colorOf, lvHealth, worst, type Color, type LegState, type LvHealth } from "./health.js";
import { RateTracker } from "./rate.js";
import { dmName } from "../../segtypes/dm-names.js";

/**
 * One consistent picture of what the daemon serves, for the status page
 * (/api/status), its live stream and the metrics: VGs → active LVs → legs.
 * Built from the daemon's live devices only (no disk is read), so taking it
 * costs a walk over a few maps.
 */
export interface LegSnapshot {
  index: number;
  /** The sub-LV (lv_rimage_N, lv_mimage_N). */
  name: string;
  /** The PV(s) under it, as the daemon opened them; "" when absent. */
  pv: string;
  state: LegState;
  color: Color;
  errors: number;
}

export interface ProgressSnapshot {
  /** resync (initial sync), recover (rebuild of a leg), check, repair. */
  action: string;
  ratio: number;
  doneBytes: number;
  totalBytes: number;
  /** Over the last few seconds; undefined until two samples exist. */
  rateBytesPerSec: number | undefined;
  /** Undefined while there is no rate. */
  etaSeconds: number | undefined;
}

export interface LvSnapshot {
  vg: string;
  lv: string;
  lvId: string;
  segtype: string;
  sizeBytes: number;
  health: LvHealth;
  color: Color;
  suspended: boolean;
  openCount: number;
  /** In-sync fraction, 1 when there is nothing to sync. */
  syncRatio: number;
  resyncRemainingBytes: number;
  resyncedBytes: number;
  sync: ProgressSnapshot | undefined;
  scrub: (ProgressSnapshot & { running: boolean; mismatchSectors: number }) | undefined;
  legs: LegSnapshot[];
  io: { readOps: number; writeOps: number; readBytes: number; writtenBytes: number } | undefined;
}

export interface VgSnapshot {
  name: string;
  health: LvHealth;
  color: Color;
  lvs: LvSnapshot[];
}

export interface StatusSnapshot {
  time: string;
  version: string;
  pid: number;
  health: LvHealth;
  color: Color;
  nbdConnections: number;
  vgs: VgSnapshot[];
}

const SECTOR = 512;

export class SnapshotTaker {
  private readonly rates = new RateTracker();
  /** The PV each leg was last seen on: an absent leg keeps its series (and the page says which disk is gone). */
  private readonly lastPv = new Map<string, string>();

  constructor(private readonly daemon: Daemon) {}

  take(now = Date.now()): StatusSnapshot {
    const d = this.daemon;
    const byVg = new Map<string, LvSnapshot[]>();
    const seen = new Set<string>();
    for (const a of d.active.values()) {
      const lv = this.lvSnapshot(a.vg, a.lv, a.lvId, a.nodes, now, seen);
      if (!lv) continue;
      lv.openCount = d.nbd.openCount(a.exportName);
      const list = byVg.get(a.vg) ?? [];
      list.push(lv);
      byVg.set(a.vg, list);
    }
    this.rates.keepOnly(seen);
    const vgs: VgSnapshot[] = [...byVg.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, lvs]) => {
        lvs.sort((x, y) => x.lv.localeCompare(y.lv));
        const health = worst(lvs.map((l) => l.health));
        return { name, health, color: colorOf(health), lvs };
      });
    const health = worst(vgs.map((v) => v.health));
    return { time: new Date(now).toISOString(), version: ULVM_VERSION, pid: process.pid, health, color: colorOf(health), nbdConnections: d.nbd.stats().connectionCount, vgs };
  }

  private lvSnapshot(vg: string, lvName: string, lvId: string, nodes: ReadonlyArray<{ name: string; lvName: string }>, now: number, seen: Set<string>): LvSnapshot | undefined {
    const reg = this.daemon.registry;
    const top = nodes[nodes.length - 1];
    const dev = top ? reg.get(top.name) : undefined;
    if (!top || !dev) return undefined;
    const nodeNames = new Set(nodes.map((n) => n.name));
    const lvOf = (dm: string | undefined): string | undefined => nodes.find((n) => n.name === dm)?.lvName;
    const pvOf = (dm: string | undefined): string => {
      if (!dm) return "";
      const below = reg.get(dm)?.dependencies().filter((x) => !nodeNames.has(x)) ?? [];
      return below.join(",");
    };
    const lines = dev.statusLines();
    const raid = lines.map((l) => l.status).find((s): s is RaidStatus => s.type === "raid");
    const mirror = lines.map((l) => l.status).find((s): s is MirrorStatus => s.type === "mirror");
    const stripes = lines.flatMap((l) => (l.status.type === "striped" ? l.status.stripes : []));
    const io = this.daemon.ioStats.lv(lvId);
    const base = {
      vg,
      lv: lvName,
      lvId,
      segtype: raid?.raidType ?? lines[0]?.targetType ?? "linear",
      sizeBytes: dev.sizeBytes,
      suspended: dev.info().state === "SUSPENDED",
      openCount: 0,
      io: io ? { readOps: io.readOps, writeOps: io.writeOps, readBytes: io.readBytes, writtenBytes: io.writtenBytes } : undefined,
    };
    const errorsOf = (dm: string | undefined): number => (dm ? this.daemon.ioStats.legErrorCount(dm) : 0);
    let legs: LegSnapshot[] = [];
    let health: LvHealth;
    let syncRatio = 1;
    let remaining = 0;
    let resynced = 0;
    let sync: ProgressSnapshot | undefined;
    let scrub: LvSnapshot["scrub"];
    if (raid) {
      const action = raid.syncAction;
      legs = raid.devices.map((x, i) => {
        const state: LegState = x.health === "A" ? "in_sync" : x.health === "a" ? "syncing" : x.health === "D" ? "failed" : "absent";
        const name = lvOf(x.data) ?? `${lvName}_rimage_${i}`;
        const dm = x.data ?? dmName(vg, name);
        return leg(i, name, this.pvOfLeg(`${lvId}/${name}`, x.data ? pvOf(x.data) : ""), state, errorsOf(dm));
      });
      health = lvHealth(legs.map((l) => l.state), { initialSync: action === "resync", lostData: false });
      syncRatio = raid.totalSectors > 0 ? raid.syncedSectors / raid.totalSectors : 1;
      remaining = Math.max(0, raid.totalSectors - raid.syncedSectors) * SECTOR;
      resynced = raid.resync.copiedBytes;
      if (raid.syncedSectors < raid.totalSectors && (action === "resync" || action === "recover" || action === "frozen")) {
        sync = this.progress(`${lvId}/sync`, action, raid.syncedSectors * SECTOR, raid.totalSectors * SECTOR, now, seen);
      }
      if (raid.scrub) {
        const s = raid.scrub;
        const p = this.progress(`${lvId}/scrub`, s.action, s.doneSectors * SECTOR, s.totalSectors * SECTOR, now, seen);
        scrub = { ...p, running: s.running, mismatchSectors: s.mismatchSectors, ...(s.running ? {} : { rateBytesPerSec: undefined, etaSeconds: undefined }) };
      }
    } else if (mirror) {
      const notInSync = mirror.insyncRegions < mirror.totalRegions;
      legs = mirror.legs.map((l, i) => {
        const state: LegState = l.health !== "A" ? "failed" : notInSync && i !== mirror.sourceLeg ? "syncing" : "in_sync";
        return leg(i, lvOf(l.device) ?? l.device, pvOf(l.device), state, errorsOf(l.device));
      });
      health = lvHealth(legs.map((l) => l.state), { initialSync: legs.every((l) => l.state !== "failed"), lostData: mirror.lostRegions > 0 });
      syncRatio = mirror.totalRegions > 0 ? mirror.insyncRegions / mirror.totalRegions : 1;
      remaining = Math.min(base.sizeBytes, (mirror.totalRegions - mirror.insyncRegions) * mirror.regionSectors * SECTOR);
      resynced = mirror.resync.copiedBytes;
      if (notInSync) sync = this.progress(`${lvId}/sync`, "resync", Math.max(0, base.sizeBytes - remaining), base.sizeBytes, now, seen);
    } else if (stripes.length > 0) {
      // No redundancy: one dead stripe leaves part of the data unavailable.
      health = stripes.some((s) => s.health !== "A") ? "partial" : "ok";
      legs = stripes.map((s, i) => leg(i, lvOf(s.device) ?? s.device, nodeNames.has(s.device) ? pvOf(s.device) : s.device, s.health === "A" ? "in_sync" : "failed", errorsOf(s.device)));
    } else {
      health = lines.some((l) => l.targetType === "error") ? "partial" : "ok";
    }
    return { ...base, health, color: colorOf(health), syncRatio, resyncRemainingBytes: remaining, resyncedBytes: resynced, sync, scrub, legs };
  }

  private pvOfLeg(key: string, pv: string): string {
    if (pv !== "") this.lastPv.set(key, pv);
    return pv || (this.lastPv.get(key) ?? "");
  }

  private progress(key: string, action: string, done: number, total: number, now: number, seen: Set<string>): ProgressSnapshot {
    seen.add(key);
    const rate = this.rates.sample(key, now, done);
    const left = Math.max(0, total - done);
    return {
      action,
      ratio: total > 0 ? done / total : 1,
      doneBytes: done,
      totalBytes: total,
      rateBytesPerSec: rate,
      etaSeconds: rate !== undefined && rate > 0 ? left / rate : undefined,
    };
  }
}

function leg(index: number, name: string, pv: string, state: LegState, errors: number): LegSnapshot {
  const color: Color = state === "in_sync" ? "green" : state === "syncing" ? "amber" : "red";
  return { index, name, pv, state, color, errors };
}
