/**
 * Structured target status, and the one formatter that prints it the way
 * `dmsetup status` does (STATUSTYPE_INFO of each kernel target), with device
 * names where the kernel prints major:minor.
 */

import type { ScrubReport } from "./targets/raid1/raid1-scrub.js";

/** Per-leg health characters of dm-raid1 (`device_status_char`). */
export type LegHealth =
  | "A" // alive, no failures
  | "F" // flush failure
  | "D" // dead: a write failure left it out of sync
  | "S" // sync (resync) failure
  | "R" // read failure, data unaffected
  | "U"; // failed for an unclassified reason

/** Disk log health (dm-log `disk_status`): alive, dead (I/O error), flush failed. */
export type LogHealth = "A" | "D" | "F";

export interface LinearStatus {
  readonly type: "linear" | "zero" | "error";
}

export interface StripedStatus {
  readonly type: "striped";
  readonly stripes: ReadonlyArray<{ readonly device: string; readonly health: "A" | "D" }>;
}

export interface MirrorStatus {
  readonly type: "mirror";
  readonly legs: ReadonlyArray<{ readonly device: string; readonly health: LegHealth; readonly stale: boolean }>;
  readonly insyncRegions: number;
  readonly totalRegions: number;
  readonly regionSectors: number;
  readonly log:
    | { readonly type: "core" }
    | { readonly type: "disk"; readonly device: string; readonly health: LogHealth };
  /** Leg that out-of-sync regions are read from and copied from. */
  readonly sourceLeg: number;
  /** Leg serving reads of in-sync regions. */
  readonly primaryLeg: number | undefined;
  readonly handleErrors: boolean;
  readonly resync: {
    readonly running: boolean;
    /** 0 = unthrottled. */
    readonly rateBytesPerSec: number;
    readonly copiedBytes: number;
    readonly copiedRegions: number;
  };
  /** Out-of-sync regions that cannot be served: their source leg failed. */
  readonly lostRegions: number;
}

/** dm-raid per-device health (__raid_dev_status): alive in sync, alive not in sync, dead, absent. */
export type RaidDeviceHealth = "A" | "a" | "D" | "-";

/** md's sync_action as dm-raid reports it (only the ones raid1 reaches here). */
export type RaidSyncAction = "idle" | "resync" | "recover" | "check" | "repair" | "frozen";

/** The `raid` target (dm-raid), raid1 only so far. */
export interface RaidStatus {
  readonly type: "raid";
  readonly raidType: "raid1";
  readonly devices: ReadonlyArray<{
    readonly meta: string | undefined;
    readonly data: string | undefined;
    readonly health: RaidDeviceHealth;
    /** Recovered from the bitmap's dirty regions only (a returning leg), or in full. */
    readonly recovery: "none" | "dirty" | "full";
  }>;
  /** Sectors in sync, and of the array (dm-raid's sync ratio; lvm2 calls them insync/total regions). */
  readonly syncedSectors: number;
  readonly totalSectors: number;
  readonly syncAction: RaidSyncAction;
  /** dm-raid's mismatch_cnt: md's count in sectors, reported only when the last scrub was a check. */
  readonly mismatchCount: number;
  /** The scrub running, else the last one since load (ulvm: counts and places; not in the status line). */
  readonly scrub?: ScrubReport;
  readonly dataOffsetSectors: number;
  readonly insyncRegions: number;
  readonly totalRegions: number;
  readonly regionSectors: number;
  /** The set's md event counter (decimal; a u64). */
  readonly eventCount: string;
  readonly resync: { readonly running: boolean; readonly rateBytesPerSec: number; readonly copiedBytes: number; readonly copiedRegions: number };
}

/** For targets defined outside this folder: their own INFO text. */
export interface OtherStatus {
  readonly type: "other";
  readonly targetType: string;
  readonly info: string;
}

export type TargetStatus = LinearStatus | StripedStatus | MirrorStatus | RaidStatus | OtherStatus;

/** The INFO part of a `dmsetup status` line for one target. */
export function formatStatusInfo(s: TargetStatus): string {
  switch (s.type) {
    case "linear":
    case "zero":
    case "error":
      return "";
    case "striped":
      return `${s.stripes.length} ${s.stripes.map((x) => x.device).join(" ")} 1 ${s.stripes.map((x) => x.health).join("")}`;
    case "mirror": {
      const legs = `${s.legs.length} ${s.legs.map((l) => l.device).join(" ")}`;
      const health = s.legs.map((l) => l.health).join("");
      const log = s.log.type === "core" ? "1 core" : `3 disk ${s.log.device} ${s.log.health}`;
      return `${legs} ${s.insyncRegions}/${s.totalRegions} 1 ${health} ${log}`;
    }
    case "raid":
      // dm-raid raid_status STATUSTYPE_INFO: type, #devs, health, sync ratio
      // in sectors, sync action, mismatch count, data offset, journal char
      // (`-`: no journal device).
      return `${s.raidType} ${s.devices.length} ${s.devices.map((d) => d.health).join("")} ${s.syncedSectors}/${s.totalSectors} ${s.syncAction} ${s.mismatchCount} ${s.dataOffsetSectors} -`;
    case "other":
      return s.info;
  }
}
