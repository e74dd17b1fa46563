import type { LogHealth } from "../status.js";
import type { DeviceUse } from "../target.js";
import type { SyncMode } from "./dirty-log.js";
import { CoreDirtyLog } from "./core-log.js";
import { clearBit, setBit, testBit } from "./bitset.js";
import { IoError } from "../../errors/errors.js";
import { SECTOR_BYTES } from "../../base/bytes.js";
import { MAX_SECTOR, type DmRaidSuperblock } from "../raid/dm-raid-superblock.js";
import {
  BITMAP_PAGE_BYTES,
  BITMAP_STALE,
  BITMAP_SUPERBLOCK_BYTES,
  RMETA_BITMAP_OFFSET_BYTES,
  bitmapPageCount,
  bitmapPageWriteBytes,
  newMdBitmapSuperblock,
  rmetaBytesNeeded,
  writeMdBitmapSuperblock,
  type MdBitmapSuperblock,
} from "../raid/md-bitmap-format.js";
import {
  freshestRmeta,
  loadRmeta,
  writeDmRaidSuperblocks,
  type Rmeta,
  type RmetaLoad,
  type WriteSuperblocksOptions,
  type WriteSuperblocksResult,
} from "../raid/rmeta-io.js";

export interface MdBitmapLogOptions {
  readonly regionSectors: number;
  /** Sectors the bitmap covers (sync_size: the data image size for raid1). */
  readonly dataSectors: number;
  readonly syncMode: SyncMode;
  /** One per leg, in slot order; undefined = no rmeta (`- -`). */
  readonly rmetas: readonly (Rmeta | undefined)[];
  /** An rmeta could not be read, was invalid, or failed a write: the log no longer uses it. */
  readonly onFailure: (slot: number, errno: string) => void;
  /** write_behind recorded in the bitmap superblock (dm-raid stores max_write_behind / 2). */
  readonly writeBehind?: number;
  readonly logicalBlockBytes?: number;
}

/** Per slot: is the log still writing this rmeta? */
export type RmetaState = "live" | "failed" | "absent";

/** Why resume() decided what it did, for status and tests. */
export type BitmapLoadOutcome =
  | "bitmap" // regions follow the on-disk bits
  | "fresh" // every rmeta new: full sync
  | "stale" // STALE flag or bitmap events behind the superblocks: full sync
  | "no-bitmap" // no readable, valid bitmap: full sync
  | "sync" // loaded `sync`: full sync
  | "nosync"; // loaded `nosync`: all in sync

/**
 * The raid1 region log: md's write-intent bitmap, one copy in every leg's
 * rmeta (reference §3), behind the mirror core's DirtyLog interface.
 *
 * md bit set = "writes may be in flight / legs may differ" = DirtyLog's
 * !clean. The bitmap "file" (superblock + bits) is kept in memory exactly as
 * on disk; a change marks its 4 KiB page, and flush() writes only the
 * changed pages, to every live rmeta.
 *
 * Durability: a newly set bit must be on stable storage on every live rmeta
 * before the mirror writes the region (md_bitmap_unplug writes dirty pages
 * synchronously before the data), so pages carrying set bits are written
 * with FUA (or write + flush). Cleared bits ride along with the next write,
 * or a write without FUA: losing one only causes an extra resync.
 *
 * Failure: an rmeta that fails a read or write is dropped (reported once
 * through onFailure); the log stays persistent while one rmeta is live.
 * With none left, health is "D", persistent false and marks no longer hold
 * writes back, as DiskDirtyLog does.
 */
export class MdBitmapDirtyLog extends CoreDirtyLog {
  override readonly type = "bitmap" as const;
  private readonly file: Uint8Array;
  private readonly pageCount: number;
  private readonly states: RmetaState[];
  private loads: RmetaLoad[] = [];
  private freshest: number | undefined;
  private outcome: BitmapLoadOutcome = "no-bitmap";
  private events = 0n;
  private bitmapSb: MdBitmapSuperblock;
  private readonly changedPages = new Set<number>();
  private gen = 0;
  private dirtyGen = 0;
  private durableGen = 0;
  /** Gen at which each region's md bit was last set (0 = set before resume's write). */
  private readonly markGen: Float64Array;
  private inflight: Promise<void> | undefined;
  /** Page writes issued to one rmeta each (for tests). */
  pageWritesIssued = 0;

  constructor(private readonly o: MdBitmapLogOptions) {
    const regionCount = Math.ceil(o.dataSectors / o.regionSectors);
    super(o.regionSectors, regionCount, o.syncMode);
    this.file = new Uint8Array(rmetaBytesNeeded(regionCount, o.logicalBlockBytes ?? 512) - RMETA_BITMAP_OFFSET_BYTES);
    this.pageCount = bitmapPageCount(regionCount);
    this.states = o.rmetas.map((r) => (r === undefined ? "absent" : "live"));
    this.markGen = new Float64Array(regionCount);
    this.bitmapSb = newMdBitmapSuperblock({
      syncSectors: BigInt(o.dataSectors),
      chunkBytes: o.regionSectors * SECTOR_BYTES,
      eventCount: 0n,
      writeBehind: o.writeBehind ?? 0,
    });
  }

  /** Rmeta bytes this log reads and writes (from 0: dm-raid sb area + bitmap). */
  static rmetaBytes(regionCount: number, logicalBlockBytes = 512): number {
    return rmetaBytesNeeded(regionCount, logicalBlockBytes);
  }

  override get persistent(): boolean {
    return this.states.includes("live");
  }

  override get health(): LogHealth {
    return this.persistent ? "A" : "D";
  }

  override get deviceName(): string | undefined {
    return this.o.rmetas.find((r) => r !== undefined)?.name;
  }

  /** What each rmeta held at resume(). */
  get rmetaLoads(): readonly RmetaLoad[] {
    return this.loads;
  }

  get rmetaStates(): readonly RmetaState[] {
    return this.states;
  }

  /** Slot of the superblock with the highest events at resume(), if any was valid. */
  get freshestSlot(): number | undefined {
    return this.freshest;
  }

  get loadOutcome(): BitmapLoadOutcome {
    return this.outcome;
  }

  /** The set's event counter (the highest seen, raised by commitSuperblocks). */
  get eventCount(): bigint {
    return this.events;
  }

  /**
   * Stop writing this slot's rmeta, without reporting it: its leg failed,
   * and md writes neither superblock nor bitmap to a Faulty device. The
   * freshest superblock then carries the leg's failed bit.
   */
  retireSlot(slot: number): void {
    if (this.states[slot] === "live") this.states[slot] = "failed";
  }

  private failSlot(slot: number, errno: string): void {
    if (this.states[slot] !== "live") return;
    this.states[slot] = "failed";
    this.o.onFailure(slot, errno);
  }

  private pageOf(region: number): number {
    return Math.floor((BITMAP_SUPERBLOCK_BYTES + (region >>> 3)) / BITMAP_PAGE_BYTES);
  }

  private get mdBits(): Uint8Array {
    return this.file.subarray(BITMAP_SUPERBLOCK_BYTES);
  }

  /**
   * Read every rmeta, pick the freshest superblock, load the bitmap and
   * write it back (whole) to every live rmeta. Never throws.
   *
   * Full sync (every region dirty and out of sync) when: loaded `sync`; no
   * rmeta holds a valid superblock (a fresh set, as the kernel's
   * MD_ARRAY_FIRST_USE with recovery_cp 0); no valid bitmap matching our
   * region size and data size; the bitmap is STALE; or its events are
   * below the freshest superblock's (md_bitmap_read_sb "forcing full
   * recovery"). `nosync` declares everything in sync and clean.
   *
   * Otherwise a set bit is out of sync and dirty. Reference §3 "Load"/§8:
   * whether the kernel resyncs dirty bits below recovery_cp after a dm-raid
   * crash is unconfirmed; we take the safe side and resync every set bit,
   * plus every region from array_resync_offset on when the initial sync
   * had not finished.
   */
  override async resume(): Promise<void> {
    this.loads = await Promise.all(this.o.rmetas.map((r) => loadRmeta(r)));
    this.loads.forEach((l, i) => {
      // POLICY: an rmeta we cannot read or do not understand is not
      // overwritten; its leg is for the target (and the user) to judge.
      if (l.kind === "unreadable") this.failSlot(i, l.errno);
      else if (l.kind === "invalid") this.failSlot(i, "EINVAL");
    });
    this.freshest = freshestRmeta(this.loads);
    const winner = this.freshest === undefined ? undefined : this.loads[this.freshest];
    const sbEvents = winner?.kind === "valid" ? winner.superblock.eventCount : 0n;

    const source = await this.readBestBitmap();
    this.events = source !== undefined && source.sb.eventCount > sbEvents ? source.sb.eventCount : sbEvents;

    let outcome: BitmapLoadOutcome;
    if (this.syncMode === "nosync") outcome = "nosync";
    else if (this.syncMode === "sync") outcome = "sync";
    else if (winner === undefined) outcome = "fresh";
    else if (source === undefined) outcome = "no-bitmap";
    else if ((source.sb.state & BITMAP_STALE) !== 0 || source.sb.eventCount < sbEvents) outcome = "stale";
    else outcome = "bitmap";
    this.outcome = outcome;

    const bits = this.mdBits;
    if (outcome === "bitmap") {
      bits.set(source!.bits.subarray(0, bits.length));
      // The LV was resized (lvextend / lvreduce of every image): the bits of the
      // regions both sizes share still hold; a region that was past the old
      // end, or held its last partial chunk, has never been synced (md
      // resyncs the grown part from the old size on).
      const oldSectors = source!.sb.syncSectors;
      if (oldSectors < BigInt(this.o.dataSectors)) {
        for (let r = Number(oldSectors / BigInt(this.regionSectors)); r < this.regionCount; r++) setBit(bits, r);
      }
      const resyncFrom = winner?.kind === "valid" ? winner.superblock.arrayResyncOffsetSectors : MAX_SECTOR;
      if (resyncFrom !== MAX_SECTOR) {
        const first = Number(resyncFrom / BigInt(this.regionSectors));
        for (let r = first; r < this.regionCount; r++) setBit(bits, r);
      }
    } else if (outcome === "nosync") {
      bits.fill(0);
    } else {
      // As md_bitmap_new_disk_sb / a stale bitmap: every page 0xFF, the
      // padding bits past the last region included.
      bits.fill(0xff);
    }
    for (let r = 0; r < this.regionCount; r++) {
      if (testBit(bits, r)) clearBit(this.cleanBits, r);
      else setBit(this.cleanBits, r);
    }
    this.clearTail(this.cleanBits);
    this.syncBits.set(this.cleanBits);
    this.recount();
    this.markGen.fill(0);

    // The STALE flag is cleared once the bits say "everything dirty":
    // a crash before the resync finishes finds them still set.
    this.bitmapSb = {
      ...(source?.sb ?? this.bitmapSb),
      eventCount: this.events,
      eventsClearedCount: source !== undefined && outcome === "bitmap" ? source.sb.eventsClearedCount : this.events,
      syncSectors: BigInt(this.o.dataSectors),
      chunkBytes: this.regionSectors * SECTOR_BYTES,
      state: (source?.sb.state ?? 0) & ~BITMAP_STALE,
    };
    writeMdBitmapSuperblock(this.file, this.bitmapSb);
    for (let p = 0; p < this.pageCount; p++) this.changedPages.add(p);
    this.gen++;
    this.dirtyGen = this.gen;
    await this.flush();
  }

  /**
   * The bitmap to trust: among slots with a valid superblock and a valid
   * bitmap of our geometry, the one with the highest bitmap events (all
   * live copies are written alike; the kernel reads the first in-sync leg).
   */
  private async readBestBitmap(): Promise<{ sb: MdBitmapSuperblock; bits: Uint8Array } | undefined> {
    const candidates = this.loads
      .map((l, i) => ({ l, i }))
      .filter(
        (c): c is { l: Extract<RmetaLoad, { kind: "valid" }>; i: number } =>
          c.l.kind === "valid" &&
          c.l.bitmap !== undefined &&
          c.l.bitmap.chunkBytes === this.regionSectors * SECTOR_BYTES &&
          this.states[c.i] === "live",
      )
      .sort((a, b) => (a.l.bitmap!.eventCount > b.l.bitmap!.eventCount ? -1 : a.l.bitmap!.eventCount < b.l.bitmap!.eventCount ? 1 : a.i - b.i));
    for (const c of candidates) {
      const bits = new Uint8Array(this.file.length - BITMAP_SUPERBLOCK_BYTES);
      try {
        await this.o.rmetas[c.i]!.dev.read(RMETA_BITMAP_OFFSET_BYTES + BITMAP_SUPERBLOCK_BYTES, bits);
        return { sb: c.l.bitmap!, bits };
      } catch (e) {
        if (!(e instanceof IoError)) throw e;
        this.failSlot(c.i, e.errno);
      }
    }
    return undefined;
  }

  override markDirty(region: number): void {
    clearBit(this.cleanBits, region);
    const bits = this.mdBits;
    if (testBit(bits, region)) return; // already set: durable with the write that set it
    setBit(bits, region);
    this.changedPages.add(this.pageOf(region));
    this.gen++;
    this.dirtyGen = this.gen;
    this.markGen[region] = this.gen;
  }

  override isMarkDurable(region: number): boolean {
    return this.markGen[region]! <= this.durableGen || !this.persistent;
  }

  override markClean(region: number): void {
    setBit(this.cleanBits, region);
    const bits = this.mdBits;
    if (!testBit(bits, region)) return;
    clearBit(bits, region);
    this.changedPages.add(this.pageOf(region));
    this.gen++;
  }

  override markAllOutOfSync(): void {
    super.markAllOutOfSync();
    this.mdBits.fill(0xff);
    for (let p = 0; p < this.pageCount; p++) this.changedPages.add(p);
    this.gen++;
    this.dirtyGen = this.gen;
    this.markGen.fill(this.gen);
  }

  /** Make every change made before this call reach every live rmeta; concurrent callers coalesce. */
  override async flush(): Promise<void> {
    const want = this.gen;
    while (this.persistent && this.durableGen < want) {
      if (this.inflight === undefined) {
        this.inflight = this.writeOnce().finally(() => {
          this.inflight = undefined;
        });
      }
      await this.inflight;
    }
  }

  private async writeOnce(): Promise<void> {
    const snap = this.gen;
    const needsDurable = this.dirtyGen > this.durableGen;
    const pages = [...this.changedPages].sort((a, b) => a - b);
    this.changedPages.clear();
    const lbs = this.o.logicalBlockBytes ?? 512;
    const copies = pages.map((p) => ({
      offsetBytes: RMETA_BITMAP_OFFSET_BYTES + p * BITMAP_PAGE_BYTES,
      data: this.file.slice(p * BITMAP_PAGE_BYTES, p * BITMAP_PAGE_BYTES + bitmapPageWriteBytes(this.regionCount, p, lbs)),
    }));
    await Promise.all(
      this.o.rmetas.map(async (r, slot) => {
        if (r === undefined || this.states[slot] !== "live") return;
        try {
          for (const c of copies) {
            this.pageWritesIssued++;
            if (needsDurable && r.dev.caps.fua) await r.dev.write(c.offsetBytes, c.data, { fua: true });
            else await r.dev.write(c.offsetBytes, c.data);
          }
          if (needsDurable && !r.dev.caps.fua) await r.dev.flush();
        } catch (e) {
          if (!(e instanceof IoError)) throw e;
          this.failSlot(slot, e.errno);
        }
      }),
    );
    // Only rmetas that took every page stay live, so they all hold `snap`.
    if (this.persistent) this.durableGen = snap;
  }

  /**
   * Raise the set's events by one: the bitmap superblock first (md_update_sb
   * writes it before the array superblocks, so a crash in between leaves
   * bitmap events >= superblock events: not stale), then every live rmeta's
   * dm-raid superblock from `template` (its eventCount is replaced by ours).
   * Slots the log no longer writes get their failed bit. Write errors fail
   * the slot (onFailure) and are also returned.
   */
  async commitSuperblocks(template: DmRaidSuperblock, opts: WriteSuperblocksOptions = {}): Promise<WriteSuperblocksResult> {
    const next = this.events + 1n;
    const allLive = this.states.every((s) => s === "live");
    this.bitmapSb = { ...this.bitmapSb, eventCount: next, ...(allLive ? { eventsClearedCount: next } : {}) };
    writeMdBitmapSuperblock(this.file, this.bitmapSb);
    this.changedPages.add(0);
    this.gen++;
    this.dirtyGen = this.gen;
    await this.flush();
    const live = this.o.rmetas.map((r, i) => (this.states[i] === "live" ? r : undefined));
    const result = await writeDmRaidSuperblocks(live, { ...template, eventCount: this.events }, {
      ...opts,
      blockBytes: opts.blockBytes ?? this.o.logicalBlockBytes ?? 512,
    });
    this.events = result.eventCount;
    result.errors.forEach((e, i) => {
      if (e !== undefined) this.failSlot(i, e.errno);
    });
    return result;
  }

  /** The part of the dm-raid table this log stands for: sync mode and region size. */
  override tableArgs(): string[] {
    return [...this.syncArgs(), "region_size", String(this.regionSectors)];
  }

  override devices(): readonly DeviceUse[] {
    const lengthSectors = rmetaBytesNeeded(this.regionCount, this.o.logicalBlockBytes ?? 512) / SECTOR_BYTES;
    return this.o.rmetas.flatMap((r) => (r === undefined ? [] : [{ name: r.name, offsetSectors: 0, lengthSectors, role: "log" as const }]));
  }
}
