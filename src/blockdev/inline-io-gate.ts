/**
 * InlineIoGate decides whether a small file operation may run synchronously
 * on the event loop instead of hopping through libuv's thread pool.
 *
 * Why: a page-cache hit costs ~4 µs in-line against ~35 µs of thread-pool
 * hand-off on our VMs, which makes a single-threaded server as fast as
 * nbdkit on cached reads (perf-baseline.md, "A/A run"). The price is that an
 * operation which has to wait for the disk (cache miss, dirty-page
 * throttling, a failing device) stalls every connection of the process. So
 * every inline operation is timed. One that took longer than a page-cache
 * hit plausibly could is "slow"; when `slowOfLast` of the last 16 inline
 * operations were slow (or one took longer than `stallMs`), the next
 * operations go to the thread pool for a back-off period that doubles while
 * this keeps happening (up to a ceiling) and resets after an inline
 * operation is fast again. Counting over a window matters on our shared
 * VMs: a lone 100 µs hiccup (preemption, an interrupt) is common there and
 * says nothing about the page cache.
 *
 * POLICY: the thresholds below are choices, not measurements of a device.
 */
export interface InlineIoGateOptions {
  /** Operations larger than this always go to the thread pool; 0 disables inline I/O. */
  readonly maxBytes: number;
  /** An operation slower than fixedBudgetMs + bytes * perByteBudgetMs counts as "went to the disk". */
  readonly fixedBudgetMs?: number;
  readonly perByteBudgetMs?: number;
  /** Back off when this many of the last 16 inline operations were slow. */
  readonly slowOfLast?: number;
  /** A single inline operation this slow backs off at once. */
  readonly stallMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

function popcount16(x: number): number {
  let n = 0;
  for (let v = x & 0xffff; v !== 0; v &= v - 1) n++;
  return n;
}

export class InlineIoGate {
  readonly maxBytes: number;
  private readonly fixedBudgetMs: number;
  private readonly perByteBudgetMs: number;
  private readonly slowOfLast: number;
  private readonly stallMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  /** Bit i set: the i-th most recent inline operation was slow. */
  private recentSlowBits = 0;
  private backoffMs = 0;
  private backoffUntilMs = 0;
  /** Counters for stats and tests. */
  inlineCount = 0;
  slowCount = 0;
  backoffCount = 0;

  constructor(opts: InlineIoGateOptions) {
    this.maxBytes = opts.maxBytes;
    this.fixedBudgetMs = opts.fixedBudgetMs ?? 0.1;
    this.perByteBudgetMs = opts.perByteBudgetMs ?? 1e-6; // 1 ns per byte, i.e. >= 1 GB/s
    this.slowOfLast = opts.slowOfLast ?? 3;
    this.stallMs = opts.stallMs ?? 5;
    this.minBackoffMs = opts.minBackoffMs ?? 10;
    this.maxBackoffMs = opts.maxBackoffMs ?? 1000;
  }

  /** May an operation of this size run inline now? */
  allow(lengthBytes: number, nowMs: number): boolean {
    return lengthBytes <= this.maxBytes && nowMs >= this.backoffUntilMs;
  }

  /** Report how long an inline operation took. */
  record(lengthBytes: number, startMs: number, endMs: number): void {
    this.inlineCount++;
    const elapsedMs = endMs - startMs;
    const slow = elapsedMs > this.fixedBudgetMs + lengthBytes * this.perByteBudgetMs;
    this.recentSlowBits = ((this.recentSlowBits << 1) | (slow ? 1 : 0)) & 0xffff;
    if (!slow) {
      if ((this.recentSlowBits & 0xf) === 0) this.backoffMs = 0;
      return;
    }
    this.slowCount++;
    if (elapsedMs < this.stallMs && popcount16(this.recentSlowBits) < this.slowOfLast) return;
    this.recentSlowBits = 0;
    this.backoffCount++;
    this.backoffMs = Math.min(this.maxBackoffMs, Math.max(this.minBackoffMs, this.backoffMs * 2));
    this.backoffUntilMs = endMs + this.backoffMs;
  }

  /** True while inline operations are suspended after a slow one. */
  backingOff(nowMs: number): boolean {
    return nowMs < this.backoffUntilMs;
  }
}
