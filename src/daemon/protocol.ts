/**
 * The daemon's control protocol: one JSON object per line over the unix
 * socket $ULVM_RUN_DIR/ulvmd.sock (mode 0600). Every request has an `id`
 * echoed in its reply. The CLI changes metadata, then asks the daemon to
 * (re)load what changed; the daemon always re-reads the committed metadata
 * from the PVs itself, so disk stays the single source of truth.
 */
export type ActivationMode = "complete" | "degraded" | "partial";

export type ControlRequest =
  | { id: number; op: "ping" }
  | { id: number; op: "activate"; vg: string; lv: string; mode?: ActivationMode; devices?: string[] }
  | { id: number; op: "deactivate"; vg: string; lv: string; devices?: string[] }
  | { id: number; op: "reload"; vg: string; devices?: string[]; renamedVgFrom?: string }
  | { id: number; op: "status" }
  | { id: number; op: "reset-mirror-log"; vg: string; lv: string }
  | { id: number; op: "wait-sync"; vg: string; lv: string; afterEvent?: number }
  /** `dmsetup message <lv> 0 <message>` to the LV's own target (raid1: check, repair, idle, frozen). */
  | { id: number; op: "message"; vg: string; lv: string; message: string }
  | { id: number; op: "shutdown" }
  /** A command rewrote a metadata copy (the daemon records the event). */
  | { id: number; op: "metadata-repaired"; vg: string; pv: string; what: string };

export interface MappedDeviceStatus {
  name: string;
  lvName: string;
  state: string;
  sizeSectors: number;
  openCount: number;
  table: string;
  status: string;
  /** Mirror sync progress, when the device is a mirror. */
  sync?: { insyncRegions: number; totalRegions: number; legHealth: string[]; logHealth?: string; copiedRegions?: number };
  /** dm-raid's status, when the device is a raid1: health chars per slot, sync ratio in sectors, sync action, mismatches. */
  raid?: { health: string; syncedSectors: number; totalSectors: number; syncAction: string; mismatchCount: number; scrub?: ScrubSummary };
}

/** The running or last raid1 check/repair (ulvm; dm-raid reports only the count). Sectors are the LV's. */
export interface ScrubSummary {
  action: "check" | "repair";
  running: boolean;
  aborted: boolean;
  mismatchSectors: number;
  rewrittenSectors: number;
  /** Runs of differing 64 KiB units: legs that differ from `source` (the first leg read), readError when their read failed. */
  places: Array<{ sector: number; sectors: number; legs: number[]; source: number; readError: boolean }>;
  placesOmitted: number;
}

export interface ActiveLvStatus {
  vg: string;
  lv: string;
  lvId: string;
  exportName: string;
  devicePath: string | undefined;
  /** NBD clients plus a mounted/held device path. */
  openCount: number;
  suspended: boolean;
  devices: MappedDeviceStatus[];
}

export type ControlReply =
  | { id: number; ok: true; [key: string]: unknown }
  | { id: number; ok: false; error: { code: string; message: string; exitCode: number } };
