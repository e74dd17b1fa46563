import type { BlockDevice, ExtentLease, ReadOptions } from "../blockdev/block-device.js";
import type { MapperEvent } from "./events.js";
import type { TargetStatus } from "./status.js";

/**
 * What the caller (the activation layer) supplies to resolve the device
 * names written in table lines and to receive events. The mapper knows
 * nothing of PVs, VGs or LVs: a name is just a key, e.g. "/dev/loop1" or
 * "vg-lv_mimage_0"; the registry (mapper-registry.ts) resolves names of
 * other mapped devices before asking this env.
 */
export interface TargetEnv {
  /** Resolve a device name; throw (any error) if it does not exist. */
  openDevice(name: string): BlockDevice | Promise<BlockDevice>;
  /**
   * Called once for every successful openDevice() when the target that
   * opened it is destroyed (or its construction fails). Targets never call
   * close() on devices they did not create; the env owns them.
   */
  releaseDevice?(name: string, device: BlockDevice): void | Promise<void>;
  /**
   * Receives target events. The returned promise matters for mirror leg
   * failures under `handle_errors` (see events.ts); otherwise it is awaited
   * by nobody and its rejection is ignored.
   */
  onEvent?(event: MapperEvent): void | Promise<void>;
}

/** Everything a TargetType needs besides its arguments. */
export interface TargetContext {
  readonly env: TargetEnv;
  /** Name of the mapped device the table is loaded into (used in events). */
  readonly deviceName: string;
  /** Where the line starts in the mapped device, sectors. */
  readonly startSector: number;
  readonly lengthSectors: number;
  /**
   * On a reload: the live table's target over the same sectors, still
   * serving while this one is built (a raid1 takes from it which legs are
   * current, so that a leg returning with writes of its own cannot win).
   */
  readonly previous?: Target;
}

/** A device a target uses, for dependency tracking and `lvs -o +devices`. */
export interface DeviceUse {
  readonly name: string;
  readonly offsetSectors: number;
  readonly lengthSectors: number;
  readonly role: "data" | "log";
}

export interface TargetWriteOptions {
  readonly fua: boolean;
  /** A background bulk transfer (BlockDevice ReadOptions.bulk). */
  readonly bulk?: boolean;
}

/**
 * A target's answer to an I/O it gives back to the mapped device instead of
 * finishing it (dm's DM_ENDIO_REQUEUE): the device counts it out of flight
 * and issues it again, whole, to the live table once the device is resumed.
 * Only given while the device is suspending (Target.presuspend), so that an
 * I/O held for something the suspender may be waiting on (a mirror's write
 * held until a leg failure is recorded, which needs the VG lock of the very
 * command that is reloading the mirror) cannot keep the suspend from
 * finishing. Repeating a write of the same bytes is harmless; the client
 * has not been answered yet.
 */
export class RequeueRequest extends Error {
  constructor(device: string) {
    super(`${device}: I/O given back while suspending, to be issued again after resume`);
    this.name = "RequeueRequest";
  }
}

/**
 * A target is "table line in, status line out". Sectors are relative to the
 * target's start; the mapped device has already checked that every request
 * lies inside [0, lengthSectors) and is sector-aligned, so targets trust
 * their inputs (validate once at the edge).
 */
export interface Target {
  readonly type: string;
  readonly lengthSectors: number;
  read(sector: number, into: Uint8Array, opts?: ReadOptions): Promise<void>;
  write(sector: number, data: Uint8Array, opts: TargetWriteOptions): Promise<void>;
  /**
   * Make completed writes durable. `suspending`: the mapped device's own
   * flush before suspend, which no client waits on.
   */
  flush(opts?: { readonly suspending?: boolean }): Promise<void>;
  /**
   * Called when the device starts to suspend, before in-flight I/O drains:
   * I/O the target is holding, and would hold, for something the suspend
   * may be waiting on is answered with RequeueRequest from now until
   * resume().
   */
  presuspend?(): void;
  /** Called while the device is being suspended, after client I/O drained. */
  suspend?(): Promise<void>;
  /** Called when the table goes live, and on every later resume. */
  resume?(): Promise<void>;
  /** Release everything; the target is never used again. */
  destroy(): Promise<void>;
  status(): TargetStatus;
  /** The constructor arguments, as `dmsetup table` prints them. */
  tableArgs(): readonly string[];
  devices(): readonly DeviceUse[];
  /** Like `dmsetup message`: a runtime command; throw TableError if unknown. */
  message?(words: readonly string[]): Promise<string | void>;
  /** BlockDevice.leaseExtents for [sector, sector + lengthSectors) of this target; only targets that pass data through unchanged have it. */
  lease?(sector: number, lengthSectors: number, forWrite: boolean): ExtentLease | undefined;
}

export interface TargetType {
  readonly name: string;
  /** Build a target from a table line; throw TableError on bad arguments. */
  create(args: readonly string[], ctx: TargetContext): Promise<Target>;
}
