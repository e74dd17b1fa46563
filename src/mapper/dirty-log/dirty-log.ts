import type { LogHealth } from "../status.js";
import type { DeviceUse } from "../target.js";

/**
 * How the log was loaded (the optional `sync`/`nosync` table argument):
 * "default" trusts the log; "sync" forces a full resync; "nosync" declares
 * every region in sync.
 */
export type SyncMode = "default" | "sync" | "nosync";

/**
 * The mirror's dirty-region log, as dm's dirty_log_type. Two bitmaps:
 *
 *   clean   - persistent in the disk log. 1 = no write in flight and the
 *             legs are identical on stable storage; 0 = may differ.
 *   in-sync - memory only. 1 = every live leg holds the same data; 0 = the
 *             region must be copied from the source leg before other legs
 *             can serve it.
 *
 * Invariant kept by the mirror: !inSync(r) implies !clean(r), so a crash
 * while a region is out of sync leaves it dirty on disk and it is recopied.
 * "core" keeps both in memory; "disk" is core plus persistence of `clean`;
 * "bitmap" (raid1) persists !clean as md's write-intent bitmap in the rmetas.
 */
export interface DirtyLog {
  readonly type: "core" | "disk" | "bitmap";
  readonly regionSectors: number;
  readonly regionCount: number;
  readonly syncMode: SyncMode;
  /** Whether clean bits survive a restart (disk log that has not failed). */
  readonly persistent: boolean;
  readonly health: LogHealth;
  /** Regions in sync now. */
  readonly syncCount: number;
  /** Load state on first activation (disk: read, reconcile, write back). Never throws. */
  resume(): Promise<void>;
  isClean(region: number): boolean;
  isInSync(region: number): boolean;
  /** Clear the clean bit; durable only after flush() (see isMarkDurable). */
  markDirty(region: number): void;
  /** True when the latest markDirty of this region is on stable storage (always, for core). */
  isMarkDurable(region: number): boolean;
  /** Set the clean bit. Caller guarantees the legs are identical and flushed. */
  markClean(region: number): void;
  setInSync(region: number, inSync: boolean): void;
  /** First out-of-sync region at or after `fromRegion`. */
  nextToResync(fromRegion: number): number | undefined;
  /** Every region out of sync and dirty (a stale leg joined): flush() to persist. */
  markAllOutOfSync(): void;
  /** Write changed state, coalescing concurrent callers into one log write. */
  flush(): Promise<void>;
  /** `core 1 <region>` / `disk 2 <dev> <region>` (+ sync/nosync). */
  tableArgs(): string[];
  devices(): readonly DeviceUse[];
  readonly deviceName: string | undefined;
}
