import { FormatError } from "../../errors/errors.js";
import { isAllZero, readU32LE, readU64LEBig, writeU32LE, writeU64LE } from "../../base/bytes.js";

/**
 * dm-raid's superblock, at byte 0 of every `_rmeta_N` sub-LV
 * (drivers/md/dm-raid.c `struct dm_raid_superblock`, reference §2).
 * Packed, little-endian, 148 bytes; written as one logical block with the
 * rest of the block zeroed (`super_sync`).
 *
 *   0 magic "DmRd"       4 compat_features     8 num_devices     12 array_position
 *  16 events            24 failed_devices     32 disk_recovery_offset
 *  40 array_resync_offset                     48 level  52 layout  56 stripe_sectors
 *  60 flags             64 reshape_position   72 new_level  76 new_layout
 *  80 new_stripe_sectors 84 delta_disks       88 array_sectors  96 data_offset
 * 104 new_data_offset  112 sectors           120 extended_failed_devices[3]
 * 144 incompat_features 148 end
 */
export const DM_RAID_MAGIC = 0x64526d44;
export const DM_RAID_SUPERBLOCK_BYTES = 148;
/** compat_features bit: the v1.9.0 fields (extended failed devices, reshape) are present. */
export const FEATURE_FLAG_SUPPORTS_V190 = 0x1;
/** md's MaxSector: "no offset", i.e. fully in sync / no reshape in progress. */
export const MAX_SECTOR = 0xffff_ffff_ffff_ffffn;
/** The kernel's limit on raid devices in one set (MAX_RAID_DEVICES). */
export const MAX_RAID_DEVICES = 253;
/** failed_devices + extended_failed_devices[3]: 4 u64 words, positions 0..255. */
export const FAILED_DEVICES_BITS = 256;

/** sb->flags */
export const SB_FLAG_RESHAPE_ACTIVE = 0x1;
export const SB_FLAG_RESHAPE_BACKWARDS = 0x2;

export interface DmRaidSuperblock {
  readonly compatFeatures: number;
  readonly numDevices: number;
  /** This leg's role in the set. */
  readonly arrayPosition: number;
  /** md's event counter; the highest one among the legs is authoritative. */
  readonly eventCount: bigint;
  /** Bit i = position i failed; 256 bits (failed_devices and the 3 extended words). */
  readonly failedDevices: bigint;
  /** This leg's recovery progress; MAX_SECTOR = in sync. */
  readonly diskRecoveryOffsetSectors: bigint;
  /** mddev->recovery_cp; MAX_SECTOR = initial sync done. */
  readonly arrayResyncOffsetSectors: bigint;
  readonly level: number;
  readonly layout: number;
  readonly stripeSectors: number;
  readonly flags: number;
  readonly reshapePositionSectors: bigint;
  readonly newLevel: number;
  readonly newLayout: number;
  readonly newStripeSectors: number;
  /** Signed (s32) on disk. */
  readonly deltaDisks: number;
  readonly arraySectors: bigint;
  readonly dataOffsetSectors: bigint;
  readonly newDataOffsetSectors: bigint;
  /** Used size of this leg's data image (rdev->sectors). */
  readonly sectors: bigint;
  readonly incompatFeatures: number;
}

export type DmRaidCorruption =
  | "truncated"
  | "magic"
  | "compat-features"
  | "incompat-features"
  | "num-devices"
  | "array-position";

/** What decodeDmRaidSuperblock found: a superblock, or the all-zero area lvm2 leaves at create. */
export type DecodedDmRaidSuperblock = { readonly kind: "fresh" } | { readonly kind: "superblock"; readonly superblock: DmRaidSuperblock };

function corrupt(kind: DmRaidCorruption, message: string, offsetBytes: number, device?: string): FormatError {
  return new FormatError(message, { kind, offsetBytes, ...(device === undefined ? {} : { device }) });
}

const U64_MASK = 0xffff_ffff_ffff_ffffn;

/** Position i's bit in failedDevices. */
export function isPositionFailed(failedDevices: bigint, position: number): boolean {
  return ((failedDevices >> BigInt(position)) & 1n) === 1n;
}

export function withPositionFailed(failedDevices: bigint, position: number, failed: boolean): bigint {
  const bit = 1n << BigInt(position);
  return failed ? failedDevices | bit : failedDevices & ~bit;
}

/**
 * The block written to byte 0 of an rmeta: the struct, then zeroes up to
 * `blockBytes` (the rmeta's logical block size; the kernel needs 148..4096).
 */
export function encodeDmRaidSuperblock(sb: DmRaidSuperblock, blockBytes = 512): Uint8Array {
  if (blockBytes < DM_RAID_SUPERBLOCK_BYTES || blockBytes > 4096) throw new RangeError(`dm-raid superblock block size ${blockBytes} out of range`);
  if (sb.failedDevices < 0n || sb.failedDevices >> BigInt(FAILED_DEVICES_BITS) !== 0n) throw new RangeError("failedDevices has bits past position 255");
  const b = new Uint8Array(blockBytes);
  writeU32LE(b, 0, DM_RAID_MAGIC);
  writeU32LE(b, 4, sb.compatFeatures);
  writeU32LE(b, 8, sb.numDevices);
  writeU32LE(b, 12, sb.arrayPosition);
  writeU64LE(b, 16, sb.eventCount);
  writeU64LE(b, 24, sb.failedDevices & U64_MASK);
  writeU64LE(b, 32, sb.diskRecoveryOffsetSectors);
  writeU64LE(b, 40, sb.arrayResyncOffsetSectors);
  writeU32LE(b, 48, sb.level);
  writeU32LE(b, 52, sb.layout);
  writeU32LE(b, 56, sb.stripeSectors);
  writeU32LE(b, 60, sb.flags);
  writeU64LE(b, 64, sb.reshapePositionSectors);
  writeU32LE(b, 72, sb.newLevel);
  writeU32LE(b, 76, sb.newLayout);
  writeU32LE(b, 80, sb.newStripeSectors);
  writeU32LE(b, 84, sb.deltaDisks);
  writeU64LE(b, 88, sb.arraySectors);
  writeU64LE(b, 96, sb.dataOffsetSectors);
  writeU64LE(b, 104, sb.newDataOffsetSectors);
  writeU64LE(b, 112, sb.sectors);
  for (let w = 1; w < 4; w++) writeU64LE(b, 120 + (w - 1) * 8, (sb.failedDevices >> BigInt(64 * w)) & U64_MASK);
  writeU32LE(b, 144, sb.incompatFeatures);
  return b;
}

/**
 * Decode the start of an rmeta (at least 148 bytes; pass the first 4 KiB to
 * recognise a fresh area). No magic and all zero = "fresh": lvm2 zeroes the
 * first 4 KiB of every new rmeta and the kernel then creates the superblock.
 *
 * The kernel takes *any* block without the magic as new (`super_load`); we
 * refuse one with other content (FormatError kind "magic"), as a wrong
 * device or overwritten rmeta must not silently become a full resync target.
 * Other kinds: "truncated", "compat-features" (bits other than V190, as
 * `super_init_validation`), "incompat-features" (any), "num-devices" (0 or
 * > 253), "array-position" (>= num_devices).
 */
export function decodeDmRaidSuperblock(bytes: Uint8Array, device?: string): DecodedDmRaidSuperblock {
  if (bytes.length < DM_RAID_SUPERBLOCK_BYTES)
    throw corrupt("truncated", `dm-raid superblock too short: ${bytes.length} bytes, need ${DM_RAID_SUPERBLOCK_BYTES}`, 0, device);
  const magic = readU32LE(bytes, 0);
  if (magic !== DM_RAID_MAGIC) {
    if (isAllZero(bytes)) return { kind: "fresh" };
    throw corrupt("magic", `dm-raid superblock has bad magic 0x${magic.toString(16).padStart(8, "0")} (expected 0x64526d44 "DmRd")`, 0, device);
  }
  const compatFeatures = readU32LE(bytes, 4);
  if ((compatFeatures & ~FEATURE_FLAG_SUPPORTS_V190) !== 0)
    throw corrupt("compat-features", `Unknown flag(s) in compatible feature flags: 0x${compatFeatures.toString(16)}`, 4, device);
  const incompatFeatures = readU32LE(bytes, 144);
  if (incompatFeatures !== 0) throw corrupt("incompat-features", "No incompatible feature flags supported yet", 144, device);
  const numDevices = readU32LE(bytes, 8);
  if (numDevices === 0 || numDevices > MAX_RAID_DEVICES)
    throw corrupt("num-devices", `dm-raid superblock has invalid num_devices ${numDevices} (1..${MAX_RAID_DEVICES})`, 8, device);
  const arrayPosition = readU32LE(bytes, 12);
  if (arrayPosition >= numDevices)
    throw corrupt("array-position", `dm-raid superblock has array_position ${arrayPosition} not below num_devices ${numDevices}`, 12, device);
  let failedDevices = readU64LEBig(bytes, 24);
  // The extended words only exist when the V190 flag says so (super_load).
  if ((compatFeatures & FEATURE_FLAG_SUPPORTS_V190) !== 0)
    for (let w = 1; w < 4; w++) failedDevices |= readU64LEBig(bytes, 120 + (w - 1) * 8) << BigInt(64 * w);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    kind: "superblock",
    superblock: {
      compatFeatures,
      numDevices,
      arrayPosition,
      eventCount: readU64LEBig(bytes, 16),
      failedDevices,
      diskRecoveryOffsetSectors: readU64LEBig(bytes, 32),
      arrayResyncOffsetSectors: readU64LEBig(bytes, 40),
      level: readU32LE(bytes, 48),
      layout: readU32LE(bytes, 52),
      stripeSectors: readU32LE(bytes, 56),
      flags: readU32LE(bytes, 60),
      reshapePositionSectors: readU64LEBig(bytes, 64),
      newLevel: readU32LE(bytes, 72),
      newLayout: readU32LE(bytes, 76),
      newStripeSectors: readU32LE(bytes, 80),
      deltaDisks: v.getInt32(84, true),
      arraySectors: readU64LEBig(bytes, 88),
      dataOffsetSectors: readU64LEBig(bytes, 96),
      newDataOffsetSectors: readU64LEBig(bytes, 104),
      sectors: readU64LEBig(bytes, 112),
      incompatFeatures,
    },
  };
}

export interface NewRaid1Options {
  readonly numDevices: number;
  readonly arrayPosition: number;
  /** Size of the raid1 LV (= each data image's used size). */
  readonly arraySectors: bigint;
  /** rdev->sectors; defaults to arraySectors (raid1 legs hold the whole array). */
  readonly sectors?: bigint;
  readonly eventCount?: bigint;
  /** `nosync` table argument: the set starts in sync (array_resync_offset = MaxSector). */
  readonly nosync?: boolean;
}

/**
 * What the kernel writes for a brand new raid1 set (super_sync after
 * "Superblocks created for new raid set"): V190 flag, level 1, layout 0,
 * no reshape, every leg in sync, and array_resync_offset 0 (recovery_cp = 0:
 * full resync) unless `nosync`.
 */
export function newRaid1Superblock(o: NewRaid1Options): DmRaidSuperblock {
  return {
    compatFeatures: FEATURE_FLAG_SUPPORTS_V190,
    numDevices: o.numDevices,
    arrayPosition: o.arrayPosition,
    eventCount: o.eventCount ?? 0n,
    failedDevices: 0n,
    diskRecoveryOffsetSectors: MAX_SECTOR,
    arrayResyncOffsetSectors: o.nosync ? MAX_SECTOR : 0n,
    level: 1,
    layout: 0,
    stripeSectors: 0,
    flags: 0,
    reshapePositionSectors: MAX_SECTOR,
    newLevel: 1,
    newLayout: 0,
    newStripeSectors: 0,
    deltaDisks: 0,
    arraySectors: o.arraySectors,
    dataOffsetSectors: 0n,
    newDataOffsetSectors: 0n,
    sectors: o.sectors ?? o.arraySectors,
    incompatFeatures: 0,
  };
}
