import { readU32LE, readU64LE, writeU32LE, writeU64LE } from "../../base/bytes.js";
import { crc32c, crc32cOfBuffer, crc32cU64LE } from "../../base/crc32c.js";

/**
 * dm-integrity's on-disk format as the kernel writes it with a separate
 * metadata device, the layout lvm2 uses under raid1 images
 * (drivers/md/dm-integrity.c; reference §6.2–6.3). A pure codec: bytes in,
 * values out, no I/O.
 *
 * The metadata device (`_imeta`) holds, from sector 0:
 *   - the superblock, 8 sectors (SB_SECTORS), `struct superblock` in its first 64 bytes;
 *   - the journal (J mode) or the dirty bitmap (B mode): journal_sections ×
 *     journal_section_sectors sectors;
 *   - the tag area (`initial_sectors` on): one tag_size-byte tag per block,
 *     packed, block b's at byte b × tag_size; rounded up to whole buffers.
 * The data device (`_iorig`) holds the data only: logical sector N is its
 * sector N (get_data_sector returns the offset unchanged with meta_dev).
 *
 * struct superblock (packed, little-endian):
 *   0 magic "integrt\0"   8 version   9 log2_interleave_sectors   10 integrity_tag_size (le16)
 *  12 journal_sections (le32)   16 provided_data_sectors (le64)   24 flags (le32)
 *  28 log2_sectors_per_block   29 log2_blocks_per_bitmap_bit   30 pad[2]
 *  32 recalc_sector (le64)   40 pad2[8]   48 salt[16]   64 end
 */
export const SB_MAGIC = new Uint8Array([0x69, 0x6e, 0x74, 0x65, 0x67, 0x72, 0x74, 0x00]); // "integrt\0"
export const SB_SECTORS = 8;
export const SB_STRUCT_BYTES = 64;
export const SECTOR_BYTES = 512;

export const SB_VERSION_1 = 1;
export const SB_VERSION_2 = 2;
export const SB_VERSION_3 = 3;
export const SB_VERSION_4 = 4;
export const SB_VERSION_5 = 5;
export const SB_VERSION_6 = 6;

export const SB_FLAG_HAVE_JOURNAL_MAC = 0x1;
export const SB_FLAG_RECALCULATING = 0x2;
export const SB_FLAG_DIRTY_BITMAP = 0x4;
export const SB_FLAG_FIXED_PADDING = 0x8;
export const SB_FLAG_FIXED_HMAC = 0x10;
export const SB_FLAG_INLINE = 0x20;

export const JOURNAL_BLOCK_SECTORS = 8;
/** A journal sector's bytes before its 8-byte commit id. */
export const JOURNAL_SECTOR_DATA = SECTOR_BYTES - 8;
export const JOURNAL_MAC_PER_SECTOR = 8;
export const JOURNAL_ENTRY_ROUNDUP = 8;
export const METADATA_PADDING_SECTORS = 8;
export const DEFAULT_BUFFER_SECTORS = 128;
export const DEFAULT_JOURNAL_SIZE_FACTOR = 7;
export const DEFAULT_MAX_JOURNAL_SECTORS = 131072;
export const DEFAULT_SECTORS_PER_BITMAP_BIT = 32768;
export const BITMAP_BLOCK_SIZE = 4096;

export interface IntegritySuperblock {
  version: number;
  log2InterleaveSectors: number;
  tagSize: number;
  journalSections: number;
  providedDataSectors: number;
  flags: number;
  log2SectorsPerBlock: number;
  log2BlocksPerBitmapBit: number;
  /** Progress of the tag recalculation (meaningful with SB_FLAG_RECALCULATING). */
  recalcSector: number;
  salt: Uint8Array;
}

/** The superblock area (8 sectors): the struct, the rest zero, as initialize_superblock leaves it. */
export function encodeSuperblock(sb: IntegritySuperblock): Uint8Array {
  const b = new Uint8Array(SB_SECTORS * SECTOR_BYTES);
  b.set(SB_MAGIC, 0);
  b[8] = sb.version;
  b[9] = sb.log2InterleaveSectors;
  b[10] = sb.tagSize & 0xff;
  b[11] = sb.tagSize >>> 8;
  writeU32LE(b, 12, sb.journalSections);
  writeU64LE(b, 16, sb.providedDataSectors);
  writeU32LE(b, 24, sb.flags);
  b[28] = sb.log2SectorsPerBlock;
  b[29] = sb.log2BlocksPerBitmapBit;
  writeU64LE(b, 32, sb.recalcSector);
  b.set(sb.salt.subarray(0, 16), 48);
  return b;
}

export type SuperblockRead =
  /** An all-zero first sector: the kernel formats it on first activation (lvm2 zeroes the imeta start for this). */
  | { kind: "blank" }
  | { kind: "superblock"; superblock: IntegritySuperblock }
  | { kind: "corrupt"; reason: string };

/**
 * Decode and check a superblock as dm_integrity_ctr does before using it:
 * the magic (or an all-zero first sector), a known version, a journal.
 * Checks that need the table line (tag size, block size) are in
 * checkSuperblockAgainst.
 */
export function decodeSuperblock(b: Uint8Array): SuperblockRead {
  if (b.length < SECTOR_BYTES) return { kind: "corrupt", reason: "superblock shorter than a sector" };
  let magicOk = true;
  for (let i = 0; i < 8; i++) if (b[i] !== SB_MAGIC[i]) magicOk = false;
  if (!magicOk) {
    // "The device is not initialized" unless the whole first sector is zero.
    for (let i = 0; i < SECTOR_BYTES; i++) if (b[i] !== 0) return { kind: "corrupt", reason: "bad magic (the device is not initialized)" };
    return { kind: "blank" };
  }
  const superblock: IntegritySuperblock = {
    version: b[8]!,
    log2InterleaveSectors: b[9]!,
    tagSize: b[10]! | (b[11]! << 8),
    journalSections: readU32LE(b, 12),
    providedDataSectors: readU64LE(b, 16),
    flags: readU32LE(b, 24),
    log2SectorsPerBlock: b[28]!,
    log2BlocksPerBitmapBit: b[29]!,
    recalcSector: readU64LE(b, 32),
    salt: b.slice(48, 64),
  };
  if (superblock.version < SB_VERSION_1 || superblock.version > SB_VERSION_6) return { kind: "corrupt", reason: `unknown version ${superblock.version}` };
  if (!superblock.journalSections && !(superblock.flags & SB_FLAG_INLINE)) return { kind: "corrupt", reason: "corrupted superblock, journal_sections is 0" };
  if (superblock.log2SectorsPerBlock > 3) return { kind: "corrupt", reason: `block size of ${SECTOR_BYTES << superblock.log2SectorsPerBlock} bytes` };
  return { kind: "superblock", superblock };
}

/** The table line's view of a superblock (dm_integrity_ctr's "doesn't match the information in superblock" checks). */
export function checkSuperblockAgainst(sb: IntegritySuperblock, want: { tagSize: number; blockSize: number; metaDev: boolean }): string | undefined {
  if (sb.tagSize !== want.tagSize) return `tag size ${sb.tagSize} doesn't match the table's ${want.tagSize}`;
  if (SECTOR_BYTES << sb.log2SectorsPerBlock !== want.blockSize) return `block size ${SECTOR_BYTES << sb.log2SectorsPerBlock} doesn't match the table's ${want.blockSize}`;
  if (want.metaDev && sb.log2InterleaveSectors !== 0) return "interleave must be 0 with a metadata device";
  return undefined;
}

/** sb_set_version: the lowest version that can describe the flags and mode. */
export function superblockVersion(flags: number, mode: "J" | "B" | "D" | "R", metaDev: boolean): number {
  if (flags & SB_FLAG_INLINE) return SB_VERSION_6;
  if (flags & SB_FLAG_FIXED_HMAC) return SB_VERSION_5;
  if (flags & SB_FLAG_FIXED_PADDING) return SB_VERSION_4;
  if (mode === "B" || flags & SB_FLAG_DIRTY_BITMAP) return SB_VERSION_3;
  if (metaDev || flags & SB_FLAG_RECALCULATING) return SB_VERSION_2;
  return SB_VERSION_1;
}

/** calculate_journal_section_size: the journal's geometry for a tag size and block size. */
export interface JournalGeometry {
  /** Bytes per entry: le64 sector, 8 bytes per 512-byte sector of the block, the tag, rounded up to 8. */
  entrySize: number;
  entriesPerSector: number;
  sectionEntries: number;
  /** 8 metadata sectors + sectionEntries blocks of data. */
  sectionSectors: number;
}

export function journalGeometry(tagSize: number, sectorsPerBlock: number, journalMac = false): JournalGeometry {
  const entrySize = Math.ceil((8 + 8 * sectorsPerBlock + tagSize) / JOURNAL_ENTRY_ROUNDUP) * JOURNAL_ENTRY_ROUNDUP;
  const space = JOURNAL_SECTOR_DATA - (journalMac ? JOURNAL_MAC_PER_SECTOR : 0);
  const entriesPerSector = Math.floor(space / entrySize);
  const sectionEntries = entriesPerSector * JOURNAL_BLOCK_SECTORS;
  return { entrySize, entriesPerSector, sectionEntries, sectionSectors: sectionEntries * sectorsPerBlock + JOURNAL_BLOCK_SECTORS };
}

/** Where things are on the metadata device, from a superblock (calculate_device_limits, meta_dev case). */
export interface MetaLayout {
  journal: JournalGeometry;
  /** Sectors before the tag area: superblock + journal (or bitmap). */
  initialSectors: number;
  /** Tag area length in sectors, rounded up to whole buffers. */
  tagAreaSectors: number;
  log2BufferSectors: number;
}

function log2(n: number): number {
  return 31 - Math.clz32(n);
}

/** calculate_device_limits for a metadata device: undefined when it does not fit (the kernel's -EINVAL). */
export function metaLayout(sb: IntegritySuperblock, metaDeviceSectors: number, log2BufferSectors = log2(DEFAULT_BUFFER_SECTORS)): MetaLayout | undefined {
  const journal = journalGeometry(sb.tagSize, 1 << sb.log2SectorsPerBlock, (sb.flags & SB_FLAG_HAVE_JOURNAL_MAC) !== 0);
  const initialSectors = SB_SECTORS + journal.sectionSectors * sb.journalSections;
  if (initialSectors + METADATA_PADDING_SECTORS >= metaDeviceSectors || initialSectors > 0xffffffff) return undefined;
  const bufferBytes = 2 ** (log2BufferSectors + 9);
  const tagBytes = Math.floor(sb.providedDataSectors / (1 << sb.log2SectorsPerBlock)) * sb.tagSize;
  const tagAreaSectors = Math.ceil(tagBytes / bufferBytes) * (1 << log2BufferSectors);
  if (initialSectors + tagAreaSectors > metaDeviceSectors) return undefined;
  return { journal, initialSectors, tagAreaSectors, log2BufferSectors };
}

export interface FormatRequest {
  dataDeviceSectors: number;
  metaDeviceSectors: number;
  tagSize: number;
  blockSize: number;
  mode: "J" | "B";
  /** The table's journal_sectors; 0 = the kernel's default, min(131072, data sectors >> 7). */
  journalSectors?: number;
  /** The table's sectors_per_bit (bitmap granularity); 0 = 32768. */
  sectorsPerBit?: number;
  /** The first activation passes `recalculate`: the tags are computed in the background. */
  recalculate: boolean;
}

/**
 * initialize_superblock with a metadata device, then what dm_integrity_ctr
 * sets before writing it: the largest journal_sections ≤ the requested
 * journal that fits (bit by bit from the top, shrinking the buffer if even
 * one section does not fit), the bitmap granularity (enlarged until the
 * journal area can hold the bitmap; written in either mode), the
 * recalculating flag, and the dirty-bitmap flag in B mode.
 */
export function formatSuperblock(req: FormatRequest): { superblock: IntegritySuperblock; layout: MetaLayout } | { error: string } {
  const sectorsPerBlock = req.blockSize / SECTOR_BYTES;
  if (![1, 2, 4, 8].includes(sectorsPerBlock)) return { error: `invalid block size ${req.blockSize}` };
  const log2SectorsPerBlock = log2(sectorsPerBlock);
  const journalSectors = req.journalSectors || Math.min(DEFAULT_MAX_JOURNAL_SECTORS, Math.floor(req.dataDeviceSectors / 2 ** DEFAULT_JOURNAL_SIZE_FACTOR));
  const journal = journalGeometry(req.tagSize, sectorsPerBlock);
  const wanted = Math.floor(journalSectors / journal.sectionSectors) || 1;
  const providedDataSectors = req.dataDeviceSectors - (req.dataDeviceSectors % sectorsPerBlock);
  if (!providedDataSectors) return { error: "the data device is empty" };
  const sb: IntegritySuperblock = {
    version: 0,
    log2InterleaveSectors: 0,
    tagSize: req.tagSize,
    journalSections: 0,
    providedDataSectors,
    flags: 0,
    log2SectorsPerBlock,
    log2BlocksPerBitmapBit: 0,
    recalcSector: 0,
    salt: new Uint8Array(16),
  };
  let log2Buffer = log2(DEFAULT_BUFFER_SECTORS);
  for (;;) {
    sb.journalSections = 0;
    for (let bit = log2(wanted); bit >= 0; bit--) {
      const test = sb.journalSections | (1 << bit);
      if (test > wanted) continue;
      const prev = sb.journalSections;
      sb.journalSections = test;
      if (!metaLayout(sb, req.metaDeviceSectors, log2Buffer)) sb.journalSections = prev;
    }
    if (sb.journalSections) break;
    if (log2Buffer <= 3) return { error: "the metadata device is too small" };
    log2Buffer--;
  }
  const layout = metaLayout(sb, req.metaDeviceSectors, log2Buffer)!;
  // dm_integrity_ctr: the bitmap granularity, from sectors_per_bit (default 32768 sectors).
  let log2SectorsPerBit = req.sectorsPerBit ? log2(req.sectorsPerBit) : log2(DEFAULT_SECTORS_PER_BITMAP_BIT);
  if (log2SectorsPerBit < log2SectorsPerBlock) log2SectorsPerBit = log2SectorsPerBlock;
  const bitsInJournal = Math.min(0xffffffff, layout.journal.sectionSectors * sb.journalSections * SECTOR_BYTES * 8);
  while (bitsInJournal < Math.ceil(providedDataSectors / 2 ** log2SectorsPerBit)) log2SectorsPerBit++;
  sb.log2BlocksPerBitmapBit = log2SectorsPerBit - log2SectorsPerBlock;
  if (req.recalculate) sb.flags |= SB_FLAG_RECALCULATING;
  if (req.mode === "B") sb.flags |= SB_FLAG_DIRTY_BITMAP;
  sb.version = superblockVersion(sb.flags, req.mode, true);
  return { superblock: sb, layout };
}

/** Byte offset on the metadata device of block `block`'s tag (get_metadata_sector_and_offset with area 0). */
export function tagOffsetBytes(layout: MetaLayout, tagSize: number, block: number): number {
  return layout.initialSectors * SECTOR_BYTES + block * tagSize;
}

/**
 * integrity_sector_checksum with internal_hash crc32c: the hash of the
 * block's first logical sector as le64, then the block's bytes; the crypto
 * API's crc32c digest is the final CRC stored little-endian
 * (crypto/crc32c: put_unaligned_le32(~crc)). Tags longer than the digest are
 * zero-padded.
 */
export function crc32cTag(logicalSector: number, block: Uint8Array, tagSize = 4, into = new Uint8Array(tagSize)): Uint8Array {
  // The 8-byte head in JS, the block with the CPU's instructions: one native call per block, not
  // two (with 512-byte blocks the call, not the bytes, is the cost; bench part "integrity").
  const crc = crc32c(block, crc32cU64LE(logicalSector));
  into.fill(0, 0, tagSize);
  // A tag shorter than the 4-byte digest keeps its first bytes.
  for (let i = 0; i < Math.min(4, tagSize); i++) into[i] = (crc >>> (8 * i)) & 0xff;
  return into;
}

/**
 * crc32cTag for every block of a run, in one pass: block i of `blocks`
 * (blockSize bytes each) is at logical sector firstSector + i × sectors per
 * block, its tag goes to `into` at i × tagSize. Same bytes as crc32cTag
 * block by block, without its per-block costs (encoding the sector, a
 * Buffer per call, a tag array): with 512-byte blocks those, not the CRC
 * instructions, were most of the time of a read or write.
 */
export function crc32cTags<T extends Uint8Array>(firstSector: number, blocks: Uint8Array, blockSize: number, tagSize: number, into: T): T {
  const buf = Buffer.isBuffer(blocks) ? blocks : Buffer.from(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const n = Math.floor(buf.length / blockSize);
  const sectorsPerBlock = blockSize / SECTOR_BYTES;
  const short = Math.min(4, tagSize);
  if (tagSize > 4) into.fill(0, 0, n * tagSize);
  for (let i = 0, off = 0, at = 0; i < n; i++, off += blockSize, at += tagSize) {
    const crc = crc32cOfBuffer(buf, off, off + blockSize, crc32cU64LE(firstSector + i * sectorsPerBlock));
    if (short === 4) {
      into[at] = crc & 0xff;
      into[at + 1] = (crc >>> 8) & 0xff;
      into[at + 2] = (crc >>> 16) & 0xff;
      into[at + 3] = crc >>> 24;
    } else for (let k = 0; k < short; k++) into[at + k] = (crc >>> (8 * k)) & 0xff;
  }
  return into;
}
