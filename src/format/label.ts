import { lvmCrc } from "../base/crc.js";
import { ascii, isAllZero, putAscii, readU32LE, readU64LE, readU64LEBig, SECTOR_BYTES, writeU32LE, writeU64LE } from "../base/bytes.js";
import { FormatError } from "../errors/errors.js";

/**
 * The LVM2 label sector (lib/label/label.c, lib/format_text/text_label.c,
 * layout.h): a 32-byte label header, then the pv_header, its two disk_locn
 * lists and the pv_header_extension, all inside one 512-byte sector that may
 * be any of sectors 0..3 (pvcreate uses sector 1). Little-endian throughout.
 */
export const LABEL_ID = "LABELONE";
export const LABEL_TYPE = "LVM2 001";
export const LABEL_SCAN_SECTORS = 4;
export const DEFAULT_LABEL_SECTOR = 1;
const PV_HEADER_OFFSET = 32;
const PV_EXT_VERSION = 2;
export const PV_EXT_USED = 0x1;

export interface DiskLocn {
  offsetBytes: number;
  sizeBytes: number;
}

/** Decoded label sector; `Disk` records never leave format/. */
export interface PvLabelDisk {
  sector: number;
  pvIdRaw: string;
  deviceSizeBytes: number;
  dataAreas: DiskLocn[];
  metadataAreas: DiskLocn[];
  extVersion: number;
  extFlags: number;
  bootloaderAreas: DiskLocn[];
}

/** What a label scan found in sectors 0..3. */
export type LabelScan =
  | { kind: "none" }
  | { kind: "label"; label: PvLabelDisk; warnings: string[] }
  | { kind: "bad"; reason: string };

function readLocnList(sec: Uint8Array, pos: number, what: string): { list: DiskLocn[]; next: number } {
  const list: DiskLocn[] = [];
  for (;;) {
    if (pos + 16 > SECTOR_BYTES) throw new FormatError(`${what} list runs past the end of the label sector`);
    const offsetBytes = readU64LE(sec, pos);
    const sizeBytes = readU64LE(sec, pos + 8);
    pos += 16;
    if (offsetBytes === 0) break;
    list.push({ offsetBytes, sizeBytes });
  }
  return { list, next: pos };
}

/** Decode one 512-byte sector; undefined when it carries no LVM2 label. */
export function decodeLabelSector(sec: Uint8Array, sectorNumber: number): { label?: PvLabelDisk; reason?: string } {
  if (ascii(sec, 0, 8) !== LABEL_ID) return {};
  const storedSector = readU64LEBig(sec, 8);
  if (storedSector !== BigInt(sectorNumber)) return { reason: `Label for sector ${storedSector} found at sector ${sectorNumber} - ignoring.` };
  const crc = readU32LE(sec, 16);
  if (lvmCrc(sec.subarray(20, SECTOR_BYTES)) !== crc) return { reason: `Label checksum incorrect at sector ${sectorNumber} - ignoring.` };
  if (ascii(sec, 24, 32) !== LABEL_TYPE) return { reason: `Unsupported label type at sector ${sectorNumber}.` };
  const hdr = readU32LE(sec, 20);
  if (hdr !== PV_HEADER_OFFSET) return { reason: `Unsupported pv_header offset ${hdr} at sector ${sectorNumber}.` };
  try {
    const pvIdRaw = ascii(sec, 32, 64);
    if (!/^[0-9a-zA-Z!#]{32}$/.test(pvIdRaw)) return { reason: "Invalid PV uuid in label." };
    const deviceSizeBytes = readU64LE(sec, 64);
    const da = readLocnList(sec, 72, "data area");
    const mda = readLocnList(sec, da.next, "metadata area");
    let extVersion = 0;
    let extFlags = 0;
    let bootloaderAreas: DiskLocn[] = [];
    if (mda.next + 8 <= SECTOR_BYTES) {
      extVersion = readU32LE(sec, mda.next);
      if (extVersion !== 0) {
        extFlags = readU32LE(sec, mda.next + 4);
        bootloaderAreas = readLocnList(sec, mda.next + 8, "bootloader area").list;
      }
    }
    if (mda.list.length > 2) return { reason: "Too many metadata areas in PV header." };
    return { label: { sector: sectorNumber, pvIdRaw, deviceSizeBytes, dataAreas: da.list, metadataAreas: mda.list, extVersion, extFlags, bootloaderAreas } };
  } catch (e) {
    if (e instanceof FormatError || e instanceof RangeError) return { reason: e.message };
    throw e;
  }
}

/** Look at sectors 0..3 of the first 2 KiB of a device: the first valid label wins. */
export function scanLabel(first2k: Uint8Array): LabelScan {
  let found: PvLabelDisk | undefined;
  const warnings: string[] = [];
  let badReason: string | undefined;
  for (let s = 0; s < LABEL_SCAN_SECTORS; s++) {
    const sec = first2k.subarray(s * SECTOR_BYTES, (s + 1) * SECTOR_BYTES);
    if (sec.length < SECTOR_BYTES) break;
    const r = decodeLabelSector(sec, s);
    if (r.label) {
      if (found) warnings.push(`Ignoring additional label on device at sector ${s}`);
      else found = r.label;
    } else if (r.reason && !badReason) badReason = r.reason;
  }
  if (found) return { kind: "label", label: found, warnings };
  if (badReason) return { kind: "bad", reason: badReason };
  return { kind: "none" };
}

/** Encode a label sector as pvcreate writes it (sector number included in the CRC'd header). */
export function encodeLabelSector(label: Omit<PvLabelDisk, "extVersion"> & { extVersion?: number }): Uint8Array {
  const sec = new Uint8Array(SECTOR_BYTES);
  putAscii(sec, 0, LABEL_ID);
  writeU64LE(sec, 8, label.sector);
  writeU32LE(sec, 20, PV_HEADER_OFFSET);
  putAscii(sec, 24, LABEL_TYPE);
  putAscii(sec, 32, label.pvIdRaw);
  writeU64LE(sec, 64, label.deviceSizeBytes);
  let pos = 72;
  const putList = (list: readonly DiskLocn[]): void => {
    for (const l of list) {
      writeU64LE(sec, pos, l.offsetBytes);
      writeU64LE(sec, pos + 8, l.sizeBytes);
      pos += 16;
    }
    pos += 16; // zero terminator
  };
  putList(label.dataAreas);
  putList(label.metadataAreas);
  writeU32LE(sec, pos, label.extVersion ?? PV_EXT_VERSION);
  writeU32LE(sec, pos + 4, label.extFlags);
  pos += 8;
  // lvm2 2.03 writes one (0,0) bootloader entry when there is none: two zero entries on disk.
  if (label.bootloaderAreas.length === 0) pos += 16;
  putList(label.bootloaderAreas);
  if (pos > SECTOR_BYTES) throw new FormatError("PV header does not fit in the label sector");
  writeU32LE(sec, 16, lvmCrc(sec.subarray(20, SECTOR_BYTES)));
  return sec;
}

/** True when a sector holds LABELONE stamped for that sector (what pvremove wipes). */
export function isLabelSector(sec: Uint8Array, sectorNumber: number): boolean {
  return sec.length >= 16 && ascii(sec, 0, 8) === LABEL_ID && readU64LEBig(sec, 8) === BigInt(sectorNumber);
}
