import type { BlockDevice } from "../../blockdev/block-device.js";
import { FormatError, IoError } from "../../errors/errors.js";
import { decodeDmRaidSuperblock, encodeDmRaidSuperblock, withPositionFailed, type DmRaidSuperblock } from "./dm-raid-superblock.js";
import { BITMAP_SUPERBLOCK_BYTES, RMETA_BITMAP_OFFSET_BYTES, decodeMdBitmapSuperblock, type MdBitmapSuperblock } from "./md-bitmap-format.js";

/** One leg's `_rmeta_N` as the raid1 target opened it. */
export interface Rmeta {
  readonly name: string;
  readonly dev: BlockDevice;
}

/** What one rmeta held when the set was loaded. */
export type RmetaLoad =
  /** No device in this slot (`- -` in the table). */
  | { readonly kind: "absent" }
  | { readonly kind: "unreadable"; readonly errno: string }
  /** First 4 KiB all zero: a new leg (lvm2 zeroed it). */
  | { readonly kind: "fresh" }
  | { readonly kind: "invalid"; readonly reason: string; readonly corruption: string }
  | {
      readonly kind: "valid";
      readonly superblock: DmRaidSuperblock;
      /** undefined when the bitmap superblock is unusable (see bitmapProblem). */
      readonly bitmap: MdBitmapSuperblock | undefined;
      readonly bitmapProblem?: string;
    };

const SB_AREA_BYTES = 4096;

/** Read and classify one rmeta. Never throws for I/O or format problems. */
export async function loadRmeta(rmeta: Rmeta | undefined): Promise<RmetaLoad> {
  if (rmeta === undefined) return { kind: "absent" };
  const head = new Uint8Array(SB_AREA_BYTES + BITMAP_SUPERBLOCK_BYTES);
  try {
    if (rmeta.dev.sizeBytes < head.length) return { kind: "invalid", reason: `${rmeta.name}: rmeta of ${rmeta.dev.sizeBytes} bytes is too small`, corruption: "truncated" };
    await rmeta.dev.read(0, head);
  } catch (e) {
    if (!(e instanceof IoError)) throw e;
    return { kind: "unreadable", errno: e.errno };
  }
  let superblock: DmRaidSuperblock;
  try {
    const d = decodeDmRaidSuperblock(head.subarray(0, SB_AREA_BYTES), rmeta.name);
    if (d.kind === "fresh") return { kind: "fresh" };
    superblock = d.superblock;
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    return { kind: "invalid", reason: e.message, corruption: String(e.details["kind"]) };
  }
  try {
    const bitmap = decodeMdBitmapSuperblock(head.subarray(SB_AREA_BYTES), { areaBytes: rmeta.dev.sizeBytes - RMETA_BITMAP_OFFSET_BYTES, device: rmeta.name });
    return { kind: "valid", superblock, bitmap };
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    return { kind: "valid", superblock, bitmap: undefined, bitmapProblem: e.message };
  }
}

/**
 * The freshest leg, as dm-raid's analyse_superblocks picks it: the valid
 * superblock with the highest events (ties: the lowest slot). Its
 * num_devices, sizes, array_resync_offset and failed_devices are the set's.
 */
export function freshestRmeta(loads: readonly RmetaLoad[]): number | undefined {
  let best: number | undefined;
  let bestEvents = -1n;
  loads.forEach((l, i) => {
    if (l.kind === "valid" && l.superblock.eventCount > bestEvents) {
      best = i;
      bestEvents = l.superblock.eventCount;
    }
  });
  return best;
}

/** Write `data` durably: FUA where the device has it, else write + flush. */
export async function writeDurably(dev: BlockDevice, offsetBytes: number, data: Uint8Array): Promise<void> {
  if (dev.caps.fua) {
    await dev.write(offsetBytes, data, { fua: true });
  } else {
    await dev.write(offsetBytes, data);
    await dev.flush();
  }
}

export interface WriteSuperblocksOptions {
  /** Each slot's disk_recovery_offset; a slot left out keeps the template's. */
  readonly diskRecoveryOffsetsSectors?: readonly (bigint | undefined)[];
  /** The rmetas' logical block size (the kernel writes one block). */
  readonly blockBytes?: number;
}

export interface WriteSuperblocksResult {
  /** The events every superblock now carries: template.eventCount + 1. */
  readonly eventCount: bigint;
  readonly failedDevices: bigint;
  /** Per slot: undefined = written (or absent), else the write's error. */
  readonly errors: readonly (IoError | undefined)[];
}

/**
 * Write the set's dm-raid superblocks, as md_update_sb + super_sync do:
 * events raised by one, the template's array-wide fields and failed_devices
 * kept, plus the failed bit of every absent slot (super_sync marks a
 * missing device failed). Slot i gets array_position i. Each write is
 * durable before this resolves. A write error is returned for its slot,
 * not thrown: the caller (mechanism reports, policy decides) marks that leg
 * failed and may call again with the bit set.
 */
export async function writeDmRaidSuperblocks(
  rmetas: readonly (Rmeta | undefined)[],
  template: DmRaidSuperblock,
  opts: WriteSuperblocksOptions = {},
): Promise<WriteSuperblocksResult> {
  const eventCount = template.eventCount + 1n;
  let failedDevices = template.failedDevices;
  rmetas.forEach((r, i) => {
    if (r === undefined) failedDevices = withPositionFailed(failedDevices, i, true);
  });
  const errors = await Promise.all(
    rmetas.map(async (r, i) => {
      if (r === undefined) return undefined;
      const sb: DmRaidSuperblock = {
        ...template,
        numDevices: rmetas.length,
        arrayPosition: i,
        eventCount,
        failedDevices,
        diskRecoveryOffsetSectors: opts.diskRecoveryOffsetsSectors?.[i] ?? template.diskRecoveryOffsetSectors,
      };
      try {
        await writeDurably(r.dev, 0, encodeDmRaidSuperblock(sb, opts.blockBytes ?? 512));
        return undefined;
      } catch (e) {
        if (!(e instanceof IoError)) throw e;
        return e;
      }
    }),
  );
  return { eventCount, failedDevices, errors };
}
