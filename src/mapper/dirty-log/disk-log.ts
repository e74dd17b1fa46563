import type { BlockDevice } from "../../blockdev/block-device.js";
import type { LogHealth } from "../status.js";
import type { DeviceUse } from "../target.js";
import type { SyncMode } from "./dirty-log.js";
import { CoreDirtyLog } from "./core-log.js";
import { clearBit, setBit } from "./bitset.js";
import {
  DISK_LOG_BITMAP_OFFSET_BYTES,
  MIRROR_DISK_VERSION,
  MIRROR_MAGIC,
  decodeDiskLog,
  diskLogBitmapBytes,
  diskLogTransferBytes,
  writeDiskLogHeader,
} from "./disk-log-format.js";
import { FormatError, IoError } from "../../errors/errors.js";
import { SECTOR_BYTES } from "../../base/bytes.js";

/**
 * The persistent ("disk") dirty log, byte-compatible with dm-log.c so that
 * lvm2 + device-mapper can take the disks over (and we can take theirs).
 *
 * The transfer buffer holds header and clean bitmap exactly as on disk; the
 * clean bits the core log manipulates *are* the bytes at offset 1024 of that
 * buffer. Every log write sends a snapshot of the whole buffer from sector 0.
 *
 * Durability: a dirty mark (bit cleared) must be on stable storage before
 * any leg sees a write to that region, so writes that carry new dirty marks
 * go out with FUA (or write + flush when the device has no FUA). Writes that
 * only set clean bits need no flush: losing one just causes an extra resync.
 *
 * Failure: any log I/O error turns the log "D" (or "F" for a flush error),
 * reported once through `onFailure`; the log then stops writing and
 * `persistent` becomes false, and the mirror keeps serving (degraded).
 */
export class DiskDirtyLog extends CoreDirtyLog {
  override readonly type = "disk" as const;
  private readonly buf: Uint8Array;
  private failedAs: LogHealth = "A";
  /** Bumped on every bit change; a log write covers the changes up to its snapshot. */
  private gen = 0;
  /** Newest gen of a dirty mark (clean bit cleared). */
  private dirtyGen = 0;
  /** Gen covered by the last successful log write. */
  private durableGen = 0;
  /** Gen of each region's latest dirty mark. */
  private readonly markGen: Float64Array;
  private inflight: Promise<void> | undefined;
  /** Log writes issued (for tests and benchmarks). */
  writesIssued = 0;

  constructor(
    regionSectors: number,
    regionCount: number,
    syncMode: SyncMode,
    private readonly logName: string,
    private readonly dev: BlockDevice,
    private readonly onFailure: (errno: string) => void,
    private readonly logicalBlockBytes = 512,
  ) {
    const buf = new Uint8Array(diskLogTransferBytes(regionCount, logicalBlockBytes));
    super(regionSectors, regionCount, syncMode, buf.subarray(DISK_LOG_BITMAP_OFFSET_BYTES, DISK_LOG_BITMAP_OFFSET_BYTES + diskLogBitmapBytes(regionCount)));
    this.buf = buf;
    this.markGen = new Float64Array(regionCount);
  }

  /** Bytes of one log transfer; the log device must be at least this large. */
  static transferBytes(regionCount: number, logicalBlockBytes = 512): number {
    return diskLogTransferBytes(regionCount, logicalBlockBytes);
  }

  override get persistent(): boolean {
    return this.failedAs === "A";
  }

  override get health(): LogHealth {
    return this.failedAs;
  }

  override get deviceName(): string {
    return this.logName;
  }

  private fail(as: "D" | "F", e: unknown): void {
    if (this.failedAs !== "A") return;
    this.failedAs = as;
    this.onFailure(e instanceof IoError ? e.errno : "EIO");
  }

  /**
   * dm-log.c disk_resume: read the header; a wrong magic, or a `sync`/
   * `nosync` load, means a new log (nr_regions = 0). Regions from nr_regions
   * up to region_count are then dirtied (or cleaned with nosync), so a fresh
   * LVM log (nr_regions all ones) keeps the bits LVM wrote. Bits past the
   * last region are cleared, in-sync := clean, and the header is written
   * back with nr_regions = region_count. An unreadable log means every
   * region is out of sync.
   */
  override async resume(): Promise<void> {
    let nrRegions = 0n;
    let usable = true;
    try {
      await this.dev.read(0, this.buf);
      try {
        const { header } = decodeDiskLog(this.buf, this.regionCount, this.logName);
        nrRegions = header.nrRegions;
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        if (e.details["kind"] === "version") {
          // POLICY: a log in a format we do not know is not overwritten;
          // run degraded with everything out of sync.
          this.fail("D", new IoError(e.message, "EINVAL"));
          usable = false;
        }
        nrRegions = 0n;
      }
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      this.fail("D", e);
      usable = false;
      this.buf.fill(0);
    }
    if (this.syncMode !== "default") nrRegions = 0n;
    const firstNew = nrRegions >= BigInt(this.regionCount) ? this.regionCount : Number(nrRegions);
    for (let r = firstNew; r < this.regionCount; r++) {
      if (this.syncMode === "nosync") setBit(this.cleanBits, r);
      else clearBit(this.cleanBits, r);
    }
    this.clearTail(this.cleanBits);
    this.syncBits.set(this.cleanBits);
    this.recount();
    writeDiskLogHeader(this.buf, { magic: MIRROR_MAGIC, version: MIRROR_DISK_VERSION, nrRegions: BigInt(this.regionCount) });
    if (!usable) return;
    this.gen++;
    this.dirtyGen = this.gen;
    await this.flush();
  }

  override markDirty(region: number): void {
    clearBit(this.cleanBits, region);
    this.gen++;
    this.dirtyGen = this.gen;
    this.markGen[region] = this.gen;
  }

  override isMarkDurable(region: number): boolean {
    return this.markGen[region]! <= this.durableGen || this.failedAs !== "A";
  }

  override markClean(region: number): void {
    setBit(this.cleanBits, region);
    this.gen++;
  }

  override markAllOutOfSync(): void {
    super.markAllOutOfSync();
    this.gen++;
    this.dirtyGen = this.gen;
    this.markGen.fill(this.gen);
  }

  /**
   * Make every change made before this call reach the log device. Callers
   * arriving while a write is in flight wait for it, then at most one more
   * write carries everything changed meanwhile: concurrent marks coalesce.
   */
  override async flush(): Promise<void> {
    const want = this.gen;
    while (this.failedAs === "A" && this.durableGen < want) {
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
    const copy = this.buf.slice();
    this.writesIssued++;
    try {
      if (needsDurable && this.dev.caps.fua) {
        await this.dev.write(0, copy, { fua: true });
      } else {
        await this.dev.write(0, copy);
        if (needsDurable) {
          try {
            await this.dev.flush();
          } catch (e) {
            if (!(e instanceof IoError)) throw e;
            this.fail("F", e);
            return;
          }
        }
      }
      this.durableGen = snap;
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      this.fail("D", e);
    }
  }

  override tableArgs(): string[] {
    const extra = this.syncArgs();
    return ["disk", String(2 + extra.length), this.logName, String(this.regionSectors), ...extra];
  }

  override devices(): readonly DeviceUse[] {
    return [
      {
        name: this.logName,
        offsetSectors: 0,
        lengthSectors: diskLogTransferBytes(this.regionCount, this.logicalBlockBytes) / SECTOR_BYTES,
        role: "log",
      },
    ];
  }
}
