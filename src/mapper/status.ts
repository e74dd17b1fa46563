/**
 * Structured target status, and the one formatter that prints it the way
 * `dmsetup status` does (STATUSTYPE_INFO of each kernel target), with device
 * names where the kernel prints major:minor.
 */

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

/** For targets defined outside this folder: their own INFO text. */
export interface OtherStatus {
  readonly type: "other";
  readonly targetType: string;
  readonly info: string;
}

export type TargetStatus = LinearStatus | StripedStatus | MirrorStatus | OtherStatus;

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
    case "other":
      return s.info;
  }
}
