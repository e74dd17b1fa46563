import { FormatError } from "../../errors/errors.js";
import { readU32LE, readU64LEBig, writeU32LE, writeU64LE } from "../../base/bytes.js";

/**
 * MD's write-intent bitmap as dm-raid keeps it in each rmeta (reference §3;
 * drivers/md/md-bitmap.h `bitmap_super_t`, md-bitmap.c). dm-raid puts the
 * bitmap "file" 8 sectors into the rmeta, so:
 *
 *   rmeta byte 4096          bitmap superblock (256 bytes, little-endian)
 *   rmeta byte 4352 + k/8    bit (k & 7) = chunk (region) k; 1 = dirty
 *
 * The file is handled in 4 KiB pages at rmeta byte 4096 + p * 4096; page 0
 * holds the superblock and the first 30720 bits. Superblock layout:
 *
 *   0 magic "bitm"  4 version  8 uuid[16]  24 events  32 events_cleared
 *  40 sync_size (sectors)  48 state  52 chunksize (bytes)  56 daemon_sleep (s)
 *  60 write_behind  64 sectors_reserved  68 nodes  72 cluster_name[64]  136 pad
 */
export const BITMAP_MAGIC = 0x6d746962;
/** BITMAP_MAJOR_HI: little-endian bit order, what the kernel writes. */
export const BITMAP_MAJOR_HI = 4;
export const BITMAP_MAJOR_LO = 3;
/** BITMAP_MAJOR_CLUSTERED */
export const BITMAP_MAJOR_CLUSTERED = 5;
export const BITMAP_SUPERBLOCK_BYTES = 256;
/** dm-raid's bitmap_info.offset: 8 sectors from the rmeta start. */
export const RMETA_BITMAP_OFFSET_BYTES = 4096;
export const BITMAP_PAGE_BYTES = 4096;
/** The kernel's and lvm2's limit on regions (chunks). */
export const MAX_BITMAP_CHUNKS = 1 << 21;
export const MAX_WRITE_BEHIND = 16383;
/** state bits */
export const BITMAP_STALE = 0x2;
export const BITMAP_WRITE_ERROR = 0x4;
export const BITMAP_HOSTENDIAN = 0x8000;
/** md's default daemon_sleep (seconds); lvm2 never passes one. */
export const DEFAULT_DAEMON_SLEEP_SECONDS = 5;

export interface MdBitmapSuperblock {
  readonly version: number;
  /** 16 bytes; dm-raid never sets an array uuid, so zero. */
  readonly uuid: Uint8Array;
  readonly eventCount: bigint;
  readonly eventsClearedCount: bigint;
  /** Sectors the bitmap covers (resync_max_sectors = data image size for raid1). */
  readonly syncSectors: bigint;
  readonly state: number;
  /** Region size in bytes. */
  readonly chunkBytes: number;
  readonly daemonSleepSeconds: number;
  readonly writeBehind: number;
  readonly sectorsReserved: number;
  readonly nodes: number;
  /** 64 bytes, zero for dm-raid. */
  readonly clusterName: Uint8Array;
}

export type MdBitmapCorruption =
  | "truncated"
  | "magic"
  | "version"
  | "chunksize"
  | "daemon-sleep"
  | "write-behind"
  | "chunk-count"
  | "area";

function corrupt(kind: MdBitmapCorruption, message: string, offsetBytes: number, device?: string): FormatError {
  return new FormatError(message, { kind, offsetBytes: RMETA_BITMAP_OFFSET_BYTES + offsetBytes, ...(device === undefined ? {} : { device }) });
}

/** Chunks (regions) the bitmap covers: ceil(sync_size / chunk sectors). */
export function bitmapChunkCount(syncSectors: bigint, chunkBytes: number): number {
  const chunkSectors = BigInt(chunkBytes / 512);
  const n = (syncSectors + chunkSectors - 1n) / chunkSectors;
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** Bytes of the bitmap file: superblock + one bit per chunk. */
export function bitmapFileBytes(chunkCount: number): number {
  return BITMAP_SUPERBLOCK_BYTES + Math.ceil(chunkCount / 8);
}

export function bitmapPageCount(chunkCount: number): number {
  return Math.ceil(bitmapFileBytes(chunkCount) / BITMAP_PAGE_BYTES);
}

/**
 * Bytes written for page p: whole pages, except the last, which the kernel
 * trims to the file's end rounded up to the logical block (write_sb_page),
 * so that it stays inside an rmeta lvm2 sized as 2 * 4096 + ceil(regions/8).
 */
export function bitmapPageWriteBytes(chunkCount: number, page: number, logicalBlockBytes = 512): number {
  const pages = bitmapPageCount(chunkCount);
  if (page < pages - 1) return BITMAP_PAGE_BYTES;
  const tail = bitmapFileBytes(chunkCount) - (pages - 1) * BITMAP_PAGE_BYTES;
  return Math.min(BITMAP_PAGE_BYTES, Math.ceil(tail / logicalBlockBytes) * logicalBlockBytes);
}

/** Rmeta bytes the bitmap needs, from 0: dm-raid sb area + bitmap file. */
export function rmetaBytesNeeded(chunkCount: number, logicalBlockBytes = 512): number {
  const pages = bitmapPageCount(chunkCount);
  return RMETA_BITMAP_OFFSET_BYTES + (pages - 1) * BITMAP_PAGE_BYTES + bitmapPageWriteBytes(chunkCount, pages - 1, logicalBlockBytes);
}

/** File byte holding chunk k's bit (add RMETA_BITMAP_OFFSET_BYTES for the rmeta offset). */
export function bitmapChunkByte(chunk: number): number {
  return BITMAP_SUPERBLOCK_BYTES + (chunk >>> 3);
}

export function encodeMdBitmapSuperblock(sb: MdBitmapSuperblock): Uint8Array {
  const b = new Uint8Array(BITMAP_SUPERBLOCK_BYTES);
  writeMdBitmapSuperblock(b, sb);
  return b;
}

/** Write the 256-byte superblock at the start of `into` (page 0 of the file). */
export function writeMdBitmapSuperblock(into: Uint8Array, sb: MdBitmapSuperblock): void {
  if (sb.uuid.length !== 16 || sb.clusterName.length !== 64) throw new RangeError("bitmap uuid must be 16 bytes and cluster name 64");
  into.fill(0, 0, BITMAP_SUPERBLOCK_BYTES);
  writeU32LE(into, 0, BITMAP_MAGIC);
  writeU32LE(into, 4, sb.version);
  into.set(sb.uuid, 8);
  writeU64LE(into, 24, sb.eventCount);
  writeU64LE(into, 32, sb.eventsClearedCount);
  writeU64LE(into, 40, sb.syncSectors);
  writeU32LE(into, 48, sb.state);
  writeU32LE(into, 52, sb.chunkBytes);
  writeU32LE(into, 56, sb.daemonSleepSeconds);
  writeU32LE(into, 60, sb.writeBehind);
  writeU32LE(into, 64, sb.sectorsReserved);
  writeU32LE(into, 68, sb.nodes);
  into.set(sb.clusterName, 72);
}

export interface DecodeBitmapOptions {
  /** Bytes available for the bitmap file (rmeta size - 4096); checks that every bit fits. */
  readonly areaBytes?: number;
  readonly device?: string;
}

/**
 * Decode and validate as md_bitmap_read_sb does: magic, version 3..5,
 * chunksize a power of two >= 512, daemon_sleep >= 1, write_behind <=
 * 16383; plus the bounds the kernel gets from dm-raid/lvm2: at most 2^21
 * chunks, and (with `areaBytes`) all bits inside the rmeta. Throws
 * FormatError with details.kind one of MdBitmapCorruption.
 */
export function decodeMdBitmapSuperblock(bytes: Uint8Array, opts: DecodeBitmapOptions = {}): MdBitmapSuperblock {
  const dev = opts.device;
  if (bytes.length < BITMAP_SUPERBLOCK_BYTES) throw corrupt("truncated", `bitmap superblock too short: ${bytes.length} bytes`, 0, dev);
  const magic = readU32LE(bytes, 0);
  if (magic !== BITMAP_MAGIC) throw corrupt("magic", `invalid bitmap magic 0x${magic.toString(16).padStart(8, "0")}`, 0, dev);
  const version = readU32LE(bytes, 4);
  if (version < BITMAP_MAJOR_LO || version > BITMAP_MAJOR_CLUSTERED) throw corrupt("version", `unrecognized bitmap superblock version ${version}`, 4, dev);
  const chunkBytes = readU32LE(bytes, 52);
  if (chunkBytes < 512 || (chunkBytes & (chunkBytes - 1)) !== 0) throw corrupt("chunksize", `bitmap chunksize ${chunkBytes} not a power of two >= 512`, 52, dev);
  const daemonSleepSeconds = readU32LE(bytes, 56);
  if (daemonSleepSeconds < 1) throw corrupt("daemon-sleep", "bitmap daemon sleep period out of range", 56, dev);
  const writeBehind = readU32LE(bytes, 60);
  if (writeBehind > MAX_WRITE_BEHIND) throw corrupt("write-behind", `bitmap write-behind limit ${writeBehind} out of range (0 - ${MAX_WRITE_BEHIND})`, 60, dev);
  const syncSectors = readU64LEBig(bytes, 40);
  const chunks = bitmapChunkCount(syncSectors, chunkBytes);
  if (chunks > MAX_BITMAP_CHUNKS) throw corrupt("chunk-count", `bitmap has ${chunks} chunks, more than ${MAX_BITMAP_CHUNKS}`, 40, dev);
  if (opts.areaBytes !== undefined && bitmapFileBytes(chunks) > opts.areaBytes)
    throw corrupt("area", `bitmap of ${chunks} chunks (${bitmapFileBytes(chunks)} bytes) does not fit the ${opts.areaBytes}-byte rmeta area`, 40, dev);
  return {
    version,
    uuid: bytes.slice(8, 24),
    eventCount: readU64LEBig(bytes, 24),
    eventsClearedCount: readU64LEBig(bytes, 32),
    syncSectors,
    state: readU32LE(bytes, 48),
    chunkBytes,
    daemonSleepSeconds,
    writeBehind,
    sectorsReserved: readU32LE(bytes, 64),
    nodes: readU32LE(bytes, 68),
    clusterName: bytes.slice(72, 136),
  };
}

export interface NewBitmapOptions {
  readonly syncSectors: bigint;
  readonly chunkBytes: number;
  readonly eventCount: bigint;
  readonly writeBehind?: number;
  readonly stale?: boolean;
}

/** The superblock md_bitmap_new_disk_sb builds for dm-raid (version 4, zero uuid, default daemon sleep). */
export function newMdBitmapSuperblock(o: NewBitmapOptions): MdBitmapSuperblock {
  return {
    version: BITMAP_MAJOR_HI,
    uuid: new Uint8Array(16),
    eventCount: o.eventCount,
    eventsClearedCount: o.eventCount,
    syncSectors: o.syncSectors,
    state: o.stale ? BITMAP_STALE : 0,
    chunkBytes: o.chunkBytes,
    daemonSleepSeconds: DEFAULT_DAEMON_SLEEP_SECONDS,
    writeBehind: o.writeBehind ?? 0,
    sectorsReserved: 0,
    nodes: 0,
    clusterName: new Uint8Array(64),
  };
}

/**
 * A whole bitmap file as the kernel writes it on first use: the superblock,
 * then every page filled with 0xFF (so every chunk dirty, and the padding
 * bits past the last chunk 1: readers ignore them). Trimmed to the bytes
 * actually written (see bitmapPageWriteBytes).
 */
export function encodeFreshBitmapFile(sb: MdBitmapSuperblock, logicalBlockBytes = 512): Uint8Array {
  const chunks = bitmapChunkCount(sb.syncSectors, sb.chunkBytes);
  const file = new Uint8Array(rmetaBytesNeeded(chunks, logicalBlockBytes) - RMETA_BITMAP_OFFSET_BYTES).fill(0xff);
  writeMdBitmapSuperblock(file, sb);
  return file;
}
