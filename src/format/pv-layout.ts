import { FormatError } from "../errors/errors.js";

/**
 * Where pvcreate puts things (lib/format_text/format-text.c
 * _text_pv_add_metadata_area, lib/metadata/metadata.c set_pe_align):
 * mda0 at 4096 (the label scan size rounded to the page) with its end moved up
 * to the data alignment, pe_start right after it; an optional mda1 at the end
 * of the device, its start moved down to the alignment when there is room.
 */
export const LABEL_SCAN_SIZE_BYTES = 2048;
export const PAGE_BYTES = 4096;
export const MDA_SIZE_MIN_BYTES = 8 * PAGE_BYTES;
export const DEFAULT_MDA_SECTORS = 2040; // pe_start at 1 MiB with 4 KiB pages
export const DEFAULT_ALIGN_SECTORS = 2048; // devices/default_data_alignment = 1 MiB
export const PV_MIN_SIZE_SECTORS = 4096; // DEFAULT_PV_MIN_SIZE_KB 2048

export interface PvLayoutRequest {
  deviceSizeBytes: number;
  /** --metadatasize, sectors (default 2040). */
  mdaSizeSectors?: number;
  /** --pvmetadatacopies 0, 1 or 2 (default 1). */
  mdaCopies?: number;
  /** --dataalignment, sectors (default 1 MiB). */
  alignSectors?: number;
  /** --dataalignmentoffset, sectors. */
  alignOffsetSectors?: number;
  /** --bootloaderareasize, sectors. */
  baSizeSectors?: number;
}

export interface PvLayout {
  peStartSectors: number;
  mdas: Array<{ startBytes: number; sizeBytes: number }>;
  baStartSectors: number;
  baSizeSectors: number;
  peAlignSectors: number;
}

export function computePvLayout(req: PvLayoutRequest, devName: string): PvLayout {
  const diskSize = req.deviceSizeBytes;
  const sizeSectors = Math.floor(diskSize / 512);
  if (sizeSectors < PV_MIN_SIZE_SECTORS) throw new FormatError(`${devName}: Size must exceed minimum of ${PV_MIN_SIZE_SECTORS} sectors.`);
  const peAlign = req.alignSectors ?? DEFAULT_ALIGN_SECTORS;
  const peAlignOffset = req.alignOffsetSectors ?? 0;
  if (peAlign < peAlignOffset) throw new FormatError(`${devName}: pe_align (${peAlign} sectors) must not be less than pe_align_offset (${peAlignOffset} sectors)`);
  if (sizeSectors < peAlign + peAlignOffset) throw new FormatError(`${devName}: Data alignment must not exceed device size.`);
  const baSize = (req.baSizeSectors ?? 0) * 512;
  if (sizeSectors < peAlign + peAlignOffset + (req.baSizeSectors ?? 0)) throw new FormatError(`${devName}: Bootloader area with data-aligned start must not exceed device size.`);
  const alignment = peAlign * 512;
  const alignmentOffset = peAlignOffset * 512;
  const copies = req.mdaCopies ?? 1;
  const requested = (req.mdaSizeSectors ?? DEFAULT_MDA_SECTORS) * 512;
  // Without metadata areas, pe_start is the alignment itself.
  let peStart = alignment + alignmentOffset;
  let baStart = 0;
  const mdas: Array<{ startBytes: number; sizeBytes: number }> = [];
  const notEnough = (i: number): FormatError => new FormatError(`Not enough space available for metadata area with index ${i} on PV ${devName}.`);
  if (copies === 0 && baSize) {
    baStart = peStart;
    peStart = baStart + baSize;
  }
  for (let index = 0; index < copies; index++) {
    let mdaSize = requested;
    let mdaStart: number;
    if (index === 0) {
      let limit = diskSize;
      if (baSize) limit -= baSize;
      if (limit > diskSize) throw notEnough(0);
      mdaStart = LABEL_SCAN_SIZE_BYTES;
      if (limit - mdaStart >= MDA_SIZE_MIN_BYTES && mdaStart % PAGE_BYTES) mdaStart += PAGE_BYTES - (mdaStart % PAGE_BYTES);
      let adj = alignment ? (mdaStart + mdaSize) % alignment : 0;
      if (alignment && adj) {
        const t = mdaSize + alignment - adj;
        if (mdaStart + t <= limit) mdaSize = t;
      }
      if (alignment && alignmentOffset && (mdaStart + mdaSize) % alignment === 0) {
        const t = mdaSize + alignmentOffset;
        if (mdaStart + t <= limit) mdaSize = t;
      }
      if (mdaStart + mdaSize > limit) {
        if (alignment && limit - mdaStart > alignment * 2) {
          mdaSize = limit - mdaStart - alignment * 2;
          adj = (mdaStart + mdaSize) % alignment;
          if (adj) mdaSize += alignment - adj;
          if (mdaStart + mdaSize > limit) throw notEnough(0);
        } else mdaSize = limit - mdaStart;
      }
      if (baSize) {
        baStart = mdaStart + mdaSize;
        peStart = baStart + baSize;
      } else peStart = mdaStart + mdaSize;
    } else {
      let limit = peStart;
      if (baSize) limit += 0; // pe_start already includes the bootloader area
      if (limit >= diskSize) throw notEnough(1);
      if (mdaSize > diskSize) mdaSize = diskSize - limit;
      mdaStart = diskSize - mdaSize;
      if (diskSize - mdaSize < limit) {
        mdaSize = diskSize - limit;
        mdaStart = diskSize - mdaSize;
      } else if (alignment && mdaStart % alignment) {
        const t = mdaSize + (mdaStart % alignment);
        if (t < diskSize && diskSize - t >= limit) {
          mdaSize = t;
          mdaStart = diskSize - mdaSize;
        }
      }
    }
    if (mdaSize) {
      if (mdaSize < MDA_SIZE_MIN_BYTES) throw new FormatError(`Metadata area size too small: ${mdaSize} bytes. It must be at least ${MDA_SIZE_MIN_BYTES} bytes.`);
      mdas.push({ startBytes: mdaStart, sizeBytes: mdaSize });
    }
  }
  return { peStartSectors: Math.floor(peStart / 512), mdas, baStartSectors: Math.floor(baStart / 512), baSizeSectors: Math.floor(baSize / 512), peAlignSectors: peAlign };
}

/** Bytes at the end of the device reserved for mda1 (they hold no extents). */
export function tailReservedBytes(deviceSizeBytes: number, mdas: ReadonlyArray<{ startBytes: number; sizeBytes: number }>, peStartBytes: number): number {
  let end = deviceSizeBytes;
  for (const m of mdas) if (m.startBytes >= peStartBytes && m.startBytes < end) end = m.startBytes;
  return deviceSizeBytes - end;
}
