import { FormatError } from "../../errors/errors.js";
import { readU32LE, readU64LEBig, writeU32LE, writeU64LE } from "../../base/bytes.js";
import { bitsetBytes } from "./bitset.js";

/**
 * The kernel's persistent dirty-region log (drivers/md/dm-log.c; reference
 * §9). Everything is little-endian and relative to the log device's start:
 *
 *   0    u32  magic 0x4D695272 ("MiRr" as a big-endian word)
 *   4    u32  version, 2 (version 1 is read as 2 on little-endian hosts)
 *   8    u64  nr_regions the bitmap was last written for
 *   16..1023  unused, preserved as found
 *   1024      "clean" bitmap, one bit per region, LE bit order, whole u32 words
 *
 * All I/O is one transfer of roundup(1024 + bitmap bytes, logical block size).
 */
export const MIRROR_MAGIC = 0x4d695272;
export const MIRROR_DISK_VERSION = 2;
/** LOG_OFFSET: the bitmap starts 2 sectors into the log device. */
export const DISK_LOG_BITMAP_OFFSET_BYTES = 1024;
export const DISK_LOG_HEADER_BYTES = 16;
/** nr_regions LVM writes into a fresh log: "keep whatever bits you find". */
export const NR_REGIONS_UNSET = 0xffffffffffffffffn;

export interface DiskLogHeader {
  readonly magic: number;
  readonly version: number;
  /** u64 as bigint: LVM writes all-ones into a fresh log. */
  readonly nrRegions: bigint;
}

export type DiskLogCorruption = "truncated" | "magic" | "version";

export function diskLogBitmapBytes(regionCount: number): number {
  return bitsetBytes(regionCount);
}

/** Size of every log transfer: header + bitmap, rounded up to the logical block size. */
export function diskLogTransferBytes(regionCount: number, logicalBlockBytes = 512): number {
  const raw = DISK_LOG_BITMAP_OFFSET_BYTES + diskLogBitmapBytes(regionCount);
  return Math.ceil(raw / logicalBlockBytes) * logicalBlockBytes;
}

function corrupt(kind: DiskLogCorruption, message: string, device?: string): FormatError {
  return new FormatError(message, { kind, offsetBytes: 0, ...(device === undefined ? {} : { device }) });
}

/**
 * Decode the header and (a view of) the clean bitmap of a log transfer.
 * Throws FormatError with details.kind: "truncated" (buffer shorter than the
 * header + bitmap for `regionCount`), "magic", or "version" (neither 1 nor
 * 2). Version 1 is returned as 2, as the kernel does on little-endian hosts.
 */
export function decodeDiskLog(buf: Uint8Array, regionCount: number, device?: string): { header: DiskLogHeader; cleanBits: Uint8Array } {
  const need = DISK_LOG_BITMAP_OFFSET_BYTES + diskLogBitmapBytes(regionCount);
  if (buf.length < need) throw corrupt("truncated", `Mirror log too short: ${buf.length} bytes, need ${need} for ${regionCount} regions`, device);
  const magic = readU32LE(buf, 0);
  if (magic !== MIRROR_MAGIC)
    throw corrupt("magic", `Mirror log has bad magic 0x${magic.toString(16).padStart(8, "0")} (expected 0x4d695272)`, device);
  let version = readU32LE(buf, 4);
  if (version === 1) version = MIRROR_DISK_VERSION;
  if (version !== MIRROR_DISK_VERSION) throw corrupt("version", `Mirror log has incompatible version ${version}`, device);
  const nrRegions = readU64LEBig(buf, 8);
  return {
    header: { magic, version, nrRegions },
    cleanBits: buf.subarray(DISK_LOG_BITMAP_OFFSET_BYTES, need),
  };
}

/** Write header fields into a transfer buffer in place (bytes 16..1023 untouched). */
export function writeDiskLogHeader(buf: Uint8Array, header: DiskLogHeader): void {
  writeU32LE(buf, 0, header.magic);
  writeU32LE(buf, 4, header.version);
  writeU64LE(buf, 8, header.nrRegions);
}

/** A complete transfer buffer: header, zeroed gap, clean bitmap, zero padding. */
export function encodeDiskLog(header: DiskLogHeader, cleanBits: Uint8Array, regionCount: number, logicalBlockBytes = 512): Uint8Array {
  const buf = new Uint8Array(diskLogTransferBytes(regionCount, logicalBlockBytes));
  writeDiskLogHeader(buf, header);
  buf.set(cleanBits.subarray(0, diskLogBitmapBytes(regionCount)), DISK_LOG_BITMAP_OFFSET_BYTES);
  return buf;
}
