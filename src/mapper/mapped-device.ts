import { BULK_IO, type BlockDevice, type BlockDeviceCaps, type ExtentLease, type FileExtent, type ReadOptions, type WriteOptions } from "../blockdev/block-device.js";
import { RequeueRequest, type Target, type TargetEnv, type TargetWriteOptions } from "./target.js";
import type { TargetStatus } from "./status.js";
import type { MapperEvent } from "./events.js";
import type { TargetTypes } from "./target-types.js";
import { Table, formatTableLine } from "./table.js";
import { TableError } from "./table-error.js";
import { formatStatusInfo } from "./status.js";
import { defaultTargetTypes } from "./target-types.js";
import { BusyError, IoError } from "../errors/errors.js";
import { SECTOR_BYTES } from "../base/bytes.js";

const FUA_WRITE: TargetWriteOptions = Object.freeze({ fua: true });
const PLAIN_WRITE: TargetWriteOptions = Object.freeze({ fua: false });
const readPiece = (t: Target, sector: number, piece: Uint8Array): Promise<void> => t.read(sector, piece);
const writePiece = (t: Target, sector: number, piece: Uint8Array): Promise<void> => t.write(sector, piece, PLAIN_WRITE);
const writePieceFua = (t: Target, sector: number, piece: Uint8Array): Promise<void> => t.write(sector, piece, FUA_WRITE);
const BULK_WRITE: TargetWriteOptions = Object.freeze({ fua: false, bulk: true });
const readPieceBulk = (t: Target, sector: number, piece: Uint8Array): Promise<void> => t.read(sector, piece, BULK_IO);
const writePieceBulk = (t: Target, sector: number, piece: Uint8Array): Promise<void> => t.write(sector, piece, BULK_WRITE);

interface LoadedTable {
  readonly table: Table;
  readonly targets: readonly Target[];
  /** Start sector of each target, ascending (for binary search). */
  readonly starts: readonly number[];
}

export interface MappedDeviceOptions {
  /** Resolves device names in table lines and receives events. */
  readonly env: TargetEnv;
  readonly targetTypes?: TargetTypes;
}

export interface MappedDeviceInfo {
  readonly name: string;
  /** As `dmsetup info`: ACTIVE or SUSPENDED (or REMOVED). */
  readonly state: "ACTIVE" | "SUSPENDED" | "REMOVED";
  readonly liveTable: boolean;
  readonly inactiveTable: boolean;
  readonly sizeSectors: number;
  readonly eventNr: number;
  readonly inflight: number;
}

export interface TargetStatusLine {
  readonly startSector: number;
  readonly lengthSectors: number;
  readonly targetType: string;
  readonly status: TargetStatus;
}

/**
 * A mapped device: what /dev/mapper/<name> is for device-mapper, in
 * userspace. It is a BlockDevice (the NBD server serves it directly) that
 * routes each byte-addressed request to the targets of its live table,
 * split at target boundaries.
 *
 * Life cycle (dm semantics):
 *   load(table)  build the targets into the inactive slot (devices opened,
 *                arguments validated); the live table keeps serving.
 *   suspend()    new I/O is queued, in-flight I/O drains, targets flush and
 *                quiesce (a mirror stops its resync and cleans its log).
 *   resume()     swap in the inactive table if one is loaded (suspending
 *                first if needed), destroy the old targets, resume the new
 *                ones, release the queued I/O. Clients never notice a
 *                reload except as a pause.
 *   remove()     suspend, destroy everything; later I/O fails with ENXIO.
 *
 * Requests must lie inside the device (EINVAL, or ENOSPC for writes,
 * otherwise). Targets work in whole 512-byte sectors; requests that are not
 * sector-aligned are served here: reads through a bounce buffer, writes by
 * read-modify-write of the partial sectors. A partial-sector write must not
 * interleave with any other write (it would put back stale bytes of a
 * sector someone else just wrote), so it runs exclusively: it waits for the
 * writes in flight and holds new ones back meanwhile. Aligned writes only
 * pay a field check for this. Clients that align (the kernel, qemu, file
 * systems) never take that path; the NBD server may still advertise a
 * 512-byte preferred block size. A device with no live table has size 0
 * and fails I/O.
 */
const SUSPENDING = Object.freeze({ suspending: true });

export class MappedDevice implements BlockDevice {
  readonly caps: BlockDeviceCaps = { write: true, flush: true, fua: true, trim: false };
  /** Bytes per sector; requests must be multiples of it. */
  readonly logicalBlockBytes = SECTOR_BYTES;
  private live: LoadedTable | undefined;
  private inactive: LoadedTable | undefined;
  private suspended = false;
  private removed = false;
  private inflight = 0;
  private drainWaiters: Array<() => void> = [];
  private resumeWaiters: Array<() => void> = [];
  private eventCounter = 0;
  private eventWaiters: Array<() => void> = [];
  private readonly types: TargetTypes;
  private readonly env: TargetEnv;
  private lifecycle: Promise<unknown> = Promise.resolve();

  constructor(
    public name: string,
    opts: MappedDeviceOptions,
  ) {
    this.types = opts.targetTypes ?? defaultTargetTypes();
    const outer = opts.env;
    // Count events like dm's event_nr, then hand them to the caller's policy.
    this.env = {
      openDevice: (n) => outer.openDevice(n),
      releaseDevice: outer.releaseDevice ? (n, d) => outer.releaseDevice!(n, d) : undefined,
      onEvent: (e: MapperEvent) => {
        this.eventCounter++;
        const w = this.eventWaiters;
        this.eventWaiters = [];
        for (const f of w) f();
        return outer.onEvent?.(e);
      },
    };
  }

  get sizeBytes(): number {
    return (this.live?.table.sizeSectors ?? 0) * SECTOR_BYTES;
  }

  get sizeSectors(): number {
    return this.live?.table.sizeSectors ?? 0;
  }

  get eventNr(): number {
    return this.eventCounter;
  }

  /** Resolves once eventNr > afterNr (`dmsetup wait`). */
  async waitForEvent(afterNr: number): Promise<number> {
    while (this.eventCounter <= afterNr) await new Promise<void>((r) => this.eventWaiters.push(r));
    return this.eventCounter;
  }

  info(): MappedDeviceInfo {
    return {
      name: this.name,
      state: this.removed ? "REMOVED" : this.suspended ? "SUSPENDED" : "ACTIVE",
      liveTable: this.live !== undefined,
      inactiveTable: this.inactive !== undefined,
      sizeSectors: this.sizeSectors,
      eventNr: this.eventCounter,
      inflight: this.inflight,
    };
  }

  /** Targets of the live table (e.g. to reach a MirrorTarget's controls). */
  liveTargets(): readonly Target[] {
    return this.live?.targets ?? [];
  }

  inactiveTargets(): readonly Target[] {
    return this.inactive?.targets ?? [];
  }

  /** Names of every device the live and inactive tables use. */
  dependencies(): string[] {
    const out = new Set<string>();
    for (const lt of [this.live, this.inactive]) for (const t of lt?.targets ?? []) for (const d of t.devices()) out.add(d.name);
    return [...out];
  }

  /** Life-cycle operations run one at a time, like dm's ioctls on one device. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.lifecycle.then(fn, fn);
    this.lifecycle = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  // ---- table management -----------------------------------------------

  /** The live table's target covering exactly these sectors, if any. */
  private liveTargetAt(startSector: number, lengthSectors: number): Target | undefined {
    const live = this.live;
    if (!live) return undefined;
    const i = live.table.lines.findIndex((l) => l.startSector === startSector && l.lengthSectors === lengthSectors);
    return i < 0 ? undefined : live.targets[i];
  }

  /**
   * Build the table's targets into the inactive slot (replacing any table
   * already there). Throws TableError, with nothing left open, if a line
   * names an unknown target type, has bad arguments or a device cannot be
   * opened. Returns the new targets, e.g. to mark a mirror leg stale before
   * resume().
   */
  load(table: Table): Promise<readonly Target[]> {
    return this.serial(async () => {
      this.assertNotRemoved();
      const targets: Target[] = [];
      try {
        for (const [i, line] of table.lines.entries()) {
          const type = this.types.get(line.targetType);
          if (type === undefined)
            throw new TableError(`Table line ${i + 1}: unknown target type "${line.targetType}"`, { line: i, targetType: line.targetType });
          let t: Target;
          try {
            t = await type.create(line.args, {
              env: this.env,
              deviceName: this.name,
              startSector: line.startSector,
              lengthSectors: line.lengthSectors,
              previous: this.liveTargetAt(line.startSector, line.lengthSectors),
            });
          } catch (e) {
            if (e instanceof TableError) {
              throw new TableError(`${this.name}: table line ${i + 1} (${line.targetType}): ${e.message}`, { ...e.details, line: i }, e);
            }
            throw e;
          }
          targets.push(t);
        }
      } catch (e) {
        for (const t of targets) await t.destroy().catch(() => undefined);
        throw e;
      }
      const old = this.inactive;
      this.inactive = { table, targets, starts: table.lines.map((l) => l.startSector) };
      if (old) for (const t of old.targets) await t.destroy().catch(() => undefined);
      return targets;
    });
  }

  /** Drop the inactive table (`dmsetup clear`). */
  clearInactive(): Promise<void> {
    return this.serial(async () => {
      const old = this.inactive;
      this.inactive = undefined;
      if (old) for (const t of old.targets) await t.destroy().catch(() => undefined);
    });
  }

  /**
   * Queue new I/O, wait for in-flight I/O to finish, then let the targets
   * flush (`flush: false` skips the explicit flush) and quiesce. Device
   * errors during suspend are reported by the targets' events, never thrown.
   */
  suspend(opts: { flush?: boolean } = {}): Promise<void> {
    return this.serial(() => this.doSuspend(opts.flush ?? true));
  }

  private async doSuspend(flush: boolean): Promise<void> {
    this.assertNotRemoved();
    if (this.suspended) return;
    this.suspended = true;
    // Before the drain: held I/O that could wait on the suspender is given back (RequeueRequest).
    for (const t of this.live?.targets ?? []) t.presuspend?.();
    if (this.inflight > 0) await new Promise<void>((r) => this.drainWaiters.push(r));
    for (const t of this.live?.targets ?? []) {
      if (flush) await t.flush(SUSPENDING).catch(() => undefined);
      await t.suspend?.().catch(() => undefined);
    }
  }

  /**
   * Make the inactive table live if there is one (suspending first if the
   * device is active), destroy the old targets, resume the targets and let
   * queued I/O through. Throws TableError if there is no table at all.
   */
  resume(): Promise<void> {
    return this.serial(async () => {
      this.assertNotRemoved();
      if (this.inactive !== undefined) {
        if (!this.suspended && this.live !== undefined) await this.doSuspend(true);
        this.suspended = true;
        const old = this.live;
        this.live = this.inactive;
        this.inactive = undefined;
        // The old targets go first: a reloaded mirror must not find the
        // previous instance still writing the same log.
        if (old) for (const t of old.targets) await t.destroy().catch(() => undefined);
      } else if (this.live === undefined) {
        throw new TableError(`${this.name}: cannot resume: no table loaded`);
      }
      for (const t of this.live!.targets) await t.resume?.();
      this.suspended = false;
      const w = this.resumeWaiters;
      this.resumeWaiters = [];
      for (const f of w) f();
    });
  }

  /**
   * Remove the device: suspend (drain and flush), destroy all targets;
   * queued and later I/O fail with ENXIO. The registry refuses this while
   * another device's table uses this one (BusyError).
   */
  remove(): Promise<void> {
    return this.serial(async () => {
      if (this.removed) return;
      if (this.live !== undefined) await this.doSuspend(true);
      this.removed = true;
      for (const lt of [this.live, this.inactive]) for (const t of lt?.targets ?? []) await t.destroy().catch(() => undefined);
      this.live = undefined;
      this.inactive = undefined;
      const w = this.resumeWaiters;
      this.resumeWaiters = [];
      for (const f of w) f();
    });
  }

  /** `dmsetup table`: one `<start> <length> <target> <args>` line per target. */
  table(opts: { inactive?: boolean } = {}): string {
    const lt = opts.inactive ? this.inactive : this.live;
    if (lt === undefined) return "";
    return lt.targets
      .map((t, i) => {
        const line = lt.table.lines[i]!;
        return formatTableLine({ startSector: line.startSector, lengthSectors: line.lengthSectors, targetType: t.type, args: t.tableArgs() }) + "\n";
      })
      .join("");
  }

  /** `dmsetup status`: one `<start> <length> <target> <info>` line per target. */
  status(): string {
    return this.statusLines()
      .map((s) => {
        const info = formatStatusInfo(s.status);
        return `${s.startSector} ${s.lengthSectors} ${s.targetType}${info === "" ? "" : " " + info}\n`;
      })
      .join("");
  }

  statusLines(): TargetStatusLine[] {
    const lt = this.live;
    if (lt === undefined) return [];
    return lt.targets.map((t, i) => {
      const line = lt.table.lines[i]!;
      return { startSector: line.startSector, lengthSectors: line.lengthSectors, targetType: t.type, status: t.status() };
    });
  }

  /** `dmsetup message <dev> <sector> <words...>`, routed to the live target holding `sector`. */
  async message(sector: number, words: readonly string[]): Promise<string | void> {
    const lt = this.live;
    if (lt === undefined) throw new TableError(`${this.name}: no live table`);
    const t = lt.targets[this.targetIndex(lt, sector)];
    if (t === undefined || t.message === undefined) throw new TableError(`${this.name}: target at sector ${sector} takes no messages`);
    return t.message(words);
  }

  private assertNotRemoved(): void {
    if (this.removed) throw new BusyError(`${this.name}: device has been removed`);
  }

  // ---- I/O ------------------------------------------------------------------

  /** Wait while suspended; then count the request in flight. Throws if there is nothing to serve. */
  private async admit(): Promise<LoadedTable> {
    while (this.suspended && !this.removed) await new Promise<void>((r) => this.resumeWaiters.push(r));
    const lt = this.live;
    if (this.removed || lt === undefined) throw new IoError(`${this.name}: no such device or no live table`, "ENXIO");
    this.inflight++;
    return lt;
  }

  private done(): void {
    if (--this.inflight === 0 && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  private check(lt: LoadedTable, offsetBytes: number, lengthBytes: number, op: "read" | "write"): void {
    if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0)
      throw new IoError(`${this.name}: ${op} at invalid offset ${offsetBytes}`, "EINVAL");
    if (offsetBytes + lengthBytes > lt.table.sizeSectors * SECTOR_BYTES)
      throw new IoError(
        `${this.name}: ${op} at byte ${offsetBytes}, length ${lengthBytes}: beyond the end of the device (${lt.table.sizeSectors * SECTOR_BYTES} bytes)`,
        op === "write" ? "ENOSPC" : "EINVAL",
      );
  }

  // Writes share the device; a partial-sector (read-modify-write) write holds it alone.
  private sharedWrites = 0;
  private exclusiveHeld = false;
  private exclusiveQueue: Array<() => void> = [];
  private sharedWaiters: Array<() => void> = [];

  private async acquireShared(): Promise<void> {
    while (this.exclusiveHeld || this.exclusiveQueue.length > 0) await new Promise<void>((r) => this.sharedWaiters.push(r));
    this.sharedWrites++;
  }

  private releaseShared(): void {
    if (--this.sharedWrites === 0 && !this.exclusiveHeld) this.grantExclusive();
  }

  private acquireExclusive(): Promise<void> | undefined {
    if (!this.exclusiveHeld && this.sharedWrites === 0 && this.exclusiveQueue.length === 0) {
      this.exclusiveHeld = true;
      return undefined;
    }
    return new Promise<void>((r) => this.exclusiveQueue.push(r));
  }

  private grantExclusive(): void {
    const next = this.exclusiveQueue.shift();
    if (next === undefined) return;
    this.exclusiveHeld = true;
    next();
  }

  private releaseExclusive(): void {
    this.exclusiveHeld = false;
    if (this.exclusiveQueue.length > 0) {
      if (this.sharedWrites === 0) this.grantExclusive();
      return;
    }
    const w = this.sharedWaiters;
    this.sharedWaiters = [];
    for (const f of w) f();
  }

  private targetIndex(lt: LoadedTable, sector: number): number {
    const s = lt.starts;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (s[mid]! <= sector) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Split [sector, sector + n) at target boundaries. */
  private route(lt: LoadedTable, offsetBytes: number, buf: Uint8Array, op: (t: Target, sector: number, piece: Uint8Array) => Promise<void>): Promise<void> {
    const sector = offsetBytes / SECTOR_BYTES;
    const endSector = sector + buf.length / SECTOR_BYTES;
    let i = this.targetIndex(lt, sector);
    const start = lt.starts[i]!;
    const t = lt.targets[i]!;
    if (endSector <= start + t.lengthSectors) return op(t, sector - start, buf);
    const parts: Promise<void>[] = [];
    let s = sector;
    while (s < endSector) {
      const ts = lt.starts[i]!;
      const tt = lt.targets[i]!;
      const e = Math.min(endSector, ts + tt.lengthSectors);
      parts.push(op(tt, s - ts, buf.subarray((s - sector) * SECTOR_BYTES, (e - sector) * SECTOR_BYTES)));
      s = e;
      i++;
    }
    return settleParts(parts);
  }

  /**
   * The common case of read() and write() without async functions: an active
   * device, a sector-aligned request inside it, no partial-sector write
   * holding the device. Each async layer costs promises and microtask turns,
   * and a mirror stacks three mapped-device layers per request (the LV and
   * two images); at 4 KiB that was ~10 % of the CPU a cached read costs.
   * Same semantics as the slow paths: counted in flight, released on
   * settlement.
   */
  private fastTable(offsetBytes: number, lengthBytes: number): LoadedTable | undefined {
    const lt = this.live;
    if (this.suspended || this.removed || lt === undefined || lengthBytes === 0) return undefined;
    if (offsetBytes % SECTOR_BYTES !== 0 || lengthBytes % SECTOR_BYTES !== 0) return undefined;
    if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || offsetBytes + lengthBytes > lt.table.sizeSectors * SECTOR_BYTES) return undefined;
    return lt;
  }

  private readonly settledRead = (): void => this.done();
  private readonly failedRead = (e: unknown): never => {
    this.done();
    throw e;
  };
  private readonly settledWrite = (): void => this.releaseWrite();
  private releaseWrite(): void {
    this.releaseShared();
    this.done();
  }

  read(offsetBytes: number, into: Uint8Array, opts?: ReadOptions): Promise<void> {
    const lt = this.fastTable(offsetBytes, into.length);
    if (lt === undefined) return this.readSlow(offsetBytes, into);
    this.inflight++;
    let p: Promise<void>;
    try {
      p = this.route(lt, offsetBytes, into, opts?.bulk === true ? readPieceBulk : readPiece);
    } catch (e) {
      this.done();
      return Promise.reject(e);
    }
    return p.then(this.settledRead, this.failedRead);
  }

  write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    const lt = this.fastTable(offsetBytes, data.length);
    if (lt === undefined || this.exclusiveHeld || this.exclusiveQueue.length > 0) return this.writeSlow(offsetBytes, data, opts);
    this.inflight++;
    this.sharedWrites++;
    let p: Promise<void>;
    try {
      p = this.route(lt, offsetBytes, data, opts?.fua === true ? writePieceFua : opts?.bulk === true ? writePieceBulk : writePiece);
    } catch (e) {
      this.releaseShared();
      this.done();
      return Promise.reject(e);
    }
    return p.then(this.settledWrite, (e: unknown) => {
      this.releaseWrite();
      // Given back while suspending: out of flight now, issued again after resume.
      if (e instanceof RequeueRequest) return this.writeSlow(offsetBytes, data, opts);
      throw e;
    });
  }

  /**
   * The range's extents through every target it spans, counted as a read or
   * write in flight (suspend drains it) until released. Undefined unless the
   * device is live and every target passes data through (linear), and for a
   * write while a partial-sector write holds the device.
   */
  leaseExtents(offsetBytes: number, lengthBytes: number, forWrite: boolean): ExtentLease | undefined {
    const lt = this.fastTable(offsetBytes, lengthBytes);
    if (lt === undefined || (forWrite && (this.exclusiveHeld || this.exclusiveQueue.length > 0))) return undefined;
    const taken: ExtentLease[] = [];
    const endSector = (offsetBytes + lengthBytes) / SECTOR_BYTES;
    let i = this.targetIndex(lt, offsetBytes / SECTOR_BYTES);
    for (let s = offsetBytes / SECTOR_BYTES; s < endSector; i++) {
      const start = lt.starts[i]!;
      const t = lt.targets[i]!;
      const e = Math.min(endSector, start + t.lengthSectors);
      const lease = t.lease?.(s - start, e - s, forWrite);
      if (lease === undefined) {
        for (const l of taken) l.release();
        return undefined;
      }
      taken.push(lease);
      s = e;
    }
    this.inflight++;
    if (forWrite) this.sharedWrites++;
    let released = false;
    return {
      extents: taken.length === 1 ? taken[0]!.extents : taken.flatMap((l): readonly FileExtent[] => l.extents),
      problem: () => {
        for (const l of taken) {
          const p = l.problem();
          if (p !== undefined) return p;
        }
        return undefined;
      },
      release: () => {
        if (released) return;
        released = true;
        for (const l of taken) l.release();
        if (forWrite) this.releaseShared();
        this.done();
      },
    };
  }

  private async readSlow(offsetBytes: number, into: Uint8Array): Promise<void> {
    const lt = await this.admit();
    try {
      this.check(lt, offsetBytes, into.length, "read");
      if (into.length === 0) return;
      if (offsetBytes % SECTOR_BYTES === 0 && into.length % SECTOR_BYTES === 0) {
        await this.route(lt, offsetBytes, into, (t, s, piece) => t.read(s, piece));
        return;
      }
      const start = offsetBytes - (offsetBytes % SECTOR_BYTES);
      const end = Math.ceil((offsetBytes + into.length) / SECTOR_BYTES) * SECTOR_BYTES;
      const bounce = new Uint8Array(end - start);
      await this.route(lt, start, bounce, (t, s, piece) => t.read(s, piece));
      into.set(bounce.subarray(offsetBytes - start, offsetBytes - start + into.length));
    } finally {
      this.done();
    }
  }

  private async writeSlow(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    for (;;) {
      const lt = await this.admit();
      try {
        await this.writeAdmitted(lt, offsetBytes, data, opts);
        return;
      } catch (e) {
        if (!(e instanceof RequeueRequest)) throw e;
        // given back while suspending: issue it again after resume
      } finally {
        this.done();
      }
    }
  }

  private async writeAdmitted(lt: LoadedTable, offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    this.check(lt, offsetBytes, data.length, "write");
    if (data.length === 0) return;
    const wo = { fua: opts?.fua === true };
    if (offsetBytes % SECTOR_BYTES !== 0 || data.length % SECTOR_BYTES !== 0) {
      await this.writeUnaligned(lt, offsetBytes, data, wo);
      return;
    }
    if (this.exclusiveHeld || this.exclusiveQueue.length > 0) await this.acquireShared();
    else this.sharedWrites++;
    try {
      await this.route(lt, offsetBytes, data, (t, s, piece) => t.write(s, piece, wo));
    } finally {
      this.releaseShared();
    }
  }

  /** Read-modify-write of the partial sectors at either end, alone on the device. */
  private async writeUnaligned(lt: LoadedTable, offsetBytes: number, data: Uint8Array, wo: { fua: boolean }): Promise<void> {
    const wait = this.acquireExclusive();
    if (wait !== undefined) await wait;
    try {
      const start = offsetBytes - (offsetBytes % SECTOR_BYTES);
      const end = Math.ceil((offsetBytes + data.length) / SECTOR_BYTES) * SECTOR_BYTES;
      const buf = new Uint8Array(end - start);
      const reads: Promise<void>[] = [];
      const read = (at: number) => reads.push(this.route(lt, at, buf.subarray(at - start, at - start + SECTOR_BYTES), (t, s, p) => t.read(s, p)));
      if (offsetBytes !== start) read(start);
      if (offsetBytes + data.length !== end && (end - SECTOR_BYTES !== start || offsetBytes === start)) read(end - SECTOR_BYTES);
      await Promise.all(reads);
      buf.set(data, offsetBytes - start);
      await this.route(lt, start, buf, (t, s, piece) => t.write(s, piece, wo));
    } finally {
      this.releaseExclusive();
    }
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number, opts?: WriteOptions): Promise<void> {
    // One spare sector, so that the first (misaligned) chunk is never empty.
    const chunk = new Uint8Array(Math.min(lengthBytes + SECTOR_BYTES, 1 << 20));
    let done = 0;
    while (done < lengthBytes) {
      // After a partial first sector, every chunk starts sector-aligned.
      const n = Math.min(chunk.length - ((offsetBytes + done) % SECTOR_BYTES), lengthBytes - done);
      await this.write(offsetBytes + done, chunk.subarray(0, n), opts);
      done += n;
    }
  }

  async flush(): Promise<void> {
    for (;;) {
      const lt = await this.admit();
      try {
        await settleParts(lt.targets.map((t) => t.flush()));
        return;
      } catch (e) {
        if (!(e instanceof RequeueRequest)) throw e;
        // given back while suspending: flush again after resume
      } finally {
        this.done();
      }
    }
  }

  /**
   * Closing a handle does not remove the device: mapped devices live until
   * remove() (the NBD server closing an export leaves the LV active).
   */
  async close(): Promise<void> {}
}

/**
 * Wait for every piece of a split request, then fail with the first error,
 * preferring a real one to a RequeueRequest. Not Promise.all: the request
 * must stay in flight until no piece is still running, or a suspend could
 * finish under a piece, and a requeued request issued again could race
 * with its own first attempt.
 */
async function settleParts(parts: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(parts);
  let requeue: unknown;
  for (const r of results) {
    if (r.status === "fulfilled") continue;
    if (!(r.reason instanceof RequeueRequest)) throw r.reason;
    requeue ??= r.reason;
  }
  if (requeue !== undefined) throw requeue;
}
