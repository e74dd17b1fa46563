/**
 * FileBlockDevice: a BlockDevice on a regular file or a block device node,
 * through the page cache (O_DIRECT is impractical from JavaScript: Buffers
 * are only 16-byte aligned; perf-baseline.md "Node facilities").
 *
 * - I/O is positional (pread/pwrite via the callback fs API), looping on
 *   short transfers. Small reads and writes run inline on the event loop
 *   (fs.readSync/writeSync) while they stay fast; see InlineIoGate. Larger
 *   ones go through libuv's thread pool.
 * - flush() is fdatasync. Because an operation resolves only after its
 *   pwrite returned, an fdatasync started after that covers it; concurrent
 *   flush() calls share one fdatasync when they can (group commit) but never
 *   one that started before they were called.
 * - FUA writes are the write followed by such a flush.
 * - A failed fdatasync is sticky: Linux may already have dropped the dirty
 *   pages and a retried fdatasync would report success for data that is
 *   gone. Every later flush() and FUA write fails with the same errno until
 *   the device is reopened (POLICY: fail loudly; the daemon decides).
 * - discard() is a no-op: Node exposes no fallocate(PUNCH_HOLE), and the
 *   NBD TRIM contract (contents become unspecified) allows doing nothing.
 * - writeZeroes() writes zeroes from one shared zero buffer (pwritev with the
 *   same buffer repeated), so the range stays allocated (NBD NO_HOLE holds).
 */
import fs from "node:fs";
import { performance } from "node:perf_hooks";
import type { BlockDevice, BlockDeviceCaps, ExtentLease, ReadOptions, WriteOptions } from "./block-device.js";
import { InlineIoGate } from "./inline-io-gate.js";
import { IoError } from "../errors/errors.js";

export interface FileBlockDeviceOptions {
  /** Open O_RDONLY; writes fail with EROFS. */
  readonly readOnly?: boolean;
  /** Name shown in errors; defaults to the path. */
  readonly name?: string;
  /** Reads up to this size may run inline on the event loop while fast (0 = never). */
  readonly inlineReadMaxBytes?: number;
  /** Writes up to this size may run inline on the event loop while fast (0 = never). */
  readonly inlineWriteMaxBytes?: number;
}

/**
 * Inline (event-loop) I/O limits, from scripts/bench-nbd.sh runs on our
 * 2-vCPU VMs. Reads: inline 4 KiB reads beat the thread pool by far (no
 * hand-off), but 1 MiB reads at iodepth 8 were ~15 % slower inline than in
 * the pool, where the pread overlaps with feeding the socket (inline was
 * only better at iodepth 1). Writes: 4 KiB random writes at iodepth 32 took
 * half the server CPU per request inline; 1 MiB writes stay in the pool so
 * that they overlap with receiving the next payload.
 */
export const DEFAULT_INLINE_READ_MAX_BYTES = 128 * 1024;
export const DEFAULT_INLINE_WRITE_MAX_BYTES = 64 * 1024;
/**
 * Bulk transfers (ReadOptions.bulk: a resync's copy) up to this size run
 * in-line while the device answers at page-cache speed: a 1 MiB chunk read
 * and written on one core stays in its cache (a 2 GiB copy here: ~8 GB/s
 * in-line against ~4.8 GB/s through the pool). The copier yields to the
 * event loop between chunks, so a client waits at most one chunk (~0.3 ms).
 */
export const BULK_INLINE_MAX_BYTES = 1024 * 1024;

const ZERO_CHUNK_BYTES = 1024 * 1024;
const ZERO_IOVEC_COUNT = 16;
let zeroChunk: Buffer | null = null;

function sharedZeroChunk(): Buffer {
  zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES);
  return zeroChunk;
}

function errnoOf(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : "EIO";
}

type Callback = (err: IoError | null) => void;

export class FileBlockDevice implements BlockDevice {
  readonly caps: BlockDeviceCaps;
  private closed = false;
  private inFlightCount = 0;
  private closeWaiters: Array<() => void> = [];
  private readonly readGate: InlineIoGate;
  private readonly writeGate: InlineIoGate;
  /** Bulk reads and writes have gates of their own: a slow resync must not push client I/O off the fast path, nor the reverse. */
  private readonly bulkReadGate = new InlineIoGate({ maxBytes: BULK_INLINE_MAX_BYTES });
  private readonly bulkWriteGate = new InlineIoGate({ maxBytes: BULK_INLINE_MAX_BYTES });
  // group commit state (see flush())
  private syncRunning = false;
  private coveredByRunning: Array<Callback> = [];
  private waitingForNext: Array<Callback> = [];
  private stickyFlushError: IoError | null = null;

  private constructor(
    readonly name: string,
    readonly path: string,
    private readonly fd: number,
    readonly sizeBytes: number,
    readonly readOnly: boolean,
    opts: FileBlockDeviceOptions,
  ) {
    this.caps = { write: !readOnly, flush: true, fua: true, trim: !readOnly };
    this.readGate = new InlineIoGate({ maxBytes: opts.inlineReadMaxBytes ?? DEFAULT_INLINE_READ_MAX_BYTES });
    this.writeGate = new InlineIoGate({ maxBytes: opts.inlineWriteMaxBytes ?? DEFAULT_INLINE_WRITE_MAX_BYTES });
  }

  /**
   * Open a regular file or block device read-write (or read-only). The size
   * is fixed at open: fstat for files; for block devices (whose st_size is 0)
   * /sys/dev/block/MAJ:MIN/size, or failing that a binary search with 1-byte
   * preads (reads at or past the end return 0 bytes).
   */
  static async open(path: string, opts: FileBlockDeviceOptions = {}): Promise<FileBlockDevice> {
    const readOnly = opts.readOnly ?? false;
    let fd: number;
    try {
      // A plain descriptor, not a FileHandle: the callback API with explicit
      // positions is the fast path, and a FileHandle would close on GC.
      fd = await new Promise<number>((resolve, reject) =>
        fs.open(path, readOnly ? "r" : "r+", (err, n) => (err ? reject(err) : resolve(n))),
      );
    } catch (e) {
      throw new IoError(`${path}: cannot open: ${(e as Error).message}`, errnoOf(e), { path }, e);
    }
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      let sizeBytes: number;
      if (st.isFile()) sizeBytes = Number(st.size);
      else if (st.isBlockDevice()) sizeBytes = blockDeviceSizeBytes(fd, st.rdev);
      else throw new IoError(`${path}: not a regular file or block device`, "EINVAL", { path });
      if (!Number.isSafeInteger(sizeBytes)) throw new IoError(`${path}: size ${sizeBytes} too large`, "EFBIG", { path });
      return new FileBlockDevice(opts.name ?? path, path, fd, sizeBytes, readOnly, opts);
    } catch (e) {
      fs.closeSync(fd);
      if (e instanceof IoError) throw e;
      throw new IoError(`${path}: ${(e as Error).message}`, errnoOf(e), { path }, e);
    }
  }

  /** Inline-I/O counters, for benchmarks and tests. */
  get stats(): Readonly<Record<"inlineReads" | "slowInlineReads" | "readBackoffs" | "inlineWrites" | "slowInlineWrites" | "writeBackoffs" | "inlineBulkReads" | "inlineBulkWrites", number>> {
    return {
      inlineBulkReads: this.bulkReadGate.inlineCount,
      inlineBulkWrites: this.bulkWriteGate.inlineCount,
      inlineReads: this.readGate.inlineCount,
      slowInlineReads: this.readGate.slowCount,
      readBackoffs: this.readGate.backoffCount,
      inlineWrites: this.writeGate.inlineCount,
      slowInlineWrites: this.writeGate.slowCount,
      writeBackoffs: this.writeGate.backoffCount,
    };
  }

  private ioError(op: string, offsetBytes: number, e: unknown): IoError {
    const errno = errnoOf(e);
    return new IoError(`${this.name}: ${op} at offset ${offsetBytes} failed: ${errno}`, errno, { device: this.name, offsetBytes }, e);
  }

  private checkOpen(): IoError | null {
    return this.closed ? new IoError(`${this.name}: device is closed`, "EBADF", { device: this.name }) : null;
  }

  private begin(): void {
    this.inFlightCount++;
  }

  private end(): void {
    if (--this.inFlightCount === 0 && this.closeWaiters.length > 0) {
      const w = this.closeWaiters;
      this.closeWaiters = [];
      for (const f of w) f();
    }
  }

  read(offsetBytes: number, into: Uint8Array, opts?: ReadOptions): Promise<void> {
    const closed = this.checkOpen();
    if (closed) return Promise.reject(closed);
    const lengthBytes = into.length;
    if (lengthBytes === 0) return Promise.resolve();
    const t0 = performance.now();
    const gate = opts?.bulk === true ? this.bulkReadGate : this.readGate;
    if (gate.allow(lengthBytes, t0)) {
      try {
        let done = 0;
        while (done < lengthBytes) {
          const n = fs.readSync(this.fd, into, done, lengthBytes - done, offsetBytes + done);
          if (n === 0) throw Object.assign(new Error("unexpected end of file"), { code: "EIO" });
          done += n;
        }
      } catch (e) {
        return Promise.reject(this.ioError("read", offsetBytes, e));
      }
      gate.record(lengthBytes, t0, performance.now());
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.begin();
      const step = (done: number): void => {
        fs.read(this.fd, into, done, lengthBytes - done, offsetBytes + done, (err, n) => {
          if (err === null && n === 0) err = Object.assign(new Error("unexpected end of file"), { code: "EIO" });
          if (err !== null) {
            this.end();
            reject(this.ioError("read", offsetBytes, err));
            return;
          }
          if (done + n < lengthBytes) {
            step(done + n);
            return;
          }
          this.end();
          resolve();
        });
      };
      step(0);
    });
  }

  write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    const closed = this.checkOpen();
    if (closed) return Promise.reject(closed);
    if (this.readOnly) return Promise.reject(new IoError(`${this.name}: device is read-only`, "EROFS", { device: this.name }));
    if (opts?.fua === true && this.stickyFlushError !== null) return Promise.reject(this.stickyFlushError);
    const lengthBytes = data.length;
    const gate = opts?.bulk === true ? this.bulkWriteGate : this.writeGate;
    const written =
      lengthBytes === 0 ? Promise.resolve() : gate.allow(lengthBytes, performance.now()) ? this.writeInline(gate, offsetBytes, data) : this.writePooled(offsetBytes, data);
    return opts?.fua === true ? written.then(() => this.flush()) : written;
  }

  private writeInline(gate: InlineIoGate, offsetBytes: number, data: Uint8Array): Promise<void> {
    const t0 = performance.now();
    try {
      let done = 0;
      while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done, offsetBytes + done);
    } catch (e) {
      return Promise.reject(this.ioError("write", offsetBytes, e));
    }
    gate.record(data.length, t0, performance.now());
    return Promise.resolve();
  }

  private writePooled(offsetBytes: number, data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.begin();
      const step = (done: number): void => {
        fs.write(this.fd, data, done, data.length - done, offsetBytes + done, (err, n) => {
          if (err !== null) {
            this.end();
            reject(this.ioError("write", offsetBytes, err));
            return;
          }
          if (done + n < data.length) {
            step(done + n);
            return;
          }
          this.end();
          resolve();
        });
      };
      step(0);
    });
  }

  /**
   * Make every write that resolved before this call durable. Group commit:
   * a call that arrives while an fdatasync runs cannot rely on it (that
   * fdatasync may have started before the caller's writes completed), so it
   * waits for the next one, which all such callers share.
   */
  flush(): Promise<void> {
    const closed = this.checkOpen();
    if (closed) return Promise.reject(closed);
    if (this.stickyFlushError !== null) return Promise.reject(this.stickyFlushError);
    return new Promise((resolve, reject) => {
      const cb: Callback = (err) => (err === null ? resolve() : reject(err));
      if (this.syncRunning) {
        this.waitingForNext.push(cb);
      } else {
        this.coveredByRunning.push(cb);
        this.startSync();
      }
    });
  }

  private startSync(): void {
    this.syncRunning = true;
    this.begin();
    fs.fdatasync(this.fd, (err) => {
      this.end();
      const done = this.coveredByRunning;
      this.coveredByRunning = [];
      if (err !== null) {
        const e = this.ioError("fdatasync", 0, err);
        this.stickyFlushError = e;
        const next = this.waitingForNext;
        this.waitingForNext = [];
        this.syncRunning = false;
        for (const cb of done) cb(e);
        for (const cb of next) cb(e);
        return;
      }
      this.syncRunning = false;
      if (this.waitingForNext.length > 0) {
        this.coveredByRunning = this.waitingForNext;
        this.waitingForNext = [];
        this.startSync();
      }
      for (const cb of done) cb(null);
    });
  }

  async discard(offsetBytes: number, lengthBytes: number): Promise<void> {
    const closed = this.checkOpen();
    if (closed) throw closed;
    if (this.readOnly) throw new IoError(`${this.name}: device is read-only`, "EROFS", { device: this.name });
    void offsetBytes;
    void lengthBytes;
  }

  writeZeroes(offsetBytes: number, lengthBytes: number, opts?: WriteOptions): Promise<void> {
    const closed = this.checkOpen();
    if (closed) return Promise.reject(closed);
    if (this.readOnly) return Promise.reject(new IoError(`${this.name}: device is read-only`, "EROFS", { device: this.name }));
    if (opts?.fua === true && this.stickyFlushError !== null) return Promise.reject(this.stickyFlushError);
    const zero = sharedZeroChunk();
    const written = new Promise<void>((resolve, reject) => {
      if (lengthBytes === 0) {
        resolve();
        return;
      }
      this.begin();
      const step = (done: number): void => {
        const remaining = lengthBytes - done;
        const iov: Buffer[] = [];
        let batch = 0;
        while (batch < remaining && iov.length < ZERO_IOVEC_COUNT) {
          const n = Math.min(ZERO_CHUNK_BYTES, remaining - batch);
          iov.push(n === ZERO_CHUNK_BYTES ? zero : zero.subarray(0, n));
          batch += n;
        }
        fs.writev(this.fd, iov, offsetBytes + done, (err, n) => {
          if (err !== null) {
            this.end();
            reject(this.ioError("write zeroes", offsetBytes + done, err));
            return;
          }
          if (done + n < lengthBytes) {
            step(done + n);
            return;
          }
          this.end();
          resolve();
        });
      };
      step(0);
    });
    return opts?.fua === true ? written.then(() => this.flush()) : written;
  }

  /** The descriptor itself, counted in flight until released (close() waits for it). */
  leaseExtents(offsetBytes: number, lengthBytes: number, forWrite: boolean): ExtentLease | undefined {
    if (this.closed || (forWrite && this.readOnly)) return undefined;
    this.begin();
    let released = false;
    return {
      extents: [{ fd: this.fd, offsetBytes, lengthBytes }],
      problem: () => undefined,
      release: () => {
        if (released) return;
        released = true;
        this.end();
      },
    };
  }

  /** Waits for operations in flight (a queued pool job must never see a reused fd number), then closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.inFlightCount > 0) await new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    await new Promise<void>((resolve, reject) => fs.close(this.fd, (err) => (err ? reject(this.ioError("close", 0, err)) : resolve())));
  }
}

/** Size of a block device: sysfs first, then a search with 1-byte reads. */
function blockDeviceSizeBytes(fd: number, rdev: bigint): number {
  // Linux dev_t encoding (glibc gnu_dev_major/minor).
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  try {
    const sectors = fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, "utf8").trim();
    if (/^[0-9]+$/.test(sectors)) return Number(sectors) * 512;
  } catch {
    // no sysfs (container without /sys): fall through
  }
  const one = Buffer.alloc(1);
  const readsAt = (pos: number): boolean => fs.readSync(fd, one, 0, 1, pos) === 1;
  if (!readsAt(0)) return 0;
  let lo = 0; // readable
  let hi = 1;
  while (readsAt(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > Number.MAX_SAFE_INTEGER / 2) throw new IoError("block device size out of range", "EFBIG");
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (readsAt(mid)) lo = mid;
    else hi = mid;
  }
  return lo + 1;
}
