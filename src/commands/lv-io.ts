import { openBlockDevice } from "./device-open.js";
import type { BlockDevice } from "../blockdev/block-device.js";
import { CommandError } from "../errors/errors.js";
import { findLv, isMirrorSeg, isRaidSeg, isStripedSeg, segAreaExtents } from "../model/lv-info.js";
import type { LogicalVolume, VolumeGroup } from "../model/types.js";
import type { LoadedVg } from "./vg-store.js";

/**
 * Writing to an LV without activating it: LV bytes are mapped to PV bytes
 * with the arithmetic of the reference's section 7 (linear, striped chunks
 * in stripe order, every mirror leg at the same offset) and written to the
 * PV devices directly. Used where lvm2 would briefly activate an LV to
 * initialise it: zeroing the start of a new LV, writing a mirror log.
 */
export interface PvPiece {
  pvId: string;
  /** Byte offset on the PV device. */
  offsetBytes: number;
  lengthBytes: number;
  /** Offset of this piece within the LV range asked for. */
  srcOffset: number;
}

/** The PV pieces holding LV bytes [offset, offset+length) — every copy of mirrored bytes. */
export function mapLvBytes(vg: VolumeGroup, lv: LogicalVolume, offsetBytes: number, lengthBytes: number, srcBase = 0, depth = 0): PvPiece[] {
  if (depth > 16) throw new CommandError(`LV ${lv.name}: sub-LVs nest too deep`);
  const extentBytes = vg.extentSizeSectors * 512;
  const out: PvPiece[] = [];
  let pos = offsetBytes;
  const end = offsetBytes + lengthBytes;
  while (pos < end) {
    const le = Math.floor(pos / extentBytes);
    const seg = lv.segments.find((s) => le >= s.startExtent && le < s.startExtent + s.extentCount);
    if (!seg) throw new CommandError(`LV ${lv.name}: byte ${pos} lies beyond its last segment`);
    const segStart = seg.startExtent * extentBytes;
    const segEnd = (seg.startExtent + seg.extentCount) * extentBytes;
    const o = pos - segStart;
    let chunkEnd = Math.min(end, segEnd);
    if (isStripedSeg(seg)) {
      const k = seg.stripes.length;
      const pvOf = (i: number): { pvId?: string; lvName?: string; base: number } => {
        const a = seg.stripes[i]!;
        return a.kind === "pv" ? { pvId: a.pvId, base: a.startPe } : { lvName: a.lvName, base: a.startLe };
      };
      let stripe = 0;
      let inAreaBytes = o;
      if (k > 1) {
        const chunkBytes = seg.stripeSizeSectors * 512;
        const chunk = Math.floor(o / chunkBytes);
        stripe = chunk % k;
        const row = Math.floor(chunk / k);
        inAreaBytes = row * chunkBytes + (o % chunkBytes);
        chunkEnd = Math.min(chunkEnd, segStart + (chunk + 1) * chunkBytes);
      }
      const a = pvOf(stripe);
      const n = chunkEnd - pos;
      if (a.pvId !== undefined) {
        const pv = vg.pvs.find((p) => p.id === a.pvId);
        if (!pv) throw new CommandError(`LV ${lv.name} uses a PV that is not in the VG`);
        out.push({ pvId: a.pvId, offsetBytes: pv.peStartSectors * 512 + a.base * extentBytes + inAreaBytes, lengthBytes: n, srcOffset: srcBase + pos - offsetBytes });
      } else {
        const sub = findLv(vg, a.lvName!);
        if (!sub) throw new CommandError(`LV ${lv.name} uses unknown LV ${a.lvName}`);
        out.push(...mapLvBytes(vg, sub, a.base * extentBytes + inAreaBytes, n, srcBase + pos - offsetBytes, depth + 1));
      }
    } else if (isMirrorSeg(seg)) {
      const n = chunkEnd - pos;
      void segAreaExtents;
      for (const a of seg.mirrors) {
        if (a.kind === "pv") {
          const pv = vg.pvs.find((p) => p.id === a.pvId);
          if (!pv) continue;
          out.push({ pvId: a.pvId, offsetBytes: pv.peStartSectors * 512 + a.startPe * extentBytes + o, lengthBytes: n, srcOffset: srcBase + pos - offsetBytes });
        } else {
          const sub = findLv(vg, a.lvName);
          if (!sub) throw new CommandError(`LV ${lv.name} uses unknown LV ${a.lvName}`);
          out.push(...mapLvBytes(vg, sub, a.startLe * extentBytes + o, n, srcBase + pos - offsetBytes, depth + 1));
        }
      }
    } else if (isRaidSeg(seg)) {
      // raid1: every image holds the LV's bytes at the same offset (data_offset 0).
      const n = chunkEnd - pos;
      for (const r of seg.raids) {
        const sub = findLv(vg, r.image);
        if (!sub) throw new CommandError(`LV ${lv.name} uses unknown LV ${r.image}`);
        out.push(...mapLvBytes(vg, sub, o, n, srcBase + pos - offsetBytes, depth + 1));
      }
    } else {
      throw new CommandError(`Cannot write to LV ${lv.name}: segment type ${seg.type} is not supported.`);
    }
    pos = chunkEnd;
  }
  return out;
}

/**
 * Write `data` at LV byte `offsetBytes` straight to the PVs (all mirror
 * legs), then flush. PVs that are missing are skipped, as a degraded LV
 * would skip them.
 */
export async function writeLvBytes(loaded: LoadedVg, lv: LogicalVolume, offsetBytes: number, data: Uint8Array): Promise<void> {
  const pieces = mapLvBytes(loaded.vg, lv, offsetBytes, data.length);
  const devs = new Map<string, BlockDevice>();
  try {
    for (const p of pieces) {
      const sd = loaded.deviceOf(p.pvId);
      if (!sd) continue;
      let dev = devs.get(p.pvId);
      if (!dev) {
        dev = await openBlockDevice(sd.entry.name, { write: true });
        devs.set(p.pvId, dev);
      }
      await dev.write(p.offsetBytes, data.subarray(p.srcOffset, p.srcOffset + p.lengthBytes));
    }
    for (const d of devs.values()) await d.flush();
  } finally {
    await Promise.allSettled([...devs.values()].map((d) => d.close()));
  }
}

/** dm-log's on-disk header (drivers/md/dm-log.c): "MiRr", version 2, nr_regions. */
export const MIRROR_LOG_MAGIC = 0x4d695272;
export const MIRROR_DISK_VERSION = 2;

/**
 * Initialise a new disk log as lvm2 does (_init_mirror_log and
 * _write_log_header, reference 8.4): the whole log LV filled with 0x00
 * (0xFF when the mirror starts in sync), then the 16-byte header with
 * nr_regions all ones, so the kernel keeps the bits written here.
 */
export async function initMirrorLog(loaded: LoadedVg, log: LogicalVolume, inSync: boolean): Promise<void> {
  const extentBytes = loaded.vg.extentSizeSectors * 512;
  let extents = 0;
  for (const s of log.segments) extents += s.extentCount;
  const total = extents * extentBytes;
  const step = Math.min(total, 4 * 1024 * 1024);
  const fill = new Uint8Array(step).fill(inSync ? 0xff : 0);
  for (let off = 0; off < total; off += step) await writeLvBytes(loaded, log, off, fill.subarray(0, Math.min(step, total - off)));
  const header = new Uint8Array(16);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, MIRROR_LOG_MAGIC, true);
  dv.setUint32(4, MIRROR_DISK_VERSION, true);
  dv.setBigUint64(8, 0xffffffffffffffffn, true);
  await writeLvBytes(loaded, log, 0, header);
}

/** wipe_lv's zeroing of a new LV: its first 4 KiB (or less when the LV is smaller). */
export async function zeroLvStart(loaded: LoadedVg, lv: LogicalVolume): Promise<void> {
  let extents = 0;
  for (const s of lv.segments) extents += s.extentCount;
  const n = Math.min(4096, extents * loaded.vg.extentSizeSectors * 512);
  if (n > 0) await writeLvBytes(loaded, lv, 0, new Uint8Array(n));
}
