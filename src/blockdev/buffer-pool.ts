/**
 * BufferPool: reusable I/O buffers in power-of-two size classes.
 *
 * Why: on our VMs the first touch of fresh memory costs ~16 µs per 4 KiB
 * page, and a fresh 1 MiB Buffer per request (glibc mmap + munmap) made reads
 * 13.7x slower (shared/reference/perf-baseline.md, finding 3). Buffers here
 * come from Buffer.allocUnsafeSlow (their own backing store, never the shared
 * 8 KiB slab) and are kept on a free list when released, up to a cap on the
 * bytes retained, so a burst does not pin memory forever.
 *
 * Contract: acquire() returns a buffer of the size class (>= the request, not
 * zeroed); the caller hands out views of it and calls release() exactly once,
 * after the last I/O using it has completed (socket write callback, pwrite
 * callback). Releasing twice is a bug that would hand one buffer to two users.
 */
export interface BufferPoolOptions {
  /** Smallest class; smaller requests get a buffer of this size. */
  readonly minClassBytes?: number;
  /** Largest pooled class; bigger requests get a one-off buffer that release() drops. */
  readonly maxClassBytes?: number;
  /** Upper bound on the bytes kept on the free lists. */
  readonly maxRetainedBytes?: number;
}

export class BufferPool {
  private readonly minShift: number;
  private readonly maxShift: number;
  private readonly maxRetainedBytes: number;
  private readonly free: Buffer[][] = [];
  private retainedBytes = 0;
  /** Buffers handed out and not yet released (for tests and stats). */
  outstandingCount = 0;

  constructor(opts: BufferPoolOptions = {}) {
    this.minShift = Math.ceil(Math.log2(opts.minClassBytes ?? 4096));
    this.maxShift = Math.ceil(Math.log2(opts.maxClassBytes ?? 32 * 1024 * 1024));
    this.maxRetainedBytes = opts.maxRetainedBytes ?? 64 * 1024 * 1024;
    for (let s = 0; s <= this.maxShift; s++) this.free.push([]);
  }

  /** Bytes currently sitting on the free lists. */
  get retainedByteCount(): number {
    return this.retainedBytes;
  }

  private classShift(lengthBytes: number): number {
    if (lengthBytes <= 1 << this.minShift) return this.minShift;
    return 32 - Math.clz32(lengthBytes - 1);
  }

  acquire(lengthBytes: number): Buffer {
    this.outstandingCount++;
    const shift = this.classShift(lengthBytes);
    if (shift > this.maxShift) return Buffer.allocUnsafeSlow(lengthBytes);
    const list = this.free[shift];
    const b = list?.pop();
    if (b !== undefined) {
      this.retainedBytes -= b.length;
      return b;
    }
    return Buffer.allocUnsafeSlow(1 << shift);
  }

  release(buf: Buffer): void {
    this.outstandingCount--;
    const shift = this.classShift(buf.length);
    // Only whole class-sized buffers go back: a view or a one-off is dropped.
    if (shift > this.maxShift || buf.length !== 1 << shift || buf.byteOffset !== 0) return;
    if (this.retainedBytes + buf.length > this.maxRetainedBytes) return;
    this.free[shift]?.push(buf);
    this.retainedBytes += buf.length;
  }

  /** Drop every retained buffer (e.g. after a burst, or in tests). */
  trim(): void {
    for (const list of this.free) list.length = 0;
    this.retainedBytes = 0;
  }
}

/** The process-wide pool the file device and the NBD server share. */
export const sharedBufferPool = new BufferPool();
