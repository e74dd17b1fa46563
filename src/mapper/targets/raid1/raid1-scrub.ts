import type { RegionHash } from "../mirror/region-hash.js";
import { legLendsExtents, type MirrorLeg } from "../mirror/mirror-leg.js";
import type { CopyEngine } from "../../copy-threads/copy-engine.js";
import { RateThrottle } from "../mirror/rate-throttle.js";
import { BULK_IO, type ExtentLease } from "../../../blockdev/block-device.js";
import { IoError } from "../../../errors/errors.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";
import { IntegrityMismatchError } from "../../integrity/integrity-device.js";

/** md's sync actions that scrub: `check` compares, `repair` also rewrites. */
export type ScrubAction = "check" | "repair";

/** md compares in resync blocks of up to 64 KiB (RESYNC_BLOCK_SIZE): a mismatch counts in these units. */
export const SCRUB_UNIT_BYTES = 64 * 1024;

/** POLICY: places kept per scrub; past it only their number is counted (placesOmitted). */
export const MAX_SCRUB_PLACES = 1000;

/** POLICY: how long an unthrottled scrub waits for the copy threads to come up before comparing without them. */
const THREADS_START_WAIT_MS = 500;

/** POLICY: batches in flight while the threads compare (two: one compared while the next is closed and drained). */
const PIPELINED_BATCHES = 2;

/** A run of consecutive compare units where the same legs differ from the first leg read. */
export interface ScrubPlace {
  /** Array (LV) sector of the first unit, and the run's length. */
  readonly sector: number;
  readonly sectors: number;
  /** Legs that differ from `source` here (or could not be read: readError). */
  readonly legs: readonly number[];
  /** The leg read as the reference (md's primary: the lowest-index leg whose read succeeded). */
  readonly source: number;
  /** The differing legs' reads failed (they were rewritten from `source`, as md does even in check). */
  readonly readError: boolean;
}

export interface ScrubReport {
  readonly action: ScrubAction;
  readonly running: boolean;
  /** Stopped before the end (idle/frozen message, suspend). */
  readonly aborted: boolean;
  /** Array sectors walked so far / in all. */
  readonly doneSectors: number;
  readonly totalSectors: number;
  /** md's resync_mismatches: each differing unit adds its length in sectors, per differing leg. */
  readonly mismatchSectors: number;
  /** Sectors written to legs (repair, and read errors in either action). */
  readonly rewrittenSectors: number;
  readonly places: readonly ScrubPlace[];
  readonly placesOmitted: number;
}

/** What the scrubber needs from the raid1 core. */
export interface ScrubHost {
  readonly regions: RegionHash;
  readonly legs: readonly MirrorLeg[];
  readonly lengthSectors: number;
  failLeg(leg: MirrorLeg, op: "resync", err: IoError): void;
}

export interface ScrubOptions {
  /** Each leg is read this much at a time (rounded to whole units, at least one). */
  readonly ioBytes: number;
  /** How much is closed to writes and compared at a time (whole regions, at least one). */
  readonly batchBytes: number;
  /** Per device; 0 = unthrottled (dm-raid max_recovery_rate). */
  readonly rateBytesPerSec: number;
  /** Copy threads: they compare a batch whenever they are up and every leg lends its extents. */
  readonly engine?: CopyEngine | undefined;
  /** The batch while the threads compare unthrottled (a round trip to them per batch). */
  readonly engineBatchBytes?: number;
}

/**
 * md's check/repair for raid1 (raid1.c sync_request + process_checks):
 * walks every region in order, a batch of regions at a time; each batch is
 * closed to writes and drained, as the copier's batches are (RegionHash
 * startRecovery/quiesce), so no client write can be half-way on the legs
 * while they are compared: a mismatch found is on disk, never a race.
 * Every live, in-sync leg is read; the first leg (lowest index) whose read
 * succeeded is the reference; each other leg's 64 KiB unit that differs
 * adds the unit's sectors to the count and its place to the list; repair
 * copies the reference's unit over it ("first leg wins": no voting). A leg
 * whose read failed is rewritten from the reference in both actions (md's
 * fix for read errors during a check); a failed rewrite fails the leg.
 *
 * Where every leg is plain file I/O, the copy engine's threads read and
 * compare each batch on the legs' leased extents, off the event loop, and
 * hand back only the units that differ and the chunks some leg could not
 * read; those (rare) are compared again here, by the same rules as a batch
 * scanned on the event loop, so both ways count, place and repair alike.
 */
export class Raid1Scrubber {
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly throttle: RateThrottle;
  private report: ScrubReport | undefined;
  // The report's mutable parts while it runs.
  private action: ScrubAction = "check";
  private done = 0;
  private mismatches = 0;
  private rewritten = 0;
  private places: ScrubPlace[] = [];
  private omitted = 0;

  constructor(
    private readonly host: ScrubHost,
    private readonly opts: ScrubOptions,
    /** Called once per scrub, when it ends (completed or aborted). */
    private readonly onEnd: (report: ScrubReport) => void,
  ) {
    this.throttle = new RateThrottle(opts.rateBytesPerSec);
  }

  get running(): boolean {
    return this.loop !== undefined;
  }

  /** The scrub running, else the last one (undefined before the first). */
  current(): ScrubReport | undefined {
    if (this.loop === undefined) return this.report;
    return this.snapshot(true, false);
  }

  setRate(bytesPerSec: number): void {
    this.throttle.setRate(bytesPerSec);
  }

  /** Start a scrub; the counters start from 0 (md resets resync_mismatches). The caller checks that the set is idle. */
  start(action: ScrubAction): void {
    if (this.loop !== undefined) throw new Error("scrub already running");
    this.action = action;
    this.done = 0;
    this.mismatches = 0;
    this.rewritten = 0;
    this.places = [];
    this.omitted = 0;
    this.stopping = false;
    this.throttle.restart();
    this.loop = this.run().then(
      (aborted) => this.finish(aborted),
      () => this.finish(true),
    );
  }

  /** Resolves when the scrub running now (if any) has ended. */
  async whenDone(): Promise<void> {
    await this.loop;
  }

  /** Finish the batch being compared, then stop (idle/frozen message, presuspend). */
  async stop(): Promise<void> {
    this.requestStop();
    await this.loop;
  }

  requestStop(): void {
    if (this.loop === undefined) return;
    this.stopping = true;
    this.throttle.wake();
  }

  private finish(aborted: boolean): void {
    this.report = this.snapshot(false, aborted);
    this.loop = undefined;
    this.onEnd(this.report);
  }

  private snapshot(running: boolean, aborted: boolean): ScrubReport {
    return {
      action: this.action,
      running,
      aborted,
      doneSectors: this.done,
      totalSectors: this.host.lengthSectors,
      mismatchSectors: this.mismatches,
      rewrittenSectors: this.rewritten,
      places: this.places.slice(),
      placesOmitted: this.omitted,
    };
  }

  /** Resolves true if stopped before the end. */
  private async run(): Promise<boolean> {
    const { regions } = this.host;
    const regionBytes = regions.regionSectors * SECTOR_BYTES;
    const batchRegionsFor = (bytes: number): number => Math.max(1, Math.floor(bytes / regionBytes));
    const engine = this.opts.engine;
    const lend = engine !== undefined && this.host.legs.some((l) => !l.failed && legLendsExtents(l, false));
    await Promise.resolve();
    if (lend) {
      engine.warmUp();
      // Threads start in tens of ms; the event loop compares a small fraction as fast, so wait for them
      // unless throttled (the rate, not the way, then bounds the scrub).
      if (this.throttle.rateBytesPerSec <= 0) await engine.whenReady(THREADS_START_WAIT_MS);
    }
    // Batches compared on the threads overlap: the next batch is closed and drained while the
    // threads still compare this one, so they never wait on the event loop between batches.
    const inFlight: Array<{ readonly last: number; readonly compared: Promise<void> }> = [];
    const settleOldest = async (): Promise<void> => {
      const b = inFlight.shift()!;
      await b.compared;
      this.done = Math.min(this.host.lengthSectors, regions.regionStartSector(b.last) + regions.regionLengthSectors(b.last));
    };
    try {
      for (let first = 0; first < regions.regionCount; ) {
        if (this.stopping) break;
        // Larger batches only where the threads compare them: on the event loop a batch holds writes to it longer.
        const threads = lend && engine.ready && this.throttle.rateBytesPerSec <= 0;
        const batchRegions = batchRegionsFor(threads ? (this.opts.engineBatchBytes ?? this.opts.batchBytes) : this.opts.batchBytes);
        const last = Math.min(regions.regionCount - 1, first + batchRegions - 1);
        const batchFirst = first; // the loop moves `first` on while this batch is still compared
        // Wait out a copier batch here (only a recovery started by a leg's return could be one).
        while (regions.anyRecovering(first, last)) await regions.waitForRecovery();
        regions.startRecovery(first, last);
        let compared: Promise<void>;
        try {
          await regions.quiesce(first, last);
          compared = this.scan(first, last, inFlight[inFlight.length - 1]?.compared);
        } catch (e) {
          regions.endRecovery(first, last, false);
          throw e;
        }
        // false: the regions' sync state is left as it was.
        const batch = { last, compared: compared.finally(() => regions.endRecovery(batchFirst, last, false)) };
        batch.compared.catch(() => undefined); // awaited in order below; never an unhandled rejection meanwhile
        inFlight.push(batch);
        if (inFlight.length >= (threads ? PIPELINED_BATCHES : 1)) await settleOldest();
        if (this.stopping) break;
        await this.throttle.wait();
        await new Promise<void>((r) => setImmediate(r));
        first = last + 1;
      }
    } finally {
      // Every batch started ends (closed regions reopen) before the scrub reports, even on an error.
      await Promise.allSettled(inFlight.map((b) => b.compared));
    }
    while (inFlight.length > 0) await settleOldest();
    return this.done < this.host.lengthSectors;
  }

  /**
   * Compare [first, last]. `previous` is the batch before it while both are in flight: units found
   * differing are looked at again only after it has ended, so places are counted in LV order.
   */
  private async scan(first: number, last: number, previous?: Promise<void>): Promise<void> {
    const { regions } = this.host;
    const start = regions.regionStartSector(first) * SECTOR_BYTES;
    const end = (regions.regionStartSector(last) + regions.regionLengthSectors(last)) * SECTOR_BYTES;
    const io = Math.max(SCRUB_UNIT_BYTES, Math.floor(this.opts.ioBytes / SCRUB_UNIT_BYTES) * SCRUB_UNIT_BYTES);
    if (this.opts.engine?.ready === true) {
      const suspect = await this.compareOnThreads(this.opts.engine, start, end - start);
      if (suspect !== undefined) {
        if (suspect.length > 0) await previous?.catch(() => undefined);
        // Units the threads found differing, chunks they could not read: again here, a piece at a time.
        for (let i = 0; i < suspect.length; i += 2) {
          const from = start + suspect[i]!;
          const to = from + suspect[i + 1]!;
          for (let off = from; off < to; off += io) await this.scanChunk(off, Math.min(io, to - off));
        }
        this.throttle.account(end - start);
        return;
      }
    }
    for (let off = start; off < end; off += io) {
      const len = Math.min(io, end - off);
      await this.scanChunk(off, len);
      this.throttle.account(len);
    }
  }

  private async scanChunk(off: number, len: number): Promise<void> {
    const legs = this.host.legs.filter((l) => !l.failed && !l.stale);
    if (legs.length < 2) return;
    const bufs = legs.map(() => new Uint8Array(len));
    const errs = await Promise.all(
      legs.map((l, i) =>
        l.dev.read(l.offsetBytes + off, bufs[i]!, BULK_IO).then(
          () => undefined,
          (e: unknown) => {
            if (e instanceof IoError) return e;
            throw e;
          },
        ),
      ),
    );
    if (errs.some((e) => e instanceof IntegrityMismatchError)) await this.healChecksumMismatches(legs, errs, bufs, off);
    const p = errs.findIndex((e) => e === undefined);
    if (p < 0) return; // no leg readable here: nothing to compare or copy from
    const ref = bufs[p]!;
    const source = legs[p]!;
    // Legs whose read failed: rewritten from the reference in both actions.
    const unreadable = legs.filter((_, i) => errs[i] !== undefined);
    for (const l of unreadable) await this.rewrite(l, off, ref);
    for (let u = 0; u < len; u += SCRUB_UNIT_BYTES) {
      const ulen = Math.min(SCRUB_UNIT_BYTES, len - u);
      const unitSectors = ulen / SECTOR_BYTES;
      const sector = (off + u) / SECTOR_BYTES;
      if (unreadable.length > 0) {
        this.mismatches += unitSectors * unreadable.length;
        this.addPlace(sector, unitSectors, unreadable.map((l) => l.index), source.index, true);
      }
      const differ: MirrorLeg[] = [];
      legs.forEach((l, i) => {
        if (i === p || errs[i] !== undefined) return;
        if (!sameBytes(ref, bufs[i]!, u, ulen)) differ.push(l);
      });
      if (differ.length === 0) continue;
      this.mismatches += unitSectors * differ.length;
      this.addPlace(sector, unitSectors, differ.map((l) => l.index), source.index, false);
      if (this.action === "repair") for (const l of differ) await this.rewrite(l, off + u, ref.subarray(u, u + ulen));
    }
  }

  /**
   * Legs behind an integrity layer whose read failed its checksum (EILSEQ):
   * the error names the bad blocks, so the rest of the leg is read again
   * around them (verified), and each bad block is rewritten from the first
   * other leg whose copy of it passed its checksum, as the kernel's check
   * does (the read path detects, the good copy wins: no "first leg wins"
   * here). Counted and placed per block, not per 64 KiB unit. A block bad on
   * every leg is counted and left alone (a read of it gets EIO). Afterwards
   * the leg's buffer holds good data and its error is cleared, so the usual
   * comparison follows.
   */
  private async healChecksumMismatches(legs: readonly MirrorLeg[], errs: (IoError | undefined)[], bufs: Uint8Array[], off: number): Promise<void> {
    const len = bufs[0]!.length;
    const bad: (Set<number> | undefined)[] = [];
    let blockBytes = SECTOR_BYTES;
    // Re-read the good stretches of each leg with checksum errors.
    for (let i = 0; i < legs.length; i++) {
      const e = errs[i];
      if (!(e instanceof IntegrityMismatchError)) continue;
      const leg = legs[i]!;
      blockBytes = e.blockSectors * SECTOR_BYTES;
      const blocks = new Set(e.badSectors.map((s) => s * SECTOR_BYTES - leg.offsetBytes - off));
      bad[i] = blocks;
      let ok = true;
      for (let at = 0; at < len && ok; ) {
        if (blocks.has(at)) {
          at += blockBytes;
          continue;
        }
        let end = at;
        while (end < len && !blocks.has(end)) end += blockBytes;
        end = Math.min(end, len);
        try {
          await leg.dev.read(leg.offsetBytes + off + at, bufs[i]!.subarray(at, end), BULK_IO);
        } catch (e2) {
          if (!(e2 instanceof IoError)) throw e2;
          ok = false; // more rot (or a real error) meanwhile: leave this leg as unreadable
        }
        at = end;
      }
      if (ok) errs[i] = undefined;
    }
    for (let i = 0; i < legs.length; i++) {
      const blocks = bad[i];
      if (blocks === undefined || errs[i] !== undefined) continue;
      for (const at of [...blocks].sort((a, b) => a - b)) {
        const sector = (off + at) / SECTOR_BYTES;
        const sectors = blockBytes / SECTOR_BYTES;
        this.mismatches += sectors;
        const j = legs.findIndex((_, k) => k !== i && errs[k] === undefined && bad[k]?.has(at) !== true);
        if (j < 0) {
          // No good copy: equal (zero) bytes in every buffer, so the comparison does not count it again.
          bufs.forEach((b, k) => (bad[k]?.has(at) === true || k === i) && b.fill(0, at, at + blockBytes));
          continue;
        }
        bufs[i]!.set(bufs[j]!.subarray(at, at + blockBytes), at);
        if (await this.rewrite(legs[i]!, off + at, bufs[i]!.subarray(at, at + blockBytes))) this.addPlace(sector, sectors, [legs[i]!.index], legs[j]!.index, true);
      }
    }
  }

  /**
   * Compare array bytes [off, off + len) of every live, in-sync leg on the
   * engine's threads, on the legs' leased extents. Resolves with the
   * suspect [offset, length] pairs (from `off`), or undefined (scan it the
   * other way) when some leg cannot lease its extents, the threads are gone
   * or a leg's PV was revoked meanwhile.
   */
  private async compareOnThreads(engine: CopyEngine, off: number, len: number): Promise<number[] | undefined> {
    const legs = this.host.legs.filter((l) => !l.failed && !l.stale);
    if (legs.length < 2) return [];
    const leases: ExtentLease[] = [];
    try {
      for (const l of legs) {
        const lease = l.dev.leaseExtents?.(l.offsetBytes + off, len, false);
        if (lease === undefined) return undefined;
        leases.push(lease);
      }
      let suspect: number[];
      try {
        suspect = await engine.compare(
          leases.map((l) => l.extents),
          SCRUB_UNIT_BYTES,
        );
      } catch {
        return undefined; // the threads died or were stopped: the batch is still closed to writes, scan it here
      }
      if (leases.some((l) => l.problem() !== undefined)) return undefined;
      return suspect;
    } finally {
      for (const l of leases) l.release();
    }
  }

  /** Write `data` to `leg` at array byte `off`; a failed write fails the leg. */
  private async rewrite(leg: MirrorLeg, off: number, data: Uint8Array): Promise<boolean> {
    if (leg.failed) return false;
    try {
      await leg.dev.write(leg.offsetBytes + off, data, BULK_IO);
      this.rewritten += data.length / SECTOR_BYTES;
      return true;
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      this.host.failLeg(leg, "resync", e);
      return false;
    }
  }

  private addPlace(sector: number, sectors: number, legs: number[], source: number, readError: boolean): void {
    const prev = this.places[this.places.length - 1];
    if (
      prev !== undefined &&
      this.omitted === 0 &&
      prev.sector + prev.sectors === sector &&
      prev.source === source &&
      prev.readError === readError &&
      prev.legs.length === legs.length &&
      prev.legs.every((x, i) => x === legs[i])
    ) {
      this.places[this.places.length - 1] = { ...prev, sectors: prev.sectors + sectors };
      return;
    }
    if (this.places.length >= MAX_SCRUB_PLACES) {
      this.omitted++;
      return;
    }
    this.places.push({ sector, sectors, legs, source, readError });
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, off: number, len: number): boolean {
  return Buffer.from(a.buffer, a.byteOffset + off, len).equals(Buffer.from(b.buffer, b.byteOffset + off, len));
}
