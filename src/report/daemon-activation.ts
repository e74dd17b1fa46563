import { existsSync, realpathSync, readFileSync, statSync } from "node:fs";
import { daemonControlSocket, type Paths } from "../config/paths.js";
import type { ActiveLvStatus } from "../daemon/protocol.js";
import { NO_ACTIVATION, StaticActivationState, type ActivationState, type LvActivation } from "./activation-state.js";

/**
 * Activation state from the ulvm daemon, which holds the active LVs as lvm2's
 * device-mapper would: one `status` request per command, mapped to what
 * lvm2 reads from dm (live table, open count, suspended, mirror regions).
 * Without a running daemon nothing is active, and nothing is started.
 */
export function activationFromStatus(lvs: readonly ActiveLvStatus[]): StaticActivationState {
  const st = new StaticActivationState();
  for (const a of lvs) {
    const dev = blockDeviceOf(a.devicePath);
    for (const d of a.devices) {
      const top = d.lvName === a.lv;
      const s: LvActivation = {
        active: true,
        openCount: top ? a.openCount : d.openCount,
        suspended: d.state === "SUSPENDED",
      };
      if (d.raid) {
        s.raid = { ...d.raid };
        s.monitoring = "monitored";
      } else if (d.sync) {
        s.mirrorSegments = [{ inSyncRegions: d.sync.insyncRegions, totalRegions: d.sync.totalRegions }];
        // The daemon watches every active mirror's events, as dmeventd does.
        s.monitoring = "monitored";
      }
      const integrity = integrityStatusOf(d.status);
      if (integrity) s.integrity = integrity;
      if (top && dev) {
        s.major = dev.major;
        s.minor = dev.minor;
        if (dev.readAheadSectors !== undefined) s.readAheadSectors = dev.readAheadSectors;
      }
      st.set(a.vg, d.lvName, s);
    }
  }
  return st;
}

/** dm-integrity's INFO in a device's status text: `<start> <len> integrity <mismatches> <provided_data_sectors> <recalc_sector|->`. */
function integrityStatusOf(status: string): LvActivation["integrity"] {
  for (const line of status.split("\n")) {
    const w = line.trim().split(/\s+/);
    if (w[2] !== "integrity" || w.length < 6) continue;
    return { mismatches: Number(w[3]), providedDataSectors: Number(w[4]), recalcSector: w[5] === "-" ? undefined : Number(w[5]) };
  }
  return undefined;
}

/** The block device behind an LV's device path (nbdfuse + loop), if there is one. */
function blockDeviceOf(path: string | undefined): { major: number; minor: number; readAheadSectors: number | undefined } | undefined {
  if (!path) return undefined;
  try {
    const st = statSync(realpathSync(path));
    if (!st.isBlockDevice()) return undefined;
    const rdev = st.rdev;
    const major = Math.floor(rdev / 256) & 0xfff;
    const minor = (rdev & 0xff) | ((Math.floor(rdev / 1048576) & 0xfff) << 8);
    let readAheadSectors: number | undefined;
    try {
      readAheadSectors = Number(readFileSync(`/sys/dev/block/${major}:${minor}/queue/read_ahead_kb`, "utf8").trim()) * 2;
    } catch {
      readAheadSectors = undefined;
    }
    return { major, minor, readAheadSectors };
  } catch {
    return undefined;
  }
}

/** The daemon's view when it runs, else everything inactive. Never starts the daemon. */
export async function daemonActivation(paths: Paths): Promise<ActivationState> {
  if (!existsSync(daemonControlSocket(paths))) return NO_ACTIVATION;
  try {
    const { DaemonClient } = await import("../daemon/control-client.js");
    const c = await DaemonClient.tryConnect(paths);
    if (!c) return NO_ACTIVATION;
    try {
      const r = await c.request<{ lvs: ActiveLvStatus[] }>({ op: "status" });
      return activationFromStatus(r.lvs);
    } finally {
      c.close();
    }
  } catch {
    return NO_ACTIVATION;
  }
}
