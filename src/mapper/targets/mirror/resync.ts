import type { DirtyLog } from "../../dirty-log/dirty-log.js";
import type { RegionHash } from "./region-hash.js";
import { legLendsExtents, type MirrorLeg } from "./mirror-leg.js";
import { BULK_IO, type ExtentLease } from "../../../blockdev/block-device.js";
import type { CopyEngine, CopyOutcome } from "../../copy-threads/copy-engine.js";
import { IoError } from "../../../errors/errors.js";
import { SECTOR_BYTES } from "../../../base/bytes.js";
import { RateThrottle } from "./rate-throttle.js";

/** What the copier needs from the mirror it works for. */
export interface ResyncHost {
  readonly regions: RegionHash;
  readonly log: DirtyLog;
  /** The leg out-of-sync regions are copied from; undefined if it failed. */
  resyncSource(): MirrorLeg | undefined;
  /** Live legs other than the source. */
  resyncDestinations(): MirrorLeg[];
  failLeg(leg: MirrorLeg, op: "resync", err: IoError): void;
  /** No region is out of sync any more. */
  allInSync(): void;
}

export interface ResyncOptions {
  /** Size of each read/write the copier issues; two buffers of it are reused. */
  readonly ioBytes: number;
  /** How much is quiesced and copied at a time (rounded to whole regions, at least one). */
  readonly batchBytes: number;
  /** 0 = as fast as the devices go. */
  readonly rateBytesPerSec: number;
  /** Copy threads, used for a batch whenever they are up and every leg can lease its extents. */
  readonly engine?: CopyEngine | undefined;
  /** The batch size while the threads copy unthrottled. */
  readonly engineBatchBytes?: number;
}

/**
 * The copier (dm-raid1 do_recovery + kcopyd): walks the out-of-sync regions
 * in region order, a batch of consecutive regions at a time. For each batch
 * it stops new writes to the batch (recovering), waits for writes in flight
 * there to drain, copies source -> every other live leg with large I/Os
 * (reading the next chunk while the current one is being written), and
 * marks the regions in sync. Until then reads of those regions come from
 * the source only, so no client ever reads a leg that lacks the data.
 *
 * Where every leg is plain file I/O, the copy engine's threads copy each
 * batch on the leased descriptors, off the event loop; otherwise (and while
 * the threads start) the batch is copied here with bulk reads and writes.
 */
export class Resyncer {
  copiedBytes = 0;
  copiedRegions = 0;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private bufs: [Uint8Array, Uint8Array] | undefined;
  private readonly throttler: RateThrottle;

  constructor(
    private readonly host: ResyncHost,
    private readonly opts: ResyncOptions,
  ) {
    this.throttler = new RateThrottle(opts.rateBytesPerSec);
  }

  get rateBytesPerSec(): number {
    return this.throttler.rateBytesPerSec;
  }

  get running(): boolean {
    return this.loop !== undefined;
  }

  start(): void {
    if (this.loop !== undefined) return;
    this.stopping = false;
    this.throttler.restart();
    this.warmUp();
    this.loop = this.run().finally(() => {
      this.loop = undefined;
    });
  }

  /** Start the copy threads if the legs can use them (their extents can be leased): they take a while to come up. */
  warmUp(): void {
    if (this.legsLend()) this.opts.engine!.warmUp();
  }

  /** There is an engine, and the source leg lends its extents (legs of one mirror are built alike). */
  private legsLend(): boolean {
    const source = this.host.resyncSource();
    return this.opts.engine !== undefined && source !== undefined && legLendsExtents(source, false);
  }

  /** Finish the batch being copied, then stop (presuspend). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.throttler.wake();
    await this.loop;
  }

  setRate(bytesPerSec: number): void {
    this.throttler.setRate(bytesPerSec);
  }

  private async run(): Promise<void> {
    const { regions, log } = this.host;
    const regionBytes = regions.regionSectors * SECTOR_BYTES;
    const batchRegionsFor = (bytes: number): number => Math.max(1, Math.floor(bytes / regionBytes));
    let cursor = 0;
    // Let the caller's resume() finish before the first batch.
    await Promise.resolve();
    const lend = this.legsLend();
    while (!this.stopping) {
      let first = log.nextToResync(cursor);
      if (first === undefined && cursor > 0) first = log.nextToResync(0);
      if (first === undefined) {
        // The copy buffers are only needed while copying.
        this.bufs = undefined;
        this.host.allInSync();
        return;
      }
      const source = this.host.resyncSource();
      // No valid source: these regions cannot be recovered in this activation.
      if (source === undefined) return;
      // Larger batches only where the threads will copy them: on the event loop a batch holds writes to it longer.
      const threads = lend && this.opts.engine?.ready === true && this.rateBytesPerSec <= 0;
      const batchRegions = batchRegionsFor(threads ? (this.opts.engineBatchBytes ?? this.opts.batchBytes) : this.opts.batchBytes);
      let last = first;
      while (last + 1 < regions.regionCount && last + 1 - first < batchRegions && !log.isInSync(last + 1)) last++;
      regions.startRecovery(first, last);
      let ok = false;
      try {
        await regions.quiesce(first, last);
        ok = await this.copy(first, last);
      } finally {
        regions.endRecovery(first, last, ok);
      }
      if (ok) this.copiedRegions += last - first + 1;
      cursor = last + 1 >= regions.regionCount ? 0 : last + 1;
      // The last batch: report it now, not after the throttle's sleep. A
      // suspend during that sleep stops the loop, and the report (raid1's
      // superblocks with array_resync_offset MaxSector, the in-sync event)
      // would never be made although the status already says 100%.
      if (log.syncCount === regions.regionCount) {
        this.bufs = undefined;
        this.host.allInSync();
        return;
      }
      await this.throttle();
      // Yield to the event loop between batches: devices that complete in
      // microtasks (memory, inline page-cache I/O) would otherwise let the
      // copier starve client requests and timers.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Copy regions [first, last] from the source to every other live leg. */
  private async copy(first: number, last: number): Promise<boolean> {
    const { regions } = this.host;
    const source = this.host.resyncSource();
    if (source === undefined) return false;
    let dests = this.host.resyncDestinations();
    // A single live leg is trivially in sync with itself.
    if (dests.length === 0) return true;
    const startSector = regions.regionStartSector(first);
    const totalBytes = (regions.regionStartSector(last) + regions.regionLengthSectors(last) - startSector) * SECTOR_BYTES;
    if (this.opts.engine?.ready === true) {
      const done = await this.copyOnThreads(this.opts.engine, source, dests, startSector * SECTOR_BYTES, totalBytes);
      if (done !== undefined) return done;
    }
    const ioBytes = Math.max(SECTOR_BYTES, Math.floor(this.opts.ioBytes / SECTOR_BYTES) * SECTOR_BYTES);
    const bufs = (this.bufs ??= [new Uint8Array(ioBytes), new Uint8Array(ioBytes)]);
    const baseBytes = startSector * SECTOR_BYTES;

    const readChunk = (buf: Uint8Array, off: number): Promise<IoError | undefined> =>
      source.dev.read(source.offsetBytes + baseBytes + off, buf, BULK_IO).then(
        () => undefined,
        (e: unknown) => {
          if (e instanceof IoError) return e;
          throw e;
        },
      );

    let cur = 0;
    let offset = 0;
    let len = Math.min(ioBytes, totalBytes);
    let reading = readChunk(bufs[cur]!.subarray(0, len), 0);
    while (offset < totalBytes) {
      const readErr = await reading;
      if (readErr !== undefined) {
        this.host.failLeg(source, "resync", readErr);
        return false;
      }
      const data = bufs[cur]!.subarray(0, len);
      const next = offset + len;
      const nextLen = Math.min(ioBytes, totalBytes - next);
      if (nextLen > 0) reading = readChunk(bufs[1 - cur]!.subarray(0, nextLen), next);
      const results = await Promise.all(
        dests.map((d) =>
          d.dev.write(d.offsetBytes + baseBytes + offset, data, BULK_IO).then(
            () => undefined,
            (e: unknown) => {
              if (e instanceof IoError) return e;
              throw e;
            },
          ),
        ),
      );
      const survivors: typeof dests = [];
      results.forEach((err, i) => {
        const d = dests[i]!;
        if (err === undefined) survivors.push(d);
        else this.host.failLeg(d, "resync", err);
      });
      dests = survivors.filter((d) => !d.failed);
      this.copiedBytes += len;
      this.throttler.account(len);
      if (dests.length === 0) {
        // Every destination failed: the source alone is in sync with itself.
        if (nextLen > 0) await reading;
        return !source.failed;
      }
      offset = next;
      len = nextLen;
      cur = 1 - cur;
      // Chunks served in-line complete without ever leaving this task: let
      // client requests in between them.
      if (offset < totalBytes) await new Promise<void>((r) => setImmediate(r));
    }
    // If the source failed meanwhile (e.g. a client read hit an error) what
    // we copied is not trusted: the regions stay out of sync.
    return !source.failed;
  }

  /**
   * Copy [baseBytes, baseBytes + totalBytes) of the mirror with the engine's
   * threads, on the legs' leased extents. Undefined (copy it the other way)
   * when some leg cannot lease them or the threads are gone.
   */
  private async copyOnThreads(engine: CopyEngine, source: MirrorLeg, dests: MirrorLeg[], baseBytes: number, totalBytes: number): Promise<boolean | undefined> {
    const leases: ExtentLease[] = [];
    try {
      const src = source.dev.leaseExtents?.(source.offsetBytes + baseBytes, totalBytes, false);
      if (src === undefined) return undefined;
      leases.push(src);
      for (const d of dests) {
        const l = d.dev.leaseExtents?.(d.offsetBytes + baseBytes, totalBytes, true);
        if (l === undefined) return undefined;
        leases.push(l);
      }
      let outcome: CopyOutcome;
      try {
        outcome = await engine.copy(
          src.extents,
          leases.slice(1).map((l) => l.extents),
        );
      } catch {
        return undefined; // the threads died or were stopped: the batch is still quiesced, copy it here
      }
      // A PV revoked while its descriptor was in use counts as that leg's error.
      const srcErr = outcome.srcError ?? src.problem();
      if (srcErr !== undefined) {
        this.host.failLeg(source, "resync", srcErr instanceof IoError ? srcErr : new IoError(`${source.name}: resync read failed: ${srcErr.message}`, srcErr.code));
        return false;
      }
      dests.forEach((d, i) => {
        const e = outcome.dstErrors[i] ?? leases[i + 1]!.problem();
        if (e === null || e === undefined) return;
        this.host.failLeg(d, "resync", e instanceof IoError ? e : new IoError(`${d.name}: resync write failed: ${e.message}`, e.code));
      });
      this.copiedBytes += totalBytes;
      this.throttler.account(totalBytes);
      return !source.failed;
    } finally {
      for (const l of leases) l.release();
    }
  }

  /** Keep the average copy rate at or below the rate (measured since start or the last rate change). */
  private async throttle(): Promise<void> {
    if (this.stopping) return;
    await this.throttler.wait();
  }
}
