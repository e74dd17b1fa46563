import type { BlockDevice, BlockDeviceCaps, ReadOptions, WriteOptions } from "../../blockdev/block-device.js";
import { IoError } from "../../errors/errors.js";
import {
  SB_FLAG_RECALCULATING,
  SECTOR_BYTES,
  checkSuperblockAgainst,
  crc32cTags,
  decodeSuperblock,
  encodeSuperblock,
  formatSuperblock,
  metaLayout,
  superblockVersion,
  tagOffsetBytes,
  type IntegritySuperblock,
  type MetaLayout,
} from "./integrity-format.js";
import { RangeLock } from "./range-lock.js";
import { DirtyBitmap } from "./dirty-bitmap.js";
import { IntegrityJournal } from "./journal.js";
import { sharedTagThreads } from "./tag-threads.js";

/**
 * A dm-integrity layer over one raid1 image: data on `data` (the `_iorig`),
 * superblock and crc32c tags on `meta` (the `_imeta`), in the kernel's format
 * (integrity-format.ts). Reads verify every block's tag and fail with EILSEQ
 * on a mismatch (counted, as dm-integrity's number_of_mismatches), so the
 * raid1 above can read the block from another leg and rewrite it here;
 * writes store the data and its tags: in bitmap mode (B) directly, under
 * the dirty bitmap (dirty-bitmap.ts); in journal mode (J) through the
 * kernel's journal (journal.ts), which makes data and tag atomic. Blocks at
 * or past recalc_sector while the superblock says RECALCULATING are served
 * unverified: their tags are not written yet, which is never a mismatch.
 */
export class IntegrityMismatchError extends IoError {
  /** The first bad block's sector. */
  readonly sector: number;
  constructor(
    readonly deviceName: string,
    /** First sector of each block of the read whose tag did not match, ascending (device sectors). */
    readonly badSectors: readonly number[],
    /** Sectors per checksummed block. */
    readonly blockSectors: number,
  ) {
    const sector = badSectors[0]!;
    super(
      `${deviceName}: integrity checksum mismatch at sector ${sector}${badSectors.length > 1 ? ` (and ${badSectors.length - 1} more blocks)` : ""}`,
      "EILSEQ",
      { sector },
    );
    this.sector = sector;
  }
}

export interface IntegrityOptions {
  name: string;
  data: BlockDevice;
  meta: BlockDevice;
  tagSize: number;
  blockSize: number;
  mode: "J" | "B";
  /** The table's `recalculate`: compute the tags of a new (or re-initialised) device in the background. */
  recalculate: boolean;
  journalSectors?: number;
  sectorsPerBit?: number;
  /** The table's bitmap_flush_interval (ms): how long a region stays dirty after its last write. */
  bitmapFlushIntervalMs?: number;
  /** The table's commit_time (ms): how long a journaled write may wait for its commit without a flush. */
  commitTimeMs?: number;
}

/** dm-integrity's default bitmap_flush_interval (DEFAULT_BITMAP_FLUSH_INTERVAL, 10 s). */
const DEFAULT_BITMAP_FLUSH_INTERVAL_MS = 10_000;

/** Blocks per recalculation step (RECALC_SECTORS = 32768 sectors in the kernel; smaller here to interleave with I/O). */
const RECALC_STEP_BYTES = 1 << 20;
/** Write the superblock's progress every this many steps (RECALC_WRITE_SUPER). */
const RECALC_WRITE_SUPER = 16;

export class IntegrityDevice implements BlockDevice {
  readonly caps: BlockDeviceCaps;
  readonly sizeBytes: number;
  /** dm-integrity's number_of_mismatches: reads that found a bad tag. */
  mismatches = 0;
  private readonly bs: number;
  private recalcDone: Promise<void> = Promise.resolve();
  private stopping = false;
  /** Reads share, writes and recalculation steps exclude (the kernel's range locks); the journal's in J mode. */
  private locks = new RangeLock();

  /** B mode: the dirty bitmap. */
  private bitmap: DirtyBitmap | undefined;
  /** J mode: the journal. */
  private journal: IntegrityJournal | undefined;

  private constructor(
    private readonly o: IntegrityOptions,
    private readonly sb: IntegritySuperblock,
    private readonly layout: MetaLayout,
  ) {
    this.name = o.name;
    this.bs = o.blockSize;
    this.sizeBytes = sb.providedDataSectors * SECTOR_BYTES;
    this.caps = { write: o.data.caps.write && o.meta.caps.write, flush: true, fua: o.data.caps.fua && o.meta.caps.fua, trim: false };
  }
  readonly name: string;

  /**
   * dm_integrity_ctr's superblock handling: an all-zero area is formatted
   * (with RECALCULATING when asked to recalculate); an existing superblock
   * must match the table; anything else is refused with the reason.
   */
  static async open(o: IntegrityOptions): Promise<IntegrityDevice> {
    const area = new Uint8Array(4096);
    await o.meta.read(0, area);
    const got = decodeSuperblock(area);
    const metaSectors = Math.floor(o.meta.sizeBytes / SECTOR_BYTES);
    let sb: IntegritySuperblock;
    let formatted = false;
    if (got.kind === "corrupt") throw new IoError(`${o.name}: integrity superblock on ${o.meta.name}: ${got.reason}`, "EINVAL");
    if (got.kind === "blank") {
      const f = formatSuperblock({
        dataDeviceSectors: Math.floor(o.data.sizeBytes / SECTOR_BYTES),
        metaDeviceSectors: metaSectors,
        tagSize: o.tagSize,
        blockSize: o.blockSize,
        mode: o.mode,
        recalculate: o.recalculate,
        ...(o.journalSectors !== undefined ? { journalSectors: o.journalSectors } : {}),
        ...(o.sectorsPerBit !== undefined ? { sectorsPerBit: o.sectorsPerBit } : {}),
      });
      if ("error" in f) throw new IoError(`${o.name}: cannot format integrity metadata on ${o.meta.name}: ${f.error}`, "EINVAL");
      sb = f.superblock;
      formatted = true;
    } else {
      sb = got.superblock;
      const bad = checkSuperblockAgainst(sb, { tagSize: o.tagSize, blockSize: o.blockSize, metaDev: true });
      if (bad) throw new IoError(`${o.name}: integrity superblock on ${o.meta.name}: ${bad}`, "EINVAL");
      if (sb.providedDataSectors * SECTOR_BYTES > o.data.sizeBytes) throw new IoError(`${o.name}: integrity superblock on ${o.meta.name} claims more data than ${o.data.name} holds`, "EINVAL");
      // `recalculate` on an initialised device restarts nothing; it only starts one not yet finished.
    }
    const layout = metaLayout(sb, metaSectors);
    if (!layout) throw new IoError(`${o.name}: the tag area does not fit on ${o.meta.name}`, "EINVAL");
    const dev = new IntegrityDevice(o, sb, layout);
    if (o.mode === "J") {
      // dm_integrity_ctr: a new superblock's journal is initialised before the superblock is written; an
      // existing journal is replayed (the committed sections the kernel or ulvm left are written out).
      dev.journal = await IntegrityJournal.acquire(o.meta.name, {
        meta: o.meta,
        data: o.data,
        geometry: layout.journal,
        sections: sb.journalSections,
        sectorsPerBlock: 1 << sb.log2SectorsPerBlock,
        tagSize: sb.tagSize,
        providedDataSectors: sb.providedDataSectors,
        tagAt: (block) => tagOffsetBytes(layout, sb.tagSize, block),
        fresh: formatted,
        ...(o.commitTimeMs !== undefined ? { commitTimeMs: o.commitTimeMs } : {}),
      }).catch((e: unknown) => {
        throw e instanceof IoError ? new IoError(`${o.name}: integrity journal on ${o.meta.name}: ${e.message}`, e.code) : e;
      });
      dev.locks = dev.journal.locks;
      if (formatted) await o.meta.write(0, encodeSuperblock(sb), { fua: true });
      if (sb.flags & SB_FLAG_RECALCULATING) dev.recalcDone = dev.recalculate();
      return dev;
    }
    if (formatted) await o.meta.write(0, encodeSuperblock(sb), { fua: true });
    // B mode: the dirty bitmap in the journal area (see dirty-bitmap.ts).
    const { bitmap, recovered } = await DirtyBitmap.acquire(o.meta.name, {
      meta: o.meta,
      dataSectors: sb.providedDataSectors,
      sectorsPerBit: (1 << sb.log2SectorsPerBlock) << sb.log2BlocksPerBitmapBit,
      fresh: got.kind === "blank",
      flushData: () => dev.flushBoth(),
      cleanDelayMs: o.bitmapFlushIntervalMs ?? DEFAULT_BITMAP_FLUSH_INTERVAL_MS,
    });
    dev.bitmap = bitmap;
    if (recovered) {
      // After a crash: data and tags may disagree where writes were under way; their tags are recomputed from the data.
      const dirty = bitmap.dirtyRanges();
      for (const [start, end] of dirty) await dev.retag(start * SECTOR_BYTES, Math.min(end * SECTOR_BYTES, dev.sizeBytes));
      if (dirty.length > 0) {
        await o.meta.flush();
        await bitmap.clearAll();
      }
    }
    if (sb.flags & SB_FLAG_RECALCULATING) dev.recalcDone = dev.recalculate();
    return dev;
  }

  /** dm-integrity's status: mismatches, provided data sectors, and the recalculation point (undefined when done). */
  status(): { mismatches: number; providedDataSectors: number; recalcSector: number | undefined } {
    return {
      mismatches: this.mismatches,
      providedDataSectors: this.sb.providedDataSectors,
      recalcSector: this.sb.flags & SB_FLAG_RECALCULATING ? this.sb.recalcSector : undefined,
    };
  }

  /** Resolves when the background recalculation (if any) has finished or stopped. */
  recalculated(): Promise<void> {
    return this.recalcDone;
  }

  private verifiedBelow(): number {
    return this.sb.flags & SB_FLAG_RECALCULATING ? this.sb.recalcSector * SECTOR_BYTES : this.sizeBytes;
  }

  async read(offsetBytes: number, into: Uint8Array, opts?: ReadOptions): Promise<void> {
    const start = offsetBytes - (offsetBytes % this.bs);
    const end = Math.ceil((offsetBytes + into.length) / this.bs) * this.bs;
    const aligned = start === offsetBytes && end === offsetBytes + into.length;
    const buf = aligned ? into : new Uint8Array(end - start);
    const unlock = await this.locks.acquire(start, end, false);
    let blocks: number;
    let tags: Buffer;
    let fromJournal: Set<number> | undefined;
    try {
      const verifyEnd = Math.min(end, this.verifiedBelow());
      blocks = Math.max(0, (verifyEnd - start) / this.bs);
      tags = Buffer.alloc(blocks * this.o.tagSize);
      await Promise.all([this.o.data.read(start, buf, opts), blocks ? this.o.meta.read(this.tagAt(start), tags) : undefined]);
      // J mode: blocks whose newest data is still in the journal are served from it (its tag was computed from it).
      if (this.journal?.anyPending(start / this.bs, (end - start) / this.bs)) {
        fromJournal = new Set();
        for (let b = 0; b < (end - start) / this.bs; b++)
          if (this.journal.readPending(start / this.bs + b, buf.subarray(b * this.bs, (b + 1) * this.bs))) fromJournal.add(b);
      }
    } finally {
      unlock();
    }
    // Every bad block of the read is named (the raid1 above reports and rewrites exactly those);
    // the counter, as the kernel's, counts the failed read once.
    let bad: number[] | undefined;
    if (blocks > 0) {
      const ts = this.o.tagSize;
      const run = buf.subarray(0, blocks * this.bs);
      const want = (await sharedTagThreads().tags(start / SECTOR_BYTES, run, this.bs, ts)) ?? crc32cTags(start / SECTOR_BYTES, run, this.bs, ts, Buffer.allocUnsafe(blocks * ts));
      // One compare for the whole run; block by block only when it differs somewhere.
      if (fromJournal !== undefined || !want.equals(tags)) {
        for (let i = 0; i < blocks; i++) {
          if (fromJournal?.has(i)) continue;
          if (want.compare(tags, i * ts, (i + 1) * ts, i * ts, (i + 1) * ts) !== 0) (bad ??= []).push((start + i * this.bs) / SECTOR_BYTES);
        }
      }
    }
    if (bad !== undefined) {
      this.mismatches++;
      throw new IntegrityMismatchError(this.name, bad, this.bs / SECTOR_BYTES);
    }
    if (!aligned) into.set(buf.subarray(offsetBytes - start, offsetBytes - start + into.length));
  }

  async write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    const start = offsetBytes - (offsetBytes % this.bs);
    const end = Math.ceil((offsetBytes + data.length) / this.bs) * this.bs;
    if (this.journal) {
      await this.journal.write(start, await this.wholeBlocks(offsetBytes, data, start, end), opts?.fua === true);
      return;
    }
    const bitmap = this.bitmap!;
    const whole = await this.wholeBlocks(offsetBytes, data, start, end);
    await bitmap.markDirty(start / SECTOR_BYTES, end / SECTOR_BYTES);
    await this.writeBlocks(whole, start, end, opts);
    // Only a write that succeeded lets its regions be cleaned: after a failed one data and tags may
    // disagree (one of the two was written), so the bit stays set and the next activation retags.
    bitmap.done(start / SECTOR_BYTES, end / SECTOR_BYTES);
  }

  /** The write as whole blocks: a partial block is read (and verified) and the new bytes put into it. */
  private async wholeBlocks(offsetBytes: number, data: Uint8Array, start: number, end: number): Promise<Uint8Array> {
    if (start === offsetBytes && end === offsetBytes + data.length) return data;
    const whole = new Uint8Array(end - start);
    await this.read(start, whole);
    whole.set(data, offsetBytes - start);
    return whole;
  }

  private async writeBlocks(whole: Uint8Array, start: number, end: number, opts: WriteOptions | undefined): Promise<void> {
    const unlock = await this.locks.acquire(start, end, true);
    try {
      const blocks = (end - start) / this.bs;
      const ts = this.o.tagSize;
      // Data and tags at once, as the kernel's bitmap mode: the region's bit is already durable, so
      // a crash between the two is retagged at activation, never a false mismatch. The data write
      // also overlaps the tags' computation when a tag thread does it.
      const threaded = sharedTagThreads().tags(start / SECTOR_BYTES, whole, this.bs, ts, true);
      const tagsWritten = (async () => {
        const tags = (await threaded) ?? crc32cTags(start / SECTOR_BYTES, whole, this.bs, ts, new Uint8Array(blocks * ts));
        await this.o.meta.write(this.tagAt(start), tags, opts);
      })();
      await settleAll([this.o.data.write(start, whole, opts), tagsWritten]);
    } finally {
      unlock();
    }
  }

  async flush(): Promise<void> {
    // J mode: what was written is durable once its journal commit is (the commit is written with FUA).
    if (this.journal) await this.journal.commit();
    else await this.flushBoth();
  }

  private async flushBoth(): Promise<void> {
    await Promise.all([this.o.data.flush(), this.o.meta.flush()]);
  }

  /**
   * Stop the recalculation (its progress is saved in the superblock) and
   * let go of the dirty bitmap (the last table using it flushes and cleans
   * it); the layer does not own data or meta.
   */
  async close(): Promise<void> {
    this.stopping = true;
    await this.recalcDone;
    await this.bitmap?.release();
    await this.journal?.release();
  }

  /** Recompute the tags of data bytes [start, end) from the data, a step at a time (crash recovery of dirty regions). */
  private async retag(start: number, end: number): Promise<void> {
    for (let at = start; at < end; at += RECALC_STEP_BYTES) {
      const stop = Math.min(end, at + RECALC_STEP_BYTES);
      const buf = new Uint8Array(stop - at);
      await this.o.data.read(at, buf);
      const tags = crc32cTags(at / SECTOR_BYTES, buf, this.bs, this.o.tagSize, new Uint8Array(((stop - at) / this.bs) * this.o.tagSize));
      await this.o.meta.write(this.tagAt(at), tags);
    }
  }

  private tagAt(byteOffset: number): number {
    return tagOffsetBytes(this.layout, this.o.tagSize, byteOffset / this.bs);
  }

  /**
   * integrity_recalc: walk from recalc_sector to the end, computing the tags
   * of whatever the data holds, saving progress in the superblock every few
   * steps and clearing RECALCULATING at the end. Client writes overlapping
   * the step in progress wait for it, and the step waits for them.
   */
  private async recalculate(): Promise<void> {
    let steps = 0;
    while (!this.stopping && this.sb.recalcSector * SECTOR_BYTES < this.sizeBytes) {
      const start = this.sb.recalcSector * SECTOR_BYTES;
      const end = Math.min(this.sizeBytes, start + RECALC_STEP_BYTES);
      const unlock = await this.locks.acquire(start, end, true);
      try {
        await this.retag(start, end);
        this.sb.recalcSector = end / SECTOR_BYTES;
      } finally {
        unlock();
      }
      if (++steps % RECALC_WRITE_SUPER === 0) await this.writeSuperblock();
    }
    if (this.sb.recalcSector * SECTOR_BYTES >= this.sizeBytes) {
      this.sb.flags &= ~SB_FLAG_RECALCULATING;
      this.sb.version = superblockVersion(this.sb.flags, this.o.mode, true);
    }
    await this.writeSuperblock();
  }

  private async writeSuperblock(): Promise<void> {
    // The tags written so far must be durable before the superblock says they exist.
    await this.o.meta.flush();
    await this.o.meta.write(0, encodeSuperblock(this.sb), { fua: true });
  }
}

/** Every promise settled; then the first rejection, if any (no write still running when the caller goes on). */
async function settleAll(ps: readonly Promise<void>[]): Promise<void> {
  const r = await Promise.allSettled(ps);
  for (const x of r) if (x.status === "rejected") throw x.reason;
}
