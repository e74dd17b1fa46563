import { RequeueRequest, type DeviceUse, type Target, type TargetEnv, type TargetWriteOptions } from "../../target.js";
import type { MirrorStatus } from "../../status.js";
import type { MapperEvent } from "../../events.js";
import type { DirtyLog } from "../../dirty-log/dirty-log.js";
import type { DeviceSet } from "../../device-set.js";
import type { MirrorArgs } from "./mirror-args.js";
import type { LegErrorKind, MirrorLeg } from "./mirror-leg.js";
import { legHealth, legLendsExtents } from "./mirror-leg.js";
import { formatMirrorArgs } from "./mirror-args.js";
import { RegionHash } from "./region-hash.js";
import { WriteOrder, type OrderTicket } from "./write-order.js";
import { LegFailures, type FailureRecorder } from "./leg-failures.js";
import { Resyncer } from "./resync.js";
import { sharedCopyEngine } from "../../copy-threads/copy-engine.js";
import { WRITE_NOT_DONE, errnoName, sharedWriteThread, type WriteThread } from "../../write-thread/write-thread.js";
import { IoError } from "../../../errors/errors.js";
import { TableError } from "../../table-error.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";
import { IntegrityMismatchError } from "../../integrity/integrity-device.js";

/** The errno of a read whose integrity checksum failed (dm-integrity answers -EILSEQ). */
const CHECKSUM_MISMATCH = "EILSEQ";
export interface MirrorOptions {
  /** Period of the background cleaner (flush legs, then mark idle regions clean); 0 = only on client flush and suspend. */
  readonly cleanIntervalMs: number;
  /**
   * While the cleaner runs, a dirty region is only cleaned (by it or by a
   * client flush) after this many whole cleaner periods without a write to
   * it; 0 = as soon as it is idle, as dm does. See RegionHash.cleanCandidates.
   */
  readonly cleanAfterIdlePeriods: number;
  /** Initial resync throttle; 0 = unthrottled. */
  readonly resyncRateBytesPerSec: number;
  /** Size of each resync read/write. */
  readonly resyncIoBytes: number;
  /** How much the resync quiesces and copies at a time. */
  readonly resyncBatchBytes: number;
  /**
   * Copy threads for the resync (copy-threads/copy-engine.ts), shared by every
   * mirror of the process; 0 = copy on the event loop only. Used where every
   * leg is plain file I/O (BlockDevice.leaseExtents).
   */
  readonly resyncThreads: number;
  /** The batch when the threads copy unthrottled: larger, as each batch costs a round trip to them. */
  readonly resyncThreadBatchBytes: number;
  /**
   * Write the legs of small writes on the process's write thread
   * (write-thread/write-thread.ts) where a leg is plain file I/O, so that
   * the pwrites run beside the event loop (leg 0 stays on the event loop
   * while the thread is behind: SHARE_LEG0_BACKLOG).
   */
  readonly legWriteThread: boolean;
  /** Start the resync on resume (false: wait for setResyncEnabled(true)). */
  readonly resyncEnabled: boolean;
  /** Logical block size of the log device: log transfers are rounded up to it. */
  readonly logLogicalBlockBytes: number;
}

/**
 * What a wrapper of the mirror core changes in it: raid1 (targets/raid1/)
 * is the mirror core with md's persistence. The mirror target itself uses
 * none of these. Fan-out, failure handling, region tracking and the copier
 * stay shared; only how the region and leg state persists differs.
 */
export interface MirrorPersonality {
  /**
   * Records a leg failure durably; writes that missed the leg (and client
   * flushes) are acknowledged only after it resolved, as with
   * handle_errors, which it replaces. raid1: events+1 and the failed bit in
   * every rmeta's superblock.
   */
  readonly recordFailure?: FailureRecorder;
  /**
   * md: a bit is never cleared while the set is degraded (a leg failed or
   * absent), so a leg that returns is recovered from exactly the regions
   * written meanwhile.
   */
  readonly keepDirtyWhileDegraded?: boolean;
  /**
   * md's "recover": while some live leg is stale the copier writes only the
   * stale legs (the others are in sync), and every write goes to every live
   * leg, out-of-sync regions included, so no in-sync leg misses one.
   */
  readonly recoverOnlyStale?: boolean;
  /** After the log loaded and stale legs were applied, before the first resync (dm-raid preresume). */
  readonly preresume?: () => Promise<void>;
  /** Every region in sync: `recovered` are the legs that were stale until now. */
  readonly inSync?: (recovered: readonly MirrorLeg[]) => void;
  /**
   * md's read_balance: which live, in-sync leg serves a read of regions
   * every leg holds (undefined: the primary, as dm-mirror reads). Asked only
   * when the range is readable from any leg; a leg that then fails is failed
   * and the question asked again.
   */
  readonly readLeg?: (sector: number, lengthSectors: number) => MirrorLeg | undefined;
  /**
   * md's write-behind: writes to these legs (write-mostly) are acknowledged
   * once every other live leg has them, with at most `maxBehind` such writes
   * outstanding. Until a behind write ends its regions stay dirty (a crash
   * resyncs them, from a leg that is not behind: the raid1 adapter makes such
   * a leg the source) and overlapping writes wait for it; a client's flush,
   * a suspend and a destroy wait for every behind write.
   */
  readonly writeBehind?: { readonly legs: ReadonlySet<number>; readonly maxBehind: number };
}

/** How a stale leg is recovered: every region, or only those the log has out of sync (md bitmap-based recovery). */
export type StaleRecovery = "full" | "dirty";

const FUA = Object.freeze({ fua: true });

/**
 * POLICY: the write thread's backlog from which the event loop writes leg 0
 * itself. Every leg on the thread leaves the event loop free for the
 * protocol, but one thread then makes every pwrite; sharing leg 0 when the
 * thread is behind balances the two. A 4 KiB random-write run at QD32
 * (bench/nbd/ulvm-server.sh mirror, 6 interleaved rounds against the linear
 * LV): mirror/linear 0.65 with both legs on the event loop, 0.70 with both
 * always on the thread, 0.74 with this rule at 8.
 */
const SHARE_LEG0_BACKLOG = 8;

export const DEFAULT_MIRROR_OPTIONS: MirrorOptions = {
  cleanIntervalMs: 1000,
  cleanAfterIdlePeriods: 2,
  resyncRateBytesPerSec: 0,
  // 1 MiB copies: served in-line from the page cache (bulk I/O), a chunk
  // stays in the core's cache between its read and its write (through the
  // thread pool, 2 MiB was better: half the trips); and
  // writes wait for at most one 8 MiB batch (a few ms) while it is copied.
  resyncIoBytes: 1 << 20,
  resyncBatchBytes: 8 << 20,
  // Two threads copy ~1.3 times as fast as dd here (one alone ~0.85): more
  // would only contend for the same memory bandwidth.
  resyncThreads: 2,
  // ~3 ms of copying per batch at that speed: the round trip stays small
  // beside it, and a write to the batch waits no longer than an 8 MiB batch
  // copied on the event loop.
  resyncThreadBatchBytes: 32 << 20,
  legWriteThread: true,
  resyncEnabled: true,
  logLogicalBlockBytes: 512,
};

/**
 * The mirror target: the I/O policy of dm-raid1, over RegionHash (region
 * state), a DirtyLog (core or disk) and a Resyncer (the copier).
 *
 * Reads: regions in sync come from the primary leg (the source leg, or the
 * first live leg after it if it failed); a failed read fails that leg and is
 * retried on another live leg. Regions out of sync (or being copied) come
 * from the source leg only, never from a leg that may lack the data; if the
 * source has failed they cannot be served (EIO), as dm prefers an error to
 * possibly stale data.
 *
 * Writes: to every live leg at once from the same buffer, acknowledged when
 * each has it; overlapping writes are ordered (WriteOrder); the region is
 * durably marked dirty in the log first (RegionHash.beginWrite). Writes to
 * out-of-sync regions only go to the source: the resync copies them later.
 *
 * Failures: an IoError from a leg fails it at once (status character as
 * dm's), raises "leg-failed", and the leg is never used again in this
 * activation. With handle_errors, no write that missed a failed leg is
 * acknowledged before the policy handler's promise for that failure
 * resolved. Crash-safety argument: the log cannot say which leg is stale,
 * only which regions differ; after a restart the resync copies the *source*
 * leg over the others. Had we acknowledged a write that only reached leg 1
 * while leg 0 (the source) had failed, and crashed before the daemon
 * recorded leg 0's failure in the VG metadata, the next activation would
 * copy leg 0's old data over it: an acknowledged write lost. If the handler
 * rejects, the waiting writes fail with EIO and the next write raises the
 * event again.
 */
export class MirrorTarget implements Target {
  readonly type = "mirror";
  readonly regions: RegionHash;
  readonly legs: readonly MirrorLeg[];
  private readonly order = new WriteOrder();
  private readonly resyncer: Resyncer;
  private sourceIndex = 0;
  /** Write-behind writes still running on their write-mostly legs (already acknowledged to the client). */
  private readonly behind = new Set<Promise<void>>();
  private activated = false;
  private destroyed = false;
  private readonly failures: LegFailures;
  private readonly writeThread: WriteThread | undefined;
  private cleanTimer: NodeJS.Timeout | undefined;
  private cleaning: Promise<void> | undefined;
  private resyncEnabled: boolean;
  private inSyncReported = false;
  /** Between presuspend() and resume(): writes and flushes waiting for a failure's record are given back. */
  private requeueing = false;
  private requeueSignal: { promise: Promise<void>; wake: () => void } | undefined;
  private inSyncWaiters: Array<() => void> = [];
  /** Stale legs that get every region (the others only what the log has out of sync). */
  private readonly fullRecovery = new Set<MirrorLeg>();

  constructor(
    readonly lengthSectors: number,
    private readonly args: MirrorArgs,
    legs: MirrorLeg[],
    readonly log: DirtyLog,
    private readonly set: DeviceSet,
    private readonly env: TargetEnv,
    private readonly deviceName: string,
    private readonly opts: MirrorOptions,
    private readonly personality: MirrorPersonality = {},
  ) {
    this.legs = legs;
    this.regions = new RegionHash(log, args.regionSectors, lengthSectors);
    const record = personality.recordFailure ?? (args.handleErrors ? (_l: MirrorLeg, e: MapperEvent) => this.emit(e) : undefined);
    this.failures = new LegFailures(legs, deviceName, record, (e) => this.emit(e));
    this.resyncEnabled = opts.resyncEnabled;
    this.writeThread = sharedWriteThread(opts.legWriteThread);
    this.resyncer = new Resyncer(
      {
        regions: this.regions,
        log,
        resyncSource: () => this.resyncSource(),
        resyncDestinations: () => this.resyncDestinations(),
        failLeg: (leg, op, err) => this.failLeg(leg, op, err),
        allInSync: () => this.onAllInSync(),
      },
      {
        ioBytes: opts.resyncIoBytes,
        batchBytes: opts.resyncBatchBytes,
        rateBytesPerSec: opts.resyncRateBytesPerSec,
        engine: sharedCopyEngine(opts.resyncThreads),
        engineBatchBytes: opts.resyncThreadBatchBytes,
      },
    );
  }

  get handleErrors(): boolean {
    return this.args.handleErrors;
  }

  // ---- control (the activation layer / daemon) -------------------------

  /**
   * Declare that a leg holds no valid data (a new leg, or one that comes back
   * after a failure): every region is resynced *to* it and it is never a
   * source. Call after load(), before the table is resumed.
   */
  markLegStale(leg: number, recovery: StaleRecovery = "full"): void {
    const l = this.legAt(leg);
    if (this.activated) throw new TableError(`mirror: leg ${leg} can only be marked stale before the table is resumed`);
    if (this.legs.every((x) => x === l || x.stale || x.failed)) throw new TableError("mirror: at least one leg must hold valid data");
    l.stale = true;
    if (recovery === "full") this.fullRecovery.add(l);
    else this.fullRecovery.delete(l);
    if (this.sourceIndex === leg) this.sourceIndex = this.legs.find((x) => !x.stale && !x.failed)!.index;
  }

  /**
   * A leg with no device (raid1's `- -` slot): failed from the start and
   * already recorded, never read, written or copied to, and no event.
   * Before the table is resumed.
   */
  markLegAbsent(leg: number): void {
    const l = this.legAt(leg);
    if (this.activated) throw new TableError(`mirror: leg ${leg} can only be marked absent before the table is resumed`);
    if (this.legs.every((x) => x === l || x.stale || x.failed)) throw new TableError("mirror: at least one leg must hold valid data");
    this.failures.markAbsent(l);
    if (this.sourceIndex === leg) this.sourceIndex = this.legs.find((x) => !x.stale && !x.failed)!.index;
  }

  /**
   * Choose the leg out-of-sync regions are copied from and read from (dm's
   * default mirror, leg 0 unless told). Before resume only: switching the
   * source of regions already served would change data under the client.
   */
  setResyncSource(leg: number): void {
    const l = this.legAt(leg);
    if (this.activated) throw new TableError("mirror: the resync source can only be chosen before the table is resumed");
    if (l.stale) throw new TableError(`mirror: leg ${leg} is stale and cannot be the resync source`);
    this.sourceIndex = leg;
  }

  /** Throttle the resync; 0 = unthrottled. Takes effect at once. */
  setResyncRate(bytesPerSec: number): void {
    if (!Number.isFinite(bytesPerSec) || bytesPerSec < 0) throw new TableError(`mirror: invalid resync rate ${bytesPerSec}`);
    this.resyncer.setRate(bytesPerSec);
  }

  /** Pause or continue the background resync. */
  async setResyncEnabled(enabled: boolean): Promise<void> {
    this.resyncEnabled = enabled;
    if (!enabled) await this.resyncer.stop();
    else this.maybeStartResync();
  }

  /** Resolves when every region is in sync. */
  whenInSync(): Promise<void> {
    if (this.log.syncCount === this.regions.regionCount && this.activated) return Promise.resolve();
    return new Promise((r) => this.inSyncWaiters.push(r));
  }

  /** Flush the legs and mark idle dirty regions clean now (what the timer does). */
  async cleanNow(): Promise<number> {
    while (this.cleaning) await this.cleaning;
    let n = 0;
    this.cleaning = this.clean().then((c) => {
      n = c;
    });
    try {
      await this.cleaning;
    } finally {
      this.cleaning = undefined;
    }
    return n;
  }

  private legAt(leg: number): MirrorLeg {
    const l = this.legs[leg];
    if (l === undefined) throw new TableError(`mirror: no leg ${leg} (legs 0..${this.legs.length - 1})`);
    return l;
  }

  // ---- leg choice ---------------------------------------------------------

  /** Live legs other than the source; with recoverOnlyStale, only the stale ones while there are any. */
  private resyncDestinations(): MirrorLeg[] {
    const others = this.legs.filter((l) => !l.failed && l.index !== this.sourceIndex);
    if (this.personality.recoverOnlyStale === true && others.some((l) => l.stale)) return others.filter((l) => l.stale);
    return others;
  }

  /** recoverOnlyStale and a live leg is stale: writes go to every live leg (md writes every non-faulty leg). */
  private recovering(): boolean {
    return this.personality.recoverOnlyStale === true && this.legs.some((l) => l.stale && !l.failed);
  }

  resyncSource(): MirrorLeg | undefined {
    const l = this.legs[this.sourceIndex]!;
    return l.failed ? undefined : l;
  }

  /**
   * Without handle_errors, dm-raid1 only counts a leg's errors: writes still
   * go to every leg, and the default leg stays the one that serves regions
   * out of sync ("Primary mirror failed while out-of-sync: Reads may fail").
   * ulvm keeps that for a leg that failed on reads only (pvmove's source
   * starting to fail mid-move): it keeps every write, so nothing written
   * after the failure is missing from it when the move is aborted. A leg
   * that failed a write or a flush is excluded as before.
   */
  private stillWritten(l: MirrorLeg): boolean {
    return l.failed && !this.failures.gated && !l.errors.has("write") && !l.errors.has("flush");
  }

  /** The leg that serves client I/O to regions out of sync: the source, also one that failed on reads only (stillWritten). */
  private outOfSyncSource(): MirrorLeg | undefined {
    const l = this.legs[this.sourceIndex]!;
    return !l.failed || this.stillWritten(l) ? l : undefined;
  }

  /** Leg serving in-sync regions: the source, else the next live leg after it. */
  primaryLeg(): MirrorLeg | undefined {
    const n = this.legs.length;
    for (let k = 0; k < n; k++) {
      const l = this.legs[(this.sourceIndex + k) % n]!;
      if (!l.failed) return l;
    }
    return undefined;
  }

  // ---- reads --------------------------------------------------------------

  read(sector: number, into: Uint8Array): Promise<void> {
    // Fast path (no async layer): everything in sync, nothing being copied,
    // a live primary leg. A failure there falls through to readFrom(), which
    // fails the leg and retries on the next one.
    if (this.log.syncCount === this.regions.regionCount && !this.regions.anyRecoveringAt()) {
      const leg = this.personality.readLeg?.(sector, into.length / SECTOR_BYTES) ?? this.primaryLeg();
      if (leg !== undefined) {
        return leg.dev.read(leg.offsetBytes + sector * SECTOR_BYTES, into).catch((e: unknown) => {
          if (!(e instanceof IoError)) throw e;
          if (e.errno === CHECKSUM_MISMATCH) return this.readAroundMismatch(leg, sector, into, e);
          this.failLeg(leg, "read", e);
          return this.readSlow(sector, into);
        });
      }
    }
    return this.readSlow(sector, into);
  }

  private async readSlow(sector: number, into: Uint8Array): Promise<void> {
    const endSector = sector + into.length / SECTOR_BYTES;
    const first = this.regions.regionOf(sector);
    const last = this.regions.regionOf(endSector - 1);
    if (first === last || this.log.syncCount === this.regions.regionCount) {
      return this.readFrom(sector, into, first, last);
    }
    // Split where the answer to "may any leg serve this?" changes.
    const parts: Promise<void>[] = [];
    let runStart = sector;
    let runFirst = first;
    let runAny = this.regions.isReadableFromAnyLeg(first);
    for (let r = first + 1; r <= last + 1; r++) {
      const any = r <= last ? this.regions.isReadableFromAnyLeg(r) : !runAny;
      if (any === runAny) continue;
      const runEnd = r <= last ? this.regions.regionStartSector(r) : endSector;
      parts.push(
        this.readFrom(runStart, into.subarray((runStart - sector) * SECTOR_BYTES, (runEnd - sector) * SECTOR_BYTES), runFirst, r - 1),
      );
      runStart = runEnd;
      runFirst = r;
      runAny = any;
    }
    await Promise.all(parts);
  }

  private allReadableFromAnyLeg(first: number, last: number): boolean {
    if (this.log.syncCount === this.regions.regionCount && !this.regions.anyRecovering(first, last)) return true;
    for (let r = first; r <= last; r++) if (!this.regions.isReadableFromAnyLeg(r)) return false;
    return true;
  }

  private async readFrom(sector: number, into: Uint8Array, first: number, last: number): Promise<void> {
    for (;;) {
      const anyLeg = this.allReadableFromAnyLeg(first, last);
      const leg = anyLeg ? (this.personality.readLeg?.(sector, into.length / SECTOR_BYTES) ?? this.primaryLeg()) : this.outOfSyncSource();
      if (leg === undefined) {
        throw new IoError(
          `${this.deviceName}: no leg holds valid data for sectors ${sector}..${sector + into.length / SECTOR_BYTES - 1}` +
            (anyLeg ? " (all legs failed)" : " (region out of sync and its source leg failed)"),
          "EIO",
        );
      }
      const failedBefore = leg.failed;
      try {
        await leg.dev.read(leg.offsetBytes + sector * SECTOR_BYTES, into);
        return;
      } catch (e) {
        if (!(e instanceof IoError)) throw e;
        if (e.errno === CHECKSUM_MISMATCH) return await this.readAroundMismatch(leg, sector, into, e);
        // A failed source still serving its out-of-sync regions: no other leg has them.
        if (failedBefore) throw e;
        this.failLeg(leg, "read", e);
      }
    }
  }

  /** Reads whose checksum failed on one leg and were served and rewritten from another (md's corrected read errors). */
  correctedReads = 0;
  /** Reads whose checksum failed on every leg holding the data: the client got EIO. */
  uncorrectableReads = 0;

  /**
   * A leg's integrity layer found a bad checksum (EILSEQ): the leg itself
   * works, one copy is rotten. As md's fix_read_error does, read the range
   * from another leg that holds it, write that back over the bad copy (new
   * data, new tags) and serve it; the leg is not failed. Ordered with the
   * writes like one (WriteOrder), so a client write to the range is never
   * overwritten by the older copy. When no leg has a good copy, the client
   * gets EIO for this request only. Either way an "integrity-mismatch"
   * event names the bad blocks, for the daemon to report.
   */
  private async readAroundMismatch(bad: MirrorLeg, sector: number, into: Uint8Array, err: IoError): Promise<void> {
    const endSector = sector + into.length / SECTOR_BYTES;
    const { ticket, wait } = this.order.enter(sector, endSector);
    try {
      if (wait) await wait;
      const first = this.regions.regionOf(sector);
      const last = this.regions.regionOf(endSector - 1);
      const candidates = this.allReadableFromAnyLeg(first, last) ? this.legs.filter((l) => l !== bad && !l.failed) : [];
      for (const leg of candidates) {
        try {
          await leg.dev.read(leg.offsetBytes + sector * SECTOR_BYTES, into);
        } catch (e) {
          if (!(e instanceof IoError)) throw e;
          if (e.errno !== CHECKSUM_MISMATCH) this.failLeg(leg, "read", e);
          continue;
        }
        try {
          await bad.dev.write(bad.offsetBytes + sector * SECTOR_BYTES, into);
          this.correctedReads++;
          this.reportMismatch(bad, sector, endSector, err, true);
        } catch (e) {
          if (!(e instanceof IoError)) throw e;
          this.failLeg(bad, "write", e);
        }
        return;
      }
      this.uncorrectableReads++;
      this.reportMismatch(bad, sector, endSector, err, false);
      throw new IoError(`${this.deviceName}: no leg holds a copy of sectors ${sector}..${endSector - 1} that passes its checksum`, "EIO");
    } finally {
      this.order.leave(ticket);
    }
  }

  private reportMismatch(leg: MirrorLeg, sector: number, endSector: number, err: IoError, healed: boolean): void {
    const runs = mismatchRuns(err, leg.offsetBytes / SECTOR_BYTES) ?? [{ sector, sectors: endSector - sector }];
    void this.emit({ kind: "integrity-mismatch", device: this.deviceName, leg: leg.index, legDevice: leg.name, healed, runs }).catch(() => undefined);
  }

  // ---- writes -------------------------------------------------------------

  write(sector: number, data: Uint8Array, opts: TargetWriteOptions): Promise<void> {
    const endSector = sector + data.length / SECTOR_BYTES;
    const first = this.regions.regionOf(sector);
    const last = this.regions.regionOf(endSector - 1);
    const { ticket, wait } = this.order.enter(sector, endSector);
    // Fast path, without async layers (they cost as much as the rest of the
    // mirror's bookkeeping together): nothing earlier overlaps, every leg is
    // live and in sync, nothing is being copied, and the regions are already
    // durably dirty. Same steps as below: both legs at once from the same
    // buffer, acknowledged when both have it; a failure is sorted out by
    // afterLegFailure() exactly as writeLegs() does.
    if (wait === undefined && this.failures.count === 0 && this.legs.length > 1 && this.personality.writeBehind === undefined && this.log.syncCount === this.regions.regionCount && !this.regions.anyRecoveringAt()) {
      if (this.regions.beginWrite(first, last)) return this.writeBegun(sector, data, opts, first, last, ticket, true);
      const legs = this.legs;
      const offsetBytes = sector * SECTOR_BYTES;
      const wo = opts.fua ? FUA : undefined;
      const pending: Promise<void>[] = new Array(legs.length);
      // Small writes go to the write thread, leg 0 too unless the thread
      // is behind: then the event loop writes it itself, at the same time.
      // Legs from the last down, so that leg 0's backlog check sees them.
      const wt = wo === undefined ? this.writeThread : undefined;
      for (let i = legs.length - 1; i >= 0; i--) {
        const leg = legs[i]!;
        const threaded = wt !== undefined && (i > 0 || wt.backlog < SHARE_LEG0_BACKLOG) ? this.writeOnThread(leg, offsetBytes, data) : undefined;
        pending[i] = threaded ?? leg.dev.write(leg.offsetBytes + offsetBytes, data, wo);
      }
      return Promise.all(pending).then(
        () => {
          this.regions.endWrite(first, last);
          this.order.leave(ticket);
        },
        () => this.afterLegFailure(legs, pending, first, last, ticket),
      );
    }
    return this.writeSlow(sector, data, opts, first, last, ticket, wait);
  }

  /**
   * A leg's write on the write thread, through a lease of the leg's file
   * extent (counted in flight by every layer, so no suspend or close passes
   * it); undefined when that cannot be done now: the caller writes the
   * usual way.
   */
  private writeOnThread(leg: MirrorLeg, offsetBytes: number, data: Uint8Array): Promise<void> | undefined {
    const wt = this.writeThread;
    if (wt === undefined || !wt.ready || data.length > wt.maxBytes) return undefined;
    const at = leg.offsetBytes + offsetBytes;
    const lease = leg.dev.leaseExtents?.(at, data.length, true);
    if (lease === undefined) return undefined;
    const extent = lease.extents.length === 1 ? lease.extents[0]! : undefined;
    const done = extent === undefined ? undefined : wt.submit(extent.fd, extent.offsetBytes, data);
    if (done === undefined) {
      lease.release();
      return undefined;
    }
    return done.then((result) => {
      const problem = lease.problem();
      lease.release();
      if (result === WRITE_NOT_DONE) return leg.dev.write(at, data);
      if (result !== 0) {
        const errno = errnoName(result);
        throw new IoError(`${leg.name}: write at offset ${at} failed: ${errno}`, errno, { device: leg.name, offsetBytes: at });
      }
      // As a write through the layers would have been refused (a PV revoked meanwhile).
      if (problem !== undefined) throw problem;
    });
  }

  private async writeSlow(
    sector: number,
    data: Uint8Array,
    opts: TargetWriteOptions,
    first: number,
    last: number,
    ticket: OrderTicket,
    wait: Promise<void> | undefined,
  ): Promise<void> {
    let needLog: boolean;
    try {
      if (wait !== undefined) await wait;
      // Writes wait while the resync copies their regions (dm delays them too).
      while (this.regions.anyRecovering(first, last)) await this.regions.waitForRecovery();
      needLog = this.regions.beginWrite(first, last);
    } catch (e) {
      this.order.leave(ticket);
      throw e;
    }
    return this.writeBegun(sector, data, opts, first, last, ticket, needLog);
  }

  /** After beginWrite(): log flush if needed, the legs, then release the regions and the order ticket. */
  private async writeBegun(
    sector: number,
    data: Uint8Array,
    opts: TargetWriteOptions,
    first: number,
    last: number,
    ticket: OrderTicket,
    needLog: boolean,
  ): Promise<void> {
    let behind: Promise<void> | undefined;
    try {
      try {
        // The dirty mark must be on stable storage before any leg sees the data.
        if (needLog) await this.log.flush();
        behind = (await this.writeLegs(sector, data, opts, first, last))?.behind;
      } finally {
        if (behind === undefined) this.regions.endWrite(first, last);
      }
    } finally {
      if (behind === undefined) this.order.leave(ticket);
    }
    if (behind !== undefined) {
      // Acknowledged before the write-mostly legs have it: the regions stay
      // dirty and later overlapping writes wait until they do.
      const done: Promise<void> = behind.finally(() => {
        this.regions.endWrite(first, last);
        this.order.leave(ticket);
        this.behind.delete(done);
      });
      this.behind.add(done);
      if (this.behind.size > (this.personality.writeBehind?.maxBehind ?? 0)) await done;
    }
    if (this.failures.count > 0 && this.failures.gated) await this.awaitRecordedForClient();
  }

  /** Every write-behind write so far has ended (flush, suspend, destroy). */
  private async drainBehind(): Promise<void> {
    while (this.behind.size > 0) await Promise.all([...this.behind]);
  }

  /** The fast path's leg writes did not all succeed: wait for every leg, then as writeLegs() and writeBegun(). */
  private async afterLegFailure(legs: readonly MirrorLeg[], pending: Promise<void>[], first: number, last: number, ticket: OrderTicket): Promise<void> {
    try {
      try {
        const errors = await settle(pending);
        let ok = 0;
        errors.forEach((err, i) => {
          if (err === undefined) ok++;
          else this.failLeg(legs[i]!, "write", err);
        });
        if (ok === 0) throw new IoError(`${this.deviceName}: write failed on every leg`, errors[0]?.errno ?? "EIO");
      } finally {
        this.regions.endWrite(first, last);
      }
    } finally {
      this.order.leave(ticket);
    }
    if (this.failures.count > 0 && this.failures.gated) await this.awaitRecordedForClient();
  }

  /**
   * Writes the legs; resolves when the client may be answered, with the
   * write-behind part still running, if any (boxed: an async function
   * returning a promise would wait for it).
   */
  private async writeLegs(sector: number, data: Uint8Array, opts: TargetWriteOptions, first: number, last: number): Promise<{ behind: Promise<void> } | undefined> {
    let targets: MirrorLeg[];
    if (this.allInSync(first, last) || this.recovering()) {
      targets = this.liveLegs();
    } else {
      // Part of the write is in regions only the source holds: without the
      // source those regions are lost, as for reads.
      const src = this.outOfSyncSource();
      if (src === undefined) {
        throw new IoError(`${this.deviceName}: region out of sync and its source leg failed`, "EIO");
      }
      // POLICY (as dm): writes wholly inside out-of-sync regions go to the
      // source only; the resync carries them to the other legs. A write that
      // also touches an in-sync region goes to every live leg, or that
      // region would stop being in sync.
      targets = this.anyInSync(first, last) ? this.liveLegs() : [src];
    }
    if (targets.length === 0) throw new IoError(`${this.deviceName}: all mirror legs failed`, "EIO");
    const offsetBytes = sector * SECTOR_BYTES;
    const wo = opts.fua ? { fua: true } : undefined;
    if (targets.length === 1) {
      const leg = targets[0]!;
      try {
        await leg.dev.write(leg.offsetBytes + offsetBytes, data, wo);
        return undefined;
      } catch (e) {
        if (!(e instanceof IoError)) throw e;
        this.failLeg(leg, "write", e);
        throw new IoError(`${this.deviceName}: write failed on the only live leg ${leg.name}`, e.errno, undefined, e);
      }
    }
    const wb = this.personality.writeBehind;
    const back = wb !== undefined && wo === undefined ? targets.filter((l) => wb.legs.has(l.index)) : [];
    const front = back.length > 0 ? targets.filter((l) => !wb!.legs.has(l.index)) : targets;
    if (back.length > 0 && front.length > 0) {
      // The client's buffer is reused once it is answered: the behind legs write a copy.
      const copy = Uint8Array.from(data);
      const backDone = settle(back.map((l) => l.dev.write(l.offsetBytes + offsetBytes, copy))).then((errs) => {
        errs.forEach((err, i) => {
          if (err !== undefined) this.failLeg(back[i]!, "write", err);
        });
      });
      const errs = await settle(front.map((l) => l.dev.write(l.offsetBytes + offsetBytes, data)));
      let ok = 0;
      errs.forEach((err, i) => {
        if (err === undefined) ok++;
        else this.failLeg(front[i]!, "write", err);
      });
      if (ok > 0) return { behind: backDone };
      // No leg in front took it: the answer is the behind legs'.
      await backDone;
      if (back.every((l) => l.failed)) throw new IoError(`${this.deviceName}: write failed on every leg`, errs[0]?.errno ?? "EIO");
      return undefined;
    }
    const errors = await settle(
      targets.map((l) => (wo === undefined ? this.writeOnThread(l, offsetBytes, data) : undefined) ?? l.dev.write(l.offsetBytes + offsetBytes, data, wo)),
    );
    let ok = 0;
    errors.forEach((err, i) => {
      if (err === undefined) ok++;
      else this.failLeg(targets[i]!, "write", err);
    });
    if (ok === 0) throw new IoError(`${this.deviceName}: write failed on every leg`, errors[0]?.errno ?? "EIO");
    return undefined;
  }

  private anyInSync(first: number, last: number): boolean {
    for (let r = first; r <= last; r++) if (this.log.isInSync(r)) return true;
    return false;
  }

  private allInSync(first: number, last: number): boolean {
    if (this.log.syncCount === this.regions.regionCount) return true;
    for (let r = first; r <= last; r++) if (!this.log.isInSync(r)) return false;
    return true;
  }

  private liveLegs(): MirrorLeg[] {
    if (this.failures.count === 0) return this.legs as MirrorLeg[];
    return this.legs.filter((l) => !l.failed || this.stillWritten(l));
  }

  // ---- flush --------------------------------------------------------------

  /**
   * Flush every live leg (a flush error fails that leg) and the log. The
   * regions that were idle before the flush started are identical on stable
   * storage afterwards, so they are marked clean right away (the log write
   * that records it runs in the background).
   */
  async flush(opts?: { readonly suspending?: boolean }): Promise<void> {
    const candidates = this.cleaningAllowed() ? this.regions.cleanCandidates(this.cleanAgeEpochs()) : [];
    // A flush covers every write acknowledged before it, write-behind ones included.
    await this.drainBehind();
    await this.flushLegs();
    await this.log.flush();
    // A client's flush is not acknowledged before every leg failure is recorded. The
    // suspend's own flush has no client, and must not wait: the record needs the VG
    // lock, which the command that is reloading this mirror may hold (a deadlock CI
    // once hit, in vgreduce --removemissing right after a leg failed).
    if (this.failures.count > 0 && this.failures.gated && opts?.suspending !== true) await this.awaitRecordedForClient();
    if (candidates.length > 0 && this.cleaningAllowed() && this.regions.commitClean(candidates) > 0) {
      void this.log.flush().catch(() => undefined);
    }
  }

  private async flushLegs(): Promise<void> {
    const legs = this.liveLegs().slice();
    if (legs.length === 0) throw new IoError(`${this.deviceName}: all mirror legs failed`, "EIO");
    const errors = await settle(legs.map((l) => l.dev.flush()));
    let ok = 0;
    errors.forEach((err, i) => {
      if (err === undefined) ok++;
      else this.failLeg(legs[i]!, "flush", err);
    });
    if (ok === 0) throw new IoError(`${this.deviceName}: flush failed on every leg`, errors[0]?.errno ?? "EIO");
  }

  // ---- cleaning -----------------------------------------------------------

  /**
   * POLICY: regions are only marked clean while no failed leg is unrecorded.
   * A leg that failed keeps missing writes; if it came back at the next
   * activation without the VG metadata saying it failed, every region
   * written since must still be dirty so that it is resynced. Once the
   * handler (handle_errors) confirmed the failure is recorded, the next
   * activation will not trust that leg, and cleaning is safe again.
   */
  private cleaningAllowed(): boolean {
    if (this.personality.keepDirtyWhileDegraded === true && this.failures.count > 0) return false;
    return this.log.persistent && this.failures.allRecorded();
  }

  /**
   * With the periodic cleaner running, client flushes and the cleaner only
   * clean regions idle for cleanAfterIdlePeriods whole cleaner periods
   * (RegionHash.cleanCandidates); without it (cleanIntervalMs 0), and for
   * cleanNow() and suspend, every idle region.
   */
  private cleanAgeEpochs(): number {
    return this.cleanTimer !== undefined && this.opts.cleanAfterIdlePeriods > 0 ? this.opts.cleanAfterIdlePeriods + 1 : 0;
  }

  private async clean(minIdleEpochs = 0): Promise<number> {
    if (!this.cleaningAllowed()) return 0;
    const candidates = this.regions.cleanCandidates(minIdleEpochs);
    if (candidates.length === 0) return 0;
    try {
      await this.flushLegs();
    } catch {
      return 0;
    }
    if (!this.cleaningAllowed()) return 0;
    const n = this.regions.commitClean(candidates);
    if (n > 0) await this.log.flush();
    return n;
  }

  private startCleanTimer(): void {
    if (this.cleanTimer !== undefined || this.opts.cleanIntervalMs <= 0) return;
    this.cleanTimer = setInterval(() => {
      this.regions.advanceEpoch();
      if (this.cleaning === undefined) {
        this.cleaning = this.clean(this.cleanAgeEpochs())
          .then(() => undefined, () => undefined)
          .finally(() => {
            this.cleaning = undefined;
          });
      }
    }, this.opts.cleanIntervalMs);
    this.cleanTimer.unref();
  }

  private stopCleanTimer(): void {
    if (this.cleanTimer !== undefined) clearInterval(this.cleanTimer);
    this.cleanTimer = undefined;
  }

  // ---- failures -----------------------------------------------------------

  failLeg(leg: MirrorLeg, kind: LegErrorKind, err: IoError): void {
    const first = !leg.failed;
    // dm keeps the default mirror while out of sync ("better to fail reads
    // than to return stale data"); once everything is in sync any live leg
    // is as good as the source.
    const wasSource = leg.index === this.sourceIndex;
    this.failures.fail(leg, kind, err);
    if (first && wasSource && this.log.syncCount === this.regions.regionCount) {
      const next = this.primaryLeg();
      if (next !== undefined) this.sourceIndex = next.index;
    }
  }

  /**
   * Before a client is answered (a write that missed a failed leg, a
   * flush): every leg failure recorded by the policy. If the device starts
   * suspending first, the request is given back (RequeueRequest) and issued
   * again after resume, as dm-raid1 does with the bios it holds: the record
   * needs the VG lock, which the command suspending this mirror to reload it
   * may hold, and a suspend waits for the I/O in flight.
   */
  private async awaitRecordedForClient(): Promise<void> {
    if (this.requeueing) throw new RequeueRequest(this.deviceName);
    const recorded = this.failures.awaitRecorded();
    if (this.requeueSignal === undefined) {
      let wake!: () => void;
      const promise = new Promise<void>((r) => (wake = r));
      this.requeueSignal = { promise, wake };
    }
    const wasRecorded = await Promise.race([recorded.then(() => true), this.requeueSignal.promise.then(() => false)]);
    if (!wasRecorded) throw new RequeueRequest(this.deviceName);
  }

  /** The device starts suspending: give back what waits for a record, and what would. */
  presuspend(): void {
    this.requeueing = true;
    this.requeueSignal?.wake();
  }

  private emit(event: MapperEvent): Promise<void> {
    const h = this.env.onEvent;
    if (h === undefined) return Promise.resolve();
    try {
      return Promise.resolve(h.call(this.env, event));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private onAllInSync(): void {
    const recovered = this.legs.filter((l) => l.stale && !l.failed);
    for (const l of this.legs) if (!l.failed) l.stale = false;
    this.fullRecovery.clear();
    if (recovered.length > 0 || !this.inSyncReported) this.personality.inSync?.(recovered);
    const w = this.inSyncWaiters;
    this.inSyncWaiters = [];
    for (const f of w) f();
    if (!this.inSyncReported) {
      this.inSyncReported = true;
      void this.emit({ kind: "in-sync", device: this.deviceName }).catch(() => undefined);
    }
  }

  private maybeStartResync(): void {
    if (!this.activated || this.destroyed || !this.resyncEnabled) return;
    if (this.log.syncCount === this.regions.regionCount) {
      this.onAllInSync();
      return;
    }
    this.resyncer.start();
  }

  // ---- life cycle ---------------------------------------------------------

  async resume(): Promise<void> {
    this.requeueing = false;
    this.requeueSignal = undefined;
    if (this.writeThread !== undefined && this.legs.length > 1 && this.legs.some((l) => legLendsExtents(l, true))) this.writeThread.warmUp();
    if (!this.activated) {
      // A new leg (lvconvert -m+N) is copied in full: have the copy threads start while the log is prepared.
      if (this.legs.some((l) => l.stale)) this.resyncer.warmUp();
      await this.log.resume();
      if (this.legs.some((l) => l.stale && this.fullRecovery.has(l))) {
        this.log.markAllOutOfSync();
        await this.log.flush();
      }
      await this.personality.preresume?.();
      this.activated = true;
    }
    this.startCleanTimer();
    this.maybeStartResync();
  }

  /**
   * Presuspend + postsuspend: finish the batch being copied, stop, flush the
   * legs and leave every idle region clean in the log, so that a clean
   * shutdown needs no resync at the next activation.
   */
  async suspend(): Promise<void> {
    this.stopCleanTimer();
    await this.drainBehind();
    await this.resyncer.stop();
    while (this.cleaning) await this.cleaning;
    try {
      await this.clean();
    } catch {
      // legs already failed are reported; suspend itself does not fail
    }
    await this.log.flush();
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    this.stopCleanTimer();
    await this.drainBehind();
    await this.resyncer.stop();
    while (this.cleaning) await this.cleaning;
    await this.set.releaseAll();
  }

  // ---- reporting ----------------------------------------------------------

  status(): MirrorStatus {
    const sourceFailed = this.resyncSource() === undefined;
    return {
      type: "mirror",
      legs: this.legs.map((l) => ({ device: l.name, health: legHealth(l), stale: l.stale })),
      insyncRegions: this.log.syncCount,
      totalRegions: this.regions.regionCount,
      regionSectors: this.args.regionSectors,
      log:
        this.log.type === "disk"
          ? { type: "disk", device: this.log.deviceName ?? "", health: this.log.health }
          : { type: "core" },
      sourceLeg: this.sourceIndex,
      primaryLeg: this.primaryLeg()?.index,
      handleErrors: this.args.handleErrors,
      resync: {
        running: this.resyncer.running,
        rateBytesPerSec: this.resyncer.rateBytesPerSec,
        copiedBytes: this.resyncer.copiedBytes,
        copiedRegions: this.resyncer.copiedRegions,
      },
      lostRegions: sourceFailed ? this.regions.regionCount - this.log.syncCount : 0,
    };
  }

  tableArgs(): readonly string[] {
    return formatMirrorArgs(this.args);
  }

  devices(): readonly DeviceUse[] {
    return this.set.uses;
  }

  async message(words: readonly string[]): Promise<string | void> {
    const [cmd, arg] = words;
    if (cmd === "resync_rate" && arg !== undefined && /^[0-9]+$/.test(arg)) return this.setResyncRate(Number(arg));
    if (cmd === "clean" && arg === undefined) return String(await this.cleanNow());
    throw new TableError(`mirror: unrecognised message "${words.join(" ")}" (known: resync_rate <bytes/s>, clean)`);
  }

  /** Narrow a Target to a MirrorTarget. */
  static is(t: Target | undefined): t is MirrorTarget {
    return t instanceof MirrorTarget;
  }
}

/** Run promises to completion; return each one's IoError (or undefined). Other errors propagate. */
async function settle(ps: Promise<void>[]): Promise<Array<IoError | undefined>> {
  const out = await Promise.all(
    ps.map((p) =>
      p.then(
        () => undefined,
        (e: unknown) => (e instanceof IoError ? e : Promise.reject(e)),
      ),
    ),
  );
  return out;
}

/**
 * The bad blocks an integrity layer named in its EILSEQ (IntegrityMismatchError),
 * as runs of adjacent blocks in array sectors; undefined when it named none.
 */
function mismatchRuns(err: IoError, legOffsetSectors: number): { sector: number; sectors: number }[] | undefined {
  if (!(err instanceof IntegrityMismatchError)) return undefined;
  const runs: { sector: number; sectors: number }[] = [];
  for (const s of err.badSectors) {
    const at = s - legOffsetSectors;
    const prev = runs[runs.length - 1];
    if (prev !== undefined && prev.sector + prev.sectors === at) prev.sectors += err.blockSectors;
    else runs.push({ sector: at, sectors: err.blockSectors });
  }
  return runs;
}
