import type { BlockDevice, ReadOptions, WriteOptions } from "./block-device.js";
import { PassThroughDevice } from "./pass-through-device.js";

/**
 * Per-device I/O counters, as /proc/diskstats keeps them for a block device:
 * completed reads and writes, their bytes, and a latency histogram of each
 * (fixed buckets, so recording one I/O is a few integer adds, never an
 * allocation or a lookup). The metrics endpoint reads them at scrape time.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class LatencyHistogram {
  /** counts[i]: observations <= LATENCY_BUCKETS_SECONDS[i] and > the previous bound (not cumulative); the last one is +Inf. */
  readonly counts = new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1);
  sumSeconds = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_SECONDS.length && seconds > LATENCY_BUCKETS_SECONDS[i]!) i++;
    this.counts[i]!++;
    this.sumSeconds += seconds;
    this.count++;
  }
}

export class IoCounters {
  readOps = 0;
  writeOps = 0;
  readBytes = 0;
  writtenBytes = 0;
  readonly readLatency = new LatencyHistogram();
  readonly writeLatency = new LatencyHistogram();
}

/**
 * A pass-through BlockDevice that counts what completes through it into
 * `counters`. Failed requests are not counted (they reach the client as
 * errors; the legs' errors are counted where legs fail).
 */
export class CountingBlockDevice extends PassThroughDevice {
  readonly discard?: (offsetBytes: number, lengthBytes: number) => Promise<void>;
  readonly writeZeroes?: (offsetBytes: number, lengthBytes: number, opts?: WriteOptions) => Promise<void>;

  constructor(
    inner: BlockDevice,
    readonly counters: IoCounters,
  ) {
    super(inner);
    if (inner.discard) this.discard = (off, len) => inner.discard!(off, len);
    if (inner.writeZeroes) {
      this.writeZeroes = (off, len, opts) => {
        const t0 = performance.now();
        return inner.writeZeroes!(off, len, opts).then(() => this.wrote(len, t0));
      };
    }
  }

  override read(offsetBytes: number, into: Uint8Array, opts?: ReadOptions): Promise<void> {
    const t0 = performance.now();
    return this.inner.read(offsetBytes, into, opts).then(() => {
      const c = this.counters;
      c.readOps++;
      c.readBytes += into.length;
      c.readLatency.observe((performance.now() - t0) / 1000);
    });
  }

  override write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    const t0 = performance.now();
    return this.inner.write(offsetBytes, data, opts).then(() => this.wrote(data.length, t0));
  }

  private wrote(bytes: number, t0: number): void {
    const c = this.counters;
    c.writeOps++;
    c.writtenBytes += bytes;
    c.writeLatency.observe((performance.now() - t0) / 1000);
  }

  /** The inner device belongs to whoever wrapped it. */
  override close(): Promise<void> {
    return Promise.resolve();
  }
}
