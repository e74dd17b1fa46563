import type { BlockDevice } from "../blockdev/block-device.js";
import { lvmCrc } from "../base/crc.js";
import { SECTOR_BYTES } from "../base/bytes.js";
import { CommandError } from "../errors/errors.js";
import { encodeLabelSector, isLabelSector, LABEL_SCAN_SECTORS, type PvLabelDisk } from "./label.js";
import { EMPTY_LOCN, encodeMdaHeader, maxTextBytes, MDA_HEADER_BYTES, nextTextOffset, overlapsCommitted, ringWrites, type MdaHeaderDisk, type RawLocn } from "./mda.js";

/**
 * Writing LVM2 structures. Metadata commits are two-phase across every
 * metadata area of every PV (lvm2's vg_write then vg_commit): all text copies
 * are written and flushed before any header points at them, so a crash leaves
 * each area at the old or the new version and readers take the highest seqno.
 */

/** Zero every sector 0..3 that holds a label for that sector (lvm2's label_remove). */
export async function wipeLabels(dev: BlockDevice): Promise<void> {
  const buf = new Uint8Array(SECTOR_BYTES * LABEL_SCAN_SECTORS);
  await dev.read(0, buf);
  for (let s = 0; s < LABEL_SCAN_SECTORS; s++) {
    if (isLabelSector(buf.subarray(s * SECTOR_BYTES, (s + 1) * SECTOR_BYTES), s)) {
      await dev.write(s * SECTOR_BYTES, new Uint8Array(SECTOR_BYTES));
    }
  }
}

/** Write a label into its sector, removing labels in the other scan sectors. */
export async function writeLabel(dev: BlockDevice, label: PvLabelDisk): Promise<void> {
  await wipeLabels(dev);
  await dev.write(label.sector * SECTOR_BYTES, encodeLabelSector(label));
}

/** Fresh metadata area: first 4 KiB zeroed, then a header with empty slots. */
export async function initMda(dev: BlockDevice, startBytes: number, sizeBytes: number): Promise<void> {
  await dev.write(startBytes, new Uint8Array(Math.min(4096, sizeBytes)));
  await dev.write(startBytes, encodeMdaHeader({ startBytes, sizeBytes, committed: EMPTY_LOCN, precommitted: EMPTY_LOCN }));
}

/** One metadata area that takes part in a commit. */
export interface MdaTarget {
  dev: BlockDevice;
  devName: string;
  header: MdaHeaderDisk;
}

export interface CommitPlan {
  target: MdaTarget;
  newLocn: RawLocn;
}

/** Encode metadata text as stored: UTF-8 plus the terminating NUL that lvm2 counts in the size. */
export function encodeText(text: string): Uint8Array {
  const body = Buffer.from(text, "utf8");
  const out = new Uint8Array(body.length + 1);
  out.set(body);
  return out;
}

/** Check room and choose each area's ring position. Throws before anything is written. */
export function planCommit(targets: readonly MdaTarget[], textBytes: Uint8Array, vgName: string, seqno: number): CommitPlan[] {
  const checksum = lvmCrc(textBytes);
  return targets.map((target) => {
    const max = maxTextBytes(target.header.sizeBytes);
    if (textBytes.length > max) {
      throw new CommandError(`VG ${vgName} ${seqno} metadata on ${target.devName} (${textBytes.length} bytes) exceeds maximum metadata size (${max} bytes)`);
    }
    const offsetBytes = nextTextOffset(target.header.committed, target.header.sizeBytes);
    const newLocn: RawLocn = { offsetBytes, sizeBytes: textBytes.length, checksum, flags: 0 };
    if (overlapsCommitted(newLocn, target.header.committed, target.header.sizeBytes)) {
      throw new CommandError(`VG ${vgName} ${seqno} metadata on ${target.devName} (${textBytes.length} bytes) too large for circular buffer (${target.header.sizeBytes} bytes)`);
    }
    return { target, newLocn };
  });
}

/** Phase 1: write the text of every plan and flush each device. Headers still point at the old copy. */
export async function writeTexts(plans: readonly CommitPlan[], textBytes: Uint8Array): Promise<void> {
  for (const p of plans) {
    for (const w of ringWrites(textBytes, p.newLocn.offsetBytes, p.target.header.sizeBytes)) {
      await p.target.dev.write(p.target.header.startBytes + w.mdaOffsetBytes, w.data);
    }
  }
  await flushAll(plans.map((p) => p.target.dev));
}

/** Phase 2: point each header's committed slot at the new text; slot 1 left zero. */
export async function commitHeaders(plans: readonly CommitPlan[]): Promise<void> {
  for (const p of plans) {
    const h: MdaHeaderDisk = { ...p.target.header, committed: p.newLocn, precommitted: EMPTY_LOCN };
    await p.target.dev.write(h.startBytes, encodeMdaHeader(h));
    p.target.header = h;
  }
  await flushAll(plans.map((p) => p.target.dev));
}

/** Empty both slots (vgremove, and removing a PV from its VG): the ring keeps old copies. */
export async function clearMdaHeader(dev: BlockDevice, header: MdaHeaderDisk): Promise<void> {
  await dev.write(header.startBytes, encodeMdaHeader({ ...header, committed: { ...EMPTY_LOCN, flags: header.committed.flags & 1 }, precommitted: EMPTY_LOCN }));
}

export async function flushAll(devs: readonly BlockDevice[]): Promise<void> {
  const seen = new Set<BlockDevice>();
  for (const d of devs) {
    if (seen.has(d)) continue;
    seen.add(d);
    await d.flush();
  }
}

export { MDA_HEADER_BYTES };
