import type { DirtyLog } from "../../dirty-log/dirty-log.js";

/**
 * The mirror's region state machine (dm-region-hash.c, in our own shape).
 *
 * Each region of the mirror is, as far as writes are concerned:
 *
 *   clean       in sync, log bit clean, no write in flight;
 *   dirty       in sync, log bit dirty (writes in flight, or finished but not
 *               yet cleaned);
 *   nosync      out of sync: only the source leg holds the data;
 *   recovering  being copied from the source leg by the resync.
 *
 * "clean/dirty" lives in the log's clean bitmap, "in sync" in its in-sync
 * bitmap; this class adds what is only needed while running: per-region
 * count of writes in flight (`pending`), a write generation (to tell whether
 * a region was written while the legs were being flushed), the recovering
 * flag with the writers waiting for it, and the set of dirty regions that
 * the cleaner may turn clean again.
 *
 * Transitions:
 *   clean --beginWrite--> dirty (log mark; must be durable before the write
 *     reaches any leg)
 *   dirty --cleaner: idle, legs flushed, not written meanwhile--> clean
 *   nosync --startRecovery--> recovering (new writes wait; copier waits for
 *     pending writes to drain)
 *   recovering --endRecovery(ok)--> dirty (in sync; cleaned later, after a
 *     leg flush, like any other dirty region)
 */
export class RegionHash {
  readonly regionCount: number;
  private readonly pending: Uint32Array;
  private readonly gen: Uint32Array;
  private readonly recovering: Uint8Array;
  private recoveringCount = 0;
  /** Writers waiting for some recovering region to finish. */
  private recoveryWaiters: Array<() => void> = [];
  /** The copier waiting for writes in [first, last] to drain. */
  private quiesceWaiter: { first: number; last: number; resolve: () => void } | undefined;
  /** Regions whose clean bit is 0 and may be cleaned when idle and in sync. */
  private readonly dirty = new Set<number>();
  /** Cleaner epoch (advanced by the periodic cleaner) and the epoch of each region's latest write. */
  private epoch = 0;
  private readonly writeEpoch: Uint32Array;

  constructor(
    private readonly log: DirtyLog,
    readonly regionSectors: number,
    readonly lengthSectors: number,
  ) {
    this.regionCount = log.regionCount;
    this.pending = new Uint32Array(this.regionCount);
    this.gen = new Uint32Array(this.regionCount);
    this.recovering = new Uint8Array(this.regionCount);
    this.writeEpoch = new Uint32Array(this.regionCount);
  }

  regionOf(sector: number): number {
    return Math.floor(sector / this.regionSectors);
  }

  regionStartSector(region: number): number {
    return region * this.regionSectors;
  }

  /** The last region may be shorter than regionSectors. */
  regionLengthSectors(region: number): number {
    return Math.min(this.regionSectors, this.lengthSectors - region * this.regionSectors);
  }

  isRecovering(region: number): boolean {
    return this.recovering[region] === 1;
  }

  /** In sync and not being copied: every live leg may serve it. */
  isReadableFromAnyLeg(region: number): boolean {
    return this.recovering[region] === 0 && this.log.isInSync(region);
  }

  /** Is any region being copied right now? */
  anyRecoveringAt(): boolean {
    return this.recoveringCount !== 0;
  }

  anyRecovering(first: number, last: number): boolean {
    if (this.recoveringCount === 0) return false;
    for (let r = first; r <= last; r++) if (this.recovering[r] === 1) return true;
    return false;
  }

  /** Resolves after the next recovery batch ends; callers re-check. */
  waitForRecovery(): Promise<void> {
    return new Promise((r) => this.recoveryWaiters.push(r));
  }

  /**
   * A write to [first, last] is about to be issued: count it in flight and
   * dirty every clean region. Returns true when a log write must complete
   * before the data may reach any leg (some region's dirty mark is not yet
   * durable). Synchronous: when every region is already durably dirty the
   * write path has nothing to await.
   */
  beginWrite(first: number, last: number): boolean {
    let needLog = false;
    for (let r = first; r <= last; r++) {
      this.pending[r]!++;
      this.gen[r] = (this.gen[r]! + 1) >>> 0;
      this.writeEpoch[r] = this.epoch;
      if (this.log.isClean(r)) {
        this.log.markDirty(r);
        this.dirty.add(r);
      }
      if (!needLog && !this.log.isMarkDurable(r)) needLog = true;
    }
    return needLog;
  }

  /** The write has completed on every leg it was sent to. */
  endWrite(first: number, last: number): void {
    for (let r = first; r <= last; r++) this.pending[r]!--;
    const q = this.quiesceWaiter;
    if (q !== undefined && first <= q.last && q.first <= last && this.idle(q.first, q.last)) {
      this.quiesceWaiter = undefined;
      q.resolve();
    }
  }

  private idle(first: number, last: number): boolean {
    for (let r = first; r <= last; r++) if (this.pending[r] !== 0) return false;
    return true;
  }

  /** Stop new writes to [first, last]; writes already counted carry on. */
  startRecovery(first: number, last: number): void {
    for (let r = first; r <= last; r++) {
      if (this.recovering[r] === 0) {
        this.recovering[r] = 1;
        this.recoveringCount++;
      }
    }
  }

  /** Resolves once no write is in flight in [first, last]. */
  quiesce(first: number, last: number): Promise<void> {
    if (this.idle(first, last)) return Promise.resolve();
    return new Promise((resolve) => {
      this.quiesceWaiter = { first, last, resolve };
    });
  }

  /**
   * Copy finished (or gave up). Regions copied to every live leg become in
   * sync but stay dirty in the log until the cleaner has flushed the legs.
   */
  endRecovery(first: number, last: number, inSync: boolean): void {
    for (let r = first; r <= last; r++) {
      if (this.recovering[r] === 1) {
        this.recovering[r] = 0;
        this.recoveringCount--;
      }
      if (inSync) {
        this.log.setInSync(r, true);
        if (!this.log.isClean(r)) this.dirty.add(r);
        // Just written to the other legs: it ages like any written region, so
        // a running resync is not followed by leg flushes every cleaner period.
        this.writeEpoch[r] = this.epoch;
      }
    }
    const w = this.recoveryWaiters;
    this.recoveryWaiters = [];
    for (const f of w) f();
  }

  /** The periodic cleaner starts a new epoch on each run. */
  advanceEpoch(): void {
    this.epoch = (this.epoch + 1) >>> 0;
  }

  /**
   * Idle, in-sync dirty regions with their write generation, for the
   * cleaner. With `minIdleEpochs` > 0 only regions not written during the
   * last that many epochs qualify (n + 1 = idle for at least n whole cleaner
   * periods).
   *
   * Why age them: cleaning a region costs a flush of every leg now and a
   * durable log write (FUA) before the next write to it. A region that is
   * still being written would be cleaned and dirtied again on every cleaner
   * run, which puts a synchronous log write on the write path of sustained
   * writes (and leg flushes of everything written meanwhile). md's bitmap
   * ages its bits the same way before clearing them. Crash safety is not
   * affected: a region stays dirty longer, so a crash resyncs it.
   */
  cleanCandidates(minIdleEpochs = 0): Array<{ region: number; gen: number }> {
    const out: Array<{ region: number; gen: number }> = [];
    for (const r of this.dirty) {
      if (this.log.isClean(r)) {
        this.dirty.delete(r);
        continue;
      }
      if (minIdleEpochs > 0 && ((this.epoch - this.writeEpoch[r]!) >>> 0) < minIdleEpochs) continue;
      if (this.pending[r] === 0 && this.recovering[r] === 0 && this.log.isInSync(r)) out.push({ region: r, gen: this.gen[r]! });
    }
    return out;
  }

  /**
   * After the legs were flushed: mark clean every candidate not written
   * since it was picked. Crash-safety: a clean bit is only ever set for a
   * region whose every write completed before the leg flush started, so
   * "clean" on disk implies the legs are identical on stable storage.
   */
  commitClean(candidates: ReadonlyArray<{ region: number; gen: number }>): number {
    let n = 0;
    for (const { region, gen } of candidates) {
      if (this.pending[region] !== 0 || this.gen[region] !== gen || this.recovering[region] !== 0) continue;
      if (!this.log.isInSync(region) || this.log.isClean(region)) continue;
      this.log.markClean(region);
      this.dirty.delete(region);
      n++;
    }
    return n;
  }

  get dirtyCount(): number {
    return this.dirty.size;
  }

  pendingIn(region: number): number {
    return this.pending[region]!;
  }
}
