import type { BlockDevice } from "../../blockdev/block-device.js";
import { BITMAP_BLOCK_SIZE, SB_SECTORS, SECTOR_BYTES } from "./integrity-format.js";

/**
 * dm-integrity's bitmap mode dirty bitmap, where the kernel keeps it: in the
 * journal area of the metadata device (from sector 8), one bit per
 * `sectorsPerBit` data sectors, bit n at byte n/8, bit n%8 (the kernel's
 * little-endian bitmap words), written in 4 KiB blocks with FUA.
 *
 * Crash consistency without a journal: before data and tags of a region are
 * written, its bit is set on disk (markDirty waits for that write); once the
 * region has been idle for a while and data and tags were flushed, the bit
 * is cleared again (lazily, clean()). After a crash, the regions whose bits
 * are set are the only ones where a data block and its tag may disagree:
 * the activation recomputes their tags from the data (dirtyRanges), so a
 * crash never shows up as a false mismatch (and rot that happened in such a
 * region meanwhile goes undetected, as with the kernel's bitmap mode).
 */
/** Bitmaps in use, by metadata device name (see acquire). */
const OPEN = new Map<string, DirtyBitmap>();

export class DirtyBitmap {
  private readonly bits: Uint8Array;
  private readonly inflight: Uint32Array;
  /** Bits written to since the current clean() started: not cleared by it. */
  private readonly touched: Uint8Array;
  private lastWrite: Promise<void> = Promise.resolve();
  private cleanTimer: NodeJS.Timeout | undefined;
  private cleaning: Promise<void> | undefined;
  private closed = false;

  private users = 1;

  private constructor(
    private meta: BlockDevice,
    readonly sectorsPerBit: number,
    readonly nBits: number,
    private flushData: () => Promise<void>,
    private readonly cleanDelayMs: number,
    bits: Uint8Array,
  ) {
    this.bits = bits;
    this.inflight = new Uint32Array(nBits);
    this.touched = new Uint8Array(nBits);
  }

  /** Bytes the bitmap takes on disk (whole 4 KiB blocks). */
  static diskBytes(nBits: number): number {
    return Math.ceil(nBits / (BITMAP_BLOCK_SIZE * 8)) * BITMAP_BLOCK_SIZE;
  }

  /**
   * The bitmap of the metadata device `key` for a new table. A reload
   * opens the new table before the old one goes: both share one bitmap
   * (the newest table's devices write it), so the old one's cleaning can
   * never clear a bit the new one set. `recovered` says whether it came
   * from disk (the caller then recomputes the tags of its dirty ranges).
   */
  static async acquire(
    key: string,
    o: Parameters<typeof DirtyBitmap.open>[0],
  ): Promise<{ bitmap: DirtyBitmap; recovered: boolean }> {
    const live = OPEN.get(key);
    if (live !== undefined && !o.fresh && live.sectorsPerBit === o.sectorsPerBit && live.nBits === Math.ceil(o.dataSectors / o.sectorsPerBit)) {
      live.users++;
      live.meta = o.meta;
      live.flushData = o.flushData;
      return { bitmap: live, recovered: false };
    }
    const bitmap = await DirtyBitmap.open(o);
    OPEN.set(key, bitmap);
    bitmap.key = key;
    return { bitmap, recovered: !o.fresh };
  }

  private key: string | undefined;

  /** What a crash does to this process's bitmaps: they are gone, what is on disk stays (tests). */
  static forgetAll(): void {
    for (const b of OPEN.values()) {
      b.closed = true;
      if (b.cleanTimer) clearTimeout(b.cleanTimer);
    }
    OPEN.clear();
  }

  /** A table using the bitmap goes; the last one cleans it (everything flushed, bits cleared). */
  async release(): Promise<void> {
    if (--this.users > 0) return;
    if (this.key !== undefined && OPEN.get(this.key) === this) OPEN.delete(this.key);
    await this.close();
  }

  /** The bitmap as on disk (`fresh`: a newly formatted device, written all clean instead). */
  static async open(o: {
    meta: BlockDevice;
    dataSectors: number;
    sectorsPerBit: number;
    fresh: boolean;
    flushData: () => Promise<void>;
    cleanDelayMs: number;
  }): Promise<DirtyBitmap> {
    const nBits = Math.ceil(o.dataSectors / o.sectorsPerBit);
    const bits = new Uint8Array(DirtyBitmap.diskBytes(nBits));
    if (o.fresh) await o.meta.write(SB_SECTORS * SECTOR_BYTES, bits, { fua: true });
    else await o.meta.read(SB_SECTORS * SECTOR_BYTES, bits);
    // Bits past the end mean nothing.
    for (let b = nBits; b < bits.length * 8; b++) bits[b >> 3]! &= ~(1 << (b & 7));
    return new DirtyBitmap(o.meta, o.sectorsPerBit, nBits, o.flushData, o.cleanDelayMs, bits);
  }

  private isSet(b: number): boolean {
    return (this.bits[b >> 3]! & (1 << (b & 7))) !== 0;
  }

  /** Data sector ranges [start, end) whose bits are set (after a crash: tags to recompute). */
  dirtyRanges(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let b = 0; b < this.nBits; b++) {
      if (!this.isSet(b)) continue;
      const start = b * this.sectorsPerBit;
      const last = out[out.length - 1];
      if (last && last[1] === start) last[1] = start + this.sectorsPerBit;
      else out.push([start, start + this.sectorsPerBit]);
    }
    return out;
  }

  /** Everything recomputed: all bits clear, on disk. */
  async clearAll(): Promise<void> {
    this.bits.fill(0);
    await this.writeAll();
  }

  /** Before writing data sectors [start, end): their bits are set on disk when this resolves. Pair with done(). */
  async markDirty(start: number, end: number): Promise<void> {
    const first = Math.floor(start / this.sectorsPerBit);
    const last = Math.floor((end - 1) / this.sectorsPerBit);
    let changed = false;
    for (let b = first; b <= last; b++) {
      this.inflight[b]!++;
      this.touched[b] = 1;
      if (!this.isSet(b)) {
        this.bits[b >> 3]! |= 1 << (b & 7);
        changed = true;
      }
    }
    // Set already in memory: the write that persists it may still be under way, so wait for the last one.
    if (changed) await this.writeBlocks(first, last);
    else await this.lastWrite;
  }

  /** The write of [start, end) ended (either way): its regions may be cleaned later. */
  done(start: number, end: number): void {
    const first = Math.floor(start / this.sectorsPerBit);
    const last = Math.floor((end - 1) / this.sectorsPerBit);
    for (let b = first; b <= last; b++) this.inflight[b]!--;
    if (this.cleanTimer === undefined && !this.closed) {
      this.cleanTimer = setTimeout(() => {
        this.cleanTimer = undefined;
        void this.clean().catch(() => undefined);
      }, this.cleanDelayMs);
      this.cleanTimer.unref();
    }
  }

  /**
   * Clear the bits of regions idle since before a flush: flush data and
   * tags first, then clear only bits no write touched meanwhile.
   */
  async clean(): Promise<void> {
    if (this.cleaning) return this.cleaning;
    this.cleaning = (async () => {
      this.touched.fill(0);
      await this.flushData();
      let first = -1;
      let last = -1;
      for (let b = 0; b < this.nBits; b++) {
        if (!this.isSet(b) || this.inflight[b]! > 0 || this.touched[b]) continue;
        this.bits[b >> 3]! &= ~(1 << (b & 7));
        if (first < 0) first = b;
        last = b;
      }
      if (first >= 0) await this.writeBlocks(first, last);
    })().finally(() => (this.cleaning = undefined));
    return this.cleaning;
  }

  /** Clean shutdown (no writes in flight): everything flushed, every bit cleared. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.cleanTimer) clearTimeout(this.cleanTimer);
    this.cleanTimer = undefined;
    await this.cleaning;
    await this.clean();
  }

  /** Write the bitmap blocks holding bits first..last, after the previous bitmap write, with what memory holds then. */
  private writeBlocks(first: number, last: number): Promise<void> {
    const bitsPerBlock = BITMAP_BLOCK_SIZE * 8;
    const from = Math.floor(first / bitsPerBlock) * BITMAP_BLOCK_SIZE;
    const to = (Math.floor(last / bitsPerBlock) + 1) * BITMAP_BLOCK_SIZE;
    const next = this.lastWrite.catch(() => undefined).then(() => this.meta.write(SB_SECTORS * SECTOR_BYTES + from, this.bits.slice(from, to), { fua: true }));
    this.lastWrite = next;
    return next;
  }

  private writeAll(): Promise<void> {
    return this.nBits > 0 ? this.writeBlocks(0, this.nBits - 1) : Promise.resolve();
  }
}
