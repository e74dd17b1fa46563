import type { BlockDevice, BlockDeviceCaps, ReadOptions, WriteOptions } from "./block-device.js";
import { IoError } from "../errors/errors.js";

/**
 * FaultBlockDevice: wraps any BlockDevice and injects failures, like
 * device-mapper's `flakey` and `error` targets or nbdkit's error/delay
 * filters. Everything it does not script passes straight through.
 *
 *   - rules: fail reads/writes/flushes that touch a byte range, after N
 *     matching ops, for a number of times (or forever);
 *   - vanish(): every op fails from now on, as if the disk was pulled;
 *   - delay: every op waits some milliseconds first;
 *   - hold(): ops wait until released (to freeze a device mid-write);
 *   - recording: every completed write/flush/FUA is logged in order with a
 *     sequence number shared by all devices using the same IoRecorder, so a
 *     test can rebuild any crash state a power cut could have left.
 */
export type FaultOp = "read" | "write" | "flush";

export interface FaultRule {
  /** Which operations the rule applies to; default all. */
  readonly ops?: readonly FaultOp[];
  /** Only ops touching [offsetBytes, offsetBytes + lengthBytes); flushes never match a range rule. */
  readonly offsetBytes?: number;
  readonly lengthBytes?: number;
  /** Let this many matching ops succeed before failing; default 0. */
  readonly afterCount?: number;
  /** Fail this many matching ops, then the rule retires; default Infinity. */
  readonly failCount?: number;
  /** POSIX errno of the thrown IoError; default EIO. */
  readonly errno?: string;
}

interface LiveRule {
  readonly rule: FaultRule;
  skipped: number;
  failed: number;
}

export interface IoRecord {
  /** Global order of completion across every device sharing the recorder. */
  readonly seq: number;
  /** Global order at which the operation was issued (seq of the last record before it started). */
  readonly startSeq: number;
  readonly device: string;
  readonly op: "write" | "flush";
  readonly offsetBytes: number;
  /** A private copy of the data written (empty for flush). */
  readonly data: Uint8Array;
  readonly fua: boolean;
}

/** A shared, ordered log of completed writes and flushes. */
export class IoRecorder {
  readonly records: IoRecord[] = [];
  private counter = 0;

  /** The sequence number the next completed operation will get. */
  get nextSeq(): number {
    return this.counter;
  }

  add(rec: Omit<IoRecord, "seq">): IoRecord {
    const full: IoRecord = { ...rec, seq: this.counter++ };
    this.records.push(full);
    return full;
  }
}

export interface FaultStats {
  reads: number;
  writes: number;
  flushes: number;
  bytesRead: number;
  bytesWritten: number;
  /** Operations failed by a rule or by vanish(). */
  injectedErrors: number;
}

export class FaultBlockDevice implements BlockDevice {
  readonly name: string;
  readonly stats: FaultStats = { reads: 0, writes: 0, flushes: 0, bytesRead: 0, bytesWritten: 0, injectedErrors: 0 };
  private rules: LiveRule[] = [];
  private vanishedErrno: string | undefined;
  private delayMs: Partial<Record<FaultOp, number>> | ((op: FaultOp) => number) = {};
  private held: { waiters: Array<() => void>; ops: ReadonlySet<FaultOp> } | undefined;
  private recorder: IoRecorder | undefined;
  private opCount = 0;

  constructor(readonly inner: BlockDevice, opts: { name?: string; recorder?: IoRecorder } = {}) {
    this.name = opts.name ?? inner.name;
    this.recorder = opts.recorder;
  }

  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }

  get caps(): BlockDeviceCaps {
    return this.inner.caps;
  }

  /** Number of read/write/flush calls so far (including failed ones). */
  get operations(): number {
    return this.opCount;
  }

  addRule(rule: FaultRule): () => void {
    const live: LiveRule = { rule, skipped: 0, failed: 0 };
    this.rules.push(live);
    return () => {
      this.rules = this.rules.filter((r) => r !== live);
    };
  }

  /** Shorthand: fail every `op` touching the range, forever. */
  failRange(offsetBytes: number, lengthBytes: number, ops: readonly FaultOp[] = ["read", "write"], errno = "EIO"): () => void {
    return this.addRule({ ops, offsetBytes, lengthBytes, errno });
  }

  clearRules(): void {
    this.rules = [];
  }

  /** From now on every operation fails, as if the device was unplugged. */
  vanish(errno = "ENXIO"): void {
    this.vanishedErrno = errno;
  }

  /** Undo vanish(): the device answers again (with whatever it holds). */
  reappear(): void {
    this.vanishedErrno = undefined;
  }

  get vanished(): boolean {
    return this.vanishedErrno !== undefined;
  }

  /** A fixed delay, one per kind of op, or a function (e.g. random jitter to reorder completions). */
  setDelay(ms: number | Partial<Record<FaultOp, number>> | ((op: FaultOp) => number)): void {
    this.delayMs = typeof ms === "number" ? { read: ms, write: ms, flush: ms } : typeof ms === "function" ? ms : { ...ms };
  }

  /**
   * Make new operations of the given kinds wait until release() is called.
   * Used to freeze a device mid-write, e.g. to drop a mirror while a write
   * has reached one leg but not the other.
   */
  hold(ops: readonly FaultOp[] = ["read", "write", "flush"]): void {
    if (!this.held) this.held = { waiters: [], ops: new Set(ops) };
  }

  /** Number of operations waiting in hold(). */
  get heldCount(): number {
    return this.held?.waiters.length ?? 0;
  }

  release(): void {
    const h = this.held;
    this.held = undefined;
    for (const w of h?.waiters ?? []) w();
  }

  startRecording(recorder: IoRecorder = new IoRecorder()): IoRecorder {
    this.recorder = recorder;
    return recorder;
  }

  stopRecording(): void {
    this.recorder = undefined;
  }

  private async gate(op: FaultOp, offsetBytes: number, lengthBytes: number): Promise<void> {
    this.opCount++;
    const delay = typeof this.delayMs === "function" ? this.delayMs(op) : this.delayMs[op];
    if (delay !== undefined && delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (this.held && this.held.ops.has(op)) {
      const h = this.held;
      await new Promise<void>((r) => h.waiters.push(r));
    }
    if (this.vanishedErrno !== undefined) {
      this.stats.injectedErrors++;
      throw new IoError(`${this.name}: device has vanished (${op})`, this.vanishedErrno, { device: this.name, op });
    }
    for (const live of this.rules) {
      const r = live.rule;
      if (r.ops && !r.ops.includes(op)) continue;
      if (r.offsetBytes !== undefined) {
        if (op === "flush") continue;
        const end = r.offsetBytes + (r.lengthBytes ?? Infinity);
        if (offsetBytes >= end || offsetBytes + lengthBytes <= r.offsetBytes) continue;
      }
      if (live.skipped < (r.afterCount ?? 0)) {
        live.skipped++;
        continue;
      }
      if (live.failed >= (r.failCount ?? Infinity)) continue;
      live.failed++;
      this.stats.injectedErrors++;
      throw new IoError(`${this.name}: injected ${op} error at byte ${offsetBytes}`, r.errno ?? "EIO", {
        device: this.name,
        op,
        offsetBytes,
      });
    }
  }

  async read(offsetBytes: number, into: Uint8Array, opts?: ReadOptions): Promise<void> {
    await this.gate("read", offsetBytes, into.length);
    await this.inner.read(offsetBytes, into, opts);
    this.stats.reads++;
    this.stats.bytesRead += into.length;
  }

  async write(offsetBytes: number, data: Uint8Array, opts?: WriteOptions): Promise<void> {
    const startSeq = this.recorder?.nextSeq ?? 0;
    await this.gate("write", offsetBytes, data.length);
    await this.inner.write(offsetBytes, data, opts);
    this.stats.writes++;
    this.stats.bytesWritten += data.length;
    this.recorder?.add({
      startSeq,
      device: this.name,
      op: "write",
      offsetBytes,
      // A copy: Buffer#slice() is a view, and callers (the NBD server) reuse pooled buffers.
      data: new Uint8Array(data),
      fua: opts?.fua === true,
    });
  }

  async flush(): Promise<void> {
    const startSeq = this.recorder?.nextSeq ?? 0;
    await this.gate("flush", 0, 0);
    await this.inner.flush();
    this.stats.flushes++;
    this.recorder?.add({ startSeq, device: this.name, op: "flush", offsetBytes: 0, data: new Uint8Array(0), fua: false });
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}

/**
 * Crash-state reconstruction from an IoRecorder: the content a device could
 * hold after a power cut at `crashSeq` (records with seq < crashSeq completed).
 *
 * A completed write is certainly durable if it was FUA, or if a flush of the
 * same device that started after the write completed has itself completed
 * before the crash. Every other completed write may or may not have reached
 * stable storage; `keepUncertain` decides each one (a seeded coin in tests).
 */
export function crashImage(
  base: Uint8Array,
  records: readonly IoRecord[],
  device: string,
  crashSeq: number,
  keepUncertain: (rec: IoRecord) => boolean,
): Uint8Array {
  const img = new Uint8Array(base);
  const mine = records.filter((r) => r.device === device && r.seq < crashSeq);
  // The newest flush that started after a write finished makes that write durable.
  const flushStarts = mine.filter((r) => r.op === "flush").map((r) => r.startSeq);
  const lastFlushStart = flushStarts.length > 0 ? Math.max(...flushStarts) : -1;
  for (const rec of mine) {
    if (rec.op !== "write") continue;
    const durable = rec.fua || rec.seq < lastFlushStart;
    if (durable || keepUncertain(rec)) img.set(rec.data, rec.offsetBytes);
  }
  return img;
}
