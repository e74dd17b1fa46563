import type { BlockDevice } from "../../blockdev/block-device.js";
import { isAllZero } from "../../base/bytes.js";
import { IoError } from "../../errors/errors.js";
import { SB_SECTORS, SECTOR_BYTES, crc32cTag, crc32cTags, type JournalGeometry } from "./integrity-format.js";
import { JournalImage, nextCommitSeq, planReplay } from "./journal-format.js";
import { RangeLock } from "./range-lock.js";

/**
 * dm-integrity's journal mode (J), in the kernel's on-disk format
 * (journal-format.ts), so that a journal the kernel left is replayed here
 * and one ulvm leaves is replayed by the kernel.
 *
 * A write is copied into the in-memory journal (data, last bytes, tag,
 * sector) and acknowledged, as the kernel does; a FUA write or a flush waits
 * for the commit that writes those sections, stamped with commit ids, with
 * FUA (integrity_commit). A commit also happens when a section fills, after
 * `commit_time` (autocommit) and at close. Reads of blocks still in the
 * journal are served from it (the kernel's journal tree). Committed sections
 * are then copied to the data device and their tags to the tag area, in
 * journal order, under the range lock, and both devices flushed before the
 * sections are reused (integrity_writer, do_journal_write). Unlike the
 * kernel, which copies only past the journal_watermark, ulvm copies right
 * after each commit: the data area stays current and the journal short.
 *
 * At open the journal is read and replayed as replay_journal does: the
 * committed sections (by commit id and sequence) are written to their places,
 * a torn section stops the replay, then the journal continues or is cleared.
 *
 * Shared by the tables of one metadata device across a reload (acquire), as
 * the dirty bitmap is: the new table's open must not replay a journal the
 * old one is still writing.
 */
const OPEN = new Map<string, IntegrityJournal>();

/** dm-integrity's DEFAULT_SYNC_MSEC (commit_time). */
export const DEFAULT_COMMIT_TIME_MS = 10_000;
/** dm-integrity's DEFAULT_JOURNAL_WATERMARK (percent of the journal in use that starts a commit). */
const DEFAULT_JOURNAL_WATERMARK = 50;
/** Bytes per I/O when reading or initialising the journal area. */
const CHUNK_BYTES = 4 << 20;

export interface JournalOptions {
  meta: BlockDevice;
  data: BlockDevice;
  geometry: JournalGeometry;
  sections: number;
  sectorsPerBlock: number;
  tagSize: number;
  providedDataSectors: number;
  /** Byte offset on the metadata device of a block's tag. */
  tagAt: (block: number) => number;
  /** The superblock was just written: the journal is initialised, not read. */
  fresh: boolean;
  commitTimeMs?: number;
}

export class IntegrityJournal {
  /** Range locks shared by every table using this journal (reads vs. copies to the data device). */
  readonly locks = new RangeLock();
  private readonly img: JournalImage;
  private readonly bs: number;
  private readonly entries: number;
  /** Blocks whose newest data is in the journal: block → global entry index. */
  private readonly pending = new Map<number, number>();
  private freeSection = 0;
  private freeEntry = 0;
  private freeEntries: number;
  private uncommittedSection = 0;
  private nUncommitted = 0;
  private committedSection = 0;
  private nCommitted = 0;
  private commitSeq = 0;
  private wroteToJournal = false;
  private commitChain: Promise<void> = Promise.resolve();
  private writerChain: Promise<void> = Promise.resolve();
  private autocommit: NodeJS.Timeout | undefined;
  private spaceWaiters: (() => void)[] = [];
  private failed: Error | undefined;
  private users = 1;
  private key: string | undefined;

  private constructor(private o: JournalOptions) {
    this.img = new JournalImage(o.geometry, o.sections, o.sectorsPerBlock, o.tagSize);
    this.bs = o.sectorsPerBlock * SECTOR_BYTES;
    this.entries = o.sections * o.geometry.sectionEntries;
    this.freeEntries = this.entries;
    this.threshold = Math.floor((this.entries * (100 - DEFAULT_JOURNAL_WATERMARK) + 50) / 100);
  }
  /** free_sectors_threshold: free entries at or below which a commit starts. */
  private readonly threshold: number;

  /** The journal of metadata device `key` for a new table: the live one after a reload, else read and replayed. */
  static async acquire(key: string, o: JournalOptions): Promise<IntegrityJournal> {
    const live = OPEN.get(key);
    if (live !== undefined && !o.fresh && live.o.sections === o.sections && live.o.geometry.sectionSectors === o.geometry.sectionSectors) {
      live.users++;
      live.o = { ...live.o, meta: o.meta, data: o.data };
      return live;
    }
    const j = await IntegrityJournal.open(o);
    OPEN.set(key, j);
    j.key = key;
    return j;
  }

  /** What a crash does to this process's journals: gone from memory, what is on disk stays (tests). */
  static forgetAll(): void {
    for (const j of OPEN.values()) {
      if (j.autocommit) clearTimeout(j.autocommit);
      j.failed = new IoError("the journal was forgotten (simulated crash)", "EIO");
    }
    OPEN.clear();
  }

  /** Read (or initialise) the journal and replay what was committed. */
  static async open(o: JournalOptions): Promise<IntegrityJournal> {
    const j = new IntegrityJournal(o);
    if (o.fresh) {
      // dm_integrity_ctr after formatting: init_journal(0, all, seq 0), then replay of the in-memory journal.
      j.img.initSections(0, o.sections, 0);
      await j.writeSections(0, o.sections);
    } else {
      await j.readAll();
      if (isAllZero(j.img.bytes)) {
        // A journal area never written as a journal (ulvm before its journal, or a format interrupted before
        // init_journal): nothing to replay; start as the kernel's ctr does after formatting.
        j.img.initSections(0, o.sections, 0);
        await j.writeSections(0, o.sections);
      }
    }
    await j.replay();
    return j;
  }

  /** The number of blocks replayed by the last open (tests, logs). */
  replayed = 0;

  private async readAll(): Promise<void> {
    const b = this.img.bytes;
    for (let at = 0; at < b.length; at += CHUNK_BYTES) await this.o.meta.read(SB_SECTORS * SECTOR_BYTES + at, b.subarray(at, Math.min(b.length, at + CHUNK_BYTES)));
  }

  /** Write sections [start, start+count) (wrapping) of the image to the metadata device with FUA (write_journal). */
  private async writeSections(start: number, count: number): Promise<void> {
    const runs: [number, number][] = start + count <= this.o.sections ? [[start, count]] : [[start, this.o.sections - start], [0, start + count - this.o.sections]];
    for (const [s, n] of runs) {
      const from = s * this.img.sectionBytes;
      const to = (s + n) * this.img.sectionBytes;
      for (let at = from; at < to; at += CHUNK_BYTES) {
        const end = Math.min(to, at + CHUNK_BYTES);
        await this.o.meta.write(SB_SECTORS * SECTOR_BYTES + at, this.img.bytes.slice(at, end), { fua: true });
      }
    }
  }

  /** replay_journal: write the committed sections to their places, then continue or clear the journal. */
  private async replay(): Promise<void> {
    const plan = planReplay(this.img);
    if (plan.kind === "invalid") throw new IoError(`journal commit id not valid at section ${plan.section} sector ${plan.sector}`, "EIO");
    if (!plan.empty && plan.sections > 0) {
      this.replayed = await this.copyOut(plan.start, plan.sections, true);
      await this.flushBoth();
    }
    if ("section" in plan.continueAt) {
      this.freeSection = this.uncommittedSection = this.committedSection = plan.continueAt.section;
      this.commitSeq = plan.continueAt.commitSeq;
    } else {
      const seq = plan.continueAt.eraseSeq;
      this.img.initSections(plan.start, this.o.sections, seq);
      // Section `start` first: a crash while clearing leaves a journal the next replay reads as cleared.
      await this.writeSections(plan.start, 1);
      if (this.o.sections > 1) await this.writeSections((plan.start + 1) % this.o.sections, this.o.sections - 1);
      this.freeSection = this.uncommittedSection = this.committedSection = 0;
      this.commitSeq = nextCommitSeq(seq);
    }
  }

  /** The block's newest data if it is still in the journal (into `into`), else false. */
  readPending(block: number, into: Uint8Array): boolean {
    const pos = this.pending.get(block);
    if (pos === undefined) return false;
    this.img.getBlock(Math.floor(pos / this.o.geometry.sectionEntries), pos % this.o.geometry.sectionEntries, into);
    return true;
  }

  /** Any block of [first, first+count) still in the journal. */
  anyPending(first: number, count: number): boolean {
    if (this.pending.size === 0) return false;
    for (let b = first; b < first + count; b++) if (this.pending.has(b)) return true;
    return false;
  }

  /**
   * Journal whole blocks `data` starting at byte `start`; with `fua`, return
   * once the commit holding them is on disk.
   */
  async write(start: number, data: Uint8Array, fua: boolean): Promise<void> {
    if (this.failed) throw this.failed;
    const E = this.o.geometry.sectionEntries;
    let done = 0;
    const total = data.length / this.bs;
    while (done < total) {
      if (this.freeEntries === 0) {
        // The journal is full: commit, copy, and wait for space (the kernel's sleep_on_endio_wait).
        void this.commit().catch(() => undefined);
        await new Promise<void>((r) => this.spaceWaiters.push(r));
        if (this.failed) throw this.failed;
        continue;
      }
      const n = Math.min(total - done, this.freeEntries);
      let section = this.freeSection;
      let entry = this.freeEntry;
      this.freeEntries -= n;
      const next = this.freeEntry + n;
      this.freeEntry = next % E;
      this.freeSection = (this.freeSection + Math.floor(next / E)) % this.o.sections;
      this.nUncommitted += Math.floor(next / E);
      const ts = this.o.tagSize;
      const tags = crc32cTags((start + done * this.bs) / SECTOR_BYTES, data.subarray(done * this.bs, (done + n) * this.bs), this.bs, ts, new Uint8Array(n * ts));
      for (let k = 0; k < n; k++, done++) {
        const off = done * this.bs;
        const sector = (start + off) / SECTOR_BYTES;
        this.img.putBlock(section, entry, sector, data.subarray(off, off + this.bs), tags.subarray(k * ts, (k + 1) * ts));
        this.pending.set(sector / this.o.sectorsPerBlock, section * E + entry);
        if (++entry === E) {
          entry = 0;
          section = (section + 1) % this.o.sections;
        }
      }
      // Past the journal_watermark the journal is committed (and copied) now, as the kernel's commit_work.
      if (this.freeEntries <= this.threshold) void this.commit().catch(() => undefined);
    }
    if (fua) await this.commit();
    else this.scheduleAutocommit();
  }

  private scheduleAutocommit(): void {
    if (this.autocommit) return;
    this.autocommit = setTimeout(() => {
      this.autocommit = undefined;
      this.commit().catch(() => undefined);
    }, this.o.commitTimeMs ?? DEFAULT_COMMIT_TIME_MS);
    this.autocommit.unref();
  }

  /** integrity_commit: every entry journaled before this call is durable when it resolves. */
  commit(): Promise<void> {
    const run = this.commitChain.then(() => this.doCommit());
    this.commitChain = run.catch(() => undefined);
    return run;
  }

  private async doCommit(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.autocommit) {
      clearTimeout(this.autocommit);
      this.autocommit = undefined;
    }
    // pad_uncommitted: the open section is closed, its unused entries stay unused.
    if (this.freeEntry) {
      this.freeEntries -= this.o.geometry.sectionEntries - this.freeEntry;
      this.freeEntry = 0;
      this.freeSection = (this.freeSection + 1) % this.o.sections;
      this.nUncommitted++;
    }
    const start = this.uncommittedSection;
    const count = this.nUncommitted;
    if (!count) return;
    this.wroteToJournal = true;
    let i = start;
    for (let n = 0; n < count; n++) {
      this.img.stampSection(i, this.commitSeq);
      if (++i >= this.o.sections) {
        this.commitSeq = nextCommitSeq(this.commitSeq);
        i = 0;
      }
    }
    this.uncommittedSection = i;
    this.nUncommitted -= count;
    try {
      await this.writeSections(start, count);
    } catch (e) {
      this.fail(e);
      throw e;
    }
    this.nCommitted += count;
    void this.writeOut().catch(() => undefined);
  }

  /** integrity_writer: copy the committed sections to the data device and tag area, flush, free them. */
  writeOut(): Promise<void> {
    const run = this.writerChain.then(async () => {
      if (this.failed) throw this.failed;
      const start = this.committedSection;
      const count = this.nCommitted;
      if (!count) return;
      try {
        await this.copyOut(start, count, false);
        await this.flushBoth();
      } catch (e) {
        this.fail(e);
        throw e;
      }
      this.committedSection = (start + count) % this.o.sections;
      this.nCommitted -= count;
      this.freeEntries += count * this.o.geometry.sectionEntries;
      for (const w of this.spaceWaiters.splice(0)) w();
    });
    this.writerChain = run.catch(() => undefined);
    return run;
  }

  /**
   * do_journal_write: runs of consecutive blocks of each section, data then
   * tags, under the range lock; each entry is unused afterwards. From a
   * replay, entries past the device are dropped and every tag is checked
   * against its data first (a mismatch fails the device, as in the kernel).
   */
  private async copyOut(start: number, count: number, fromReplay: boolean): Promise<number> {
    const E = this.o.geometry.sectionEntries;
    const spb = this.o.sectorsPerBlock;
    let blocks = 0;
    for (let n = 0; n < count; n++) {
      const i = (start + n) % this.o.sections;
      for (let j = 0; j < E; j++) {
        const first = this.img.entry(i, j);
        if (first.kind !== "sector" || first.sector >= this.o.providedDataSectors) {
          if (first.kind !== "unused") this.img.setUnused(i, j);
          continue;
        }
        if (first.sector % spb) throw new IoError("invalid sector in journal", "EIO");
        let k = j + 1;
        for (; k < E; k++) {
          const e = this.img.entry(i, k);
          if (e.kind !== "sector" || e.sector !== first.sector + (k - j) * spb) break;
        }
        const run = k - j;
        const buf = new Uint8Array(run * this.bs);
        const tags = new Uint8Array(run * this.o.tagSize);
        const check = new Uint8Array(this.o.tagSize);
        for (let l = 0; l < run; l++) {
          const block = this.img.getBlock(i, j + l, buf.subarray(l * this.bs, (l + 1) * this.bs));
          const tag = this.img.tag(i, j + l);
          if (fromReplay) {
            crc32cTag(first.sector + l * spb, block, this.o.tagSize, check);
            if (!check.every((x, m) => x === tag[m])) throw new IoError(`tag mismatch when replaying journal at sector ${first.sector + l * spb}`, "EILSEQ");
          }
          tags.set(tag, l * this.o.tagSize);
        }
        const byteStart = first.sector * SECTOR_BYTES;
        const unlock = await this.locks.acquire(byteStart, byteStart + buf.length, true);
        try {
          // Both at once: the committed journal still holds them until the flush after the copy, so a
          // crash in between replays the section (the kernel's do_journal_write issues both too).
          const copies = await Promise.allSettled([this.o.data.write(byteStart, buf), this.o.meta.write(this.o.tagAt(first.sector / spb), tags)]);
          for (const c of copies) if (c.status === "rejected") throw c.reason;
          // Still under the lock: a read that finds the block no longer pending finds it on the devices.
          for (let l = 0; l < run; l++) {
            const block = first.sector / spb + l;
            if (this.pending.get(block) === i * E + j + l) this.pending.delete(block);
            this.img.setUnused(i, j + l);
          }
        } finally {
          unlock();
        }
        blocks += run;
        j = k - 1;
      }
    }
    return blocks;
  }

  private async flushBoth(): Promise<void> {
    await Promise.all([this.o.data.flush(), this.o.meta.flush()]);
  }

  private fail(e: unknown): void {
    this.failed ??= e instanceof Error ? e : new IoError(String(e), "EIO");
    for (const w of this.spaceWaiters.splice(0)) w();
  }

  /**
   * The last table lets go (dm_integrity_postsuspend): commit, copy, flush,
   * then leave the journal empty on disk, every section stamped so that a
   * replay finds it whole and has nothing to do.
   */
  async release(): Promise<void> {
    if (--this.users > 0) return;
    if (OPEN.get(this.key ?? "") === this) OPEN.delete(this.key!);
    if (this.failed) return;
    await this.commit();
    await this.writeOut();
    if (this.wroteToJournal) {
      this.img.initSections(this.freeSection, this.o.sections - this.freeSection, this.commitSeq);
      await this.writeSections(this.freeSection, this.o.sections - this.freeSection);
      if (this.freeSection) {
        this.img.initSections(0, this.freeSection, nextCommitSeq(this.commitSeq));
        await this.writeSections(0, this.freeSection);
      }
    }
  }
}
