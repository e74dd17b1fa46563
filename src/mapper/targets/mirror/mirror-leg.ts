import type { BlockDevice } from "../../../blockdev/block-device.js";
import type { LegHealth } from "../../status.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";

/** Why a leg failed, as dm-raid1's error_type bits. */
export type LegErrorKind = "flush" | "write" | "resync" | "read";

/**
 * The policy's acknowledgement of a leg failure. `recorded` resolves when
 * the event handler's promise did; until then writes that skipped this leg
 * are not acknowledged (handle_errors).
 */
export interface FailureAck {
  readonly recorded: Promise<void>;
  settled: "pending" | "ok" | "rejected";
}

export interface MirrorLeg {
  readonly index: number;
  readonly name: string;
  readonly dev: BlockDevice;
  /** Byte offset of the mirror's sector 0 on the leg device. */
  readonly offsetBytes: number;
  readonly offsetSectors: number;
  failed: boolean;
  readonly errors: Set<LegErrorKind>;
  /** Holds no valid data: only ever a resync destination, until fully synced. */
  stale: boolean;
  ack: FailureAck | undefined;
}

/** dm-raid1 device_status_char: the most severe error seen. */
export function legHealth(leg: MirrorLeg): LegHealth {
  if (!leg.failed) return "A";
  if (leg.errors.has("flush")) return "F";
  if (leg.errors.has("write")) return "D";
  if (leg.errors.has("resync")) return "S";
  if (leg.errors.has("read")) return "R";
  return "U";
}

/**
 * The leg's device lends its file extents (BlockDevice.leaseExtents), so
 * the copy threads and the write thread can do its I/O: probed with a
 * lease of its first sector, released at once.
 */
export function legLendsExtents(leg: MirrorLeg, forWrite: boolean): boolean {
  const probe = leg.dev.leaseExtents?.(leg.offsetBytes, SECTOR_BYTES, forWrite);
  probe?.release();
  return probe !== undefined;
}
